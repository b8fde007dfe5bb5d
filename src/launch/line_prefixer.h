// LinePrefixer: cuts one worker's output stream into lines and puts "[rank R] " before each.
//
// Bytes arrive in arbitrary chunks (whatever one read() of the pipe returned); only complete lines
// are emitted, so lines of different workers never interleave mid-line as long as each emitted
// batch is written with one write(). A line longer than max_line_bytes is emitted in pieces, each
// prefixed and ended with '\n'. At end of stream, finish() emits a partial last line with a '\n'.
// With an empty prefix, bytes pass through unchanged (no buffering).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dtrain::launcher {

class LinePrefixer {
 public:
  explicit LinePrefixer(std::string prefix, size_t max_line_bytes = 64 * 1024)
      : prefix_(std::move(prefix)), max_line_bytes_(max_line_bytes) {}

  // Appends every line completed by `data` (prefixed) to `out`; holds back a partial last line.
  void feed(std::string_view data, std::string& out);
  // Appends the held partial line (prefixed, '\n'-terminated), if any, to `out`.
  void finish(std::string& out);

  size_t pending_bytes() const { return partial_.size(); }

 private:
  std::string prefix_;
  size_t max_line_bytes_;
  std::string partial_;  // bytes after the last '\n' seen
};

}  // namespace dtrain::launcher
