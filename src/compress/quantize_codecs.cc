// Quantizing codecs: QSGD (stochastic levels), scaled sign, MXNet-style 2-bit with residual.
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

size_t ceil_div(size_t a, size_t b) {
  return (a + b - 1) / b;
}

// Appends fixed-width codes LSB-first into a byte buffer of the exact size.
class BitWriter {
 public:
  explicit BitWriter(uint8_t* out) : out_(out) {}
  void put(uint32_t code, unsigned bits) {
    acc_ |= static_cast<uint64_t>(code) << used_;
    used_ += bits;
    while (used_ >= 8) {
      out_[pos_++] = static_cast<uint8_t>(acc_);
      acc_ >>= 8;
      used_ -= 8;
    }
  }
  void flush() {
    if (used_ > 0) out_[pos_++] = static_cast<uint8_t>(acc_);
  }

 private:
  uint8_t* out_;
  size_t pos_ = 0;
  uint64_t acc_ = 0;
  unsigned used_ = 0;
};

class BitReader {
 public:
  BitReader(const uint8_t* in, size_t size) : in_(in), size_(size) {}
  uint32_t get(unsigned bits) {
    while (used_ < bits) {
      acc_ |= static_cast<uint64_t>(pos_ < size_ ? in_[pos_] : 0) << used_;
      ++pos_;
      used_ += 8;
    }
    uint32_t v = static_cast<uint32_t>(acc_ & ((uint64_t{1} << bits) - 1));
    acc_ >>= bits;
    used_ -= bits;
    return v;
  }
  // The bits read past the last code (must be zero padding).
  uint64_t leftover() const { return acc_; }

 private:
  const uint8_t* in_;
  size_t size_;
  size_t pos_ = 0;
  uint64_t acc_ = 0;
  unsigned used_ = 0;
};

unsigned qsgd_bits(uint32_t levels) {
  return std::bit_width(levels) + 1;
}

}  // namespace

// ---- QSGD --------------------------------------------------------------------------------

size_t QsgdCodec::encoded_size(size_t n) const {
  return kPayloadHeaderBytes + 4 * ceil_div(n, bucket_) + ceil_div(n * qsgd_bits(levels_), 8);
}

void QsgdCodec::encode(TensorId id, const float* data, size_t n, Payload& out) {
  size_t buckets = ceil_div(n, bucket_);
  unsigned bits = qsgd_bits(levels_);
  std::span<uint8_t> body =
      begin_payload(out, n, bucket_, levels_, encoded_size(n) - kPayloadHeaderBytes);
  Rng rng(stream_seed(seed_, id, calls_[id]++));
  BitWriter writer(body.data() + 4 * buckets);
  const float s = static_cast<float>(levels_);
  for (size_t b = 0; b < buckets; ++b) {
    size_t lo = b * bucket_, hi = std::min(n, lo + bucket_);
    double sq = 0;
    for (size_t i = lo; i < hi; ++i) sq += static_cast<double>(data[i]) * data[i];
    float norm = static_cast<float>(std::sqrt(sq));
    store_le<float>(body.data() + 4 * b, norm);
    float scale = norm > 0 ? s / norm : 0.0f;
    for (size_t i = lo; i < hi; ++i) {
      float level = std::fabs(data[i]) * scale;  // in [0, s] up to rounding
      float floor_level = std::floor(level);
      uint32_t q = static_cast<uint32_t>(floor_level) + (rng.uniform() < level - floor_level);
      q = std::min(q, levels_);
      writer.put((q << 1) | (data[i] < 0), bits);
    }
  }
  writer.flush();
  seal(out);
}

void QsgdCodec::decode_body(const Header& header, std::span<const uint8_t> body, float* out,
                            size_t n, bool accumulate) const {
  uint32_t levels = header.param;
  uint64_t bucket = header.aux;
  if (levels == 0 || levels > 32767 || bucket == 0 || bucket > UINT32_MAX) {
    throw CorruptError(name() + " payload: bad levels or bucket size");
  }
  size_t buckets = ceil_div(n, bucket);
  unsigned bits = qsgd_bits(levels);
  if (body.size() != 4 * buckets + ceil_div(n * bits, 8)) {
    throw CorruptError(name() + " payload: body of " + std::to_string(body.size()) +
                       " bytes does not match " + std::to_string(n) + " elements");
  }
  BitReader reader(body.data() + 4 * buckets, body.size() - 4 * buckets);
  const float inv_s = 1.0f / static_cast<float>(levels);
  for (size_t b = 0; b < buckets; ++b) {
    float norm = load_le<float>(body.data() + 4 * b);
    if (norm < 0) throw CorruptError(name() + " payload: negative norm");
    size_t lo = b * bucket, hi = std::min<size_t>(n, lo + bucket);
    for (size_t i = lo; i < hi; ++i) {
      uint32_t code = reader.get(bits);
      uint32_t q = code >> 1;
      if (q > levels) {
        throw CorruptError(name() + " payload: level " + std::to_string(q) + " above " +
                           std::to_string(levels));
      }
      float v = norm * (static_cast<float>(q) * inv_s);
      if (code & 1) v = -v;
      out[i] = accumulate ? out[i] + v : v;
    }
  }
  if (reader.leftover() != 0) throw CorruptError(name() + " payload: nonzero padding bits");
}

void QsgdCodec::save_state(CodecState& out) const {
  save_counters("qsgd.calls", calls_, out);
}

void QsgdCodec::load_state(const CodecState& in) {
  load_counters("qsgd.calls", in, calls_);
}

// ---- scaled sign -------------------------------------------------------------------------

size_t SignCodec::encoded_size(size_t n) const {
  return kPayloadHeaderBytes + 4 + 4 * ceil_div(n, 32);
}

void SignCodec::encode(TensorId, const float* data, size_t n, Payload& out) {
  std::span<uint8_t> body = begin_payload(out, n, 0, 0, encoded_size(n) - kPayloadHeaderBytes);
  double l1 = 0;
  for (size_t i = 0; i < n; ++i) l1 += std::fabs(data[i]);
  store_le<float>(body.data(), n ? static_cast<float>(l1 / static_cast<double>(n)) : 0.0f);
  for (size_t w = 0; w < ceil_div(n, 32); ++w) {
    uint32_t word = 0;
    size_t lo = 32 * w, hi = std::min(n, lo + 32);
    for (size_t i = lo; i < hi; ++i) word |= static_cast<uint32_t>(data[i] >= 0) << (i - lo);
    store_le<uint32_t>(body.data() + 4 + 4 * w, word);
  }
  seal(out);
}

void SignCodec::decode_body(const Header&, std::span<const uint8_t> body, float* out, size_t n,
                            bool accumulate) const {
  size_t words = ceil_div(n, 32);
  if (body.size() != 4 + 4 * words) {
    throw CorruptError("sign payload: body of " + std::to_string(body.size()) +
                       " bytes does not match " + std::to_string(n) + " elements");
  }
  float scale = load_le<float>(body.data());
  if (scale < 0) throw CorruptError("sign payload: negative scale");
  if (n % 32 && load_le<uint32_t>(body.data() + 4 * words) >> (n % 32)) {
    throw CorruptError("sign payload: nonzero padding bits");
  }
  if (!accumulate) std::fill(out, out + n, 0.0f);
  const float values[2] = {-scale, scale};
  for (size_t w = 0; w < words; ++w) {
    uint32_t word = load_le<uint32_t>(body.data() + 4 + 4 * w);
    float* o = out + 32 * w;
    size_t count = std::min<size_t>(32, n - 32 * w);
    for (size_t b = 0; b < count; ++b) o[b] += values[(word >> b) & 1];
  }
}

// ---- 2-bit -------------------------------------------------------------------------------

std::string TwoBitCodec::name() const {
  char buf[48];
  std::snprintf(buf, sizeof buf, "2bit:%g", threshold_);
  return buf;
}

size_t TwoBitCodec::encoded_size(size_t n) const {
  return kPayloadHeaderBytes + 4 * ceil_div(n, 16);
}

void TwoBitCodec::encode(TensorId id, const float* data, size_t n, Payload& out) {
  std::vector<float>& residual = residuals_[id];
  if (residual.empty()) residual.assign(n, 0.0f);
  if (residual.size() != n) {
    throw InvalidArgumentError(name() + ": tensor " + std::to_string(id) + " has " +
                               std::to_string(n) + " elements, its residual " +
                               std::to_string(residual.size()));
  }
  std::span<uint8_t> body =
      begin_payload(out, n, 0, std::bit_cast<uint32_t>(threshold_), 4 * ceil_div(n, 16));
  const float t = threshold_;
  for (size_t w = 0; w < ceil_div(n, 16); ++w) {
    uint32_t word = 0;
    size_t lo = 16 * w, hi = std::min(n, lo + 16);
    for (size_t i = lo; i < hi; ++i) {
      float c = data[i] + residual[i];
      uint32_t code = 0;
      if (c >= t) {
        code = 1;
        c -= t;
      } else if (c <= -t) {
        code = 2;
        c += t;
      }
      residual[i] = c;
      word |= code << (2 * (i - lo));
    }
    store_le<uint32_t>(body.data() + 4 * w, word);
  }
  seal(out);
}

void TwoBitCodec::decode_body(const Header& header, std::span<const uint8_t> body, float* out,
                              size_t n, bool accumulate) const {
  float t = std::bit_cast<float>(header.param);
  if (!(t > 0) || !std::isfinite(t)) throw CorruptError(name() + " payload: bad threshold");
  size_t words = ceil_div(n, 16);
  if (body.size() != 4 * words) {
    throw CorruptError(name() + " payload: body of " + std::to_string(body.size()) +
                       " bytes does not match " + std::to_string(n) + " elements");
  }
  for (size_t w = 0; w < words; ++w) {
    uint32_t word = load_le<uint32_t>(body.data() + 4 * w);
    // Codes 11 are invalid; so are codes past the last element.
    if (word & (word >> 1) & 0x55555555u) throw CorruptError(name() + " payload: invalid code 11");
    size_t valid = std::min<size_t>(16, n - 16 * w);
    if (valid < 16 && (word >> (2 * valid))) {
      throw CorruptError(name() + " payload: nonzero padding bits");
    }
  }
  if (!accumulate) std::fill(out, out + n, 0.0f);
  const float values[4] = {0.0f, t, -t, 0.0f};
  for (size_t w = 0; w < words; ++w) {
    uint32_t word = load_le<uint32_t>(body.data() + 4 * w);
    float* o = out + 16 * w;
    size_t count = std::min<size_t>(16, n - 16 * w);
    for (size_t b = 0; b < count; ++b) o[b] += values[(word >> (2 * b)) & 3];
  }
}

std::span<const float> TwoBitCodec::residual(TensorId id) const {
  auto it = residuals_.find(id);
  if (it == residuals_.end()) return {};
  return it->second;
}

void TwoBitCodec::save_state(CodecState& out) const {
  save_vectors("2bit", residuals_, out);
}

void TwoBitCodec::load_state(const CodecState& in) {
  load_vectors("2bit", in, residuals_);
}

}  // namespace dtrain::compress
