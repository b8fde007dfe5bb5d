#include "comm/algorithms/allreduce_recursive_doubling.h"

namespace dtrain::algorithms {

void allreduce_recursive_doubling(CollectiveContext& c, void* data, size_t count, DType dtype,
                                  ReduceOp op) {
  const int n = c.size(), r = c.rank();
  if (n == 1 || count == 0) return;
  const size_t bytes = count * dtype_size(dtype);
  char* tmp = c.scratch.buffer(kScratchRecv, bytes);
  int p = 1;
  while (p * 2 <= n) p *= 2;
  const int rem = n - p;

  int new_rank;
  if (r < 2 * rem) {
    if (r % 2 == 0) {
      auto op_send = c.send(data, bytes, r + 1, kPhaseFold);
      c.wait(*op_send);
      new_rank = -1;
    } else {
      auto op_recv = c.recv(tmp, bytes, r - 1, kPhaseFold);
      c.wait(*op_recv);
      reduce_into(data, tmp, count, dtype, op);
      new_rank = r / 2;
    }
  } else {
    new_rank = r - rem;
  }

  if (new_rank >= 0) {
    for (int mask = 1; mask < p; mask <<= 1) {
      int partner_new = new_rank ^ mask;
      int partner = partner_new < rem ? partner_new * 2 + 1 : partner_new + rem;
      auto op_recv = c.recv(tmp, bytes, partner, kPhaseExchange);
      auto op_send = c.send(data, bytes, partner, kPhaseExchange);
      c.wait(*op_recv);
      c.wait(*op_send);  // data is rewritten below
      reduce_into(data, tmp, count, dtype, op);
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
}

}  // namespace dtrain::algorithms
