// CheckpointFs: the file-system operations a checkpoint save or load performs, behind a small
// interface so tests can replace it (fail at the N-th step, slow down writes) — LevelDB's Env idea.
//
// Paths are plain strings joined with '/'. Every failure throws: NotFoundError when a path that
// must exist does not, IoError for any other failure (the message names the path and errno text).
//
// Reads never block and never allocate more than asked: a checkpoint directory is input, and a
// FIFO, a device or a sparse 100 GiB file where a checkpoint file should be must give an error, not
// a hang or std::bad_alloc. Callers stat() a file and compare its size with what they expect
// before they read_file() it.
//
// Thread safety: implementations must allow concurrent calls on different paths.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace dtrain {

// What a path is, from stat(2) (symbolic links followed); nothing is opened.
struct FileStat {
  bool exists = false;   // false also when a parent is not a directory
  bool regular = false;  // a regular file (not a directory, FIFO, socket or device)
  bool directory = false;
  uint64_t bytes = 0;  // st_size (of a regular file: its length; sparse files count in full)
  std::string kind;    // "regular file", "directory", "FIFO", "socket", "character device", ...
};

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
  // Never throws NotFoundError (a missing path gives exists = false); IoError when stat fails
  // otherwise (e.g. permission denied on a parent).
  virtual FileStat stat(const std::string& path) = 0;
  // Whole contents of the regular file `path`, at most `max_bytes` of them. The file is opened
  // without blocking (O_NONBLOCK) and checked with fstat before anything is read or allocated:
  // IoError "<path> is a FIFO, not a regular file" for anything but a regular file, IoError
  // "<path> holds N bytes, more than the M expected" when it is larger than max_bytes.
  // NotFoundError if missing. A file that shrinks while read gives the bytes that were there.
  virtual std::vector<uint8_t> read_file(const std::string& path, uint64_t max_bytes) = 0;
};

// The real file system (POSIX calls with fsync).
std::shared_ptr<CheckpointFs> make_posix_checkpoint_fs();

// `fs`, or the POSIX file system when null.
inline std::shared_ptr<CheckpointFs> fs_or_posix(std::shared_ptr<CheckpointFs> fs) {
  return fs ? std::move(fs) : make_posix_checkpoint_fs();
}

}  // namespace dtrain
