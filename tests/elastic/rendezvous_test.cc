// Rendezvous rounds with ranks as threads over one MemoryStore: closing at max_workers, after
// settle, late joiners waiting for the next round, the below-minimum outcome, bad input.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "comm/test_ranks.h"
#include "dtrain/memory_store.h"
#include "elastic_test_util.h"

namespace dtrain::testing {
namespace {

std::string id_of(int i) {
  return "worker-" + std::to_string(i);
}

TEST(ElasticRendezvous, ClosesAtMaxWorkersAtOnce) {
  auto store = std::make_shared<MemoryStore>();
  auto o = fast_options(1, 3);
  o.settle = std::chrono::seconds(10);  // only max_workers can close it within the test
  std::vector<Membership> got(3);
  auto start = Clock::now();
  run_threads(3, [&](int i, std::shared_ptr<Store>) {
    ElasticRendezvous rv(store, id_of(i), o);
    got[i] = rv.join(join_deadline());
  });
  EXPECT_LT(seconds_since(start), 2.0);
  std::set<int> ranks;
  for (int i = 0; i < 3; ++i) {
    const Membership& m = got[i];
    ranks.insert(m.rank);
    EXPECT_EQ(m.round, 0);
    EXPECT_EQ(m.world, 3);
    EXPECT_FALSE(m.below_minimum);
    EXPECT_EQ(m.comm_prefix, "elastic/r0/comm");
    ASSERT_EQ(m.worker_ids.size(), 3u);
    EXPECT_EQ(m.worker_ids[m.rank], id_of(i));  // ids in rank order
    EXPECT_EQ(m.worker_ids, got[0].worker_ids);
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2}));
}

TEST(ElasticRendezvous, SettlesThenALateJoinerWaitsForTheNextRound) {
  auto store = std::make_shared<MemoryStore>();
  const auto o = fast_options(2, 4);
  std::vector<Membership> first(2), second(3);
  std::vector<double> first_took(2);
  std::vector<int64_t> waiting_seen(2);
  run_threads(3, [&](int i, std::shared_ptr<Store>) {
    ElasticRendezvous rv(store, id_of(i), o);
    if (i == 2) {  // the late one: starts once round 0 runs
      store->get("elastic/r0/closed", join_deadline());
      second[i] = rv.join(join_deadline());
      return;
    }
    auto start = Clock::now();
    first[i] = rv.join(join_deadline());
    first_took[i] = seconds_since(start);
    // The members see the newcomer waiting, and re-form to admit it.
    auto until = Deadline::after(std::chrono::seconds(10));
    while (rv.waiting(0, until) < 1 && !until.expired())
      std::this_thread::sleep_for(milliseconds(10));
    waiting_seen[i] = rv.waiting(0, until);
    EXPECT_EQ(rv.advance(0, until), 1);
    second[i] = rv.join(join_deadline());
  });
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(first[i].world, 2);
    EXPECT_EQ(first[i].round, 0);
    EXPECT_GE(first_took[i], 0.3) << "closed before settle";
    EXPECT_LT(first_took[i], 3.0);
    EXPECT_EQ(waiting_seen[i], 1);
  }
  EXPECT_NE(first[0].rank, first[1].rank);
  std::set<int> ranks;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(second[i].round, 1);
    EXPECT_EQ(second[i].world, 3);
    ranks.insert(second[i].rank);
    ASSERT_EQ(second[i].worker_ids.size(), 3u);
    EXPECT_EQ(second[i].worker_ids[second[i].rank], id_of(i));
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2}));
}

TEST(ElasticRendezvous, OneSurvivorBelowMinimumStopsCleanlyAfterTheTimeout) {
  auto store = std::make_shared<MemoryStore>();
  auto o = fast_options(2, 2);
  o.rendezvous_timeout = milliseconds(600);
  run_threads(2, [&](int i, std::shared_ptr<Store>) {
    ElasticRendezvous rv(store, id_of(i), o);
    Membership m = rv.join(join_deadline());
    EXPECT_EQ(m.world, 2);
    if (m.rank == 1) return;  // this one leaves the job
    EXPECT_EQ(rv.advance(m.round, join_deadline()), 1);
    auto start = Clock::now();
    Membership alone = rv.join(join_deadline());
    double took = seconds_since(start);
    EXPECT_TRUE(alone.below_minimum);
    EXPECT_EQ(alone.round, 1);
    EXPECT_EQ(alone.world, 1);
    EXPECT_EQ(alone.stop_reason, "elastic: only 1 workers (minimum 2); stopping");
    EXPECT_GE(took, 0.6);
    EXPECT_LT(took, 3.0);
    EXPECT_THROW(rv.connect(alone, test_options()), InvalidArgumentError);
    // The below-minimum round was ended, so a newcomer would not be stranded behind it.
    EXPECT_EQ(rv.current_round(join_deadline()), 2);
  });
}

TEST(ElasticRendezvous, JoinTimesOutWhileARoundRuns) {
  auto store = std::make_shared<MemoryStore>();
  auto o = fast_options(1, 1);
  ElasticRendezvous a(store, "a", o), b(store, "b", o);
  EXPECT_EQ(a.join(join_deadline()).world, 1);
  auto start = Clock::now();
  EXPECT_THROW(b.join(Deadline::after(milliseconds(300))), TimeoutError);
  EXPECT_LT(seconds_since(start), 2.0);
  EXPECT_EQ(a.waiting(0, join_deadline()), 1);
}

TEST(ElasticRendezvous, RejectsBadOptionsAndCorruptKeys) {
  auto store = std::make_shared<MemoryStore>();
  auto o = fast_options(0, 1);
  EXPECT_THROW(ElasticRendezvous(store, "a", o), InvalidArgumentError);
  o = fast_options(3, 2);
  EXPECT_THROW(ElasticRendezvous(store, "a", o), InvalidArgumentError);
  EXPECT_THROW(ElasticRendezvous(store, "", fast_options(1, 1)), InvalidArgumentError);
  o = fast_options(1, 1);
  o.poll_interval = milliseconds(0);
  EXPECT_THROW(validate_elastic_options(o), InvalidArgumentError);

  store->set("elastic/round", "not a number", join_deadline());
  ElasticRendezvous rv(store, "a", fast_options(1, 1));
  EXPECT_THROW(rv.join(join_deadline()), CorruptError);
}

}  // namespace
}  // namespace dtrain::testing
