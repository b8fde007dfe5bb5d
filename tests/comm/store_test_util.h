// Helpers shared by the store tests: a temporary folder, forked child processes, elapsed time.
#pragma once

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

namespace dtrain::store_test {

// A fresh folder under the system temp folder, deleted with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dtrain_store_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Forks a child that runs `body` and _exits with its return value (98 if it threw), never
// returning into the test framework.
inline pid_t spawn_child(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int code = 97;
  try {
    code = body();
  } catch (const std::exception& e) {
    fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), e.what());
    code = 98;
  } catch (...) {
    code = 98;
  }
  ::_exit(code);
}

// The child's exit code, or -1 if it did not exit normally within `timeout` (it is then killed).
inline int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (done < 0) return -1;
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

class Stopwatch {
 public:
  std::chrono::milliseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start_);
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace dtrain::store_test
