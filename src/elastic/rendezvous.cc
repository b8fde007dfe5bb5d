// ElasticRendezvous: the join/advance protocol described in include/dtrain/elastic.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <thread>

#include "dtrain/elastic.h"
#include "dtrain/error.h"
#include "dtrain/prefix_store.h"
#include "elastic/keys.h"

namespace dtrain {

namespace elastic {

int64_t parse_value(const std::string& key, const std::string& value) {
  int64_t parsed = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, parsed);
  if (value.empty() || ec != std::errc() || ptr != end || parsed < 0) {
    throw CorruptError("elastic: key " + key + " holds \"" + value +
                       "\", not a non-negative integer");
  }
  return parsed;
}

}  // namespace elastic

using namespace elastic;
using Clock = Deadline::Clock;

void validate_elastic_options(const ElasticOptions& o) {
  auto bad = [](const std::string& what) {
    throw InvalidArgumentError("elastic options: " + what);
  };
  if (o.prefix.empty()) bad("prefix must not be empty");
  if (o.min_workers < 1) bad("min_workers must be >= 1, got " + std::to_string(o.min_workers));
  if (o.max_workers < o.min_workers) {
    bad("max_workers (" + std::to_string(o.max_workers) + ") must be >= min_workers (" +
        std::to_string(o.min_workers) + ")");
  }
  if (o.settle.count() < 0) bad("settle must not be negative");
  if (o.rendezvous_timeout.count() <= 0) bad("rendezvous_timeout must be positive");
  if (o.poll_interval.count() <= 0) bad("poll_interval must be positive");
}

ElasticRendezvous::ElasticRendezvous(std::shared_ptr<Store> store, std::string worker_id,
                                     ElasticOptions options)
    : base_(std::move(store)), worker_id_(std::move(worker_id)), options_(std::move(options)) {
  validate_elastic_options(options_);
  if (!base_) throw InvalidArgumentError("elastic: no store");
  if (worker_id_.empty()) throw InvalidArgumentError("elastic: worker id must not be empty");
  keys_ = std::make_shared<PrefixStore>(options_.prefix, base_);
}

int64_t ElasticRendezvous::current_round(Deadline deadline) {
  auto value = keys_->compare_set(kRoundKey, std::nullopt, "0", deadline);
  if (!value) throw InternalError("elastic: compare_set left the round key absent");
  return parse_value(kRoundKey, *value);
}

int64_t ElasticRendezvous::advance(int64_t round, Deadline deadline) {
  auto value =
      keys_->compare_set(kRoundKey, std::to_string(round), std::to_string(round + 1), deadline);
  if (!value) return current_round(deadline);  // no round yet: nothing to end
  int64_t now = parse_value(kRoundKey, *value);
  if (now == round + 1) spdlog::debug("elastic: round {} ended", round);
  return now;
}

int64_t ElasticRendezvous::waiting(int64_t round, Deadline deadline) {
  auto value = keys_->try_get(waiting_key(round), deadline);
  return value ? parse_value(waiting_key(round), *value) : 0;
}

void ElasticRendezvous::expel(const std::string& worker_id, int64_t round, Deadline deadline) {
  keys_->set(expelled_key(worker_id), std::to_string(round), deadline);
  keys_->add(kExpelledCountKey, 1, deadline);
}

void ElasticRendezvous::pause(Deadline deadline) const {
  std::this_thread::sleep_for(std::min(options_.poll_interval, deadline.remaining()));
}

void ElasticRendezvous::wait_next_round(int64_t round, Deadline deadline) {
  keys_->add(waiting_key(round), 1, deadline);
  spdlog::info("elastic: round {} is running; worker {} waits for the next one", round, worker_id_);
  while (current_round(deadline) <= round) {
    deadline.check("elastic: waiting for round " + std::to_string(round) + " to end");
    pause(deadline);
  }
}

// Returns the round's world size, or -1 if the round was advanced before it closed (a member of
// an older round ended it; start over).
int ElasticRendezvous::wait_closed(int64_t round, Deadline deadline) {
  const auto joined_at = Clock::now();
  int64_t last_count = -1;
  auto changed_at = joined_at;
  while (true) {
    if (auto closed = keys_->try_get(closed_key(round), deadline)) {
      return static_cast<int>(parse_value(closed_key(round), *closed));
    }
    if (current_round(deadline) > round) return -1;
    int64_t count = keys_->add(count_key(round), 0, deadline);
    auto now = Clock::now();
    if (count != last_count) {
      last_count = count;
      changed_at = now;
    }
    std::optional<int64_t> close_with;
    // Round 0 waits for the workers the launchers started (first_round_size), up to the
    // rendezvous timeout; later rounds settle.
    bool starting = round == 0 && count < options_.first_round_size;
    if (count >= options_.max_workers) {
      close_with = options_.max_workers;
    } else if (round == 0 && options_.first_round_size > 0 && count >= options_.first_round_size) {
      close_with = count;
    } else if (!starting && count >= options_.min_workers && now - changed_at >= options_.settle) {
      close_with = count;
    } else if (now - joined_at >= options_.rendezvous_timeout) {
      close_with = count;
    }
    if (close_with) {
      spdlog::debug(
          "elastic: closing round {} with {} (count {}, {} ms since the last change)", round,
          *close_with, count,
          std::chrono::duration_cast<std::chrono::milliseconds>(now - changed_at).count());
      auto stored = keys_->compare_set(closed_key(round), std::nullopt, std::to_string(*close_with),
                                       deadline);
      if (!stored)
        throw InternalError("elastic: compare_set left " + closed_key(round) + " absent");
      return static_cast<int>(parse_value(closed_key(round), *stored));
    }
    deadline.check("elastic: waiting for round " + std::to_string(round) + " to close");
    pause(deadline);
  }
}

Membership ElasticRendezvous::join(Deadline deadline) {
  while (true) {
    const int64_t round = current_round(deadline);
    if (keys_->try_get(closed_key(round), deadline)) {
      wait_next_round(round, deadline);
      continue;
    }
    const int64_t idx = keys_->add(count_key(round), 1, deadline) - 1;
    keys_->set(member_key(round, idx), worker_id_, deadline);
    const int world = wait_closed(round, deadline);
    if (world < 0) continue;  // the round was ended before it closed
    if (idx >= world) {
      wait_next_round(round, deadline);
      continue;
    }
    Membership m;
    m.round = round;
    m.rank = static_cast<int>(idx);
    m.world = world;
    m.comm_prefix = options_.prefix + "/" + comm_key_prefix(round);
    // A joiner that died between taking its index and publishing its id would hold everyone here:
    // give it rendezvous_timeout, then end the round and start over.
    auto ids_deadline =
        Deadline::at(std::min(deadline.when(), Clock::now() + options_.rendezvous_timeout));
    try {
      for (int i = 0; i < world; ++i)
        m.worker_ids.push_back(keys_->get(member_key(round, i), ids_deadline));
    } catch (const TimeoutError&) {
      if (deadline.expired()) throw;
      spdlog::warn("elastic: a member of round {} never published its id; ending the round", round);
      advance(round, deadline);
      continue;
    }
    if (world < options_.min_workers) {
      m.below_minimum = true;
      m.stop_reason = "elastic: only " + std::to_string(world) + " workers (minimum " +
                      std::to_string(options_.min_workers) + "); stopping";
      spdlog::warn("{}", m.stop_reason);
      advance(round, deadline);  // waiters of this round must not be stranded
    } else {
      spdlog::info("elastic: round {}: rank {} of {}", round, m.rank, m.world);
    }
    return m;
  }
}

std::unique_ptr<Communicator> ElasticRendezvous::connect(const Membership& membership,
                                                         CommOptions options) const {
  if (membership.below_minimum) {
    throw InvalidArgumentError("elastic: round " + std::to_string(membership.round) +
                               " is below the minimum; nothing to connect");
  }
  auto store = std::make_shared<PrefixStore>(membership.comm_prefix, base_);
  return Communicator::create(store, membership.rank, membership.world, std::move(options));
}

}  // namespace dtrain
