// Running the benchmark's peer executables as child processes, with a bound on their run time.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace dtrain::bench {

struct ProcessResult {
  int exit_code = -1;      // the child's exit status; -1 if it was killed by a signal
  bool timed_out = false;  // it ran past the timeout and was killed (SIGKILL to its group)
  std::string out;         // everything it wrote on stdout (stderr passes through to ours)
};

// Starts argv[0] (looked up on PATH if it has no '/') with this process's environment plus
// `env_overrides`, stdin from /dev/null, stdout captured, stderr inherited, in its own process
// group. Waits for it to exit, at most `timeout`. Throws IoError if it cannot be started
// (e.g. the executable is missing).
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env_overrides,
                          std::chrono::seconds timeout);

// The absolute path of `name` found on PATH, or "" if none is executable.
std::string find_on_path(const std::string& name);

// The folder of the running executable (/proc/self/exe), or "" if unknown.
std::string executable_dir();

}  // namespace dtrain::bench
