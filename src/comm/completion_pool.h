// CompletionPool: threads that finish point-to-point operations.
//
// A p2p operation is posted to the transport on the caller's thread and then handed here to be
// waited on. A wait may block until the peer posts its matching operation, and that may happen
// only after a later operation of this rank is posted, so no task may ever wait behind another:
// the pool starts a new thread whenever no thread is idle (threads then stay for reuse until the
// pool is destroyed). The number of threads is the largest number of p2p operations that were
// ever in flight at once.
//
// Thread safety: run() from any thread. The destructor joins every thread; tasks must finish by
// themselves (each is bounded by its deadline, or woken by an abort).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dtrain {

class CompletionPool {
 public:
  CompletionPool() = default;
  ~CompletionPool();
  CompletionPool(const CompletionPool&) = delete;
  CompletionPool& operator=(const CompletionPool&) = delete;

  void run(std::function<void()> task);

 private:
  void worker();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mutex_)
  std::vector<std::thread> threads_;         // GUARDED_BY(mutex_)
  int idle_ = 0;                             // GUARDED_BY(mutex_)
  bool stop_ = false;                        // GUARDED_BY(mutex_)
};

}  // namespace dtrain
