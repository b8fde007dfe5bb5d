// TrainLoop: the training loop of one train() call (trainer.cc) and of each round of an elastic
// run (elastic_trainer.cc). It drives a Strategy (include/dtrain/strategy.h, Note [the strategy
// seam]) and does not know which. Private to src/train.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>

#include "dtrain/communicator.h"
#include "dtrain/data.h"
#include "dtrain/strategy.h"
#include "dtrain/elastic.h"
#include "dtrain/models.h"
#include "dtrain/trainer.h"
#include "train/checkpointer.h"
#include "train/evaluate.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/train_state.h"

namespace dtrain {

// What an elastic round (or fault injection alone) adds to the loop.
struct LoopHooks {
  // Restore this (an in-memory commit agreed by the round) instead of config.resume.
  const TrainSnapshot* start = nullptr;
  // Capture an in-memory commit at the start of run() and after every commit_every steps (at the
  // loop's safe points, as checkpoints); 0 = never.
  int64_t commit_every = 0;
  std::function<void(TrainSnapshot)> on_commit;
  // Asked right after each commit except the first, on every rank: true makes the round end there
  // (the caller must make the answer collective, e.g. an allreduce).
  std::function<bool()> leave_round;
  // Fault injection: consulted before every optimizer step with the worker id (DTRAIN_RANK).
  FaultPlan* faults = nullptr;
  int worker_id = 0;
  // Set by the loop before every step: the optimizer steps completed so far.
  int64_t reached_step = 0;
  // Time spent capturing in-memory commits (seconds, accumulated by the loop).
  double commit_seconds = 0;
  // Called once, before the loop's first optimizer step.
  std::function<void()> on_first_step;
};

// Note [the training loop]. One TrainLoop runs one train() call: construction fixes the batch
// arithmetic, builds the optimizer, the checkpointer and the strategy, and restores a resumed
// snapshot;
// run() walks the epochs. The loop's position is a LoopPosition (step, epoch, samples of the
// epoch's global order consumed), so a run resumed with another global batch or world size
// continues from the same place of the same order: step s of an epoch reads the global batch
// order[p, p + G) where p = epoch_samples, and the epoch ends when fewer than G samples remain.
// With an unchanged global batch this is exactly order[s*G, (s+1)*G) for s < floor(N/G).
class TrainLoop {
 public:
  // `hooks` (optional, not owned): elastic rounds and fault injection (LoopHooks).
  TrainLoop(const TrainConfig& config, const ModelHandle& model, const DataSplits& data,
            Communicator* comm, std::ostream& log, const TrainOutput& output,
            LoopHooks* hooks = nullptr);
  // Trains to the end, or until hooks->leave_round said so (then result.interrupted is set and
  // the result holds only the position reached).
  TrainResult run();

 private:
  uint64_t bytes_sent() const { return comm_ ? comm_->stats().bytes_sent : 0; }
  double comm_seconds() const { return strategy_->stats().seconds_waiting; }
  // Gradient/parameter averaging: exact payload bytes this rank contributed, and the dense size.
  uint64_t sync_bytes() const { return strategy_->stats().bytes_communicated; }
  uint64_t sync_dense_bytes() const { return strategy_->stats().dense_equivalent_bytes; }
  TrainParts parts() const;

  // Resumes from config.resume when set (collective); sets pos_, acc_ and the total step count.
  void resume();
  // One optimizer step on the global batch order[pos_.epoch_samples, + global_).
  void train_step(const std::vector<int64_t>& order);
  void log_interval();
  void end_epoch();
  void run_eval(int64_t epoch);
  void maybe_save();
  // Elastic: the in-memory commit every hooks_->commit_every steps; true = leave the round.
  bool maybe_commit();
  void commit_now();  // the in-memory commit (hooks_ set)
  void before_step();

  const TrainConfig& config_;
  const ModelHandle& model_;
  const DataSplits& data_;
  Communicator* comm_;  // null or size 1: one process
  std::ostream& log_;
  LoopHooks* hooks_;
  const int world_;
  const int rank_;
  const int64_t global_;      // samples per optimizer step, all ranks
  const int64_t per_worker_;  // samples per optimizer step, this rank
  const int64_t micro_;       // samples per micro-batch
  const int64_t n_train_;
  const int64_t steps_per_epoch_;
  int64_t total_steps_ = 0;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<Strategy> strategy_;
  TensorMap resumed_strategy_;  // a resumed snapshot's shared strategy state, until set-up
  MetricsSink metrics_;
  std::optional<Progress> progress_;
  bool terminal_ = false;
  Checkpointer checkpointer_;

  LoopPosition pos_;
  RankState acc_;  // this rank's loss accumulators (interval and epoch)
  StepPhases phases_;
  double lr_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point interval_start_;
  double eval_seconds_ = 0;
  int64_t resumed_samples_ = 0;
  int64_t last_epoch_ = -1;  // the last epoch this run ended (labels the final evaluation)
  std::optional<EvalResult> last_eval_;
  int64_t last_eval_step_ = -1;
};


// The dataset and model a config names (train() and train_elastic() load them this way).
DatasetOptions dataset_options_of(const TrainConfig& config);
ModelOptions model_options_of(const TrainConfig& config, const Dataset& train_split);

}  // namespace dtrain
