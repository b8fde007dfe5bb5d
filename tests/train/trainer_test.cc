// The trainer loop: convergence to closed-form answers, equivalence of 2 ranks (threads over a
// MemoryStore) with 1 process, metrics lines, a user module, and configuration errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/rank_threads.h"
#include "dtrain/communicator.h"
#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/memory_store.h"
#include "dtrain/models.h"
#include "dtrain/trainer.h"

namespace dtrain {
namespace {

TrainConfig linreg_config() {
  TrainConfig c = default_config_for_model("linreg");
  EXPECT_EQ(c.dataset, "synthetic-linear");
  return c;
}

std::pair<double, double> linreg_thetas(torch::nn::Module& module) {
  double t0 = 0, t1 = 0;
  for (const auto& p : module.named_parameters()) {
    if (p.key().ends_with("bias")) t0 = p.value().item<double>();
    if (p.key().ends_with("weight")) t1 = p.value().item<double>();
  }
  return {t0, t1};
}

// Two well separated Gaussian blobs in 2-D: class = (x0 + x1 > 0).
DataSplits blobs(int64_t n_train, int64_t n_test) {
  auto make = [](int64_t n, uint64_t seed) {
    torch::Generator gen = at::detail::createCPUGenerator(seed);
    Dataset d;
    d.name = "blobs";
    d.task = "classification";
    d.num_classes = 2;
    torch::Tensor labels = torch::arange(n, torch::kLong) % 2;
    torch::Tensor centers = (labels.to(torch::kFloat) * 2 - 1).unsqueeze(1).expand({n, 2}) * 1.5;
    d.inputs = centers + torch::randn({n, 2}, gen) * 0.5;
    d.targets = labels;
    return d;
  };
  return {make(n_train, 1), make(n_test, 2)};
}

// Runs `fn(comm)` on `world` threads, each a rank of a communicator over one MemoryStore.
template <typename Fn>
void run_ranks(int world, Fn fn) {
  testing::run_comm_threads(world, [&](int, Communicator& comm) { fn(comm); });
}

TEST(TrainerTest, LinregConvergesToTheTrueLine) {
  std::ostringstream log;
  TrainResult r = train(linreg_config(), nullptr, log, {.terminal = false, .summary = true});
  auto [t0, t1] = linreg_thetas(*r.module);
  EXPECT_NEAR(t0, 1.0, 0.01);
  EXPECT_NEAR(t1, 1.0, 0.01);
  std::string text = log.str();
  EXPECT_NE(text.find("Epoch: 1, Loss: "), std::string::npos) << text;
  EXPECT_NE(text.find("Final Model Parameters: theta_0 = "), std::string::npos) << text;
  EXPECT_NE(text.find("wall time"), std::string::npos) << text;
  EXPECT_FALSE(r.test_accuracy.has_value());
  EXPECT_LT(r.test_loss, 0.02);  // noise variance 0.01
}

TEST(TrainerTest, TwoRanksTakeTheSameStepsAsOneProcess) {
  TrainConfig c;
  c.model = "logreg";
  c.dataset = "blobs";
  c.global_batch = 32;
  c.epochs = 2;
  c.lr = 0.1;
  c.quiet = true;
  DataSplits data = blobs(256, 64);
  auto make = [&] {
    ModelOptions o;
    o.name = "logreg";
    o.seed = 7;
    return make_model(fit_to_dataset(o, data.train));
  };
  std::ostringstream log;
  ModelHandle single = make();
  TrainResult one = train(c, single, data, nullptr, log, {.terminal = false, .summary = false});

  std::vector<TrainResult> results(2);
  std::vector<ModelHandle> models = {make(), make()};
  TrainConfig c2 = c;
  c2.grad_accumulation = 2;  // 2 ranks x 2 micro-batches of 8: still the same global batch
  run_ranks(2, [&](Communicator& comm) {
    std::ostringstream rank_log;
    results[comm.rank()] = train(c2, models[comm.rank()], data, &comm, rank_log,
                                 {.terminal = false, .summary = false});
  });
  for (int r = 0; r < 2; ++r) {
    auto a = single.module->parameters();
    auto b = models[r].module->parameters();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-5)) << "rank " << r << " param " << i;
    }
    EXPECT_EQ(results[r].steps, one.steps);
    EXPECT_NEAR(results[r].final_train_loss, one.final_train_loss, 1e-5);
    ASSERT_TRUE(results[r].test_accuracy.has_value());
    EXPECT_NEAR(*results[r].test_accuracy, *one.test_accuracy, 1e-9);
    EXPECT_GT(results[r].bytes_communicated, 0u);
  }
  EXPECT_GT(*one.test_accuracy, 0.95);
}

TEST(TrainerTest, MetricsLinesCarryTheRequiredKeys) {
  auto path = std::filesystem::temp_directory_path() / "dtrain_trainer_metrics_test.jsonl";
  TrainConfig c;
  c.model = "logreg";
  c.global_batch = 16;
  c.epochs = 1;
  c.log_every = 4;
  c.eval_every = 8;
  c.quiet = true;
  c.metrics = path.string();
  DataSplits data = blobs(128, 32);
  ModelOptions o;
  o.name = "logreg";
  ModelHandle model = make_model(fit_to_dataset(o, data.train));
  std::ostringstream log;
  train(c, model, data, nullptr, log, {.terminal = false, .summary = false});

  std::ifstream in(path);
  std::string line;
  int train_lines = 0, eval_lines = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    for (const char* key :
         {"kind", "step", "epoch", "loss", "samples_per_sec", "bytes_communicated", "comm_seconds",
          "forward_s", "backward_s", "sync_s", "optimizer_s"}) {
      EXPECT_TRUE(j.contains(key)) << key << " in " << line;
    }
    // The phases are cumulative and cover the steps so far: each grows, none exceeds the time.
    double phases = 0;
    for (const char* key : {"forward_s", "backward_s", "sync_s", "optimizer_s"}) {
      EXPECT_GE(j[key].get<double>(), 0.0) << key;
      phases += j[key].get<double>();
    }
    EXPECT_GT(j["forward_s"].get<double>(), 0.0) << line;
    EXPECT_GT(j["backward_s"].get<double>(), 0.0) << line;
    EXPECT_LE(phases, j["elapsed_s"].get<double>() + 1e-6) << line;
    if (j["kind"] == "train") ++train_lines;
    if (j["kind"] == "eval") {
      ++eval_lines;
      EXPECT_TRUE(j.contains("accuracy")) << line;
    }
  }
  EXPECT_EQ(train_lines, 2);  // 8 steps, a line every 4
  EXPECT_EQ(eval_lines, 1);   // at step 8 (also the end)
  std::filesystem::remove(path);
}

// A user-defined module trained through the API: a 2-16-2 network with a tanh.
struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl()
      : fc1(register_module("fc1", torch::nn::Linear(2, 16))),
        fc2(register_module("fc2", torch::nn::Linear(16, 2))) {}
  torch::Tensor forward(torch::Tensor x) { return fc2(torch::tanh(fc1(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(TinyNet);

TEST(TrainerTest, TrainsAUserModuleWithAdamAndAccumulation) {
  TrainConfig c;
  c.model = "tiny";
  c.global_batch = 32;
  c.grad_accumulation = 4;
  c.optimizer = OptimizerKind::kAdam;
  c.schedule = LrScheduleKind::kWarmupCosine;
  c.warmup_steps = 4;
  c.lr = 0.05;
  c.epochs = 3;
  c.quiet = true;
  DataSplits data = blobs(512, 128);
  torch::manual_seed(0);
  ModelHandle model = wrap_module("tiny", TinyNet(), {}, "classification");
  std::ostringstream log;
  TrainResult r = train(c, model, data, nullptr, log, {.terminal = false, .summary = false});
  ASSERT_TRUE(r.test_accuracy.has_value());
  EXPECT_GT(*r.test_accuracy, 0.95);
  EXPECT_EQ(r.steps, 3 * (512 / 32));
  // Every optimizer step is timed once, its 4 micro-batches' forward and backward inside it.
  EXPECT_EQ(r.phases.steps, r.steps);
  EXPECT_GT(r.phases.forward_s, 0.0);
  EXPECT_GT(r.phases.backward_s, 0.0);
  EXPECT_GT(r.phases.optimizer_s, 0.0);
  EXPECT_LE(r.phases.forward_s + r.phases.backward_s + r.phases.sync_s + r.phases.optimizer_s,
            r.wall_seconds);
}

// A diverged run (NaN losses, written to JSON as null) still hands its result to `dtrain run`.
TEST(TrainerTest, ResultJsonCarriesNanLosses) {
  TrainResult r;
  r.world_size = 4;
  r.final_train_loss = std::numeric_limits<double>::quiet_NaN();
  r.epoch_losses = {2.3, std::numeric_limits<double>::quiet_NaN()};
  r.test_loss = std::numeric_limits<double>::quiet_NaN();
  r.test_accuracy = 0.1;
  r.phases = {10, 0.25, 0.5, 0.125, 0.0625};
  TrainResult back = train_result_from_json(train_result_to_json(r));
  EXPECT_EQ(back.phases.steps, 10);
  EXPECT_DOUBLE_EQ(back.phases.forward_s, 0.25);
  EXPECT_DOUBLE_EQ(back.phases.backward_s, 0.5);
  EXPECT_DOUBLE_EQ(back.phases.sync_s, 0.125);
  EXPECT_DOUBLE_EQ(back.phases.optimizer_s, 0.0625);
  EXPECT_EQ(back.world_size, 4);
  EXPECT_TRUE(std::isnan(back.final_train_loss));
  ASSERT_EQ(back.epoch_losses.size(), 2u);
  EXPECT_DOUBLE_EQ(back.epoch_losses[0], 2.3);
  EXPECT_TRUE(std::isnan(back.epoch_losses[1]));
  EXPECT_TRUE(std::isnan(back.test_loss));
  EXPECT_DOUBLE_EQ(back.test_accuracy.value_or(0), 0.1);
}

TEST(TrainerTest, ConfigErrorsAreInvalidArgument) {
  TrainConfig c;
  c.model = "logreg";
  c.global_batch = 1024;  // larger than the split
  DataSplits data = blobs(128, 32);
  ModelOptions o;
  o.name = "logreg";
  ModelHandle model = make_model(fit_to_dataset(o, data.train));
  std::ostringstream log;
  EXPECT_THROW(train(c, model, data, nullptr, log), InvalidArgumentError);
  c.global_batch = 33;
  run_ranks(2, [&](Communicator& comm) {
    EXPECT_THROW(train(c, model, data, &comm, log), InvalidArgumentError);  // 33 over 2 ranks
  });
}

}  // namespace
}  // namespace dtrain
