// Ring allreduce (bandwidth-optimal; the default for large messages).
//
// Algorithm. A ring reduce-scatter followed by a ring allgather (ring_pass.h): the buffer is cut
// into n nearly equal blocks; after the reduce-scatter pass rank r holds the full reduction of
// block r, and the allgather pass circulates the reduced blocks. Each rank sends and receives
// 2(n-1)/n of the buffer in 2(n-1) pipelined steps. Every element is reduced along one fixed
// path, then copied, so all ranks end with bitwise identical results.
// kAvg reduces as a sum; the caller divides once at the end.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

void allreduce_ring(CollectiveContext& c, void* data, size_t count, DType dtype, ReduceOp op);

}  // namespace dtrain::algorithms
