// The save protocol and directory naming shared by CheckpointWriter and the readers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint_fs.h"
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
