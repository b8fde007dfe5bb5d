// A truncated or garbled payload is a typed error, never a crash or an out-of-bounds read.
#include <gtest/gtest.h>

#include <random>

#include "codec_test_util.h"
#include "dtrain/codec.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::gaussian_vector;

const char* const kSpecs[] = {"none",   "fp16",   "bf16", "topk:0.1", "randomk:0.1",
                              "qsgd:5", "qsgd:1", "sign", "2bit:0.2", "powersgd:2"};

TEST(PayloadCorruptionTest, TruncationAtEveryLengthIsCorruptError) {
  const size_t n = 1100;
  std::vector<float> x = gaussian_vector(n, 1);
  for (const char* spec : kSpecs) {
    auto codec = make_codec(parse_codec_spec(spec), CodecOptions{.powersgd_min_elements = 64});
    Payload p;
    codec->encode(0, x.data(), n, p);
    std::vector<float> out(n);
    EXPECT_NO_THROW(codec->decode(p, out.data(), n)) << spec;
    for (size_t len = 0; len < p.bytes.size(); len += 1 + len / 7) {
      EXPECT_THROW(codec->decode(p.view().first(len), out.data(), n), CorruptError)
          << spec << " truncated to " << len;
    }
    Payload longer = p;
    longer.bytes.push_back(0);
    EXPECT_THROW(codec->decode(longer, out.data(), n), CorruptError) << spec;
  }
}

TEST(PayloadCorruptionTest, FlippedBitsAreErrorsOrHarmless) {
  const size_t n = 300;
  std::vector<float> x = gaussian_vector(n, 2);
  std::mt19937_64 gen(3);
  for (const char* spec : kSpecs) {
    auto codec = make_codec(parse_codec_spec(spec), CodecOptions{.powersgd_min_elements = 64});
    Payload p;
    codec->encode(0, x.data(), n, p);
    std::vector<float> out(n);
    int errors = 0;
    const int trials = 300;
    for (int t = 0; t < trials; ++t) {
      Payload bad = p;
      int flips = 1 + static_cast<int>(gen() % 3);
      bool header_hit = false;
      for (int f = 0; f < flips; ++f) {
        size_t byte = gen() % bad.bytes.size();
        header_hit |= byte < kPayloadHeaderBytes;
        bad.bytes[byte] ^= static_cast<uint8_t>(1u << (gen() % 8));
      }
      if (bad.bytes == p.bytes) continue;
      try {
        codec->decode(bad, out.data(), n);
        // Only a summable body is outside the checksum (the allreduce rewrites it).
        EXPECT_TRUE(codec->summable() && !header_hit) << spec << " trial " << t;
      } catch (const CorruptError&) {
        ++errors;
      } catch (const MismatchError&) {
        ++errors;
      }
    }
    if (!codec->summable()) {
      EXPECT_GT(errors, trials * 9 / 10) << spec;
    }
  }
}

TEST(PayloadCorruptionTest, WrongCodecOrSizeIsMismatch) {
  std::vector<float> x = gaussian_vector(64, 4);
  auto topk = make_codec(parse_codec_spec("topk:0.1"));
  auto sign = make_codec(parse_codec_spec("sign"));
  Payload p;
  topk->encode(0, x.data(), 64, p);
  std::vector<float> out(64);
  EXPECT_THROW(sign->decode(p, out.data(), 64), MismatchError);
  EXPECT_THROW(topk->decode(p, out.data(), 63), MismatchError);
}

TEST(PayloadCorruptionTest, RandomBytesNeverCrash) {
  std::mt19937_64 gen(5);
  std::vector<float> out(200);
  for (const char* spec : kSpecs) {
    auto codec = make_codec(parse_codec_spec(spec));
    for (int t = 0; t < 200; ++t) {
      std::vector<uint8_t> junk(gen() % 600);
      for (auto& b : junk) b = static_cast<uint8_t>(gen());
      EXPECT_THROW(codec->decode(std::span<const uint8_t>(junk), out.data(), out.size()), Error)
          << spec;
    }
  }
}

}  // namespace
}  // namespace dtrain
