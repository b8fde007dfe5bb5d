// Alltoall: block j of every rank's send goes to rank j.
//
// Algorithm. Pairwise direct exchange: every rank posts its n-1 receives (block j of recv from
// rank j) and its n-1 sends (block j of send to rank j) at once and copies its own block
// locally. One message latency; each link carries one block in each direction.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace dtrain::algorithms {

void alltoall(CollectiveContext& c, const void* send, void* recv, size_t count, DType dtype);

}  // namespace dtrain::algorithms
