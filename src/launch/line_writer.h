// Writing whole lines to a shared sink (the launcher's stdout or stderr).
//
// The supervisor is the only writer of the workers' output and writes from one thread; the
// launcher's own log lines go to the same stderr, from that thread or another one. A write() of
// at most PIPE_BUF bytes to a pipe is atomic, and ttys and regular files take each write() whole
// with respect to other writers, so write_lines() writes a batch of whole records (LinePrefixer)
// in pieces that each end at a record end ('\n' or '\r') and hold at most PIPE_BUF bytes, one
// write() each; a record longer than that is written alone. No line of the batch can then be
// split by another writer's bytes (except a record over PIPE_BUF bytes into a pipe).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace dtrain::launcher {

// The sizes of the pieces write_lines() cuts `batch` into: each ends at a '\n' or '\r' (or at the
// batch's end) and holds at most `limit` bytes, except a single record longer than `limit`.
std::vector<size_t> line_pieces(std::string_view batch, size_t limit);

// Writes `batch` to `fd` piece by piece (above); retries EINTR, waits for POLLOUT on EAGAIN.
// Drops the rest and returns false when the sink is gone (EPIPE) or broken.
bool write_lines(int fd, std::string_view batch);

}  // namespace dtrain::launcher
