// ElasticMonitor: the watchdog thread of one member (contract in include/dtrain/elastic.h).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "dtrain/elastic.h"
#include "dtrain/error.h"
#include "elastic/keys.h"

namespace dtrain {

using namespace elastic;
using Clock = Deadline::Clock;

ElasticMonitor::ElasticMonitor(ElasticRendezvous rendezvous, const Membership& membership,
                               Communicator* comm, MonitorOptions options)
    : rendezvous_(std::move(rendezvous)), membership_(membership), comm_(comm), options_(options) {
  if (comm_ == nullptr) throw InvalidArgumentError("elastic monitor: no communicator");
  if (membership_.world < 1 || membership_.rank < 0 || membership_.rank >= membership_.world) {
    throw InvalidArgumentError("elastic monitor: rank " + std::to_string(membership_.rank) +
                               " outside a world of " + std::to_string(membership_.world));
  }
  if (options_.poll.count() <= 0 || options_.heartbeat_interval.count() <= 0 ||
      options_.heartbeat_timeout.count() <= 0 || options_.store_timeout.count() <= 0) {
    throw InvalidArgumentError("elastic monitor: every interval and timeout must be positive");
  }
  thread_ = std::thread([this] { run(); });
}

ElasticMonitor::~ElasticMonitor() {
  stop();
}

void ElasticMonitor::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ElasticMonitor::fired() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fired_;
}

std::optional<std::string> ElasticMonitor::reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reason_;
}

void ElasticMonitor::fire(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;  // stopped meanwhile: the owner no longer wants the abort
    reason_ = reason;       // set before the abort, so a failed operation can ask why
  }
  spdlog::warn("{}", reason);
  comm_->abort(reason);
  std::lock_guard<std::mutex> lock(mutex_);
  fired_ = true;
}

std::optional<std::string> ElasticMonitor::heartbeat(std::vector<int64_t>& last_seen,
                                                     std::vector<Clock::time_point>& changed_at) {
  const int64_t round = membership_.round;
  const auto& keys = rendezvous_.keys();
  Deadline deadline = Deadline::after(options_.store_timeout);
  keys->add(heartbeat_key(round, membership_.rank), 1, deadline);
  for (int k = 0; k < membership_.world; ++k) {
    if (k == membership_.rank) continue;
    auto value = keys->try_get(heartbeat_key(round, k), deadline);
    int64_t beats = value ? parse_value(heartbeat_key(round, k), *value) : -1;
    auto now = Clock::now();
    if (beats != last_seen[k]) {
      last_seen[k] = beats;
      changed_at[k] = now;
    } else if (now - changed_at[k] >= options_.heartbeat_timeout) {
      double seconds = std::chrono::duration<double>(now - changed_at[k]).count();
      if (static_cast<size_t>(k) < membership_.worker_ids.size()) {
        rendezvous_.expel(membership_.worker_ids[k], round, deadline);
      }
      rendezvous_.advance(round, deadline);
      return fmt::format("elastic: rank {} missed its heartbeat for {:.1f} s", k, seconds);
    }
  }
  return std::nullopt;
}

void ElasticMonitor::run() {
  const int64_t round = membership_.round;
  const int world = membership_.world;
  std::vector<int64_t> last_seen(world, -1);
  std::vector<Clock::time_point> changed_at(world, Clock::now());
  auto next_beat = Clock::now();
  bool failing = false;  // inside a streak of store errors (logged once)
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    std::optional<std::string> reason;
    try {
      auto value = rendezvous_.keys()->try_get(kRoundKey, Deadline::after(options_.store_timeout));
      if (failing) {
        spdlog::info("elastic monitor: the store answers again");
        // Time without answers says nothing about the other members: restart their clocks.
        std::fill(changed_at.begin(), changed_at.end(), Clock::now());
        failing = false;
      }
      if (value && parse_value(kRoundKey, *value) > round) {
        reason = "elastic: group re-forming (round " + *value + ")";
      } else if (Clock::now() >= next_beat) {
        next_beat = Clock::now() + options_.heartbeat_interval;
        reason = heartbeat(last_seen, changed_at);
      }
    } catch (const std::exception& e) {
      if (!failing) spdlog::warn("elastic monitor: store error (retrying): {}", e.what());
      failing = true;
    } catch (...) {
      if (!failing) spdlog::warn("elastic monitor: unknown error (retrying)");
      failing = true;
    }
    if (reason) {
      fire(*reason);
      return;
    }
    // A failing store is asked again one heartbeat interval later (not at once, and not every
    // poll): a store that throws at once must not turn this loop into a busy spin.
    if (failing) next_beat = Clock::now() + options_.heartbeat_interval;
    lock.lock();
    auto wake_at = failing ? next_beat : std::min(Clock::now() + options_.poll, next_beat);
    wake_.wait_until(lock, wake_at, [this] { return stopping_; });
  }
}

}  // namespace dtrain
