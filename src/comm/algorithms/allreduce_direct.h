// Direct allreduce: one step, for tiny messages on three or more ranks.
//
// Algorithm. Every rank sends its whole input to every other rank and receives every other
// rank's input; each then reduces the n inputs itself, in rank order 0, 1, ..., n-1, so every
// rank computes exactly the same sequence of operations and the results agree bitwise.
// Cost: one message latency; each rank sends and receives (n-1) * bytes. Against recursive
// doubling (log2(n) latencies, bytes each) it wins while latency dominates, which on a
// loaded machine (4 ranks sharing 2 cores: each extra step costs scheduler slices) is up to
// tens of KiB; CommOptions::direct_allreduce_bytes bounds (n-1) * bytes.
// With verification the input travels inline with the descriptor to every peer (descriptor.h),
// so a verified direct allreduce is exactly the descriptor exchange.
// kAvg reduces as a sum; the caller divides once at the end.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

void allreduce_direct(CollectiveContext& c, void* data, size_t count, DType dtype, ReduceOp op);

}  // namespace dtrain::algorithms
