// manifest.json: the typed fields of a Checkpoint plus the size and CRC-32 of every tensor file.
//
// Schema (format_version 1; see docs/checkpoints.md):
//   {"format": "dtrain-checkpoint", "format_version": 1, "step": 300, "epoch": 2,
//    "sampler": {"epoch": 2, "offset": 640}, "world_size": 4, "strategy": "ddp",
//    "model": {"name": "mlp", "params": [{"name": "fc1.weight", "dtype": "F32", "shape": [128,
//    784]}]}, "rng": {"torch_cpu": "<base64>"}, "extra": {...}, "created_unix_ms": 1700000000000,
//    "files": {"model.safetensors": {"bytes": 407400, "crc32": 123456789, "tensors": 4}},
//    "manifest_crc32": <CRC-32 of the compact dump of this object without this key>}
// Readers reject a newer format_version, and a manifest whose own checksum does not match.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/checkpoint.h"

namespace dtrain {

inline constexpr int kCheckpointFormatVersion = 1;
inline constexpr std::string_view kManifestFileName = "manifest.json";
inline constexpr std::string_view kTensorFileSuffix = ".safetensors";

struct ManifestFile {
  std::string name;  // "<stem>.safetensors"
  uint64_t bytes = 0;
  uint32_t crc32 = 0;
  uint64_t tensors = 0;
};

// CRC-32 (zlib's, the ISO-HDLC polynomial) of `data`.
uint32_t crc32_of(std::span<const uint8_t> data);

// Whether `stem` matches [A-Za-z0-9_.-]+ and is not "." or ".." (so "<stem>.safetensors" stays
// inside the checkpoint directory).
bool valid_file_stem(std::string_view stem);

// The manifest text (pretty-printed JSON) for the fields of `checkpoint` (tensors not included)
// and the files already written.
std::string serialize_manifest(const Checkpoint& checkpoint,
                               const std::vector<ManifestFile>& files);

struct ParsedManifest {
  Checkpoint fields;  // everything but `files`
  std::vector<ManifestFile> files;
};
// Throws CorruptError "<label>: <problem>" for bad JSON, a bad checksum, an unknown format or
// version, a missing or mistyped field, or a file name that is not "<valid stem>.safetensors".
ParsedManifest parse_manifest(std::span<const uint8_t> text, const std::string& label);

}  // namespace dtrain
