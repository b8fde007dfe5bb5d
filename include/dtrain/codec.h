// Codec: gradient compression over raw float buffers (no LibTorch).
//
// A codec turns n floats into a Payload (bytes: a versioned 40-byte header, then a codec-specific
// body; the layout is in docs/compression.md) and back. decode() validates everything it reads
// and throws CorruptError on a truncated or garbled payload (MismatchError on an intact payload
// from a differently configured codec); it never reads out of bounds.
//
// Codecs may keep state per tensor id (a DDP bucket index, a parameter index): residuals of
// error feedback, per-tensor call counters that seed random choices, PowerSGD's warm-start Q.
// That state belongs to the training state: save_state()/load_state() move it to and from a
// checkpoint as name -> floats. Every rank must encode the same tensor ids in the same order so
// that counters (and so random-k's index choice) agree across ranks.
//
// Thread safety: a codec is not thread-safe; one owner calls it (GradientCompressor serializes).
//
// Spec strings (parse_codec_spec):
//   none | fp16 | bf16 | topk:R | randomk:R | qsgd:LEVELS | sign | 2bit:THRESHOLD | powersgd:RANK
// R is the kept fraction in (0, 1] (e.g. 0.01), LEVELS an integer in [1, 32767], THRESHOLD > 0,
// RANK an integer in [1, 1024]. A suffix "+ef" forces error feedback on, "+noef" off; without
// one, error feedback is on for the biased codecs that need it (topk, randomk, sign) and off
// otherwise (2bit and powersgd keep their own residuals, the rest are unbiased or nearly exact).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/dtype.h"

namespace dtrain {

// Identifies a tensor (bucket) whose state a codec keeps across steps.
using TensorId = uint64_t;

// Checkpointable codec state: name -> values. Names are "<kind>/<tensor id>[/<part>]".
using CodecState = std::map<std::string, std::vector<float>>;

// Only ever grows at the end (the value travels in payload headers).
enum class CodecKind : uint8_t {
  kNone = 0,
  kFp16 = 1,
  kBf16 = 2,
  kTopK = 3,
  kRandomK = 4,
  kQsgd = 5,
  kSign = 6,
  kTwoBit = 7,
  kPowerSgd = 8,
};

std::string_view codec_kind_name(CodecKind kind);

// How the ranks combine their payloads in a compressed allreduce.
enum class Aggregation : uint8_t {
  kSum,      // payload bodies sum elementwise: allreduce the body in body_dtype(), decode once
  kGather,   // allgather the payloads; every rank decodes all of them in rank order and sums
  kLowRank,  // PowerSGD's own algorithm (two allreduces with an orthogonalization between)
};

// Size in bytes of the header that starts every payload.
inline constexpr size_t kPayloadHeaderBytes = 40;

// An encoded tensor: header then body. The body starts 8-byte aligned relative to bytes.data().
struct Payload {
  std::vector<uint8_t> bytes;

  std::span<const uint8_t> view() const { return {bytes.data(), bytes.size()}; }
  // The body (empty span when the payload is shorter than a header).
  std::span<uint8_t> body();
  std::span<const uint8_t> body() const;
};

enum class ErrorFeedbackMode : uint8_t { kAuto, kOn, kOff };

// A parsed spec string. Fields not used by `kind` keep their defaults.
struct CodecSpec {
  CodecKind kind = CodecKind::kNone;
  double ratio = 0.01;     // topk, randomk: fraction of elements kept
  uint32_t levels = 16;    // qsgd: quantization levels s (values |x|/norm * s rounded randomly)
  float threshold = 0.5f;  // 2bit: magnitude sent as +-threshold
  uint32_t rank = 4;       // powersgd: rank of the approximation
  ErrorFeedbackMode error_feedback = ErrorFeedbackMode::kAuto;

  // Whether the codec built from this spec is wrapped in ErrorFeedback.
  bool uses_error_feedback() const;
};

// Throws InvalidArgumentError naming the problem and the grammar.
CodecSpec parse_codec_spec(std::string_view spec);
// The canonical spec string ("topk:0.01+ef" only when the suffix differs from the default).
std::string to_string(const CodecSpec& spec);

// Options of codecs built by make_codec.
struct CodecOptions {
  // Seed of every random choice. Must be the same on every rank (random-k's indices and
  // PowerSGD's initial Q must agree across ranks).
  uint64_t seed = 0x64747261696e;
  // This rank: mixed into the seed of per-rank randomness (QSGD's rounding draws), so ranks
  // draw independently.
  int rank = 0;
  // PowerSGD: matrices with fewer elements than this, or whose smaller side is <= the rank,
  // travel dense.
  size_t powersgd_min_elements = 1024;
  // QSGD: elements per bucket that share one norm (smaller = less variance, more bytes).
  uint32_t qsgd_bucket = 512;
};

class Codec {
 public:
  virtual ~Codec() = default;

  virtual CodecKind kind() const = 0;
  // The spec string this codec was built from, e.g. "topk:0.01".
  virtual std::string name() const = 0;
  virtual Aggregation aggregation() const = 0;
  bool summable() const { return aggregation() == Aggregation::kSum; }
  // For kSum codecs: the element type of the body that the allreduce sums.
  virtual DType body_dtype() const { return DType::kUInt8; }
  // E[decode(encode(x))] == x (over the codec's random draws).
  virtual bool unbiased() const = 0;

  // Exact size in bytes (header included) of the payload encode() makes for n elements.
  virtual size_t encoded_size(size_t n) const = 0;

  // Encodes data[0..n) of tensor `id` into out (replacing its bytes). May update per-tensor state.
  virtual void encode(TensorId id, const float* data, size_t n, Payload& out) = 0;

  // out[0..n) = the decoded payload. Throws CorruptError / MismatchError (see above), including
  // when the payload does not hold exactly n elements; after a throw, out's contents are
  // unspecified (the frame is checked before any write, some body checks run while decoding).
  void decode(std::span<const uint8_t> payload, float* out, size_t n) const;
  void decode(const Payload& payload, float* out, size_t n) const {
    decode(payload.view(), out, n);
  }
  // out[0..n) += the decoded payload (used to sum gathered payloads without a scratch buffer).
  void decode_add(std::span<const uint8_t> payload, float* out, size_t n) const;

  virtual void save_state(CodecState& out) const {}
  // Replaces the state of this codec's kind with what `in` holds; unknown names are ignored
  // (they belong to other codecs); a value of the wrong length is an InvalidArgumentError.
  virtual void load_state(const CodecState& in) {}

 protected:
  // Validated view of a payload header.
  struct Header {
    CodecKind kind;
    uint64_t count;  // elements
    uint64_t aux;    // codec-specific 64-bit parameter
    uint32_t param;  // codec-specific 32-bit parameter
  };
  // Decodes a body whose header passed validation (kind, count == n, checksum). Must check the
  // body size and contents itself. accumulate: out += decoded, else out = decoded.
  virtual void decode_body(const Header& header, std::span<const uint8_t> body, float* out,
                           size_t n, bool accumulate) const = 0;
  // Writes a header with the given parameters and reserves body_bytes after it; returns the body.
  // The caller fills the body and then calls seal() (which stamps the checksum).
  std::span<uint8_t> begin_payload(Payload& out, size_t n, uint64_t aux, uint32_t param,
                                   size_t body_bytes) const;
  void seal(Payload& out) const;

 private:
  friend class ErrorFeedback;  // forwards decode_body to the codec it wraps
};

// Builds the codec of `spec` (wrapped in ErrorFeedback when spec.uses_error_feedback()).
std::unique_ptr<Codec> make_codec(const CodecSpec& spec, const CodecOptions& options = {});

// Error feedback (Seide et al. 2014; Karimireddy et al. 2019) around any codec. Per tensor id:
//   compensated = g + residual;  payload = inner.encode(compensated);
//   residual = compensated - inner.decode(payload)
// so after any number of steps, sum(sent) + residual == sum(gradients) exactly up to float
// rounding. Residual state names: "ef/<id>".
class ErrorFeedback : public Codec {
 public:
  explicit ErrorFeedback(std::unique_ptr<Codec> inner);

  CodecKind kind() const override { return inner_->kind(); }
  std::string name() const override;
  Aggregation aggregation() const override { return inner_->aggregation(); }
  DType body_dtype() const override { return inner_->body_dtype(); }
  bool unbiased() const override { return false; }
  size_t encoded_size(size_t n) const override { return inner_->encoded_size(n); }
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;
  void save_state(CodecState& out) const override;
  void load_state(const CodecState& in) override;

  Codec& inner() { return *inner_; }
  // The residual of `id` (empty before its first encode).
  std::span<const float> residual(TensorId id) const;

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;

 private:
  std::unique_ptr<Codec> inner_;
  std::map<TensorId, std::vector<float>> residuals_;
  std::vector<float> scratch_;
};

}  // namespace dtrain
