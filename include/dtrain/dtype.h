// Element types and reduction operators over raw buffers (no LibTorch).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace dtrain {

// Only ever grows at the end (the value travels in collective descriptors).
enum class DType : uint8_t {
  kFloat32 = 0,
  kFloat64 = 1,
  kFloat16 = 2,
  kBFloat16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kUInt8 = 6,  // raw bytes (payloads of compressed collectives); reductions other than copy are errors
};

enum class ReduceOp : uint8_t { kSum = 0, kAvg = 1, kMin = 2, kMax = 3 };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
std::string_view reduce_op_name(ReduceOp op);
// Parses "float32", "fp32", "float16", "bf16", "int64", ... Throws InvalidArgumentError.
DType parse_dtype(std::string_view name);
ReduceOp parse_reduce_op(std::string_view name);

// IEEE 754 binary16 <-> float, round to nearest even (the reference conversions; codecs and
// reductions use these).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// bfloat16 <-> float, round to nearest even; NaN stays NaN.
inline float bf16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }
inline uint16_t float_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// dst[i] = dst[i] (op) src[i] for `count` elements of `dtype`. kAvg reduces as kSum (the caller
// divides once at the end with scale_divide). fp16/bf16 are summed in float and rounded once.
void reduce_into(void* dst, const void* src, size_t count, DType dtype, ReduceOp op);
// data[i] /= divisor (integer types: truncating division).
void scale_divide(void* data, size_t count, DType dtype, int64_t divisor);

}  // namespace dtrain
