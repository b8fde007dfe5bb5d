// Raw sockets for the tests that attack or observe dtrain's ports: a client that sends whatever
// the test says, and a recording relay that sits between two real ends.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace dtrain::net_test {

// A blocking loopback connection that sends bytes as told and reads what comes back.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // False once the peer closed or reset the connection.
  bool send(const std::string& bytes) {
    if (fd_ < 0) return false;
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Whatever arrives within `timeout` (at most `max` bytes).
  std::string read_some(size_t max, std::chrono::milliseconds timeout) {
    std::string got;
    auto end = std::chrono::steady_clock::now() + timeout;
    while (got.size() < max && fd_ >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, std::min(sizeof(buf), max - got.size()), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // Everything received until the peer closed or reset the connection, or nullopt when it was
  // still open after `timeout`.
  std::optional<std::string> read_until_closed(std::chrono::milliseconds timeout) {
    std::string got;
    auto end = std::chrono::steady_clock::now() + timeout;
    while (fd_ >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return got;  // EOF or reset: closed
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // True if the peer closed the connection within `timeout` (or this side already did).
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    return read_until_closed(timeout).has_value();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Listens on a loopback port; relays every accepted connection to 127.0.0.1:target_port and
// records every byte in both directions.
class RecordingRelay {
 public:
  explicit RecordingRelay(uint16_t target_port) : target_port_(target_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("relay: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~RecordingRelay() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  std::string recorded() {
    std::lock_guard<std::mutex> lock(mutex_);
    return recorded_;
  }

 private:
  void run() {
    int a = -1, b = -1;  // the accepted side, the side towards the target
    bool a_open = false, b_open = false;
    while (!stop_) {
      pollfd fds[3] = {
          {listen_fd_, POLLIN, 0}, {a_open ? a : -1, POLLIN, 0}, {b_open ? b : -1, POLLIN, 0}};
      if (::poll(fds, 3, 20) <= 0) continue;
      if ((fds[0].revents & POLLIN) && a < 0) {
        a = ::accept(listen_fd_, nullptr, nullptr);
        b = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(target_port_);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(b, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) break;
        a_open = b_open = true;
        continue;
      }
      for (int i = 1; i <= 2; ++i) {
        if (fds[i].revents == 0) continue;
        int from = i == 1 ? a : b, to = i == 1 ? b : a;
        char buf[65536];
        ssize_t n = ::recv(from, buf, sizeof(buf), 0);
        if (n <= 0) {
          ::shutdown(to, SHUT_WR);
          (i == 1 ? a_open : b_open) = false;
          continue;
        }
        {
          std::lock_guard<std::mutex> lock(mutex_);
          recorded_.append(buf, static_cast<size_t>(n));
        }
        ::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
      }
    }
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }

  const uint16_t target_port_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::string recorded_;
  std::thread thread_;
};

}  // namespace dtrain::net_test
