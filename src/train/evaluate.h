// Evaluation on a test split, sharded over ranks.
//
// Rank r of W evaluates the contiguous rows [r*N/W, (r+1)*N/W) of the split in batches of
// `batch_size`; the sums (loss weighted by counted units, correct, units) are allreduced, so every
// rank returns the same result. Units are examples (classification, regression) or tokens (lm).
// Collective when comm has more than one rank.
#pragma once

#include <cstdint>
#include <optional>

#include "dtrain/communicator.h"
#include "dtrain/data.h"
#include "dtrain/models.h"

namespace dtrain {

struct EvalResult {
  double loss = 0;                 // mean over units
  std::optional<double> accuracy;  // classification / lm only
};

EvalResult evaluate(const ModelHandle& model, const Dataset& test, Communicator* comm,
                    int64_t batch_size);

// Whether accuracy is defined for a task (count_correct accepts it).
bool task_has_accuracy(const std::string& task);

}  // namespace dtrain
