// Broadcast: root's buffer to every rank.
//
// Algorithm. Small messages (<= c.small_bytes): the root sends the buffer to each rank directly
// (one message latency). Large messages: a pipelined chain root -> root+1 -> ... -> root+n-1
// (mod n); the buffer is cut into segments of c.segment_bytes and each rank forwards a segment
// as soon as it arrives, so the time approaches one buffer transfer plus n-2 segment latencies
// and every link carries the buffer once.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

void broadcast(CollectiveContext& c, void* data, size_t count, DType dtype, int root);

}  // namespace dtrain::algorithms
