// Reduce-scatter with per-rank block sizes.
//
// Algorithm. send holds n blocks (block r: counts[r] elements). The input is copied into a
// long-lived scratch buffer, a ring reduce-scatter pass (ring_pass.h, first = rank - 1) leaves
// the full reduction of block r on rank r, and rank r copies it into recv. Each rank sends and
// receives (n-1)/n of the input in n-1 pipelined steps. kAvg reduces as a sum; the caller
// divides once at the end.
#pragma once

#include <vector>

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

void reduce_scatter(CollectiveContext& c, const void* send, void* recv,
                    const std::vector<size_t>& counts, DType dtype, ReduceOp op);

}  // namespace dtrain::algorithms
