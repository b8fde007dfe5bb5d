#include "comm/algorithms/allreduce_ring.h"

#include "comm/algorithms/ring_pass.h"

namespace dtrain::algorithms {

void allreduce_ring(CollectiveContext& c, void* data, size_t count, DType dtype, ReduceOp op) {
  const int n = c.size(), r = c.rank();
  if (n == 1 || count == 0) return;
  auto blocks = even_blocks(count, n);
  char* bytes = static_cast<char*>(data);
  ring_pass(c, bytes, blocks, dtype, op, r - 1, kPhaseReduceScatter);
  ring_pass(c, bytes, blocks, dtype, std::nullopt, r, kPhaseAllgather);
}

}  // namespace dtrain::algorithms
