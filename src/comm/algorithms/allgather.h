// Allgather with per-rank sizes (allgather is the equal-sizes case).
//
// Algorithm. recv is laid out as n blocks, block r = rank r's contribution (counts[r] elements).
// Every rank first copies its own send into its block. Small totals (<= c.small_bytes): every
// rank sends its block to every other rank directly (one message latency, n-1 messages out).
// Larger totals: a ring pass (ring_pass.h, first = rank) circulates the blocks in n-1 pipelined
// steps, each rank sending and receiving (n-1)/n of the total.
#pragma once

#include <vector>

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

void allgatherv(CollectiveContext& c, const void* send, void* recv, const std::vector<size_t>& counts,
                DType dtype);

}  // namespace dtrain::algorithms
