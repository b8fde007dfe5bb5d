// Transport: the point-to-point primitives a communication backend provides.
//
// Collectives (communicator.h) are written once over these; a backend (dtrain's own TCP
// transport, Gloo's TCP transport; MPI or shared memory later) implements only this small
// interface.
//
// Thread safety: isend/irecv/abort may be called from any thread; a TransportOp is waited on by
// one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtrain/deadline.h"

namespace dtrain {

class TransportOp {
 public:
  virtual ~TransportOp() = default;
  // Blocks until the send or receive completed. Throws TimeoutError, PeerLostError (naming the
  // peer), AbortedError. After a failure the Transport is unusable (every later call throws).
  virtual void wait(Deadline deadline) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Starts sending nbytes at data to peer. A send matches the receive from this rank with the same
  // tag; sends and receives of one (peer, tag) match in posting order. The buffer must stay valid
  // and unchanged until wait() returns or the op is destroyed. A send may complete before the
  // peer posts its receive (dtrain's transport) or only after (Gloo's): callers must not rely on
  // either.
  virtual std::unique_ptr<TransportOp> isend(const void* data, size_t nbytes, int peer, uint64_t tag) = 0;
  // Starts receiving a message of at most nbytes from peer into data. A shorter message completes
  // it (the caller learns the length from the message itself); a longer one is an error.
  virtual std::unique_ptr<TransportOp> irecv(void* data, size_t nbytes, int peer, uint64_t tag) = 0;

  // Every pending and future wait fails with AbortedError(reason). Idempotent.
  virtual void abort(const std::string& reason) = 0;

  // A new transport among `ranks` (ranks of this transport, ascending, containing rank()); its
  // ranks are renumbered 0..ranks.size()-1 in that order. `key` is the same on every member and
  // unique for this split. Only members call it.
  virtual std::unique_ptr<Transport> split(const std::vector<int>& ranks, const std::string& key,
                                           Deadline deadline) = 0;
};

}  // namespace dtrain
