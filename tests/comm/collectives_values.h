// Typed buffers for collective tests: write and read elements of any dtype as doubles, and the
// inputs the tests use: a hash of (rank, position) mapped to a small integer, so a block that
// lands at the wrong offset, or from the wrong rank, shows as a wrong value. The expected
// results are computed from the same inputs by a plain loop over the ranks.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "dtrain/dtype.h"

namespace dtrain::testing {

// uint8 elements hold the two's-complement byte of the (small, possibly negative) value.
inline void put(void* data, DType dtype, size_t i, double v) {
  switch (dtype) {
    case DType::kFloat32:
      static_cast<float*>(data)[i] = static_cast<float>(v);
      return;
    case DType::kFloat64:
      static_cast<double*>(data)[i] = v;
      return;
    case DType::kFloat16:
      static_cast<uint16_t*>(data)[i] = float_to_half(static_cast<float>(v));
      return;
    case DType::kBFloat16:
      static_cast<uint16_t*>(data)[i] = float_to_bf16(static_cast<float>(v));
      return;
    case DType::kInt32:
      static_cast<int32_t*>(data)[i] = static_cast<int32_t>(v);
      return;
    case DType::kInt64:
      static_cast<int64_t*>(data)[i] = static_cast<int64_t>(v);
      return;
    case DType::kUInt8:
      static_cast<uint8_t*>(data)[i] = static_cast<uint8_t>(static_cast<int8_t>(v));
      return;
  }
}

inline double get(const void* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::kFloat32:
      return static_cast<const float*>(data)[i];
    case DType::kFloat64:
      return static_cast<const double*>(data)[i];
    case DType::kFloat16:
      return half_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::kBFloat16:
      return bf16_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::kInt32:
      return static_cast<const int32_t*>(data)[i];
    case DType::kInt64:
      return static_cast<const int64_t*>(data)[i];
    case DType::kUInt8:
      return static_cast<int8_t>(static_cast<const uint8_t*>(data)[i]);
  }
  return 0;
}

class TypedBuffer {
 public:
  TypedBuffer(DType dtype, size_t count)
      : dtype_(dtype), count_(count), bytes_(count * dtype_size(dtype) + 1) {}
  template <typename F>
  void fill(F f) {
    for (size_t i = 0; i < count_; ++i) put(data(), dtype_, i, f(i));
  }
  double at(size_t i) const { return get(data(), dtype_, i); }
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }
  size_t count() const { return count_; }

 private:
  DType dtype_;
  size_t count_;
  std::vector<char> bytes_;  // one spare byte: data() is never null, even for count 0
};

// Input of rank r at element i: an integer in [-kInputBound, kInputBound] hashed from (r, i).
// Every partial sum over up to kMaxExactRanks ranks stays within 10 * 24 = 240, exact in every
// dtype (bfloat16 holds the integers up to 256 exactly), so sums, minima and maxima compare
// exactly whatever order an algorithm adds in.
constexpr int kInputBound = 24;
constexpr int kMaxExactRanks = 10;

inline uint64_t mix64(uint64_t x) {  // a bijective avalanche mix of 64 bits
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline double input_value(int rank, size_t i) {
  uint64_t h = mix64((static_cast<uint64_t>(rank) << 48) ^ static_cast<uint64_t>(i));
  return static_cast<double>(static_cast<int>(h % (2 * kInputBound + 1)) - kInputBound);
}

// A value no input takes: what a receive buffer holds before a collective writes it.
constexpr double kUnwritten = 100;

// The reduction over ranks 0..n-1 of input_value(r, i), by a plain loop in double. kAvg divides
// the sum once at the end; integer types truncate (as scale_divide does).
inline double expected_reduction(int n, size_t i, ReduceOp op, DType dtype) {
  double acc = input_value(0, i);
  for (int r = 1; r < n; ++r) {
    double v = input_value(r, i);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg:
        acc += v;
        break;
      case ReduceOp::kMin:
        acc = v < acc ? v : acc;
        break;
      case ReduceOp::kMax:
        acc = v > acc ? v : acc;
        break;
    }
  }
  if (op != ReduceOp::kAvg) return acc;
  if (dtype == DType::kInt32 || dtype == DType::kInt64) {
    return static_cast<double>(static_cast<int64_t>(acc) / n);
  }
  return acc / n;
}

// Tolerance for comparing a result of `dtype` with the exact value: none, except an average of
// a floating dtype, which is rounded once to the dtype.
inline double tolerance(DType dtype, double expected, ReduceOp op = ReduceOp::kSum) {
  if (op != ReduceOp::kAvg) return 0;
  double mag = expected < 0 ? -expected : expected;
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16:
      return 1e-2 * mag + 1e-3;
    case DType::kFloat32:
      return 1e-6 * mag + 1e-6;
    default:
      return 0;
  }
}

// Every dtype; kUInt8 only moves data (collectives that reduce refuse it).
inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> kAll = {DType::kFloat32,  DType::kFloat64, DType::kFloat16,
                                          DType::kBFloat16, DType::kInt32,   DType::kInt64,
                                          DType::kUInt8};
  return kAll;
}

inline bool reduces(DType dtype) {
  return dtype != DType::kUInt8;
}

}  // namespace dtrain::testing
