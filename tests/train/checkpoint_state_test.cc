// TrainSnapshot: capture/restore round trips, the on-disk form, the resharding rule for rank
// states, and the errors for a snapshot of another model or optimizer.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dtrain/checkpoint.h"
#include "dtrain/strategy.h"
#include "dtrain/error.h"
#include "train/checkpoint_test_util.h"
#include "train/checkpointer.h"
#include "train/optimizer.h"
#include "train/train_state.h"

namespace dtrain {
namespace {

using testing::TempDir;

struct Live {
  ModelHandle model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  TrainConfig config;
  TrainParts parts(Strategy* strategy = nullptr) {
    return {model.module.get(), optimizer.get(), config.optimizer, strategy, config.model};
  }
};

Live make_live(OptimizerKind kind, std::vector<int64_t> hidden = {8}, uint64_t seed = 3) {
  Live l;
  l.config.model = "mlp";
  l.config.optimizer = kind;
  l.config.lr = 0.01;
  ModelOptions o;
  o.name = "mlp";
  o.in_features = 6;
  o.num_classes = 3;
  o.hidden = hidden;
  o.seed = seed;
  l.model = make_model(o);
  l.optimizer = make_optimizer(l.config, l.model.module->parameters());
  return l;
}

void step(Live& l, int64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  torch::Tensor x = torch::randn({5, 6}, gen);
  torch::Tensor y = torch::randint(0, 3, {5}, gen);
  l.optimizer->zero_grad();
  l.model.loss(l.model.forward(x), y).backward();
  l.optimizer->step();
}

class SnapshotRoundTrip : public ::testing::TestWithParam<OptimizerKind> {};

TEST_P(SnapshotRoundTrip, RestoredCopyTrainsBitwiseLikeTheOriginal) {
  Live a = make_live(GetParam());
  step(a, 1);
  step(a, 2);
  LoopPosition pos{2, 0, 10, 10, {}};
  RankState acc;
  acc.epoch_loss_sum = 1.25;
  acc.epoch_steps = 2;
  TrainSnapshot s = capture(a.parts(), pos, acc, 1, 5);
  ASSERT_FALSE(s.optimizer.empty());
  // Through disk: snapshot -> Checkpoint -> files -> Checkpoint -> snapshot.
  TempDir dir;
  CheckpointWriter writer(dir.path().string(), {.keep_last = 0, .background = false});
  std::string path = writer.save(to_checkpoint(s));
  TrainSnapshot back = from_checkpoint(load_checkpoint(path));
  EXPECT_EQ(back.position, s.position);
  EXPECT_EQ(back.model, s.model);
  EXPECT_EQ(back.optimizer, s.optimizer);
  EXPECT_EQ(back.ranks, s.ranks);
  EXPECT_EQ(back.optimizer_kind, GetParam());

  Live b = make_live(GetParam(), {8}, /*seed=*/99);  // other initial weights
  torch::manual_seed(1234);                          // other RNG state: restore replaces it
  RankState mine = restore(back, b.parts(), 0, 1);
  EXPECT_EQ(mine.epoch_loss_sum, 1.25);
  step(a, 3);
  step(b, 3);
  auto pa = a.model.module->parameters();
  auto pb = b.model.module->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

INSTANTIATE_TEST_SUITE_P(Optimizers, SnapshotRoundTrip,
                         ::testing::Values(OptimizerKind::kSgd, OptimizerKind::kAdam,
                                           OptimizerKind::kAdamW),
                         [](const auto& info) { return std::string(optimizer_name(info.param)); });

TEST(SnapshotTest, CapturesAndRestoresTorchsCpuGenerator) {
  Live a = make_live(OptimizerKind::kSgd);
  torch::manual_seed(77);
  TrainSnapshot s = capture(a.parts(), {}, {}, 1, 5);
  torch::Tensor expected = torch::rand({4});
  torch::manual_seed(5);
  restore(s, a.parts(), 0, 1);
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

TEST(SnapshotTest, AnotherModelOrOptimizerIsAMismatch) {
  Live a = make_live(OptimizerKind::kSgd, {8});
  step(a, 1);
  TrainSnapshot s = capture(a.parts(), {}, {}, 1, 5);
  Live wider = make_live(OptimizerKind::kSgd, {16});
  try {
    restore(s, wider.parts(), 0, 1);
    FAIL() << "expected MismatchError";
  } catch (const MismatchError& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
  Live adam = make_live(OptimizerKind::kAdam, {8});
  try {
    restore(s, adam.parts(), 0, 1);
    FAIL() << "expected MismatchError";
  } catch (const MismatchError& e) {
    EXPECT_NE(std::string(e.what()).find("sgd optimizer state, this run uses adam"),
              std::string::npos)
        << e.what();
  }
}

TEST(SnapshotTest, ToCheckpointNeedsEveryRanksState) {
  Live a = make_live(OptimizerKind::kSgd);
  TrainSnapshot s = capture(a.parts(), {}, {}, /*world_size=*/2, 6);
  EXPECT_THROW(to_checkpoint(s), InvalidArgumentError);
}

TrainSnapshot two_rank_snapshot() {
  TrainSnapshot s;
  s.world_size = 2;
  RankState r0, r1;
  r0.compression["ef/0"] = {1, 2};
  r1.compression["ef/0"] = {3, 6};
  r0.compression["powersgd.residual/1"] = {0.5f};
  r1.compression["powersgd.residual/1"] = {1.5f};
  r0.compression["powersgd.q/1"] = {7};  // not a residual: equal on every rank, rank 0's kept
  r1.compression["powersgd.q/1"] = {7};
  r0.rng_cpu = {1};
  r1.rng_cpu = {2};
  r0.interval_loss_sum = 1.0;
  r1.interval_loss_sum = 3.0;
  r0.interval_steps = r1.interval_steps = 2;
  r0.epoch_loss_sum = 4.0;
  r1.epoch_loss_sum = 8.0;
  r0.epoch_steps = r1.epoch_steps = 4;
  s.ranks = {r0, r1};
  return s;
}

TEST(ReshardRuleTest, SameWorldKeepsEachRanksOwnState) {
  TrainSnapshot s = two_rank_snapshot();
  EXPECT_EQ(rank_state_for(s, 0, 2), s.ranks[0]);
  EXPECT_EQ(rank_state_for(s, 1, 2), s.ranks[1]);
}

TEST(ReshardRuleTest, NewWorldGetsTheMeanOfResidualsAndAccumulators) {
  TrainSnapshot s = two_rank_snapshot();
  for (int r = 0; r < 3; ++r) {
    RankState m = rank_state_for(s, r, 3);
    EXPECT_EQ(m.compression.at("ef/0"), (std::vector<float>{2, 4}));
    EXPECT_EQ(m.compression.at("powersgd.residual/1"), (std::vector<float>{1.0f}));
    EXPECT_EQ(m.compression.at("powersgd.q/1"), (std::vector<float>{7}));
    EXPECT_EQ(m.interval_loss_sum, 2.0);
    EXPECT_EQ(m.interval_steps, 2.0);
    EXPECT_EQ(m.epoch_loss_sum, 6.0);
    EXPECT_EQ(m.rng_cpu, s.ranks[static_cast<size_t>(r % 2)].rng_cpu);
  }
  // The epoch's mean loss so far is unchanged: sum over 3 new ranks / their step count.
  RankState m = rank_state_for(s, 0, 3);
  EXPECT_DOUBLE_EQ(3 * m.epoch_loss_sum / (3 * m.epoch_steps), (4.0 + 8.0) / (4 + 4));
}

TEST(ReshardRuleTest, ResidualsOfDifferentSizesAreAMismatch) {
  TrainSnapshot s = two_rank_snapshot();
  s.ranks[1].compression["ef/0"] = {1, 2, 3};
  EXPECT_THROW(rank_state_for(s, 0, 3), MismatchError);
}

// The rule reaches the live compressor: each of 2 ddp ranks holds the mean of 4 old residuals,
// loaded through the strategy as the trainer does (restore, then Strategy::load_state).
TEST(ReshardRuleTest, RestoreLoadsTheMeanIntoTheStrategy) {
  TrainSnapshot s;
  s.world_size = 4;
  for (int r = 0; r < 4; ++r) {
    RankState rs;
    rs.compression["ef/0"] = {static_cast<float>(r), 10.0f * r};
    s.ranks.push_back(rs);
  }
  testing::run_rank_threads(2, [&](Communicator& comm) {
    Live l = make_live(OptimizerKind::kSgd);
    l.config.compress = "topk:0.5";
    std::unique_ptr<Strategy> ddp = make_strategy(l.config);
    ddp->setup({l.model.module, &comm, l.optimizer.get(), 0});
    TrainSnapshot mine = s;
    TrainSnapshot own = capture(l.parts(ddp.get()), {}, {}, 2, 6);
    EXPECT_EQ(own.strategy, "ddp");
    EXPECT_EQ(own.strategy_options.at("compress"), "topk:0.5");
    mine.model = own.model;
    mine.model_name = own.model_name;
    RankState got = restore(mine, l.parts(ddp.get()), comm.rank(), comm.size());
    ddp->load_state({mine.strategy_shared, got.compression});
    CodecState state = ddp->state().rank;
    EXPECT_EQ(state.at("ef/0"), (std::vector<float>{1.5f, 15.0f}));
  });
}

// A snapshot records its strategy, options and shared state, and the on-disk form keeps them.
TEST(SnapshotStrategyTest, NameOptionsAndSharedStateSurviveTheCheckpointForm) {
  Live l = make_live(OptimizerKind::kSgd);
  TrainSnapshot s = capture(l.parts(), {}, {}, 1, 4);
  s.strategy = "diloco";
  s.strategy_options = {{"inner_steps", "50"}, {"outer_lr", "0.7"}};
  torch::Tensor m = torch::arange(6, torch::kFloat32);
  s.strategy_shared["outer_momentum/fc1.bias"] = record_of("outer_momentum/fc1.bias", m);
  Checkpoint c = to_checkpoint(s);
  EXPECT_EQ(c.strategy, "diloco");
  ASSERT_TRUE(c.files.count("strategy"));
  TrainSnapshot back = from_checkpoint(decode_checkpoint(encode_checkpoint(c)));
  EXPECT_EQ(back.strategy, "diloco");
  EXPECT_EQ(back.strategy_options, s.strategy_options);
  ASSERT_EQ(back.strategy_shared.size(), 1u);
  EXPECT_TRUE(torch::equal(tensor_of(back.strategy_shared.at("outer_momentum/fc1.bias")), m));
}

}  // namespace
}  // namespace dtrain
