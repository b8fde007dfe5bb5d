// Deadlines for every blocking call.
//
// A Deadline is an absolute point on the steady clock. Blocking APIs take a Deadline (not a
// duration) so that a call made of several waits shares one budget. There is deliberately no
// "wait forever": the longest deadline a caller can build is after(duration).
#pragma once

#include <algorithm>
#include <chrono>
#include <string>

namespace dtrain {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static Deadline after(std::chrono::milliseconds duration) { return Deadline(Clock::now() + duration); }
  static Deadline at(Clock::time_point when) { return Deadline(when); }

  Clock::time_point when() const { return when_; }
  bool expired() const { return Clock::now() >= when_; }
  // Time left, never negative.
  std::chrono::milliseconds remaining() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(when_ - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
  }
  // The earlier of this deadline and `now + cap` (for polling loops that must wake up).
  Deadline capped(std::chrono::milliseconds cap) const {
    return Deadline(std::min(when_, Clock::now() + cap));
  }
  // Throws TimeoutError("<what> timed out after ...") if expired.
  void check(const std::string& what) const;

 private:
  explicit Deadline(Clock::time_point when) : when_(when) {}
  Clock::time_point when_;
};

// Default timeouts; every one can be overridden through options structs.
inline constexpr std::chrono::milliseconds kDefaultTimeout{30000};

}  // namespace dtrain
