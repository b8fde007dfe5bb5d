// Elastic recovery with workers as fork()ed processes over a TcpStore: three workers train with a
// Gloo communicator per round; the fault plan SIGKILLs original rank 2 before step 3; the two
// survivors see the loss, advance the round, re-form with world 2 and finish every step.
#include <gtest/gtest.h>

#include "comm/test_ranks.h"
#include "dtrain/tcp_store.h"
#include "elastic_test_util.h"

namespace dtrain::testing {
namespace {

constexpr int kWorkers = 3;
constexpr int64_t kSteps = 6;

// One worker's training loop; records "<round> <world> <sum of every step's allreduce>".
void elastic_worker(int original_rank, std::shared_ptr<Store> store) {
  ElasticRendezvous rv(store, "worker-" + std::to_string(original_rank), fast_options(2, kWorkers));
  FaultPlan plan = FaultPlan::parse("kill:rank=2,step=3");
  int64_t step = 0;
  float total = 0;  // sum over steps of the world size (each member contributes 1)
  Membership m;
  for (int attempt = 0; step < kSteps; ++attempt) {
    ASSERT_LT(attempt, 3) << "too many re-formations";
    m = rv.join(join_deadline());
    ASSERT_FALSE(m.below_minimum) << m.stop_reason;
    auto comm = rv.connect(m, test_options(std::chrono::seconds(5)));
    ElasticMonitor monitor(rv, m, comm.get(), fast_monitor());
    try {
      for (; step < kSteps; ++step) {
        if (plan.at_step(original_rank, step).kill) kill_self_for_fault_injection();
        float v = 1;
        comm->allreduce(&v, 1, DType::kFloat32, ReduceOp::kSum);
        EXPECT_EQ(v, static_cast<float>(m.world));
        total += v;
      }
    } catch (const Error& e) {
      EXPECT_TRUE(e.code() == ErrorCode::kPeerLost || e.code() == ErrorCode::kAborted ||
                  e.code() == ErrorCode::kTimeout)
          << e.what();
      rv.advance(m.round, join_deadline());
    }
  }
  store->set("result/" + std::to_string(original_rank),
             std::to_string(m.round) + " " + std::to_string(m.world) + " " +
                 std::to_string(static_cast<int>(total)),
             join_deadline());
}

TEST(ElasticProcess, SurvivorsOfASigkilledWorkerReformAndFinish) {
  TcpStoreOptions so;
  so.secret = "elastic-test";
  TcpStoreServer server("127.0.0.1", 0, so);
  const std::string address = server.address();
  auto start = Clock::now();
  auto outcomes = run_processes(
      kWorkers, [&](int) -> std::shared_ptr<Store> { return TcpStore::connect(address, so); },
      elastic_worker, std::chrono::seconds(45));
  std::printf("[ elastic ] kill, detection, re-formation and 6 steps took %.2f s\n",
              seconds_since(start));
  EXPECT_FALSE(outcomes[2].exited);
  EXPECT_EQ(outcomes[2].signal, SIGKILL);
  auto store = TcpStore::connect(address, so);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(outcomes[r].exited && outcomes[r].exit_code == 0)
        << "survivor " << r << ": code " << outcomes[r].exit_code << " signal "
        << outcomes[r].signal;
    // Steps 0-2 with world 3, steps 3-5 with world 2 in round 1.
    EXPECT_EQ(store->try_get("result/" + std::to_string(r), join_deadline()).value_or("none"),
              "1 2 15");
  }
  EXPECT_FALSE(store->try_get("result/2", join_deadline()).has_value());
}

}  // namespace
}  // namespace dtrain::testing
