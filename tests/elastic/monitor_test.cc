// ElasticMonitor with ranks as threads over one MemoryStore and real Gloo communicators built by
// connect(): a member that stops heartbeating makes the others abort and re-form; an advanced
// round aborts the old communicator's pending allreduce; stop() is prompt.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "comm/test_ranks.h"
#include "dtrain/memory_store.h"
#include "elastic_test_util.h"

namespace dtrain::testing {
namespace {

// Every member contributes rank + 1: the sum over a world of n is n (n + 1) / 2.
float allreduce_ranks(Communicator& comm) {
  float v = static_cast<float>(comm.rank() + 1);
  comm.allreduce(&v, 1, DType::kFloat32, ReduceOp::kSum);
  return v;
}

TEST(ElasticMonitor, MissedHeartbeatsAbortTheSurvivorsWhoReformAndAllreduce) {
  auto store = std::make_shared<MemoryStore>();
  const auto o = fast_options(2, 3);
  const MonitorOptions mo = fast_monitor();
  std::mutex mutex;
  std::vector<std::string> reasons;  // GUARDED_BY(mutex)
  std::string silent_id;             // GUARDED_BY(mutex)
  run_threads(3, [&](int i, std::shared_ptr<Store>) {
    ElasticRendezvous rv(store, "w" + std::to_string(i), o);
    Membership m = rv.join(join_deadline());
    ASSERT_EQ(m.world, 3);
    auto comm = rv.connect(m, test_options());
    EXPECT_EQ(allreduce_ranks(*comm), 6.0f);
    auto monitor = std::make_unique<ElasticMonitor>(rv, m, comm.get(), mo);
    if (m.rank == 2) {
      // "Dies": stops heartbeating and joins no collective, but keeps its connections open
      // so only the heartbeats can tell the others.
      {
        std::lock_guard<std::mutex> lock(mutex);
        silent_id = rv.worker_id();
      }
      monitor->stop();
      auto until = Deadline::after(std::chrono::seconds(30));
      while (store->add("survivors_done", 0, until) < 2 && !until.expired()) {
        std::this_thread::sleep_for(milliseconds(20));
      }
      return;
    }
    float v = 1;
    auto start = Clock::now();
    auto work = comm->allreduce_async(&v, 1, DType::kFloat32, ReduceOp::kSum);
    try {
      work->wait(Deadline::after(std::chrono::seconds(15)));
      ADD_FAILURE() << "allreduce without rank 2 completed";
    } catch (const Error& e) {
      // Aborted by our monitor, or our peer's abort closed the connection first.
      EXPECT_TRUE(e.code() == ErrorCode::kAborted || e.code() == ErrorCode::kPeerLost) << e.what();
    }
    // Bound: heartbeat_timeout + heartbeat_interval, plus slack for a loaded machine.
    EXPECT_LT(seconds_since(start), 1.0 + 0.1 + 1.5);
    auto until = Deadline::after(std::chrono::seconds(5));
    while (!monitor->fired() && !until.expired()) std::this_thread::sleep_for(milliseconds(10));
    ASSERT_TRUE(monitor->fired());
    {
      std::lock_guard<std::mutex> lock(mutex);
      reasons.push_back(*monitor->reason());
    }
    monitor.reset();
    EXPECT_GE(rv.current_round(join_deadline()), 1);

    Membership next = rv.join(join_deadline());
    EXPECT_EQ(next.round, 1);
    EXPECT_EQ(next.world, 2);
    auto comm1 = rv.connect(next, test_options());
    EXPECT_EQ(allreduce_ranks(*comm1), 3.0f);
    store->add("survivors_done", 1, join_deadline());
  });
  ASSERT_EQ(reasons.size(), 2u);
  int heartbeat_reasons = 0;
  for (const auto& r : reasons) {
    bool missed = r.find("elastic: rank 2 missed its heartbeat for ") == 0;
    heartbeat_reasons += missed;
    EXPECT_TRUE(missed || r == "elastic: group re-forming (round 1)") << r;
  }
  EXPECT_GE(heartbeat_reasons, 1);
  // The monitors that declared it dead recorded the expulsion for its launcher (launch.h).
  Deadline d = Deadline::after(std::chrono::seconds(5));
  EXPECT_EQ(store->try_get("elastic/expelled/" + silent_id, d), std::optional<std::string>("0"));
  EXPECT_EQ(store->add("elastic/expelled_count", 0, d), heartbeat_reasons);
}

TEST(ElasticMonitor, AnAdvancedRoundAbortsThePendingAllreduceOfTheOldCommunicator) {
  auto store = std::make_shared<MemoryStore>();
  const auto o = fast_options(2, 2);
  MonitorOptions mo = fast_monitor();
  mo.heartbeat_timeout = std::chrono::seconds(10);  // only the round can fire it here
  run_threads(2, [&](int i, std::shared_ptr<Store>) {
    ElasticRendezvous rv(store, "w" + std::to_string(i), o);
    Membership m = rv.join(join_deadline());
    {
      auto comm = rv.connect(m, test_options());
      EXPECT_EQ(allreduce_ranks(*comm), 3.0f);
      if (m.rank == 0) {
        ElasticMonitor monitor(rv, m, comm.get(), mo);
        float v = 1;
        // Rank 1 never joins this allreduce.
        auto work = comm->allreduce_async(&v, 1, DType::kFloat32, ReduceOp::kSum);
        store->set("posted", "1", join_deadline());
        store->get("advanced", join_deadline());
        auto start = Clock::now();
        EXPECT_THROW(work->wait(Deadline::after(std::chrono::seconds(10))), AbortedError);
        EXPECT_LT(seconds_since(start), 1.0);  // poll is 0.1 s
        EXPECT_NE(work->error_message().find("elastic: group re-forming (round 1)"),
                  std::string::npos)
            << work->error_message();
        EXPECT_EQ(monitor.reason().value_or(""), "elastic: group re-forming (round 1)");
        monitor.stop();
        EXPECT_TRUE(monitor.fired());
        EXPECT_TRUE(comm->aborted());
        EXPECT_THROW(comm->barrier(), AbortedError);
        store->set("rank0_done", "1", join_deadline());
      } else {
        // A member that decided to re-form (to admit a waiter, say): it ends the round and
        // keeps its old communicator open until rank 0 saw its own monitor abort it.
        store->get("posted", join_deadline());
        EXPECT_EQ(rv.advance(m.round, join_deadline()), 1);
        EXPECT_EQ(rv.advance(m.round, join_deadline()), 1);  // idempotent
        store->set("advanced", "1", join_deadline());
        store->get("rank0_done", join_deadline());
      }
    }
    Membership next = rv.join(join_deadline());
    EXPECT_EQ(next.round, 1);
    EXPECT_EQ(next.comm_prefix, "elastic/r1/comm");
    auto comm1 = rv.connect(next, test_options());
    EXPECT_EQ(allreduce_ranks(*comm1), 3.0f);
  });
}

TEST(ElasticMonitor, StopsPromptlyAndAQuietRoundNeverFires) {
  auto store = std::make_shared<MemoryStore>();
  ElasticRendezvous rv(store, "solo", fast_options(1, 1));
  Membership m = rv.join(join_deadline());
  auto comm = rv.connect(m, test_options());
  MonitorOptions mo;  // defaults: poll 200 ms, heartbeat every 1 s
  ElasticMonitor monitor(rv, m, comm.get(), mo);
  std::this_thread::sleep_for(milliseconds(300));
  auto start = Clock::now();
  monitor.stop();
  EXPECT_LT(seconds_since(start), 0.1);
  EXPECT_FALSE(monitor.fired());
  EXPECT_FALSE(comm->aborted());
  EXPECT_EQ(store->try_get("elastic/r0/hb/0", join_deadline()).value_or(""), "1");
  monitor.stop();  // idempotent
}

TEST(ElasticMonitor, StoreErrorsAreRetriedNotThrown) {
  // A store whose calls fail until told otherwise.
  class FlakyStore : public MemoryStore {
   public:
    std::atomic<bool> broken{false};
    std::atomic<int> refused{0};  // calls failed while broken
    std::optional<std::string> try_get(const std::string& key, Deadline d) override {
      if (broken) refuse();
      return MemoryStore::try_get(key, d);
    }
    int64_t add(const std::string& key, int64_t delta, Deadline d) override {
      if (broken) refuse();
      return MemoryStore::add(key, delta, d);
    }

   private:
    void refuse() {
      ++refused;
      throw PeerLostError("flaky store");
    }
  };
  auto store = std::make_shared<FlakyStore>();
  ElasticRendezvous rv(store, "solo", fast_options(1, 1));
  Membership m = rv.join(join_deadline());
  auto comm = rv.connect(m, test_options());
  ElasticMonitor monitor(rv, m, comm.get(), fast_monitor());
  store->broken = true;
  // The monitor meets the errors on several of its turns, and carries on.
  auto failing = Deadline::after(std::chrono::seconds(10));
  while (store->refused < 4 && !failing.expired()) std::this_thread::sleep_for(milliseconds(5));
  store->broken = false;
  ASSERT_GE(store->refused, 4) << "the monitor stopped asking the store";
  EXPECT_FALSE(monitor.fired());
  // Once the store answers again, the monitor still sees a new round.
  rv.advance(0, join_deadline());
  auto until = Deadline::after(std::chrono::seconds(5));
  while (!monitor.fired() && !until.expired()) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(monitor.reason().value_or(""), "elastic: group re-forming (round 1)");
}

TEST(ElasticMonitor, AFailingStoreIsAskedAtTheHeartbeatIntervalNotInASpin) {
  // Counts every call the monitor makes while the store throws on each of them.
  class ThrowingStore : public MemoryStore {
   public:
    std::atomic<bool> broken{false};
    std::atomic<int> calls{0};  // calls made while broken
    std::optional<std::string> try_get(const std::string& key, Deadline d) override {
      if (broken) refuse();
      return MemoryStore::try_get(key, d);
    }
    int64_t add(const std::string& key, int64_t delta, Deadline d) override {
      if (broken) refuse();
      return MemoryStore::add(key, delta, d);
    }

   private:
    void refuse() {
      ++calls;
      throw PeerLostError("store down");
    }
  };
  auto store = std::make_shared<ThrowingStore>();
  ElasticRendezvous rv(store, "solo", fast_options(1, 1));
  Membership m = rv.join(join_deadline());
  auto comm = rv.connect(m, test_options());
  MonitorOptions mo = fast_monitor();
  mo.poll = milliseconds(5);
  mo.heartbeat_interval = milliseconds(20);
  ElasticMonitor monitor(rv, m, comm.get(), mo);
  store->broken = true;
  std::this_thread::sleep_for(milliseconds(400));
  const int calls = store->calls;
  store->broken = false;
  monitor.stop();
  // About 400 / 20 = 20 attempts; a loop that retries at once makes tens of thousands.
  EXPECT_LT(calls, 50) << "the monitor spins on a failing store";
  EXPECT_GE(calls, 5) << "the monitor stopped retrying the store";
  EXPECT_FALSE(monitor.fired());
}

}  // namespace
}  // namespace dtrain::testing
