#include "launch/line_writer.h"

#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace dtrain::launcher {
namespace {

constexpr int kPollOutMs = 200;

bool is_record_end(char c) {
  return c == '\n' || c == '\r';
}

// Writes all of `piece`; false if the sink is gone or broken.
bool write_piece(int fd, std::string_view piece) {
  while (!piece.empty()) {
    ssize_t n = ::write(fd, piece.data(), piece.size());
    if (n > 0) {
      piece.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, kPollOutMs);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<size_t> line_pieces(std::string_view batch, size_t limit) {
  std::vector<size_t> pieces;
  if (limit == 0) limit = 1;
  size_t start = 0;
  while (start < batch.size()) {
    size_t end = start;  // end of the piece: just after its last record end
    size_t i = start;
    while (i < batch.size() && i - start < limit) {
      if (is_record_end(batch[i])) end = i + 1;
      ++i;
    }
    if (i == batch.size() && i - start <= limit) {
      end = batch.size();  // the rest fits
    } else if (end == start) {
      // One record longer than limit: up to its end (or the batch's end).
      while (i < batch.size() && !is_record_end(batch[i])) ++i;
      end = i < batch.size() ? i + 1 : batch.size();
    }
    pieces.push_back(end - start);
    start = end;
  }
  return pieces;
}

bool write_lines(int fd, std::string_view batch) {
  for (size_t size : line_pieces(batch, PIPE_BUF)) {
    if (!write_piece(fd, batch.substr(0, size))) return false;
    batch.remove_prefix(size);
  }
  return true;
}

}  // namespace dtrain::launcher
