// CommOptions::progress_thread_batch and progress_thread_nice: the transport's event-loop thread
// runs under SCHED_BATCH (by default) and at the configured nice value, the caller's threads keep
// their scheduling, and out-of-range values are refused.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "collectives_values.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

// Threads of this process whose scheduling policy is `policy` and whose nice value is `nice`.
int threads_with(int policy, int nice) {
  int count = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
    const int thread_policy = sched_getscheduler(tid);  // Linux: a thread id names that thread
    if (thread_policy < 0) continue;                     // it ended meanwhile
    errno = 0;
    const int thread_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
    if (errno != 0) continue;
    if (thread_policy == policy && thread_nice == nice) ++count;
  }
  closedir(dir);
  return count;
}

// Runs a 2-rank communicator under `o`; returns what `count` says while both are connected.
template <typename Count>
int count_while_connected(const CommOptions& o, Count count) {
  std::atomic<int> seen{-1};
  run_threads(2, [&](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create(store, rank, 2, o);
    comm->barrier();
    if (rank == 0) seen = count();
    EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER) << "the calling thread keeps its policy";
    EXPECT_EQ(getpriority(PRIO_PROCESS, 0), 0) << "the calling thread keeps its nice value";
    comm->barrier();
    float x = static_cast<float>(rank + 1);
    comm->allreduce(&x, 1, DType::kFloat32, ReduceOp::kSum);
    EXPECT_EQ(x, 3.0f);
  });
  return seen.load();
}

TEST(CommProgressThread, EventLoopRunsUnderSchedBatchByDefault) {
  ASSERT_TRUE(CommOptions{}.progress_thread_batch);
  ASSERT_EQ(CommOptions{}.progress_thread_nice, 0);
  ASSERT_EQ(threads_with(SCHED_BATCH, 0), 0);
  EXPECT_EQ(count_while_connected(test_options(), [] { return threads_with(SCHED_BATCH, 0); }), 2)
      << "one event loop per rank's device";
  EXPECT_EQ(threads_with(SCHED_BATCH, 0), 0) << "the loops end with their communicators";
}

TEST(CommProgressThread, EventLoopRunsAtTheConfiguredNice) {
  constexpr int kNice = 7;  // distinct from the default, so other tests' threads do not count
  ASSERT_EQ(threads_with(SCHED_BATCH, kNice), 0);
  CommOptions o = test_options();
  o.progress_thread_nice = kNice;
  EXPECT_EQ(count_while_connected(o, [] { return threads_with(SCHED_BATCH, kNice); }), 2);
  o.progress_thread_batch = false;
  EXPECT_EQ(count_while_connected(o, [] { return threads_with(SCHED_OTHER, kNice); }), 2)
      << "the nice value without SCHED_BATCH";
  EXPECT_EQ(threads_with(SCHED_OTHER, kNice), 0);
}

TEST(CommProgressThread, BatchOffAndNiceZeroLeaveTheLoopAlone) {
  CommOptions o = test_options();
  o.progress_thread_batch = false;
  o.progress_thread_nice = 0;
  EXPECT_EQ(count_while_connected(o, [] { return threads_with(SCHED_BATCH, 0); }), 0);
}

TEST(CommProgressThread, OutOfRangeIsAnError) {
  for (int bad : {-1, 20}) {
    CommOptions o = test_options();
    o.progress_thread_nice = bad;
    EXPECT_THROW(Communicator::create(std::make_shared<MemoryStore>(), 0, 1, o),
                 InvalidArgumentError)
        << bad;
  }
}

}  // namespace
}  // namespace dtrain::testing
