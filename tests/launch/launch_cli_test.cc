// Drives the real `dtrain launch` with /bin/sh workers: output prefixing, the environment
// contract, failure propagation, signal forwarding and usage errors.
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/child_wait.h"
#include "launch/child_process.h"

namespace dtrain::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::string> sh_workers(int nproc, const std::string& script,
                                    std::vector<std::string> flags = {}) {
  std::vector<std::string> args = {"launch", "--nproc", std::to_string(nproc)};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {"--", "/bin/sh", "-c", script});
  return args;
}

TEST(LaunchCliTest, AllWorkersSucceedAndEveryLineIsPrefixed) {
  TempDir dir;
  auto r = run_dtrain(
      sh_workers(3, "echo hello $DTRAIN_RANK; echo oops $DTRAIN_RANK >&2; printf 'no newline'"),
      dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto out = lines_of(r.out);
  ASSERT_EQ(out.size(), 6u) << r.out;
  for (const auto& line : out)
    EXPECT_TRUE(std::regex_match(line, std::regex("\\[rank [0-2]\\] .*"))) << line;
  for (int rank = 0; rank < 3; ++rank) {
    std::string prefix = "[rank " + std::to_string(rank) + "] ";
    EXPECT_TRUE(contains(r.out, prefix + "hello " + std::to_string(rank) + "\n")) << r.out;
    EXPECT_TRUE(contains(r.out, prefix + "no newline\n")) << r.out;  // partial line flushed
    EXPECT_TRUE(contains(r.err, prefix + "oops " + std::to_string(rank) + "\n")) << r.err;
  }
}

// The store serves several connections per worker and every worker holds one per peer: the
// launcher raises the soft open-file limit (towards the hard one, at most 65536), workers too.
TEST(LaunchCliTest, WorkersGetARaisedOpenFileLimit) {
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  if (old.rlim_max <= 1024) GTEST_SKIP() << "the hard limit is only " << old.rlim_max;
  rlimit low = old;
  low.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  TempDir dir;
  auto r = run_dtrain(sh_workers(1, "ulimit -Sn", {"--no-prefix"}), dir.path());
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::to_string(std::min<rlim_t>(old.rlim_max, 65536)) + "\n");
}

TEST(LaunchCliTest, NoPrefixPassesOutputThrough) {
  TempDir dir;
  auto r = run_dtrain(sh_workers(1, "printf 'a\\nb'", {"--no-prefix"}), dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "a\nb");
}

// `dtrain run` passes its workers' output through without a prefix. Two workers write their
// stderr lines in pieces (as an unbuffered std::cerr << a << b does); each line must still come
// out whole, never spliced with the other worker's pieces.
TEST(LaunchCliTest, UnprefixedLinesOfTwoWorkersAreNeverSpliced) {
  TempDir dir;
  const std::string script =
      "for line in 1 2 3; do for piece in 1 2 3 4 5 6; do printf \"r$DTRAIN_RANK-$piece \" >&2; "
      "sleep 0.01; done; echo \"end-$DTRAIN_RANK\" >&2; done";
  auto r = run_dtrain(sh_workers(2, script, {"--no-prefix"}), dir.path(), seconds(20),
                      {"DTRAIN_LOG_LEVEL=warn"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::regex whole("(r([01])-\\d )+end-([01])");
  int lines = 0;
  for (const auto& line : lines_of(r.err)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, whole)) << "spliced: '" << line << "'\n" << r.err;
    EXPECT_EQ(line.find(m[3] == "0" ? "r1-" : "r0-"), std::string::npos) << line;
    ++lines;
  }
  EXPECT_EQ(lines, 6) << r.err;
}

// SIGKILL the launcher: its workers die with it (the parent-death signal) instead of being
// re-parented and running on.
TEST(LaunchCliTest, WorkersDieWithAKilledLauncher) {
  TempDir dir;
  std::string d = dir.path().string();
  std::vector<std::string> argv = {dtrain_binary()};
  for (const auto& a :
       sh_workers(3, "echo $$ > " + d + "/pid.$DTRAIN_RANK.tmp && mv " + d +
                         "/pid.$DTRAIN_RANK.tmp " + d + "/pid.$DTRAIN_RANK; exec sleep 30")) {
    argv.push_back(a);
  }
  // This process adopts the orphans (subreaper), so it can wait for each worker's end.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  ChildProcess launcher(argv, dir.path());
  std::vector<pid_t> workers;
  auto started = [&] {
    workers.clear();
    for (int r = 0; r < 3; ++r) {
      std::string pid = read_file(dir.path() / ("pid." + std::to_string(r)));
      if (pid.empty()) return false;
      workers.push_back(std::stoi(pid));
    }
    return true;
  };
  ASSERT_TRUE(wait_until(started, seconds(10))) << launcher.err_so_far();
  ASSERT_EQ(::kill(launcher.pid(), SIGKILL), 0);
  auto result = launcher.wait(seconds(5));
  EXPECT_EQ(result.wait_status & 0x7f, SIGKILL);
  for (pid_t pid : workers) {
    int status = 0;
    bool ended = reap_or_kill(pid, status, seconds(5));
    EXPECT_TRUE(ended) << "worker " << pid << " outlived its launcher";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST(LaunchCliTest, EachWorkerGetsItsOwnEnvironment) {
  TempDir dir;
  auto r = run_dtrain(
      sh_workers(3,
                 "echo \"$DTRAIN_RANK $DTRAIN_LOCAL_RANK $DTRAIN_WORLD_SIZE "
                 "$DTRAIN_LOCAL_WORLD_SIZE $DTRAIN_NODE_RANK $DTRAIN_NNODES $DTRAIN_RUN_ID "
                 "$DTRAIN_SECRET $DTRAIN_TIMEOUT_MS $DTRAIN_STORE_ADDR\"",
                 {"--run-id", "myrun", "--timeout-ms", "1234"}),
      dir.path(), seconds(20), {"DTRAIN_SECRET=abc123", "DTRAIN_RANK=99"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::regex line("\\[rank (\\d)\\] (\\d) (\\d) 3 3 0 1 myrun abc123 1234 (127\\.0\\.0\\.1:\\d+)");
  std::set<int> ranks;
  std::set<std::string> stores;
  for (const auto& text : lines_of(r.out)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(text, m, line)) << text;
    EXPECT_EQ(m[1],
              m[2]);  // prefix rank == DTRAIN_RANK (the launcher's own DTRAIN_RANK is replaced)
    EXPECT_EQ(m[2], m[3]);  // one node: local rank == rank
    ranks.insert(std::stoi(m[2]));
    stores.insert(m[4]);
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(stores.size(), 1u);
}

// This process's "Cpus_allowed_list" (e.g. "0-1"), what unbound workers inherit.
std::string own_allowed_cpu_list() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0)
      return line.substr(line.find_first_not_of(" \t", 18));
  }
  return "";
}

TEST(LaunchCliTest, BindToCpuGivesEachWorkerOneAllowedCpuRoundRobin) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  ASSERT_FALSE(cpus.empty());
  // One more worker than CPUs (at least 3), so the round-robin wraps.
  const int nproc = std::max<int>(3, static_cast<int>(cpus.size()) + 1);
  const std::string script = "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status";
  TempDir dir;
  auto bound = run_dtrain(sh_workers(nproc, script, {"--bind-to", "cpu"}), dir.path());
  ASSERT_EQ(bound.exit_code, 0) << bound.err;
  auto unbound = run_dtrain(sh_workers(nproc, script), dir.path());
  ASSERT_EQ(unbound.exit_code, 0) << unbound.err;
  for (int rank = 0; rank < nproc; ++rank) {
    const std::string prefix = "[rank " + std::to_string(rank) + "] ";
    EXPECT_TRUE(contains(bound.out, prefix + std::to_string(cpus[rank % cpus.size()]) + "\n"))
        << bound.out;
    EXPECT_TRUE(contains(unbound.out, prefix + own_allowed_cpu_list() + "\n")) << unbound.out;
  }
  EXPECT_TRUE(contains(bound.err, "worker rank 0 bound to CPU " + std::to_string(cpus[0])))
      << bound.err;
}

TEST(LaunchCliTest, GeneratedSecretIs128BitHexAndRunIdIsShared) {
  TempDir dir;
  auto r = run_dtrain(sh_workers(2, "echo \"$DTRAIN_SECRET $DTRAIN_RUN_ID\""), dir.path(),
                      seconds(20), {"DTRAIN_SECRET="});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = lines_of(r.out);
  ASSERT_EQ(out.size(), 2u);
  std::smatch m0, m1;
  std::regex line("\\[rank \\d\\] ([0-9a-f]{32}) (\\S+)");
  ASSERT_TRUE(std::regex_match(out[0], m0, line)) << out[0];
  ASSERT_TRUE(std::regex_match(out[1], m1, line)) << out[1];
  EXPECT_EQ(m0[1], m1[1]);
  EXPECT_EQ(m0[2], m1[2]);
}

TEST(LaunchCliTest, FailingWorkerStopsTheOthersAndIsNamed) {
  TempDir dir;
  auto r = run_dtrain(sh_workers(3, "if [ $DTRAIN_RANK = 1 ]; then sleep 0.2; exit 3; fi; sleep 30",
                                 {"--grace-ms", "3000"}),
                      dir.path());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "worker rank 1 exited with code 3")) << r.err;
  EXPECT_LT(r.elapsed, seconds(5)) << "the sleeping workers were not stopped promptly";
}

TEST(LaunchCliTest, WorkerKilledBySignalIsNamed) {
  TempDir dir;
  auto r = run_dtrain(sh_workers(2, "if [ $DTRAIN_RANK = 0 ]; then kill -KILL $$; fi; sleep 30"),
                      dir.path());
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
  EXPECT_TRUE(contains(r.err, "worker rank 0 killed by signal SIGKILL")) << r.err;
  EXPECT_LT(r.elapsed, seconds(5));
}

TEST(LaunchCliTest, WorkerIgnoringSigtermIsKilledAfterGrace) {
  TempDir dir;
  auto r = run_dtrain(sh_workers(2,
                                 "if [ $DTRAIN_RANK = 1 ]; then sleep 0.2; exit 4; fi; "
                                 "trap '' TERM; while :; do sleep 0.05; done",
                                 {"--grace-ms", "500"}),
                      dir.path());
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_TRUE(contains(r.err, "SIGKILL")) << r.err;
  EXPECT_LT(r.elapsed, seconds(5));
}

// Workers trap `sig`, write a marker file and exit 0; the launcher gets `sig` once all are up.
void expect_signal_forwarded(int sig, const std::string& name) {
  TempDir dir;
  std::string d = dir.path().string();
  std::string script = "trap 'echo " + name + " > " + d + "/stopped.$DTRAIN_RANK; exit 0' " + name +
                       "; touch " + d + "/ready.$DTRAIN_RANK; while :; do sleep 0.05; done";
  std::vector<std::string> argv = {dtrain_binary()};
  for (const auto& a : sh_workers(3, script, {"--grace-ms", "5000"})) argv.push_back(a);
  ChildProcess launcher(argv, dir.path());
  auto ready = [&] {
    for (int r = 0; r < 3; ++r) {
      if (!std::filesystem::exists(dir.path() / ("ready." + std::to_string(r)))) return false;
    }
    return true;
  };
  ASSERT_TRUE(wait_until(ready, seconds(10))) << launcher.err_so_far();
  ASSERT_EQ(::kill(launcher.pid(), sig), 0);
  auto result = launcher.wait(seconds(10));
  EXPECT_EQ(result.exit_code, 128 + sig) << result.err;
  EXPECT_LT(result.elapsed, seconds(8));
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(read_file(dir.path() / ("stopped." + std::to_string(r))), name + "\n")
        << "rank " << r;
  }
  EXPECT_TRUE(contains(result.err, "received SIG" + name)) << result.err;
}

TEST(LaunchCliTest, SigtermIsForwardedToEveryWorker) {
  expect_signal_forwarded(SIGTERM, "TERM");
}
TEST(LaunchCliTest, SigintIsForwardedToEveryWorker) {
  expect_signal_forwarded(SIGINT, "INT");
}

TEST(LaunchCliTest, BadFlagsPrintUsage) {
  TempDir dir;
  for (std::vector<std::string> args : {
           std::vector<std::string>{"launch", "--nproc", "2", "--bogus", "--", "true"},
           std::vector<std::string>{"launch", "--nproc", "zero", "--", "true"},
           std::vector<std::string>{"launch", "--nproc", "0", "--", "true"},
           std::vector<std::string>{"launch", "--nproc", "2", "--bind-to", "core", "--", "true"},
           std::vector<std::string>{"launch", "--", "true"},    // --nproc missing
           std::vector<std::string>{"launch", "--nproc", "2"},  // command missing
           std::vector<std::string>{"frobnicate"},              // unknown subcommand
       }) {
    auto r = run_dtrain(args, dir.path());
    EXPECT_EQ(r.exit_code, 2) << args[args.size() - 1];
    EXPECT_TRUE(contains(r.err, "dtrain: error:")) << r.err;
    EXPECT_TRUE(contains(r.err, "Usage: dtrain")) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST(LaunchCliTest, NoSubcommandPrintsHelpAndFails) {
  TempDir dir;
  auto r = run_dtrain({}, dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "launch")) << r.err;
  auto help = run_dtrain({"--help"}, dir.path());
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(contains(help.out, "launch")) << help.out;
}

TEST(LaunchCliTest, MissingCommandIsNamed) {
  TempDir dir;
  auto r = run_dtrain({"launch", "--nproc", "2", "--", "dtrain-no-such-command"}, dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "dtrain: error: cannot execute 'dtrain-no-such-command'")) << r.err;
}

TEST(LaunchCliTest, SeveralNodesNeedASecret) {
  TempDir dir;
  auto r = run_dtrain({"launch", "--nproc", "1", "--nnodes", "2", "--node-rank", "0", "--store",
                       "127.0.0.1:1", "--", "true"},
                      dir.path(), seconds(20), {"DTRAIN_SECRET="});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "DTRAIN_SECRET")) << r.err;
}

// Two launchers on this machine play two nodes: node 0 hosts the store, node 1 joins and learns
// the run id and MASTER_PORT from it; ranks are node_rank * nproc + local rank. torchrun's
// variables say the same as dtrain's.
TEST(LaunchCliTest, TwoNodesShareOneStoreAndRunId) {
  TempDir dir;
  std::string store = "127.0.0.1:" + std::to_string(free_port());
  std::string script =
      "echo \"$DTRAIN_RANK $DTRAIN_LOCAL_RANK $DTRAIN_NODE_RANK $DTRAIN_WORLD_SIZE "
      "$DTRAIN_RUN_ID $RANK $LOCAL_RANK $GROUP_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE "
      "$GROUP_WORLD_SIZE $MASTER_ADDR $MASTER_PORT $TORCHELASTIC_RUN_ID\"";
  auto node_args = [&](int node) {
    std::vector<std::string> argv = {dtrain_binary(),
                                     "launch",
                                     "--nproc",
                                     "2",
                                     "--nnodes",
                                     "2",
                                     "--node-rank",
                                     std::to_string(node),
                                     "--store",
                                     store,
                                     "--host",
                                     "127.0.0.1",
                                     "--",
                                     "/bin/sh",
                                     "-c",
                                     script};
    return argv;
  };
  // Node 1 starts once node 0 listens: a client retrying a connect to a port nobody listens on
  // can be handed that very port as its own and connect to itself (TCP simultaneous open).
  ChildProcess node0(node_args(0), dir.path(), {"DTRAIN_SECRET=shared"});
  ASSERT_TRUE(
      wait_until([&] { return contains(node0.err_so_far(), "hosting the store"); }, seconds(10)))
      << node0.err_so_far();
  ChildProcess node1(node_args(1), dir.path(), {"DTRAIN_SECRET=shared"});
  auto r0 = node0.wait(seconds(20));
  auto r1 = node1.wait(seconds(20));
  ASSERT_EQ(r0.exit_code, 0) << r0.err;
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  std::regex line(
      "\\[rank (\\d)\\] (\\d) (\\d) (\\d) 4 (\\S+) (\\d) (\\d) (\\d) 4 2 2 127\\.0\\.0\\.1 "
      "(\\d+) (\\S+)");
  std::set<int> ranks;
  std::set<std::string> run_ids, master_ports;
  for (const auto& [node, text] : {std::pair{0, r0.out}, std::pair{1, r1.out}}) {
    for (const auto& l : lines_of(text)) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(l, m, line)) << l;
      int rank = std::stoi(m[2]);
      EXPECT_EQ(rank, node * 2 + std::stoi(m[3]));
      EXPECT_EQ(std::stoi(m[4]), node);
      ranks.insert(rank);
      run_ids.insert(m[5]);
      EXPECT_EQ(m[6], m[2]);  // RANK
      EXPECT_EQ(m[7], m[3]);  // LOCAL_RANK
      EXPECT_EQ(m[8], m[4]);  // GROUP_RANK
      master_ports.insert(m[9]);
      EXPECT_EQ(m[10], m[5]);  // TORCHELASTIC_RUN_ID
    }
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(run_ids.size(), 1u);
  EXPECT_EQ(master_ports.size(), 1u);  // one PyTorch store for the job
}

}  // namespace
}  // namespace dtrain::testing
