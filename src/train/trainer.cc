// The synchronous data-parallel training loop (contract in include/dtrain/trainer.h).
#include "dtrain/trainer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ostream>

#include "dtrain/communicator.h"
#include "dtrain/data.h"
#include "dtrain/ddp.h"
#include "dtrain/error.h"
#include "dtrain/models.h"
#include "dtrain/sampler.h"
#include "train/config_internal.h"
#include "train/evaluate.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/progress.h"

namespace dtrain {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string format(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, a);
  return buf;
}

// Sums `values` over ranks in place (nothing to do for one process).
template <size_t N>
void sum_over_ranks(Communicator* comm, std::array<double, N>& values) {
  if (comm && comm->size() > 1) {
    comm->allreduce(values.data(), values.size(), DType::kFloat64, ReduceOp::kSum);
  }
}

// "Final Model Parameters: theta_0 = b, theta_1 = w" for a one-input linear model.
std::string linreg_parameters_line(torch::nn::Module& module) {
  double theta0 = 0, theta1 = 0;
  for (const auto& item : module.named_parameters()) {
    if (item.value().numel() != 1) continue;
    double v = item.value().item<double>();
    if (item.key().ends_with("bias")) theta0 = v;
    if (item.key().ends_with("weight")) theta1 = v;
  }
  char buf[128];
  std::snprintf(buf, sizeof(buf), "Final Model Parameters: theta_0 = %.4f, theta_1 = %.4f", theta0,
                theta1);
  return buf;
}

// The running state of one train() call that the loop's helpers share.
struct Loop {
  const TrainConfig& config;
  const ModelHandle& model;
  const DataSplits& data;
  Communicator* comm;  // null or size 1: one process
  int world = 1;
  int rank = 0;
  std::unique_ptr<DistributedDataParallel> ddp;
  MetricsSink metrics;
  Progress progress;
  Clock::time_point start;
  double eval_seconds = 0;

  uint64_t bytes_sent() const { return comm ? comm->stats().bytes_sent : 0; }
  double comm_seconds() const { return ddp ? ddp->stats().seconds_waiting : 0; }
  // Gradient/parameter averaging: exact payload bytes this rank contributed, and the dense size.
  uint64_t sync_bytes() const { return ddp ? ddp->stats().bytes_communicated : 0; }
  uint64_t sync_dense_bytes() const { return ddp ? ddp->stats().dense_equivalent_bytes : 0; }

  EvalResult run_eval(int64_t step, int64_t epoch, double lr) {
    auto t0 = Clock::now();
    EvalResult r = evaluate(model, data.test, comm, config.eval_batch);
    auto t1 = Clock::now();
    eval_seconds += seconds_between(t0, t1);
    if (rank == 0) {
      MetricsRecord rec{"eval", step, epoch, r.loss, r.accuracy, lr, 0, bytes_sent(),
                        comm_seconds(), seconds_between(start, t1), sync_bytes(),
                        sync_dense_bytes()};
      metrics.write(rec);
    }
    return r;
  }
};

}  // namespace

TrainResult train(const TrainConfig& config, const ModelHandle& model, const DataSplits& data,
                  Communicator* comm, std::ostream& log, const TrainOutput& output) {
  validate_config_except_model(config);
  if (!model.module || !model.forward || !model.loss) {
    throw InvalidArgumentError("train: the model handle needs a module, forward and loss");
  }
  if (config.threads > 0) at::set_num_threads(static_cast<int>(config.threads));

  const int world = comm ? comm->size() : 1;
  const int rank = comm ? comm->rank() : 0;
  const int64_t global = global_batch(config, world);
  const int64_t per_worker = per_worker_batch(config, world);
  const int64_t micro = per_worker / config.grad_accumulation;
  const int64_t n_train = data.train.size();
  const int64_t steps_per_epoch = n_train / global;
  if (steps_per_epoch == 0) {
    throw InvalidArgumentError("config key 'global_batch': " + std::to_string(global) +
                               " is larger than the training split (" + std::to_string(n_train) +
                               " examples)");
  }
  int64_t total_steps = steps_per_epoch * config.epochs;
  if (config.max_steps > 0) total_steps = std::min(total_steps, config.max_steps);
  const int64_t epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;

  bool terminal = output.terminal.value_or(isatty(STDOUT_FILENO) == 1);
  Loop loop{config,
            model,
            data,
            comm,
            world,
            rank,
            nullptr,
            MetricsSink(rank == 0 ? config.metrics : std::string()),
            Progress(log, terminal, rank == 0 && !config.quiet, total_steps, epochs),
            {},
            0};

  model.module->train();
  if (world > 1) {
    DdpOptions ddp_options;
    ddp_options.bucket_bytes = static_cast<size_t>(config.bucket_mb * 1024 * 1024);
    ddp_options.local_sgd_period = static_cast<int>(config.local_sgd_period);
    ddp_options.compress = config.compress;
    ddp_options.compress_warmup_steps = static_cast<int>(config.compress_warmup_steps);
    ddp_options.compress_seed = config.seed;
    loop.ddp = std::make_unique<DistributedDataParallel>(model.module, *comm, ddp_options);
  }
  auto optimizer = make_optimizer(config, model.module->parameters());
  // Note [global batches]: one global order per epoch, the same on every rank; see trainer.h.
  DistributedSampler order(n_train, /*rank=*/0, /*world=*/1, config.seed, /*shuffle=*/true);

  TrainResult result;
  result.world_size = world;
  result.global_batch = global;
  result.model = config.model;
  result.dataset = config.dataset;
  result.module = model.module;

  loop.start = Clock::now();
  auto interval_start = loop.start;
  std::array<double, 2> interval = {0, 0};  // loss sum (of per-rank step means), steps
  int64_t step = 0;
  double lr = config.lr;
  std::optional<EvalResult> last_eval;
  int64_t last_eval_step = -1;

  for (int64_t epoch = 0; epoch < epochs && step < total_steps; ++epoch) {
    std::vector<int64_t> perm = order.permutation(epoch);
    std::array<double, 2> epoch_sum = {0, 0};  // loss sum, steps
    for (int64_t s = 0; s < steps_per_epoch && step < total_steps; ++s) {
      lr = learning_rate_at(config, step, total_steps);
      set_learning_rate(*optimizer, lr);
      optimizer->zero_grad();
      double step_loss = 0;  // this rank's mean loss over its per-worker batch
      const int64_t base = s * global + rank * per_worker;
      for (int64_t j = 0; j < config.grad_accumulation; ++j) {
        auto first = perm.begin() + base + j * micro;
        Batch batch = data.train.gather(std::vector<int64_t>(first, first + micro));
        torch::Tensor loss = model.loss(model.forward(batch.inputs), batch.targets) /
                             static_cast<double>(config.grad_accumulation);
        bool sync = j + 1 == config.grad_accumulation;
        if (loop.ddp) loop.ddp->prepare_backward(sync);
        loss.backward();
        if (loop.ddp) loop.ddp->finish_backward();
        step_loss += loss.item<double>();
      }
      optimizer->step();
      if (loop.ddp) loop.ddp->after_optimizer_step();
      ++step;
      // Local SGD: the replicas drift between averagings; the run ends on an averaged model.
      if (loop.ddp && config.local_sgd_period > 0 && step == total_steps &&
          step % config.local_sgd_period != 0) {
        loop.ddp->average_parameters();
      }
      interval[0] += step_loss;
      interval[1] += 1;
      epoch_sum[0] += step_loss;
      epoch_sum[1] += 1;

      if (step % config.log_every == 0 || step == total_steps) {
        std::array<double, 2> sums = interval;
        sum_over_ranks(comm, sums);  // collective: every rank logs at the same steps
        auto now = Clock::now();
        double rate = static_cast<double>(interval[1] * global) / seconds_between(interval_start, now);
        double mean_loss = sums[0] / sums[1];
        if (rank == 0) {
          MetricsRecord rec{"train", step, epoch, mean_loss, std::nullopt, lr, rate,
                            loop.bytes_sent(), loop.comm_seconds(), seconds_between(loop.start, now),
                            loop.sync_bytes(), loop.sync_dense_bytes()};
          loop.metrics.write(rec);
        }
        loop.progress.update(step, epoch, mean_loss, rate);
        interval = {0, 0};
        interval_start = Clock::now();
      }
      if (config.eval_every > 0 && step % config.eval_every == 0) {
        last_eval = loop.run_eval(step, epoch, lr);
        last_eval_step = step;
        interval_start = Clock::now();
      }
    }
    sum_over_ranks(comm, epoch_sum);
    double epoch_loss = epoch_sum[0] / epoch_sum[1];
    result.epoch_losses.push_back(epoch_loss);
    if (config.eval_every == 0) {
      last_eval = loop.run_eval(step, epoch, lr);
      last_eval_step = step;
      interval_start = Clock::now();
    }
    std::string line = "Epoch: " + std::to_string(epoch + 1) + ", Loss: " + format("%.6f", epoch_loss);
    if (last_eval_step == step && last_eval->accuracy) {
      line += ", Test accuracy: " + format("%.2f%%", *last_eval->accuracy * 100);
    }
    if (rank == 0 && !config.quiet) loop.progress.line(line);
  }
  if (last_eval_step != step) last_eval = loop.run_eval(step, epochs - 1, lr);
  auto end = Clock::now();
  loop.progress.finish();

  result.steps = step;
  result.samples = step * global;
  result.wall_seconds = seconds_between(loop.start, end);
  double train_seconds = std::max(1e-9, result.wall_seconds - loop.eval_seconds);
  result.samples_per_sec = static_cast<double>(result.samples) / train_seconds;
  result.final_train_loss = result.epoch_losses.empty() ? 0 : result.epoch_losses.back();
  result.test_loss = last_eval->loss;
  result.test_accuracy = last_eval->accuracy;
  result.comm_seconds = loop.comm_seconds();
  // Taken before the sum so that every rank reports the same total.
  std::array<double, 1> bytes = {static_cast<double>(loop.bytes_sent())};
  sum_over_ranks(comm, bytes);
  result.bytes_communicated = static_cast<uint64_t>(bytes[0]);

  if (rank == 0) {
    if (config.model == "linreg" && !config.quiet) log << linreg_parameters_line(*model.module) << '\n';
    if (output.summary) print_summary(log, result);
    log.flush();
  }
  return result;
}

TrainResult train(const TrainConfig& config, Communicator* comm, std::ostream& log,
                  const TrainOutput& output) {
  validate_config(config);
  DatasetOptions data_options;
  data_options.name = config.dataset;
  data_options.data_dir = config.data_dir;
  data_options.seed = config.seed;
  if (config.dataset_size > 0) data_options.size = config.dataset_size;
  data_options.context = config.context;
  DataSplits data = load_dataset(data_options);

  ModelOptions model_options;
  model_options.name = config.model;
  model_options.seed = config.seed;
  model_options.hidden = config.hidden;
  model_options.layers = config.layers;
  model_options.width = config.width;
  model_options.heads = config.heads;
  model_options.context = config.context;
  ModelHandle model = make_model(fit_to_dataset(model_options, data.train));
  return train(config, model, data, comm, log, output);
}

}  // namespace dtrain
