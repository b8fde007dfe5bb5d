// TrainConfig: everything `dtrain train` / `dtrain run` and the C++ trainer accept, parsed once
// into a typed struct.
//
// Sources, in increasing priority: the defaults below, a config file (`--config FILE`, JSON or a
// flat YAML subset), then command-line flags. Files and flags use the same names: the config key
// `global_batch` is the flag `--global-batch` (dashes and underscores are interchangeable in
// both). Unknown keys and malformed values are InvalidArgumentError naming the key.
//
// Every numeric key has a range (ConfigKey::range, docs/training.md), checked when the key is set
// from text (flags and files alike) and again by validate_config: an error names the key, the
// value and the range. The bounds lie far beyond any real job and keep every derived value (total
// steps, milliseconds, bytes) inside its type.
//
// Batch semantics (see docs/training.md): one optimizer step consumes `global_batch` samples over
// all workers, `global_batch / world` per worker, split into `grad_accumulation` micro-batches.
// Give either global_batch or per_worker_batch, not both.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace dtrain {

enum class OptimizerKind { kSgd, kAdam, kAdamW };
enum class LrScheduleKind { kConstant, kWarmupCosine, kStep };

struct TrainConfig {
  // What to train.
  std::string model = "mlp";              // linreg | logreg | mlp | cnn | transformer
  std::vector<int64_t> hidden = {256};    // mlp hidden layer widths
  int64_t layers = 2;                     // transformer blocks
  int64_t width = 64;                     // transformer model width (d_model)
  int64_t heads = 4;                      // transformer attention heads
  int64_t context = 32;                   // transformer context length (tokens)
  std::string dataset = "fashion-mnist";  // fashion-mnist | synthetic-linear | text
  std::string data_dir;                   // dataset files ("" = the dataset's default location)
  int64_t dataset_size = 0;               // synthetic datasets: training samples (0 = default)

  // How long: `epochs` passes over the training split, stopping early after `max_steps`
  // optimizer steps when max_steps > 0.
  int64_t epochs = 3;
  int64_t max_steps = 0;

  // Batch: exactly one of global_batch / per_worker_batch may be set (> 0); neither = global 128.
  // 0 means "not set": as text it is the empty string (get_config_value, config_to_args), and a
  // text value must be positive (`--global-batch 0` is an error, not the default).
  int64_t global_batch = 0;       // samples per optimizer step, all workers together
  int64_t per_worker_batch = 0;   // samples per optimizer step, each worker
  int64_t grad_accumulation = 1;  // micro-batches per optimizer step (no sync on the first k-1)

  // How the replicas stay consistent (include/dtrain/strategy.h, docs/training.md "Strategies"):
  // ddp (average gradients every step) | localsgd (average parameters every local_sgd_period
  // steps) | diloco (inner_steps local steps, then an outer optimizer step on the averaged
  // parameter delta). A key of another strategy than this one, set away from its default, is an
  // error naming both.
  std::string strategy = "ddp";
  int64_t local_sgd_period = 8;   // localsgd: optimizer steps between parameter averagings
  int64_t inner_steps = 50;       // diloco: inner optimizer steps per outer step (H)
  double outer_lr = 0.7;          // diloco: outer learning rate
  double outer_momentum = 0.9;    // diloco: outer momentum
  bool outer_nesterov = true;     // diloco: Nesterov momentum in the outer step
  // Compression (docs/compression.md): a codec spec, e.g. topk:0.01, powersgd:2, fp16; "none" =
  // dense. ddp: each gradient bucket; localsgd and diloco: the averaged parameter deltas. The first compress_warmup_steps optimizer steps stay dense.
  std::string compress = "none";
  int64_t compress_warmup_steps = 0;

  // Optimizer and learning rate. The schedule maps the optimizer step t (0-based) to a rate:
  //   constant:       lr
  //   warmup-cosine:  lr * (t+1)/warmup for t < warmup, then cosine decay to min_lr at the end
  //   step:           lr * gamma^floor(t / step_size)   (after the warm-up, if any)
  OptimizerKind optimizer = OptimizerKind::kSgd;
  double lr = 0.05;
  double momentum = 0.9;      // SGD only
  double weight_decay = 0.0;  // L2 for SGD/Adam, decoupled for AdamW
  LrScheduleKind schedule = LrScheduleKind::kConstant;
  int64_t warmup_steps = 0;
  int64_t step_size = 1000;  // steps between decays (step schedule)
  double gamma = 0.1;        // decay factor (step schedule)
  double min_lr = 0.0;       // final rate of the cosine schedule

  uint64_t seed = 42;         // model initialisation and data order (the same on every rank)
  int64_t eval_every = 0;     // evaluate every N optimizer steps; 0 = at the end of each epoch
  int64_t eval_batch = 1000;  // samples per forward pass in evaluation
  int64_t log_every = 50;     // metrics line / progress update every N optimizer steps
  int64_t threads = 1;        // intra-op threads per worker (0 = LibTorch's default)
  double bucket_mb = 25.0;    // DDP gradient bucket size, MiB
  std::string metrics;        // JSON-lines metrics file; "-" = stdout; "" = none
  double timeout_s = 60.0;    // bound on each communication operation, seconds
  // Nice value of the communication event-loop thread, 0..19 (CommOptions::progress_thread_nice):
  // 19 is fastest when the job has its cores to itself and starves communication when other work
  // keeps them busy; 0 (default) leaves it at the worker's priority, under SCHED_BATCH.
  int64_t progress_nice = 0;
  // The communicator's transport (CommOptions::transport): "tcp", dtrain's own, whose every
  // connection is authenticated with the run's secret; or "gloo", Gloo's unauthenticated one.
  std::string transport = "tcp";
  bool quiet = false;  // no progress bar / progress lines (summary still printed)

  // Checkpoints (docs/checkpoints.md). Saving is on when checkpoint_dir is set: every
  // checkpoint_every ("N" optimizer steps, or "Ts" seconds of rank 0's clock decided at log
  // steps), and once at the end. keep_checkpoints: complete checkpoints kept (0 = all).
  // resume: "" (start fresh), "auto" (the newest loadable checkpoint in checkpoint_dir, else
  // fresh) or the path of one checkpoint directory (errors are fatal).
  std::string checkpoint_dir;
  std::string checkpoint_every = "500";
  int64_t keep_checkpoints = 3;
  std::string resume;

  // Fault tolerance (docs/elastic.md). elastic: re-form the group when a worker dies and go on
  // (also switched on by DTRAIN_ELASTIC=1 from `dtrain launch --elastic`); min_workers /
  // max_workers bound the group (0 = 1 / nproc); commit_every: in-memory commit interval in
  // optimizer steps (the most progress a failure loses); heartbeat_timeout_s: a worker silent
  // this long is declared dead. fault: fault injection spec (kill:rank=R,step=S;
  // delay:rank=R,ms=M[,step=S]; drop:rank=R,step=S), or DTRAIN_FAULT.
  bool elastic = false;
  int64_t min_workers = 0;
  int64_t max_workers = 0;
  int64_t commit_every = 20;
  double heartbeat_timeout_s = 10.0;
  double rendezvous_timeout_s = 30.0;  // longest wait for a group of at least min_workers
  std::string fault;

  // `dtrain run` only.
  int64_t nproc = 2;            // local workers
  bool compare_single = false;  // also train on one process with the same global batch

  // Path of the file loaded with --config, if any (informational).
  std::string config_file;
};

// The defaults for `model`: TrainConfig{} (the main job: mlp on Fashion-MNIST) except for
//   linreg: dataset synthetic-linear with 8192 samples, 5 epochs, warmup-cosine schedule
//           (converges to within 0.01 of the true line on any number of workers).
// config_from_flags and `dtrain run` start from these, so `--model linreg` alone is a sensible job.
TrainConfig default_config_for_model(std::string_view model);

// One accepted key: its canonical name (snake_case), a help line, whether it is a boolean
// switch (a bare `--quiet` means true), and the values it accepts as shown in errors and --help
// ("1..1000000", "(0, 1000]", "sgd | adam | adamw"; empty for free text).
struct ConfigKey {
  std::string name;
  std::string help;
  bool is_switch = false;
  std::string range;
};

// The largest config file read (bytes); a larger one is an error, not a truncation.
inline constexpr size_t kMaxConfigFileBytes = size_t{1} << 20;
// The largest value of a seconds key (timeout_s, heartbeat_timeout_s, rendezvous_timeout_s, a
// checkpoint_every in seconds): one week.
inline constexpr double kMaxConfigSeconds = 7 * 24 * 3600.0;

// Every key a config file or flag may set, in documentation order.
const std::vector<ConfigKey>& train_config_keys();

// Sets one key from its text form ("0.1", "adamw", "256,128", "true"). Dashes in `key` count
// as underscores. Throws InvalidArgumentError naming the key if it is unknown or the value is bad.
void set_config_value(TrainConfig& config, std::string_view key, std::string_view value);
// The text form of one key's current value (round-trips through set_config_value).
std::string get_config_value(const TrainConfig& config, std::string_view key);

// Applies a config file onto `config`: JSON if the file name ends in .json or its text starts
// with '{', otherwise the YAML subset (one `key: value` per line, `#` comments, lists as
// `[a, b]` or `a,b`). The file must be a regular file of at most kMaxConfigFileBytes. Throws
// IoError if unreadable; InvalidArgumentError naming the path for a directory, FIFO, device or
// too large a file, and naming the key for unknown or duplicate keys, bad values, a list where
// a scalar belongs or a nested list; InvalidArgumentError for malformed text.
void apply_config_file(TrainConfig& config, const std::string& path);
// Same, from text already read (`json` selects the format).
void apply_config_text(TrainConfig& config, std::string_view text, bool json,
                       std::string_view origin);

// checkpoint_every parsed: exactly one of the two is positive.
struct CheckpointEvery {
  int64_t steps = 0;   // save after every `steps` optimizer steps
  double seconds = 0;  // save when this many seconds passed since the last save
};
// "200" (steps, 1..1000000000) or "30s" / "2.5s" (seconds, (0, kMaxConfigSeconds]). Throws
// InvalidArgumentError naming the key 'checkpoint_every' for anything else (zero, negative,
// out of range, other units).
CheckpointEvery parse_checkpoint_every(std::string_view text);

// Checks every key's range (ConfigKey::range) and the combinations that do not depend on the
// world size (batch given at most once, heads dividing width, min_lr <= lr, known names, ...).
// Throws InvalidArgumentError naming the key.
void validate_config(const TrainConfig& config);

// The per-worker batch (samples per optimizer step on one worker) for `world` workers. Throws
// InvalidArgumentError if the global batch does not divide by `world`, or the per-worker batch
// does not divide by grad_accumulation; global_batch throws it for world <= 0 and for a
// per_worker_batch * world that does not fit int64.
int64_t per_worker_batch(const TrainConfig& config, int world);
int64_t global_batch(const TrainConfig& config, int world);

// `--key=value` arguments that reproduce `config` (every key), e.g. to start workers.
std::vector<std::string> config_to_args(const TrainConfig& config);

std::string_view optimizer_name(OptimizerKind kind);
std::string_view lr_schedule_name(LrScheduleKind kind);

}  // namespace dtrain
