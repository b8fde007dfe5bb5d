// The state of a training run, captured to host memory and restored: the unit of checkpoints (to
// disk, through include/dtrain/checkpoint.h) and of in-memory commits (elastic recovery).
//
//   TrainParts parts{module, optimizer, config.optimizer, strategy};  // live objects, not owned
//   TrainSnapshot s = capture(parts, position, my_rank_state);      // copies; ~memcpy speed
//   ...
//   RankState mine = restore(s, parts, rank, world);   // parameters, buffers, optimizer, RNG
//   strategy->load_state({s.strategy_shared, mine.compression});   // after strategy set-up
//   Checkpoint c = to_checkpoint(std::move(gathered));   TrainSnapshot t = from_checkpoint(c);
//
// What a snapshot holds:
//   - position: step, epoch, samples of the epoch's global order consumed (Note [global batches]
//     in trainer.h: a run with another global batch or world size continues from the same place
//     of the same order), samples consumed in all, the mean loss of each finished epoch;
//   - model: every parameter AND buffer, by its module name ("fc1.weight"), host copies;
//   - optimizer state by parameter name: "<param>.momentum_buffer" (SGD), "<param>.exp_avg",
//     "<param>.exp_avg_sq", "<param>.max_exp_avg_sq" (amsgrad only), "<param>.step" (int64
//     scalar) for Adam/AdamW. A parameter the optimizer has not stepped yet has no entries;
//   - the strategy (include/dtrain/strategy.h): its name, its options, and its shared state
//     (e.g. DiLoCo's outer momentum "outer_momentum/<param>");
//   - rank states (RankState), one per rank: the strategy's per-rank state (compression
//     error-feedback residuals, codec counters, PowerSGD's Q), torch's default CPU generator, and
//     the loss accumulators of
//     the current log interval and epoch (so resumed logs are bitwise those of an uninterrupted
//     run). capture() fills one entry, this rank's; gather_rank_states (checkpointer.h) collects
//     every rank's on rank 0 before a save.
//
// Note [resharding rank states]. When a snapshot taken by W ranks is restored on M != W ranks,
// every new rank gets the elementwise MEAN of the W old ranks' residuals and loss accumulators,
// and old rank 0's other codec state (counters and PowerSGD's Q, equal on every rank) and RNG.
// Why the mean: an averaged gradient is (1/W) * sum_r decode(compress(g_r + e_r)), so a residual
// e_r eventually contributes e_r / W to the update and the old ranks together contribute
// mean(e). With M new ranks each holding mean(e), they contribute (1/M) * M * mean(e) = mean(e):
// the same total, so no accumulated gradient is lost or counted twice. The loss accumulators
// follow the same rule, which keeps the epoch's mean loss the mean over steps of the rank-mean
// step loss. World size unchanged: rank r gets exactly rank r's state.
//
// Thread safety: none; call from the training thread between optimizer steps (never while a
// backward or an asynchronous bucket allreduce is in flight).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dtrain/checkpoint.h"
#include "dtrain/codec.h"
#include "dtrain/config.h"

namespace dtrain {

class Strategy;

// The live objects a snapshot is taken from and restored into (not owned).
struct TrainParts {
  torch::nn::Module* module = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;
  OptimizerKind optimizer_kind = OptimizerKind::kSgd;
  Strategy* strategy = nullptr;            // null: no strategy state (tests)
  std::string model_name;                  // labels the checkpoint's model signature
};

// Where the training loop stands, in counters (identical on every rank).
struct LoopPosition {
  int64_t step = 0;           // optimizer steps completed
  int64_t epoch = 0;          // epoch in progress
  int64_t epoch_samples = 0;  // samples of this epoch's global order consumed (a multiple of the
                              // global batch that consumed them)
  int64_t samples = 0;        // training samples consumed since the run began, all ranks
  std::vector<double> epoch_losses;  // mean training loss of each finished epoch
  bool operator==(const LoopPosition&) const = default;
};

// The part of the state that differs between ranks.
struct RankState {
  CodecState compression;        // the strategy's per-rank state (Strategy::state().rank)
  std::vector<uint8_t> rng_cpu;  // torch's default CPU generator state (empty: not captured)
  double interval_loss_sum = 0;  // this rank's step losses since the last log line
  double interval_steps = 0;
  double epoch_loss_sum = 0;  // this rank's step losses in the current epoch
  double epoch_steps = 0;
  bool operator==(const RankState&) const = default;
};

struct TrainSnapshot {
  LoopPosition position;
  int world_size = 1;        // ranks of the run that captured it
  int64_t global_batch = 0;  // its global batch (informational: a resume may use another)
  std::string model_name;
  OptimizerKind optimizer_kind = OptimizerKind::kSgd;
  std::string strategy = "ddp";                          // Strategy::name()
  std::map<std::string, std::string> strategy_options;  // Strategy::options()
  TensorMap strategy_shared;                             // Strategy::state().shared
  TensorMap model;      // parameters and buffers
  TensorMap optimizer;  // see the header comment for names
  // capture(): {this rank's}; after gather_rank_states on rank 0 and from_checkpoint(): one per
  // rank of world_size, in rank order.
  std::vector<RankState> ranks;
};

// Copies the live state into host memory (parameters, buffers and optimizer state as contiguous
// CPU bytes; the strategy's name, options and state; torch's CPU generator). `rank_state` carries the loop's loss
// accumulators; its compression and rng fields are overwritten. Does no communication.
TrainSnapshot capture(const TrainParts& parts, const LoopPosition& position, RankState rank_state,
                      int world_size, int64_t global_batch);

// The rank state rank `rank` of `world` resumes with (Note [resharding rank states]). A snapshot
// with a single rank state (an in-memory one of this rank) gives it unchanged. Throws
// MismatchError when the old ranks' residuals disagree in names or sizes.
RankState rank_state_for(const TrainSnapshot& snapshot, int rank, int world);

// Writes the snapshot into the live objects: parameters and buffers (by name), the optimizer
// state and torch's CPU generator, taking this rank's RankState by rank_state_for. Returns that
// RankState (the loop's accumulators, and the strategy's per-rank state, which the caller loads
// into the strategy once it is set up: Strategy::load_state).
// Throws MismatchError when the snapshot belongs to another model (names, shapes, dtypes) or
// another optimizer kind; the live objects may then be partly written.
RankState restore(const TrainSnapshot& snapshot, const TrainParts& parts, int rank, int world);

// The on-disk form (docs/checkpoints.md "What the trainer saves"): stems "model", "optimizer",
// "strategy" (the strategy's shared state, when it has one), "residuals-rank00003" (one per rank
// with per-rank strategy state); RNG states as rng "torch_cpu-rank00003"; the strategy's name in
// the manifest's "strategy"; position, optimizer kind, strategy options and loss accumulators in
// `extra`. Requires snapshot.ranks.size() == world_size (InvalidArgumentError otherwise).
Checkpoint to_checkpoint(TrainSnapshot snapshot);
// The inverse. Throws CorruptError when the manifest's trainer fields are missing or malformed.
TrainSnapshot from_checkpoint(const Checkpoint& checkpoint);

// What a run that resumes requires of a checkpoint (Checkpointer's load_for_resume fills it).
struct ResumeTarget {
  ModelSignature model;  // the live model's (live_model_signature)
  OptimizerKind optimizer = OptimizerKind::kSgd;
  int rank = 0;  // this process in the resuming run
  int world = 1;
  int64_t train_examples = -1;  // the resuming run's training split (-1: not checked)
  std::string strategy = "ddp";  // the resuming run's strategy
};

// from_checkpoint plus every check that restore() and the training loop would otherwise fail on
// after the checkpoint was chosen, so that --resume auto rejects a bad checkpoint while it can
// still fall back to an older one (LoadOptions::validate): the trainer fields; a world_size >= 1;
// a non-negative epoch, and a sampler position equal to {epoch, epoch_samples}; samples >=
// epoch_samples; non-negative, finite step counts in the loss accumulators; every rank's CPU
// generator state (tried on a scratch generator, never the live one); the optimizer kind; the
// tensors of model.safetensors and each optimizer state entry against `target.model`; the
// strategy against `target.strategy`; the
// residuals' agreement across ranks when `target.world` differs (Note [resharding rank states]);
// a position inside `target.train_examples` (when given).
// Throws CorruptError (malformed) or MismatchError (another optimizer or model); messages name
// the field and carry no "checkpoint <path>" prefix (load_checkpoint adds it). Does not check
// what needs the dataset (the position against the training split: the trainer does) or the
// codec (the compression state's names: DDP does).
TrainSnapshot snapshot_for_resume(const Checkpoint& checkpoint, const ResumeTarget& target);

// The model signature a checkpoint of this live model carries (parameters and buffers).
ModelSignature live_model_signature(const TrainParts& parts);

// A host copy of `t` as a record named `name`; a tensor owning a copy of the record's bytes; and
// a copy of `r` into the live `t` (MismatchError naming `what` and the record when shape or dtype
// differ).
TensorRecord record_of(const std::string& name, const torch::Tensor& t);
torch::Tensor tensor_of(const TensorRecord& r);
void copy_into(const torch::Tensor& t, const TensorRecord& r, const std::string& what);

// "<stem>-rank00003"
std::string rank_stem(const std::string& stem, int rank);

}  // namespace dtrain
