// DistributedSampler: disjoint full coverage, identical orders across ranks, tail policies, resume.
#include "dtrain/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "dtrain/error.h"

namespace dtrain {
namespace {

using Policy = DistributedSampler::Policy;

constexpr int64_t kSizes[] = {0, 1, 2, 7, 10, 13, 100, 101};

TEST(SamplerTest, Splitmix64MatchesReferenceOutputs) {
  // Reference outputs of splitmix64 seeded with 0 (Vigna's splitmix64.c).
  uint64_t state = 0;
  EXPECT_EQ(splitmix64_next(state), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(splitmix64_next(state), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(splitmix64_next(state), 0x06c45d188009454fULL);
}

TEST(SamplerTest, DropLastShardsAreDisjointEqualAndCoverTheFittedOrder) {
  for (int world = 1; world <= 5; ++world) {
    for (int64_t n : kSizes) {
      std::set<int64_t> seen;
      const std::vector<int64_t> order = DistributedSampler(n, 0, world, 7).permutation(3);
      for (int rank = 0; rank < world; ++rank) {
        DistributedSampler s(n, rank, world, 7, true, Policy::kDropLast);
        const std::vector<int64_t> shard = s.indices(3);
        ASSERT_EQ(static_cast<int64_t>(shard.size()), n / world) << n << " " << world;
        EXPECT_EQ(s.num_samples(), n / world);
        for (size_t i = 0; i < shard.size(); ++i) {
          EXPECT_EQ(shard[i], order[rank + i * world]);  // strided shard of the common order
          EXPECT_TRUE(seen.insert(shard[i]).second) << "index read twice: " << shard[i];
        }
      }
      // Together the ranks read exactly the first n - n % world entries of the order.
      EXPECT_EQ(seen, std::set<int64_t>(order.begin(), order.begin() + (n - n % world)));
    }
  }
}

TEST(SamplerTest, PadCoversEveryIndexAndRepeatsTheFirstOnes) {
  for (int world = 1; world <= 5; ++world) {
    for (int64_t n : kSizes) {
      const int64_t per_rank = (n + world - 1) / world;
      std::map<int64_t, int> count;
      const std::vector<int64_t> order = DistributedSampler(n, 0, world, 11).permutation(0);
      for (int rank = 0; rank < world; ++rank) {
        DistributedSampler s(n, rank, world, 11, true, Policy::kPad);
        const std::vector<int64_t> shard = s.indices(0);
        ASSERT_EQ(static_cast<int64_t>(shard.size()), per_rank);
        for (int64_t i : shard) ++count[i];
      }
      EXPECT_EQ(static_cast<int64_t>(count.size()), n);  // every index seen
      const int64_t padding = per_rank * world - n;
      int64_t twice = 0;
      for (auto [index, c] : count) {
        ASSERT_LE(c, 1 + (padding + n - 1) / n);  // 2 unless n < world
        twice += c - 1;
      }
      EXPECT_EQ(twice, padding);
      // The repeated ones are the first entries of the order.
      for (int64_t k = 0; k < std::min(padding, n); ++k) EXPECT_GE(count[order[k]], 2);
      if (n >= world) EXPECT_LT(padding, world);
    }
  }
}

TEST(SamplerTest, OrderDependsOnlyOnSeedAndEpoch) {
  const DistributedSampler a(1000, 0, 4, 99), b(1000, 3, 4, 99), c(1000, 1, 4, 100);
  EXPECT_EQ(a.permutation(5), b.permutation(5));  // same on every rank
  EXPECT_EQ(a.permutation(5), DistributedSampler(1000, 2, 4, 99).permutation(5));
  EXPECT_NE(a.permutation(5), a.permutation(6));  // changes per epoch
  EXPECT_NE(a.permutation(5), c.permutation(5));  // and per seed
  std::vector<int64_t> sorted = a.permutation(5);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
}

TEST(SamplerTest, ShuffleIsRoughlyUniform) {
  // Over 10000 epochs, each of 5 values lands first about 2000 times (binomial sd 40).
  int64_t first[5] = {};
  for (int64_t e = 0; e < 10000; ++e) ++first[seeded_permutation(5, 1, e)[0]];
  for (int64_t c : first) {
    EXPECT_GT(c, 1800);
    EXPECT_LT(c, 2200);
  }
}

TEST(SamplerTest, NoShuffleGivesStridedIdentity) {
  DistributedSampler s(10, 1, 3, 5, /*shuffle=*/false, Policy::kPad);
  EXPECT_EQ(s.indices(0), (std::vector<int64_t>{1, 4, 7, 0}));  // 10 padded to 12 with 0, 1
  EXPECT_EQ(s.indices(0), s.indices(9));
  EXPECT_EQ(DistributedSampler(10, 2, 3, 5, false, Policy::kPad).indices(0),
            (std::vector<int64_t>{2, 5, 8, 1}));
  EXPECT_EQ(DistributedSampler(10, 2, 3, 5, false).indices(0), (std::vector<int64_t>{2, 5, 8}));
}

TEST(SamplerTest, BatchesAndResumePositions) {
  DistributedSampler s(103, 1, 4, 3);  // 25 per rank
  const std::vector<int64_t> shard = s.indices(2);
  std::vector<std::vector<int64_t>> batches = s.batches({2, 0}, 8);
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches.back().size(), 1u);
  EXPECT_EQ(s.batches_per_epoch(8), 4);
  EXPECT_EQ(s.batches_per_epoch(8, /*drop_incomplete=*/true), 3);
  EXPECT_EQ(s.batches({2, 0}, 8, true).size(), 3u);
  std::vector<int64_t> joined;
  for (const auto& b : batches) joined.insert(joined.end(), b.begin(), b.end());
  EXPECT_EQ(joined, shard);

  // Resume after two batches: the rest of the same shard.
  const SamplerPosition pos = s.position_after(2, 2, 8);
  EXPECT_EQ(pos, (SamplerPosition{2, 16}));
  EXPECT_EQ(s.indices(pos), std::vector<int64_t>(shard.begin() + 16, shard.end()));
  EXPECT_EQ(s.batches(pos, 8)[0], batches[2]);
  EXPECT_EQ(s.position_after(2, 4, 8), (SamplerPosition{3, 0}));
  EXPECT_EQ(s.position_after(2, 3, 8, true), (SamplerPosition{3, 0}));
  EXPECT_TRUE(s.indices(SamplerPosition{2, 25}).empty());
  EXPECT_EQ(split_batches({1, 2, 3, 4, 5}, 2),
            (std::vector<std::vector<int64_t>>{{1, 2}, {3, 4}, {5}}));
}

TEST(SamplerTest, RejectsBadArguments) {
  EXPECT_THROW(DistributedSampler(10, 0, 0, 1), InvalidArgumentError);
  EXPECT_THROW(DistributedSampler(10, 3, 3, 1), InvalidArgumentError);
  EXPECT_THROW(DistributedSampler(10, -1, 3, 1), InvalidArgumentError);
  EXPECT_THROW(DistributedSampler(-1, 0, 1, 1), InvalidArgumentError);
  DistributedSampler s(10, 0, 2, 1);
  EXPECT_THROW(s.batches({0, 0}, 0), InvalidArgumentError);
  EXPECT_THROW(s.indices(SamplerPosition{0, -1}), InvalidArgumentError);
  EXPECT_THROW(split_batches({1}, -2), InvalidArgumentError);
}

}  // namespace
}  // namespace dtrain
