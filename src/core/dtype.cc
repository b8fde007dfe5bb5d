#include "dtrain/dtype.h"

#include <algorithm>
#include <cmath>

#include "dtrain/error.h"

namespace dtrain {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
  }
  throw InvalidArgumentError("unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
  }
  return "unknown";
}

std::string_view reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMin: return "min";
    case ReduceOp::kMax: return "max";
  }
  return "unknown";
}

DType parse_dtype(std::string_view n) {
  if (n == "float32" || n == "fp32" || n == "float") return DType::kFloat32;
  if (n == "float64" || n == "fp64" || n == "double") return DType::kFloat64;
  if (n == "float16" || n == "fp16" || n == "half") return DType::kFloat16;
  if (n == "bfloat16" || n == "bf16") return DType::kBFloat16;
  if (n == "int32") return DType::kInt32;
  if (n == "int64") return DType::kInt64;
  if (n == "uint8") return DType::kUInt8;
  throw InvalidArgumentError("unknown dtype '" + std::string(n) +
                             "' (expected float32, float64, float16, bfloat16, int32, int64, uint8)");
}

ReduceOp parse_reduce_op(std::string_view n) {
  if (n == "sum") return ReduceOp::kSum;
  if (n == "avg" || n == "mean") return ReduceOp::kAvg;
  if (n == "min") return ReduceOp::kMin;
  if (n == "max") return ReduceOp::kMax;
  throw InvalidArgumentError("unknown reduce op '" + std::string(n) + "' (expected sum, avg, min, max)");
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t float_to_half(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0);  // inf/NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {                        // below the smallest normal half: subnormal or 0
    if (abs < 0x33000000u) return sign;           // < 2^-25 rounds to 0
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 14 - (exp - 127) + 13 - 1 ... bits to drop
    uint32_t half_mant = mant >> (shift);
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
    return sign | static_cast<uint16_t>(half_mant);
  }
  // normal: rebias exponent, round mantissa to 10 bits (nearest even)
  uint32_t r = abs - 0x38000000u;  // exponent 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return sign | static_cast<uint16_t>(r >> 13);
}

namespace {

template <typename T>
void reduce_typed(T* d, const T* s, size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      for (size_t i = 0; i < n; ++i) d[i] += s[i];
      break;
    case ReduceOp::kMin:
      for (size_t i = 0; i < n; ++i) d[i] = std::min(d[i], s[i]);
      break;
    case ReduceOp::kMax:
      for (size_t i = 0; i < n; ++i) d[i] = std::max(d[i], s[i]);
      break;
  }
}

template <float (*ToF)(uint16_t), uint16_t (*FromF)(float)>
void reduce_16(uint16_t* d, const uint16_t* s, size_t n, ReduceOp op) {
  for (size_t i = 0; i < n; ++i) {
    float a = ToF(d[i]), b = ToF(s[i]);
    float r = (op == ReduceOp::kMin) ? std::min(a, b) : (op == ReduceOp::kMax) ? std::max(a, b) : a + b;
    d[i] = FromF(r);
  }
}

template <typename T>
void divide_typed(T* d, size_t n, int64_t divisor) {
  for (size_t i = 0; i < n; ++i) d[i] = static_cast<T>(d[i] / static_cast<T>(divisor));
}

}  // namespace

void reduce_into(void* dst, const void* src, size_t count, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::kFloat32: return reduce_typed(static_cast<float*>(dst), static_cast<const float*>(src), count, op);
    case DType::kFloat64: return reduce_typed(static_cast<double*>(dst), static_cast<const double*>(src), count, op);
    case DType::kInt32: return reduce_typed(static_cast<int32_t*>(dst), static_cast<const int32_t*>(src), count, op);
    case DType::kInt64: return reduce_typed(static_cast<int64_t*>(dst), static_cast<const int64_t*>(src), count, op);
    case DType::kFloat16:
      return reduce_16<half_to_float, float_to_half>(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count, op);
    case DType::kBFloat16:
      return reduce_16<bf16_to_float, float_to_bf16>(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count, op);
    case DType::kUInt8:
      throw InvalidArgumentError("uint8 buffers cannot be reduced (raw payload dtype)");
  }
}

void scale_divide(void* data, size_t count, DType dtype, int64_t divisor) {
  if (divisor == 1) return;
  switch (dtype) {
    case DType::kFloat32: {
      float* d = static_cast<float*>(data);
      const float inv = 1.0f / static_cast<float>(divisor);
      for (size_t i = 0; i < count; ++i) d[i] *= inv;
      return;
    }
    case DType::kFloat64: return divide_typed(static_cast<double*>(data), count, divisor);
    case DType::kInt32: return divide_typed(static_cast<int32_t*>(data), count, divisor);
    case DType::kInt64: return divide_typed(static_cast<int64_t*>(data), count, divisor);
    case DType::kFloat16: {
      uint16_t* d = static_cast<uint16_t*>(data);
      for (size_t i = 0; i < count; ++i) d[i] = float_to_half(half_to_float(d[i]) / static_cast<float>(divisor));
      return;
    }
    case DType::kBFloat16: {
      uint16_t* d = static_cast<uint16_t*>(data);
      for (size_t i = 0; i < count; ++i) d[i] = float_to_bf16(bf16_to_float(d[i]) / static_cast<float>(divisor));
      return;
    }
    case DType::kUInt8:
      throw InvalidArgumentError("uint8 buffers cannot be averaged (raw payload dtype)");
  }
}

}  // namespace dtrain
