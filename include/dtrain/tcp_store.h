// TcpStore: a Store served over TCP by a TcpStoreServer (hosted by the launcher or by rank 0), for
// ranks on any machine that can reach it.
//
// Security: every connection starts with a challenge-response handshake in which client and server
// each prove, with HMAC-SHA256 over fresh nonces from both, that they know the run's secret; the
// secret itself never travels. A server serves nothing to a connection that has not proven it.
// The handshake authenticates; it does not encrypt: run the store on a trusted network.
//
// Robustness: before authentication a connection may send only the small handshake messages
// (max_unauthenticated_bytes), must finish within handshake_timeout, and at most
// max_unauthenticated connections are kept (the oldest is dropped past that), so strangers can
// neither bloat the server nor starve the job's own clients. After it, the server bounds every
// message by max_message_bytes (checked before allocating) and drops a connection that sends
// garbage, a truncated or oversized message or an unknown type; every other connection keeps being
// served. A client's get/wait does not block the server or other clients: it is answered when its
// keys appear, or with a TimeoutError naming the missing keys when its deadline passes.
//
// Wire protocol: docs/store.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dtrain/deadline.h"
#include "dtrain/store.h"

namespace dtrain {

struct TcpStoreOptions {
  std::string secret;  // per-run secret; clients must present it (empty = the empty secret)
  std::chrono::milliseconds connect_timeout =
      kDefaultTimeout;                          // clients retry transient errors until then
  size_t max_message_bytes = size_t{64} << 20;  // larger messages (payload bytes) are refused
  // After a client has connected once, a later reconnect (after a timeout or a lost connection)
  // retries refused connections for at most this long (and never past the call's deadline), then
  // throws PeerLostError: a server that went away should fail calls fast, not at their deadline.
  std::chrono::milliseconds reconnect_timeout{2000};
  // Server: limits on connections that have not authenticated yet.
  std::chrono::milliseconds handshake_timeout{10000};  // from accept to a verified proof
  size_t max_unauthenticated = 64;                     // past this the oldest one is dropped
  size_t max_unauthenticated_bytes = 256;              // largest payload before authentication
};

// Serves one store on its own thread (a poll() loop), until destroyed.
// Thread safety: port()/address() may be called from any thread.
class TcpStoreServer {
 public:
  // Listens on host:port (port 0 = a free port) and serves on its own thread until destroyed.
  // Throws IoError if it cannot bind.
  TcpStoreServer(const std::string& host, uint16_t port, TcpStoreOptions options);
  ~TcpStoreServer();  // stops serving, closes every connection, joins the thread
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  uint16_t port() const;
  std::string address() const;  // "host:port" ("[v6]:port" for an IPv6 literal)

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A client of a TcpStoreServer.
//
// Thread safety: calls from several threads run concurrently, each on its own connection (idle
// connections are pooled and reused), so one thread's long wait does not delay another's set.
// A call that fails (timeout, lost connection, malformed reply) closes its connection; the next
// call reconnects. Requests are never resent after a connection broke mid-call (add is not
// idempotent): that call throws PeerLostError.
class TcpStore : public Store {
 public:
  // Connects (retrying refused/reset connections until connect_timeout) and authenticates.
  // UnauthenticatedError if the server refuses the secret; TimeoutError if it cannot connect in
  // time; IoError for a non-transient failure.
  TcpStore(const std::string& host, uint16_t port, TcpStoreOptions options);
  ~TcpStore() override;
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  // `address` is "host:port" (or "[v6]:port"); InvalidArgumentError if malformed.
  static std::shared_ptr<TcpStore> connect(const std::string& address, TcpStoreOptions options);

  // Store contract (store.h). Besides TimeoutError, calls throw PeerLostError if the server went
  // away, InvalidArgumentError if a request would exceed max_message_bytes, CorruptError for a
  // malformed reply, and rethrow the server's error for a failed operation (CorruptError for add
  // on a non-integer).
  void set(const std::string& key, const std::string& value, Deadline deadline) override;
  std::string get(const std::string& key, Deadline deadline) override;
  std::optional<std::string> try_get(const std::string& key, Deadline deadline) override;
  int64_t add(const std::string& key, int64_t delta, Deadline deadline) override;
  std::optional<std::string> compare_set(const std::string& key,
                                         const std::optional<std::string>& expected,
                                         const std::string& desired, Deadline deadline) override;
  void wait(const std::vector<std::string>& keys, Deadline deadline) override;
  bool remove(const std::string& key, Deadline deadline) override;

  std::string address() const;

 private:
  class Connection;  // one authenticated socket (tcp_store_client.cc)

  // Runs one request/reply exchange on a pooled connection and returns the kReply payload.
  // `reply_deadline` may be later than `deadline` (a get/wait is answered by the server at the
  // deadline). Throws the server's error for a kError reply.
  std::string call(uint16_t type, const std::string& payload, Deadline deadline,
                   Deadline reply_deadline);
  // Opens an authenticated connection, retrying transient failures (refused, reset, closed during
  // the hello) until `until`. `initial`: TimeoutError when time runs out (the server may still be
  // starting); later: PeerLostError (the server went away) unless call_deadline passed (Timeout).
  std::unique_ptr<Connection> open(Deadline until, Deadline call_deadline, bool initial);
  std::unique_ptr<Connection> checkout(Deadline deadline);
  void checkin(std::unique_ptr<Connection> connection);

  std::string host_;
  uint16_t port_;
  TcpStoreOptions options_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mutex_)
};

}  // namespace dtrain
