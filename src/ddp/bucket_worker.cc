#include "ddp/bucket_worker.h"

#include <exception>

#include "dtrain/error.h"

namespace dtrain::ddp {

BucketWorker::BucketWorker() : thread_([this] { loop(); }) {}

BucketWorker::~BucketWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Work> BucketWorker::submit(std::function<void()> job, std::string what) {
  auto work = std::make_shared<Work>(std::move(what));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Job{std::move(job), work});
  }
  cv_.notify_one();
  return work;
}

void BucketWorker::loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job.run();
      job.work->mark_done();
    } catch (const Error& e) {
      job.work->mark_failed(e.code(), e.what());
    } catch (const std::exception& e) {
      job.work->mark_failed(ErrorCode::kInternal, e.what());
    }
  }
}

}  // namespace dtrain::ddp
