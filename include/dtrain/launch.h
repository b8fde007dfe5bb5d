// The launcher: starts and supervises the workers of one node (`dtrain launch`, docs/launch.md).
//
// launch() starts `nproc` copies of `command` with the environment of env.h, hosts the run's
// TcpStore (node 0) or checks that it can reach it (other nodes), prefixes every line a worker
// writes with "[rank R] ", and waits for the workers under this policy:
//   - all exit 0                       -> returns 0
//   - one exits non-zero or by signal  -> logs "worker rank R exited with code C" (or "killed by
//     signal SIGKILL"), sends SIGTERM to the others, SIGKILL after the grace period, and returns
//     C (or 128 + signal number)
//   - the launcher gets SIGINT/SIGTERM/SIGHUP -> forwards it to every worker, SIGKILL after the
//     grace period (or at a second signal), returns 128 + that signal number
// Elastic jobs (options.elastic, docs/elastic.md) change the second rule: a worker that fails is
// logged and the others go on (they re-form their group without it); the launcher returns 0 when
// the workers are done and at least one of them exited 0, else the first failure's code. A worker
// its group expelled (a missed heartbeat: hung or SIGSTOPped; the survivors record it in the
// store, elastic.h) is SIGKILLed within 0.5 s of the record ("worker id K was expelled by its
// group; sending SIGKILL"). Once a worker exited 0 (the job's training ended), the others get
// finish_timeout to exit, then are stopped as above (SIGTERM, SIGKILL after the grace period).
// Workers of an elastic job also get DTRAIN_ELASTIC=1, DTRAIN_MIN_WORKERS, DTRAIN_MAX_WORKERS and
// DTRAIN_ELASTIC_FIRST_ROUND (the workers the job starts with; 0 from a joining launcher);
// their DTRAIN_RANK is a worker id (unique in the job), their rank in the group comes from the
// elastic rendezvous. A launcher started later with `join` adds workers to a running elastic
// job: it connects to node 0's store (--store, DTRAIN_SECRET), takes fresh worker ids and starts
// its workers, which join the group at its next commit.
// CPU binding (options.bind, off by default): worker `local` is started bound to the
// (local mod m)-th of the m CPUs the launcher itself may run on (sched_getaffinity), as
// `mpirun --bind-to core` does; its threads inherit the binding. On a machine with fewer idle
// cores than threads this keeps each worker's communication threads on the CPU of the thread
// they wake (docs/launch.md; measured: docs/performance.md, "Ranks bound to one CPU each").
// Signals go to each worker's process group, so processes a worker started stop with it.
// Workers get /dev/null as stdin.
// Parent death: every worker gets PR_SET_PDEATHSIG = SIGKILL before it execs (and exits at once if
// the launcher died before that), so the workers die with the launcher, even a SIGKILLed one.
// The signal fires when the thread that spawned the worker ends: launch() spawns from the calling
// thread and returns only after every worker was reaped. Processes a worker starts itself are
// not covered.
// Output: the workers' lines reach out_fd / err_fd whole, never spliced with another worker's,
// with or without the prefix (a partial line is held until its newline; see docs/launch.md).
//
// launch() blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD in the calling thread while it runs (it
// reads them from a signalfd) and restores the mask when it returns; call it from the main thread
// before starting other threads, or with those signals blocked in every other thread. It also
// ignores SIGPIPE while it runs (a closed stdout must not kill the launcher); workers start
// with default signal dispositions.
#pragma once

#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "dtrain/deadline.h"

namespace dtrain {

enum class CpuBinding {
  kNone,  // workers run wherever the scheduler puts them
  kCpu,   // one CPU per worker, round-robin over the launcher's allowed CPUs
};

// "none" / "cpu" (the --bind-to flag's values); InvalidArgumentError otherwise.
CpuBinding parse_cpu_binding(const std::string& text);

struct LaunchOptions {
  int nproc = 1;      // workers on this node
  int nnodes = 1;     // nodes in the job
  int node_rank = 0;  // this node, in [0, nnodes); global rank = node_rank * nproc + local rank
  // "host:port" of the run's store. Empty (one node only) = host one on a free port of `host`.
  // Node 0 hosts it on this port; other nodes connect to it.
  std::string store_addr;
  // Address the hosted store binds. Empty = 127.0.0.1 for one node, 0.0.0.0 for several.
  std::string host;
  // Namespace of the run's keys. Empty = generated on node 0; other nodes read it from the store.
  std::string run_id;
  // Authenticates to the store. Empty = a random 128-bit hex secret (one node only: several
  // nodes must share it, so it must be given; the CLI reads DTRAIN_SECRET).
  std::string secret;
  // The worker program and its arguments; argv[0] is looked up in PATH.
  std::vector<std::string> command;
  // Passed to workers as DTRAIN_TIMEOUT_MS when set.
  std::optional<std::chrono::milliseconds> worker_timeout;
  // Passed to workers as DTRAIN_LISTEN_HOST when not empty.
  std::string listen_host;
  bool prefix_output = true;  // "[rank R] " before every line; off = bytes pass through
  // How long stopping workers get between SIGTERM (or the forwarded signal) and SIGKILL.
  std::chrono::milliseconds grace_period{10000};
  // Bound on connecting to (and reading the run id from) node 0's store.
  std::chrono::milliseconds store_timeout = kDefaultTimeout;
  // After the last worker exited, how long to wait for output still held by its children.
  std::chrono::milliseconds drain_timeout{1000};
  // Elastic: how long the other workers may run on after one exited 0 (see above).
  std::chrono::milliseconds finish_timeout{30000};
  // Elastic job (see above). min_workers / max_workers: 0 = 1 / nnodes * nproc.
  bool elastic = false;
  int min_workers = 0;
  int max_workers = 0;
  bool join = false;  // elastic only: add this launcher's workers to a running job
  CpuBinding bind = CpuBinding::kNone;  // see "CPU binding" above
  int out_fd = STDOUT_FILENO;           // where the workers' stdout goes (prefixed)
  int err_fd = STDERR_FILENO;           // where the workers' stderr goes (prefixed)
};

// Runs the job of this node as described above and returns the exit code for the launcher.
// Throws InvalidArgumentError (bad options; several nodes without a secret), NotFoundError (the
// command is not an executable file, or not in PATH), IoError (a pipe, spawn or bind failed),
// TimeoutError / UnauthenticatedError (node > 0 cannot reach node 0's store) before any worker
// starts; once workers run, faults are reported through the return value and the log.
int launch(const LaunchOptions& options);

// Checks options without side effects; InvalidArgumentError naming the bad field.
void validate_launch_options(const LaunchOptions& options);

// The elastic bounds with their defaults applied (1 and nnodes * nproc).
int min_workers(const LaunchOptions& options);
int max_workers(const LaunchOptions& options);

}  // namespace dtrain
