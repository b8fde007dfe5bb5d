#include "launch/child_process.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/child_wait.h"

extern char** environ;

namespace dtrain::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "dtrain_launch_XXXXXX").string();
  char* made = ::mkdtemp(pattern.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

namespace {

// Creates a fresh file "<dir>/<what>_XXXXXX"; returns its fd and sets `path`.
int make_temp_file(const std::filesystem::path& dir, const std::string& what,
                   std::filesystem::path& path) {
  std::string name = (dir / (what + "_XXXXXX")).string();
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("mkstemp failed in " + dir.string());
  path = name;
  return fd;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& dir,
                           const std::vector<std::string>& env) {
  int out = make_temp_file(dir, "out", out_path_);
  int err = make_temp_file(dir, "err", err_path_);
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  for (const auto& e : env) envs.push_back(e);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : envs) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  started_ = std::chrono::steady_clock::now();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out, 1);
    ::dup2(err, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(err);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

ChildResult ChildProcess::wait(std::chrono::milliseconds limit) {
  ChildResult result;
  int status = 0;
  if (!reap_or_kill(pid_, status, limit)) {
    ADD_FAILURE() << "child " << pid_ << " still running after " << limit.count() << " ms";
  }
  pid_ = -1;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  result.wait_status = status;
  result.exited = WIFEXITED(status);
  result.exit_code = result.exited ? WEXITSTATUS(status) : -1;
  result.out = read_file(out_path_);
  result.err = read_file(err_path_);
  return result;
}

std::string ChildProcess::out_so_far() const {
  return read_file(out_path_);
}
std::string ChildProcess::err_so_far() const {
  return read_file(err_path_);
}

std::string dtrain_binary() {
  return std::string(DTRAIN_BINARY_DIR) + "/dtrain";
}

ChildResult run_dtrain(const std::vector<std::string>& args, const std::filesystem::path& dir,
                       std::chrono::milliseconds limit, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {dtrain_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess child(argv, dir, env);
  return child.wait(limit);
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace dtrain::testing
