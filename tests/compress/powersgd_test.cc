#include <gtest/gtest.h>

#include <cmath>

#include "codec_test_util.h"
#include "compress/matrix_ops.h"
#include "compress/powersgd.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using compress::PowerSgdCodec;
using compress::PowerSgdOptions;
using testing::gaussian_vector;

// rows x cols matrix of rank r: U (rows x r) V^T (cols x r).
std::vector<float> low_rank(size_t rows, size_t cols, size_t r, uint64_t seed) {
  std::vector<float> u = gaussian_vector(rows * r, seed), v = gaussian_vector(cols * r, seed + 1);
  std::vector<float> m(rows * cols);
  compress::matmul_pqt(u.data(), v.data(), rows, cols, r, 1.0f, m.data(), false);
  return m;
}

TEST(PowerSgdTest, MatrixKernelsMatchNaiveProducts) {
  const size_t rows = 13, cols = 9, r = 3;
  std::vector<float> m = gaussian_vector(rows * cols, 1), q = gaussian_vector(cols * r, 2);
  std::vector<float> p(rows * r), q2(cols * r);
  compress::matmul_mq(m.data(), rows, cols, q.data(), r, p.data());
  compress::matmul_mtp(m.data(), rows, cols, p.data(), r, q2.data());
  for (size_t i = 0; i < rows; ++i) {
    for (size_t k = 0; k < r; ++k) {
      double s = 0;
      for (size_t j = 0; j < cols; ++j) s += double(m[i * cols + j]) * q[j * r + k];
      EXPECT_NEAR(p[i * r + k], s, 1e-4);
    }
  }
  for (size_t j = 0; j < cols; ++j) {
    for (size_t k = 0; k < r; ++k) {
      double s = 0;
      for (size_t i = 0; i < rows; ++i) s += double(m[i * cols + j]) * p[i * r + k];
      EXPECT_NEAR(q2[j * r + k], s, 1e-3);
    }
  }
  compress::orthonormalize_columns(p.data(), rows, r, 7);
  for (size_t a = 0; a < r; ++a) {
    for (size_t b = 0; b < r; ++b) {
      double dot = 0;
      for (size_t i = 0; i < rows; ++i) dot += double(p[i * r + a]) * p[i * r + b];
      EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-5);
    }
  }
}

TEST(PowerSgdTest, OrthonormalizeReplacesDependentColumns) {
  const size_t rows = 8, r = 3;
  std::vector<float> p(rows * r, 0.0f);
  for (size_t i = 0; i < rows; ++i) p[i * r] = p[i * r + 1] = float(i + 1);  // col1 == col0
  compress::orthonormalize_columns(p.data(), rows, r, 3);
  for (size_t a = 0; a < r; ++a) {
    for (size_t b = 0; b < r; ++b) {
      double dot = 0;
      for (size_t i = 0; i < rows; ++i) dot += double(p[i * r + a]) * p[i * r + b];
      EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-5);
    }
  }
}

TEST(PowerSgdTest, ReproducesARankRMatrix) {
  const size_t rows = 40, cols = 30, r = 2;
  std::vector<float> m = low_rank(rows, cols, r, 10);
  PowerSgdCodec codec(PowerSgdOptions{r, 16, 5});
  compress::PowerSgdPlan plan = codec.plan(m.size(), std::vector<MatrixSegment>{{0, rows, cols}});
  ASSERT_EQ(plan.matrices.size(), 1u);
  ASSERT_EQ(plan.dense_floats, 0u);
  std::vector<float> p(plan.p_floats), q(plan.q_floats), out(m.size());
  codec.begin(0, plan, m.data(), m.size(), p.data());
  codec.middle(0, plan, p.data(), q.data());
  codec.finish(0, plan, p.data(), q.data(), out.data());
  double err = 0, norm = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    err += std::pow(out[i] - m[i], 2);
    norm += std::pow(m[i], 2);
  }
  EXPECT_LT(std::sqrt(err / norm), 1e-5);
}

TEST(PowerSgdTest, CodecFormRoundTripsWithDenseTailAndErrorFeedback) {
  // 47 * 47 = 2209 elements; default layout: 47 x 47 matrix, no tail. Use 2215: 6 dense.
  const size_t n = 2215, r = 3;
  PowerSgdCodec codec(PowerSgdOptions{r, 16, 5});
  compress::PowerSgdPlan plan = codec.plan(n, {});
  ASSERT_EQ(plan.matrices.size(), 1u);
  EXPECT_EQ(plan.matrices[0].rows, 47u);
  EXPECT_EQ(plan.dense_floats, n - 47 * 47);
  std::vector<float> g = gaussian_vector(n, 9);
  std::vector<double> sum_g(n, 0), sum_sent(n, 0);
  for (int step = 0; step < 5; ++step) {
    Payload payload;
    codec.encode(1, g.data(), n, payload);
    EXPECT_EQ(payload.bytes.size(), codec.encoded_size(n));
    std::vector<float> y(n);
    codec.decode(payload, y.data(), n);
    for (size_t i = 47 * 47; i < n; ++i) EXPECT_EQ(y[i], g[i]);  // tail exact
    for (size_t i = 0; i < n; ++i) {
      sum_g[i] += g[i];
      sum_sent[i] += y[i];
    }
  }
  // Error feedback: sent + residual == sum of gradients.
  CodecState st;
  codec.save_state(st);
  const std::vector<float>& res = st.at("powersgd.residual/1");
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(sum_sent[i] + res[i], sum_g[i], 1e-3) << i;
  PowerSgdCodec other(PowerSgdOptions{r, 16, 5});
  other.load_state(st);
  Payload a, b;
  codec.encode(1, g.data(), n, a);
  other.encode(1, g.data(), n, b);
  EXPECT_EQ(a.bytes, b.bytes);
}

TEST(PowerSgdTest, SmallAndOneDimensionalTensorsTravelDense) {
  PowerSgdCodec codec(PowerSgdOptions{4, 1024, 5});
  std::vector<MatrixSegment> layout = {{0, 1, 5000}, {5000, 10, 10}, {5100, 64, 64}};
  compress::PowerSgdPlan plan = codec.plan(5100 + 64 * 64 + 7, layout);
  ASSERT_EQ(plan.matrices.size(), 1u);
  EXPECT_EQ(plan.matrices[0].offset, 5100u);
  EXPECT_EQ(plan.dense_floats, 5100u + 7u);
  EXPECT_THROW(codec.plan(100, std::vector<MatrixSegment>{{50, 10, 10}}), InvalidArgumentError);
  EXPECT_THROW(codec.plan(300, std::vector<MatrixSegment>{{0, 10, 10}, {50, 10, 10}}),
               InvalidArgumentError);
}

}  // namespace
}  // namespace dtrain
