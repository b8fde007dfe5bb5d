#include "comm/algorithms/allreduce_recursive_doubling.h"

#include <cstring>

namespace dtrain::algorithms {

namespace {

struct Layout {
  int p;    // largest power of two <= n
  int rem;  // n - p
};

Layout layout(int n) {
  int p = 1;
  while (p * 2 <= n) p *= 2;
  return {p, n - p};
}

// The rank with new number `v` (inverse of the renumbering after the fold).
int old_rank(int v, int rem) { return v < rem ? v * 2 + 1 : v + rem; }

}  // namespace

int recursive_doubling_input_peer(int rank, int n) {
  if (n < 2) return -1;
  auto [p, rem] = layout(n);
  if (rank < 2 * rem) return rank % 2 == 0 ? rank + 1 : -1;  // odd ranks first send a reduction
  return old_rank((rank - rem) ^ 1, rem);
}

void allreduce_recursive_doubling(CollectiveContext& c, void* data, size_t count, DType dtype,
                                  ReduceOp op) {
  const int n = c.size(), r = c.rank();
  if (n == 1 || count == 0) return;
  const size_t bytes = count * dtype_size(dtype);
  char* tmp = c.scratch.buffer(kScratchRecv, bytes);
  auto [p, rem] = layout(n);

  // Receives `bytes` from `peer` into tmp (or finds them inline) and reduces them into data.
  auto receive_and_reduce = [&](int peer, Phase phase, std::unique_ptr<TransportOp> pending_send) {
    const char* in = c.received_inline_from(peer);
    if (in == nullptr) {
      auto op_recv = c.recv(tmp, bytes, peer, phase);
      c.wait(*op_recv);
      in = tmp;
    }
    if (pending_send) c.wait(*pending_send);  // data is rewritten below
    reduce_into(data, in, count, dtype, op);
  };
  auto send_unless_inline = [&](int peer, Phase phase) -> std::unique_ptr<TransportOp> {
    if (c.sent_inline_to(peer)) return nullptr;
    return c.send(data, bytes, peer, phase);
  };

  int new_rank;
  if (r < 2 * rem) {
    if (r % 2 == 0) {
      auto op_send = send_unless_inline(r + 1, kPhaseFold);
      if (op_send) c.wait(*op_send);
      new_rank = -1;
    } else {
      receive_and_reduce(r - 1, kPhaseFold, nullptr);
      new_rank = r / 2;
    }
  } else {
    new_rank = r - rem;
  }

  if (new_rank >= 0) {
    for (int mask = 1; mask < p; mask <<= 1) {
      int partner = old_rank(new_rank ^ mask, rem);
      // Only the first round can go inline (the input); later rounds send reductions.
      auto op_send = mask == 1 ? send_unless_inline(partner, kPhaseExchange)
                               : c.send(data, bytes, partner, kPhaseExchange);
      receive_and_reduce(partner, kPhaseExchange, std::move(op_send));
    }
  }

  if (r < 2 * rem) {
    if (r % 2 == 1) {
      auto op_send = c.send(data, bytes, r - 1, kPhaseUnfold);
      c.wait(*op_send);
    } else {
      auto op_recv = c.recv(data, bytes, r + 1, kPhaseUnfold);
      c.wait(*op_recv);
    }
  }
  c.settle_check();
}

}  // namespace dtrain::algorithms
