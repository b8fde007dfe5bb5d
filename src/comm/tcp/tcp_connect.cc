#include "comm/tcp/tcp_connect.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cerrno>
#include <deque>

#include "dtrain/error.h"

namespace dtrain::tcp {

using store_detail::UniqueFd;

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kFirstRetry{10};
constexpr std::chrono::milliseconds kMaxRetry{200};
constexpr std::chrono::milliseconds kConnectCap{2000};  // one connect() attempt
constexpr size_t kLoggedRejections = 5;

std::string published_host(const std::string& hostname) {
  if (!hostname.empty() && hostname != "0.0.0.0" && hostname != "::") return hostname;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "127.0.0.1";
  return name;
}

// Sends all of a small handshake message at once; false if the socket did not take it whole
// (a fresh connection's buffer always does: anything else is a broken connection).
bool send_small(int fd, const std::string& bytes) {
  ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(bytes.size());
}

// Reads into `in` until it holds `want` bytes. Returns false on EOF or an error (with `why`).
bool read_upto(int fd, std::string* in, size_t want, std::string* why) {
  while (in->size() < want) {
    char buf[128];
    ssize_t n = ::recv(fd, buf, std::min(sizeof(buf), want - in->size()), MSG_DONTWAIT);
    if (n > 0) {
      in->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    *why = n == 0 ? "connection closed during the handshake" : store_detail::errno_text(errno);
    return false;
  }
  return true;
}

struct Outgoing {
  enum class Phase { kIdle, kServerHello, kProof, kDone };
  int peer = 0;
  std::string host;
  uint16_t port = 0;
  Phase phase = Phase::kIdle;
  UniqueFd fd;
  std::string in;
  auth::Nonce server_nonce{};
  auth::Nonce client_nonce{};
  Clock::time_point retry_at{};
  std::chrono::milliseconds backoff = kFirstRetry;
  std::string last_error = "not tried yet";
};

struct Incoming {
  UniqueFd fd;
  std::string address;
  std::string in;
  auth::Nonce server_nonce{};
  Clock::time_point expires{};
};

class MeshBuilder {
 public:
  MeshBuilder(Store& store, int rank, int size, const MeshOptions& options, Deadline deadline,
              MeshStats* stats)
      : store_(store),
        rank_(rank),
        size_(size),
        options_(options),
        deadline_(deadline),
        stats_(stats),
        out_(size) {}

  std::vector<UniqueFd> run() {
    uint16_t port = 0;
    listener_ = store_detail::listen_tcp(options_.hostname, 0, &port);
    store_.set("addr/" + std::to_string(rank_),
               store_detail::join_host_port(published_host(options_.hostname), port), deadline_);
    for (int p = 0; p < rank_; ++p) {
      Outgoing o;
      o.peer = p;
      auto [host, peer_port] =
          store_detail::split_host_port(store_.get("addr/" + std::to_string(p), deadline_));
      o.host = host;
      o.port = peer_port;
      outgoing_.push_back(std::move(o));
    }
    while (!complete()) {
      if (deadline_.expired()) throw TimeoutError(missing_text());
      start_connects();
      poll_once();
    }
    listener_.reset();
    if (stats_->rejected + stats_->evicted > 0) {
      spdlog::warn(
          "tcp transport: rank {} dropped {} unauthenticated connection(s) during set-up "
          "({} failed the handshake, {} evicted)",
          rank_, stats_->rejected + stats_->evicted, stats_->rejected, stats_->evicted);
    }
    return std::move(out_);
  }

 private:
  bool complete() const {
    for (int p = 0; p < size_; ++p) {
      if (p != rank_ && !out_[p].valid()) return false;
    }
    return true;
  }

  std::string missing_text() const {
    std::string text = "tcp transport: rank " + std::to_string(rank_) + " (of " +
                       std::to_string(size_) + ") could not connect in time to";
    for (const auto& o : outgoing_) {
      if (o.phase != Outgoing::Phase::kDone) {
        text += " rank " + std::to_string(o.peer) + " at " +
                store_detail::join_host_port(o.host, o.port) + " (" + o.last_error + ");";
      }
    }
    std::string waiting;
    for (int p = rank_ + 1; p < size_; ++p) {
      if (!out_[p].valid()) waiting += (waiting.empty() ? "" : ", ") + std::to_string(p);
    }
    if (!waiting.empty()) text += " no authenticated connection from rank(s) " + waiting;
    if (text.back() == ';') text.pop_back();
    return text;
  }

  void reject(const std::string& address, const std::string& why) {
    ++stats_->rejected;
    if (stats_->rejected <= kLoggedRejections) {
      spdlog::warn("tcp transport: rank {} dropped a connection from {}: {}", rank_, address, why);
    }
  }

  void start_connects() {
    auto now = Clock::now();
    for (auto& o : outgoing_) {
      if (o.phase != Outgoing::Phase::kIdle || now < o.retry_at) continue;
      int err = store_detail::try_connect_tcp(o.host, o.port, deadline_.capped(kConnectCap), &o.fd);
      if (err == 0) {
        o.phase = Outgoing::Phase::kServerHello;
        o.in.clear();
        o.client_nonce = auth::random_nonce();
        continue;
      }
      if (!store_detail::is_transient_connect_error(err)) {
        throw IoError("tcp transport: rank " + std::to_string(rank_) + " cannot connect to rank " +
                      std::to_string(o.peer) + " at " +
                      store_detail::join_host_port(o.host, o.port) + ": " +
                      store_detail::errno_text(err));
      }
      retry_later(o, store_detail::errno_text(err));
    }
  }

  void retry_later(Outgoing& o, const std::string& why) {
    o.fd.reset();
    o.phase = Outgoing::Phase::kIdle;
    o.last_error = why;
    o.retry_at = Clock::now() + o.backoff;
    o.backoff = std::min(o.backoff * 2, kMaxRetry);
  }

  void poll_once() {
    std::vector<pollfd> fds;
    fds.push_back({listener_.get(), POLLIN, 0});
    for (auto& in : incoming_) fds.push_back({in.fd.get(), POLLIN, 0});
    for (auto& o : outgoing_) {
      bool active = o.phase == Outgoing::Phase::kServerHello || o.phase == Outgoing::Phase::kProof;
      fds.push_back({active ? o.fd.get() : -1, POLLIN, 0});
    }
    auto now = Clock::now();
    auto wake = deadline_.when();
    for (auto& in : incoming_) wake = std::min(wake, in.expires);
    for (auto& o : outgoing_) {
      if (o.phase == Outgoing::Phase::kIdle) wake = std::min(wake, o.retry_at);
    }
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
    int timeout = static_cast<int>(std::clamp<int64_t>(wait, 0, 1000));
    int rc = ::poll(fds.data(), fds.size(), timeout);
    if (rc < 0 && errno != EINTR) {
      throw IoError("tcp transport: poll failed: " + store_detail::errno_text(errno));
    }
    // Outgoing first (their indexes follow the incoming ones, which accept() may change).
    size_t base = 1 + incoming_.size();
    for (size_t i = 0; i < outgoing_.size(); ++i) {
      if (rc > 0 && fds[base + i].revents != 0) on_outgoing(outgoing_[i]);
    }
    std::vector<bool> readable(incoming_.size());
    for (size_t i = 0; i < incoming_.size(); ++i) readable[i] = rc > 0 && fds[1 + i].revents != 0;
    for (size_t i = 0; i < incoming_.size(); ++i) {
      if (readable[i]) on_incoming(incoming_[i]);
    }
    expire_incoming();
    if (rc > 0 && (fds[0].revents & POLLIN)) accept_all();
  }

  void on_outgoing(Outgoing& o) {
    std::string why;
    if (o.phase == Outgoing::Phase::kServerHello) {
      if (!read_upto(o.fd.get(), &o.in, kServerHelloBytes, &why)) return retry_later(o, why);
      if (o.in.size() < kServerHelloBytes) return;
      if (auto problem = decode_server_hello(o.in, &o.server_nonce)) {
        return retry_later(o, *problem);
      }
      std::string hello =
          encode_client_hello(options_.key, options_.session, static_cast<uint32_t>(rank_),
                              static_cast<uint32_t>(o.peer), o.server_nonce, o.client_nonce);
      if (!send_small(o.fd.get(), hello)) return retry_later(o, "could not send the hello");
      o.in.clear();
      o.phase = Outgoing::Phase::kProof;
      return;
    }
    if (!read_upto(o.fd.get(), &o.in, kServerProofBytes, &why)) {
      // The listener drops a hello it cannot verify: most likely the two ranks hold different
      // secrets.
      return retry_later(o, why +
                                " (the peer did not accept this rank's proof: do both ranks "
                                "have the same secret?)");
    }
    if (o.in.size() < kServerProofBytes) return;
    auth::Mac got{};
    std::copy(o.in.begin(), o.in.end(), reinterpret_cast<char*>(got.data()));
    auth::Mac want = server_proof(options_.key, options_.session, static_cast<uint32_t>(rank_),
                                  static_cast<uint32_t>(o.peer), o.server_nonce, o.client_nonce);
    if (!auth::equal(got, want)) {
      return retry_later(o,
                         "the listener's proof did not verify (not the peer, or another secret)");
    }
    o.phase = Outgoing::Phase::kDone;
    out_[o.peer] = std::move(o.fd);
  }

  void on_incoming(Incoming& in) {
    std::string why;
    if (!read_upto(in.fd.get(), &in.in, kClientHelloBytes, &why)) {
      reject(in.address, why);
      in.fd.reset();
      return;
    }
    if (in.in.size() < kClientHelloBytes) return;
    ClientHello hello;
    if (auto problem =
            check_client_hello(in.in, options_.key, options_.session, static_cast<uint32_t>(rank_),
                               static_cast<uint32_t>(rank_ + 1), static_cast<uint32_t>(size_),
                               in.server_nonce, &hello)) {
      reject(in.address, *problem);
      in.fd.reset();
      return;
    }
    auth::Mac proof = server_proof(options_.key, options_.session, hello.from, hello.to,
                                   in.server_nonce, hello.client_nonce);
    if (!send_small(in.fd.get(), std::string(auth::view(proof)))) {
      reject(in.address, "could not send the proof");
      in.fd.reset();
      return;
    }
    // A rank whose earlier connection broke during its handshake connects again: the newest wins.
    out_[hello.from] = std::move(in.fd);
  }

  void expire_incoming() {
    auto now = Clock::now();
    for (auto& in : incoming_) {
      if (in.fd.valid() && now >= in.expires) {
        reject(in.address, "no valid hello within the handshake timeout");
        in.fd.reset();
      }
    }
    incoming_.erase(std::remove_if(incoming_.begin(), incoming_.end(),
                                   [](const Incoming& in) { return !in.fd.valid(); }),
                    incoming_.end());
  }

  void accept_all() {
    while (true) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors: the next poll retries
      }
      Incoming in;
      in.fd.reset(fd);
      store_detail::set_nodelay(fd);
      in.address = store_detail::peer_address(fd);
      in.server_nonce = auth::random_nonce();
      in.expires = std::min(Clock::now() + options_.handshake_timeout, deadline_.when());
      if (!send_small(fd, encode_server_hello(in.server_nonce))) continue;
      if (incoming_.size() >= options_.max_pending_handshakes) {
        ++stats_->evicted;
        incoming_.pop_front();
      }
      incoming_.push_back(std::move(in));
    }
  }

  Store& store_;
  const int rank_;
  const int size_;
  const MeshOptions& options_;
  const Deadline deadline_;
  MeshStats* const stats_;
  UniqueFd listener_;
  std::vector<UniqueFd> out_;
  std::vector<Outgoing> outgoing_;
  std::deque<Incoming> incoming_;
};

}  // namespace

std::vector<UniqueFd> connect_mesh(Store& store, int rank, int size, const MeshOptions& options,
                                   Deadline deadline, MeshStats* stats) {
  MeshStats local;
  return MeshBuilder(store, rank, size, options, deadline, stats ? stats : &local).run();
}

}  // namespace dtrain::tcp
