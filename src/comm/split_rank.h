// The rank a member gets in a Transport::split (private to src/comm).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "dtrain/error.h"

namespace dtrain::comm_detail {

// The position of `rank` in `ranks`: its rank in the split. InvalidArgumentError naming `who`
// when `rank` is not a member (only members call split).
inline int split_rank(const std::vector<int>& ranks, int rank, const char* who) {
  auto it = std::find(ranks.begin(), ranks.end(), rank);
  if (it == ranks.end()) {
    throw InvalidArgumentError(std::string(who) + ": split called by rank " + std::to_string(rank) +
                               " which is not a member");
  }
  return static_cast<int>(it - ranks.begin());
}

}  // namespace dtrain::comm_detail
