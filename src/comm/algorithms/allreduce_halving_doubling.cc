#include "comm/algorithms/allreduce_halving_doubling.h"

#include <algorithm>
#include <optional>

namespace dtrain::algorithms {

namespace {

// Sends [send, send + send_bytes) to `peer` while receiving recv_bytes from it, both cut into the
// same segments (the peer's send is this rank's receive and vice versa). With `op` each received
// segment is reduced into recv_dst (through scratch slots), else stored there directly. The two
// regions must not overlap.
void exchange(CollectiveContext& c, int peer, const char* send, size_t send_bytes, char* recv_dst,
              size_t recv_bytes, DType dtype, std::optional<ReduceOp> op, Phase phase) {
  const size_t esize = dtype_size(dtype);
  const size_t seg = std::max(esize, c.segment_bytes / esize * esize);
  const size_t nrecv = (recv_bytes + seg - 1) / seg;
  const size_t depth = std::min(kHdDepth, nrecv);
  char* slots = op && nrecv > 0 ? c.scratch.buffer(kScratchRing, depth * seg) : nullptr;
  auto length = [&](size_t total, size_t i) { return std::min(seg, total - i * seg); };

  std::vector<std::unique_ptr<TransportOp>> recvs(nrecv), sends;
  size_t next_post = 0;
  auto post_until = [&](size_t limit) {
    for (; next_post < std::min(limit, nrecv); ++next_post) {
      char* dst = op ? slots + (next_post % depth) * seg : recv_dst + next_post * seg;
      recvs[next_post] = c.recv(dst, length(recv_bytes, next_post), peer, phase);
    }
  };
  post_until(depth);
  for (size_t off = 0; off < send_bytes; off += seg) {
    sends.push_back(c.send(send + off, std::min(seg, send_bytes - off), peer, phase));
  }
  for (size_t i = 0; i < nrecv; ++i) {
    c.wait(*recvs[i]);
    recvs[i].reset();
    if (op) {
      reduce_into(recv_dst + i * seg, slots + (i % depth) * seg, length(recv_bytes, i) / esize,
                  dtype, *op);
    }
    post_until(i + 1 + depth);
  }
  c.wait_all(sends);
}

}  // namespace

void allreduce_halving_doubling(CollectiveContext& c, void* data, size_t count, DType dtype,
                                ReduceOp op) {
  const int n = c.size(), r = c.rank();
  if (n == 1 || count == 0) return;
  const size_t esize = dtype_size(dtype);
  const std::vector<Block> blocks = even_blocks(count, n);
  char* bytes = static_cast<char*>(data);
  // Byte offset of block b (b == n: the end of the buffer).
  auto at = [&](int b) { return b == n ? count * esize : blocks[b].offset * esize; };

  int lo = 0, hi = n;  // this rank's range of blocks
  for (int mask = n / 2; mask >= 1; mask /= 2) {
    const int mid = (lo + hi) / 2;
    const bool upper = (r & mask) != 0;
    const int keep_lo = upper ? mid : lo, keep_hi = upper ? hi : mid;
    const int give_lo = upper ? lo : mid, give_hi = upper ? mid : hi;
    exchange(c, r ^ mask, bytes + at(give_lo), at(give_hi) - at(give_lo), bytes + at(keep_lo),
             at(keep_hi) - at(keep_lo), dtype, op, kPhaseReduceScatter);
    lo = keep_lo;
    hi = keep_hi;
  }
  for (int mask = 1; mask < n; mask *= 2) {
    const int width = hi - lo;
    const int other_lo = (r & mask) ? lo - width : hi, other_hi = other_lo + width;
    exchange(c, r ^ mask, bytes + at(lo), at(hi) - at(lo), bytes + at(other_lo),
             at(other_hi) - at(other_lo), dtype, std::nullopt, kPhaseAllgather);
    lo = std::min(lo, other_lo);
    hi = std::max(hi, other_hi);
  }
}

}  // namespace dtrain::algorithms
