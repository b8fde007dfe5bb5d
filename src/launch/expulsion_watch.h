// ExpulsionWatch: which of this node's elastic workers their group expelled, read from the run's
// store, so the supervisor can kill them (supervisor.h).
//
// Contract with the elastic layer (include/dtrain/elastic.h, keys "expelled/<worker id>" and
// "expelled_count" under ElasticOptions::prefix, "elastic" for the trainer; the trainer's store
// is the run's namespace "<run id>/"): when a member's monitor declares member K dead (it missed
// its heartbeats), it sets "<run id>/elastic/expelled/<K's worker id>" to the round, then adds 1
// to "<run id>/elastic/expelled_count". A worker id is the worker's DTRAIN_RANK.
//
// expelled() costs one store call (the counter) while the counter is unchanged, and one per asked
// id after it grew. Each call is bounded by store_timeout; a store error is logged (once per
// streak) and answers "none expelled", and the calls of the next retry_after answer the same
// without asking, so a lost store (node 0 gone) never holds up supervision for long.
//
// Not thread-safe: the supervisor's thread alone calls it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtrain/store.h"

namespace dtrain::launcher {

// Keys of the contract above, relative to the run's namespace "<run id>/".
inline constexpr char kExpelledCountKey[] = "elastic/expelled_count";
std::string expelled_key(int worker_id);  // "elastic/expelled/<id>"

class ExpulsionWatch {
 public:
  // `store`: the run's store with full keys (the launcher's client); `run_id`: the run's namespace.
  ExpulsionWatch(std::shared_ptr<Store> store, const std::string& run_id,
                 std::chrono::milliseconds store_timeout = std::chrono::milliseconds(1000),
                 std::chrono::milliseconds retry_after = std::chrono::milliseconds(5000));

  // The ids among `ids` whose expulsion is recorded (see above).
  std::vector<int> expelled(const std::vector<int>& ids);

 private:
  std::shared_ptr<Store> store_;  // PrefixStore of the run's namespace
  std::chrono::milliseconds store_timeout_;
  std::chrono::milliseconds retry_after_;
  int64_t seen_count_ = 0;  // expelled_count when the asked ids were last read
  bool failing_ = false;    // inside a streak of store errors (logged once)
  std::chrono::steady_clock::time_point retry_at_{};  // after an error: ask again from then
};

}  // namespace dtrain::launcher
