// TcpStoreServer: one poll() loop thread ("dtrain-store") owns the listening socket, every client
// connection and the TcpStoreService. Destruction wakes the loop through an eventfd and joins it.
//
// Per connection: bytes are read into `in` as they arrive, and a message is handled only once its
// whole payload is there; its header is checked first, so an oversized length is refused before
// any payload is buffered (`in` never holds more than one header + max_message_bytes + one read).
// Until a connection has authenticated (kHello, kChallenge, kProof: tcp_store_protocol.h) the
// limit is max_unauthenticated_bytes, it must finish within handshake_timeout, and at most
// max_unauthenticated such connections are kept: a new one beyond that evicts the oldest, and so
// does accept() running out of file descriptors. A flood of idle strangers therefore cannot lock
// the job's own clients out.
// Replies go to `out`; while `out` is not empty the connection's further requests wait (back
// pressure), and while a get/wait is pending any byte from that client is a protocol violation.
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <thread>

#include "comm/auth/auth.h"
#include "comm/store/store_socket.h"
#include "comm/store/tcp_store_protocol.h"
#include "comm/store/tcp_store_service.h"
#include "dtrain/error.h"
#include "dtrain/tcp_store.h"

namespace dtrain {

using store_detail::MessageType;
using store_detail::UniqueFd;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerWakeup = 16;  // bounds the time one fast sender holds the loop
constexpr std::chrono::milliseconds kAcceptBackoff{100};  // after running out of descriptors

}  // namespace

class TcpStoreServer::Impl {
 public:
  Impl(const std::string& host, uint16_t port, TcpStoreOptions options)
      : host_(host), options_(std::move(options)) {
    listen_fd_ = store_detail::listen_tcp(host, port, &port_);
    wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd_.valid())
      throw IoError("store server: eventfd failed: " + store_detail::errno_text(errno));
    thread_ = std::thread([this] { run(); });
    pthread_setname_np(thread_.native_handle(), "dtrain-store");
  }

  ~Impl() {
    stop_.store(true);
    uint64_t one = 1;
    ssize_t rc = ::write(wake_fd_.get(), &one, sizeof(one));
    (void)rc;  // a full eventfd counter still wakes the loop
    thread_.join();
  }

  uint16_t port() const { return port_; }
  const std::string& host() const { return host_; }

 private:
  using Clock = std::chrono::steady_clock;
  enum class Stage { kHello, kProof, kAuthenticated };
  struct Connection {
    UniqueFd fd;
    std::string peer;
    Stage stage = Stage::kHello;
    Clock::time_point handshake_expiry{};
    auth::Nonce client_nonce{};
    auth::Nonce server_nonce{};
    bool authenticated = false;
    bool dead = false;  // closed at the end of this loop iteration
    std::string in;
    size_t in_consumed = 0;
    std::string out;
    size_t out_sent = 0;
  };

  void run();
  void loop_once();
  void accept_all();
  void on_readable(uint64_t id, Connection& c);
  // The handshake's steps; `payload` is the message's.
  void handshake(uint64_t id, Connection& c, MessageType type, std::string_view payload);
  void evict_oldest_unauthenticated(const char* why);
  void expire_handshakes(Clock::time_point now);
  void process(uint64_t id, Connection& c);
  void dispatch(uint64_t id, Connection& c, MessageType type, std::string_view payload);
  // Sends `code: message` (best effort), logs, and closes the connection.
  void reject(Connection& c, ErrorCode code, const std::string& message);
  void queue(uint64_t id, std::string frame);
  void flush(Connection& c);
  void close_dead();

  std::string host_;
  uint16_t port_ = 0;
  TcpStoreOptions options_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // Owned by the loop thread:
  store_detail::TcpStoreService service_;
  std::map<uint64_t, Connection> connections_;
  uint64_t next_id_ = 1;
  size_t unauthenticated_ = 0;  // connections not yet authenticated (not dead)
  Clock::time_point accept_paused_until_{};
};

void TcpStoreServer::Impl::run() {
  while (!stop_.load()) {
    try {
      loop_once();
    } catch (const std::exception& e) {
      // Only a broken poll() or memory exhaustion gets here; keep serving after a pause.
      spdlog::error("dtrain store server {}: {}", store_detail::join_host_port(host_, port_),
                    e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void TcpStoreServer::Impl::loop_once() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  fds.reserve(connections_.size() + 2);
  auto now = Clock::now();
  bool accepting = now >= accept_paused_until_;
  fds.push_back({wake_fd_.get(), POLLIN, 0});
  fds.push_back({accepting ? listen_fd_.get() : -1, POLLIN, 0});
  for (auto& [id, c] : connections_) {
    // Back pressure: no new requests from a client while its last reply is still going out.
    short events = c.out.empty() ? POLLIN : POLLOUT;
    fds.push_back({c.fd.get(), events, 0});
    ids.push_back(id);
  }
  int timeout_ms = accepting ? -1 : static_cast<int>(kAcceptBackoff.count());
  std::optional<Clock::time_point> next = service_.next_expiry();
  for (auto& [id, c] : connections_) {
    if (!c.authenticated && (!next || c.handshake_expiry < *next)) next = c.handshake_expiry;
  }
  if (next) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    int wait = static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
    timeout_ms = timeout_ms < 0 ? wait : std::min(timeout_ms, wait);
  }
  int rc = ::poll(fds.data(), fds.size(), timeout_ms);
  if (rc < 0 && errno != EINTR) throw IoError("poll failed: " + store_detail::errno_text(errno));
  if (stop_.load()) return;
  if (rc > 0) {
    if (fds[1].revents & POLLIN) accept_all();
    for (size_t i = 0; i < ids.size(); ++i) {
      short revents = fds[i + 2].revents;
      if (revents == 0) continue;
      auto it = connections_.find(ids[i]);
      if (it == connections_.end() || it->second.dead) continue;
      Connection& c = it->second;
      if (revents & POLLOUT) {
        flush(c);
        if (!c.dead && c.out.empty()) process(ids[i], c);
      } else {
        on_readable(ids[i], c);
      }
    }
  }
  for (auto& o : service_.take_ready()) queue(o.conn, std::move(o.frame));
  for (auto& o : service_.expire(Clock::now())) queue(o.conn, std::move(o.frame));
  expire_handshakes(Clock::now());
  close_dead();
}

void TcpStoreServer::Impl::expire_handshakes(Clock::time_point now) {
  for (auto& [id, c] : connections_) {
    if (!c.authenticated && !c.dead && now >= c.handshake_expiry) {
      reject(c, ErrorCode::kTimeout, "no authentication within the handshake timeout");
    }
  }
}

void TcpStoreServer::Impl::evict_oldest_unauthenticated(const char* why) {
  for (auto& [id, c] : connections_) {  // ids grow with accept order: the first is the oldest
    if (!c.authenticated && !c.dead) {
      reject(c, ErrorCode::kUnauthenticated, why);
      return;
    }
  }
}

void TcpStoreServer::Impl::accept_all() {
  while (true) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && unauthenticated_ > 0) {
        // Out of descriptors with strangers holding some: make room by dropping the oldest
        // unauthenticated connection; the pending connection is accepted on the next turn.
        evict_oldest_unauthenticated("the server is out of file descriptors");
        close_dead();
        continue;
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        spdlog::warn("dtrain store server: cannot accept ({}); pausing accepts",
                     store_detail::errno_text(errno));
        accept_paused_until_ = Clock::now() + kAcceptBackoff;
      }
      return;  // EAGAIN: no more pending connections
    }
    store_detail::set_nodelay(fd);
    if (unauthenticated_ >= options_.max_unauthenticated) {
      evict_oldest_unauthenticated("too many unauthenticated connections; dropping the oldest");
      close_dead();
    }
    Connection c;
    c.fd.reset(fd);
    c.peer = store_detail::peer_address(fd);
    c.handshake_expiry = Clock::now() + options_.handshake_timeout;
    connections_.emplace(next_id_++, std::move(c));
    ++unauthenticated_;
  }
}

void TcpStoreServer::Impl::on_readable(uint64_t id, Connection& c) {
  for (int i = 0; i < kReadsPerWakeup && !c.dead; ++i) {
    size_t old = c.in.size();
    c.in.resize(old + kReadChunk);
    ssize_t n = ::recv(c.fd.get(), c.in.data() + old, kReadChunk, 0);
    c.in.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n == 0) {
      c.dead = true;  // the client closed its end
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
      return;
    }
    process(id, c);
    if (!c.out.empty()) return;  // back pressure
  }
}

void TcpStoreServer::Impl::process(uint64_t id, Connection& c) {
  while (!c.dead && c.out.empty()) {
    size_t available = c.in.size() - c.in_consumed;
    if (service_.pending(id)) {
      if (available > 0) reject(c, ErrorCode::kCorrupt, "request sent while a wait is pending");
      break;
    }
    if (available < store_detail::kHeaderBytes) break;
    const char* start = c.in.data() + c.in_consumed;
    store_detail::Header h = store_detail::decode_header(start);
    size_t limit =
        c.authenticated ? options_.max_message_bytes : options_.max_unauthenticated_bytes;
    if (auto problem = store_detail::header_problem(h, limit)) {
      reject(c,
             h.magic == store_detail::kMagic && h.version != store_detail::kProtocolVersion
                 ? ErrorCode::kMismatch
                 : ErrorCode::kCorrupt,
             "bad message header: " + *problem);
      break;
    }
    if (available - store_detail::kHeaderBytes < h.length) break;  // the rest is still coming
    std::string_view payload(start + store_detail::kHeaderBytes, h.length);
    c.in_consumed += store_detail::kHeaderBytes + h.length;
    dispatch(id, c, h.type, payload);
  }
  if (c.in_consumed == c.in.size()) {
    c.in.clear();
    c.in_consumed = 0;
  } else if (c.in_consumed > kReadChunk) {
    c.in.erase(0, c.in_consumed);
    c.in_consumed = 0;
  }
}

void TcpStoreServer::Impl::dispatch(uint64_t id, Connection& c, MessageType type,
                                    std::string_view payload) {
  if (!c.authenticated) {
    handshake(id, c, type, payload);
    return;
  }
  if (type == MessageType::kHello || type == MessageType::kProof) {
    reject(c, ErrorCode::kCorrupt, "handshake message on an authenticated connection");
    return;
  }
  try {
    if (auto reply = service_.handle(id, type, payload, Clock::now())) queue(id, std::move(*reply));
  } catch (const Error& e) {
    reject(c, e.code(), e.what());
  }
}

void TcpStoreServer::Impl::handshake(uint64_t id, Connection& c, MessageType type,
                                     std::string_view payload) {
  const MessageType expected = c.stage == Stage::kHello ? MessageType::kHello : MessageType::kProof;
  if (type != expected) {
    reject(c, ErrorCode::kUnauthenticated,
           c.stage == Stage::kHello ? "the first store message must be a hello"
                                    : "expected the client's proof of the secret");
    return;
  }
  store_detail::PayloadReader r(payload);
  std::string field;
  try {
    field = r.bytes();
    r.finish();
  } catch (const Error& e) {
    reject(c, ErrorCode::kCorrupt, e.what());
    return;
  }
  if (field.size() != auth::kNonceBytes) {
    reject(c, ErrorCode::kCorrupt,
           "handshake field of " + std::to_string(field.size()) + " bytes (expected " +
               std::to_string(auth::kNonceBytes) + ")");
    return;
  }
  if (c.stage == Stage::kHello) {
    std::copy(field.begin(), field.end(), reinterpret_cast<char*>(c.client_nonce.data()));
    c.server_nonce = auth::random_nonce();
    auth::Mac mac = auth::hmac(
        options_.secret,
        {store_detail::kServerProofLabel, auth::view(c.client_nonce), auth::view(c.server_nonce)});
    c.stage = Stage::kProof;
    queue(id,
          store_detail::make_frame(MessageType::kChallenge, store_detail::PayloadWriter()
                                                                .bytes(auth::view(c.server_nonce))
                                                                .bytes(auth::view(mac))
                                                                .take()));
    return;
  }
  auth::Mac got{};
  std::copy(field.begin(), field.end(), reinterpret_cast<char*>(got.data()));
  auth::Mac want = auth::hmac(
      options_.secret,
      {store_detail::kClientProofLabel, auth::view(c.client_nonce), auth::view(c.server_nonce)});
  if (!auth::equal(got, want)) {
    reject(c, ErrorCode::kUnauthenticated, "store client could not prove it knows the secret");
    return;
  }
  c.authenticated = true;
  c.stage = Stage::kAuthenticated;
  --unauthenticated_;
  queue(id, store_detail::make_frame(MessageType::kReply, {}));
}

void TcpStoreServer::Impl::reject(Connection& c, ErrorCode code, const std::string& message) {
  spdlog::warn("dtrain store server: dropping connection from {}: {}", c.peer, message);
  c.out.append(store_detail::make_error_frame(code, message));
  flush(c);  // best effort: one non-blocking send
  c.dead = true;
}

void TcpStoreServer::Impl::queue(uint64_t id, std::string frame) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.dead) return;
  Connection& c = it->second;
  if (c.out.empty()) {
    c.out = std::move(frame);
  } else {
    c.out.append(frame);
  }
  flush(c);
}

void TcpStoreServer::Impl::flush(Connection& c) {
  while (c.out_sent < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    c.dead = true;  // the client is gone
    return;
  }
  c.out.clear();
  c.out_sent = 0;
}

void TcpStoreServer::Impl::close_dead() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->second.dead) {
      if (!it->second.authenticated) --unauthenticated_;
      service_.drop(it->first);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

TcpStoreServer::TcpStoreServer(const std::string& host, uint16_t port, TcpStoreOptions options)
    : impl_(std::make_unique<Impl>(host, port, std::move(options))) {}

TcpStoreServer::~TcpStoreServer() = default;

uint16_t TcpStoreServer::port() const {
  return impl_->port();
}

std::string TcpStoreServer::address() const {
  return store_detail::join_host_port(impl_->host(), impl_->port());
}

}  // namespace dtrain
