#include "launch/signal_watch.h"

#include <pthread.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include <cerrno>
#include <string>

#include "dtrain/error.h"

namespace dtrain::launcher {
namespace {

// The thread that owns the live SignalWatch. A signal handler can only reach state like this
// through a global; it is written before the handlers are installed and only read by them.
std::atomic<pid_t> g_watch_thread{0};

// Runs only in threads that do not block the watched signals: threads that existed before the
// SignalWatch (e.g. a BLAS thread pool started while shared libraries load). It redirects the
// signal to the watching thread, where it is blocked, so it stays pending there for the signalfd.
void redirect_to_watcher(int sig) {
  int saved = errno;
  pid_t tid = g_watch_thread.load();
  if (tid != 0) ::syscall(SYS_tgkill, ::getpid(), tid, sig);
  errno = saved;
}

}  // namespace

SignalWatch::SignalWatch(std::initializer_list<int> signals) {
  sigemptyset(&watched_);
  for (int sig : signals) sigaddset(&watched_, sig);
  pthread_sigmask(SIG_BLOCK, &watched_, &previous_);
  g_watch_thread.store(static_cast<pid_t>(::syscall(SYS_gettid)));
  for (int sig : signals) {
    struct sigaction redirect;
    memset(&redirect, 0, sizeof(redirect));
    redirect.sa_handler = redirect_to_watcher;
    sigfillset(&redirect.sa_mask);
    redirect.sa_flags = SA_RESTART;
    struct sigaction old;
    sigaction(sig, &redirect, &old);
    previous_actions_.emplace_back(sig, old);
  }
  int fd = ::signalfd(-1, &watched_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    for (auto& [sig, old] : previous_actions_) sigaction(sig, &old, nullptr);
    g_watch_thread.store(0);
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    throw IoError(std::string("signalfd: ") + ::strerrordesc_np(err));
  }
  fd_ = UniqueFd(fd);
}

SignalWatch::~SignalWatch() {
  take();  // a signal left pending would be delivered, with its default action, on unblocking
  fd_.reset();
  for (auto& [sig, old] : previous_actions_) sigaction(sig, &old, nullptr);
  g_watch_thread.store(0);
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

std::vector<int> SignalWatch::take() {
  std::vector<int> received;
  signalfd_siginfo info;
  while (::read(fd_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    received.push_back(static_cast<int>(info.ssi_signo));
  }
  return received;
}

ScopedIgnore::ScopedIgnore(int sig) : sig_(sig) {
  struct sigaction ignore;
  memset(&ignore, 0, sizeof(ignore));
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(sig_, &ignore, &previous_);
}

ScopedIgnore::~ScopedIgnore() {
  sigaction(sig_, &previous_, nullptr);
}

}  // namespace dtrain::launcher
