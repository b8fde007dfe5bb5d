// Resharding: a checkpoint written by N ranks resumes on M != N ranks (same global batch) and the
// continuation matches the uninterrupted N-rank run within the DDP equivalence tolerance; the
// residual rule (Note [resharding rank states]) keeps the residuals' total contribution.
#include <gtest/gtest.h>

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

// Relative tolerance on every parameter tensor, as tests/train/ddp_equivalence_test.cc:
// max|a - b| <= kRelTol * max|b| + kAbsTol.
constexpr double kRelTol = 1e-5;
constexpr double kAbsTol = 1e-7;

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    double diff = (a[i] - b[i]).abs().max().item<double>();
    double scale = b[i].abs().max().item<double>();
    EXPECT_LE(diff, kRelTol * scale + kAbsTol) << "parameter " << i;
  }
}

struct ReshardCase {
  int from_world;
  int to_world;
};

class ReshardTest : public ::testing::TestWithParam<ReshardCase> {};

TEST_P(ReshardTest, ContinuationOnAnotherWorldSizeMatchesTheUninterruptedRun) {
  const ReshardCase rc = GetParam();
  DataSplits data = checkpoint_blobs();
  TempDir dir;
  TrainConfig c = checkpoint_job_config();  // global batch 24: divides by 2, 3 and 4
  c.checkpoint_dir = dir.path().string();
  c.checkpoint_every = "20";  // ckpt-20: mid-epoch 1
  c.keep_checkpoints = 0;
  auto full = run_checkpoint_job(rc.from_world, c, data);
  ASSERT_EQ(full.result.steps, 48);

  TrainConfig r = c;
  r.checkpoint_dir.clear();
  r.resume = ckpt_path(dir.path(), 20);
  auto resumed = run_checkpoint_job(rc.to_world, r, data);
  EXPECT_EQ(resumed.result.steps, 48);
  EXPECT_EQ(resumed.result.world_size, rc.to_world);
  expect_close(resumed.params, full.params);
  ASSERT_EQ(resumed.result.epoch_losses.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(resumed.result.epoch_losses[e], full.result.epoch_losses[e],
                1e-5 * std::abs(full.result.epoch_losses[e]))
        << "epoch " << e;
  }
}

INSTANTIATE_TEST_SUITE_P(Trainer, ReshardTest,
                         ::testing::Values(ReshardCase{2, 3}, ReshardCase{4, 2}, ReshardCase{2, 1}),
                         [](const auto& info) {
                           return "From" + std::to_string(info.param.from_world) + "To" +
                                  std::to_string(info.param.to_world);
                         });

// Compressed 4-rank run resumed on 2 ranks: every new rank starts from the mean of the 4 old
// residuals, so their total contribution (1/W) * sum_r e_r is unchanged, and training goes on.
TEST(ReshardTest, ResidualsOfFourRanksResumeOnTwoAsTheirMean) {
  DataSplits data = checkpoint_blobs();
  TempDir dir;
  TrainConfig c = checkpoint_job_config();
  c.compress = "topk:0.1";
  c.checkpoint_dir = dir.path().string();
  c.max_steps = 12;
  run_checkpoint_job(4, c, data);

  TrainSnapshot old = from_checkpoint(load_checkpoint(ckpt_path(dir.path(), 12)));
  ASSERT_EQ(old.ranks.size(), 4u);
  ASSERT_FALSE(old.ranks[0].compression.empty());
  for (int new_rank = 0; new_rank < 2; ++new_rank) {
    RankState mine = rank_state_for(old, new_rank, 2);
    ASSERT_EQ(mine.compression.size(), old.ranks[0].compression.size());
    for (const auto& [name, values] : mine.compression) {
      if (!name.starts_with("ef/")) continue;
      double old_total = 0, new_total = 0;  // contributions to the averaged gradient
      for (size_t i = 0; i < values.size(); ++i) {
        double sum = 0;
        for (const RankState& r : old.ranks) sum += r.compression.at(name)[i];
        EXPECT_NEAR(values[i], sum / 4, 1e-6);
        old_total += sum / 4;
        new_total += 2.0 * values[i] / 2;
      }
      EXPECT_NEAR(new_total, old_total, 1e-5 * (1 + std::abs(old_total))) << name;
    }
  }

  TrainConfig r = c;
  r.max_steps = 24;
  r.resume = "auto";
  auto resumed = run_checkpoint_job(2, r, data);
  EXPECT_EQ(resumed.result.steps, 24);
  EXPECT_TRUE(std::isfinite(resumed.result.test_loss));
  EXPECT_GT(*resumed.result.test_accuracy, 0.5);  // four separable blobs: chance is 0.25
}

}  // namespace
}  // namespace dtrain
