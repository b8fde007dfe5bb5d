// Typed buffers for collective tests: write and read elements of any dtype as doubles, and the
// closed-form inputs the tests use (all exactly representable in every dtype, bf16 included).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "dtrain/dtype.h"

namespace dtrain::testing {

inline void put(void* data, DType dtype, size_t i, double v) {
  switch (dtype) {
    case DType::kFloat32: static_cast<float*>(data)[i] = static_cast<float>(v); return;
    case DType::kFloat64: static_cast<double*>(data)[i] = v; return;
    case DType::kFloat16: static_cast<uint16_t*>(data)[i] = float_to_half(static_cast<float>(v)); return;
    case DType::kBFloat16: static_cast<uint16_t*>(data)[i] = float_to_bf16(static_cast<float>(v)); return;
    case DType::kInt32: static_cast<int32_t*>(data)[i] = static_cast<int32_t>(v); return;
    case DType::kInt64: static_cast<int64_t*>(data)[i] = static_cast<int64_t>(v); return;
    case DType::kUInt8: static_cast<uint8_t*>(data)[i] = static_cast<uint8_t>(v); return;
  }
}

inline double get(const void* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::kFloat32: return static_cast<const float*>(data)[i];
    case DType::kFloat64: return static_cast<const double*>(data)[i];
    case DType::kFloat16: return half_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::kBFloat16: return bf16_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::kInt32: return static_cast<const int32_t*>(data)[i];
    case DType::kInt64: return static_cast<const int64_t*>(data)[i];
    case DType::kUInt8: return static_cast<const uint8_t*>(data)[i];
  }
  return 0;
}

class TypedBuffer {
 public:
  TypedBuffer(DType dtype, size_t count) : dtype_(dtype), count_(count), bytes_(count * dtype_size(dtype) + 1) {}
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

// Input of rank r at element i: (r + 1) * m(i) with m(i) = i % 7 + 1.
inline double multiplier(size_t i) { return static_cast<double>(i % 7 + 1); }
inline double input_value(int rank, size_t i) { return (rank + 1) * multiplier(i); }

// The reduction over n ranks of input_value(r, i).
inline double expected_reduction(int n, size_t i, ReduceOp op, DType dtype) {
  double m = multiplier(i);
  switch (op) {
    case ReduceOp::kSum: return n * (n + 1) / 2 * m;
    case ReduceOp::kMin: return m;
    case ReduceOp::kMax: return n * m;
    case ReduceOp::kAvg: {
      double sum = n * (n + 1) / 2 * m;
      if (dtype == DType::kInt32 || dtype == DType::kInt64) return static_cast<double>(static_cast<int64_t>(sum) / n);
      return sum / n;
    }
  }
  return 0;
}

// Tolerance for comparing a result of `dtype` with the exact value.
inline double tolerance(DType dtype, double expected) {
  double mag = expected < 0 ? -expected : expected;
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16: return 1e-2 * mag + 1e-3;
    case DType::kFloat32: return 1e-6 * mag + 1e-6;
    default: return 1e-9;
  }
}

inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> kAll = {DType::kFloat32, DType::kFloat64, DType::kFloat16,
                                          DType::kBFloat16, DType::kInt32, DType::kInt64};
  return kAll;
}

}  // namespace dtrain::testing
