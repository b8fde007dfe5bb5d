// make_strategy, the strategies' config keys, and what every strategy shares.
#include "dtrain/strategy.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "dtrain/error.h"
#include "dtrain/trainer.h"
#include "train/config_internal.h"
#include "train/strategy/strategies.h"

namespace dtrain {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The keys of each strategy's option group. Keys not listed here (compress,
// compress_warmup_steps, ...) are taken by every strategy.
struct KeyGroup {
  const char* key;
  const char* strategy;
};
constexpr KeyGroup kKeyGroups[] = {
    {"bucket_mb", "ddp"},          {"local_sgd_period", "localsgd"},
    {"inner_steps", "diloco"},     {"outer_lr", "diloco"},
    {"outer_momentum", "diloco"},  {"outer_nesterov", "diloco"},
};

}  // namespace

void Strategy::load_state(const StrategyState& state) {
  if (!state.shared.empty()) {
    throw MismatchError("strategy " + name() + " keeps no shared state, but the saved state holds '" +
                        state.shared.begin()->first + "'");
  }
}

const std::vector<std::string>& strategy_names() {
  static const std::vector<std::string> names = {"ddp", "localsgd", "diloco"};
  return names;
}

std::string strategy_of_config_key(const std::string& key) {
  for (const KeyGroup& g : kKeyGroups) {
    if (key == g.key) return g.strategy;
  }
  return "";
}

void check_strategy_keys(const TrainConfig& config) {
  const auto& names = strategy_names();
  if (std::find(names.begin(), names.end(), config.strategy) == names.end()) {
    throw InvalidArgumentError("config key 'strategy': unknown strategy '" + config.strategy +
                               "' (expected ddp, localsgd or diloco)");
  }
  const TrainConfig defaults;
  for (const KeyGroup& g : kKeyGroups) {
    if (config.strategy == g.strategy) continue;
    if (get_config_value(config, g.key) != get_config_value(defaults, g.key)) {
      throw InvalidArgumentError("config key '" + std::string(g.key) + "' belongs to strategy " +
                                 g.strategy + ", but this run uses strategy " + config.strategy +
                                 " (add --strategy " + g.strategy + ", or drop the key)");
    }
  }
}

std::unique_ptr<Strategy> make_strategy(const TrainConfig& config) {
  check_strategy_keys(config);
  if (config.strategy == "localsgd") return make_local_sgd_strategy(config);
  if (config.strategy == "diloco") return make_diloco_strategy(config);
  return make_ddp_strategy(config);
}

double local_step(torch::optim::Optimizer& optimizer, int64_t micro_batches,
                  const std::function<torch::Tensor(int64_t)>& loss_of, StepPhases& phases) {
  double step_loss = 0;
  auto t0 = Clock::now();
  for (int64_t j = 0; j < micro_batches; ++j) {
    torch::Tensor loss = loss_of(j);
    auto t1 = Clock::now();
    phases.forward_s += seconds_between(t0, t1);
    loss.backward();
    step_loss += loss.item<double>();
    t0 = Clock::now();
    phases.backward_s += seconds_between(t1, t0);
  }
  optimizer.step();
  phases.optimizer_s += seconds_between(t0, Clock::now());
  return step_loss;
}

std::string option_text(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

}  // namespace dtrain
