// `dtrain launch --elastic`: a failed worker does not stop the others; the elastic environment;
// a --join launcher adds workers with fresh ids to a running job.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "launch/child_process.h"

namespace dtrain::testing {
namespace {

using std::chrono::seconds;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::string> elastic_sh(int nproc, const std::string& script,
                                    std::vector<std::string> flags = {}) {
  std::vector<std::string> args = {"launch", "--nproc", std::to_string(nproc), "--elastic"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {"--", "/bin/sh", "-c", script});
  return args;
}

TEST(ElasticLaunchTest, KilledWorkerDoesNotStopTheOthers) {
  TempDir dir;
  // Worker 0 is killed at once; workers 1 and 2 finish their work later and exit 0.
  auto r = run_dtrain(elastic_sh(3,
                                 "if [ $DTRAIN_RANK = 0 ]; then kill -KILL $$; fi; sleep 1; "
                                 "echo done $DTRAIN_RANK",
                                 {"--min-workers", "2"}),
                      dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "worker id 0 killed by signal SIGKILL")) << r.err;
  EXPECT_TRUE(contains(r.out, "[rank 1] done 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "[rank 2] done 2")) << r.out;
}

TEST(ElasticLaunchTest, AllWorkersFailingIsAFailure) {
  TempDir dir;
  auto r = run_dtrain(elastic_sh(2, "exit 5"), dir.path());
  EXPECT_EQ(r.exit_code, 5) << r.err;
}

TEST(ElasticLaunchTest, WorkersGetTheElasticEnvironment) {
  TempDir dir;
  auto r = run_dtrain(
      elastic_sh(2, "echo env $DTRAIN_ELASTIC $DTRAIN_MIN_WORKERS $DTRAIN_MAX_WORKERS",
                 {"--min-workers", "1", "--max-workers", "4"}),
      dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "[rank 0] env 1 1 4")) << r.out;
  EXPECT_TRUE(contains(r.out, "[rank 1] env 1 1 4")) << r.out;
}

TEST(ElasticLaunchTest, BadElasticFlagsAreUsageErrors) {
  TempDir dir;
  auto r = run_dtrain({"launch", "--nproc", "2", "--min-workers", "2", "--", "/bin/true"},
                      dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "need --elastic")) << r.err;
  r = run_dtrain(elastic_sh(2, "true", {"--min-workers", "3", "--max-workers", "2"}), dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "larger than --max-workers")) << r.err;
  r = run_dtrain(elastic_sh(1, "true", {"--join"}), dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "--join needs --store")) << r.err;
}

// A second launcher joins a running elastic job: same run id, fresh worker ids after node 0's.
TEST(ElasticLaunchTest, JoiningLauncherGetsFreshWorkerIds) {
  TempDir dir;
  std::string store = "127.0.0.1:" + std::to_string(free_port());
  // Node 0's workers stay until the joiner's worker ran (at most 15 s), so the store lives.
  std::string marker = (dir.path() / "joined").string();
  std::string script = "echo id $DTRAIN_RANK $DTRAIN_RUN_ID; i=0; while [ ! -e " + marker +
                       " ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done";
  std::vector<std::string> first = {dtrain_binary(), "launch", "--nproc", "2", "--elastic",
                                    "--store", store, "--", "/bin/sh", "-c", script};
  ChildProcess node0(first, dir.path(), {"DTRAIN_SECRET=shared"});
  ASSERT_TRUE(
      wait_until([&] { return contains(node0.err_so_far(), "hosting the store"); }, seconds(10)))
      << node0.err_so_far();
  std::vector<std::string> joiner = {dtrain_binary(), "launch", "--nproc", "1", "--elastic",
                                     "--join", "--store", store, "--",
                                     "/bin/sh", "-c",
                                     "echo id $DTRAIN_RANK $DTRAIN_RUN_ID; touch " + marker};
  ChildProcess node1(joiner, dir.path(), {"DTRAIN_SECRET=shared"});
  auto r1 = node1.wait(seconds(20));
  auto r0 = node0.wait(seconds(20));
  ASSERT_EQ(r0.exit_code, 0) << r0.err;
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  std::smatch m0, m1;
  ASSERT_TRUE(std::regex_search(r0.out, m0, std::regex("\\[rank 0\\] id 0 (\\S+)"))) << r0.out;
  ASSERT_TRUE(std::regex_search(r1.out, m1, std::regex("\\[rank 2\\] id 2 (\\S+)"))) << r1.out;
  EXPECT_EQ(m0[1], m1[1]);  // the same run
}

}  // namespace
}  // namespace dtrain::testing
