#include <gtest/gtest.h>

#include <cmath>

#include "codec_test_util.h"
#include "compress/codecs.h"
#include "dtrain/codec.h"

namespace dtrain {
namespace {

using testing::gaussian_vector;

// Over many steps, what was sent plus what is still held equals the sum of the gradients.
void expect_sent_plus_residual_is_sum(const std::string& spec) {
  const size_t n = 500;
  auto codec = make_codec(parse_codec_spec(spec));
  auto* ef = dynamic_cast<ErrorFeedback*>(codec.get());
  ASSERT_NE(ef, nullptr) << spec;
  std::vector<double> sum_g(n, 0.0), sum_sent(n, 0.0);
  for (int step = 0; step < 30; ++step) {
    std::vector<float> g = gaussian_vector(n, 1000 + step);
    Payload p;
    codec->encode(4, g.data(), n, p);
    std::vector<float> sent(n);
    codec->decode(p, sent.data(), n);
    for (size_t i = 0; i < n; ++i) {
      sum_g[i] += g[i];
      sum_sent[i] += sent[i];
    }
  }
  std::span<const float> res = ef->residual(4);
  ASSERT_EQ(res.size(), n);
  for (size_t i = 0; i < n; ++i) {
    // Float rounding of the residual updates, relative to the magnitudes involved.
    double tol = 1e-5 * (1 + std::fabs(sum_sent[i]) + std::fabs(res[i]));
    ASSERT_NEAR(sum_sent[i] + res[i], sum_g[i], tol) << spec << " element " << i;
  }
}

TEST(ErrorFeedbackTest, SentPlusResidualEqualsSumOfGradients) {
  for (const char* spec : {"topk:0.05", "randomk:0.1", "sign", "qsgd:16+ef", "fp16+ef"}) {
    expect_sent_plus_residual_is_sum(spec);
  }
}

TEST(ErrorFeedbackTest, ResidualIsStateThatRoundTrips) {
  auto a = make_codec(parse_codec_spec("topk:0.1"));
  auto b = make_codec(parse_codec_spec("topk:0.1"));
  std::vector<float> g = gaussian_vector(100, 3);
  Payload pa, pb;
  a->encode(2, g.data(), g.size(), pa);
  CodecState st;
  a->save_state(st);
  ASSERT_EQ(st.count("ef/2"), 1u);
  b->load_state(st);
  a->encode(2, g.data(), g.size(), pa);
  b->encode(2, g.data(), g.size(), pb);
  EXPECT_EQ(pa.bytes, pb.bytes);
}

// Two workers minimize f(x) = (a1.x)^2 + (a2.x)^2 (convex, unique optimum 0), each sending the
// scaled sign of its own gradient. Every worker's sign vector is +-(1, -1), so without error
// feedback x1 + x2 never changes and the optimum is out of reach; with it the method converges
// (Karimireddy et al. 2019, counterexample to signSGD).
double distance_after_sign_descent(bool error_feedback) {
  const float a[2][2] = {{1.0f, -0.5f}, {-0.5f, 1.0f}};
  std::unique_ptr<Codec> worker[2];
  for (auto& w : worker) {
    w = std::make_unique<compress::SignCodec>();
    if (error_feedback) w = std::make_unique<ErrorFeedback>(std::move(w));
  }
  float x[2] = {1.0f, 1.0f};
  const float lr = 0.05f;
  for (int step = 0; step < 3000; ++step) {
    float avg[2] = {0, 0};
    for (int w = 0; w < 2; ++w) {
      float dot = a[w][0] * x[0] + a[w][1] * x[1];
      float g[2] = {2 * dot * a[w][0], 2 * dot * a[w][1]};
      Payload p;
      worker[w]->encode(0, g, 2, p);
      worker[w]->decode_add(p.view(), avg, 2);
    }
    x[0] -= lr * avg[0] / 2;
    x[1] -= lr * avg[1] / 2;
  }
  return std::hypot(x[0], x[1]);
}

TEST(ErrorFeedbackTest, SignWithoutFeedbackMissesTheOptimumAndWithItReachesIt) {
  double without = distance_after_sign_descent(false);
  double with = distance_after_sign_descent(true);
  EXPECT_GT(without, 1.4);  // |x| >= |x1 + x2| / sqrt(2) = sqrt(2)
  EXPECT_LT(with, 1e-2);
}

}  // namespace
}  // namespace dtrain
