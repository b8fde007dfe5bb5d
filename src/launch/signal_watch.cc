#include "launch/signal_watch.h"

#include <pthread.h>
#include <string.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <string>

#include "dtrain/error.h"

namespace dtrain::launcher {

SignalWatch::SignalWatch(std::initializer_list<int> signals) {
  sigemptyset(&watched_);
  for (int sig : signals) sigaddset(&watched_, sig);
  pthread_sigmask(SIG_BLOCK, &watched_, &previous_);
  int fd = ::signalfd(-1, &watched_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    throw IoError(std::string("signalfd: ") + ::strerrordesc_np(err));
  }
  fd_ = UniqueFd(fd);
}

SignalWatch::~SignalWatch() {
  take();  // a signal left pending would be delivered, with its default action, on unblocking
  fd_.reset();
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
