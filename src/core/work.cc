#include "dtrain/work.h"

namespace dtrain {

void Work::wait(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_until(lock, deadline.when(), [&] { return state_ != State::kPending; })) {
    throw TimeoutError(what_ + ": not finished before the deadline");
  }
  if (state_ == State::kFailed) throw_error(code_, message_);
}

bool Work::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_ != State::kPending;
}

Work::State Work::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

std::optional<ErrorCode> Work::error_code() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ != State::kFailed) return std::nullopt;
  return code_;
}

std::string Work::error_message() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return message_;
}

void Work::mark_done() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::kDone;
  }
  cv_.notify_all();
}

void Work::mark_failed(ErrorCode code, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::kFailed;
    code_ = code;
    message_ = message;
  }
  cv_.notify_all();
}

}  // namespace dtrain
