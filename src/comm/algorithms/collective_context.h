// CollectiveContext: what one running collective needs from its communicator, so the algorithms
// (this folder) are written once over Transport's point-to-point primitives.
//
// Tags: every message of collective number `seq` uses the Gloo slot
//   bit 63 = 0 (user point-to-point tags set it), bits 62..32 = check, bits 31..8 = the low 24
//   bits of seq, bits 7..0 = phase,
// where the phase names the message kind inside the collective (descriptor, fold, ring pass...)
// and `check` is a 31-bit hash of the collective's descriptor (0 for the descriptor messages
// themselves, and when verification is off). Ranks that called different collectives therefore
// use different tags for their data: their messages never match, so a mismatch can never
// deliver a buffer of the wrong size or combine the wrong data; the descriptor exchange, settled
// before any separate data message is posted (see descriptor.h), reports it instead.
// The transport matches messages per (peer, tag) in posting order, so one phase may carry many
// messages as long as both sides post them in the same order.
//
// Scratch: long-lived, pre-touched buffers owned by the communicator (page faults on fresh
// memory cost ~12 us per 4 KiB page, far more than the copy itself). Index i names one buffer;
// buffer(i, n) returns at least n bytes and keeps them for the next collective.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "dtrain/deadline.h"
#include "dtrain/dtype.h"
#include "dtrain/transport.h"

namespace dtrain::algorithms {

// Phases (low 8 bits of a collective's tag).
enum Phase : uint8_t {
  kPhaseDescriptor = 1,
  kPhaseFold = 2,
  kPhaseExchange = 3,
  kPhaseUnfold = 4,
  kPhaseReduceScatter = 5,
  kPhaseAllgather = 6,
  kPhaseBroadcast = 7,
  kPhaseAlltoall = 8,
};

// Scratch indices.
enum ScratchIndex : int {
  kScratchRing = 0,
  kScratchRecv = 1,
  kScratchWork = 2,
  kScratchDescriptorsIn = 3,  // descriptor.h: one inline-capable slot per peer (even seq)
  kScratchDescriptorOut = 4,  // descriptor.h: the message this rank sends inline
  kScratchDescriptorsInOdd = 5,  // descriptor.h: the same for odd seq (DescriptorWindow only)
  kScratchCount = 6
};

class ScratchBuffers {
 public:
  // At least `bytes` bytes, pre-touched; valid until the next call with the same index.
  char* buffer(int index, size_t bytes);

 private:
  struct Slot {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };
  Slot slots_[kScratchCount];
};

struct CollectiveContext;
class DescriptorWindow;

// A verification still in flight: the first wait of the collective settles it (see descriptor.h).
class PendingCheck {
 public:
  virtual ~PendingCheck() = default;
  // Waits for the other ranks' descriptors and throws MismatchError if they differ.
  virtual void settle(CollectiveContext& c) = 0;
  // Inline first messages (descriptor.h): true when this rank's descriptor message to `peer`
  // already carried the collective's first data message to it (the algorithm skips that send).
  virtual bool sent_inline_to(int peer) const = 0;
  // After settle(): the data `peer` sent inline with its descriptor, or null if it sent none.
  virtual const char* received_inline_from(int peer) const = 0;
};

struct CollectiveContext {
  Transport& transport;
  uint64_t seq;                // collective number, the same on every rank
  Deadline deadline;           // the whole collective must finish by then
  ScratchBuffers& scratch;
  std::atomic<uint64_t>& bytes_sent;
  std::atomic<uint64_t>& bytes_received;
  size_t segment_bytes;        // pipeline segment of ring/chain algorithms (bytes)
  size_t small_bytes;          // at most this many bytes: latency-optimal variants
  uint32_t check = 0;          // 31-bit descriptor hash folded into data tags (0: none)
  PendingCheck* pending_check = nullptr;  // settled before the first wait
  const PendingCheck* inline_check = nullptr;  // the verification, for its inline messages
  DescriptorWindow* descriptor_window = nullptr;  // descriptor.h; null: receives posted per exchange

  int rank() const { return transport.rank(); }
  int size() const { return transport.size(); }
  uint64_t tag(Phase phase) const { return tag_of(seq, phase == kPhaseDescriptor ? 0 : check, phase); }
  static uint64_t tag_of(uint64_t seq, uint32_t check, Phase phase) {
    return (uint64_t{check & 0x7fffffffu} << 32) | ((seq & 0xffffffu) << 8) | phase;
  }

  std::unique_ptr<TransportOp> send(const void* data, size_t nbytes, int peer, Phase phase) {
    bytes_sent.fetch_add(nbytes, std::memory_order_relaxed);
    return transport.isend(data, nbytes, peer, tag(phase));
  }
  std::unique_ptr<TransportOp> recv(void* data, size_t nbytes, int peer, Phase phase) {
    bytes_received.fetch_add(nbytes, std::memory_order_relaxed);
    return transport.irecv(data, nbytes, peer, tag(phase));
  }
  // Settles a pending verification first: a mismatch is reported instead of waiting for data
  // that will never come.
  void wait(TransportOp& op) {
    settle_check();
    op.wait(deadline);
  }
  void wait_all(std::vector<std::unique_ptr<TransportOp>>& ops) {
    settle_check();
    for (auto& op : ops) op->wait(deadline);
    ops.clear();
  }
  void settle_check() {
    if (pending_check == nullptr) return;
    PendingCheck* p = pending_check;
    pending_check = nullptr;
    p->settle(*this);
  }
  bool sent_inline_to(int peer) const { return inline_check && inline_check->sent_inline_to(peer); }
  // Settles the check first (the inline data arrives with the descriptor).
  const char* received_inline_from(int peer) {
    if (!inline_check) return nullptr;
    settle_check();
    return inline_check->received_inline_from(peer);
  }
};

// A block of a buffer, in elements.
struct Block {
  size_t offset = 0;
  size_t count = 0;
};

// `count` elements split into `parts` blocks as evenly as possible (the first count % parts
// blocks get one more element).
std::vector<Block> even_blocks(size_t count, int parts);
// Blocks of the given sizes, laid out back to back.
std::vector<Block> blocks_of(const std::vector<size_t>& counts);

}  // namespace dtrain::algorithms
