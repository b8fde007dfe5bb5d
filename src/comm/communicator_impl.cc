#include "comm/communicator_impl.h"

#include <pthread.h>

#include <chrono>

namespace dtrain {

Communicator::Impl::Impl(std::unique_ptr<Transport> transport, const CommOptions& options)
    : options_(options), transport_(std::move(transport)) {
  if (options_.post_descriptors_ahead && options_.verify_collectives && transport_->size() > 1) {
    descriptor_window_ = std::make_unique<algorithms::DescriptorWindow>();
  }
  executor_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "dtrain-comm-exec");
    executor_loop();
  });
}

Communicator::Impl::~Impl() {
  bool pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending = unfinished_ > 0;
  }
  if (pending) abort("communicator destroyed with operations pending");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  executor_.join();
}

std::shared_ptr<Work> Communicator::Impl::submit(std::string what, CollectiveFn fn, bool sync) {
  auto work = std::make_shared<Work>(std::move(what));
  Task task{work, std::move(fn), 0};
  size_t ahead;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (aborted_) {
      work->mark_failed(ErrorCode::kAborted, "communicator aborted: " + abort_reason_);
      return work;
    }
    task.seq = next_seq_++;
    ++unfinished_;
    if (sync && queue_.empty() && !running_) {
      running_ = true;
      lock.unlock();
      run_task(task);
      lock.lock();
      running_ = false;
      if (!queue_.empty()) cv_.notify_all();
      return work;
    }
    ahead = queue_.size() + (running_ ? 1 : 0);
    queue_.push_back(std::move(task));
  }
  cv_.notify_all();
  if (sync) {
    // Each operation ahead is bounded by its own timeout once it starts.
    auto bound = options_.timeout * static_cast<int64_t>(ahead + 1) + std::chrono::seconds(5);
    try {
      work->wait(Deadline::after(std::chrono::duration_cast<std::chrono::milliseconds>(bound)));
    } catch (const Error&) {
      // The error is in the Work; the caller rethrows it from there.
    }
  }
  return work;
}

void Communicator::Impl::executor_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return (!queue_.empty() && !running_) || (stop_ && queue_.empty()); });
    if (queue_.empty()) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    run_task(task);
    lock.lock();
    running_ = false;
  }
}

void Communicator::Impl::run_task(Task& task) {
  auto start = std::chrono::steady_clock::now();
  algorithms::CollectiveContext context{*transport_,     task.seq,
                                        Deadline::after(options_.timeout),
                                        scratch_,        bytes_sent_,
                                        bytes_received_, kSegmentBytes,
                                        options_.small_allreduce_bytes};
  context.descriptor_window = descriptor_window_.get();
  auto failure = guarded([&] {
    check_usable();
    task.fn(context);
  });
  // Stats first: a caller that saw the Work finish also sees it counted.
  record(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  finish(*task.work, failure);
}

std::optional<Communicator::Impl::Failure> Communicator::Impl::guarded(
    const std::function<void()>& body) {
  try {
    body();
    return std::nullopt;
  } catch (const Error& e) {
    return fail(e.code(), e.what());
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInternal, std::string("internal error: ") + e.what());
  }
}

void Communicator::Impl::finish(Work& work, const std::optional<Failure>& failure) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --unfinished_;
  }
  if (failure) {
    work.mark_failed(failure->code, failure->message);
  } else {
    work.mark_done();
  }
}

Communicator::Impl::Failure Communicator::Impl::fail(ErrorCode code, const std::string& message) {
  Failure out{code, message};
  bool newly_broken = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (aborted_) {
      out = {ErrorCode::kAborted, "communicator aborted: " + abort_reason_};
    } else if (broken_) {
      if (message != broken_message_) {
        out = {broken_code_, "communicator broken by an earlier failure: " + broken_message_};
      }
    } else if (code != ErrorCode::kMismatch && code != ErrorCode::kInvalidArgument) {
      broken_ = true;
      broken_code_ = code;
      broken_message_ = message;
      newly_broken = true;
    }
  }
  // Propagate: closing our connections makes every peer's pending operation fail at once.
  if (newly_broken) transport_->abort(message);
  return out;
}

void Communicator::Impl::check_usable() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (aborted_) throw AbortedError("communicator aborted: " + abort_reason_);
  if (broken_) throw_error(broken_code_, "communicator broken by an earlier failure: " + broken_message_);
}

void Communicator::Impl::abort(const std::string& reason) {
  std::deque<Task> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (aborted_) return;
    aborted_ = true;
    abort_reason_ = reason;
    dropped.swap(queue_);
  }
  transport_->abort(reason);
  for (auto& task : dropped) finish(*task.work, Failure{ErrorCode::kAborted, "communicator aborted: " + reason});
  cv_.notify_all();
}

bool Communicator::Impl::aborted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return aborted_;
}

void Communicator::Impl::record(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++operations_;
  seconds_ += seconds;
}

CommStats Communicator::Impl::stats() const {
  CommStats s;
  s.bytes_sent = bytes_sent_.load();
  s.bytes_received = bytes_received_.load();
  std::lock_guard<std::mutex> lock(mutex_);
  s.operations = operations_;
  s.seconds_in_operations = seconds_;
  return s;
}

std::string Communicator::Impl::next_split_key(const std::vector<int>& ranks) {
  std::string key;
  for (int r : ranks) key += (key.empty() ? "" : ",") + std::to_string(r);
  std::lock_guard<std::mutex> lock(mutex_);
  return key + "/" + std::to_string(split_counts_[ranks]++);
}

uint64_t Communicator::Impl::next_p2p_number(std::map<std::pair<int, uint32_t>, uint64_t>& counters,
                                             int peer, uint32_t tag) {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters[{peer, tag}]++;
}

}  // namespace dtrain
