// Small POSIX socket helpers for the TCP store (private). Every blocking helper takes a Deadline
// and waits with poll(); sockets are non-blocking and close-on-exec; sends never raise SIGPIPE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "dtrain/deadline.h"

namespace dtrain::store_detail {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// "host:port" or "[v6]:port" -> (host, port). InvalidArgumentError if malformed.
std::pair<std::string, uint16_t> split_host_port(const std::string& address);
std::string join_host_port(const std::string& host, uint16_t port);

// Binds and listens (SO_REUSEADDR, non-blocking). Port 0 picks a free port; *bound_port receives
// the port actually bound. IoError if it cannot.
UniqueFd listen_tcp(const std::string& host, uint16_t port, uint16_t* bound_port);

// One non-blocking connect attempt, finished by the deadline. Returns 0 and sets *out on success,
// otherwise the errno of the failure (ETIMEDOUT when the deadline passed). Name resolution
// failures return EHOSTUNREACH (retryable: the host may not be up yet).
int try_connect_tcp(const std::string& host, uint16_t port, Deadline deadline, UniqueFd* out);

// Whether a connect errno is worth retrying (the server may not be listening yet).
bool is_transient_connect_error(int err);

// Sends all n bytes. PeerLostError if the peer closed or reset, TimeoutError when the deadline
// passes, IoError otherwise.
void send_all(int fd, const char* data, size_t n, Deadline deadline);

// Receives exactly n bytes. PeerLostError on EOF or reset, TimeoutError when the deadline passes
// (the stream is then mid-message: the caller must close it), IoError otherwise.
void recv_exact(int fd, char* data, size_t n, Deadline deadline);

void set_nonblocking(int fd);
void set_nodelay(int fd);

std::string errno_text(int err);

// "host:port" of a connected socket's peer, "?" if unknown (for logs).
std::string peer_address(int fd);

}  // namespace dtrain::store_detail
