#include "launch/worker_process.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

// The child's stack between clone and exec (a few system calls; glibc's posix_spawn uses less).
constexpr size_t kChildStackBytes = 64 * 1024;

// `fd` moved to a number >= 3 (close-on-exec), so the child's dup2 onto 0, 1 and 2 never
// overwrites another of its sources (the launcher may run with a standard fd closed).
UniqueFd above_stdio(int fd) {
  if (fd > STDERR_FILENO) return UniqueFd(fd);
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  int err = errno;
  ::close(fd);
  if (moved < 0) throw IoError("fcntl(F_DUPFD_CLOEXEC): " + errno_text(err));
  return UniqueFd(moved);
}

void make_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw IoError("pipe2: " + errno_text(errno));
  read_end = above_stdio(fds[0]);
  write_end = above_stdio(fds[1]);
}

// What the child reports when it _exits instead of exec'ing.
struct ChildFailure {
  enum Stage : int { kNone, kSetup, kBind, kExec } stage = kNone;
  int err = 0;
};

// What the child needs between clone and exec, all prepared by the parent. The child shares the
// parent's memory (CLONE_VM) and runs while the parent waits (CLONE_VFORK), as in posix_spawn: it
// may only make system calls (no allocation, no locks: another thread may have held one), and it
// reports a failure through `failure`, which the parent reads once clone returned.
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int stdin_fd = -1;  // these three are >= 3 and close-on-exec
  int stdout_fd = -1;
  int stderr_fd = -1;
  pid_t launcher = 0;  // the process that clones
  bool bind = false;   // sched_setaffinity(cpus) before exec
  cpu_set_t cpus{};
  ChildFailure failure;  // written by the child only
};

[[noreturn]] void child_fail(ChildPlan& plan, ChildFailure::Stage stage, int err) {
  plan.failure = ChildFailure{stage, err};
  ::_exit(127);
}

// The child's side of spawn_worker (contract in worker_process.h). Runs with every signal
// blocked (the parent blocked them for the clone); a handler of the launcher must not run here.
int run_child(void* arg) {
  ChildPlan& plan = *static_cast<ChildPlan*>(arg);
  struct sigaction defaults;
  std::memset(&defaults, 0, sizeof(defaults));
  defaults.sa_handler = SIG_DFL;
  sigemptyset(&defaults.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &defaults, nullptr);
  }
  if (::setpgid(0, 0) != 0) child_fail(plan, ChildFailure::kSetup, errno);
  // Die with the launcher. PDEATHSIG fires when the thread that cloned ends; a launcher that died
  // before this prctl left us re-parented already, which getppid() tells.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(plan, ChildFailure::kSetup, errno);
  if (::getppid() != plan.launcher) ::_exit(kOrphanedExitCode);
  if (::dup2(plan.stdin_fd, STDIN_FILENO) < 0 || ::dup2(plan.stdout_fd, STDOUT_FILENO) < 0 ||
      ::dup2(plan.stderr_fd, STDERR_FILENO) < 0) {
    child_fail(plan, ChildFailure::kSetup, errno);
  }
  // Bound before exec, so every thread the worker starts inherits the binding.
  if (plan.bind && ::sched_setaffinity(0, sizeof(plan.cpus), &plan.cpus) != 0) {
    child_fail(plan, ChildFailure::kBind, errno);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.path, plan.argv, plan.envp);
  child_fail(plan, ChildFailure::kExec, errno);
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
  for (const UniqueFd* fd : {&worker.out, &worker.err}) {
    ::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) throw IoError("cannot open /dev/null: " + errno_text(errno));
  UniqueFd dev_null = above_stdio(null_fd);

  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ChildPlan plan;
  plan.path = spec.path.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.stdin_fd = dev_null.get();
  plan.stdout_fd = out_write.get();
  plan.stderr_fd = err_write.get();
  plan.launcher = ::getpid();
  if (spec.cpu >= 0) {
    plan.bind = true;
    CPU_ZERO(&plan.cpus);
    if (spec.cpu < CPU_SETSIZE) CPU_SET(spec.cpu, &plan.cpus);
  }
  std::vector<char> stack(kChildStackBytes);

  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  // Returns once the child exec'd or _exited (CLONE_VFORK); runs no atfork handler.
  worker.pid =
      ::clone(run_child, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (worker.pid < 0) {
    throw IoError("cannot start worker rank " + std::to_string(spec.rank) +
                  ": clone: " + errno_text(clone_errno));
  }
  if (plan.failure.stage != ChildFailure::kNone) {
    ::waitpid(worker.pid, nullptr, 0);  // it has _exited
    if (plan.failure.stage == ChildFailure::kBind) {
      throw IoError("cannot bind worker rank " + std::to_string(spec.rank) + " to CPU " +
                    std::to_string(spec.cpu) + ": " + errno_text(plan.failure.err));
    }
    throw IoError("cannot start worker rank " + std::to_string(spec.rank) + " ('" + spec.path +
                  "'): " + errno_text(plan.failure.err));
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
