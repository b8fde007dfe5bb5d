// The strategies behind the one training loop: localsgd and diloco against a reference that
// simulates their replicas by hand, diloco at H = 1 / outer lr 1 / no momentum against ddp,
// exact resume, and the bad inputs (unknown strategy, another strategy's key, out-of-range
// options, a checkpoint of another strategy).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <mutex>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/sampler.h"
#include "dtrain/strategy.h"
#include "dtrain/trainer.h"
#include "train/checkpoint_test_util.h"
#include "train/optimizer.h"

namespace dtrain {
namespace {

using testing::checkpoint_blobs;
using testing::checkpoint_job_config;
using testing::run_checkpoint_job;

// max|a - b| <= kRelTol * max|b| + kAbsTol per tensor (float32 summation order).
constexpr double kRelTol = 2e-5;
constexpr double kAbsTol = 1e-6;

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    double diff = (a[i] - b[i]).abs().max().item<double>();
    double scale = b[i].abs().max().item<double>();
    EXPECT_LE(diff, kRelTol * scale + kAbsTol) << "tensor " << i;
  }
}

// The replicas of a periodic strategy, simulated in one thread: `world` models from the same
// seed, each stepping its own optimizer on its slice of the global batch; every `period` steps
// (and at the last) the outer step of docs/training.md "Strategies" with (lr, momentum,
// nesterov); localsgd is lr 1, momentum 0.
std::vector<torch::Tensor> simulate(const TrainConfig& c, const DataSplits& data, int world,
                                    int64_t period, double lr, double momentum, bool nesterov,
                                    int64_t steps) {
  std::vector<ModelHandle> models;
  std::vector<std::unique_ptr<torch::optim::Optimizer>> opts;
  for (int r = 0; r < world; ++r) {
    ModelOptions o;
    o.name = c.model;
    o.seed = c.seed;
    o.hidden = c.hidden;
    models.push_back(make_model(fit_to_dataset(o, data.train)));
    opts.push_back(make_optimizer(c, models.back().module->parameters()));
  }
  torch::NoGradGuard outer_guard;
  std::vector<torch::Tensor> anchor, m;
  for (const auto& p : models[0].module->parameters()) {
    anchor.push_back(p.detach().clone());
    m.push_back(torch::zeros_like(p));
  }
  const int64_t n = data.train.size(), g = c.global_batch, pw = g / world;
  DistributedSampler sampler(n, 0, 1, c.seed, true);
  int64_t step = 0;
  for (int64_t epoch = 0; step < steps; ++epoch) {
    std::vector<int64_t> order = sampler.permutation(epoch);
    for (int64_t p = 0; p + g <= n && step < steps; p += g) {
      for (int r = 0; r < world; ++r) {
        torch::AutoGradMode grad(true);
        opts[r]->zero_grad();
        auto first = order.begin() + p + r * pw;
        Batch b = data.train.gather(std::vector<int64_t>(first, first + pw));
        models[r].loss(models[r].forward(b.inputs), b.targets).backward();
        opts[r]->step();
      }
      ++step;
      if (step % period != 0 && step != steps) continue;
      for (size_t i = 0; i < anchor.size(); ++i) {
        torch::Tensor mean = torch::zeros_like(anchor[i]);
        for (int r = 0; r < world; ++r) mean += models[r].module->parameters()[i].detach();
        mean /= world;
        torch::Tensor delta = anchor[i] - mean;
        torch::Tensor update = delta;
        if (momentum > 0) {
          m[i] = momentum * m[i] + delta;
          update = nesterov ? delta + momentum * m[i] : m[i];
        }
        anchor[i] = anchor[i] - lr * update;
        for (int r = 0; r < world; ++r) models[r].module->parameters()[i].copy_(anchor[i]);
      }
    }
  }
  return anchor;
}

TrainConfig job(const std::string& strategy, int64_t steps) {
  TrainConfig c = checkpoint_job_config();
  c.strategy = strategy;
  c.max_steps = steps;
  return c;
}

TEST(StrategyTest, LocalSgdEqualsItsHandSimulation) {
  DataSplits data = checkpoint_blobs();
  TrainConfig c = job("localsgd", 22);  // ends off the period: the last step averages
  c.local_sgd_period = 4;
  auto got = run_checkpoint_job(2, c, data);
  expect_close(got.params, simulate(c, data, 2, 4, 1.0, 0.0, false, 22));
}

TEST(StrategyTest, DilocoEqualsItsHandSimulationWithNesterov) {
  DataSplits data = checkpoint_blobs();
  TrainConfig c = job("diloco", 22);
  c.inner_steps = 5;
  auto got = run_checkpoint_job(2, c, data);
  expect_close(got.params, simulate(c, data, 2, 5, 0.7, 0.9, true, 22));
  EXPECT_EQ(got.result.steps, 22);
}

TEST(StrategyTest, DilocoWithMomentumWithoutNesterov) {
  DataSplits data = checkpoint_blobs();
  TrainConfig c = job("diloco", 12);
  c.inner_steps = 3;
  c.outer_lr = 0.5;
  c.outer_momentum = 0.8;
  c.outer_nesterov = false;
  auto got = run_checkpoint_job(3, c, data);
  expect_close(got.params, simulate(c, data, 3, 3, 0.5, 0.8, false, 12));
}

// H = 1, outer lr 1, no outer momentum: the mean of one inner SGD step from the same point is the
// step on the mean gradient, so diloco is ddp (inner SGD momentum is linear too).
class DilocoAsDdpTest : public ::testing::TestWithParam<double> {};

TEST_P(DilocoAsDdpTest, EqualsDdp) {
  DataSplits data = checkpoint_blobs();
  TrainConfig d = job("diloco", 20);
  d.momentum = GetParam();
  d.inner_steps = 1;
  d.outer_lr = 1;
  d.outer_momentum = 0;
  TrainConfig ddp = job("ddp", 20);
  ddp.momentum = GetParam();
  expect_close(run_checkpoint_job(2, d, data).params, run_checkpoint_job(2, ddp, data).params);
}

INSTANTIATE_TEST_SUITE_P(InnerMomentum, DilocoAsDdpTest, ::testing::Values(0.0, 0.9));

// A diloco run stopped at a checkpoint and resumed ends bitwise where the uninterrupted run ends
// (outer momentum from strategy.safetensors; inner SGD without momentum: see docs/training.md).
TEST(StrategyTest, DilocoResumesExactly) {
  DataSplits data = checkpoint_blobs();
  testing::TempDir dir;
  TrainConfig c = job("diloco", 16);
  c.momentum = 0;
  c.inner_steps = 4;
  auto whole = run_checkpoint_job(2, c, data);
  TrainConfig first = c;
  first.max_steps = 8;
  first.checkpoint_dir = dir.path().string();
  run_checkpoint_job(2, first, data);
  ASSERT_TRUE(std::filesystem::exists(testing::ckpt_path(dir.path(), 8) + "/strategy.safetensors"));
  TrainConfig second = c;
  second.resume = testing::ckpt_path(dir.path(), 8);
  auto resumed = run_checkpoint_job(2, second, data);
  ASSERT_EQ(resumed.params.size(), whole.params.size());
  for (size_t i = 0; i < whole.params.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed.params[i], whole.params[i])) << "tensor " << i;
  }
}

TEST(StrategyTest, CompressedDilocoSendsFewerBytesAndStillLearns) {
  DataSplits data = checkpoint_blobs();
  TrainConfig c = job("diloco", 16);
  c.inner_steps = 4;
  auto dense = run_checkpoint_job(2, c, data);
  c.compress = "fp16";
  auto half = run_checkpoint_job(2, c, data);
  EXPECT_LT(half.result.bytes_communicated, dense.result.bytes_communicated);
  ASSERT_TRUE(half.result.test_accuracy.has_value());
  EXPECT_GT(*half.result.test_accuracy, 0.8);
}

// Compressed localsgd, driven through the Strategy interface on two rank threads: each rank
// steps on its own data, every period the parameter deltas go through the codec, and since a
// compressed allreduce gives every rank the same bits, the replicas end bit-identical, for less
// than the dense bytes.
TEST(StrategyTest, CompressedLocalSgdLeavesIdenticalReplicas) {
  constexpr int kWorld = 2, kSteps = 6;
  auto gen = at::detail::createCPUGenerator(11);
  auto inputs = torch::randn({kWorld, kSteps, 16, 32}, gen);
  auto targets = torch::randint(0, 4, {kWorld, kSteps, 16}, gen);
  for (const std::string spec : {"topk:0.05", "powersgd:2", "qsgd:15"}) {
    TrainConfig c;
    c.strategy = "localsgd";
    c.local_sgd_period = 2;
    c.compress = spec;
    std::mutex mutex;
    std::vector<std::vector<torch::Tensor>> params(kWorld);
    std::vector<StrategyStats> stats(kWorld);
    std::vector<bool> diverged(kWorld);
    testing::run_rank_threads(kWorld, [&](Communicator& comm) {
      ModelOptions o;
      o.name = "mlp";
      o.in_features = 32;
      o.hidden = {64};
      o.num_classes = 4;
      o.seed = 5;
      ModelHandle model = make_model(o);
      torch::optim::SGD opt(model.module->parameters(), torch::optim::SGDOptions(0.1));
      auto strategy = make_strategy(c);
      strategy->setup({model.module, &comm, &opt, 0});
      StepPhases phases;
      const int r = comm.rank();
      bool apart = false;
      for (int s = 0; s < kSteps; ++s) {
        strategy->step(
            1, [&](int64_t) { return model.loss(model.forward(inputs[r][s]), targets[r][s]); },
            s + 1 == kSteps, phases);
        if (s % 2 == 0) apart = apart || !strategy->replicas_agree();
      }
      std::lock_guard<std::mutex> lock(mutex);
      diverged[r] = apart;
      for (auto& p : model.module->parameters()) params[r].push_back(p.detach().clone());
      stats[r] = strategy->stats();
    });
    for (int r = 0; r < kWorld; ++r) EXPECT_TRUE(diverged[r]) << spec << ": no local steps";
    for (size_t i = 0; i < params[0].size(); ++i) {
      EXPECT_TRUE(torch::equal(params[0][i], params[1][i])) << spec << " parameter " << i;
    }
    EXPECT_EQ(stats[0].synchronizations, 3u) << spec;  // steps 2, 4 and 6
    EXPECT_GT(stats[0].bytes_communicated, 0u) << spec;
    EXPECT_LT(stats[0].bytes_communicated, stats[0].dense_equivalent_bytes) << spec;
  }
}

TEST(StrategyConfigTest, BadInputNamesTheProblem) {
  TrainConfig c;
  EXPECT_THROW(set_config_value(c, "strategy", "zero"), InvalidArgumentError);
  try {
    TrainConfig k;
    set_config_value(k, "inner_steps", "5");
    validate_config(k);
    ADD_FAILURE() << "a diloco key under ddp was accepted";
  } catch (const InvalidArgumentError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("inner_steps"), std::string::npos) << what;
    EXPECT_NE(what.find("diloco"), std::string::npos) << what;
    EXPECT_NE(what.find("ddp"), std::string::npos) << what;
  }
  EXPECT_THROW(set_config_value(c, "inner_steps", "0"), InvalidArgumentError);
  EXPECT_THROW(set_config_value(c, "outer_lr", "-0.5"), InvalidArgumentError);
  TrainConfig ok;
  set_config_value(ok, "strategy", "diloco");
  set_config_value(ok, "inner_steps", "5");
  validate_config(ok);
  EXPECT_EQ(make_strategy(ok)->name(), "diloco");
  EXPECT_EQ(make_strategy(ok)->options().at("inner_steps"), "5");
}

TEST(StrategyConfigTest, ResumingAnotherStrategysCheckpointFailsAndKeepsIt) {
  DataSplits data = checkpoint_blobs();
  testing::TempDir dir;
  TrainConfig c = job("ddp", 4);
  c.checkpoint_dir = dir.path().string();
  run_checkpoint_job(1, c, data);
  const std::string saved = testing::ckpt_path(dir.path(), 4);
  ASSERT_TRUE(std::filesystem::exists(saved + "/manifest.json"));
  for (const std::string resume : {saved, std::string("auto")}) {
    TrainConfig d = job("diloco", 8);
    d.checkpoint_dir = dir.path().string();
    d.resume = resume;
    try {
      run_checkpoint_job(1, d, data);
      ADD_FAILURE() << "resumed a ddp checkpoint as diloco (" << resume << ")";
    } catch (const MismatchError& e) {
      EXPECT_NE(std::string(e.what()).find("written by strategy ddp, this run uses diloco"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(list_checkpoints(dir.path().string()), std::vector<std::string>{saved});
}

}  // namespace
}  // namespace dtrain
