// TcpTransport: dtrain's own Transport over TCP, with every connection authenticated before any
// data (CommTransport::kTcp, the default).
//
// Set-up (connect): rank 0 draws a random session id for the attempt (and, when the options
// carry no secret, a random key) and publishes it under "tcp<attempt>/session" of the store;
// every rank then builds the full mesh of authenticated connections (tcp_connect.h) and reports
// its outcome under "tcp<attempt>/status/<rank>". If any rank failed, all of them retry with the
// next attempt, up to kMaxConnectAttempts within the deadline.
//
// Key. The HMAC key of the handshakes is TcpTransportOptions::secret, the run's secret
// (DTRAIN_SECRET under dtrain launch), which never travels. Without one, a random key goes
// through the store: then the transport is exactly as private as the store (right for the
// in-process MemoryStore and a FileStore in a private directory; give a TcpStore's secret here).
//
// Messages: Pair (tcp_pair.h): eager sends, per-(peer, tag) matching in posting order, a
// receive may be longer than its message (never shorter).
//
// Failures: a broken connection fails that pair's pending and later operations with
// PeerLostError; a wait past its deadline throws TimeoutError. The first failure an operation
// reports makes the whole transport unusable (every later isend/irecv throws its kind), as with
// Gloo. abort() fails every pending operation with AbortedError and shuts every connection
// down, so the peers notice at once. Destruction closes gracefully: queued bytes are delivered.
//
// Thread safety: isend/irecv/abort/split from any thread; each op is waited on by one thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "comm/tcp/tcp_connect.h"
#include "comm/tcp/tcp_loop.h"
#include "comm/tcp/tcp_pair.h"
#include "dtrain/error.h"
#include "dtrain/store.h"
#include "dtrain/transport.h"

namespace dtrain::tcp {

struct TcpTransportOptions {
  std::string hostname = "127.0.0.1";  // address the listener binds during set-up
  std::string secret;                  // the group's key; empty: a random one via the store
  std::chrono::milliseconds connect_timeout = kDefaultTimeout;
  std::chrono::milliseconds handshake_timeout{10000};
  size_t max_pending_handshakes = 64;
  TcpLoopOptions loop;
};

class TcpTransport : public Transport {
 public:
  static constexpr int kMaxConnectAttempts = 5;

  static std::unique_ptr<TcpTransport> connect(std::shared_ptr<Store> store, int rank, int size,
                                               const TcpTransportOptions& options);
  // `loop` may be shared with other transports (split() does); null = a new one.
  static std::unique_ptr<TcpTransport> connect(std::shared_ptr<Store> store, int rank, int size,
                                               const TcpTransportOptions& options,
                                               std::shared_ptr<TcpLoop> loop, Deadline deadline);
  ~TcpTransport() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::unique_ptr<TransportOp> isend(const void* data, size_t nbytes, int peer,
                                     uint64_t tag) override;
  std::unique_ptr<TransportOp> irecv(void* data, size_t nbytes, int peer, uint64_t tag) override;
  void abort(const std::string& reason) override;
  std::unique_ptr<Transport> split(const std::vector<int>& ranks, const std::string& key,
                                   Deadline deadline) override;

  // Unauthenticated connections dropped during set-up (all attempts).
  const MeshStats& setup_stats() const { return setup_stats_; }

  // Records the first failure (later calls rethrow its kind) and throws it.
  [[noreturn]] void fail(ErrorCode code, const std::string& message);

 private:
  TcpTransport(std::shared_ptr<Store> store, int rank, int size, TcpTransportOptions options,
               std::shared_ptr<TcpLoop> loop, std::vector<std::shared_ptr<Pair>> pairs,
               MeshStats stats);
  Pair& pair_for(int peer, const char* what);  // checks the peer and the transport's health

  const std::shared_ptr<Store> store_;
  const int rank_;
  const int size_;
  const TcpTransportOptions options_;
  const std::shared_ptr<TcpLoop> loop_;             // null when size_ == 1
  const std::vector<std::shared_ptr<Pair>> pairs_;  // by rank; null at rank_
  const MeshStats setup_stats_;

  std::mutex mutex_;
  ErrorCode failure_code_ = ErrorCode::kInternal;  // GUARDED_BY(mutex_)
  std::string failure_;                            // GUARDED_BY(mutex_); empty = healthy
  bool aborted_ = false;                           // GUARDED_BY(mutex_)
  std::string abort_reason_;                       // GUARDED_BY(mutex_)
};

}  // namespace dtrain::tcp
