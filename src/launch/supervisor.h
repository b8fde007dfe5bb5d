// Supervisor: watches a node's running workers and applies the failure policy of launch.h.
//
// One thread, one loop: poll() on the workers' output pipes and the SignalWatch's fd (SIGCHLD,
// SIGINT, SIGTERM, SIGHUP), waking at least every kTick to reap exited workers with
// waitpid(WNOHANG) and to enforce the SIGKILL deadline. It returns once every worker was reaped
// and its output drained (or drain_timeout passed after the last exit), so it never waits
// forever once workers are asked to stop: grace_period later they get SIGKILL.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "launch/signal_watch.h"
#include "launch/worker_process.h"

namespace dtrain::launcher {

struct SupervisorOptions {
  bool prefix_output = true;
  std::chrono::milliseconds grace_period{10000};
  std::chrono::milliseconds drain_timeout{1000};
  int out_fd = 1;
  int err_fd = 2;
  // A failed worker does not stop the others (launch.h, elastic jobs).
  bool elastic = false;
};

// Returns the launcher's exit code: 0 if all exited 0; the first failed worker's exit_code_of();
// 128 + signal if the launcher was asked to stop by a signal before any worker failed.
// Elastic: 0 if at least one worker exited 0 (and no stop signal came), else as above.
int supervise(std::vector<WorkerProcess> workers, SignalWatch& signals,
              const SupervisorOptions& options);

}  // namespace dtrain::launcher
