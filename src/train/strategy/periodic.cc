// The strategies whose replicas train apart and meet every few steps.
//
// localsgd (local SGD, Stich 2019; Lin et al. 2020 "post-local SGD"): every rank takes ordinary
// optimizer steps on its own gradients, and every local_sgd_period steps the parameters are
// replaced by their mean over the ranks.
//
// diloco (Douillard et al. 2023, "DiLoCo"): every rank takes inner_steps (H) steps of the inner
// optimizer (the run's optimizer), then all ranks take one outer step together. The outer
// gradient is the averaged parameter delta, Δ = anchor - mean_r(p_r), where the anchor holds the
// parameters after the last outer step; the outer optimizer is SGD with (Nesterov) momentum:
//   m      <- μ m + Δ
//   update <- nesterov ? Δ + μ m : m
//   anchor <- anchor - η update,   and every rank's parameters <- anchor.
// With η = 1 and μ = 0 the outer step is the average, and diloco is local SGD with period H; with
// H = 1 as well, inner SGD makes it synchronous DDP (tests/train/strategy_test.cc).
//
// Both average deltas through ReplicaAverager (Note [averaging parameter deltas]), so --compress
// compresses what they send, with error feedback kept per rank. The inner optimizers' states stay
// per rank; a checkpoint holds rank 0's (docs/training.md "Strategies").
#include <chrono>
#include <optional>

#include "dtrain/error.h"
#include "dtrain/trainer.h"
#include "train/strategy/replica_average.h"
#include "train/strategy/strategies.h"
#include "train/train_state.h"

namespace dtrain {
namespace {

class PeriodicStrategy : public Strategy {
 public:
  PeriodicStrategy(const TrainConfig& config, int64_t period)
      : period_(period),
        compress_(config.compress),
        warmup_steps_(config.compress_warmup_steps),
        seed_(config.seed) {}

  void setup(const StrategyContext& context) override {
    optimizer_ = context.optimizer;
    step_ = context.initial_step;
    averager_.emplace(context.module, context.comm, compress_, warmup_steps_, seed_);
  }

  double step(int64_t micro_batches, const std::function<torch::Tensor(int64_t)>& loss_of,
              bool last, StepPhases& phases) override {
    double loss = local_step(*optimizer_, micro_batches, loss_of, phases);
    ++step_;
    agree_ = false;
    if (step_ % period_ == 0 || last) {
      auto t0 = std::chrono::steady_clock::now();
      synchronize(averager_->mean_delta(step_));
      agree_ = true;
      phases.sync_s +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    return loss;
  }

  bool replicas_agree() const override { return agree_; }
  StrategyStats stats() const override { return averager_ ? averager_->stats() : StrategyStats{}; }

 protected:
  // Applies the synchronization: `mean_delta` = mean_r(p_r) - anchor, one per parameter.
  virtual void synchronize(std::vector<torch::Tensor> mean_delta) = 0;

  StrategyState rank_state() const { return {{}, averager_->compression_state()}; }

  const int64_t period_;
  const std::string compress_;
  const int64_t warmup_steps_;
  const uint64_t seed_;
  torch::optim::Optimizer* optimizer_ = nullptr;
  std::optional<ReplicaAverager> averager_;
  int64_t step_ = 0;
  bool agree_ = true;
};

class LocalSgdStrategy final : public PeriodicStrategy {
 public:
  explicit LocalSgdStrategy(const TrainConfig& config)
      : PeriodicStrategy(config, config.local_sgd_period) {}

  std::string name() const override { return "localsgd"; }
  std::map<std::string, std::string> options() const override {
    return {{"local_sgd_period", std::to_string(period_)},
            {"compress", compress_},
            {"compress_warmup_steps", std::to_string(warmup_steps_)}};
  }
  StrategyState state() const override { return rank_state(); }
  void load_state(const StrategyState& state) override {
    Strategy::load_state(state);
    averager_->load_compression_state(state.rank);
  }

 private:
  void synchronize(std::vector<torch::Tensor> mean_delta) override {
    for (size_t i = 0; i < mean_delta.size(); ++i) mean_delta[i].add_(averager_->anchor()[i]);
    averager_->set_parameters(mean_delta);
  }
};

class DilocoStrategy final : public PeriodicStrategy {
 public:
  explicit DilocoStrategy(const TrainConfig& config)
      : PeriodicStrategy(config, config.inner_steps),
        lr_(config.outer_lr),
        momentum_(config.outer_momentum),
        nesterov_(config.outer_nesterov) {
    if (nesterov_ && momentum_ == 0) nesterov_ = false;  // the same update either way
  }

  std::string name() const override { return "diloco"; }
  std::map<std::string, std::string> options() const override {
    return {{"inner_steps", std::to_string(period_)},
            {"outer_lr", option_text(lr_)},
            {"outer_momentum", option_text(momentum_)},
            {"outer_nesterov", nesterov_ ? "true" : "false"},
            {"compress", compress_},
            {"compress_warmup_steps", std::to_string(warmup_steps_)}};
  }

  // Shared: the outer momentum "outer_momentum/<parameter>", once an outer step has made it.
  StrategyState state() const override {
    StrategyState s = rank_state();
    for (size_t i = 0; i < momentum_buffers_.size(); ++i) {
      const std::string name = kMomentumPrefix + averager_->names()[i];
      s.shared[name] = record_of(name, momentum_buffers_[i]);
    }
    return s;
  }
  void load_state(const StrategyState& state) override {
    momentum_buffers_.clear();
    const auto& names = averager_->names();
    if (!state.shared.empty()) {
      if (state.shared.size() != names.size()) {
        throw MismatchError("diloco state: " + std::to_string(state.shared.size()) +
                            " shared tensors for " + std::to_string(names.size()) + " parameters");
      }
      for (size_t i = 0; i < names.size(); ++i) {
        auto it = state.shared.find(kMomentumPrefix + names[i]);
        if (it == state.shared.end()) {
          throw MismatchError("diloco state: no outer momentum for parameter '" + names[i] + "'");
        }
        torch::Tensor m = torch::empty_like(averager_->anchor()[i]);
        copy_into(m, it->second, "outer momentum");
        momentum_buffers_.push_back(m);
      }
    }
    averager_->load_compression_state(state.rank);
  }

 private:
  static constexpr const char* kMomentumPrefix = "outer_momentum/";

  void synchronize(std::vector<torch::Tensor> mean_delta) override {
    torch::NoGradGuard no_grad;
    const auto& anchor = averager_->anchor();
    if (momentum_ > 0 && momentum_buffers_.empty()) {
      for (const auto& a : anchor) momentum_buffers_.push_back(torch::zeros_like(a));
    }
    std::vector<torch::Tensor> next;
    next.reserve(anchor.size());
    for (size_t i = 0; i < anchor.size(); ++i) {
      torch::Tensor g = mean_delta[i].neg_();  // Δ = anchor - mean(p)
      torch::Tensor update = g;
      if (momentum_ > 0) {
        torch::Tensor& m = momentum_buffers_[i];
        m.mul_(momentum_).add_(g);
        update = nesterov_ ? g.add(m, momentum_) : m;
      }
      next.push_back(anchor[i] - lr_ * update);
    }
    averager_->set_parameters(next);
  }

  const double lr_;
  const double momentum_;
  bool nesterov_;
  std::vector<torch::Tensor> momentum_buffers_;  // empty until the first outer step (or momentum 0)
};

}  // namespace

std::unique_ptr<Strategy> make_local_sgd_strategy(const TrainConfig& config) {
  return std::make_unique<LocalSgdStrategy>(config);
}

std::unique_ptr<Strategy> make_diloco_strategy(const TrainConfig& config) {
  return std::make_unique<DilocoStrategy>(config);
}

}  // namespace dtrain
