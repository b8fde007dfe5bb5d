// none / fp16 / bf16: elementwise casts (round to nearest even), summable by allreduce.
#include <cstring>

#include "compress/codecs.h"
#include "dtrain/error.h"

namespace dtrain::compress {

CastCodec::CastCodec(CodecKind kind) : kind_(kind) {
  switch (kind) {
    case CodecKind::kNone:
      dtype_ = DType::kFloat32;
      break;
    case CodecKind::kFp16:
      dtype_ = DType::kFloat16;
      break;
    case CodecKind::kBf16:
      dtype_ = DType::kBFloat16;
      break;
    default:
      throw InvalidArgumentError("CastCodec: not a cast codec kind");
  }
}

size_t CastCodec::encoded_size(size_t n) const {
  return kPayloadHeaderBytes + n * dtype_size(dtype_);
}

void CastCodec::encode(TensorId, const float* data, size_t n, Payload& out) {
  std::span<uint8_t> body = begin_payload(out, n, 0, 0, n * dtype_size(dtype_));
  uint8_t* b = body.data();
  switch (kind_) {
    case CodecKind::kNone:
      if (n) std::memcpy(b, data, n * sizeof(float));
      break;
    case CodecKind::kFp16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h = float_to_half(data[i]);
        std::memcpy(b + 2 * i, &h, 2);
      }
      break;
    default:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h = float_to_bf16(data[i]);
        std::memcpy(b + 2 * i, &h, 2);
      }
      break;
  }
  seal(out);
}

void CastCodec::decode_body(const Header&, std::span<const uint8_t> body, float* out, size_t n,
                            bool accumulate) const {
  if (body.size() != n * dtype_size(dtype_)) {
    throw CorruptError(name() + " payload: body of " + std::to_string(body.size()) + " bytes for " +
                       std::to_string(n) + " elements");
  }
  const uint8_t* b = body.data();
  for (size_t i = 0; i < n; ++i) {
    float v;
    if (kind_ == CodecKind::kNone) {
      std::memcpy(&v, b + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, b + 2 * i, 2);
      v = kind_ == CodecKind::kFp16 ? half_to_float(h) : bf16_to_float(h);
    }
    out[i] = accumulate ? out[i] + v : v;
  }
}

}  // namespace dtrain::compress
