// The trainer: data-parallel training of a model on a dataset, one call per rank. How the
// replicas stay consistent is the strategy's (config.strategy, strategy.h): ddp averages the
// gradients every step; localsgd and diloco average parameters every few steps.
//
//   auto comm = connect_world(world_from_env());           // or nullptr: one process
//   TrainResult r = train(config, comm.get(), std::cout);   // every rank calls it
//
// Data order (Note [global batches]). Each epoch has one global order, a permutation of the
// training split that depends only on (seed, epoch). Optimizer step t of the epoch consumes the
// global batch order[t*G, (t+1)*G) (G = global batch); rank r reads its contiguous slice
// [r*G/W, (r+1)*G/W) and cuts it into grad_accumulation micro-batches; the last incomplete global
// batch of an epoch is dropped. Each micro-batch loss is the mean over its samples divided by the
// number of micro-batches, and gradients are averaged over ranks, so a step is mathematically the
// same as one process taking the mean loss over the whole global batch: for a given seed and
// global batch, W workers and one process see the same samples and compute the same update
// (up to float rounding) under ddp. Under localsgd and diloco each rank steps on its slice alone
// and the replicas meet every local_sgd_period / inner_steps steps (docs/training.md
// "Strategies").
//
// Evaluation runs on the test split: rank r evaluates the contiguous shard r of it and the sums
// (loss, correct, count) are allreduced, so every rank gets the same result.
//
// Output on `log` (rank 0 only): a progress bar on a terminal, else a plain line every log_every
// steps; "Epoch: N, Loss: L" at the end of each epoch; for linreg "Final Model Parameters:
// theta_0 = b, theta_1 = w"; the summary table when TrainOutput::summary is set. Metrics JSON
// lines go to config.metrics (rank 0).
//
// Checkpoints (docs/checkpoints.md). With config.checkpoint_dir set, the state (parameters,
// buffers, optimizer state, compression residuals of every rank, RNG, position in the data order,
// loss accumulators) is captured every config.checkpoint_every and at the end, and rank 0 writes
// it in the background; config.resume ("auto" or a path) continues a run from one, on any world
// size whose workers divide the global batch. Resuming with the same world size and settings
// gives bitwise the parameters and losses of an uninterrupted run. Rank 0 logs what it resumed
// from (and, with auto, each newer checkpoint it skipped and why) and, at the end, one line about
// the saves. The loop itself and its snapshot API: src/train/trainer.cc (Note [the training
// loop]), src/train/train_state.h, src/train/checkpointer.h.
//
// Errors: InvalidArgumentError for a bad config (also a global batch that does not divide by the
// world size), the data/model loaders' errors, and the communicator's (TimeoutError,
// PeerLostError, MismatchError, ...) when a peer fails; with resume, the checkpoint loader's
// (NotFoundError, CorruptError, MismatchError for another model or ranks that disagree on the
// checkpoint); never exits the process.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dtrain/config.h"

namespace torch::nn {
class Module;
}

namespace dtrain {

class Communicator;
class Store;
struct ModelHandle;
struct DataSplits;

// Where this rank's training steps spent their time (seconds, summed over `steps` steps; the
// steps of the last round in an elastic run). sync: the strategy's communication -- ddp's
// finish_backward (waiting for the gradient averaging that backward did not hide), localsgd's and
// diloco's parameter averaging and outer step.
struct StepPhases {
  int64_t steps = 0;
  double forward_s = 0;    // data gather, forward and loss (every micro-batch)
  double backward_s = 0;   // backward, gradient hooks and buckets launched from them included
  double sync_s = 0;       // the strategy's communication (above)
  double optimizer_s = 0;  // the (inner) optimizer step
};

// What one run achieved. Every rank returns the same numbers except where noted.
struct TrainResult {
  int world_size = 1;
  int64_t global_batch = 0;
  int64_t steps = 0;                    // optimizer steps taken
  int64_t samples = 0;                  // training samples consumed, all ranks together
  double wall_seconds = 0;              // from the first step to the end of the last evaluation
  double samples_per_sec = 0;           // samples / training time (evaluation excluded)
  double final_train_loss = 0;          // mean loss over the last epoch (over all ranks)
  std::vector<double> epoch_losses;     // mean training loss of each epoch (over all ranks)
  double test_loss = 0;                 // mean loss over the whole test split
  std::optional<double> test_accuracy;  // fraction in [0, 1]; unset for regression
  uint64_t bytes_communicated = 0;      // payload bytes sent by all ranks together
  double comm_seconds = 0;              // time this rank waited for gradient/parameter averaging
  StepPhases phases;                    // this rank's own (the summary prints rank 0's)
  // Elastic runs: groups re-formed after a failure or to admit joiners, and optimizer steps
  // trained twice because a failure rolled the group back to its last in-memory commit.
  int64_t recoveries = 0;
  int64_t steps_lost = 0;
  double commit_seconds = 0;      // this rank's time taking in-memory commits (elastic)
  bool interrupted = false;       // internal: a round ended to re-form (never returned by train())
  int rank = 0;                   // this process's rank in the (final) group
  int64_t checkpoints_saved = 0;  // saves this run took part in (0 without checkpoint_dir)
  double checkpoint_stall_seconds = 0;  // this rank's training time spent in them (capture,
                                        // gather, queueing; the writes run in the background)
  std::string model;
  std::string dataset;
  // The trained model (identical on every rank unless local SGD ended between averagings).
  std::shared_ptr<torch::nn::Module> module;
};

struct TrainOutput {
  // Draw a progress bar (true) or print plain lines (false); unset = isatty(stdout).
  std::optional<bool> terminal;
  bool summary = true;  // print the summary table at the end (rank 0)
};

// Trains the model and dataset named by `config`. `comm` may be null (or of size 1): one
// process. Collective: every rank of `comm` calls it with the same config.
TrainResult train(const TrainConfig& config, Communicator* comm, std::ostream& log,
                  const TrainOutput& output = {});

// Trains a caller's model (any torch::nn::Module wrapped in a ModelHandle, see models.h) on
// `data`, with the loop, batching and communication above. config.model and config.dataset only
// label the output.
TrainResult train(const TrainConfig& config, const ModelHandle& model, const DataSplits& data,
                  Communicator* comm, std::ostream& log, const TrainOutput& output = {});

// Elastic training (docs/elastic.md, Note [elastic rounds] in src/train/elastic_trainer.cc):
// every worker of the job calls it with the job's store (a TcpStore under the run's prefix) and
// its worker id (DTRAIN_RANK from `dtrain launch --elastic`). The workers meet in rounds of the
// elastic rendezvous (config.min_workers..max_workers); when a worker dies, leaves or stops
// answering past config.heartbeat_timeout_s, the survivors abort, re-form under the next round,
// restore the newest in-memory commit (every config.commit_every steps) and go on; a worker
// started later joins at the next commit. Returns the result of the final group (result.rank is
// this worker's rank in it). Throws AbortedError "elastic: only K workers (minimum M); stopping"
// when the group falls below the minimum, and the errors of train() for bad configs and data.
// `secret` is the run's secret (DTRAIN_SECRET); it keys the connection handshakes of every round's
// communicator (CommOptions::secret) and never travels. Empty: each round draws a random key and
// passes it through the store (as private as the store's traffic).
TrainResult train_elastic(const TrainConfig& config, std::shared_ptr<Store> store, int worker_id,
                          std::ostream& log, const TrainOutput& output = {},
                          const std::string& secret = {});
TrainResult train_elastic(const TrainConfig& config, const ModelHandle& model,
                          const DataSplits& data, std::shared_ptr<Store> store, int worker_id,
                          std::ostream& log, const TrainOutput& output = {},
                          const std::string& secret = {});

// The summary table. With `single` (the same config on one process), adds its column, the
// speedup (single wall time / distributed wall time) and the accuracy difference.
void print_summary(std::ostream& out, const TrainResult& result,
                   const TrainResult* single = nullptr);

// The TrainResult as one JSON object (all fields but `module`), and back; used to hand results
// between processes. from_json throws CorruptError on malformed text.
std::string train_result_to_json(const TrainResult& result);
TrainResult train_result_from_json(const std::string& text);

}  // namespace dtrain
