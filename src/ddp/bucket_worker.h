// BucketWorker: the DDP-owned thread that runs blocking bucket reductions in FIFO order.
//
// Note [compressed buckets off the autograd thread]
// GradientCompressor::allreduce blocks (encode, one or more collectives, decode). Calling it from
// an autograd hook would stall backward until the bucket is averaged, losing the overlap of
// communication with the rest of backward. Instead the hook submits the bucket here and returns;
// one worker thread runs the jobs in submission order. Because every rank submits the same
// buckets in the same order (index order, Note [DDP launch order] in ddp.cc), the collectives
// inside the jobs are issued in the same order on every rank. While a compressed step is in
// flight, every bucket of that step (compressed or dense) goes through this queue, so no other
// thread interleaves collectives with them.
//
// Thread safety: submit() may be called from any thread; jobs run on the worker thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "dtrain/work.h"

namespace dtrain::ddp {

class BucketWorker {
 public:
  BucketWorker();
  // Lets queued jobs finish (each is bounded by the communicator's timeout), then joins.
  ~BucketWorker();
  BucketWorker(const BucketWorker&) = delete;
  BucketWorker& operator=(const BucketWorker&) = delete;

  // Queues `job`; the returned Work completes when it has run: done, or failed with the typed
  // error it threw (any other exception becomes an internal error).
  std::shared_ptr<Work> submit(std::function<void()> job, std::string what);

 private:
  struct Job {
    std::function<void()> run;
    std::shared_ptr<Work> work;
  };
  void loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // GUARDED_BY(mutex_)
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  std::thread thread_;     // the worker: runs queue_ front to back
};

}  // namespace dtrain::ddp
