// Checkpoints: atomic, checksummed snapshots of training state (no LibTorch).
//
// A Checkpoint in memory is a set of named tensor files (file stem -> tensors) plus typed manifest
// fields (step, epoch, sampler position, RNG states, world size, strategy, model signature). On
// disk it is one directory (see docs/checkpoints.md):
//
//   <dir>/ckpt-000300/model.safetensors       weights, readable by any safetensors reader
//   <dir>/ckpt-000300/optimizer.safetensors   one file per stem in Checkpoint::files
//   <dir>/ckpt-000300/manifest.json           written last: marks the checkpoint complete
//
// Protocol. A save writes every file into <dir>/.tmp-ckpt-000300-<random>/, fsyncs each file and
// the directory, renames it to ckpt-000300 (atomically exchanging with an existing one of the same
// step) and fsyncs <dir>. Old checkpoints beyond keep_last are removed only after the new one is
// complete. A crash at any point leaves every earlier complete checkpoint loadable; leftover .tmp-*
// directories are ignored by readers and removed by the next CheckpointWriter.
//
// Errors (include/dtrain/error.h): NotFoundError (missing directory or file), CorruptError
// (truncated, checksum mismatch, malformed safetensors or manifest), MismatchError (written for
// another model), IoError (the file system failed), InvalidArgumentError (a bad snapshot).
//
// Usage (trainer side):
//   CheckpointWriter writer(run_dir, {.keep_last = 3});
//   Checkpoint c;                      // copy state into memory (cheap compared with the write)
//   c.step = step; c.epoch = epoch; c.sampler = position; c.world_size = world; c.strategy = "ddp";
//   c.put("model", TensorRecord::copy_of("fc1.weight", DType::kFloat32, {128, 784}, ptr));
//   c.model = ModelSignature::of("mlp", c.files["model"]);   // optional: defaults to this
//   writer.save(std::move(c));         // returns at once; a background thread writes
//   ...
//   writer.flush(Deadline::after(std::chrono::minutes(5)));   // before exit; rethrows write errors
//
//   ResumeChoice r = find_resume(run_dir, {.expected_model = live_signature});   // --resume auto
//   for (auto& s : r.skipped) log("skipped " + s.path + ": " + s.reason);
//   if (r.checkpoint) restore(*r.checkpoint);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dtrain/deadline.h"
#include "dtrain/dtype.h"
#include "dtrain/error.h"
#include "dtrain/sampler.h"

namespace dtrain {

// One tensor: row-major, little-endian bytes. bytes.size() == numel() * dtype_size(dtype).
struct TensorRecord {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;  // [] is a scalar (one element); a 0 in it makes an empty tensor
  std::vector<uint8_t> bytes;

  // Product of shape (1 for a scalar). Throws InvalidArgumentError on a negative dim or overflow.
  int64_t numel() const;
  // Copies numel(shape) * dtype_size(dtype) bytes from `data`.
  static TensorRecord copy_of(std::string name, DType dtype, std::vector<int64_t> shape,
                              const void* data);
  // Typed read-only view; throws MismatchError when sizeof(T) != dtype_size(dtype).
  template <typename T>
  std::span<const T> view() const {
    check_element_size(sizeof(T));
    return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
  }
  bool operator==(const TensorRecord&) const = default;

 private:
  void check_element_size(size_t size) const;
};

using TensorMap = std::map<std::string, TensorRecord>;  // tensor name -> record

// What a model looks like: its name and the (name, dtype, shape) of each parameter. Stored in the
// manifest; loading for a live model compares the two and names the first difference.
struct TensorSignature {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  bool operator==(const TensorSignature&) const = default;
};

struct ModelSignature {
  std::string name;                     // e.g. "mlp", "resnet18"
  std::vector<TensorSignature> params;  // the model's parameters (any order; compared by name)

  // The signature of `tensors` (in name order).
  static ModelSignature of(std::string name, const TensorMap& tensors);
  bool operator==(const ModelSignature&) const = default;
};

// Throws MismatchError "<where> was written for another model: <first difference>" unless `found`
// (from a checkpoint) matches `expected` (the live model): same name, same parameter names, and
// each with the same dtype and shape.
void check_model_signature(const ModelSignature& expected, const ModelSignature& found,
                           const std::string& where);

// Everything a resume needs. Field names match the manifest keys (docs/checkpoints.md).
struct Checkpoint {
  int64_t step = 0;   // optimizer steps completed
  int64_t epoch = 0;  // epoch in progress
  SamplerPosition sampler;
  int world_size = 1;
  std::string strategy;  // "ddp", "zero", "ps", ... as the trainer names it
  // The model the tensors belong to. Left empty (no params), the writer fills it from
  // files["model"].
  ModelSignature model;
  // Generator name -> opaque state bytes (e.g. "torch_cpu", "cuda:0", "dropout"); base64 in the
  // manifest.
  std::map<std::string, std::string> rng;
  // Free-form JSON object for the trainer (config, lr scheduler state, metrics so far).
  nlohmann::json extra = nlohmann::json::object();
  // File stem -> tensors, written to <stem>.safetensors. Conventional stems: "model" (parameters
  // and buffers), "optimizer" (moments, step counts), "residuals" (compression error feedback),
  // "<stem>-rank00003" for per-rank shards. Stems match [A-Za-z0-9_.-]+.
  std::map<std::string, TensorMap> files;
  int64_t created_unix_ms = 0;  // set by the writer; read back on load

  // files[stem][record.name] = record (replaces a record of the same name).
  void put(const std::string& stem, TensorRecord record);
  // Throws NotFoundError naming the stem or tensor when absent.
  const TensorRecord& tensor(const std::string& stem, const std::string& name) const;
};

class CheckpointFs;  // file-system seam (src/checkpoint/checkpoint_fs.h); tests inject faults

struct CheckpointOptions {
  // Number of complete checkpoints to keep (the newest by step, plus always the one just written);
  // 0 keeps all.
  int keep_last = 3;
  // true: save() queues the snapshot and a background thread ("ckpt-writer") writes it.
  // false: save() writes before it returns.
  bool background = true;
  // null: the real (POSIX) file system.
  std::shared_ptr<CheckpointFs> fs = nullptr;
};

struct LastSaveStats {
  int64_t step = -1;             // step of the last checkpoint written (-1: none yet)
  std::string path;              // its directory
  uint64_t bytes = 0;            // bytes of all its files
  double write_seconds = 0;      // time to write, fsync and rename it
  int64_t saves_written = 0;     // since this writer was made
  int64_t saves_superseded = 0;  // queued snapshots replaced by a newer one before being written
  std::vector<std::string> removed;  // checkpoints removed by keep_last after the last save
};

// Writes checkpoints into one directory. One writer per directory at a time (across processes:
// in a multi-rank job, one rank writes).
//
// Concurrency policy: at most one write is in flight and at most one snapshot waits behind it. A
// save() while another snapshot is still waiting replaces (coalesces) that waiting snapshot, so
// memory stays bounded at two snapshots and the newest state is always the one written.
//
// Thread safety: all methods may be called from any thread.
class CheckpointWriter {
 public:
  // Creates `dir` if missing and removes leftover .tmp-* directories. Throws IoError.
  explicit CheckpointWriter(std::string dir, CheckpointOptions options = {});
  // Finishes the in-flight and waiting writes (errors are dropped: call flush() to see them).
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Validates the snapshot (InvalidArgumentError), then queues it (background) or writes it.
  // Returns the directory the checkpoint will have. If an earlier background write failed, its
  // error is thrown here (once) and this snapshot is not queued.
  std::string save(Checkpoint snapshot);
  // Waits until every queued snapshot is written. Rethrows (once) the error of a failed write;
  // TimeoutError when the deadline passes first (the write continues).
  void flush(Deadline deadline);
  LastSaveStats last_stats() const;
  const std::string& dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct LoadOptions {
  // When set, a checkpoint written for another model throws MismatchError (find_resume: skipped).
  std::optional<ModelSignature> expected_model = std::nullopt;
  // The caller's own checks (e.g. the trainer's state in `extra`), run last, on a checkpoint that
  // passed every check of load_checkpoint. It rejects the checkpoint by throwing an Error, which
  // load_checkpoint rethrows as the same kind prefixed with "checkpoint <path>: " (find_resume:
  // skipped with that reason, and the next older one is tried). Because it runs last, what it
  // derives from an accepted checkpoint belongs to the checkpoint load_checkpoint returns (and
  // to the one find_resume chooses).
  std::function<void(const Checkpoint&)> validate = nullptr;
  // Cap on the bytes of one checkpoint's tensor files (their sizes in manifest.json, checked
  // before anything is read). 0: the machine's physical memory.
  uint64_t max_bytes = 0;
  // null: the real (POSIX) file system.
  std::shared_ptr<CheckpointFs> fs = nullptr;
};

// Loads one checkpoint directory (e.g. <dir>/ckpt-000300). Checks before reading or allocating:
// the path is a directory; manifest.json and every listed file are regular files (a FIFO is never
// opened for a blocking read); the manifest is at most 64 MiB; every file has the size the
// manifest records; their total fits options.max_bytes. Then it parses the manifest, checks each
// file's CRC-32, validates each safetensors file, checks the model signature, and runs
// options.validate. Throws NotFoundError, CorruptError, MismatchError, IoError (the message names
// the checkpoint and the file).
Checkpoint load_checkpoint(const std::string& path, const LoadOptions& options = {});

// One checkpoint as one byte string, for checkpoints that travel or stay in memory (the elastic
// trainer's state broadcast): the 8-byte little-endian length of manifest.json, then manifest.json
// and the tensor files exactly as a save writes them, in the manifest's order. decode_checkpoint
// checks what load_checkpoint checks of the same files (manifest, sizes, CRC-32s, safetensors,
// model signature) and throws CorruptError naming `where` and the part; encode_checkpoint throws
// InvalidArgumentError for a checkpoint a save would refuse.
std::vector<uint8_t> encode_checkpoint(const Checkpoint& checkpoint);
Checkpoint decode_checkpoint(std::span<const uint8_t> bytes,
                             const std::string& where = "checkpoint bytes");

// The complete checkpoints (those with a manifest.json; not validated) in `dir`, oldest step
// first, as paths. Empty when `dir` does not exist. .tmp-* directories are never listed.
std::vector<std::string> list_checkpoints(const std::string& dir,
                                          const std::shared_ptr<CheckpointFs>& fs = nullptr);

struct SkippedCheckpoint {
  std::string path;
  std::string reason;  // e.g. "checksum mismatch in model.safetensors (...)"
  // Why: kCorrupt/kNotFound/kIo for damage, kMismatch for a sound checkpoint of another run
  // (another model, optimizer, strategy or dataset).
  ErrorCode code = ErrorCode::kCorrupt;
};

struct ResumeChoice {
  std::optional<Checkpoint> checkpoint;    // the newest checkpoint that loads; none if no good one
  std::string path;                        // its directory ("" when none)
  std::vector<SkippedCheckpoint> skipped;  // newer ones that failed to load, newest first

  // One line for the log: "resuming from <path> at step N; skipped ckpt-000300: ..." or
  // "no checkpoint to resume from in <dir> ...".
  std::string describe() const;
};

// --resume auto: tries the checkpoints in `dir` from the newest step down and returns the first
// that loads completely (every check of load_checkpoint, options.validate included), with the
// reason each newer one was skipped (incomplete directories and files that are not regular files
// included). A missing `dir` gives an empty choice. Never throws for a bad checkpoint; IoError on
// listing failures.
ResumeChoice find_resume(const std::string& dir, const LoadOptions& options = {});

}  // namespace dtrain
