// Recursive-doubling allreduce (latency-optimal; the default for small messages).
//
// Algorithm. Let p be the largest power of two <= n and rem = n - p.
//  1. Fold: among the first 2*rem ranks, each even rank sends its buffer to the odd rank above
//     it, which reduces it; the even ranks then sit out. p ranks remain, renumbered 0..p-1
//     (odd rank 2i+1 -> i for i < rem, rank j >= 2*rem -> j - rem).
//  2. For mask = 1, 2, 4, ... < p: exchange the whole buffer with the rank whose new number
//     differs in bit `mask`, and reduce. After log2(p) rounds every remaining rank holds the
//     full reduction; partners compute a (op) b and b (op) a, which are identical for sum,
//     min and max, so results agree bitwise across ranks.
//  3. Unfold: each odd rank of the first 2*rem sends the result to the even rank below it.
// Cost: log2(p) + 2 message latencies, each moving the whole buffer.
// kAvg reduces as a sum; the caller divides once at the end.
// With verification, each rank's first message of its input (fold, or round 1) may travel
// inline with its descriptor (descriptor.h); recursive_doubling_input_peer names that peer.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

// The peer that receives this rank's input unreduced as its first message (-1: none).
int recursive_doubling_input_peer(int rank, int n);

void allreduce_recursive_doubling(CollectiveContext& c, void* data, size_t count, DType dtype,
                                  ReduceOp op);

}  // namespace dtrain::algorithms
