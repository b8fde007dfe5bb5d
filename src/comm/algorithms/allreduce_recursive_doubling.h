// Recursive-doubling allreduce, pipelined by segments (the default for small messages).
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
// Cost: log2(p) + 2 message latencies, each moving the whole buffer. On two ranks this moves
// exactly as many bytes as a ring (n/2 each way, twice) in one step instead of two, but reduces
// the whole buffer instead of half of it, so the ring takes over above ~1 MiB (communicator.h).
//
// Pipelining. The buffer is cut into segments (rd_segments: the first at most inline_max_bytes(n),
// the rest c.segment_bytes). Every stage (fold, each round, unfold) sends segment by segment,
// and a segment reduced in one stage is sent on in the next stage at once, so the reduction of
// one segment overlaps the transfer of the next and the stages overlap each other. Receives are
// posted kRdDepth segments ahead into scratch slots, for every stage at the start, so a
// sender's segment rarely waits for the receiver's "ready" notification.
// kAvg reduces as a sum; the caller divides once at the end.
// With verification, each rank's first segment of its input (fold, or round 1) may travel
// inline with its descriptor (descriptor.h); recursive_doubling_input_peer names that peer and
// rd_inline_bytes its size.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

inline constexpr size_t kRdDepth = 4;

// The peer that receives this rank's input unreduced as its first message (-1: none).
int recursive_doubling_input_peer(int rank, int n);

// Bytes of the first segment of a `bytes`-byte buffer among n ranks (the part that can travel
// inline).
size_t rd_inline_bytes(size_t bytes, int n);

// The segments of a `bytes`-byte buffer of `esize`-byte elements among n ranks: {offset, bytes}.
std::vector<std::pair<size_t, size_t>> rd_segments(size_t bytes, size_t esize, size_t segment_bytes,
                                                   int n);

void allreduce_recursive_doubling(CollectiveContext& c, void* data, size_t count, DType dtype,
                                  ReduceOp op);

}  // namespace dtrain::algorithms
