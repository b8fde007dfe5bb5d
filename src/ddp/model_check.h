// Checks that every rank holds a model of the same structure before data parallelism starts.
#pragma once

#include <torch/torch.h>

#include "dtrain/communicator.h"

namespace dtrain {

// Collective. Compares the names, dtypes and shapes of every parameter and buffer across ranks.
// Throws MismatchError naming the first differing entry and the two ranks, on every rank alike.
void check_same_model(const torch::nn::Module& module, Communicator& comm);

}  // namespace dtrain
