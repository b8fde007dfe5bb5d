// Waiting for a child process with a deadline, for tests that start processes (or adopt them as
// a subreaper) and must fail, not hang, when one does not end. Used by several test binaries (as
// "common/child_wait.h").
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

namespace dtrain::testing {

// Waits (checking every 20 ms, at most `limit`) for the child `pid` of this process to end: true
// with its wait status in `status`, false when it still runs at the deadline.
inline bool reap_within(pid_t pid, int& status, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// reap_within, and a child still running at the deadline is SIGKILLed and reaped (`status` then
// says so): true when it ended by itself within `limit`.
inline bool reap_or_kill(pid_t pid, int& status, std::chrono::milliseconds limit) {
  if (reap_within(pid, status, limit)) return true;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return false;
}

}  // namespace dtrain::testing
