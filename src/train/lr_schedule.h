// Learning-rate schedules: the rate of optimizer step t (0-based) of a run of `total_steps`.
//
//   warm-up (any schedule, t < warmup_steps):  lr * (t + 1) / warmup_steps
//   constant:                                  lr
//   warmup-cosine:  min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2,
//                   p = (t - warmup) / max(1, total_steps - warmup), clamped to [0, 1]
//   step:           lr * gamma ^ floor((t - warmup) / step_size)
#pragma once

#include <cstdint>

#include "dtrain/config.h"

namespace dtrain {

double learning_rate_at(const TrainConfig& config, int64_t step, int64_t total_steps);

}  // namespace dtrain
