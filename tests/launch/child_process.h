// Test helper: runs a program with its stdout and stderr captured in files, with a bound on how
// long the test waits for it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dtrain::testing {

struct ChildResult {
  int wait_status = 0;
  bool exited = false;  // WIFEXITED
  int exit_code = -1;   // WEXITSTATUS when exited
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
};

// A temporary folder removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the test's environment plus `env` ("NAME=value"); stdout and
  // stderr go to files under `dir`.
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& dir,
               const std::vector<std::string>& env = {});
  ~ChildProcess();  // SIGKILLs the child if it is still running

  pid_t pid() const { return pid_; }
  // Waits for the child; after `limit` it is SIGKILLed and the test fails.
  ChildResult wait(std::chrono::milliseconds limit);
  std::string out_so_far() const;
  std::string err_so_far() const;

 private:
  pid_t pid_ = -1;
  std::filesystem::path out_path_;
  std::filesystem::path err_path_;
  std::chrono::steady_clock::time_point started_;
};

std::string read_file(const std::filesystem::path& path);
// Waits until pred() holds, checking every 20 ms; false if `limit` passed first.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit);

// A loopback port that was free a moment ago (bind to port 0, read it, close).
uint16_t free_port();

// The dtrain binary under test.
std::string dtrain_binary();
// Runs dtrain with args in `dir` and waits for it (at most `limit`).
ChildResult run_dtrain(const std::vector<std::string>& args, const std::filesystem::path& dir,
                       std::chrono::milliseconds limit = std::chrono::seconds(20),
                       const std::vector<std::string>& env = {});

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    struct timespec ts {
      0, 20 * 1000 * 1000
    };
    nanosleep(&ts, nullptr);
  }
  return true;
}

}  // namespace dtrain::testing
