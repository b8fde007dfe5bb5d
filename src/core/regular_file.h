// RegularFile: reads a file that must be a regular file, without blocking on anything else. A
// path that a user or a damaged directory hands over may name a FIFO (a blocking open waits for a
// writer forever), a device such as /dev/zero (read forever) or a directory. The file is opened
// with O_NONBLOCK (no effect on the reads of a regular file) and checked with fstat before
// anything is read or allocated; its size at that moment is there for the caller's bound.
// Used by the checkpoint file system and the config-file reader.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "dtrain/error.h"

namespace dtrain {

// What `mode` (a stat st_mode) is, for messages: "regular file", "directory", "FIFO", "socket",
// "character device", "block device" or "special file".
std::string file_kind_name(mode_t mode);

// How a caller names the file and which errors it reports.
struct RegularFileOptions {
  // The file in messages ("config file 'a.yaml'"); the path itself when empty.
  std::string what;
  // The error when there is no such file.
  ErrorCode missing = ErrorCode::kNotFound;
  // The error for a file that is not a regular file.
  ErrorCode not_regular = ErrorCode::kIo;
};

// One regular file open for reading; closed on destruction. Not thread-safe.
class RegularFile {
 public:
  // Opens `path` and fstats it. Throws options.missing "cannot open <what>: <reason>" when there is
  // no such file, IoError "cannot open <what>: <reason>" or "cannot stat <what>: <reason>" when
  // the calls fail otherwise, and options.not_regular "<what> is a FIFO, not a regular file"
  // (likewise for the other kinds) for anything but a regular file.
  explicit RegularFile(const std::string& path, const RegularFileOptions& options = {});
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  // Bytes, as fstat said when the file was opened.
  uint64_t size() const { return size_; }
  // Reads into `buf` until `n` bytes or the end of the file; the number of bytes read (fewer
  // than `n` when the file ends first, e.g. it shrank since open). IoError "cannot read <what>:
  // <reason>".
  size_t read(void* buf, size_t n);

 private:
  std::string what_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace dtrain
