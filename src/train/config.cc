// Validation, batch arithmetic and the communicator options of a TrainConfig.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "dtrain/codec.h"
#include "dtrain/config.h"
#include "dtrain/elastic.h"
#include "dtrain/error.h"
#include "train/config_internal.h"
#include "train/config_values.h"

namespace dtrain {

TrainConfig default_config_for_model(std::string_view model) {
  TrainConfig c;
  c.model = std::string(model);
  if (model == "linreg") {
    c.dataset = "synthetic-linear";
    c.dataset_size = 8192;
    c.epochs = 5;
    c.lr = 0.1;
    c.schedule = LrScheduleKind::kWarmupCosine;
    c.warmup_steps = 10;
  }
  return c;
}

void validate_config(const TrainConfig& c) {
  const std::vector<std::string> models = {"linreg", "logreg", "mlp", "cnn", "transformer"};
  if (std::find(models.begin(), models.end(), c.model) == models.end()) {
    throw InvalidArgumentError("config key 'model': unknown model '" + c.model +
                               "' (linreg, logreg, mlp, cnn, transformer)");
  }
  validate_config_except_model(c);
}

void validate_config_except_model(const TrainConfig& c) {
  auto fail = [](const std::string& key, const std::string& why) {
    throw InvalidArgumentError("config key '" + key + "': " + why);
  };
  check_key_ranges(c);  // every key's range, in table order (Note [config ranges])
  if (c.dataset.empty()) fail("dataset", "must not be empty");
  if (c.width % c.heads != 0) {
    fail("heads", std::to_string(c.heads) + " does not divide width " + std::to_string(c.width));
  }
  if (c.global_batch > 0 && c.per_worker_batch > 0) {
    fail("global_batch", "give either global_batch or per_worker_batch, not both");
  }
  try {
    parse_codec_spec(c.compress);
  } catch (const InvalidArgumentError& e) {
    fail("compress", e.what());
  }
  if (c.min_lr > c.lr) {
    fail("min_lr", format_real(c.min_lr) + " is larger than lr " + format_real(c.lr));
  }
  if (c.max_workers > 0 && c.min_workers > c.max_workers) {
    fail("min_workers", std::to_string(c.min_workers) + " is larger than max_workers " +
                            std::to_string(c.max_workers));
  }
  if (!c.fault.empty()) parse_fault_specs(c.fault, "config key 'fault'");
  if (c.resume == "auto" && c.checkpoint_dir.empty()) {
    fail("resume", "'auto' needs checkpoint_dir (the directory to search)");
  }
}

CheckpointEvery parse_checkpoint_every(std::string_view text) {
  std::string t = trim(text);
  auto bad = [&] {
    throw InvalidArgumentError("config key 'checkpoint_every': bad value '" + std::string(text) +
                               "' (expected a number of steps in 1.." +
                               std::to_string(kMaxConfigSteps) + " like 200, or of seconds in " +
                               RealRange{0, kMaxConfigSeconds, true, false}.text() + " like 30s)");
  };
  CheckpointEvery every;
  if (t.empty()) bad();
  if (t.back() == 's') {
    std::string number = t.substr(0, t.size() - 1);
    char* end = nullptr;
    double v = number.empty() ? 0 : std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size() || !std::isfinite(v) || !(v > 0) ||
        v > kMaxConfigSeconds) {
      bad();
    }
    every.seconds = v;
    return every;
  }
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || v <= 0 || v > kMaxConfigSteps) bad();
  every.steps = v;
  return every;
}

// Note [default batch]. With neither global_batch nor per_worker_batch set, each worker takes
// kDefaultPerWorkerBatch samples per step: G = 64 * W, which divides by any number of workers (2
// workers: 128, one process: 64). An elastic job fixes its G for max_workers workers
// (elastic_trainer.cc), like a per-worker batch.
namespace {
constexpr int64_t kDefaultPerWorkerBatch = 64;
}  // namespace

int64_t global_batch(const TrainConfig& c, int world) {
  if (world <= 0) throw InvalidArgumentError("world size must be positive");
  if (c.per_worker_batch > 0) {
    if (c.per_worker_batch > std::numeric_limits<int64_t>::max() / world) {
      throw InvalidArgumentError(
          "config key 'per_worker_batch': " + std::to_string(c.per_worker_batch) + " times " +
          std::to_string(world) + " workers overflows");
    }
    return c.per_worker_batch * world;
  }
  // 64 * an int world size fits int64.
  return c.global_batch > 0 ? c.global_batch : kDefaultPerWorkerBatch * world;
}

int64_t per_worker_batch(const TrainConfig& c, int world) {
  int64_t global = global_batch(c, world);
  if (global % world != 0) {
    throw InvalidArgumentError("config key 'global_batch': " + std::to_string(global) +
                               " does not divide by the " + std::to_string(world) +
                               " workers; use a multiple of " + std::to_string(world) +
                               " or set per_worker_batch");
  }
  int64_t per_worker = global / world;
  if (c.grad_accumulation <= 0 || per_worker % c.grad_accumulation != 0) {
    throw InvalidArgumentError("config key 'grad_accumulation': the per-worker batch " +
                               std::to_string(per_worker) + " does not divide into " +
                               std::to_string(c.grad_accumulation) + " micro-batches");
  }
  return per_worker;
}

std::chrono::milliseconds milliseconds_of_seconds(double seconds) {
  constexpr double kMaxMs = kMaxConfigSeconds * 1000;
  double ms = std::round(seconds * 1000);
  if (!(ms >= 1)) ms = 1;  // also NaN
  if (ms > kMaxMs) ms = kMaxMs;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

CommOptions comm_options_for(const TrainConfig& config) {
  CommOptions o;
  o.timeout = milliseconds_of_seconds(config.timeout_s);
  o.connect_timeout = std::max(o.timeout, kDefaultTimeout);
  o.progress_thread_nice = static_cast<int>(config.progress_nice);
  o.transport = parse_comm_transport(config.transport);
  return o;
}

}  // namespace dtrain
