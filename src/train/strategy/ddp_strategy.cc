// ddp: synchronous data parallelism through DistributedDataParallel (include/dtrain/ddp.h).
// Every optimizer step averages the gradients over the ranks; micro-batches before the last only
// accumulate (no communication). One process runs the plain loop: no DDP, nothing to average.
#include <chrono>

#include "dtrain/ddp.h"
#include "dtrain/trainer.h"
#include "train/strategy/strategies.h"

namespace dtrain {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

class DdpStrategy final : public Strategy {
 public:
  explicit DdpStrategy(const TrainConfig& config) {
    options_.bucket_bytes = static_cast<size_t>(config.bucket_mb * 1024 * 1024);
    options_.compress = config.compress;
    options_.compress_warmup_steps = static_cast<int>(config.compress_warmup_steps);
    options_.compress_seed = config.seed;
  }

  std::string name() const override { return "ddp"; }
  std::map<std::string, std::string> options() const override {
    return {{"bucket_mb", option_text(static_cast<double>(options_.bucket_bytes) / (1 << 20))},
            {"compress", options_.compress},
            {"compress_warmup_steps", std::to_string(options_.compress_warmup_steps)}};
  }

  void setup(const StrategyContext& context) override {
    optimizer_ = context.optimizer;
    if (context.comm && context.comm->size() > 1) {
      DdpOptions options = options_;
      options.initial_step = context.initial_step;
      ddp_ = std::make_unique<DistributedDataParallel>(context.module, *context.comm, options);
    }
  }

  double step(int64_t micro_batches, const std::function<torch::Tensor(int64_t)>& loss_of,
              bool /*last*/, StepPhases& phases) override {
    if (!ddp_) return local_step(*optimizer_, micro_batches, loss_of, phases);
    double step_loss = 0;
    auto t0 = Clock::now();
    for (int64_t j = 0; j < micro_batches; ++j) {
      torch::Tensor loss = loss_of(j);
      ddp_->prepare_backward(/*sync=*/j + 1 == micro_batches);
      auto t1 = Clock::now();
      phases.forward_s += seconds_between(t0, t1);
      loss.backward();
      auto t2 = Clock::now();
      phases.backward_s += seconds_between(t1, t2);
      ddp_->finish_backward();
      step_loss += loss.item<double>();
      t0 = Clock::now();
      phases.sync_s += seconds_between(t2, t0);
    }
    optimizer_->step();
    ddp_->after_optimizer_step();
    ++synchronizations_;
    phases.optimizer_s += seconds_between(t0, Clock::now());
    return step_loss;
  }

  StrategyState state() const override {
    return {{}, ddp_ ? ddp_->compression_state() : CodecState{}};
  }
  void load_state(const StrategyState& state) override {
    Strategy::load_state(state);
    // One process does not compress: a resharded run from many ranks drops their residuals.
    if (ddp_) ddp_->load_compression_state(state.rank);
  }

  StrategyStats stats() const override {
    StrategyStats s;
    if (!ddp_) return s;
    const DdpStats& d = ddp_->stats();
    s.allreduces = d.allreduces;
    s.bytes_communicated = d.bytes_communicated;
    s.dense_equivalent_bytes = d.dense_equivalent_bytes;
    s.seconds_waiting = d.seconds_waiting;
    s.synchronizations = synchronizations_;
    s.compression = d.compression;
    return s;
  }

 private:
  DdpOptions options_;
  torch::optim::Optimizer* optimizer_ = nullptr;
  std::unique_ptr<DistributedDataParallel> ddp_;
  uint64_t synchronizations_ = 0;
};

}  // namespace

std::unique_ptr<Strategy> make_ddp_strategy(const TrainConfig& config) {
  return std::make_unique<DdpStrategy>(config);
}

}  // namespace dtrain
