// Work: the handle an asynchronous operation returns.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "dtrain/deadline.h"
#include "dtrain/error.h"

namespace dtrain {

class Work {
 public:
  enum class State { kPending, kDone, kFailed };

  explicit Work(std::string what = {}) : what_(std::move(what)) {}

  // Blocks until the operation finishes or the deadline passes.
  // Throws the operation's own typed error if it failed, TimeoutError if the deadline passed first
  // (the operation itself goes on; abort the communicator to cancel it).
  void wait(Deadline deadline);
  bool done() const;  // finished, successfully or not; never blocks
  State state() const;
  // The failure, if it failed: code and message.
  std::optional<ErrorCode> error_code() const;
  std::string error_message() const;
  const std::string& what() const { return what_; }

  // Called once by the executor that ran the operation.
  void mark_done();
  void mark_failed(ErrorCode code, const std::string& message);

 private:
  const std::string what_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  State state_ = State::kPending;             // GUARDED_BY(mutex_)
  ErrorCode code_ = ErrorCode::kInternal;     // GUARDED_BY(mutex_)
  std::string message_;                       // GUARDED_BY(mutex_)
};

}  // namespace dtrain
