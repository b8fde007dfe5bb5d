// The strategies behind make_strategy (include/dtrain/strategy.h). Private to src/train.
#pragma once

#include <memory>

#include "dtrain/config.h"
#include "dtrain/strategy.h"

namespace dtrain {

std::unique_ptr<Strategy> make_ddp_strategy(const TrainConfig& config);
std::unique_ptr<Strategy> make_local_sgd_strategy(const TrainConfig& config);
std::unique_ptr<Strategy> make_diloco_strategy(const TrainConfig& config);

// The step of a strategy that does not communicate during backward: forward and backward of every
// micro-batch (gradients accumulate), then the optimizer step. Returns the step loss.
double local_step(torch::optim::Optimizer& optimizer, int64_t micro_batches,
                  const std::function<torch::Tensor(int64_t)>& loss_of, StepPhases& phases);

// "0.7" rather than "0.69999999999999996": the shortest text that reads back as `v`.
std::string option_text(double v);

}  // namespace dtrain
