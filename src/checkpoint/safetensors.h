// Safetensors encoding and validating decoding (written from the format description).
//
// Layout of a file:
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8 + N)    a JSON object, padded with spaces so that 8 + N is a multiple of 8:
//                         {"<tensor>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//                          ..., "__metadata__": {"<key>": "<string value>", ...}}
//   bytes [8 + N, end)  the data section: each tensor's row-major little-endian bytes at
//                       [b, e) relative to the section start
// dtypes: F32 F64 F16 BF16 I32 I64 U8 (the dtrain::DType set). The encoder lays tensors out in name
// order, contiguous, without gaps.
//
// The decoder trusts nothing: it checks the header length against the file size (and a 100 MiB
// cap), that the header is a JSON object, that every dtype is known, that shape product * dtype
// size equals the span of the offsets, that the offsets lie inside the data section, and that the
// tensors tile the data section exactly (sorted by offset: no overlap, no gap, no trailing bytes).
// Any violation throws CorruptError "<label>: <problem>"; it never reads outside `data`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/checkpoint.h"

namespace dtrain {

inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsContents {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" object (may be empty)
};

// "[2,3]" for shape {2, 3}; "[]" for a scalar (used in error messages).
std::string shape_text(const std::vector<int64_t>& shape);

// "F32", "BF16", ... for a DType.
std::string_view safetensors_dtype_name(DType dtype);
// The DType of a safetensors dtype name; nullopt for names dtrain does not handle.
std::optional<DType> parse_safetensors_dtype(std::string_view name);

// The whole file. Throws InvalidArgumentError when a record's bytes disagree with its shape and
// dtype, or a name is empty or "__metadata__". Record names are the map keys (record.name ignored).
std::vector<uint8_t> encode_safetensors(const TensorMap& tensors,
                                        const std::map<std::string, std::string>& metadata = {});

// Parses a whole file held in memory. `label` (a file name) starts every error message.
SafetensorsContents decode_safetensors(std::span<const uint8_t> data, const std::string& label);

}  // namespace dtrain
