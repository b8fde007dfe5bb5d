// LinePrefixer: cuts one worker's output stream into whole records and puts "[rank R] " (or,
// with an empty prefix, nothing) before each.
//
// A record ends after '\n', or after a '\r' that no '\n' follows: a progress bar that redraws
// its line ("\repoch 1/3 [###...] ...") is a series of records, so it passes through one redraw
// behind; "\r\n" ends at the '\n'. A '\r' at the end of the bytes seen so far is held until the
// next byte decides. Bytes arrive in arbitrary chunks (whatever one read() of the pipe
// returned); feed() emits only the records they complete and holds the rest, so the output of
// two workers never interleaves mid-line as long as each batch is written in line-complete
// pieces (write_lines, line_writer.h) by one thread.
//
// A record longer than max_line_bytes is cut: each piece but the last is emitted with the prefix,
// kCutMarker and '\n' (cut at a UTF-8 character boundary when one lies within 3 bytes of the
// bound), so memory stays bounded. At end of stream finish() emits what is held: with a prefix as
// a line ('\n' added), without one unchanged.
//
// Not thread-safe: one LinePrefixer per stream, used by one thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dtrain::launcher {

// Ends each piece of a cut record, before its '\n'.
inline constexpr std::string_view kCutMarker = " [...]";

class LinePrefixer {
 public:
  explicit LinePrefixer(std::string prefix, size_t max_line_bytes = 64 * 1024)
      : prefix_(std::move(prefix)), max_line_bytes_(max_line_bytes < 4 ? 4 : max_line_bytes) {}

  // Appends every record completed by `data` (prefixed) to `out`; holds back the rest.
  void feed(std::string_view data, std::string& out);
  // Appends the held bytes, if any, to `out` (see above) and forgets them.
  void finish(std::string& out);

  size_t pending_bytes() const { return partial_.size(); }

 private:
  void emit(std::string_view record, std::string& out) const;

  std::string prefix_;
  size_t max_line_bytes_;
  std::string partial_;  // bytes after the last record end seen
  size_t scanned_ = 0;   // leading bytes of partial_ known to hold no record end
};

}  // namespace dtrain::launcher
