// Collective descriptors and their exchange: how ranks find out that they called different
// collectives before any data moves.
//
// Algorithm. At the start of a collective (when CommOptions::verify_collectives is on, and
// always for a barrier) every rank posts its 64-byte descriptor {seq, kind, dtype, count, hash
// of the counts vector, reduce op, root, allreduce algorithm, the caller's label (an allreduce's
// name, e.g. DDP's bucket index + 1; 0 when unset)} to every other rank and posts receives for
// theirs: 2(n-1) messages of bounded size, so the exchange cannot itself overrun a
// buffer. The exchange is settled (all n descriptors in) before the collective posts any separate
// data message (communicator.cc: abandoned data operations upset Gloo's bookkeeping); the data
// messages also carry a 31-bit hash of the descriptor in their tag (collective_context.h), so
// ranks whose descriptors differ could never match each other's data anyway.
// Every rank then holds all n descriptors and compares them all; if any differs from rank 0's,
// every rank throws the same MismatchError, e.g.
//   collective #12 mismatch: rank 0 called allreduce(float32, count=100, sum) but rank 1 called
//   broadcast(float32, count=100, root=0) [differs in: kind, op, root]
// Because the exchange completes on every rank before anyone throws, no message of this
// collective is left to be matched (data sent before the check used tags no other rank will
// post) and the communicator stays usable. The exchange of descriptors is also a full barrier
// (every rank has heard from every other rank). Two different descriptors with the same 31-bit
// hash (chance 2^-31) would let data match before the check; the check still runs first.
//
// Inline first messages. A descriptor message may carry, after its 64 bytes, the collective's
// first data message to that peer when that message is ready at the start (the caller's input,
// at most inline_max_bytes(n)): recursive doubling sends its input this way, so with two ranks
// a verified allreduce of up to 512 KiB is one message each way, the same as an unverified one.
// This matters on loopback, where a separate message after the check costs the receiver's
// "ready" notification (Gloo's unbound buffers) and a data message in turn: inlining cut a
// 128-256 KiB allreduce on two ranks from ~140 us to ~80-100 us, for a copy of the input into
// the outgoing message. Every receive on the descriptor tag is posted with room for 64 +
// inline_max_bytes(n) bytes (Gloo accepts a shorter message than the posted size, never a
// longer one), so mismatched ranks can never overrun a buffer whatever they send; the limit
// shrinks with the world size (4 MiB / n, between 64 KiB and 512 KiB) to bound that scratch.
// The descriptor's `reserved` field flags an inline payload and
// `reserved2` holds its size; neither is compared.
//
// Receives posted ahead (DescriptorWindow). With Gloo's unbound buffers a send goes out from the
// caller's thread only if the receiver's "ready" notification has already arrived; otherwise it
// waits in Gloo's queue until the notification comes and the event-loop thread sends it: one
// more wake-up and hop on the critical path of every small collective. With
// CommOptions::post_descriptors_ahead (and verification on: then every collective starts with
// this exchange) collective s posts the descriptor receives of s + 1 before its own sends. TCP
// keeps a pair's messages in order, and a peer finishes s only after reading this rank's
// message of s, which follows the notification: when the peer starts s + 1 its event loop has
// seen the notification, and its send leaves at once from its own thread, as with Gloo's
// pre-registered buffers. Posting before the sends also
// keeps teardown safe: a peer cannot have finished s and closed its connections while this rank
// still posts (posted after the sends, a receive could hit a peer that had already left, and
// fail a collective whose data had all arrived). Every collective number gets an exchange on
// every rank, so no posted receive is left unmatched on a live connection (an abandoned Gloo
// receive stalls the pair). Two slot sets alternate: the running collective reads its inline
// data from one while the next one's receives fill the other. The event-loop threads then write
// nothing, a collective takes fewer context switches and less CPU, and an allreduce right after
// computation gets faster. But the sends become eager (data lands while the peer still
// computes), and DDP training on a quiet host with no idle core lost throughput: hence opt-in
// (docs/performance.md, "Eager descriptor sends").
// CommStats.bytes_received counts the bytes that arrived (64 plus the inline payload), not the
// room posted for them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/algorithms/collective_context.h"
#include "dtrain/dtype.h"

namespace dtrain::algorithms {

// Only ever grows at the end (travels on the wire).
enum class CollectiveKind : uint8_t {
  kAllreduce = 1,
  kBroadcast = 2,
  kAllgather = 3,
  kAllgatherv = 4,
  kReduceScatter = 5,
  kAlltoall = 6,
  kBarrier = 7,
};

std::string_view collective_kind_name(CollectiveKind kind);

// Wire layout: exactly 64 bytes, host byte order (all ranks of a job share an architecture).
struct CollectiveDescriptor {
  uint32_t magic = kMagic;
  uint16_t version = 1;
  uint8_t kind = 0;       // CollectiveKind
  uint8_t dtype = 0;      // DType
  uint8_t op = 0;         // ReduceOp (allreduce, reduce_scatter), else 0
  uint8_t algorithm = 0;  // AllreduceAlgorithm chosen (allreduce), else 0
  uint16_t reserved = 0;
  int32_t root = -1;      // broadcast root, else -1
  uint32_t reserved2 = 0;
  uint32_t label = 0;       // the caller's name for this collective (allreduce), else 0
  uint64_t seq = 0;
  uint64_t count = 0;       // elements per rank (allgatherv/reduce_scatter: sum of counts)
  uint64_t counts_hash = 0; // FNV-1a of the counts vector (allgatherv/reduce_scatter), else 0
  uint8_t padding[16] = {};

  static constexpr uint32_t kMagic = 0x64747263;  // "dtrc"
  bool operator==(const CollectiveDescriptor& o) const;
};
static_assert(sizeof(CollectiveDescriptor) == 64);

uint64_t hash_counts(const std::vector<size_t>& counts);

// "allreduce(float32, count=100, sum)".
std::string describe(const CollectiveDescriptor& d);

// Largest data message sent inline with a descriptor among n ranks: 4 MiB / n, rounded down
// to 64 bytes, clamped to [64 KiB, 512 KiB] (a multiple of every element size).
size_t inline_max_bytes(int n);

// The first data message to one peer (or to every peer), sent inside the descriptor message.
struct InlineSend {
  int peer = -1;  // -1: none
  bool all_peers = false;  // the same message to every peer (peer ignored)
  const void* data = nullptr;
  size_t bytes = 0;  // at most inline_max_bytes(n)
};

// 31-bit hash of a descriptor (never 0), folded into the data tags.
uint32_t descriptor_check(const CollectiveDescriptor& d);

// The descriptor receives of the next collectives, posted ahead (see above). One per
// communicator with CommOptions::post_descriptors_ahead, used by the running collective only.
// REQUIRES: every collective number gets a DescriptorExchange, in order (verification on).
class DescriptorWindow {
 public:
  // The receives of collective `seq` (posted now if they were not posted ahead) and the slots
  // they fill (peer p's message at slots + p * slot_bytes(n)): the scratch buffer of seq's
  // parity, whose size never changes for a communicator, so posted receives keep their memory.
  struct Receives {
    std::vector<std::unique_ptr<TransportOp>> ops;  // one per peer, ascending, self skipped
    char* slots = nullptr;
  };
  Receives take(CollectiveContext& c, uint64_t seq);
  // Posts the receives of collective `seq` unless they are posted already.
  void post(CollectiveContext& c, uint64_t seq);

 private:
  struct Entry {
    uint64_t seq = 0;
    bool posted = false;
    std::vector<std::unique_ptr<TransportOp>> ops;
  };
  Entry entries_[2];  // collective s uses entries_[s % 2]
};

// The exchange of `mine` with every rank (phase kPhaseDescriptor of c.seq). start() posts the
// messages, sets c.check and registers itself as c.pending_check; the collective's first wait
// (or an explicit c.settle_check()) completes it and throws MismatchError naming the ranks and
// fields that differ. Throws the transport's errors. Must outlive the collective's body.
class DescriptorExchange : public PendingCheck {
 public:
  void start(CollectiveContext& c, const CollectiveDescriptor& mine, InlineSend inline_send = {});
  void settle(CollectiveContext& c) override;
  bool sent_inline_to(int peer) const override { return inline_all_ || peer == inline_peer_; }
  const char* received_inline_from(int peer) const override;

 private:
  // Size of the payload `peer` sent inline (0: none), bounded by the slot. After settle().
  size_t inline_bytes_from(int peer) const;

  std::vector<CollectiveDescriptor> all_;
  size_t slot_bytes_ = 0;  // 64 + inline_max_bytes(n)
  char* slots_ = nullptr;  // one slot_bytes_ slot per rank (own slot unused): window or scratch
  int inline_peer_ = -1;
  bool inline_all_ = false;
  std::vector<std::unique_ptr<TransportOp>> recvs_, sends_;
};

// The mismatch text for a full set of descriptors (index = rank), or "" when all agree.
std::string compare_descriptors(const std::vector<CollectiveDescriptor>& all);

}  // namespace dtrain::algorithms
