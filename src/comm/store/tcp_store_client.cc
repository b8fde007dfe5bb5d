// TcpStore (the client). Each call borrows an authenticated connection from the pool (or opens
// one), runs one request/reply exchange, and returns the connection to the pool only if the
// exchange completed cleanly; after a timeout or any error the connection is closed, so a late
// reply can never be mistaken for the answer to a later request.
#include <thread>

#include "comm/auth/auth.h"
#include "comm/store/store_socket.h"
#include "comm/store/tcp_store_protocol.h"
#include "dtrain/error.h"
#include "dtrain/memory_store.h"
#include "dtrain/tcp_store.h"

namespace dtrain {

using store_detail::MessageType;
using store_detail::PayloadReader;
using store_detail::PayloadWriter;
using store_detail::UniqueFd;

namespace {

// The server answers a get/wait at the client's deadline (with the missing keys); the client keeps
// listening this much longer for that answer before it gives up on its own.
constexpr std::chrono::milliseconds kServerAnswerGrace{500};
constexpr std::chrono::milliseconds kFirstRetryDelay{10};
constexpr std::chrono::milliseconds kMaxRetryDelay{200};
constexpr size_t kMaxIdleConnections = 16;

struct Reply {
  MessageType type;
  std::string payload;
};

// Reads one reply: kError, or `expected` (kReply unless the handshake expects kChallenge).
Reply read_reply(int fd, size_t max_payload, Deadline deadline,
                 MessageType expected = MessageType::kReply) {
  char raw[store_detail::kHeaderBytes];
  store_detail::recv_exact(fd, raw, sizeof(raw), deadline);
  store_detail::Header h = store_detail::decode_header(raw);
  if (auto problem = store_detail::header_problem(h, max_payload)) {
    throw CorruptError("malformed reply from the store server: " + *problem);
  }
  if (h.type != expected && h.type != MessageType::kError) {
    throw CorruptError("store server sent a message of type " +
                       std::to_string(static_cast<int>(h.type)) + " where a reply was due");
  }
  Reply reply{h.type, std::string(h.length, '\0')};
  store_detail::recv_exact(fd, reply.payload.data(), reply.payload.size(), deadline);
  return reply;
}

[[noreturn]] void throw_server_error(const std::string& payload) {
  PayloadReader r(payload);
  auto code = static_cast<ErrorCode>(r.u32());
  std::string message = r.bytes();
  r.finish();
  throw_error(code, message);
}

std::string expect_empty(const std::string& payload) {
  PayloadReader(payload).finish();
  return payload;
}

std::optional<std::string> read_optional(const std::string& payload) {
  PayloadReader r(payload);
  std::optional<std::string> value;
  if (r.u8() != 0) value = r.bytes();
  r.finish();
  return value;
}

// The time left, rounded up: the server must not answer "timed out" before the deadline.
uint64_t timeout_ms(Deadline deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline.when() - Deadline::Clock::now());
  return static_cast<uint64_t>(std::max<int64_t>(left.count(), 0));
}

Deadline with_grace(Deadline deadline) {
  return Deadline::at(deadline.when() + kServerAnswerGrace);
}

}  // namespace

class TcpStore::Connection {
 public:
  explicit Connection(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

namespace {

// The handshake (tcp_store_protocol.h): hello with a fresh nonce, check the server's proof, send
// ours. UnauthenticatedError if the server refuses our proof or cannot prove its own.
void authenticate(int fd, const TcpStoreOptions& options, Deadline deadline) {
  auth::Nonce client_nonce = auth::random_nonce();
  std::string hello = store_detail::make_frame(
      MessageType::kHello, PayloadWriter().bytes(auth::view(client_nonce)).take());
  store_detail::send_all(fd, hello.data(), hello.size(), deadline);
  Reply challenge = read_reply(fd, options.max_message_bytes, deadline, MessageType::kChallenge);
  if (challenge.type == MessageType::kError) throw_server_error(challenge.payload);
  PayloadReader r(challenge.payload);
  std::string server_nonce = r.bytes();
  std::string server_mac = r.bytes();
  r.finish();
  if (server_nonce.size() != auth::kNonceBytes || server_mac.size() != auth::kMacBytes) {
    throw CorruptError("malformed challenge from the store server");
  }
  auth::Mac got{};
  std::copy(server_mac.begin(), server_mac.end(), reinterpret_cast<char*>(got.data()));
  auth::Mac want = auth::hmac(
      options.secret, {store_detail::kServerProofLabel, auth::view(client_nonce), server_nonce});
  if (!auth::equal(got, want)) {
    throw UnauthenticatedError(
        "the store server could not prove that it knows the secret (another run's store, or a "
        "different secret)");
  }
  auth::Mac mine = auth::hmac(
      options.secret, {store_detail::kClientProofLabel, auth::view(client_nonce), server_nonce});
  std::string proof =
      store_detail::make_frame(MessageType::kProof, PayloadWriter().bytes(auth::view(mine)).take());
  store_detail::send_all(fd, proof.data(), proof.size(), deadline);
  Reply reply = read_reply(fd, options.max_message_bytes, deadline);
  if (reply.type == MessageType::kError) throw_server_error(reply.payload);
  expect_empty(reply.payload);
}

}  // namespace

TcpStore::TcpStore(const std::string& host, uint16_t port, TcpStoreOptions options)
    : host_(host), port_(port), options_(std::move(options)) {
  Deadline until = Deadline::after(options_.connect_timeout);
  checkin(open(until, until, /*initial=*/true));
}

TcpStore::~TcpStore() = default;

std::shared_ptr<TcpStore> TcpStore::connect(const std::string& address, TcpStoreOptions options) {
  auto [host, port] = store_detail::split_host_port(address);
  return std::make_shared<TcpStore>(host, port, std::move(options));
}

std::string TcpStore::address() const {
  return store_detail::join_host_port(host_, port_);
}

std::unique_ptr<TcpStore::Connection> TcpStore::open(Deadline until, Deadline call_deadline,
                                                     bool initial) {
  std::string last_error;
  auto delay = kFirstRetryDelay;
  while (true) {
    UniqueFd fd;
    int err = store_detail::try_connect_tcp(host_, port_, until, &fd);
    if (err == 0) {
      try {
        authenticate(fd.get(), options_, until);
        return std::make_unique<Connection>(std::move(fd));
      } catch (const PeerLostError& e) {
        last_error = e.what();  // closed during the hello: the server may be restarting
      } catch (const TimeoutError&) {
        last_error = "no answer to the hello";
      }
    } else if (!store_detail::is_transient_connect_error(err)) {
      throw IoError("cannot connect to the store at " + address() + ": " +
                    store_detail::errno_text(err));
    } else {
      last_error = store_detail::errno_text(err);
    }
    if (until.expired()) break;
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(delay, until.remaining()));
    delay = std::min(delay * 2, kMaxRetryDelay);
  }
  std::string what = "cannot connect to the store at " + address() + " (" + last_error + ")";
  if (initial || call_deadline.expired()) throw TimeoutError(what + ": timed out");
  throw PeerLostError(what + ": the server went away");
}

std::unique_ptr<TcpStore::Connection> TcpStore::checkout(Deadline deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
  }
  return open(deadline.capped(options_.reconnect_timeout), deadline, /*initial=*/false);
}

void TcpStore::checkin(std::unique_ptr<Connection> connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(connection));
}

std::string TcpStore::call(uint16_t type, const std::string& payload, Deadline deadline,
                           Deadline reply_deadline) {
  if (payload.size() > options_.max_message_bytes) {
    throw InvalidArgumentError("store request of " + std::to_string(payload.size()) +
                               " bytes exceeds max_message_bytes (" +
                               std::to_string(options_.max_message_bytes) + ")");
  }
  std::string frame = store_detail::make_frame(static_cast<MessageType>(type), payload);
  std::unique_ptr<Connection> connection = checkout(deadline);
  store_detail::send_all(connection->fd(), frame.data(), frame.size(), deadline);
  Reply reply = read_reply(connection->fd(), options_.max_message_bytes, reply_deadline);
  // After an error reply the server may close the connection: do not reuse it.
  if (reply.type == MessageType::kError) throw_server_error(reply.payload);
  checkin(std::move(connection));
  return std::move(reply.payload);
}

void TcpStore::set(const std::string& key, const std::string& value, Deadline deadline) {
  expect_empty(call(static_cast<uint16_t>(MessageType::kSet),
                    PayloadWriter().bytes(key).bytes(value).take(), deadline, deadline));
}

std::string TcpStore::get(const std::string& key, Deadline deadline) {
  std::string payload;
  try {
    payload = call(static_cast<uint16_t>(MessageType::kGet),
                   PayloadWriter().bytes(key).u64(timeout_ms(deadline)).take(), deadline,
                   with_grace(deadline));
  } catch (const TimeoutError& e) {
    if (std::string(e.what()).find("missing keys") != std::string::npos) throw;
    throw TimeoutError("store get timed out (" + std::string(e.what()) + "); missing keys: " + key);
  }
  PayloadReader r(payload);
  std::string value = r.bytes();
  r.finish();
  return value;
}

std::optional<std::string> TcpStore::try_get(const std::string& key, Deadline deadline) {
  return read_optional(call(static_cast<uint16_t>(MessageType::kTryGet),
                            PayloadWriter().bytes(key).take(), deadline, deadline));
}

int64_t TcpStore::add(const std::string& key, int64_t delta, Deadline deadline) {
  std::string payload = call(static_cast<uint16_t>(MessageType::kAdd),
                             PayloadWriter().bytes(key).i64(delta).take(), deadline, deadline);
  PayloadReader r(payload);
  int64_t value = r.i64();
  r.finish();
  return value;
}

std::optional<std::string> TcpStore::compare_set(const std::string& key,
                                                 const std::optional<std::string>& expected,
                                                 const std::string& desired, Deadline deadline) {
  PayloadWriter w;
  w.bytes(key).u8(expected ? 1 : 0);
  if (expected) w.bytes(*expected);
  w.bytes(desired);
  return read_optional(
      call(static_cast<uint16_t>(MessageType::kCompareSet), w.take(), deadline, deadline));
}

void TcpStore::wait(const std::vector<std::string>& keys, Deadline deadline) {
  if (keys.size() > UINT32_MAX) throw InvalidArgumentError("store wait on too many keys");
  PayloadWriter w;
  w.u64(timeout_ms(deadline)).u32(static_cast<uint32_t>(keys.size()));
  for (const auto& key : keys) w.bytes(key);
  try {
    expect_empty(
        call(static_cast<uint16_t>(MessageType::kWait), w.take(), deadline, with_grace(deadline)));
  } catch (const TimeoutError& e) {
    if (std::string(e.what()).find("missing keys") != std::string::npos) throw;
    std::vector<bool> unknown(keys.size(), false);
    throw TimeoutError(
        "store wait timed out (" + std::string(e.what()) +
        "); missing keys (not confirmed by the server): " + missing_keys_text(keys, unknown));
  }
}

bool TcpStore::remove(const std::string& key, Deadline deadline) {
  std::string payload = call(static_cast<uint16_t>(MessageType::kRemove),
                             PayloadWriter().bytes(key).take(), deadline, deadline);
  PayloadReader r(payload);
  bool existed = r.u8() != 0;
  r.finish();
  return existed;
}

}  // namespace dtrain
