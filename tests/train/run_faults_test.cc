// `dtrain run` under faults from outside, through the built binary (DTRAIN_BINARY_DIR/dtrain):
//   - a worker of an elastic job frozen with SIGSTOP: the survivors expel it, the launcher
//     SIGKILLs it, the job finishes and prints its summary (instead of waiting for it forever);
//   - the launcher itself SIGKILLed: its workers die with it, and the run directory it left is
//     removed by the next `dtrain run`.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "common/child_wait.h"
#include "train/data_test_util.h"
#include "train/dtrain_process.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using testing::children_of;
using testing::DtrainProcess;
using testing::reap_or_kill;
using testing::slurp;
using testing::TempDir;
using testing::wait_for_text;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Whether `pid` is gone or a zombie.
bool ended(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close == std::string::npos || stat.substr(close + 2, 1) == "Z";
}

std::vector<fs::path> run_dirs(const fs::path& tmp) {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(tmp)) {
    if (entry.path().filename().string().rfind("dtrain-run-", 0) == 0) dirs.push_back(entry.path());
  }
  return dirs;
}

// SIGSTOP worker id 2 of a 3-worker elastic job at step 30 (linear regression on synthetic data,
// paced at 20 ms a step by a delay fault on worker 0). Bounds: its group notices within
// heartbeat_timeout (2 s) + heartbeat_interval (1 s) and records the expulsion; the launcher
// SIGKILLs it within 0.5 s of that; the survivors re-form and train to the end.
TEST(RunFaults, FrozenElasticWorkerIsKilledAndTheJobFinishes) {
  TempDir dir;
  fs::path metrics = dir.path() / "metrics.jsonl";
  DtrainProcess run({"run",
                     "--elastic",
                     "--nproc",
                     "3",
                     "--min-workers",
                     "2",
                     "--heartbeat-timeout-s",
                     "2",
                     "--commit-every",
                     "10",
                     "--model",
                     "linreg",
                     "--dataset",
                     "synthetic-linear",
                     "--global-batch",
                     "96",
                     "--max-steps",
                     "150",
                     "--log-every",
                     "10",
                     "--eval-every",
                     "0",
                     "--quiet",
                     "--fault",
                     "delay:rank=0,ms=20",
                     "--metrics",
                     metrics.string()},
                    dir.path() / "out");
  ASSERT_TRUE(wait_for_text(metrics, "\"step\":30", std::chrono::seconds(60))) << run.output();
  pid_t victim = -1;
  for (auto [pid, rank] : children_of(run.pid())) {
    if (rank == 2) victim = pid;
  }
  ASSERT_GT(victim, 0) << run.output();
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);
  auto stopped_at = Clock::now();

  double killed_after = -1;
  while (seconds_since(stopped_at) < 60) {
    if (ended(victim)) {
      killed_after = seconds_since(stopped_at);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int status = run.wait_status(std::chrono::seconds(60));
  double ended_after = seconds_since(stopped_at);
  if (!ended(victim)) ::kill(victim, SIGKILL);  // a failed run must not leave it stopped
  std::string out = run.output();
  ASSERT_NE(status, -1) << "the job did not end after a worker froze\n" << out;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << out;
  EXPECT_GT(killed_after, 0) << "the frozen worker was never killed\n" << out;
  EXPECT_LT(killed_after, 2 + 1 + 0.5 + 3.0) << out;  // the bounds above, plus slack
  EXPECT_NE(out.find("worker id 2 was expelled by its group; sending SIGKILL"), std::string::npos)
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("round 1 with 2 workers resumes at step"))) << out;
  EXPECT_NE(out.find("150 x 96"), std::string::npos) << "no summary\n" << out;
  std::printf("frozen worker killed %.1f s after SIGSTOP; the job ended %.1f s after it\n",
              killed_after, ended_after);
}

// SIGKILL `dtrain run` mid-training: both workers die with it (this process adopts them as a
// subreaper to see how they end); its run directory stays, and the next `dtrain run` removes it.
TEST(RunFaults, KilledRunTakesItsWorkersAndTheNextRunRemovesItsDirectory) {
  TempDir dir;
  fs::path tmp = dir.path() / "tmp";
  fs::create_directories(tmp);
  fs::path metrics = dir.path() / "metrics.jsonl";
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  DtrainProcess run({"run", "--nproc", "2", "--model", "linreg", "--dataset", "synthetic-linear",
                     "--epochs", "100000", "--log-every", "5", "--eval-every", "0", "--quiet",
                     "--fault", "delay:rank=0,ms=5", "--metrics", metrics.string()},
                    dir.path() / "out", {"TMPDIR=" + tmp.string()});
  ASSERT_TRUE(wait_for_text(metrics, "\"step\":5", std::chrono::seconds(60))) << run.output();
  auto workers = children_of(run.pid());
  ASSERT_EQ(workers.size(), 2u) << run.output();
  ASSERT_EQ(run_dirs(tmp).size(), 1u);

  ASSERT_EQ(::kill(run.pid(), SIGKILL), 0);
  ASSERT_NE(run.wait_status(std::chrono::seconds(10)), -1);
  for (auto [pid, rank] : workers) {
    int status = 0;
    bool gone = reap_or_kill(pid, status, std::chrono::seconds(5));
    EXPECT_TRUE(gone) << "worker rank " << rank << " outlived its launcher";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_EQ(run_dirs(tmp).size(), 1u) << "SIGKILL runs no destructor: the directory stays";

  DtrainProcess next({"run", "--nproc", "1", "--model", "linreg", "--dataset", "synthetic-linear",
                      "--max-steps", "2", "--quiet"},
                     dir.path() / "next.out", {"TMPDIR=" + tmp.string()});
  int status = next.wait_status(std::chrono::seconds(60));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << next.output();
  EXPECT_TRUE(run_dirs(tmp).empty()) << "the dead launcher's run directory was left behind";
}

}  // namespace
}  // namespace dtrain
