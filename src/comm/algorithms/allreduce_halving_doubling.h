// Halving-doubling allreduce (Rabenseifner's algorithm) for a power-of-two number of ranks.
//
// Algorithm. The buffer is cut into n nearly equal blocks (even_blocks).
//  1. Reduce-scatter by recursive halving: each rank starts with the range of all n blocks; at
//     step mask = n/2, n/4, ..., 1 it splits its range in two halves, keeps the half that holds
//     block `rank`, sends the other half to the rank whose number differs in bit `mask` and
//     receives that rank's copy of the kept half, which it reduces into its own. After log2(n)
//     steps rank r holds block r fully reduced.
//  2. Allgather by recursive doubling: at step mask = 1, 2, ..., n/2 each rank sends its range
//     to the rank differing in bit `mask` and receives that rank's (adjacent, equally long)
//     range; the range doubles until it is the whole buffer.
// Each rank sends and receives 2(n-1)/n of the buffer, the ring's volume, in 2 log2(n) steps
// instead of the ring's 2(n-1): fewer hand-offs, which is what counts when ranks share cores
// (4 ranks on 2 cores: docs/performance.md, "Allreduce"). Each block is reduced by exactly one rank
// along one fixed order and then copied, so all ranks end with bitwise identical results.
// Each exchange is pipelined in segments of c.segment_bytes with receives posted kHdDepth ahead,
// and the first receives of every step are posted at the start (the sender then never waits for
// the receiver's "ready" notification).
// kAvg reduces as a sum; the caller divides once at the end.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

inline constexpr size_t kHdDepth = 4;

// The first exchange's message of `rank` (to rank ^ n/2), as {byte offset, bytes}: the part
// of it that fits, at most inline_max_bytes(n), may travel inside the descriptor message
// (descriptor.h), as recursive doubling's input does. Then the partner's copy of the kept half
// is already there when the check settles, and the pipeline of the first exchange starts at
// once instead of after the receivers' "ready" notifications.
struct HdFirstSend {
  int peer = -1;
  size_t offset = 0;
  size_t bytes = 0;  // at most inline_max_bytes(n), a multiple of every element size
};
HdFirstSend hd_first_send(int rank, int n, size_t count, size_t esize);

// REQUIRES: c.size() is a power of two (choose_allreduce_algorithm picks the ring otherwise).
void allreduce_halving_doubling(CollectiveContext& c, void* data, size_t count, DType dtype,
                                ReduceOp op);

}  // namespace dtrain::algorithms
