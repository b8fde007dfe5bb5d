// dtrain's float16 and bfloat16 conversions (core/dtype.h, the fp16/bf16 codecs, the 16-bit
// reductions) against LibTorch's c10::Half and c10::BFloat16: every 16-bit pattern to float, and
// float to 16 bits over every 16-bit value's neighbourhood (the value, one float ulp either side,
// the exact midpoint to the next value and one ulp either side of it: ties to even, subnormals,
// the overflow and underflow edges), the special values, and a fixed-seed sample of float bit
// patterns. NaN compares as NaN on both sides (c10's bfloat16 drops the sign and payload of a
// NaN; dtrain keeps them). Here rather than in core_tests because train_tests is the binary that
// LibTorch's headers and libraries come with; only c10's header-only types are used.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "dtrain/codec.h"
#include "dtrain/dtype.h"

namespace dtrain {
namespace {

uint16_t c10_half_bits(float f) {
  return c10::Half(f).x;
}
uint16_t c10_bf16_bits(float f) {
  return c10::BFloat16(f).x;
}
float c10_half_value(uint16_t h) {
  return static_cast<float>(c10::Half(h, c10::Half::from_bits()));
}
float c10_bf16_value(uint16_t b) {
  return static_cast<float>(c10::BFloat16(b, c10::BFloat16::from_bits()));
}

bool is_nan16(uint16_t bits, bool bf16) {
  return bf16 ? (bits & 0x7f80u) == 0x7f80u && (bits & 0x7fu) != 0
              : (bits & 0x7c00u) == 0x7c00u && (bits & 0x3ffu) != 0;
}

// Whether f lies exactly halfway between the half `rounded` and one of its neighbours.
bool is_tie(float f, uint16_t rounded) {
  const uint16_t magnitude = rounded & 0x7fffu;
  if (magnitude == 0 || magnitude >= 0x7c00u || half_to_float(rounded) == f) return false;
  const float gap = std::fabs(half_to_float(rounded) - f);
  for (int step : {-1, 1}) {
    if (std::fabs(half_to_float(static_cast<uint16_t>(rounded + step)) - f) == gap) return true;
  }
  return false;
}

// The floats to convert: the specials, every 16-bit value's neighbourhood, a fixed sample.
std::vector<float> probe_floats(bool bf16) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  std::vector<float> out = {0.0f,
                            -0.0f,
                            kInf,
                            -kInf,
                            std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            std::bit_cast<float>(0x7f800001u),  // signalling NaN, smallest payload
                            std::bit_cast<float>(0xff8abcdeu),
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min(),
                            65504.0f,
                            65519.0f,
                            65520.0f,
                            65536.0f,
                            std::ldexp(1.0f, -24),
                            std::ldexp(1.0f, -25),
                            std::ldexp(1.5f, -25),
                            std::ldexp(1.0f, -26)};
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = bf16 ? bf16_to_float(bits) : half_to_float(bits);
    if (!std::isfinite(f)) continue;
    const uint16_t up_bits = static_cast<uint16_t>(h + 1);  // the next value away from zero
    const float next =
        (up_bits & 0x7fffu) == 0 ? f : (bf16 ? bf16_to_float(up_bits) : half_to_float(up_bits));
    out.push_back(f);
    out.push_back(std::nextafter(f, kInf));
    out.push_back(std::nextafter(f, -kInf));
    const float mid = std::isfinite(next) ? f + (next - f) / 2 : f;  // exact: one more bit than 16
    out.push_back(mid);
    out.push_back(std::nextafter(mid, kInf));
    out.push_back(std::nextafter(mid, -kInf));
  }
  std::mt19937 gen(20240611);
  for (int i = 0; i < (1 << 22); ++i)
    out.push_back(std::bit_cast<float>(static_cast<uint32_t>(gen())));
  return out;
}

// ours(bits) and theirs(bits) are the same float (or both NaN) for every 16-bit pattern.
void expect_same_floats_for_every_pattern(float (*ours)(uint16_t), float (*theirs)(uint16_t)) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float a = ours(static_cast<uint16_t>(h)), b = theirs(static_cast<uint16_t>(h));
    if (std::isnan(b)) {
      ASSERT_TRUE(std::isnan(a)) << std::hex << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b)) << std::hex << h;
    }
  }
}

TEST(DTypeC10, HalfToFloatMatchesC10ForEveryPattern) {
  expect_same_floats_for_every_pattern(half_to_float, c10_half_value);
}

TEST(DTypeC10, Bf16ToFloatMatchesC10ForEveryPattern) {
  expect_same_floats_for_every_pattern(bf16_to_float, c10_bf16_value);
}

// ours(f) and theirs(f) are the same bits (or both NaN) for every probe; returns the probes
// that are exact ties and those that round to a subnormal.
struct ProbeCounts {
  size_t ties = 0, subnormals = 0;
};
ProbeCounts expect_same_bits_for_probes(bool bf16, uint16_t (*ours)(float),
                                        uint16_t (*theirs)(float)) {
  ProbeCounts counts;
  const uint16_t exponent = bf16 ? 0x7f80u : 0x7c00u;
  for (float f : probe_floats(bf16)) {
    const uint16_t a = ours(f), b = theirs(f);
    if (is_nan16(b, bf16)) {
      EXPECT_TRUE(is_nan16(a, bf16)) << std::hexfloat << f;
      if (!is_nan16(a, bf16)) return counts;
      continue;
    }
    EXPECT_EQ(a, b) << std::hexfloat << f << " (bits " << std::hex << std::bit_cast<uint32_t>(f)
                    << ")";
    if (a != b) return counts;
    if ((b & exponent) == 0 && (b & 0x7fffu) != 0) ++counts.subnormals;
    if (bf16 ? (std::bit_cast<uint32_t>(f) & 0xffffu) == 0x8000u : is_tie(f, b)) ++counts.ties;
  }
  return counts;
}

TEST(DTypeC10, FloatToHalfMatchesC10) {
  ProbeCounts counts = expect_same_bits_for_probes(false, float_to_half, c10_half_bits);
  EXPECT_GT(counts.ties, 60000u) << "the probes include the exact midpoints";
  EXPECT_GT(counts.subnormals, 2000u) << "the probes include the subnormals";
}

TEST(DTypeC10, FloatToBf16MatchesC10) {
  ProbeCounts counts = expect_same_bits_for_probes(true, float_to_bf16, c10_bf16_bits);
  EXPECT_GT(counts.ties, 60000u) << "the probes include the exact midpoints";
  EXPECT_GT(counts.subnormals, 2000u) << "the probes include the subnormals";
}

// The fp16 and bf16 codecs' bodies are c10's bits, and decoding gives c10's floats.
TEST(DTypeC10, CastCodecsEncodeAndDecodeAsC10) {
  const std::vector<float> in = probe_floats(false);
  for (const char* spec : {"fp16", "bf16"}) {
    const bool bf16 = std::string(spec) == "bf16";
    auto codec = make_codec(parse_codec_spec(spec));
    Payload payload;
    codec->encode(0, in.data(), in.size(), payload);
    std::span<const uint8_t> body = std::as_const(payload).body();
    ASSERT_EQ(body.size(), 2 * in.size()) << spec;
    std::vector<float> out(in.size());
    codec->decode(payload, out.data(), out.size());
    for (size_t i = 0; i < in.size(); ++i) {
      const uint16_t bits = static_cast<uint16_t>(body[2 * i] | body[2 * i + 1] << 8);
      const uint16_t theirs = bf16 ? c10_bf16_bits(in[i]) : c10_half_bits(in[i]);
      if (is_nan16(theirs, bf16)) {
        ASSERT_TRUE(is_nan16(bits, bf16) && std::isnan(out[i])) << spec << " " << i;
        continue;
      }
      ASSERT_EQ(bits, theirs) << spec << " " << std::hexfloat << in[i];
      const float value = bf16 ? c10_bf16_value(theirs) : c10_half_value(theirs);
      ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(value))
          << spec << " " << i;
    }
  }
}

// reduce_into and scale_divide on 16-bit buffers round once per step, as c10's arithmetic does
// (it computes in float and rounds the result).
TEST(DTypeC10, SixteenBitReductionsMatchC10Arithmetic) {
  std::mt19937 gen(7);
  constexpr size_t kCount = 1 << 16;
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    const bool bf16 = dtype == DType::kBFloat16;
    std::vector<uint16_t> a(kCount), b(kCount);
    for (size_t i = 0; i < kCount; ++i) {
      // Finite values: 16-bit patterns whose exponent is not all ones.
      do a[i] = static_cast<uint16_t>(gen());
      while (is_nan16(a[i] | (bf16 ? 0x7fu : 0x3ffu), bf16));
      do b[i] = static_cast<uint16_t>(gen());
      while (is_nan16(b[i] | (bf16 ? 0x7fu : 0x3ffu), bf16));
    }
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax}) {
      std::vector<uint16_t> d = a;
      reduce_into(d.data(), b.data(), kCount, dtype, op);
      for (size_t i = 0; i < kCount; ++i) {
        uint16_t expect;
        if (bf16) {
          c10::BFloat16 x(a[i], c10::BFloat16::from_bits()), y(b[i], c10::BFloat16::from_bits());
          expect = (op == ReduceOp::kSum   ? x + y
                    : op == ReduceOp::kMin ? (y < x ? y : x)
                                           : (x < y ? y : x))
                       .x;
        } else {
          c10::Half x(a[i], c10::Half::from_bits()), y(b[i], c10::Half::from_bits());
          expect = (op == ReduceOp::kSum   ? x + y
                    : op == ReduceOp::kMin ? (y < x ? y : x)
                                           : (x < y ? y : x))
                       .x;
        }
        const float ours = bf16 ? bf16_to_float(d[i]) : half_to_float(d[i]);
        const float theirs = bf16 ? bf16_to_float(expect) : half_to_float(expect);
        if (std::isnan(theirs)) {
          ASSERT_TRUE(std::isnan(ours))
              << dtype_name(dtype) << " " << reduce_op_name(op) << " " << i;
        } else {
          // Equal values (min/max of +0 and -0 may pick either zero).
          ASSERT_EQ(ours, theirs) << dtype_name(dtype) << " " << reduce_op_name(op) << " "
                                  << std::hex << a[i] << " " << b[i];
        }
      }
    }
    for (int64_t divisor : {2, 3, 5, 7}) {
      std::vector<uint16_t> d = a;
      scale_divide(d.data(), kCount, dtype, divisor);
      for (size_t i = 0; i < kCount; ++i) {
        const uint16_t expect =
            bf16 ? c10_bf16_bits(c10_bf16_value(a[i]) / static_cast<float>(divisor))
                 : c10_half_bits(c10_half_value(a[i]) / static_cast<float>(divisor));
        ASSERT_EQ(d[i], expect) << dtype_name(dtype) << " / " << divisor << " " << std::hex << a[i];
      }
    }
  }
}

}  // namespace
}  // namespace dtrain
