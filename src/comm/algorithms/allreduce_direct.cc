#include "comm/algorithms/allreduce_direct.h"

#include <cstring>

namespace dtrain::algorithms {

void allreduce_direct(CollectiveContext& c, void* data, size_t count, DType dtype, ReduceOp op) {
  const int n = c.size(), me = c.rank();
  if (n == 1 || count == 0) return;
  const size_t bytes = count * dtype_size(dtype);

  // Inputs that came inline with the descriptors need no receive (asking settles the check).
  std::vector<const char*> inputs(n, nullptr);
  inputs[me] = static_cast<const char*>(data);
  for (int p = 0; p < n; ++p) {
    if (p != me) inputs[p] = c.received_inline_from(p);
  }
  std::vector<std::unique_ptr<TransportOp>> recvs, sends;
  char* slots = nullptr;  // one slot per rank, for inputs that did not come inline
  for (int p = 0; p < n; ++p) {
    if (p == me || inputs[p] != nullptr) continue;
    if (slots == nullptr) slots = c.scratch.buffer(kScratchRecv, bytes * n);
    recvs.push_back(c.recv(slots + p * bytes, bytes, p, kPhaseExchange));
    inputs[p] = slots + p * bytes;
  }
  for (int p = 0; p < n; ++p) {
    if (p != me && !c.sent_inline_to(p)) sends.push_back(c.send(data, bytes, p, kPhaseExchange));
  }
  c.wait_all(recvs);

  char* acc = c.scratch.buffer(kScratchWork, bytes);
  std::memcpy(acc, inputs[0], bytes);
  for (int p = 1; p < n; ++p) reduce_into(acc, inputs[p], count, dtype, op);
  c.wait_all(sends);  // they read `data`, rewritten next
  std::memcpy(data, acc, bytes);
}

}  // namespace dtrain::algorithms
