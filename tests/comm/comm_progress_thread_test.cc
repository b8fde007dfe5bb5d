// CommOptions::progress_thread_nice: the transport's event-loop thread runs at the configured
// nice value, the caller's threads keep theirs, and out-of-range values are refused.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/resource.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>

#include "collectives_values.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

// Threads of this process whose nice value is `nice` (field 19 of /proc/self/task/T/stat).
int threads_with_nice(int nice) {
  int count = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream stat(std::string("/proc/self/task/") + entry->d_name + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));  // field 3 (state) onwards
    std::string field;
    for (int i = 3; i <= 19 && fields >> field; ++i) {
      if (i == 19 && std::stoi(field) == nice) ++count;
    }
  }
  closedir(dir);
  return count;
}

TEST(CommProgressThread, EventLoopRunsAtTheConfiguredNice) {
  constexpr int kNice = 7;  // distinct from the default, so other tests' threads do not count
  ASSERT_EQ(threads_with_nice(kNice), 0);
  std::atomic<int> seen{-1};
  run_threads(2, [&](int rank, std::shared_ptr<Store> store) {
    CommOptions o = test_options();
    o.progress_thread_nice = kNice;
    auto comm = Communicator::create_gloo(store, rank, 2, o);
    comm->barrier();
    if (rank == 0) seen = threads_with_nice(kNice);
    EXPECT_EQ(getpriority(PRIO_PROCESS, 0), 0) << "the calling thread keeps its priority";
    comm->barrier();
    float x = static_cast<float>(rank + 1);
    comm->allreduce(&x, 1, DType::kFloat32, ReduceOp::kSum);
    EXPECT_EQ(x, 3.0f);
  });
  EXPECT_EQ(seen.load(), 2) << "one event loop per rank's device";
  EXPECT_EQ(threads_with_nice(kNice), 0) << "the loops end with their communicators";
}

TEST(CommProgressThread, ZeroLeavesTheLoopAlone) {
  constexpr int kNice = 19;  // what `dtrain train` sets
  ASSERT_EQ(CommOptions{}.progress_thread_nice, 0) << "the library default leaves the loop alone";
  ASSERT_EQ(threads_with_nice(kNice), 0);
  std::atomic<int> seen{-1};
  run_threads(2, [&](int rank, std::shared_ptr<Store> store) {
    CommOptions o = test_options();
    o.progress_thread_nice = 0;
    auto comm = Communicator::create_gloo(store, rank, 2, o);
    comm->barrier();
    if (rank == 0) seen = threads_with_nice(kNice);
    comm->barrier();
  });
  EXPECT_EQ(seen.load(), 0);
}

TEST(CommProgressThread, OutOfRangeIsAnError) {
  for (int bad : {-1, 20}) {
    CommOptions o = test_options();
    o.progress_thread_nice = bad;
    EXPECT_THROW(Communicator::create_gloo(std::make_shared<MemoryStore>(), 0, 1, o),
                 InvalidArgumentError)
        << bad;
  }
}

}  // namespace
}  // namespace dtrain::testing
