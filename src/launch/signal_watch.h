// SignalWatch: receives chosen signals through a file descriptor instead of handlers.
//
// While a SignalWatch lives, its signals are blocked in the calling thread and arrive on fd()
// (a non-blocking signalfd) for poll(). Threads started afterwards inherit the blocked mask, so
// the signals are not consumed by them. The destructor discards signals still pending and
// restores the thread's previous mask. Process-directed signals reach the signalfd only when
// every thread blocks them: construct it before starting threads. Threads that already run (a
// BLAS pool started while libraries load) may not block them, so the watch also installs a
// handler that redirects a signal delivered to such a thread to the watching thread (one
// SignalWatch per process at a time); the previous dispositions come back in the destructor.
//
// ScopedIgnore: sets a signal's disposition to SIG_IGN for its lifetime (SIGPIPE while writing to
// a stdout that may be closed).
#pragma once

#include <signal.h>

#include <initializer_list>
#include <vector>

#include "launch/unique_fd.h"

namespace dtrain::launcher {

class SignalWatch {
 public:
  explicit SignalWatch(std::initializer_list<int> signals);  // IoError if signalfd fails
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  int fd() const { return fd_.get(); }
  // The signals received since the last call, in arrival order; never blocks.
  std::vector<int> take();

 private:
  sigset_t watched_;
  sigset_t previous_;
  std::vector<std::pair<int, struct sigaction>> previous_actions_;
  UniqueFd fd_;
};

class ScopedIgnore {
 public:
  explicit ScopedIgnore(int sig);
  ~ScopedIgnore();
  ScopedIgnore(const ScopedIgnore&) = delete;
  ScopedIgnore& operator=(const ScopedIgnore&) = delete;

 private:
  int sig_;
  struct sigaction previous_;
};

}  // namespace dtrain::launcher
