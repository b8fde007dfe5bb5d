// Helpers for the trainer checkpoint tests: a small classification job run on N thread-ranks.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "dtrain/data.h"
#include "dtrain/models.h"
#include "dtrain/trainer.h"
#include "train/data_test_util.h"
#include "train/ddp_test_util.h"

namespace dtrain::testing {

// Four Gaussian blobs in 4-D, class = blob: n_train examples (a multiple of 24 keeps every
// world size in {1, 2, 3, 4} on whole batches).
inline DataSplits checkpoint_blobs(int64_t n_train = 384, int64_t n_test = 96) {
  auto make = [](int64_t n, uint64_t seed) {
    torch::Generator gen = at::detail::createCPUGenerator(seed);
    Dataset d;
    d.name = "blobs";
    d.task = "classification";
    d.num_classes = 4;
    torch::Tensor labels = torch::arange(n, torch::kLong) % 4;
    torch::Tensor centers = torch::one_hot(labels, 4).to(torch::kFloat) * 2 - 1;
    d.inputs = centers + torch::randn({n, 4}, gen) * 0.7;
    d.targets = labels;
    return d;
  };
  return {make(n_train, 11), make(n_test, 12)};
}

// The test job: an MLP (4 -> 16 -> 4), global batch 24, 16 steps per epoch, 3 epochs (48 steps).
inline TrainConfig checkpoint_job_config() {
  TrainConfig c;
  c.model = "mlp";
  c.dataset = "blobs";
  c.hidden = {16};
  c.global_batch = 24;
  c.epochs = 3;
  c.lr = 0.05;
  c.log_every = 5;
  c.quiet = true;
  c.seed = 5;
  c.threads = 1;
  return c;
}

struct JobOutcome {
  std::vector<torch::Tensor> params;  // rank 0's final parameters (copies)
  TrainResult result;                 // rank 0's result
  std::string log;                    // rank 0's log
};

// Trains `config` on `world` thread-ranks (one process when world == 1); every rank builds the
// same model from config.seed.
inline JobOutcome run_checkpoint_job(int world, const TrainConfig& config, const DataSplits& data) {
  auto make = [&] {
    ModelOptions o;
    o.name = config.model;
    o.seed = config.seed;
    o.hidden = config.hidden;
    return make_model(fit_to_dataset(o, data.train));
  };
  JobOutcome out;
  auto collect = [&](const ModelHandle& m, const TrainResult& r, const std::string& log) {
    for (const auto& p : m.module->parameters()) out.params.push_back(p.detach().clone());
    out.result = r;
    out.log = log;
  };
  if (world == 1) {
    ModelHandle m = make();
    std::ostringstream log;
    TrainResult r = train(config, m, data, nullptr, log, {.terminal = false, .summary = false});
    collect(m, r, log.str());
    return out;
  }
  std::vector<ModelHandle> models;
  for (int r = 0; r < world; ++r) models.push_back(make());
  std::vector<TrainResult> results(world);
  std::vector<std::string> logs(world);
  run_rank_threads(world, [&](Communicator& comm) {
    std::ostringstream log;
    results[comm.rank()] =
        train(config, models[comm.rank()], data, &comm, log, {.terminal = false, .summary = false});
    logs[comm.rank()] = log.str();
  });
  collect(models[0], results[0], logs[0]);
  return out;
}

inline std::string ckpt_path(const std::filesystem::path& dir, int step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "ckpt-%06d", step);
  return (dir / buf).string();
}

}  // namespace dtrain::testing
