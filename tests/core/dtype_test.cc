#include "dtrain/dtype.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dtrain/error.h"

namespace dtrain {
namespace {

TEST(DTypeTest, HalfRoundTripsExactValues) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, 0.333251953125f}) {
    EXPECT_EQ(half_to_float(float_to_half(f)), f) << f;
  }
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

TEST(DTypeTest, HalfRoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1).
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 0.00048828125f)), 1.0f);
  // 1 + 3*2^-11 is halfway between 1+2^-10 and 1+2^-9: ties to even (1+2^-9).
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 3 * 0.00048828125f)), 1.0f + 0.001953125f);
}

TEST(DTypeTest, HalfMatchesExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_half(f), h) << std::hex << h;
  }
}

TEST(DTypeTest, BFloat16RoundTrip) {
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-3.0f)), -3.0f);
  EXPECT_NEAR(bf16_to_float(float_to_bf16(3.14159f)), 3.14159f, 0.02f);
}

TEST(DTypeTest, ReduceAndDivide) {
  float a[3] = {1, 5, -2}, b[3] = {2, 3, 7};
  reduce_into(a, b, 3, DType::kFloat32, ReduceOp::kMax);
  EXPECT_EQ(a[0], 2);
  EXPECT_EQ(a[1], 5);
  EXPECT_EQ(a[2], 7);
  int64_t x[2] = {10, 7}, y[2] = {4, 1};
  reduce_into(x, y, 2, DType::kInt64, ReduceOp::kSum);
  scale_divide(x, 2, DType::kInt64, 2);
  EXPECT_EQ(x[0], 7);
  EXPECT_EQ(x[1], 4);
  EXPECT_THROW(parse_dtype("float8"), InvalidArgumentError);
}

}  // namespace
}  // namespace dtrain
