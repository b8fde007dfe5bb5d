#include "comm/algorithms/reduce_scatter.h"

#include <cstring>

#include "comm/algorithms/ring_pass.h"

namespace dtrain::algorithms {

void reduce_scatter(CollectiveContext& c, const void* send, void* recv,
                    const std::vector<size_t>& counts, DType dtype, ReduceOp op) {
  const int r = c.rank();
  const size_t esize = dtype_size(dtype);
  auto blocks = blocks_of(counts);
  size_t total = 0;
  for (size_t k : counts) total += k;
  if (c.size() == 1) {
    if (total > 0 && recv != send) std::memmove(recv, send, total * esize);
    return;
  }
  char* work = c.scratch.buffer(kScratchWork, total * esize);
  if (total > 0) std::memcpy(work, send, total * esize);
  ring_pass(c, work, blocks, dtype, op, r - 1, kPhaseReduceScatter);
  if (blocks[r].count > 0) std::memcpy(recv, work + blocks[r].offset * esize, blocks[r].count * esize);
}

}  // namespace dtrain::algorithms
