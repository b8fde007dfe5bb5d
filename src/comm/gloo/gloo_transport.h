// GlooTransport: dtrain's Transport over Gloo's TCP transport (libgloo, unbound buffers).
//
// Rendezvous: gloo::rendezvous::Context::connectFullMesh through a StoreAdapter; every rank
// publishes its pair addresses under "<attempt>/..." of the store it is given. Gloo can fail a
// setup transiently ("Connection closed by peer"), so each attempt ends with every rank posting
// its outcome under "<attempt>/status/<rank>"; if any rank failed, all ranks retry together with
// the next attempt prefix, up to kMaxConnectAttempts within the connect deadline.
//
// Messages: isend/irecv create one gloo UnboundBuffer per operation over the caller's memory and
// use the tag as Gloo's slot. Gloo matches sends and receives per (peer, slot) in posting order,
// and a send completes only after the peer has posted the matching receive (rendezvous).
// A message larger than the posted receive would make Gloo's event loop throw (and terminate the
// process), so callers (the Communicator) must never let sizes disagree; see
// docs/communication.md.
//
// Failures: a Gloo IoException becomes PeerLostError (the connection broke) or TimeoutError
// (the deadline passed; Gloo then closes every pair of the context). After the first failure
// every later isend/irecv throws the same kind of error. abort() wakes every pending wait
// (AbortedError) and closes all connections, so the peers notice at once.
//
// SIGPIPE: writing to a socket whose peer died raises SIGPIPE, which would kill the survivor.
// connect() therefore sets SIGPIPE to SIG_IGN when it is still at its default disposition.
//
// Thread safety: isend/irecv/abort from any thread; each op is waited on by one thread.
#pragma once

#include <chrono>
#include <memory>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "dtrain/error.h"
#include "dtrain/store.h"
#include "dtrain/transport.h"

namespace gloo {
class Context;
namespace transport {
class Device;
class UnboundBuffer;
}
}  // namespace gloo

namespace dtrain::gloo_backend {

struct GlooTransportOptions {
  std::string hostname = "127.0.0.1";  // address the pairs listen on
  std::chrono::milliseconds connect_timeout = kDefaultTimeout;
  // Scheduling of the event-loop thread of a device this transport creates: SCHED_BATCH, and a
  // nice value (0: unchanged). CommOptions::progress_thread_batch says why.
  bool event_loop_batch = true;
  int event_loop_nice = 0;
};

// Puts the event-loop thread of `device` (a gloo tcp device) under SCHED_BATCH if `batch` and
// at `nice` if not 0, from that thread: a one-shot eventfd handler registered with the loop.
// Returns an empty string on success, else what failed (the caller logs it; the transport works
// either way).
std::string set_event_loop_scheduling(gloo::transport::Device& device, bool batch, int nice,
                                      std::chrono::milliseconds wait);

class GlooOp;

class GlooTransport : public Transport {
 public:
  static constexpr int kMaxConnectAttempts = 5;

  // Collective over `size` ranks: connects this rank to every other through `store`.
  // `device` may be shared with another transport of this process (split() does); null = new.
  static std::unique_ptr<GlooTransport> connect(std::shared_ptr<Store> store, int rank, int size,
                                                const GlooTransportOptions& options);
  // The same, bounded by `deadline` instead of options.connect_timeout.
  static std::unique_ptr<GlooTransport> connect(std::shared_ptr<Store> store, int rank, int size,
                                                const GlooTransportOptions& options,
                                                std::shared_ptr<gloo::transport::Device> device,
                                                Deadline deadline);
  ~GlooTransport() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::unique_ptr<TransportOp> isend(const void* data, size_t nbytes, int peer, uint64_t tag) override;
  std::unique_ptr<TransportOp> irecv(void* data, size_t nbytes, int peer, uint64_t tag) override;
  void abort(const std::string& reason) override;
  std::unique_ptr<Transport> split(const std::vector<int>& ranks, const std::string& key,
                                   Deadline deadline) override;

 private:
  friend class GlooOp;
  GlooTransport(std::shared_ptr<Store> store, int rank, int size, GlooTransportOptions options,
                std::shared_ptr<gloo::transport::Device> device,
                std::shared_ptr<gloo::Context> context);

  std::unique_ptr<TransportOp> start(void* data, size_t nbytes, int peer, uint64_t tag, bool send);
  // Records the first failure (later calls rethrow its kind) and throws it.
  [[noreturn]] void fail(ErrorCode code, const std::string& message);
  // Translates an exception thrown by Gloo for an operation with `peer` and throws it.
  [[noreturn]] void fail_from_gloo(const std::exception& e, int peer, const char* what);
  void throw_if_unusable();  // REQUIRES: mutex_ held
  void unregister(GlooOp* op);
  // Keeps the buffer of a completed operation alive for the next kRetiredKept completions
  // (see GlooOp), then destroys it.
  void retire(std::unique_ptr<gloo::transport::UnboundBuffer> buf);
  static constexpr size_t kRetiredKept = 64;

  const std::shared_ptr<Store> store_;
  const int rank_;
  const int size_;
  const GlooTransportOptions options_;
  const std::shared_ptr<gloo::transport::Device> device_;
  const std::shared_ptr<gloo::Context> context_;  // null when size_ == 1

  std::mutex mutex_;
  std::set<GlooOp*> pending_;                       // GUARDED_BY(mutex_)
  std::deque<std::unique_ptr<gloo::transport::UnboundBuffer>> retired_;  // GUARDED_BY(mutex_)
  ErrorCode failure_code_ = ErrorCode::kInternal;   // GUARDED_BY(mutex_)
  std::string failure_;                             // GUARDED_BY(mutex_); empty = healthy
  bool aborted_ = false;                            // GUARDED_BY(mutex_)
};

}  // namespace dtrain::gloo_backend
