// top-k and random-k sparsification.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "compress/codec_state.h"
#include "compress/codecs.h"
#include "compress/payload_format.h"
#include "compress/rng.h"
#include "dtrain/error.h"

namespace dtrain::compress {

namespace {

void check_index_range(std::string_view codec, size_t n) {
  if (n > UINT32_MAX) {
    throw InvalidArgumentError(std::string(codec) + ": tensors of more than 2^32 elements are " +
                               "not supported (u32 indices); split the bucket");
  }
}

// Magnitude used for ranking; NaN ranks first so that a NaN gradient is not silently dropped.
inline float rank_magnitude(float x) {
  return std::isnan(x) ? INFINITY : std::fabs(x);
}

std::string ratio_text(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", r);
  return buf;
}

}  // namespace

// Note [top-k selection]
// The exact k-th largest magnitude of n values. A selection over all n (std::nth_element on a
// copy of the magnitudes) costs ~10-60 ns per element at tens of millions of elements (random
// access, cache misses), more than a 1 Gbit/s link needs to send the dense tensor. When k is a
// small fraction of a large n we instead estimate the threshold from a strided sample of 64 Ki
// magnitudes, pick a sample rank well past k's share (so the true k-th value lies above the
// estimate with near certainty), gather the magnitudes >= that estimate in one streaming pass,
// and select the k-th among those candidates only. If fewer than k candidates came through (the
// sample misled us, e.g. a tensor sorted by magnitude), we fall back to the full selection, so
// the answer is always exact.
float kth_largest_magnitude(const float* data, size_t n, size_t k, std::vector<float>& scratch) {
  constexpr size_t kSample = 64 * 1024;
  auto full = [&] {
    scratch.resize(n);
    for (size_t i = 0; i < n; ++i) scratch[i] = rank_magnitude(data[i]);
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
    return scratch[k - 1];
  };
  if (n < 8 * kSample || k > n / 16) return full();
  // Sample rank: twice k's expected share plus a margin of a few standard deviations.
  const double share = static_cast<double>(k) / static_cast<double>(n) * kSample;
  const size_t rank = std::min(kSample - 1, static_cast<size_t>(2 * share + 8 * std::sqrt(share) + 16));
  scratch.resize(kSample);
  const size_t stride = n / kSample;
  for (size_t j = 0; j < kSample; ++j) scratch[j] = rank_magnitude(data[j * stride + (j * 7919) % stride]);
  std::nth_element(scratch.begin(), scratch.begin() + rank, scratch.end(), std::greater<float>());
  const float estimate = scratch[rank];
  scratch.clear();
  for (size_t i = 0; i < n; ++i) {
    const float m = rank_magnitude(data[i]);
    if (m >= estimate) scratch.push_back(m);
  }
  if (scratch.size() < k) return full();
  std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
  return scratch[k - 1];
}

size_t kept_count(double ratio, size_t n) {
  if (n == 0) return 0;
  double k = std::ceil(ratio * static_cast<double>(n) - 1e-9);
  return std::clamp<size_t>(static_cast<size_t>(std::max(k, 1.0)), 1, n);
}

// ---- top-k -------------------------------------------------------------------------------

std::string TopKCodec::name() const {
  return "topk:" + ratio_text(ratio_);
}

size_t TopKCodec::encoded_size(size_t n) const {
  return kPayloadHeaderBytes + 8 * kept_count(ratio_, n);
}

void TopKCodec::encode(TensorId, const float* data, size_t n, Payload& out) {
  check_index_range(name(), n);
  size_t k = kept_count(ratio_, n);
  std::span<uint8_t> body = begin_payload(out, n, 0, static_cast<uint32_t>(k), 8 * k);
  if (k > 0) {
    // The k-th largest magnitude t: keep every |x| > t, then |x| == t in index order until k.
    float t = kth_largest_magnitude(data, n, k, magnitudes_);
    size_t above = 0;
    for (size_t i = 0; i < n; ++i) above += rank_magnitude(data[i]) > t;
    size_t ties = k - above;
    uint8_t* idx = body.data();
    uint8_t* val = body.data() + 4 * k;
    size_t j = 0;
    for (size_t i = 0; i < n && j < k; ++i) {
      float m = rank_magnitude(data[i]);
      if (m > t || (m == t && ties > 0)) {
        if (m == t) --ties;
        store_le<uint32_t>(idx + 4 * j, static_cast<uint32_t>(i));
        store_le<float>(val + 4 * j, data[i]);
        ++j;
      }
    }
  }
  seal(out);
}

void TopKCodec::decode_body(const Header& header, std::span<const uint8_t> body, float* out,
                            size_t n, bool accumulate) const {
  size_t k = header.param;
  if (k > n || body.size() != 8 * k) {
    throw CorruptError(name() + " payload: " + std::to_string(k) + " entries in a body of " +
                       std::to_string(body.size()) + " bytes for " + std::to_string(n) +
                       " elements");
  }
  const uint8_t* idx = body.data();
  const uint8_t* val = body.data() + 4 * k;
  // Validate before writing so a bad payload leaves `out` untouched.
  int64_t prev = -1;
  for (size_t j = 0; j < k; ++j) {
    uint32_t i = load_le<uint32_t>(idx + 4 * j);
    if (i >= n || static_cast<int64_t>(i) <= prev) {
      throw CorruptError(name() + " payload: index " + std::to_string(i) +
                         " out of range or not ascending");
    }
    prev = i;
  }
  if (!accumulate) std::fill(out, out + n, 0.0f);
  for (size_t j = 0; j < k; ++j) {
    out[load_le<uint32_t>(idx + 4 * j)] += load_le<float>(val + 4 * j);
  }
}

// ---- random-k ----------------------------------------------------------------------------

std::string RandomKCodec::name() const {
  return "randomk:" + ratio_text(ratio_);
}

size_t RandomKCodec::encoded_size(size_t n) const {
  return kPayloadHeaderBytes + 4 * kept_count(ratio_, n);
}

std::vector<uint32_t> RandomKCodec::indices(uint64_t seed, size_t k, size_t n) {
  // Floyd's sampling of k distinct values in [0, n), marked in a bitmap, read back in order.
  std::vector<uint64_t> bits((n + 63) / 64, 0);
  Rng rng(seed);
  for (size_t j = n - k; j < n; ++j) {
    uint64_t t = rng.below(j + 1);
    uint64_t pick = (bits[t >> 6] >> (t & 63)) & 1 ? j : t;
    bits[pick >> 6] |= uint64_t{1} << (pick & 63);
  }
  std::vector<uint32_t> out;
  out.reserve(k);
  for (size_t w = 0; w < bits.size(); ++w) {
    for (uint64_t b = bits[w]; b; b &= b - 1) {
      out.push_back(static_cast<uint32_t>(64 * w + std::countr_zero(b)));
    }
  }
  return out;
}

void RandomKCodec::encode(TensorId id, const float* data, size_t n, Payload& out) {
  check_index_range(name(), n);
  size_t k = kept_count(ratio_, n);
  uint64_t seed = stream_seed(seed_, id, calls_[id]++);
  std::span<uint8_t> body = begin_payload(out, n, seed, static_cast<uint32_t>(k), 4 * k);
  std::vector<uint32_t> idx = indices(seed, k, n);
  for (size_t j = 0; j < k; ++j) store_le<float>(body.data() + 4 * j, data[idx[j]]);
  seal(out);
}

void RandomKCodec::decode_body(const Header& header, std::span<const uint8_t> body, float* out,
                               size_t n, bool accumulate) const {
  size_t k = header.param;
  if (k > n || body.size() != 4 * k) {
    throw CorruptError(name() + " payload: " + std::to_string(k) + " values in a body of " +
                       std::to_string(body.size()) + " bytes for " + std::to_string(n) +
                       " elements");
  }
  std::vector<uint32_t> idx = indices(header.aux, k, n);
  if (!accumulate) std::fill(out, out + n, 0.0f);
  for (size_t j = 0; j < k; ++j) out[idx[j]] += load_le<float>(body.data() + 4 * j);
}

void RandomKCodec::save_state(CodecState& out) const {
  save_counters("randomk.calls", calls_, out);
}

void RandomKCodec::load_state(const CodecState& in) {
  load_counters("randomk.calls", in, calls_);
}

}  // namespace dtrain::compress
