// The optimizer chosen by TrainConfig, and setting its learning rate per step.
//
//   sgd:   SGD with momentum (config.momentum) and L2 weight decay
//   adam:  Adam (betas 0.9, 0.999; eps 1e-8), L2 weight decay
//   adamw: AdamW (decoupled weight decay)
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "dtrain/config.h"

namespace dtrain {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& config,
                                                        std::vector<torch::Tensor> parameters);

// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace dtrain
