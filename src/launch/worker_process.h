// Starting one worker process and describing how it ended.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "launch/unique_fd.h"

namespace dtrain::launcher {

struct WorkerSpec {
  int rank = 0;                   // global rank (for messages and the output prefix)
  std::string path;               // executable file (resolve_executable)
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value" entries: the whole environment
  int cpu = -1;                   // >= 0: the worker starts bound to this CPU alone
};

struct WorkerProcess {
  int rank = 0;
  pid_t pid = -1;  // also the id of the worker's own process group
  UniqueFd out;    // read end of the worker's stdout (non-blocking)
  UniqueFd err;    // read end of the worker's stderr (non-blocking)
};

// The executable that execvp would run for `name`: `name` itself when it holds a '/', else the
// first executable regular file `dir/name` over the ':'-separated `path_env` (empty = "/usr/bin:
// /bin"). NotFoundError naming the command otherwise.
std::string resolve_executable(const std::string& name, const std::string& path_env);

// The exit code of a worker that found, before exec, that its launcher had already died.
inline constexpr int kOrphanedExitCode = 126;

// Starts the worker in its own process group, with stdin from /dev/null, stdout and stderr into
// fresh pipes, an empty signal mask, default signal dispositions and, with spec.cpu >= 0, bound
// to that CPU (before exec, so its every thread is). Returns once the child exec'd.
//
// Parent death: the child gets PR_SET_PDEATHSIG = SIGKILL before exec, so it dies when the
// thread that called spawn_worker ends or the launcher process dies, even by SIGKILL; a child
// whose launcher died before the prctl sees getppid() changed and exits kOrphanedExitCode
// without exec'ing. Call it from a thread that outlives the worker (launch() does: it spawns and
// supervises in the caller's thread and returns only after every worker was reaped). Processes
// the worker starts itself are not covered (they are not the launcher's children).
//
// The child is started as posix_spawn does it (clone with CLONE_VM | CLONE_VFORK: no copy of the
// launcher's memory, the caller waits only for the exec), because posix_spawn cannot run the
// prctl. IoError if it cannot start (pipes, clone, a CPU outside the allowed set: "cannot bind
// worker rank R to CPU C", exec).
WorkerProcess spawn_worker(const WorkerSpec& spec);

// Sends `sig` to the worker's process group (the worker and whatever it started); false if the
// group is gone.
bool signal_worker(const WorkerProcess& worker, int sig);

// "SIGKILL" for 9; "signal N" for a number without a name.
std::string signal_name(int sig);
// From a waitpid status: "exited with code 3", "killed by signal SIGKILL".
std::string describe_exit(int wait_status);
// From a waitpid status: the exit code, or 128 + the signal number (as a shell reports it).
int exit_code_of(int wait_status);

}  // namespace dtrain::launcher
