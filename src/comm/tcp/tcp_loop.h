// TcpLoop: the event-loop thread of dtrain's TCP transport ("dtrain-tcp-loop"), one epoll set
// shared by a transport and every transport split() from it.
//
// Handlers are registered with a file descriptor and an interest set; the loop calls
// on_events() for each readiness event, and on_events(EPOLLIN) for a handler that schedule()d
// itself (work that is pending without new bytes on the socket), at once or at a given time. A
// handler is kept alive by the loop (shared_ptr) while it is registered and while one of its calls
// runs; remove() takes it out of epoll and the map at once, so no call starts after remove()
// returns (one that already started may still be running: handlers lock their own state).
//
// Scheduling: the thread puts itself under SCHED_BATCH (when asked) and at a nice value, for the
// reasons CommOptions::progress_thread_batch gives.
//
// Thread safety: add/modify/remove/schedule from any thread, including handlers on the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace dtrain::tcp {

class LoopHandler {
 public:
  virtual ~LoopHandler() = default;
  virtual void on_events(uint32_t events) = 0;  // EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP bits
};

struct TcpLoopOptions {
  bool batch = true;  // SCHED_BATCH for the loop thread
  int nice = 0;       // 0: unchanged
};

class TcpLoop {
 public:
  // Starts the thread. IoError if epoll or eventfd cannot be created.
  explicit TcpLoop(TcpLoopOptions options);
  ~TcpLoop();  // stops and joins the thread; must not run on the loop thread
  TcpLoop(const TcpLoop&) = delete;
  TcpLoop& operator=(const TcpLoop&) = delete;

  // Registers `handler` for `events` on `fd`; returns its id. IoError if epoll refuses.
  uint64_t add(std::shared_ptr<LoopHandler> handler, int fd, uint32_t events);
  // Changes the interest set of a registered handler (no-op if removed).
  void modify(uint64_t id, int fd, uint32_t events);
  void remove(uint64_t id, int fd);
  // Calls handler `id`'s on_events(EPOLLIN) from the loop soon (no-op if removed).
  void schedule(uint64_t id);
  // The same at `when` (steady clock), or soon after.
  void schedule_at(uint64_t id, std::chrono::steady_clock::time_point when);

  // What setting the thread's scheduling reported ("" when it worked or nothing was asked).
  std::string scheduling_error() const;

 private:
  void run();
  std::shared_ptr<LoopHandler> find(uint64_t id);

  const TcpLoopOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, std::shared_ptr<LoopHandler>> handlers_;    // GUARDED_BY(mutex_)
  std::vector<uint64_t> scheduled_;                                        // GUARDED_BY(mutex_)
  std::multimap<std::chrono::steady_clock::time_point, uint64_t> timers_;  // GUARDED_BY(mutex_)
  uint64_t next_id_ = 1;                                                   // GUARDED_BY(mutex_)
  bool stop_ = false;                                                      // GUARDED_BY(mutex_)
  std::string scheduling_error_;                                           // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace dtrain::tcp
