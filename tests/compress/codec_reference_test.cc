// Each codec against a plain reference implementation written here from its definition.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "codec_test_util.h"
#include "compress/codecs.h"
#include "dtrain/codec.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::gaussian_vector;

std::vector<float> round_trip(Codec& codec, const std::vector<float>& x, TensorId id = 0) {
  Payload p;
  codec.encode(id, x.data(), x.size(), p);
  EXPECT_EQ(p.bytes.size(), codec.encoded_size(x.size()));
  std::vector<float> out(x.size(), -7.0f);
  codec.decode(p, out.data(), out.size());
  return out;
}

TEST(CodecReferenceTest, Fp16AndBf16MatchElementwiseCasts) {
  std::vector<float> x = gaussian_vector(1001, 1, 3.0f);
  x[0] = 0.0f;
  x[1] = 70000.0f;  // overflows fp16 to inf
  x[2] = 1e-8f;     // fp16 subnormal range
  compress::CastCodec fp16(CodecKind::kFp16), bf16(CodecKind::kBf16), none(CodecKind::kNone);
  std::vector<float> h = round_trip(fp16, x), b = round_trip(bf16, x), f = round_trip(none, x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], half_to_float(float_to_half(x[i]))) << i;
    EXPECT_EQ(b[i], bf16_to_float(float_to_bf16(x[i]))) << i;
    EXPECT_EQ(f[i], x[i]) << i;
  }
  EXPECT_EQ(fp16.encoded_size(1001), kPayloadHeaderBytes + 2002);
  EXPECT_TRUE(fp16.summable());
  EXPECT_EQ(fp16.body_dtype(), DType::kFloat16);
}

TEST(CodecReferenceTest, TopKKeepsExactlyTheKLargestMagnitudes) {
  for (size_t n : {1u, 7u, 100u, 4099u}) {
    std::vector<float> x = gaussian_vector(n, n);
    compress::TopKCodec codec(0.05);
    size_t k = compress::kept_count(0.05, n);
    EXPECT_EQ(k, std::max<size_t>(1, static_cast<size_t>(std::ceil(0.05 * n - 1e-9))));
    std::vector<float> y = round_trip(codec, x);
    // Reference: sort indices by magnitude (desc), then index (asc); keep the first k.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return std::fabs(x[a]) > std::fabs(x[b]); });
    std::vector<float> ref(n, 0.0f);
    for (size_t j = 0; j < k; ++j) ref[order[j]] = x[order[j]];
    EXPECT_EQ(y, ref) << n;
    EXPECT_EQ(std::count_if(y.begin(), y.end(), [](float v) { return v != 0; }), k);
  }
}

// Large tensors take the sampled-threshold path (Note [top-k selection]): it must give exactly
// the full selection's answer, also where the sample misleads (magnitudes sorted, so the strided
// sample sees mostly small values; heavy ties; a few huge outliers).
TEST(CodecReferenceTest, TopKSampledSelectionIsExact) {
  const size_t n = 1u << 20;
  std::vector<std::vector<float>> inputs;
  inputs.push_back(gaussian_vector(n, 11));
  std::vector<float> sorted = gaussian_vector(n, 12);
  std::sort(sorted.begin(), sorted.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); });
  inputs.push_back(sorted);
  std::vector<float> ties(n);
  for (size_t i = 0; i < n; ++i) ties[i] = static_cast<float>(i % 5) - 2.0f;
  inputs.push_back(ties);
  std::vector<float> outliers(n, 1e-3f);
  for (size_t i = 0; i < n; i += 9973) outliers[i] = 1e6f + static_cast<float>(i);
  inputs.push_back(outliers);
  for (double ratio : {0.001, 0.01, 0.05}) {
    const size_t k = compress::kept_count(ratio, n);
    for (size_t c = 0; c < inputs.size(); ++c) {
      std::vector<float> scratch;
      float t = compress::kth_largest_magnitude(inputs[c].data(), n, k, scratch);
      std::vector<float> m(n);
      for (size_t i = 0; i < n; ++i) m[i] = std::fabs(inputs[c][i]);
      std::nth_element(m.begin(), m.begin() + (k - 1), m.end(), std::greater<float>());
      EXPECT_EQ(t, m[k - 1]) << "case " << c << " ratio " << ratio;
    }
  }
}

TEST(CodecReferenceTest, TopKBreaksTiesTowardLowerIndices) {
  std::vector<float> x = {1, -2, 2, 0.5f, -2, 2};
  compress::TopKCodec codec(0.5);  // k = 3 of the four magnitude-2 entries
  EXPECT_EQ(round_trip(codec, x), (std::vector<float>{0, -2, 2, 0, -2, 0}));
}

TEST(CodecReferenceTest, RandomKPicksDistinctSeededIndicesAgreedAcrossRanks) {
  const size_t n = 1000, k = 50;
  std::vector<float> x = gaussian_vector(n, 3);
  compress::RandomKCodec a(0.05, 42), b(0.05, 42);  // two ranks, same seed
  std::vector<size_t> hits(n, 0);
  for (int step = 0; step < 200; ++step) {
    Payload pa, pb;
    a.encode(7, x.data(), n, pa);
    b.encode(7, x.data(), n, pb);
    ASSERT_EQ(pa.bytes, pb.bytes);  // same indices, same values
    ASSERT_EQ(pa.bytes.size(), kPayloadHeaderBytes + 4 * k);
    std::vector<float> y(n);
    a.decode(pa, y.data(), n);
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
      if (y[i] != 0) {
        EXPECT_EQ(y[i], x[i]);
        ++hits[i];
        ++kept;
      }
    }
    ASSERT_EQ(kept, k);
  }
  // Each index is picked with probability k/n = 0.05: 10 of 200 draws expected.
  size_t never = std::count(hits.begin(), hits.end(), 0u);
  EXPECT_LT(never, 5u);  // P(an index is never picked) = 0.95^200 ~ 3.5e-5
  EXPECT_LT(*std::max_element(hits.begin(), hits.end()), 35u);
  // Reference indices: Floyd's sampling gives k distinct sorted values.
  std::vector<uint32_t> idx = compress::RandomKCodec::indices(99, k, n);
  EXPECT_EQ(idx.size(), k);
  EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
  EXPECT_EQ(std::set<uint32_t>(idx.begin(), idx.end()).size(), k);
}

TEST(CodecReferenceTest, QsgdMatchesItsDefinitionAndIsUnbiased) {
  const size_t n = 700;  // two buckets of 512 and 188
  const uint32_t s = 4;
  std::vector<float> x = gaussian_vector(n, 5);
  compress::QsgdCodec codec(s, 512, 11);
  std::vector<double> mean(n, 0.0);
  const int draws = 4000;
  for (int d = 0; d < draws; ++d) {
    std::vector<float> y = round_trip(codec, x);
    for (size_t b = 0; b < 2; ++b) {
      size_t lo = b * 512, hi = std::min(n, lo + 512);
      double norm = 0;
      for (size_t i = lo; i < hi; ++i) norm += double(x[i]) * x[i];
      norm = std::sqrt(norm);
      for (size_t i = lo; i < hi; ++i) {
        // Reference: y is sign(x) * norm * q / s with q one of the two levels around |x|/norm*s.
        double level = std::fabs(x[i]) / norm * s;
        double q = std::fabs(y[i]) / norm * s;
        ASSERT_NEAR(q, std::round(q), 1e-4);
        ASSERT_TRUE(std::round(q) == std::floor(level) || std::round(q) == std::ceil(level))
            << i << " level " << level << " got " << q;
        if (y[i] != 0) {
          ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i]));
        }
      }
    }
    for (size_t i = 0; i < n; ++i) mean[i] += y[i];
  }
  // Mean of decode(encode(x)) -> x: per element the draw's sd is at most norm/(2s) ~ 2.8, so the
  // sd of the mean over 4000 draws is <= 0.045; allow 5 sigma.
  double worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(mean[i] / draws - x[i]));
  EXPECT_LT(worst, 0.23);
  // The whole-vector error shrinks like 1/sqrt(draws): compare to one draw's error.
  double err_mean = 0, err_one = 0;
  std::vector<float> one = round_trip(codec, x);
  for (size_t i = 0; i < n; ++i) {
    err_mean += std::pow(mean[i] / draws - x[i], 2);
    err_one += std::pow(one[i] - x[i], 2);
  }
  EXPECT_LT(err_mean, err_one / 1000);
  EXPECT_EQ(codec.encoded_size(n), kPayloadHeaderBytes + 8 + (n * 4 + 7) / 8);  // 4 bits each
}

TEST(CodecReferenceTest, SignSendsMeanMagnitudeTimesSign) {
  std::vector<float> x = gaussian_vector(77, 6);
  x[3] = 0.0f;
  compress::SignCodec codec;
  std::vector<float> y = round_trip(codec, x);
  double l1 = 0;
  for (float v : x) l1 += std::fabs(v);
  float scale = static_cast<float>(l1 / x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i] >= 0 ? scale : -scale) << i;
  EXPECT_EQ(codec.encoded_size(77), kPayloadHeaderBytes + 4 + 4 * 3);
}

TEST(CodecReferenceTest, TwoBitFollowsTheResidualLaw) {
  compress::TwoBitCodec codec(0.5f);
  std::vector<float> g = {0.4f, -0.4f, 0.6f, -0.7f, 0.0f};
  std::vector<float> y = round_trip(codec, g, 3);
  // 0.4 is under the threshold: sends 0, keeps 0.4; 0.6 sends 0.5, keeps 0.1.
  EXPECT_EQ(y, (std::vector<float>{0.0f, 0.0f, 0.5f, -0.5f, 0.0f}));
  std::span<const float> res = codec.residual(3);
  EXPECT_FLOAT_EQ(res[0], 0.4f);
  EXPECT_FLOAT_EQ(res[1], -0.4f);
  EXPECT_NEAR(res[2], 0.1f, 1e-6);
  EXPECT_NEAR(res[3], -0.2f, 1e-6);
  // Pushing 0.4 again: 0.8 crosses the threshold, sends 0.5 and carries 0.3.
  y = round_trip(codec, g, 3);
  EXPECT_EQ(y[0], 0.5f);
  EXPECT_EQ(y[1], -0.5f);
  EXPECT_NEAR(codec.residual(3)[0], 0.3f, 1e-6);
  // Another tensor id has its own residual.
  EXPECT_EQ(round_trip(codec, {0.4f}, 4)[0], 0.0f);
  EXPECT_EQ(codec.encoded_size(17), kPayloadHeaderBytes + 8);  // 16 values per u32 word
}

TEST(CodecReferenceTest, TwoBitMatchesAReferenceLoopOverManySteps) {
  const size_t n = 333;
  compress::TwoBitCodec codec(0.3f);
  std::vector<float> ref_res(n, 0.0f);
  for (int step = 0; step < 20; ++step) {
    std::vector<float> g = gaussian_vector(n, 100 + step, 0.2f);
    std::vector<float> y = round_trip(codec, g);
    for (size_t i = 0; i < n; ++i) {
      float c = g[i] + ref_res[i];
      float sent = c >= 0.3f ? 0.3f : c <= -0.3f ? -0.3f : 0.0f;
      ref_res[i] = c - sent;
      ASSERT_EQ(y[i], sent) << step << " " << i;
    }
  }
}

TEST(CodecReferenceTest, StateSavesAndLoads) {
  compress::TwoBitCodec a(0.5f), b(0.5f);
  std::vector<float> g = gaussian_vector(40, 8, 0.3f);
  round_trip(a, g, 1);
  CodecState st;
  a.save_state(st);
  b.load_state(st);
  EXPECT_EQ(round_trip(a, g, 1), round_trip(b, g, 1));

  compress::RandomKCodec ra(0.1, 5), rb(0.1, 5);
  round_trip(ra, g, 9);
  round_trip(ra, g, 9);
  CodecState rs;
  ra.save_state(rs);
  rb.load_state(rs);
  Payload pa, pb;
  ra.encode(9, g.data(), g.size(), pa);
  rb.encode(9, g.data(), g.size(), pb);
  EXPECT_EQ(pa.bytes, pb.bytes);

  CodecState bad = {{"randomk.calls/9", {1, 2}}};
  EXPECT_THROW(rb.load_state(bad), InvalidArgumentError);
}

}  // namespace
}  // namespace dtrain
