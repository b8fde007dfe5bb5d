// Trainer state is validated while a resume candidate is chosen: a newest checkpoint whose
// manifest has a valid checksum but bad trainer state (no extra.trainer, a bad RNG state, a
// negative epoch, a sampler position that disagrees, another optimizer) is skipped by
// --resume auto, which resumes from the older good one and logs why; --resume PATH to it fails
// naming the checkpoint and the field. Also snapshot_for_resume's optimizer-state checks.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "checkpoint/base64.h"
#include "checkpoint/hostile_files.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"
#include "train/checkpoint_test_util.h"
#include "train/train_state.h"

namespace dtrain {
namespace {

using nlohmann::json;
using testing::checkpoint_blobs;
using testing::checkpoint_job_config;
using testing::ckpt_path;
using testing::run_checkpoint_job;
using testing::TempDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The job with checkpoints at steps 8 and 16 in `dir`.
TrainConfig saving_job(const std::filesystem::path& dir) {
  TrainConfig c = checkpoint_job_config();
  c.max_steps = 16;
  c.checkpoint_every = "8";
  c.keep_checkpoints = 0;
  c.checkpoint_dir = dir.string();
  return c;
}

struct BadState {
  std::string name;
  std::function<void(json&)> edit;  // of manifest.json (its checksum is then recomputed)
  std::string reason;               // how the skip is explained
  int world = 1;
};

void PrintTo(const BadState& bad, std::ostream* os) {
  *os << bad.name;
}

class BadTrainerStateTest : public ::testing::TestWithParam<BadState> {};

TEST_P(BadTrainerStateTest, AutoFallsBackToTheOlderCheckpointAndSaysWhy) {
  const BadState& bad = GetParam();
  DataSplits data = checkpoint_blobs();
  TempDir dir;
  TrainConfig first = saving_job(dir.path());
  ASSERT_EQ(run_checkpoint_job(bad.world, first, data).result.steps, 16);
  const std::string newest = ckpt_path(dir.path(), 16);
  testing::rewrite_manifest(newest, bad.edit);

  TrainConfig exact = checkpoint_job_config();
  exact.max_steps = 20;
  exact.resume = newest;
  try {
    run_checkpoint_job(bad.world, exact, data);
    ADD_FAILURE() << "resume from the damaged checkpoint succeeded";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "checkpoint " + newest + ": " + bad.reason)) << e.what();
  }

  TrainConfig automatic = first;
  automatic.max_steps = 20;
  automatic.resume = "auto";
  auto out = run_checkpoint_job(bad.world, automatic, data);
  EXPECT_TRUE(contains(out.log, "checkpoint: skipped " + newest + ": " + bad.reason)) << out.log;
  EXPECT_TRUE(
      contains(out.log, "checkpoint: resuming from " + ckpt_path(dir.path(), 8) + " (step 8)"))
      << out.log;
  EXPECT_EQ(out.result.steps, 20);
}

// torch's CPU generator state with its mt19937 `left` and `seeded` fields zeroed: the right
// size, but an invalid state.
std::string zeroed_mt19937(const std::string& b64) {
  std::string state = *base64_decode(b64);
  for (size_t i = 8; i < 16; ++i) state[i] = 0;
  return base64_encode(state);
}

INSTANTIATE_TEST_SUITE_P(
    Trainer, BadTrainerStateTest,
    ::testing::Values(
        BadState{"NoTrainerState", [](json& m) { m["extra"].erase("trainer"); },
                 "trainer state in manifest.json: no extra.trainer object"},
        BadState{"NoTrainerStateOnTwoRanks", [](json& m) { m["extra"].erase("trainer"); },
                 "trainer state in manifest.json: no extra.trainer object", 2},
        BadState{"RngStateOfTheWrongSize",
                 [](json& m) { m["rng"]["torch_cpu-rank00000"] = base64_encode("garbage"); },
                 "trainer state in manifest.json: rng state torch_cpu-rank00000 is invalid"},
        BadState{"InvalidMt19937State",
                 [](json& m) {
                   m["rng"]["torch_cpu-rank00001"] =
                       zeroed_mt19937(m["rng"]["torch_cpu-rank00001"].get<std::string>());
                 },
                 "trainer state in manifest.json: rng state torch_cpu-rank00001 is invalid", 2},
        BadState{"NegativeEpoch",
                 [](json& m) {
                   m["epoch"] = -1;
                   m["sampler"]["epoch"] = -1;
                 },
                 "trainer state in manifest.json: negative epoch -1"},
        BadState{"SamplerDisagreesWithTheTrainer", [](json& m) { m["sampler"]["offset"] = 5; },
                 "trainer state in manifest.json: sampler position {1, 5} disagrees"},
        BadState{"MalformedTrainerField",
                 [](json& m) { m["extra"]["trainer"]["samples"] = "many"; },
                 "trainer state in manifest.json: "},
        BadState{"AnotherOptimizer", [](json& m) { m["extra"]["trainer"]["optimizer"] = "adam"; },
                 "it holds adam optimizer state, this run uses sgd"}),
    [](const auto& info) { return info.param.name; });

// A checkpoint positioned beyond the resuming run's training split (written for a larger
// dataset) is skipped while choosing, not chosen and then fatal.
TEST(ResumePositionTest, ACheckpointBeyondTheTrainingSplitIsSkippedForAnOlderOne) {
  TempDir dir;
  TrainConfig first = saving_job(dir.path());
  first.max_steps = 8;
  first.checkpoint_every = "4";  // ckpt-4 at 96 samples into epoch 0, ckpt-8 at 192
  ASSERT_EQ(run_checkpoint_job(1, first, checkpoint_blobs(384)).result.steps, 8);

  DataSplits smaller = checkpoint_blobs(96);  // 4 steps an epoch: 192 lies beyond it
  TrainConfig exact = checkpoint_job_config();
  exact.resume = ckpt_path(dir.path(), 8);
  EXPECT_THROW(run_checkpoint_job(1, exact, smaller), MismatchError);

  TrainConfig automatic = first;
  automatic.max_steps = 6;
  automatic.resume = "auto";
  auto out = run_checkpoint_job(1, automatic, smaller);
  EXPECT_TRUE(contains(out.log, "checkpoint: skipped " + ckpt_path(dir.path(), 8))) << out.log;
  EXPECT_TRUE(contains(out.log, "lies beyond this training split of 96")) << out.log;
  EXPECT_TRUE(contains(out.log, "resuming from " + ckpt_path(dir.path(), 4))) << out.log;
  EXPECT_EQ(out.result.steps, 6);
}

// snapshot_for_resume against the live model: optimizer state must fit its parameters.
class OptimizerStateCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TrainConfig c = saving_job(dir_.path());
    c.optimizer = OptimizerKind::kAdam;
    c.lr = 0.01;
    c.max_steps = 8;
    run_checkpoint_job(1, c, checkpoint_blobs());
    checkpoint_ = load_checkpoint(ckpt_path(dir_.path(), 8));
    target_ = {checkpoint_.model, OptimizerKind::kAdam, 0, 1};
  }
  TensorMap& optimizer() { return checkpoint_.files.at("optimizer"); }

  TempDir dir_;
  Checkpoint checkpoint_;
  ResumeTarget target_;
};

TEST_F(OptimizerStateCheckTest, AGoodCheckpointGivesTheSnapshotFromCheckpointGives) {
  TrainSnapshot s = snapshot_for_resume(checkpoint_, target_);
  TrainSnapshot t = from_checkpoint(checkpoint_);
  EXPECT_EQ(s.position, t.position);
  EXPECT_EQ(s.optimizer, t.optimizer);
  EXPECT_EQ(s.ranks, t.ranks);
}

TEST_F(OptimizerStateCheckTest, StateOfAnotherShapeIsAMismatch) {
  TensorRecord& avg = optimizer().at("layers.0.weight.exp_avg");
  avg.shape = {static_cast<int64_t>(avg.bytes.size() / 4)};
  EXPECT_THROW(snapshot_for_resume(checkpoint_, target_), MismatchError);
}

TEST_F(OptimizerStateCheckTest, StateOfAnUnknownParameterIsAMismatch) {
  optimizer()["layers.9.weight.exp_avg"] = optimizer().at("layers.0.weight.exp_avg");
  try {
    snapshot_for_resume(checkpoint_, target_);
    ADD_FAILURE() << "accepted";
  } catch (const MismatchError& e) {
    EXPECT_TRUE(contains(e.what(), "'layers.9.weight.exp_avg' belongs to no parameter"))
        << e.what();
  }
}

TEST_F(OptimizerStateCheckTest, IncompleteAdamStateIsAMismatch) {
  optimizer().erase("layers.0.bias.exp_avg_sq");
  try {
    snapshot_for_resume(checkpoint_, target_);
    ADD_FAILURE() << "accepted";
  } catch (const MismatchError& e) {
    EXPECT_TRUE(contains(e.what(), "lacks 'layers.0.bias.exp_avg_sq'")) << e.what();
  }
}

TEST_F(OptimizerStateCheckTest, AnExtraModelTensorIsAMismatch) {
  checkpoint_.files.at("model")["extra.weight"] = checkpoint_.files.at("model").at("layers.0.bias");
  EXPECT_THROW(snapshot_for_resume(checkpoint_, target_), MismatchError);
}

}  // namespace
}  // namespace dtrain
