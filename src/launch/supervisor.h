// Supervisor: watches a node's running workers and applies the failure policy of launch.h.
//
// One thread, one loop: poll() on the workers' output pipes and the SignalWatch's fd (SIGCHLD,
// SIGINT, SIGTERM, SIGHUP), waking at least every kTick (200 ms) to reap exited workers with
// waitpid(WNOHANG), to enforce its deadlines and, in elastic jobs, to ask which workers their
// group expelled. Output is written by this thread alone, in whole lines (LinePrefixer,
// write_lines). Every wait has a deadline:
//   - stopping workers (a failure, a signal): SIGKILL grace_period after the SIGTERM;
//   - elastic, a worker the group expelled (`expelled`): SIGKILL within expel_poll of the record,
//     whatever state it is in (a SIGSTOPped process only dies from SIGKILL);
//   - elastic, after a worker exited 0 (the job's training ended): the others get finish_timeout
//     to exit, then they are stopped (SIGTERM, SIGKILL grace_period later);
//   - after the last exit: output still held by the workers' children is read for drain_timeout.
// It returns once every worker was reaped and its output drained.
#pragma once

#include <chrono>
#include <functional>
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
  // Elastic: given the ids (WorkerProcess::rank) of the running workers, returns those their group
  // expelled. Asked every expel_poll; must return within a bound of its own (ExpulsionWatch: its
  // store timeout) and not throw. Empty = never asked.
  std::function<std::vector<int>(const std::vector<int>&)> expelled;
  std::chrono::milliseconds expel_poll{500};
  // Elastic: how long the other workers may run on after one exited 0.
  std::chrono::milliseconds finish_timeout{30000};
};

// Returns the launcher's exit code: 0 if all exited 0; the first failed worker's exit_code_of();
// 128 + signal if the launcher was asked to stop by a signal before any worker failed.
// Elastic: 0 if at least one worker exited 0 (and no stop signal came), else as above.
int supervise(std::vector<WorkerProcess> workers, SignalWatch& signals,
              const SupervisorOptions& options);

}  // namespace dtrain::launcher
