// Mapping between LibTorch scalar types and dtrain's wire dtypes.
#pragma once

#include <torch/torch.h>

#include <string>

#include "dtrain/dtype.h"
#include "dtrain/error.h"

namespace dtrain {

inline DType to_dtype(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return DType::kFloat32;
    case c10::ScalarType::Double: return DType::kFloat64;
    case c10::ScalarType::Half: return DType::kFloat16;
    case c10::ScalarType::BFloat16: return DType::kBFloat16;
    case c10::ScalarType::Int: return DType::kInt32;
    case c10::ScalarType::Long: return DType::kInt64;
    case c10::ScalarType::Byte: return DType::kUInt8;
    default:
      throw InvalidArgumentError(std::string("tensor dtype ") + c10::toString(t) +
                                 " cannot be communicated");
  }
}

}  // namespace dtrain
