// The concrete codecs (private; build them with make_codec). Wire formats: docs/compression.md.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dtrain/codec.h"

namespace dtrain::compress {

// none / fp16 / bf16: every element cast to the body type. Summable.
class CastCodec : public Codec {
 public:
  explicit CastCodec(CodecKind kind);  // kNone (float32 body), kFp16 or kBf16
  CodecKind kind() const override { return kind_; }
  std::string name() const override { return std::string(codec_kind_name(kind_)); }
  Aggregation aggregation() const override { return Aggregation::kSum; }
  DType body_dtype() const override { return dtype_; }
  bool unbiased() const override { return true; }  // up to round-to-nearest
  size_t encoded_size(size_t n) const override;
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;

 private:
  CodecKind kind_;
  DType dtype_;
};

// Number of elements top-k / random-k keep of n: ceil(ratio * n) clamped to [1, n] (0 if n = 0).
size_t kept_count(double ratio, size_t n);

// The k-th largest of |data[i]| (NaN ranking as +inf), 1 <= k <= n, exact; fast when k << n
// (Note [top-k selection] in sparse_codecs.cc). `scratch` is reused between calls.
float kth_largest_magnitude(const float* data, size_t n, size_t k, std::vector<float>& scratch);

// topk:R — the k largest magnitudes as (u32 index ascending, f32 value) pairs; ties go to the
// lower index. Biased; gathered.
class TopKCodec : public Codec {
 public:
  explicit TopKCodec(double ratio) : ratio_(ratio) {}
  CodecKind kind() const override { return CodecKind::kTopK; }
  std::string name() const override;
  Aggregation aggregation() const override { return Aggregation::kGather; }
  bool unbiased() const override { return false; }
  size_t encoded_size(size_t n) const override;
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;

 private:
  double ratio_;
  std::vector<float> magnitudes_;  // scratch
};

// randomk:R — k indices drawn uniformly without replacement from a seed that every rank derives
// alike (seed, tensor id, call count), so only the k f32 values travel and they are summable.
// Values are sent unscaled (biased, a contraction; use with error feedback).
class RandomKCodec : public Codec {
 public:
  RandomKCodec(double ratio, uint64_t seed) : ratio_(ratio), seed_(seed) {}
  CodecKind kind() const override { return CodecKind::kRandomK; }
  std::string name() const override;
  Aggregation aggregation() const override { return Aggregation::kSum; }
  DType body_dtype() const override { return DType::kFloat32; }
  bool unbiased() const override { return false; }
  size_t encoded_size(size_t n) const override;
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;
  void save_state(CodecState& out) const override;
  void load_state(const CodecState& in) override;

  // The sorted indices a payload with this seed selects (k of n).
  static std::vector<uint32_t> indices(uint64_t seed, size_t k, size_t n);

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;

 private:
  double ratio_;
  uint64_t seed_;
  std::map<TensorId, uint64_t> calls_;
};

// qsgd:LEVELS — per bucket of B elements one f32 norm; each element as a sign bit and a level
// q in [0, s] rounded up with probability (|x|/norm*s - floor), packed LSB-first in
// bit_width(s) + 1 bits. Unbiased; gathered.
class QsgdCodec : public Codec {
 public:
  QsgdCodec(uint32_t levels, uint32_t bucket, uint64_t seed)
      : levels_(levels), bucket_(bucket), seed_(seed) {}
  CodecKind kind() const override { return CodecKind::kQsgd; }
  std::string name() const override { return "qsgd:" + std::to_string(levels_); }
  Aggregation aggregation() const override { return Aggregation::kGather; }
  bool unbiased() const override { return true; }
  size_t encoded_size(size_t n) const override;
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;
  void save_state(CodecState& out) const override;
  void load_state(const CodecState& in) override;

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;

 private:
  uint32_t levels_;
  uint32_t bucket_;
  uint64_t seed_;  // already mixed with the rank
  std::map<TensorId, uint64_t> calls_;
};

// sign — scaled sign (EF-SignSGD): f32 scale = mean |x|, then one bit per element (1: x >= 0),
// 32 per u32 word. Biased; gathered.
class SignCodec : public Codec {
 public:
  CodecKind kind() const override { return CodecKind::kSign; }
  std::string name() const override { return "sign"; }
  Aggregation aggregation() const override { return Aggregation::kGather; }
  bool unbiased() const override { return false; }
  size_t encoded_size(size_t n) const override;
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;
};

// 2bit:T — MXNet's 2-bit quantization with its own residual per tensor: c = x + residual;
// c >= T sends +T (code 01), c <= -T sends -T (code 10), else 0 (code 00); residual = c - sent.
// 16 codes per u32 word, element i in bits 2*(i%16). Gathered.
class TwoBitCodec : public Codec {
 public:
  explicit TwoBitCodec(float threshold) : threshold_(threshold) {}
  CodecKind kind() const override { return CodecKind::kTwoBit; }
  std::string name() const override;
  Aggregation aggregation() const override { return Aggregation::kGather; }
  bool unbiased() const override { return false; }
  size_t encoded_size(size_t n) const override;
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;
  void save_state(CodecState& out) const override;
  void load_state(const CodecState& in) override;

  std::span<const float> residual(TensorId id) const;

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;

 private:
  float threshold_;
  std::map<TensorId, std::vector<float>> residuals_;
};

}  // namespace dtrain::compress
