#include "launch/worker_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "dtrain/error.h"

namespace dtrain::launcher {
namespace {

bool is_executable_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string errno_text(int err) {
  const char* text = ::strerrordesc_np(err);
  return text != nullptr ? text : "error " + std::to_string(err);
}

// Owns the posix_spawn attribute objects for one spawn.
struct SpawnAttributes {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnAttributes() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnAttributes() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Binds the calling thread to one CPU until destroyed, then restores its previous CPU set: a
// child spawned meanwhile inherits the binding from its first instruction, before it can start
// any thread (binding it after posix_spawn returns would race with its start-up).
class ScopedCpuBinding {
 public:
  ScopedCpuBinding(int cpu, int rank) {
    if (cpu < 0) return;
    if (::sched_getaffinity(0, sizeof(saved_), &saved_) != 0) {
      throw IoError("sched_getaffinity: " + errno_text(errno));
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (::sched_setaffinity(0, sizeof(one), &one) != 0) {
      throw IoError("cannot bind worker rank " + std::to_string(rank) + " to CPU " +
                    std::to_string(cpu) + ": " + errno_text(errno));
    }
    active_ = true;
  }
  ~ScopedCpuBinding() {
    if (active_) ::sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  ScopedCpuBinding(const ScopedCpuBinding&) = delete;
  ScopedCpuBinding& operator=(const ScopedCpuBinding&) = delete;

 private:
  cpu_set_t saved_{};
  bool active_ = false;
};

void make_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw IoError("pipe2: " + errno_text(errno));
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
  int flags = ::fcntl(fds[0], F_GETFL);
  ::fcntl(fds[0], F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

std::string resolve_executable(const std::string& name, const std::string& path_env) {
  if (name.empty()) throw InvalidArgumentError("the worker command is empty");
  if (name.find('/') != std::string::npos) {
    if (!is_executable_file(name)) {
      throw NotFoundError("cannot execute '" + name + "': not an executable file");
    }
    return name;
  }
  std::string path = path_env.empty() ? "/usr/bin:/bin" : path_env;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    start = end + 1;
  }
  throw NotFoundError("cannot execute '" + name + "': command not found in PATH");
}

WorkerProcess spawn_worker(const WorkerSpec& spec) {
  WorkerProcess worker;
  worker.rank = spec.rank;
  UniqueFd out_write, err_write;
  make_pipe(worker.out, out_write);
  make_pipe(worker.err, err_write);

  SpawnAttributes sa;
  posix_spawn_file_actions_addopen(&sa.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&sa.actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&sa.actions, err_write.get(), STDERR_FILENO);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigfillset(&defaults);
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  posix_spawnattr_setsigmask(&sa.attr, &empty);
  posix_spawnattr_setsigdefault(&sa.attr, &defaults);
  posix_spawnattr_setpgroup(&sa.attr, 0);
  posix_spawnattr_setflags(&sa.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int rc = 0;
  {
    ScopedCpuBinding binding(spec.cpu, spec.rank);
    rc = ::posix_spawn(&worker.pid, spec.path.c_str(), &sa.actions, &sa.attr, argv.data(),
                       envp.data());
  }
  if (rc != 0) {
    throw IoError("cannot start worker rank " + std::to_string(spec.rank) + " ('" + spec.path +
                  "'): " + errno_text(rc));
  }
  return worker;
}

bool signal_worker(const WorkerProcess& worker, int sig) {
  if (worker.pid <= 0) return false;
  if (::kill(-worker.pid, sig) == 0) return true;
  // The group may not exist yet if the child has not reached setpgid; signal the process.
  return ::kill(worker.pid, sig) == 0;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  if (abbrev == nullptr) return "signal " + std::to_string(sig);
  return std::string("SIG") + abbrev;
}

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + signal_name(WTERMSIG(wait_status));
  return "ended with wait status " + std::to_string(wait_status);
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

}  // namespace dtrain::launcher
