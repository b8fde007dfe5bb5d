#include "comm/algorithms/allreduce_halving_doubling.h"

#include <algorithm>
#include <optional>

#include "comm/algorithms/descriptor.h"

namespace dtrain::algorithms {

namespace {

// One exchange of the schedule: send [send_off, +send_bytes) to peer, receive recv_bytes from it
// into [recv_off, ...) (reduced into it in the reduce-scatter, stored in the allgather). Both
// sides cut a transfer into the same segments (one side's send is the other's receive).
struct Stage {
  int peer;
  Phase phase;
  size_t send_off, send_bytes, recv_off, recv_bytes;
  bool reduce;
  std::vector<std::unique_ptr<TransportOp>> recvs;
  char* slots = nullptr;  // reduce: kHdDepth receive slots
  size_t next_post = 0;
};

// The exchanges of `rank`, in order: log2(n) reduce-scatter steps, then log2(n) allgather steps
// (byte ranges of a buffer of `count` elements of `esize` bytes).
std::vector<Stage> schedule(int r, int n, size_t count, size_t esize) {
  const std::vector<Block> blocks = even_blocks(count, n);
  // Byte offset of block b (b == n: the end of the buffer).
  auto at = [&](int b) { return b == n ? count * esize : blocks[b].offset * esize; };
  std::vector<Stage> stages;
  int lo = 0, hi = n;  // this rank's range of blocks
  for (int mask = n / 2; mask >= 1; mask /= 2) {
    const int mid = (lo + hi) / 2;
    const bool upper = (r & mask) != 0;
    const int keep_lo = upper ? mid : lo, keep_hi = upper ? hi : mid;
    const int give_lo = upper ? lo : mid, give_hi = upper ? mid : hi;
    stages.push_back(Stage{r ^ mask, kPhaseReduceScatter, at(give_lo), at(give_hi) - at(give_lo),
                           at(keep_lo), at(keep_hi) - at(keep_lo), true, {}});
    lo = keep_lo;
    hi = keep_hi;
  }
  for (int mask = 1; mask < n; mask *= 2) {
    const int width = hi - lo;
    const int other_lo = (r & mask) ? lo - width : hi, other_hi = other_lo + width;
    stages.push_back(Stage{r ^ mask, kPhaseAllgather, at(lo), at(hi) - at(lo), at(other_lo),
                           at(other_hi) - at(other_lo), false, {}});
    lo = std::min(lo, other_lo);
    hi = std::max(hi, other_hi);
  }
  return stages;
}

}  // namespace

HdFirstSend hd_first_send(int rank, int n, size_t count, size_t esize) {
  if (n < 2 || count == 0) return {};
  const std::vector<Stage> stages = schedule(rank, n, count, esize);
  const Stage& first = stages.front();
  return HdFirstSend{first.peer, first.send_off, std::min(first.send_bytes, inline_max_bytes(n))};
}

void allreduce_halving_doubling(CollectiveContext& c, void* data, size_t count, DType dtype,
                                ReduceOp op) {
  const int n = c.size(), r = c.rank();
  if (n == 1 || count == 0) return;
  const size_t esize = dtype_size(dtype);
  char* bytes = static_cast<char*>(data);
  std::vector<Stage> stages = schedule(r, n, count, esize);

  // The head of the first exchange may have travelled with the descriptors (hd_first_send):
  // reduce what came in and leave both heads out of the pipeline (one side's send is the
  // other's receive, so both cut the same heads).
  {
    Stage& first = stages.front();
    if (c.sent_inline_to(first.peer)) {
      const size_t head = std::min(first.send_bytes, inline_max_bytes(n));
      first.send_off += head;
      first.send_bytes -= head;
    }
    if (const char* in = c.received_inline_from(first.peer)) {
      const size_t head = std::min(first.recv_bytes, inline_max_bytes(n));
      reduce_into(bytes + first.recv_off, in, head / esize, dtype, op);
      first.recv_off += head;
      first.recv_bytes -= head;
    }
  }

  const size_t seg = std::max(esize, c.segment_bytes / esize * esize);
  auto segments = [&](size_t total) { return (total + seg - 1) / seg; };
  auto length = [&](size_t total, size_t i) { return std::min(seg, total - i * seg); };
  size_t slot_bytes = 0;
  for (const Stage& s : stages) {
    if (s.reduce) slot_bytes += std::min(kHdDepth, segments(s.recv_bytes)) * seg;
  }
  char* scratch = slot_bytes ? c.scratch.buffer(kScratchRing, slot_bytes) : nullptr;
  auto post_until = [&](Stage& s, size_t limit) {
    const size_t nrecv = segments(s.recv_bytes);
    for (; s.next_post < std::min(limit, nrecv); ++s.next_post) {
      const size_t i = s.next_post;
      char* dst = s.reduce ? s.slots + (i % kHdDepth) * seg : bytes + s.recv_off + i * seg;
      s.recvs[i] = c.recv(dst, length(s.recv_bytes, i), s.peer, s.phase);
    }
  };
  // Every stage's first receives are posted now, so each send finds its receiver ready (Gloo's
  // unbound buffers otherwise wait for the receiver's "ready" notification). An allgather
  // receive lands in a region this rank gives away during the reduce-scatter, but only after
  // the peer finished its reduce-scatter, which needed this rank's send of that region: the data
  // cannot arrive before that send is done.
  for (Stage& s : stages) {
    s.recvs.resize(segments(s.recv_bytes));
    if (s.reduce) {
      s.slots = scratch;
      scratch += std::min(kHdDepth, segments(s.recv_bytes)) * seg;
    }
    post_until(s, kHdDepth);
  }
  for (Stage& s : stages) {
    std::vector<std::unique_ptr<TransportOp>> sends;
    for (size_t off = 0; off < s.send_bytes; off += seg) {
      sends.push_back(c.send(bytes + s.send_off + off, std::min(seg, s.send_bytes - off), s.peer, s.phase));
    }
    for (size_t i = 0; i < s.recvs.size(); ++i) {
      c.wait(*s.recvs[i]);
      s.recvs[i].reset();
      if (s.reduce) {
        reduce_into(bytes + s.recv_off + i * seg, s.slots + (i % kHdDepth) * seg,
                    length(s.recv_bytes, i) / esize, dtype, op);
      }
      post_until(s, i + 1 + kHdDepth);
    }
    c.wait_all(sends);
  }
}

}  // namespace dtrain::algorithms
