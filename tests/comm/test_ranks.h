// Helpers that run N ranks inside a test: as threads of this process over one MemoryStore
// (run_threads, common/rank_threads.h), or as fork()ed child processes that each build their own
// store and communicator.
//
// run_processes(n, make_store, fn, limit): forks n children; child `rank` calls
// fn(rank, make_store(rank)) and exits (with _exit, never returning into gtest) with 0 on
// success, 1 if fn threw or a gtest assertion failed (the reason goes to stderr). The parent
// waits until `limit`, then SIGKILLs the stragglers. Returns each child's outcome. The parent
// must not hold locks or run threads that the children need (fork copies only the caller).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/child_wait.h"
#include "common/rank_threads.h"
#include "dtrain/communicator.h"
#include "dtrain/error.h"
#include "dtrain/memory_store.h"

namespace dtrain::testing {

struct ChildOutcome {
  bool exited = false;  // exited by itself (else killed by us or by a signal)
  int exit_code = -1;
  int signal = 0;
};

// Waits for `pid` until `deadline`; SIGKILLs it if still running then.
inline ChildOutcome reap(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  ChildOutcome out;
  int status = 0;
  const auto left = std::max(deadline - std::chrono::steady_clock::now(),
                             std::chrono::steady_clock::duration::zero());
  reap_or_kill(pid, status, std::chrono::duration_cast<std::chrono::milliseconds>(left));
  if (WIFEXITED(status)) {
    out.exited = true;
    out.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.signal = WTERMSIG(status);
  }
  return out;
}

// Runs in the child: never returns.
[[noreturn]] inline void child_main(int rank,
                                    const std::function<std::shared_ptr<Store>(int)>& make_store,
                                    const RankFn& fn) {
  int code = 0;
  try {
    fn(rank, make_store(rank));
    if (::testing::Test::HasFailure()) code = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[child rank %d] threw: %s\n", rank, e.what());
    code = 1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(code);
}

inline std::vector<pid_t> fork_ranks(int n,
                                     const std::function<std::shared_ptr<Store>(int)>& make_store,
                                     const RankFn& fn) {
  std::vector<pid_t> pids;
  std::fflush(stdout);
  std::fflush(stderr);
  for (int r = 0; r < n; ++r) {
    pid_t pid = fork();
    if (pid == 0) child_main(r, make_store, fn);
    if (pid < 0) ADD_FAILURE() << "fork failed";
    pids.push_back(pid);
  }
  return pids;
}

inline std::vector<ChildOutcome> run_processes(
    int n, const std::function<std::shared_ptr<Store>(int)>& make_store, const RankFn& fn,
    std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  auto pids = fork_ranks(n, make_store, fn);
  std::vector<ChildOutcome> outcomes;
  for (pid_t pid : pids) outcomes.push_back(reap(pid, deadline));
  return outcomes;
}

inline void expect_all_succeeded(const std::vector<ChildOutcome>& outcomes) {
  for (size_t r = 0; r < outcomes.size(); ++r) {
    EXPECT_TRUE(outcomes[r].exited && outcomes[r].exit_code == 0)
        << "rank " << r << ": exited=" << outcomes[r].exited << " code=" << outcomes[r].exit_code
        << " signal=" << outcomes[r].signal;
  }
}

// The transport the communicator tests run on: DTRAIN_TEST_TRANSPORT ("tcp", the default, or
// "gloo"); ctest runs comm_tests once per transport (CMakeLists.txt).
inline CommTransport test_transport() {
  const char* name = std::getenv("DTRAIN_TEST_TRANSPORT");
  return name == nullptr || *name == '\0' ? CommTransport::kTcp : parse_comm_transport(name);
}

// Options for tests: short timeouts so a bug fails fast instead of hanging the suite.
inline CommOptions test_options(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  CommOptions o;
  o.transport = test_transport();
  o.timeout = timeout;
  o.connect_timeout = std::chrono::seconds(20);
  return o;
}

}  // namespace dtrain::testing
