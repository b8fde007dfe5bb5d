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

// Starts the worker in its own process group, with stdin from /dev/null, stdout and stderr into
// fresh pipes, an empty signal mask and default signal dispositions. IoError if it cannot start.
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
