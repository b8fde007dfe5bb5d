// CheckpointFs: the file-system operations a checkpoint save or load performs, behind a small
// interface so tests can replace it (fail at the N-th step, slow down writes) — LevelDB's Env idea.
//
// Paths are plain strings joined with '/'. Every failure throws: NotFoundError when a path that
// must exist does not, IoError for any other failure (the message names the path and errno text).
//
// Thread safety: implementations must allow concurrent calls on different paths.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace dtrain {

class CheckpointFs {
 public:
  virtual ~CheckpointFs() = default;

  // Creates the directory `path` and any missing parents (no error if it exists).
  virtual void create_dirs(const std::string& path) = 0;
  // Creates or truncates `path`, writes `data`, and fsyncs the file before returning.
  virtual void write_file(const std::string& path, std::span<const uint8_t> data) = 0;
  // Fsyncs the directory `path` (makes the names created or renamed in it durable).
  virtual void sync_dir(const std::string& path) = 0;
  // Atomically renames `from` to `to`; `to` must not exist.
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // Atomically swaps two existing directories (Linux renameat2 RENAME_EXCHANGE).
  virtual void exchange(const std::string& a, const std::string& b) = 0;
  // Removes `path` recursively (no error if it does not exist).
  virtual void remove_all(const std::string& path) = 0;

  // Names (not paths) of the entries of directory `path`, unsorted. NotFoundError if missing.
  virtual std::vector<std::string> list_dir(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  // Whole contents of a regular file. NotFoundError if missing.
  virtual std::vector<uint8_t> read_file(const std::string& path) = 0;
};

// The real file system (POSIX calls with fsync).
std::shared_ptr<CheckpointFs> make_posix_checkpoint_fs();

// `fs`, or the POSIX file system when null.
inline std::shared_ptr<CheckpointFs> fs_or_posix(std::shared_ptr<CheckpointFs> fs) {
  return fs ? std::move(fs) : make_posix_checkpoint_fs();
}

}  // namespace dtrain
