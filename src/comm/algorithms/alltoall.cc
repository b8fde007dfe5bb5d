#include "comm/algorithms/alltoall.h"

#include <cstring>

namespace dtrain::algorithms {

void alltoall(CollectiveContext& c, const void* send, void* recv, size_t count, DType dtype) {
  const int n = c.size(), r = c.rank();
  const size_t block = count * dtype_size(dtype);
  if (block == 0) return;
  const char* in = static_cast<const char*>(send);
  char* out = static_cast<char*>(recv);
  std::memmove(out + r * block, in + r * block, block);
  std::vector<std::unique_ptr<TransportOp>> recvs, sends;
  for (int k = 1; k < n; ++k) {  // staggered order spreads the load over the peers
    int p = (r + k) % n;
    recvs.push_back(c.recv(out + p * block, block, p, kPhaseAlltoall));
  }
  for (int k = 1; k < n; ++k) {
    int p = (r - k + n) % n;
    sends.push_back(c.send(in + p * block, block, p, kPhaseAlltoall));
  }
  c.wait_all(recvs);
  c.wait_all(sends);
}

}  // namespace dtrain::algorithms
