// The supervisor's deadlines in elastic jobs, on /bin/sh workers: a worker its group expelled is
// SIGKILLed although it is stopped; workers still running finish_timeout after one exited 0 are
// stopped; non-elastic jobs keep waiting for a slower worker. A watchdog SIGKILLs the workers
// when supervise() overstays, so a regression fails on the elapsed time instead of hanging.
// Also ExpulsionWatch, the supervisor's view of the store's expulsion records.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "dtrain/memory_store.h"
#include "launch/child_process.h"
#include "launch/expulsion_watch.h"
#include "launch/supervisor.h"

namespace dtrain::launcher {
namespace {

using Clock = std::chrono::steady_clock;
using dtrain::testing::read_file;
using dtrain::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;

WorkerProcess sh_worker(int rank, const std::string& script) {
  WorkerSpec spec;
  spec.rank = rank;
  spec.path = "/bin/sh";
  spec.argv = {"sh", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin"};
  return spawn_worker(spec);
}

struct Outcome {
  int code = -1;
  milliseconds elapsed{0};
  std::string out;  // the workers' stdout, as the supervisor wrote it
};

// supervise() with the workers' output in a file; after `limit` a watchdog SIGKILLs them.
Outcome supervise_bounded(std::vector<WorkerProcess> workers, SupervisorOptions options,
                          milliseconds limit = seconds(10)) {
  TempDir dir;
  auto out_path = dir.path() / "out";
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  options.out_fd = out;
  std::vector<pid_t> pids;
  for (const auto& w : workers) pids.push_back(w.pid);
  SignalWatch signals({SIGINT, SIGTERM, SIGHUP, SIGCHLD});
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;  // GUARDED_BY(mutex)
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mutex);
    if (cv.wait_for(lock, limit, [&] { return done; })) return;
    for (pid_t pid : pids) ::kill(-pid, SIGKILL);  // unreaped: the pids are still theirs
  });
  Outcome outcome;
  auto start = Clock::now();
  outcome.code = supervise(std::move(workers), signals, options);
  outcome.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  ::close(out);
  outcome.out = read_file(out_path);
  return outcome;
}

TEST(SupervisorTest, ExpelledWorkerIsKilledEvenWhenStopped) {
  std::vector<WorkerProcess> workers;
  workers.push_back(sh_worker(0, "kill -STOP $$; echo continued"));
  workers.push_back(sh_worker(1, "sleep 0.3; echo done"));
  SupervisorOptions options;
  options.elastic = true;
  options.expel_poll = milliseconds(100);
  options.finish_timeout = seconds(60);  // not what ends this job
  std::vector<std::vector<int>> asked;
  options.expelled = [&](const std::vector<int>& ids) {
    asked.push_back(ids);
    return std::vector<int>{0};  // the group expelled worker 0
  };
  Outcome r = supervise_bounded(std::move(workers), options);
  EXPECT_EQ(r.code, 0);
  EXPECT_LT(r.elapsed, seconds(3)) << "the stopped worker was not killed";
  EXPECT_EQ(r.out, "[rank 1] done\n");
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked[0], (std::vector<int>{0, 1}));
  for (const auto& ids : asked) {  // a killed worker is not asked about again
    EXPECT_TRUE(ids.size() == 2 || ids == std::vector<int>{1}) << ids.size();
  }
}

TEST(SupervisorTest, ElasticStragglerIsStoppedAfterTheFinishTimeout) {
  std::vector<WorkerProcess> workers;
  workers.push_back(sh_worker(0, "echo finished"));
  workers.push_back(sh_worker(1, "kill -STOP $$; echo continued"));  // never expelled
  SupervisorOptions options;
  options.elastic = true;
  options.finish_timeout = milliseconds(300);
  options.grace_period = milliseconds(300);  // a stopped process ignores SIGTERM: SIGKILL then
  Outcome r = supervise_bounded(std::move(workers), options);
  EXPECT_EQ(r.code, 0);  // the job's training ended: worker 0 exited 0
  EXPECT_LT(r.elapsed, seconds(3)) << "the straggler was not stopped";
  EXPECT_GE(r.elapsed, milliseconds(550));
  EXPECT_EQ(r.out, "[rank 0] finished\n");
}

TEST(SupervisorTest, NonElasticJobWaitsForASlowerWorker) {
  std::vector<WorkerProcess> workers;
  workers.push_back(sh_worker(0, "echo first"));
  workers.push_back(sh_worker(1, "sleep 0.8; echo second"));
  SupervisorOptions options;
  options.finish_timeout = milliseconds(100);  // elastic only
  Outcome r = supervise_bounded(std::move(workers), options);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "[rank 0] first\n[rank 1] second\n");
}

TEST(ExpulsionWatchTest, ReportsTheRecordedExpulsionsOfTheAskedIds) {
  auto store = std::make_shared<MemoryStore>();
  ExpulsionWatch watch(store, "run-x", seconds(1), milliseconds(200));
  Deadline d = Deadline::after(seconds(5));
  EXPECT_TRUE(watch.expelled({0, 1, 2}).empty());
  store->set("run-x/elastic/expelled/2", "0", d);
  EXPECT_TRUE(watch.expelled({0, 1, 2}).empty());  // the counter did not move: nothing read
  store->add("run-x/elastic/expelled_count", 1, d);
  EXPECT_EQ(watch.expelled({0, 1, 2}), std::vector<int>{2});
  EXPECT_TRUE(watch.expelled({0, 1}).empty());
  store->set("run-x/elastic/expelled/7", "1", d);  // another node's worker
  store->add("run-x/elastic/expelled_count", 1, d);
  EXPECT_TRUE(watch.expelled({0, 1}).empty());
  store->set("run-x/elastic/expelled/1", "1", d);
  store->add("run-x/elastic/expelled_count", 1, d);
  EXPECT_EQ(watch.expelled({0, 1}), std::vector<int>{1});
  store->set("run-x/elastic/expelled_count", "garbage", d);  // logged; never thrown
  EXPECT_TRUE(watch.expelled({0}).empty());
  store->set("run-x/elastic/expelled/0", "2", d);
  store->set("run-x/elastic/expelled_count", "4", d);
  EXPECT_TRUE(watch.expelled({0}).empty());  // not asked again until retry_after passed
  std::this_thread::sleep_for(milliseconds(250));
  EXPECT_EQ(watch.expelled({0}), std::vector<int>{0});
}

}  // namespace
}  // namespace dtrain::launcher
