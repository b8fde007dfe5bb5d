// Communicator: rank, size, collectives and tagged point-to-point over a Transport.
//
// Every rank of a group must call the same collectives in the same order with matching arguments
// (dtype, count, op, root). When they do not, every rank gets a MismatchError that names the ranks
// and what differs (unless CommOptions::verify_collectives is off). No call waits forever: each
// operation must finish within CommOptions::timeout, and a peer that dies makes every survivor
// fail with PeerLostError or TimeoutError within that bound.
//
// Buffers are raw memory of `count` elements of `dtype`; in-place where one pointer is taken.
// Asynchronous variants return a Work handle; operations run in the order they were issued, on
// the communicator's executor thread. Synchronous calls are async + wait.
//
// Thread safety: all methods may be called from any thread; operations are serialized.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtrain/deadline.h"
#include "dtrain/dtype.h"
#include "dtrain/store.h"
#include "dtrain/transport.h"
#include "dtrain/work.h"

namespace dtrain {

enum class AllreduceAlgorithm : uint8_t {
  kAuto = 0,  // by world and message size (CommOptions, docs/communication.md)
  kRing = 1,  // reduce-scatter + allgather around a ring: bandwidth-optimal, large messages
  kRecursiveDoubling = 2,  // log2(n) exchanges of the whole buffer: latency-optimal, small messages
  kDirect = 3,           // every rank sends its input to every other rank: one step, tiny messages
  kHalvingDoubling = 4,  // recursive halving + doubling (power-of-two sizes; else the ring)
};

// Which Transport carries a communicator's messages.
enum class CommTransport : uint8_t {
  kTcp = 0,   // dtrain's own TCP transport: every connection authenticated (HMAC challenge-
              // response with `secret`) before any data; no port open after set-up
  kGloo = 1,  // Gloo's TCP transport: no authentication (its listener takes whatever connects);
              // for comparison and for builds where it is the known-good path
};

// "tcp" / "gloo", and back (InvalidArgumentError naming the choices).
const char* comm_transport_name(CommTransport transport);
CommTransport parse_comm_transport(const std::string& name);

struct CommOptions {
  CommTransport transport = CommTransport::kTcp;
  // The group's secret for authenticating connections (kTcp): the run's secret (DTRAIN_SECRET;
  // connect_world sets it). Never sent. Empty: rank 0 draws a random key and passes it through
  // the store, so the connections are as private as the store (fine for in-process and file
  // stores; with a TcpStore, give its secret here).
  std::string secret;
  // Bound on one unauthenticated connection's handshake during set-up (kTcp).
  std::chrono::milliseconds handshake_timeout{10000};
  // Bound on one operation (and so on detecting a dead peer).
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // Bound on connecting to the other ranks at creation.
  std::chrono::milliseconds connect_timeout = kDefaultTimeout;
  // Exchange a descriptor (kind, dtype, count, op, root, label) before each collective to detect
  // mismatches.
  bool verify_collectives = true;
  AllreduceAlgorithm allreduce_algorithm = AllreduceAlgorithm::kAuto;
  // kAuto picks, for a message of b bytes among n ranks:
  //   n > 2 and b * (n - 1) <= direct_allreduce_bytes: direct (one step);
  //   b * v_rd / v_ring <= small_allreduce_bytes: recursive doubling, where v_rd and v_ring are
  //     the bytes each rank sends per input byte (log2(p), +2 if n is not a power of two p;
  //     2(n-1)/n): up to 1 MiB on 2 ranks, 768 KiB on 4, ~455 KiB on 3 -- except that
  //   n a power of two >= 4 and halving_doubling_min_bytes <= b <= halving_doubling_max_bytes
  //     takes halving-doubling (the ring's volume in 2 log2(n) steps) instead, also where
  //     recursive doubling's rule would hold (on 4 ranks: recursive doubling below 512 KiB);
  //   else the ring.
  size_t direct_allreduce_bytes = 512 * 1024;
  size_t small_allreduce_bytes = 1024 * 1024;
  // Where halving-doubling overtakes recursive doubling on 4 ranks with a core each; with fewer
  // cores than ranks the crossing lies higher (docs/performance.md, "A core per rank").
  size_t halving_doubling_min_bytes = 512 * 1024;
  size_t halving_doubling_max_bytes = size_t{4} << 20;
  // Address the transport listens on (loopback by default; a NIC's address for several machines).
  std::string hostname = "127.0.0.1";
  // How the transport's event-loop thread (Gloo's, which reads the sockets) is scheduled. A loop
  // thread at the caller's priority can wake up, preempt the thread that holds the connection's
  // lock mid-send, and then spin on that lock, so on a machine with no idle core an allreduce
  // right after computation stalls for a scheduler slice (docs/performance.md, "An allreduce
  // right after computation"). On a machine with idle cores nothing waits.
  //
  // progress_thread_batch (default): the loop runs under SCHED_BATCH, Linux's policy for threads
  // that must not preempt others when they wake, at the caller's nice value and so with the same
  // CPU share. Most of the stall goes.
  //
  // progress_thread_nice (0..19, default 0 = leave it): a nice value for the loop as well. 19
  // removes more of the stall, but a loop at nice 19 gets a small fraction of a core against
  // each busy thread at nice 0: with other work saturating the cores, communication starves.
  // Figures for both: docs/performance.md, "Gloo's event loop: SCHED_BATCH and nice values".
  bool progress_thread_batch = true;
  int progress_thread_nice = 0;
  // Post the next collective's descriptor receives during this one (verification on; the same
  // on every rank). Gloo then finds the receiver ready when a descriptor message is sent, and the
  // message (with its inline data) leaves at once from the caller's thread instead of waiting for
  // the receiver's notice and the event-loop thread: the sends become eager. Off by default: an
  // allreduce called right after computation gets faster, but DDP training, whose bucket
  // allreduces run beside backward, lost throughput on a quiet host with no idle core (the eager
  // data lands while the peer still computes; docs/performance.md, "Eager descriptor sends").
  bool post_descriptors_ahead = false;
};

// Counters of what this communicator moved (exact payload bytes, not counting TCP headers).
struct CommStats {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t operations = 0;
  double seconds_in_operations = 0;  // wall time spent executing operations
};

// The algorithm an allreduce of `bytes` bytes among `size` ranks uses under `options` (kAuto
// resolved as described at CommOptions). The same on every rank for the same inputs.
AllreduceAlgorithm choose_allreduce_algorithm(const CommOptions& options, int size, size_t bytes);

class Communicator {
 public:
  // A communicator over options.transport; rendezvous through `store` (keys under "comm/").
  // Collective over all `size` ranks: every rank calls it with its own rank.
  static std::unique_ptr<Communicator> create(std::shared_ptr<Store> store, int rank, int size,
                                              CommOptions options = {});
  // The same with the transport forced to kGloo.
  static std::unique_ptr<Communicator> create_gloo(std::shared_ptr<Store> store, int rank, int size,
                                                   CommOptions options = {});

  Communicator(std::unique_ptr<Transport> transport, CommOptions options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  const CommOptions& options() const { return options_; }

  // data[0..count) on every rank becomes the reduction over ranks. `label` names this
  // allreduce (DDP: its bucket index + 1); with verify_collectives, ranks that pass different
  // labels get a MismatchError naming "label" instead of reducing unrelated data together.
  std::shared_ptr<Work> allreduce_async(void* data, size_t count, DType dtype, ReduceOp op,
                                        uint32_t label = 0);
  void allreduce(void* data, size_t count, DType dtype, ReduceOp op, uint32_t label = 0);

  // data[0..count) on every rank becomes root's.
  std::shared_ptr<Work> broadcast_async(void* data, size_t count, DType dtype, int root);
  void broadcast(void* data, size_t count, DType dtype, int root);

  // recv[r*count .. (r+1)*count) = send of rank r. recv holds size()*count elements.
  std::shared_ptr<Work> allgather_async(const void* send, void* recv, size_t count, DType dtype);
  void allgather(const void* send, void* recv, size_t count, DType dtype);

  // Rank r contributes counts[r] elements; recv holds sum(counts), rank r's at offset
  // sum(counts[0..r)). counts must be the same on every rank; send_count == counts[rank()].
  std::shared_ptr<Work> allgatherv_async(const void* send, void* recv,
                                         const std::vector<size_t>& counts, DType dtype);
  void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts, DType dtype);

  // send holds sum(counts) elements on every rank; rank r receives into recv the reduction of
  // block r (counts[r] elements at offset sum(counts[0..r))).
  std::shared_ptr<Work> reduce_scatter_async(const void* send, void* recv,
                                             const std::vector<size_t>& counts, DType dtype,
                                             ReduceOp op);
  void reduce_scatter(const void* send, void* recv, const std::vector<size_t>& counts, DType dtype,
                      ReduceOp op);

  // send and recv hold size()*count elements; block j of send goes to rank j, and block j of
  // recv comes from rank j.
  std::shared_ptr<Work> alltoall_async(const void* send, void* recv, size_t count, DType dtype);
  void alltoall(const void* send, void* recv, size_t count, DType dtype);

  std::shared_ptr<Work> barrier_async();
  void barrier();

  // Tagged point-to-point. A send matches the recv on `dst` with the same source and tag; sizes
  // must agree. Tags share no space with collectives.
  std::shared_ptr<Work> send_async(const void* data, size_t count, DType dtype, int dst,
                                   uint32_t tag);
  void send(const void* data, size_t count, DType dtype, int dst, uint32_t tag);
  std::shared_ptr<Work> recv_async(void* data, size_t count, DType dtype, int src, uint32_t tag);
  void recv(void* data, size_t count, DType dtype, int src, uint32_t tag);

  // A communicator among `ranks` (ranks of this one). Called by the members only, in the same
  // order on each member; ranks are renumbered by their order in the sorted list.
  std::unique_ptr<Communicator> split(std::vector<int> ranks);

  // Fails every pending and future operation with AbortedError(reason), at once. Idempotent.
  void abort(const std::string& reason);
  bool aborted() const;

  CommStats stats() const;

 private:
  class Impl;
  CommOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtrain
