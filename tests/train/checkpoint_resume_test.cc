// Exact resume: a run resumed from one of its own checkpoints ends bitwise where the uninterrupted
// run ended (parameters and per-epoch losses), for 1 and 2 ranks, SGD with momentum, Adam, AdamW
// and top-k compression with error feedback. Ranks are threads over a MemoryStore.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "dtrain/checkpoint.h"
#include "train/checkpoint_test_util.h"
#include "train/train_state.h"

namespace dtrain {
namespace {

using testing::checkpoint_blobs;
using testing::checkpoint_job_config;
using testing::ckpt_path;
using testing::run_checkpoint_job;
using testing::TempDir;

void expect_bitwise_equal(const std::vector<torch::Tensor>& a,
                          const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i << " differs; max abs diff "
                                          << (a[i] - b[i]).abs().max().item<double>();
  }
}

// (world, optimizer, compress)
using ResumeCase = std::tuple<int, OptimizerKind, std::string>;

class ExactResumeTest : public ::testing::TestWithParam<ResumeCase> {};

TEST_P(ExactResumeTest, ResumedRunEndsBitwiseWhereTheUninterruptedRunEnded) {
  auto [world, optimizer, compress] = GetParam();
  DataSplits data = checkpoint_blobs();
  TempDir dir;
  TrainConfig c = checkpoint_job_config();
  c.optimizer = optimizer;
  if (optimizer != OptimizerKind::kSgd) c.lr = 0.01;
  c.compress = compress;
  c.schedule = LrScheduleKind::kWarmupCosine;  // the rate depends on the step: it must resume too
  c.warmup_steps = 4;
  c.checkpoint_dir = dir.path().string();
  c.checkpoint_every = "8";
  c.keep_checkpoints = 0;

  // The uninterrupted run; it also writes ckpt-8 (mid-epoch 0), ckpt-16 (end of epoch 0), ...
  auto full = run_checkpoint_job(world, c, data);
  ASSERT_EQ(full.result.steps, 48);
  EXPECT_EQ(full.result.checkpoints_saved, 6);
  ASSERT_EQ(list_checkpoints(c.checkpoint_dir).size(), 6u);
  if (compress != "none" && world > 1) {
    Checkpoint saved = load_checkpoint(ckpt_path(dir.path(), 8));
    ASSERT_TRUE(saved.files.count("residuals-rank00001")) << "no residuals saved for rank 1";
    double norm = 0;
    for (const auto& [name, rec] : saved.files.at("residuals-rank00001")) {
      for (float v : rec.view<float>()) norm += std::abs(v);
    }
    EXPECT_GT(norm, 0) << "top-k left no residual: the test would not exercise them";
  }

  for (int from : {8, 16, 40}) {
    SCOPED_TRACE("resumed from step " + std::to_string(from));
    TrainConfig r = c;
    r.resume = ckpt_path(dir.path(), from);
    r.checkpoint_dir.clear();  // do not overwrite the run's checkpoints
    auto resumed = run_checkpoint_job(world, r, data);
    EXPECT_EQ(resumed.result.steps, 48);
    EXPECT_EQ(resumed.result.samples, full.result.samples);
    expect_bitwise_equal(full.params, resumed.params);
    ASSERT_EQ(resumed.result.epoch_losses.size(), full.result.epoch_losses.size());
    for (size_t e = 0; e < full.result.epoch_losses.size(); ++e) {
      EXPECT_EQ(resumed.result.epoch_losses[e], full.result.epoch_losses[e]) << "epoch " << e;
    }
    EXPECT_EQ(resumed.result.test_loss, full.result.test_loss);
    EXPECT_NE(resumed.log.find("resuming from " + r.resume), std::string::npos) << resumed.log;
  }
}

INSTANTIATE_TEST_SUITE_P(Trainer, ExactResumeTest,
                         ::testing::Values(ResumeCase{1, OptimizerKind::kSgd, "none"},
                                           ResumeCase{2, OptimizerKind::kSgd, "none"},
                                           ResumeCase{1, OptimizerKind::kAdam, "none"},
                                           ResumeCase{2, OptimizerKind::kAdam, "none"},
                                           ResumeCase{2, OptimizerKind::kAdamW, "none"},
                                           ResumeCase{2, OptimizerKind::kSgd, "topk:0.1"}),
                         [](const auto& info) {
                           const ResumeCase& c = info.param;
                           return "World" + std::to_string(std::get<0>(c)) + "_" +
                                  std::string(optimizer_name(std::get<1>(c))) +
                                  (std::get<2>(c) == "none" ? "" : "_topk");
                         });

// Resuming with the final checkpoint of a shorter run (max_steps) continues mid-epoch like the
// longer run would have (constant rate, so the schedule does not depend on the run's length).
TEST(ExactResumeTest, ExtendingAStoppedRunMatchesTheLongerRun) {
  DataSplits data = checkpoint_blobs();
  TempDir dir;
  TrainConfig c = checkpoint_job_config();
  c.compress = "topk:0.1";
  auto full = run_checkpoint_job(2, c, data);

  TrainConfig first = c;
  first.max_steps = 13;  // stops mid-epoch 0; the final checkpoint is ckpt-13
  first.checkpoint_dir = dir.path().string();
  auto stopped = run_checkpoint_job(2, first, data);
  ASSERT_EQ(stopped.result.steps, 13);
  TrainConfig second = c;
  second.checkpoint_dir = dir.path().string();
  second.resume = "auto";
  auto resumed = run_checkpoint_job(2, second, data);
  EXPECT_NE(resumed.log.find("resuming from " + ckpt_path(dir.path(), 13)), std::string::npos)
      << resumed.log;
  expect_bitwise_equal(full.params, resumed.params);
  EXPECT_EQ(resumed.result.epoch_losses, full.result.epoch_losses);
  // The resumed run saved its own final checkpoint beside the first run's.
  EXPECT_EQ(list_checkpoints(dir.path().string()).back(), ckpt_path(dir.path(), 48));
}

// The control for the top-k case: the same checkpoint with its residuals zeroed resumes to other
// parameters, so the bitwise match above depends on restoring them.
TEST(ExactResumeTest, DroppingTheResidualsChangesTheResult) {
  DataSplits data = checkpoint_blobs();
  TempDir dir;
  TrainConfig c = checkpoint_job_config();
  c.compress = "topk:0.1";
  c.max_steps = 20;
  c.checkpoint_dir = (dir.path() / "run").string();
  c.checkpoint_every = "8";
  auto full = run_checkpoint_job(2, c, data);

  TrainSnapshot s = from_checkpoint(load_checkpoint(ckpt_path(dir.path() / "run", 8)));
  for (RankState& r : s.ranks) {
    for (auto& [name, values] : r.compression) {
      if (name.starts_with("ef/")) std::fill(values.begin(), values.end(), 0.0f);
    }
  }
  CheckpointWriter writer((dir.path() / "zeroed").string(), {.keep_last = 0, .background = false});
  TrainConfig r = c;
  r.checkpoint_dir.clear();
  r.resume = writer.save(to_checkpoint(s));
  auto resumed = run_checkpoint_job(2, r, data);
  bool all_equal = true;
  for (size_t i = 0; i < full.params.size(); ++i) {
    all_equal = all_equal && torch::equal(full.params[i], resumed.params[i]);
  }
  EXPECT_FALSE(all_equal);
}

TEST(ExactResumeTest, AutoWithAnEmptyDirectoryStartsFresh) {
  DataSplits data = checkpoint_blobs();
  TempDir dir;
  TrainConfig c = checkpoint_job_config();
  c.max_steps = 5;
  c.checkpoint_dir = (dir.path() / "none-yet").string();
  c.resume = "auto";
  auto out = run_checkpoint_job(1, c, data);
  EXPECT_EQ(out.result.steps, 5);
  EXPECT_NE(out.log.find("starting from scratch"), std::string::npos) << out.log;
}

}  // namespace
}  // namespace dtrain
