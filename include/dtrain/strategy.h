// Strategy: how the ranks of a training run keep their model replicas consistent. The one
// training loop (trainer.h) drives a strategy; it does not know which one it drives.
//
//   auto strategy = make_strategy(config);              // "ddp" | "localsgd" | "diloco"
//   strategy->setup({module, comm, optimizer, step});   // collective: e.g. rank 0's parameters
//   strategy->load_state(shared, mine);                 // a resumed run's strategy state
//   for (...) {
//     strategy->step(micro_batches, loss_of_micro_batch, is_last_step, phases);
//     if (strategy->replicas_agree()) { ... a checkpoint or an elastic commit may be taken ... }
//   }
//
// Note [the strategy seam]. The loop owns the data (which samples a rank reads), the learning-rate
// schedule, evaluation, metrics, checkpoints and elastic rounds. A strategy owns everything
// between "here are this rank's micro-batches" and "the optimizer has stepped": backward, any
// communication, the optimizer step itself, and any state of its own. That state has two parts,
// both carried by the common checkpoint format and by the elastic in-memory commits:
//   - shared: the same on every rank (DiLoCo's outer momentum), a TensorMap written once, as the
//     checkpoint file "strategy.safetensors";
//   - per rank: float vectors (compression residuals, codec counters), written per rank and
//     resharded by the mean rule of train_state.h (Note [resharding rank states]).
// A strategy whose replicas differ between synchronizations (local SGD, DiLoCo) says so through
// replicas_agree(): the loop takes checkpoints and commits only where it returns true, and the
// last step of a run always synchronizes.
//
// The manifest records name() and options(); resuming under another strategy is a MismatchError.
//
// Thread safety: one trainer thread drives a strategy.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtrain/checkpoint.h"
#include "dtrain/codec.h"
#include "dtrain/communicator.h"
#include "dtrain/compress.h"
#include "dtrain/config.h"

namespace dtrain {

struct StepPhases;  // trainer.h

// What set-up gives a strategy (not owned; they outlive it).
struct StrategyContext {
  std::shared_ptr<torch::nn::Module> module;
  Communicator* comm = nullptr;  // null or size 1: one process
  torch::optim::Optimizer* optimizer = nullptr;
  int64_t initial_step = 0;  // optimizer steps already taken (a resumed run); same on every rank
};

// Communication of one rank, cumulative over the run.
struct StrategyStats {
  uint64_t allreduces = 0;              // gradient-bucket or parameter allreduces issued
  uint64_t bytes_communicated = 0;      // exact payload bytes this rank contributed to them
  uint64_t dense_equivalent_bytes = 0;  // the same allreduces had they gone dense
  uint64_t synchronizations = 0;        // steps that synchronized the replicas (ddp: every step)
  double seconds_waiting = 0;           // time the trainer thread blocked on that communication
  CompressionStats compression;         // the compressor's, when compressing
};

// A strategy's state (see Note [the strategy seam]).
struct StrategyState {
  TensorMap shared;
  CodecState rank;
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  // The name the config and the manifest use ("ddp") and the options that define it
  // (recorded in the manifest; {"inner_steps": "50", ...}).
  virtual std::string name() const = 0;
  virtual std::map<std::string, std::string> options() const = 0;

  // Collective. Once, before the first step, after the model and optimizer hold the run's
  // starting state.
  virtual void setup(const StrategyContext& context) = 0;

  // One optimizer step on this rank's micro-batches: loss_of(j) runs the forward pass of
  // micro-batch j (0 <= j < micro_batches) and returns its loss, already divided by
  // micro_batches. Returns the sum of the losses (this rank's step loss). `last` marks the run's
  // last step (a strategy with periodic synchronization synchronizes there). Times its phases
  // into `phases` (trainer.h StepPhases: forward, backward, sync, optimizer).
  virtual double step(int64_t micro_batches, const std::function<torch::Tensor(int64_t)>& loss_of,
                      bool last, StepPhases& phases) = 0;

  // Whether every rank holds the same parameters now (between steps).
  virtual bool replicas_agree() const { return true; }

  // The state to checkpoint (between steps, where replicas_agree()), and its inverse (after
  // setup). load_state throws MismatchError when the state is not this strategy's.
  virtual StrategyState state() const { return {}; }
  virtual void load_state(const StrategyState& state);

  virtual StrategyStats stats() const = 0;
};

// The strategy config.strategy names, with its options from the config. Throws
// InvalidArgumentError for an unknown name or a bad option.
std::unique_ptr<Strategy> make_strategy(const TrainConfig& config);

// The strategies make_strategy knows, in the order the help lists them.
const std::vector<std::string>& strategy_names();

// The strategy a config key belongs to ("" when every strategy takes it): "bucket_mb" -> "ddp".
std::string strategy_of_config_key(const std::string& key);

// Throws InvalidArgumentError when `config` sets a key of a strategy other than
// config.strategy away from its default (the message names the key and both strategies), or
// names an unknown strategy.
void check_strategy_keys(const TrainConfig& config);

}  // namespace dtrain
