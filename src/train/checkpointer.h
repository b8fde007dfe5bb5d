// The trainer's side of checkpoints: when to save, the collective save, and the collective resume.
// Storage (atomic directories, checksums, keep-last, the background writer) is
// include/dtrain/checkpoint.h; the state itself is train_state.h.
//
// Note [when the trainer saves]. Every rank must take part in the same saves at the same steps
// (a save gathers the per-rank state onto rank 0, a collective). So the decision may only depend
// on what every rank knows identically:
//   - "N" steps: due after every step that is a multiple of N;
//   - "Ts" seconds: rank 0 alone looks at its clock, at log steps (every log_every steps), and its
//     vote (1 when T seconds passed since the last save or the start) travels as a third number
//     in the loss allreduce the trainer already does there; a positive sum makes the save due on
//     every rank. No extra collective; the granularity is log_every steps;
//   - the last step of the run always saves (the final checkpoint), unless that step was just
//     saved.
// A due save happens at the next safe point: after the step's logging and evaluation, or, when
// the step finishes an epoch, after the epoch's end (loss line, evaluation), so the checkpoint
// names the start of the next epoch. Under a strategy whose replicas differ between
// synchronizations (localsgd, diloco) a due save waits for the next step where they agree
// (Strategy::replicas_agree; the last step always synchronizes).
//
// Saving (collective): every rank captures its snapshot (train_state.h), ranks > 0 send their
// RankState to rank 0 (point-to-point, safetensors-encoded), rank 0 converts the whole to a
// Checkpoint and hands it to a background CheckpointWriter; only rank 0 writes. The training
// thread stalls for the capture, the gather and a move into the writer's queue, not for the write.
// One write is in flight at a time (CheckFreq's rule): a save first waits for the previous write,
// so every requested checkpoint is written (the writer's coalescing never drops one). At a sane
// interval that wait is zero; when saves come faster than the disk, training slows to the disk's
// pace instead of skipping checkpoints, and the stall statistics show it.
//
// Resuming (collective): every rank loads the checkpoint itself (resume=auto: find_resume over
// checkpoint_dir; resume=PATH: exactly PATH) and the ranks compare what they loaded (status,
// step, creation time) with one allgather; any difference is a MismatchError on every rank, and a
// rank whose load failed makes every rank fail (the failing rank with its own error).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "dtrain/checkpoint.h"
#include "dtrain/communicator.h"
#include "dtrain/config.h"
#include "train/train_state.h"

namespace dtrain {

// Time and bytes of the saves of one run (rank 0's numbers; the stall is per rank).
struct CheckpointerStats {
  int64_t saves = 0;
  double stall_seconds = 0;  // training-thread time in save(): capture + gather + queueing
  double max_stall_seconds = 0;
  double capture_seconds = 0;  // of stall_seconds, capture() alone
};

class Checkpointer {
 public:
  // Disabled (does nothing, no collectives) when config.checkpoint_dir is empty. Rank 0 opens the
  // CheckpointWriter (IoError when the directory cannot be created).
  Checkpointer(const TrainConfig& config, Communicator* comm);
  ~Checkpointer();

  bool enabled() const { return enabled_; }

  // Rank 0's vote for a time-based save (1 or 0; 0 on other ranks and for step intervals), to be
  // summed over ranks by the caller's log allreduce; then pass the sum to count_votes.
  double time_vote() const;
  void count_votes(double sum);
  // After each optimizer step: marks a step-interval save (and the last step's) due.
  void after_step(int64_t step, int64_t total_steps);
  // Whether to save now: a save is due, `step` was not saved yet, and the replicas agree
  // (Strategy::replicas_agree: a strategy that lets them drift is saved where they meet).
  bool should_save(int64_t step, bool replicas_agree) const;
  // Collective. Gathers the rank states onto rank 0, which queues the write. `capture_fn` takes
  // this rank's snapshot (timed as the capture part of the stall).
  template <typename CaptureFn>
  void save(CaptureFn&& capture_fn) {
    auto t0 = Clock::now();
    TrainSnapshot snapshot = capture_fn();
    auto t1 = Clock::now();
    commit(std::move(snapshot), t0, t1);
  }
  // Rank 0: waits for the queued writes (rethrows a write error). Others: nothing.
  void flush();
  // The step of the last save, -1 when none.
  int64_t last_saved_step() const { return last_saved_step_; }
  void set_last_saved_step(int64_t step) { last_saved_step_ = step; }
  const CheckpointerStats& stats() const { return stats_; }
  // Rank 0: one line about the saves ("" when none or not rank 0).
  std::string describe() const;

 private:
  using Clock = std::chrono::steady_clock;
  void commit(TrainSnapshot snapshot, Clock::time_point t0, Clock::time_point t1);

  Communicator* comm_;
  int rank_ = 0;
  int world_ = 1;
  bool enabled_ = false;
  CheckpointEvery every_;
  double timeout_s_ = 60;
  std::unique_ptr<CheckpointWriter> writer_;  // rank 0 only
  bool due_ = false;
  int64_t last_saved_step_ = -1;
  Clock::time_point last_save_time_;
  CheckpointerStats stats_;
};

// Collective: rank 0 receives every rank's RankState (rank order) into snapshot.ranks; other
// ranks send theirs and keep their own. No-op on one process.
void gather_rank_states(TrainSnapshot& snapshot, Communicator* comm);

// Collective (see the header comment). nullopt when config.resume is empty, or "auto" found no
// loadable checkpoint. Rank 0 writes one line to `log` about what it resumes from and what it
// skipped. `train_examples`: the training split's size (a checkpoint positioned beyond it is
// skipped; -1 = not checked). `path` (optional) receives the checkpoint directory chosen.
std::optional<TrainSnapshot> load_for_resume(const TrainConfig& config, const ModelSignature& live,
                                             Communicator* comm, std::ostream& log,
                                             int64_t train_examples = -1,
                                             std::string* path = nullptr);

}  // namespace dtrain
