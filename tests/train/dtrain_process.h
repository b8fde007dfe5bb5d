// The built dtrain binary (DTRAIN_BINARY_DIR/dtrain) run by the train tests: as a process of its
// own whose output goes to a file (DtrainProcess: the test watches it, signals it or its workers
// and waits for it with a deadline), or as a shell command run to its end with its output
// captured (run_dtrain, run_command).
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/child_wait.h"

extern char** environ;

namespace dtrain::testing {

inline std::string dtrain_binary() {
  return std::string(DTRAIN_BINARY_DIR) + "/dtrain";
}

// The whole text of `path`; "" when it cannot be read.
inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits (checking every 20 ms, at most `limit`) until the file `path` holds `text`; false if it
// did not in time.
inline bool wait_for_text(const std::filesystem::path& path, const std::string& text,
                          std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (slurp(path).find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// `dtrain ARGS...` with stdout and stderr into one file `out`, stdin from /dev/null, and the
// test's environment plus `extra_env` ("NAME=value"). SIGKILLed and reaped on destruction if it
// still runs.
class DtrainProcess {
 public:
  DtrainProcess(const std::vector<std::string>& args, const std::filesystem::path& out,
                const std::vector<std::string>& extra_env = {})
      : out_(out) {
    std::vector<std::string> argv = {dtrain_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> cenv;
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawn(&pid_, cargv[0], &actions, nullptr, cargv.data(), cenv.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~DtrainProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  DtrainProcess(const DtrainProcess&) = delete;
  DtrainProcess& operator=(const DtrainProcess&) = delete;

  // -1 when it could not be started.
  pid_t pid() const { return pid_; }
  // What it has written so far.
  std::string output() const { return slurp(out_); }
  // Its wait status, or -1 when it did not end within `limit` (it runs on) or never started.
  int wait_status(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    int status = 0;
    reaped_ = reap_within(pid_, status, limit);
    return reaped_ ? status : -1;
  }
  // Its exit code (128 + the signal's number when a signal ended it), or -1 as wait_status.
  int wait(std::chrono::milliseconds limit) {
    int status = wait_status(limit);
    if (status == -1) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::filesystem::path out_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// The children of `parent` (from /proc), each with the DTRAIN_RANK of its environment (-1 if it
// has none).
inline std::vector<std::pair<pid_t, int>> children_of(pid_t parent) {
  std::vector<std::pair<pid_t, int>> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = slurp(entry.path() / "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::string env = slurp(entry.path() / "environ");
    std::smatch m;
    int rank = -1;
    if (std::regex_search(env, m, std::regex(std::string("DTRAIN_RANK=(\\d+)") + '\0'))) {
      rank = std::stoi(m[1]);
    }
    found.emplace_back(std::stoi(name), rank);
  }
  return found;
}

// A command run to its end: its exit code (-1 when it did not exit normally or did not start)
// and what it wrote to its stdout.
struct CommandOutput {
  int code = -1;
  std::string text;
};

// Starts the shell command line `command` (popen); its stdout comes through the returned pipe
// (null when it could not start).
inline FILE* start_command(const std::string& command) {
  return popen(command.c_str(), "r");
}

// Starts `dtrain ARGS` with stdout and stderr into the returned pipe.
inline FILE* start_dtrain(const std::string& args) {
  return start_command(dtrain_binary() + " " + args + " 2>&1");
}

// Reads a started command's output to the end and waits for it.
inline CommandOutput finish_command(FILE* pipe) {
  CommandOutput out;
  if (!pipe) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.text.append(buf, n);
  int status = pclose(pipe);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

inline CommandOutput run_command(const std::string& command) {
  return finish_command(start_command(command));
}

// `dtrain ARGS` with stdout and stderr captured.
inline CommandOutput run_dtrain(const std::string& args) {
  return finish_command(start_dtrain(args));
}

}  // namespace dtrain::testing
