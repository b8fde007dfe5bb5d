// Ring pass: the building block of the ring reduce-scatter and ring allgather.
//
// Algorithm. The n ranks form a ring (right = rank+1, left = rank-1, mod n) and the buffer is cut
// into n blocks. A pass has n-1 steps; at step s a rank sends block (first - s) mod n to its
// right neighbour and receives block (first - s - 1) mod n from its left one, either reducing it
// into its own copy (reduce-scatter) or storing it (allgather). The block received at step s is
// exactly the block sent at step s+1, so every block travels n-1 hops around the ring.
//   reduce-scatter: first = rank - 1; after the pass block `rank` holds the full reduction.
//   allgather:      first = rank;     rank r's block r reaches everyone.
// Each rank sends and receives (n-1)/n of the buffer: bandwidth-optimal.
//
// Pipelining. Blocks are cut into segments of at most c.segment_bytes; a segment is forwarded as
// soon as it has been received (and reduced), so reduction overlaps the network and the pass
// behaves like n-1 pipelined hops rather than n-1 store-and-forward steps. Receives are posted
// kRingDepth segments ahead (into scratch slots when reducing, directly into the buffer when
// copying), so a sender rarely waits for the receiver's "ready" notification.
// Sends are waited for at the end of the pass; no region being sent is written during the pass.
#pragma once

#include <optional>
#include <vector>

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

inline constexpr int kRingDepth = 4;

// data: the whole buffer (blocks index into it, in elements of dtype). With `op`, received
// segments are reduced into data; without, they are stored.
void ring_pass(CollectiveContext& c, char* data, const std::vector<Block>& blocks, DType dtype,
               std::optional<ReduceOp> op, int first, Phase phase);

}  // namespace dtrain::algorithms
