#include "comm/algorithms/allgather.h"

#include <cstring>

#include "comm/algorithms/ring_pass.h"

namespace dtrain::algorithms {

void allgatherv(CollectiveContext& c, const void* send, void* recv, const std::vector<size_t>& counts,
                DType dtype) {
  const int n = c.size(), r = c.rank();
  const size_t esize = dtype_size(dtype);
  auto blocks = blocks_of(counts);
  char* out = static_cast<char*>(recv);
  char* mine = out + blocks[r].offset * esize;
  if (blocks[r].count > 0 && mine != send) std::memmove(mine, send, blocks[r].count * esize);
  if (n == 1) return;
  size_t total = 0;
  for (size_t k : counts) total += k;
  if (total * esize > c.small_bytes) {
    ring_pass(c, out, blocks, dtype, std::nullopt, r, kPhaseAllgather);
    return;
  }
  std::vector<std::unique_ptr<TransportOp>> recvs, sends;
  for (int p = 0; p < n; ++p) {
    if (p == r || blocks[p].count == 0) continue;
    recvs.push_back(c.recv(out + blocks[p].offset * esize, blocks[p].count * esize, p, kPhaseAllgather));
  }
  if (blocks[r].count > 0) {
    for (int p = 0; p < n; ++p) {
      if (p != r) sends.push_back(c.send(mine, blocks[r].count * esize, p, kPhaseAllgather));
    }
  }
  c.wait_all(recvs);
  c.wait_all(sends);
}

}  // namespace dtrain::algorithms
