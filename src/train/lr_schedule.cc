#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dtrain {

double learning_rate_at(const TrainConfig& c, int64_t step, int64_t total_steps) {
  if (step < c.warmup_steps) {
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  }
  int64_t after = step - c.warmup_steps;
  switch (c.schedule) {
    case LrScheduleKind::kConstant:
      return c.lr;
    case LrScheduleKind::kWarmupCosine: {
      double span = static_cast<double>(std::max<int64_t>(1, total_steps - c.warmup_steps));
      double p = std::clamp(static_cast<double>(after) / span, 0.0, 1.0);
      return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
    }
    case LrScheduleKind::kStep:
      return c.lr * std::pow(c.gamma, static_cast<double>(after / c.step_size));
  }
  return c.lr;
}

}  // namespace dtrain
