#include "comm/tcp/tcp_loop.h"

#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dtrain/error.h"

namespace dtrain::tcp {
namespace {

constexpr uint64_t kWakeId = 0;
constexpr int kMaxEvents = 64;

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

TcpLoop::TcpLoop(TcpLoopOptions options) : options_(options) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw IoError("tcp transport: epoll_create1 failed: " + errno_text());
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    ::close(epoll_fd_);
    throw IoError("tcp transport: eventfd failed: " + errno_text());
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    ::close(wake_fd_);
    ::close(epoll_fd_);
    throw IoError("tcp transport: epoll_ctl failed: " + errno_text());
  }
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "dtrain-tcp-loop");
}

TcpLoop::~TcpLoop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t rc = ::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

uint64_t TcpLoop::add(std::shared_ptr<LoopHandler> handler, int fd, uint32_t events) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = next_id_++;
    handlers_.emplace(id, std::move(handler));
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    std::string why = errno_text();
    std::lock_guard<std::mutex> lock(mutex_);
    handlers_.erase(id);
    throw IoError("tcp transport: epoll_ctl(ADD) failed: " + why);
  }
  return id;
}

void TcpLoop::modify(uint64_t id, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);  // ENOENT after remove(): nothing to do
}

void TcpLoop::remove(uint64_t id, int fd) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  std::shared_ptr<LoopHandler> gone;  // released outside the lock
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handlers_.find(id);
  if (it == handlers_.end()) return;
  gone = std::move(it->second);
  handlers_.erase(it);
}

void TcpLoop::schedule(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    scheduled_.push_back(id);
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t rc = ::write(wake_fd_, &one, sizeof(one));
}

void TcpLoop::schedule_at(uint64_t id, std::chrono::steady_clock::time_point when) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    timers_.emplace(when, id);
  }
  uint64_t one = 1;  // the loop recomputes its epoll timeout
  [[maybe_unused]] ssize_t rc = ::write(wake_fd_, &one, sizeof(one));
}

std::string TcpLoop::scheduling_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return scheduling_error_;
}

std::shared_ptr<LoopHandler> TcpLoop::find(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handlers_.find(id);
  return it == handlers_.end() ? nullptr : it->second;
}

void TcpLoop::run() {
  std::string error;
  sched_param param{};  // SCHED_BATCH takes priority 0; the nice value still applies
  if (options_.batch && sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
    error = "sched_setscheduler(SCHED_BATCH): " + errno_text();
  }
  errno = 0;
  if (options_.nice != 0 && setpriority(PRIO_PROCESS, 0, options_.nice) != 0) {
    error += (error.empty() ? "" : "; ") + std::string("setpriority: ") + errno_text();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    scheduling_error_ = error;
  }
  epoll_event events[kMaxEvents];
  while (true) {
    int timeout_ms = -1;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!timers_.empty()) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first -
                                                                 std::chrono::steady_clock::now());
        timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1000));
      }
    }
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a broken epoll set: every wait then ends at its deadline
    }
    std::vector<uint64_t> due;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto now = std::chrono::steady_clock::now();
      while (!timers_.empty() && timers_.begin()->first <= now) {
        due.push_back(timers_.begin()->second);
        timers_.erase(timers_.begin());
      }
    }
    for (uint64_t id : due) {
      if (auto handler = find(id)) handler->on_events(EPOLLIN);
    }
    bool woken = false;
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == kWakeId) {
        woken = true;
        continue;
      }
      if (auto handler = find(id)) handler->on_events(events[i].events);
    }
    if (!woken) continue;
    uint64_t count = 0;
    [[maybe_unused]] ssize_t rc = ::read(wake_fd_, &count, sizeof(count));
    std::vector<uint64_t> scheduled;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
      scheduled.swap(scheduled_);
    }
    for (uint64_t id : scheduled) {
      if (auto handler = find(id)) handler->on_events(EPOLLIN);
    }
  }
}

}  // namespace dtrain::tcp
