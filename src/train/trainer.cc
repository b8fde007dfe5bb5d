// The training loop (contract in include/dtrain/trainer.h; Note [the training loop] in
// train_loop.h).
#include "dtrain/trainer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <thread>

#include "dtrain/communicator.h"
#include "dtrain/data.h"
#include "dtrain/strategy.h"
#include "dtrain/env.h"
#include "dtrain/error.h"
#include "dtrain/models.h"
#include "dtrain/sampler.h"
#include "train/checkpointer.h"
#include "train/config_internal.h"
#include "train/evaluate.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/train_state.h"
#include "train/train_loop.h"

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

}  // namespace

TrainLoop::TrainLoop(const TrainConfig& config, const ModelHandle& model, const DataSplits& data,
                     Communicator* comm, std::ostream& log, const TrainOutput& output,
                     LoopHooks* hooks)
    : config_(config),
      model_(model),
      data_(data),
      comm_(comm),
      log_(log),
      hooks_(hooks),
      world_(comm ? comm->size() : 1),
      rank_(comm ? comm->rank() : 0),
      global_(global_batch(config, world_)),
      per_worker_(per_worker_batch(config, world_)),
      micro_(per_worker_ / config.grad_accumulation),
      n_train_(data.train.size()),
      steps_per_epoch_(n_train_ / global_),
      metrics_(rank_ == 0 ? config.metrics : std::string()),
      terminal_(output.terminal.value_or(isatty(STDOUT_FILENO) == 1)),
      checkpointer_(config, comm) {
  if (steps_per_epoch_ == 0) {
    throw InvalidArgumentError("config key 'global_batch': " + std::to_string(global_) +
                               " is larger than the training split (" + std::to_string(n_train_) +
                               " examples)");
  }
  model_.module->train();
  // The optimizer and the resumed state come before the strategy's set-up, which may broadcast
  // rank 0's parameters: every rank restores the same checkpoint, so that changes nothing.
  strategy_ = make_strategy(config_);
  optimizer_ = make_optimizer(config_, model_.module->parameters());
  resume();
  strategy_->setup({model_.module, comm_, optimizer_.get(), pos_.step});
  strategy_->load_state({std::move(resumed_strategy_), std::move(acc_.compression)});
  resumed_strategy_.clear();
  acc_.compression.clear();  // now held by the strategy
  acc_.rng_cpu.clear();
  // Epochs this run touches (for the progress display): up to the one holding the last step.
  const int64_t epochs =
      std::max<int64_t>(pos_.epoch + 1, (total_steps_ + steps_per_epoch_ - 1) / steps_per_epoch_);
  progress_.emplace(log_, terminal_, rank_ == 0 && !config_.quiet, total_steps_, epochs);
}

TrainParts TrainLoop::parts() const {
  return {model_.module.get(), optimizer_.get(), config_.optimizer, strategy_.get(),
          config_.model};
}

void TrainLoop::resume() {
  std::optional<TrainSnapshot> snapshot;
  if (hooks_ && hooks_->start) {
    snapshot = *hooks_->start;
  } else {
    snapshot = load_for_resume(config_, live_model_signature(parts()), comm_, log_, n_train_);
  }
  if (snapshot) {
    if (snapshot->position.epoch_samples > n_train_) {
      throw MismatchError("checkpoint: its position (" +
                          std::to_string(snapshot->position.epoch_samples) +
                          " samples into epoch " + std::to_string(snapshot->position.epoch) +
                          ") lies beyond this training split of " + std::to_string(n_train_) +
                          " examples: written for another dataset?");
    }
    if (snapshot->strategy != strategy_->name()) {
      throw MismatchError("checkpoint: it was written by strategy " + snapshot->strategy +
                          ", this run uses " + strategy_->name());
    }
    // The strategy is not set up yet: its state is loaded into it after set-up.
    acc_ = restore(*snapshot, parts(), rank_, world_);
    resumed_strategy_ = snapshot->strategy_shared;
    pos_ = snapshot->position;
    resumed_samples_ = pos_.samples;
    checkpointer_.set_last_saved_step(pos_.step);
    last_epoch_ = pos_.epoch_samples == 0 ? std::max<int64_t>(0, pos_.epoch - 1) : pos_.epoch;
  }
  // Steps left: the rest of this epoch with the current global batch, then whole epochs.
  int64_t left = 0;
  if (pos_.epoch < config_.epochs) {
    left = (n_train_ - pos_.epoch_samples) / global_ +
           (config_.epochs - pos_.epoch - 1) * steps_per_epoch_;
  }
  total_steps_ = pos_.step + left;
  if (config_.max_steps > 0) total_steps_ = std::min(total_steps_, config_.max_steps);
}

void TrainLoop::train_step(const std::vector<int64_t>& order) {
  lr_ = learning_rate_at(config_, pos_.step, total_steps_);
  set_learning_rate(*optimizer_, lr_);
  optimizer_->zero_grad();
  const int64_t base = pos_.epoch_samples + rank_ * per_worker_;
  const double micro_batches = static_cast<double>(config_.grad_accumulation);
  auto loss_of = [&](int64_t j) {
    auto first = order.begin() + base + j * micro_;
    Batch batch = data_.train.gather(std::vector<int64_t>(first, first + micro_));
    return model_.loss(model_.forward(batch.inputs), batch.targets) / micro_batches;
  };
  // This rank's mean loss over its per-worker batch.
  const double step_loss = strategy_->step(config_.grad_accumulation, loss_of,
                                           pos_.step + 1 == total_steps_, phases_);
  ++phases_.steps;
  ++pos_.step;
  pos_.epoch_samples += global_;
  pos_.samples += global_;
  acc_.interval_loss_sum += step_loss;
  acc_.interval_steps += 1;
  acc_.epoch_loss_sum += step_loss;
  acc_.epoch_steps += 1;
  checkpointer_.after_step(pos_.step, total_steps_);
}

void TrainLoop::log_interval() {
  // Collective: every rank logs at the same steps. The third number carries rank 0's vote for a
  // time-based checkpoint (Note [when the trainer saves]).
  std::array<double, 3> sums = {acc_.interval_loss_sum, acc_.interval_steps,
                                checkpointer_.time_vote()};
  sum_over_ranks(comm_, sums);
  checkpointer_.count_votes(sums[2]);
  auto now = Clock::now();
  double rate =
      static_cast<double>(acc_.interval_steps * global_) / seconds_between(interval_start_, now);
  double mean_loss = sums[0] / sums[1];
  if (rank_ == 0) {
    MetricsRecord rec{"train",        pos_.step,
                      pos_.epoch,     mean_loss,
                      std::nullopt,   lr_,
                      rate,           bytes_sent(),
                      comm_seconds(), seconds_between(start_, now),
                      sync_bytes(),   sync_dense_bytes(),
                      phases_};
    metrics_.write(rec);
  }
  progress_->update(pos_.step, pos_.epoch, mean_loss, rate);
  acc_.interval_loss_sum = 0;
  acc_.interval_steps = 0;
  interval_start_ = Clock::now();
}

void TrainLoop::run_eval(int64_t epoch) {
  auto t0 = Clock::now();
  EvalResult r = evaluate(model_, data_.test, comm_, config_.eval_batch);
  auto t1 = Clock::now();
  eval_seconds_ += seconds_between(t0, t1);
  if (rank_ == 0) {
    MetricsRecord rec{"eval",
                      pos_.step,
                      epoch,
                      r.loss,
                      r.accuracy,
                      lr_,
                      0,
                      bytes_sent(),
                      comm_seconds(),
                      seconds_between(start_, t1),
                      sync_bytes(),
                      sync_dense_bytes(),
                      phases_};
    metrics_.write(rec);
  }
  last_eval_ = r;
  last_eval_step_ = pos_.step;
  interval_start_ = Clock::now();
}

void TrainLoop::end_epoch() {
  std::array<double, 2> epoch_sum = {acc_.epoch_loss_sum, acc_.epoch_steps};
  sum_over_ranks(comm_, epoch_sum);
  double epoch_loss = epoch_sum[0] / epoch_sum[1];
  pos_.epoch_losses.push_back(epoch_loss);
  if (config_.eval_every == 0) run_eval(pos_.epoch);
  std::string line =
      "Epoch: " + std::to_string(pos_.epoch + 1) + ", Loss: " + format("%.6f", epoch_loss);
  if (last_eval_step_ == pos_.step && last_eval_->accuracy) {
    line += ", Test accuracy: " + format("%.2f%%", *last_eval_->accuracy * 100);
  }
  if (rank_ == 0 && !config_.quiet) progress_->line(line);
  acc_.epoch_loss_sum = 0;
  acc_.epoch_steps = 0;
}

void TrainLoop::before_step() {
  if (!hooks_) return;
  hooks_->reached_step = pos_.step;
  if (hooks_->on_first_step) {
    auto first = std::move(hooks_->on_first_step);
    hooks_->on_first_step = nullptr;
    first();
  }
  if (!hooks_->faults) return;
  FaultAction action = hooks_->faults->at_step(hooks_->worker_id, pos_.step);
  if (action.delay.count() > 0) std::this_thread::sleep_for(action.delay);
  if (action.kill) {
    log_.flush();
    kill_self_for_fault_injection();
  }
  if (action.drop && comm_) comm_->abort("fault injection: drop at step " + std::to_string(pos_.step));
}

bool TrainLoop::maybe_commit() {
  if (!hooks_ || hooks_->commit_every <= 0 || pos_.step % hooks_->commit_every != 0) return false;
  // Under localsgd or diloco the replicas agree only right after a synchronization.
  if (!strategy_->replicas_agree()) return false;
  commit_now();
  return hooks_->leave_round && hooks_->leave_round();
}

void TrainLoop::commit_now() {
  if (!hooks_->on_commit) return;
  auto t0 = Clock::now();
  hooks_->on_commit(capture(parts(), pos_, acc_, world_, global_));
  hooks_->commit_seconds += seconds_between(t0, Clock::now());
}

void TrainLoop::maybe_save() {
  if (!checkpointer_.should_save(pos_.step, strategy_->replicas_agree())) return;
  checkpointer_.save([&] { return capture(parts(), pos_, acc_, world_, global_); });
}

TrainResult TrainLoop::run() {
  // Note [global batches]: one global order per epoch, the same on every rank; see trainer.h.
  DistributedSampler sampler(n_train_, /*rank=*/0, /*world=*/1, config_.seed, /*shuffle=*/true);
  start_ = Clock::now();
  interval_start_ = start_;
  lr_ = config_.lr;

  // Elastic: the round's first commit is its starting state (what a joiner or a later failure
  // falls back to).
  if (hooks_ && hooks_->commit_every > 0) commit_now();
  bool leave = false;
  while (!leave && pos_.epoch < config_.epochs && pos_.step < total_steps_) {
    std::vector<int64_t> order = sampler.permutation(pos_.epoch);
    auto epoch_done = [&] { return pos_.epoch_samples + global_ > n_train_; };
    while (pos_.step < total_steps_ && !epoch_done()) {
      before_step();
      train_step(order);
      if (pos_.step % config_.log_every == 0 || pos_.step == total_steps_) log_interval();
      if (config_.eval_every > 0 && pos_.step % config_.eval_every == 0) run_eval(pos_.epoch);
      if (epoch_done()) break;
      maybe_save();  // mid-epoch; an epoch's last step saves after end_epoch()
      if (pos_.step < total_steps_ && maybe_commit()) {
        leave = true;
        break;
      }
    }
    if (leave) break;
    end_epoch();
    last_epoch_ = pos_.epoch;
    if (epoch_done()) {
      pos_.epoch += 1;
      pos_.epoch_samples = 0;
    }
    maybe_save();
    if (pos_.step < total_steps_ && maybe_commit()) leave = true;
  }
  if (leave) {
    checkpointer_.flush();
    progress_->finish();
    TrainResult partial;
    partial.interrupted = true;
    partial.world_size = world_;
    partial.steps = pos_.step;
    partial.samples = pos_.samples;
    return partial;
  }
  if (last_eval_step_ != pos_.step) run_eval(std::max<int64_t>(0, last_epoch_));
  checkpointer_.flush();  // inside the timed run: the final write is part of the cost
  auto end = Clock::now();
  progress_->finish();

  TrainResult result;
  result.world_size = world_;
  result.global_batch = global_;
  result.model = config_.model;
  result.dataset = config_.dataset;
  result.module = model_.module;
  result.epoch_losses = pos_.epoch_losses;
  result.steps = pos_.step;
  result.samples = pos_.samples;
  result.wall_seconds = seconds_between(start_, end);
  double train_seconds = std::max(1e-9, result.wall_seconds - eval_seconds_);
  result.samples_per_sec = static_cast<double>(pos_.samples - resumed_samples_) / train_seconds;
  result.final_train_loss = result.epoch_losses.empty() ? 0 : result.epoch_losses.back();
  result.test_loss = last_eval_->loss;
  result.test_accuracy = last_eval_->accuracy;
  result.comm_seconds = comm_seconds();
  result.phases = phases_;
  result.checkpoints_saved = checkpointer_.stats().saves;
  result.checkpoint_stall_seconds = checkpointer_.stats().stall_seconds;
  // Taken before the sum so that every rank reports the same total.
  std::array<double, 1> bytes = {static_cast<double>(bytes_sent())};
  sum_over_ranks(comm_, bytes);
  result.bytes_communicated = static_cast<uint64_t>(bytes[0]);

  if (rank_ == 0) {
    if (config_.model == "linreg" && !config_.quiet) {
      log_ << linreg_parameters_line(*model_.module) << '\n';
    }
    if (std::string line = checkpointer_.describe(); !line.empty()) {
      log_ << line << '\n';
    }
    log_.flush();
  }
  return result;
}

DatasetOptions dataset_options_of(const TrainConfig& config) {
  DatasetOptions data_options;
  data_options.name = config.dataset;
  data_options.data_dir = config.data_dir;
  data_options.seed = config.seed;
  if (config.dataset_size > 0) data_options.size = config.dataset_size;
  data_options.context = config.context;
  return data_options;
}

ModelOptions model_options_of(const TrainConfig& config, const Dataset& train_split) {
  ModelOptions model_options;
  model_options.name = config.model;
  model_options.seed = config.seed;
  model_options.hidden = config.hidden;
  model_options.layers = config.layers;
  model_options.width = config.width;
  model_options.heads = config.heads;
  model_options.context = config.context;
  return fit_to_dataset(model_options, train_split);
}

TrainResult train(const TrainConfig& config, const ModelHandle& model, const DataSplits& data,
                  Communicator* comm, std::ostream& log, const TrainOutput& output) {
  validate_config_except_model(config);
  if (!model.module || !model.forward || !model.loss) {
    throw InvalidArgumentError("train: the model handle needs a module, forward and loss");
  }
  if (config.threads > 0) at::set_num_threads(static_cast<int>(config.threads));
  // Fault injection (--fault or DTRAIN_FAULT) applies to plain runs too: worker id = rank.
  FaultPlan faults = config.fault.empty() ? FaultPlan::from_env(process_env())
                                          : FaultPlan::parse(config.fault, "config key 'fault'");
  LoopHooks hooks;
  hooks.faults = &faults;
  hooks.worker_id = comm ? comm->rank() : 0;
  TrainResult result =
      TrainLoop(config, model, data, comm, log, output, faults.empty() ? nullptr : &hooks).run();
  if ((comm ? comm->rank() : 0) == 0 && output.summary) {
    print_summary(log, result);
    log.flush();
  }
  return result;
}

TrainResult train(const TrainConfig& config, Communicator* comm, std::ostream& log,
                  const TrainOutput& output) {
  validate_config(config);
  DataSplits data = load_dataset(dataset_options_of(config));
  ModelHandle model = make_model(model_options_of(config, data.train));
  return train(config, model, data, comm, log, output);
}

}  // namespace dtrain
