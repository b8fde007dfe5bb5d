// Elastic training end to end through the built binary (DTRAIN_BINARY_DIR/dtrain) on the real
// Fashion-MNIST (Debian's dataset-fashion-mnist): a worker SIGKILLed from outside mid-training,
// the group falling below its minimum, and a worker joining a running job.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "train/data_test_util.h"
#include "train/dtrain_process.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using testing::children_of;
using testing::DtrainProcess;
using testing::TempDir;
using testing::wait_for_text;

// The pids of the processes whose parent is `parent` and whose environment has DTRAIN_RANK=id.
std::vector<pid_t> workers_with_id(pid_t parent, int id) {
  std::vector<pid_t> found;
  for (auto [pid, rank] : children_of(parent)) {
    if (rank == id) found.push_back(pid);
  }
  return found;
}

double accuracy_of(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex("test accuracy +\\| ([0-9.]+) %"))) return -1;
  return std::stod(m[1]);
}

// The job: an MLP on Fashion-MNIST, 3 workers, 180 steps of 96 (about 6 s on 2 cores).
std::vector<std::string> job(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      "run", "--nproc",     "3",   "--model",     "mlp", "--hidden",     "64", "--global-batch",
      "96",  "--max-steps", "180", "--log-every", "10",  "--eval-every", "0",  "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Note: one long test (two training runs): the acceptance test of elastic recovery.
TEST(ElasticEndToEnd, WorkerKilledFromOutsideMidTraining) {
  TempDir dir;
  DtrainProcess plain(job(), dir.path() / "plain.out");
  ASSERT_EQ(plain.wait(std::chrono::seconds(120)), 0) << plain.output();
  double plain_accuracy = accuracy_of(plain.output());
  ASSERT_GT(plain_accuracy, 50) << plain.output();

  fs::path metrics = dir.path() / "metrics.jsonl";
  DtrainProcess elastic(job({"--elastic", "--min-workers", "2", "--commit-every", "10", "--metrics",
                             metrics.string()}),
                        dir.path() / "elastic.out");
  // Kill worker id 2 once the group has logged step 60.
  ASSERT_TRUE(wait_for_text(metrics, "\"step\":60", std::chrono::seconds(60))) << elastic.output();
  std::vector<pid_t> victims = workers_with_id(elastic.pid(), 2);
  ASSERT_EQ(victims.size(), 1u) << elastic.output();
  ASSERT_EQ(::kill(victims[0], SIGKILL), 0);

  ASSERT_EQ(elastic.wait(std::chrono::seconds(120)), 0) << elastic.output();
  std::string out = elastic.output();
  EXPECT_NE(out.find("worker id 2 killed by signal SIGKILL"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(out, m, std::regex("round 1 with 2 workers resumes at step (\\d+)")))
      << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("steps trained again +\\| (\\d+)"))) << out;
  int lost = std::stoi(m[1]);
  EXPECT_LE(lost, 10) << "more progress lost than the commit interval\n" << out;
  EXPECT_NE(out.find("180 x 96"), std::string::npos) << "the job did not finish\n" << out;
  double accuracy = accuracy_of(out);
  std::printf("elastic: accuracy %.2f %% after the kill, %.2f %% without faults; %d steps lost\n",
              accuracy, plain_accuracy, lost);
  EXPECT_NEAR(accuracy, plain_accuracy, 1.0) << out;
}

TEST(ElasticEndToEnd, BelowTheMinimumEndsWithAMessage) {
  TempDir dir;
  DtrainProcess run({"run", "--nproc", "2", "--elastic", "--min-workers", "2", "--model", "mlp",
                     "--hidden", "16", "--max-steps", "60", "--global-batch", "64", "--quiet",
                     "--fault", "kill:rank=1,step=5", "--rendezvous-timeout-s", "2"},
                    dir.path() / "out");
  int code = run.wait(std::chrono::seconds(60));
  std::string out = run.output();
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(code, -1) << "hung\n" << out;
  EXPECT_NE(out.find("only 1 workers (minimum 2); stopping"), std::string::npos) << out;
}

// A second launcher adds a worker to a running 2-worker job; the group admits it at a commit.
TEST(ElasticEndToEnd, LaterWorkerJoinsAtTheNextCommit) {
  TempDir dir;
  fs::path metrics = dir.path() / "metrics.jsonl";
  std::string port = std::to_string(20000 + (::getpid() % 20000));
  std::string store = "127.0.0.1:" + port;
  std::vector<std::string> train = {"--", testing::dtrain_binary(), "train", "--model", "mlp",
                                    "--hidden", "32", "--global-batch", "96", "--max-steps", "1200",
                                    "--log-every", "10", "--commit-every", "10", "--quiet",
                                    "--no-summary", "--metrics", metrics.string(),
                                    // ~6 s of training: time for the joiner to start
                                    "--fault", "delay:rank=0,ms=5"};
  std::vector<std::string> first = {"launch",        "--nproc", "2",       "--elastic",
                                    "--max-workers", "3",       "--store", store};
  first.insert(first.end(), train.begin(), train.end());
  DtrainProcess node0(first, dir.path() / "node0.out", {"DTRAIN_SECRET=elastic-test"});
  ASSERT_TRUE(wait_for_text(metrics, "\"step\":20", std::chrono::seconds(60))) << node0.output();
  std::vector<std::string> join = {"launch", "--nproc", "1",  "--elastic",
                                   "--join", "--store", store};
  join.insert(join.end(), train.begin(), train.end());
  DtrainProcess node1(join, dir.path() / "node1.out", {"DTRAIN_SECRET=elastic-test"});
  ASSERT_EQ(node0.wait(std::chrono::seconds(120)), 0) << node0.output() << node1.output();
  ASSERT_EQ(node1.wait(std::chrono::seconds(30)), 0) << node1.output();
  std::string out = node0.output() + node1.output();
  EXPECT_NE(out.find("admitting waiting workers"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("round 1 with 3 workers"))) << out;
}

}  // namespace
}  // namespace dtrain
