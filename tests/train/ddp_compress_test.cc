// Gradient compression inside DDP (DdpOptions::compress): accuracy against dense DDP, exact byte
// accounting, dense warm-up, identical replicas, local SGD, bad specs, and `dtrain run --compress`.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>

#include "ddp_test_util.h"
#include "dtrain/ddp.h"
#include "dtrain/error.h"
#include "dtrain/models.h"
#include "train/dtrain_process.h"

namespace dtrain {
namespace {

// Linearly separable 4-class data in 32 dimensions: label = argmax(W* x), W* fixed.
struct Separable {
  torch::Tensor train_x, train_y;  // [n_train, 32], [n_train]
  torch::Tensor test_x, test_y;    // [n_test, 32], [n_test]
};

Separable separable_data(int64_t n_train, int64_t n_test) {
  auto gen = at::detail::createCPUGenerator(2024);
  auto w = torch::randn({32, 4}, gen);
  auto x = torch::randn({n_train + n_test, 32}, gen);
  auto y = x.matmul(w).argmax(1);
  return {x.narrow(0, 0, n_train), y.narrow(0, 0, n_train), x.narrow(0, n_train, n_test),
          y.narrow(0, n_train, n_test)};
}

ModelOptions mlp_options() {
  ModelOptions o;
  o.name = "mlp";
  o.in_features = 32;
  o.hidden = {128};  // 32x128 and 128x4 weights: 4,740 parameters, one bucket
  o.num_classes = 4;
  o.seed = 5;
  return o;
}

struct RunResult {
  std::vector<torch::Tensor> params;
  DdpStats stats;
  double accuracy = 0;                     // on the test split
  std::vector<uint64_t> bytes_after_step;  // stats.bytes_communicated after each step
};

struct RunOptions {
  DdpOptions ddp;
  int steps = 5;
  int64_t global_batch = 64;
  double lr = 0.1;
};

// Trains with SGD (momentum 0.9) on `data`; this rank takes its contiguous slice of each global
// batch, cycling through the training split.
RunResult train_rank(Communicator& comm, const Separable& data, const RunOptions& ro) {
  ModelHandle model = make_model(mlp_options());
  DistributedDataParallel ddp(model.module, comm, ro.ddp);
  torch::optim::SGD opt(model.module->parameters(), torch::optim::SGDOptions(ro.lr).momentum(0.9));
  const int64_t local = ro.global_batch / comm.size();
  const int64_t n = data.train_x.size(0);
  RunResult out;
  for (int s = 0; s < ro.steps; ++s) {
    int64_t start = (s * ro.global_batch) % (n - ro.global_batch + 1) + comm.rank() * local;
    opt.zero_grad();
    auto loss = model.loss(model.forward(data.train_x.narrow(0, start, local)),
                           data.train_y.narrow(0, start, local));
    ddp.prepare_backward(true);
    loss.backward();
    ddp.finish_backward();
    opt.step();
    ddp.after_optimizer_step();
    out.bytes_after_step.push_back(ddp.stats().bytes_communicated);
  }
  torch::NoGradGuard no_grad;
  auto predicted = model.forward(data.test_x).argmax(1);
  out.accuracy = predicted.eq(data.test_y).to(torch::kFloat64).mean().item<double>();
  for (auto& t : model.module->parameters()) out.params.push_back(t.detach().clone());
  out.stats = ddp.stats();
  return out;
}

// Runs `world` ranks; returns each rank's result.
std::vector<RunResult> run(int world, const Separable& data, const RunOptions& ro) {
  std::mutex mutex;
  std::vector<RunResult> results(world);
  testing::run_rank_threads(world, [&](Communicator& comm) {
    RunResult r = train_rank(comm, data, ro);
    std::lock_guard<std::mutex> lock(mutex);
    results[comm.rank()] = std::move(r);
  });
  return results;
}

void expect_identical_replicas(const std::vector<RunResult>& results, const std::string& what) {
  for (size_t r = 1; r < results.size(); ++r) {
    ASSERT_EQ(results[r].params.size(), results[0].params.size());
    for (size_t i = 0; i < results[0].params.size(); ++i) {
      EXPECT_TRUE(torch::equal(results[r].params[i], results[0].params[i]))
          << what << ": rank " << r << " parameter " << i << " differs from rank 0";
    }
  }
}

TEST(DdpCompress, Fp16StaysCloseToDense) {
  Separable data = separable_data(512, 64);
  RunOptions dense_options;
  RunOptions fp16_options;
  fp16_options.ddp.compress = "fp16";
  auto dense = run(2, data, dense_options);
  auto fp16 = run(2, data, fp16_options);
  expect_identical_replicas(fp16, "fp16");
  auto initial = make_model(mlp_options()).module->parameters();
  for (size_t i = 0; i < dense[0].params.size(); ++i) {
    double moved = (dense[0].params[i] - initial[i]).abs().max().item<double>();
    double diff = (fp16[0].params[i] - dense[0].params[i]).abs().max().item<double>();
    // fp16 keeps 11 significant bits: after 5 steps the drift is a tiny fraction of the motion.
    EXPECT_GT(moved, 1e-3) << "parameter " << i;
    EXPECT_LE(diff, 1e-2 * moved + 1e-6) << "parameter " << i;
  }
  // The wire sizes counted by hand (docs/compression.md): the MLP's gradients are one float32
  // bucket, allreduced once per step; dense sends 4 bytes a gradient, fp16 2 plus its 40-byte
  // header.
  constexpr uint64_t kGradients = 32 * 128 + 128 + 128 * 4 + 4;  // 4,740
  constexpr uint64_t kSteps = 5;
  const DdpStats& s = fp16[0].stats;
  EXPECT_EQ(s.allreduces, kSteps);
  EXPECT_EQ(s.compressed_allreduces, kSteps);
  EXPECT_EQ(s.bytes_communicated, kSteps * (2 * kGradients + 40));
  EXPECT_EQ(s.compression.payload_bytes, kSteps * (2 * kGradients + 40));
  EXPECT_EQ(s.dense_equivalent_bytes, kSteps * 4 * kGradients);
  EXPECT_EQ(dense[0].stats.bytes_communicated, kSteps * 4 * kGradients);
}

// Top-k 1% with error feedback and PowerSGD rank 2 reach (nearly) dense accuracy; top-k sends
// >= 20x fewer bytes per step. 200 steps of a 4.7k-parameter MLP: a few seconds in all
// (mostly collective latency).
TEST(DdpCompress, TopkAndPowerSgdTrainToNearDenseAccuracy) {
  Separable data = separable_data(4096, 1024);
  RunOptions base;
  base.steps = 200;
  base.lr = 0.03;
  auto dense = run(2, data, base);
  ASSERT_GE(dense[0].accuracy, 0.9);
  for (const std::string spec : {"topk:0.01", "powersgd:2"}) {
    RunOptions ro = base;
    ro.ddp.compress = spec;
    auto got = run(2, data, ro);
    expect_identical_replicas(got, spec);
    EXPECT_GE(got[0].accuracy, dense[0].accuracy - 0.04)
        << spec << " vs dense " << dense[0].accuracy;
    const DdpStats& s = got[0].stats;
    EXPECT_EQ(s.dense_equivalent_bytes, dense[0].stats.bytes_communicated) << spec;
    EXPECT_EQ(s.compressed_allreduces, s.allreduces) << spec;
    if (spec == "topk:0.01") {
      uint64_t per_step = got[0].bytes_after_step[1] - got[0].bytes_after_step[0];
      uint64_t dense_per_step = dense[0].bytes_after_step[1] - dense[0].bytes_after_step[0];
      EXPECT_GE(dense_per_step, 20 * per_step) << per_step << " vs " << dense_per_step;
    } else {
      // 32x128 and the 128 + 4 biases: the 4x128 weight is too small to factor and goes dense.
      EXPECT_GE(s.dense_equivalent_bytes, 4 * s.bytes_communicated);
    }
  }
}

TEST(DdpCompress, WarmupStepsAreDense) {
  Separable data = separable_data(512, 64);
  RunOptions dense_options;
  dense_options.steps = 5;
  RunOptions ro = dense_options;
  ro.ddp.compress = "topk:0.01";
  ro.ddp.compress_warmup_steps = 3;
  auto dense = run(2, data, dense_options);
  auto got = run(2, data, ro);
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(got[0].bytes_after_step[s], dense[0].bytes_after_step[s]) << "step " << s;
  }
  uint64_t dense_step = dense[0].bytes_after_step[4] - dense[0].bytes_after_step[3];
  uint64_t topk_step = got[0].bytes_after_step[4] - got[0].bytes_after_step[3];
  EXPECT_GE(dense_step, 20 * topk_step);
  EXPECT_EQ(got[0].stats.compressed_allreduces, got[0].stats.allreduces * 2 / 5);
  expect_identical_replicas(got, "warm-up");
  // The dense warm-up steps leave the same parameters as dense DDP up to then: checked through
  // the bytes above; the compressed steps keep replicas identical.
}

TEST(DdpCompress, ResidualStateIsExposed) {
  Separable data = separable_data(512, 64);
  testing::run_rank_threads(2, [&](Communicator& comm) {
    ModelHandle model = make_model(mlp_options());
    DdpOptions o;
    o.compress = "topk:0.01";
    DistributedDataParallel ddp(model.module, comm, o);
    EXPECT_TRUE(ddp.compression_state().empty());
    auto loss = model.loss(model.forward(data.train_x.narrow(0, comm.rank() * 32, 32)),
                           data.train_y.narrow(0, comm.rank() * 32, 32));
    ddp.prepare_backward(true);
    loss.backward();
    ddp.finish_backward();
    CodecState state = ddp.compression_state();
    ASSERT_EQ(state.count("ef/0"), 1u);
    EXPECT_EQ(state.at("ef/0").size(), 4740u);
    ddp.load_compression_state(state);
    EXPECT_EQ(ddp.compression_state(), state);
  });
}

TEST(DdpCompress, BadSpecIsInvalidArgumentAtConstruction) {
  testing::run_rank_threads(2, [](Communicator& comm) {
    for (const std::string spec : {"topk", "topk:0", "gzip", "powersgd:0", "qsgd:x"}) {
      ModelHandle model = make_model(mlp_options());
      DdpOptions o;
      o.compress = spec;
      EXPECT_THROW(DistributedDataParallel(model.module, comm, o), InvalidArgumentError) << spec;
    }
  });
}

// `dtrain run --compress fp16` end to end (the built binary, two worker processes).
TEST(DdpCompressCli, RunLinregWithFp16Converges) {
  auto metrics = std::filesystem::temp_directory_path() /
                 ("dtrain_compress_cli_" + std::to_string(getpid()) + ".jsonl");
  testing::CommandOutput run = testing::run_dtrain(
      "run --compress fp16 --model linreg --dataset synthetic-linear --nproc 2 --metrics " +
      metrics.string());
  const std::string& text = run.text;
  ASSERT_EQ(run.code, 0) << text;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      text, m, std::regex("Final Model Parameters: theta_0 = ([-0-9.]+), theta_1 = ([-0-9.]+)")))
      << text;
  EXPECT_NEAR(std::stod(m[1]), 1.0, 0.01);
  EXPECT_NEAR(std::stod(m[2]), 1.0, 0.01);
  // The metrics report the compressed payload: fp16 halves the 8-byte bucket, plus its header.
  std::ifstream in(metrics);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.find("\"train\"") != std::string::npos) last = line;
  }
  ASSERT_FALSE(last.empty()) << text;
  auto j = nlohmann::json::parse(last);
  uint64_t payload = j.at("sync_payload_bytes"), dense = j.at("sync_dense_bytes");
  ASSERT_GT(dense, 0u);
  EXPECT_EQ(dense % 8, 0u);  // two float parameters per allreduce
  EXPECT_EQ(payload, dense / 8 * (4 + 40));
  std::filesystem::remove(metrics);
}

}  // namespace
}  // namespace dtrain
