// The save protocol and directory naming shared by CheckpointWriter and the readers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint_fs.h"
#include "checkpoint/manifest.h"
#include "dtrain/checkpoint.h"

namespace dtrain {

// "ckpt-000300": the step zero-padded to at least 6 digits.
std::string checkpoint_dir_name(int64_t step);
// The step of a "ckpt-<digits>" name; nullopt for any other name.
std::optional<int64_t> parse_checkpoint_dir_name(std::string_view name);
inline constexpr std::string_view kTmpPrefix = ".tmp-";

// Throws InvalidArgumentError when `c` cannot be written (negative step, world_size < 1, a bad
// file stem, a tensor whose bytes disagree with its shape).
void validate_checkpoint(const Checkpoint& c);

// A checkpoint's files exactly as a save writes them: each stem's safetensors file, and the
// manifest (which lists them with sizes and CRC-32s). The one encoding of a checkpoint: saves
// write it to files, encode_checkpoint (checkpoint.h) concatenates it.
struct EncodedFile {
  std::string name;  // "model.safetensors"
  std::vector<uint8_t> bytes;
};
struct EncodedCheckpoint {
  std::vector<EncodedFile> files;  // in the manifest's order
  std::vector<uint8_t> manifest;
};
EncodedCheckpoint encode_checkpoint_files(const Checkpoint& c);

// The inverse, one file: checks `data` against its manifest entry (size, CRC-32, tensor count),
// decodes it and stores its tensors in c.files. CorruptError names `where` and the file.
void decode_checkpoint_file(Checkpoint& c, const ManifestFile& f, std::span<const uint8_t> data,
                            const std::string& where);
// "<where>: <name> is truncated: N bytes, manifest.json says M" (or "has the wrong size").
std::string wrong_size(const std::string& where, const std::string& name, uint64_t actual,
                       uint64_t expected);

struct WriteResult {
  std::string path;
  uint64_t bytes = 0;
  std::vector<std::string> removed;  // by keep_last
};

// Writes `c` into `dir` with the protocol of checkpoint.h: files into .tmp-<name>-<suffix>/, each
// fsynced, manifest last, directory fsynced, renamed (or exchanged with an existing checkpoint of
// the same step), `dir` fsynced; then removes complete checkpoints beyond keep_last (0: none),
// never the one just written, each renamed to a .tmp-trash name before removal. `suffix` makes
// the temporary names unique.
WriteResult write_checkpoint(CheckpointFs& fs, const std::string& dir, const Checkpoint& c,
                             int keep_last, const std::string& suffix);

// Removes every .tmp-* entry of `dir` (leftovers of crashed saves). Call only when no save into
// `dir` is in flight.
void remove_leftovers(CheckpointFs& fs, const std::string& dir);

}  // namespace dtrain
