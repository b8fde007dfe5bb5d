// Elastic membership: workers of one job meet in numbered rounds through a Store, train as the
// group of their round, and re-form a new round when a member fails or newcomers wait.
// Design and operator's view: docs/elastic.md.
//
// Protocol (every key below is under "<ElasticOptions::prefix>/", default "elastic/"; values are
// decimal text unless noted):
//   round                the current round number r; created "0" by the first worker
//                        (compare_set(absent -> "0")); only ever grows, by advance(r): r -> r+1
//   r<r>/count           joiners of round r so far (Store::add counter)
//   r<r>/member/<idx>    worker id (free text) of the idx-th joiner, idx = add(count, 1) - 1
//   r<r>/closed          the round's world size W, written once (compare_set(absent -> W));
//                        present = the round is running: joiners with idx < W are its members
//                        (rank = idx), later ones were late
//   r<r>/waiting         workers that asked to join while round r ran (add counter; never
//                        decremented: an upper bound, read by waiting(r))
//   r<r>/hb/<rank>       heartbeat counter of member `rank` (ElasticMonitor)
//   expelled/<id>        the round in which the group expelled worker <id> (ElasticMonitor, on a
//                        missed heartbeat); its launcher then SIGKILLs it (launch.h)
//   expelled_count       expulsions recorded so far (add counter, bumped after expelled/<id>)
//   r<r>/comm/...        the keys of round r's Communicator (connect())
//
// join(): read r = round. If r<r>/closed exists, add 1 to r<r>/waiting and poll `round` until it
// exceeds r, then start over. Otherwise take idx from r<r>/count, publish r<r>/member/<idx>, and
// poll until the round is closed. Each polling joiner closes it, with compare_set(closed, absent,
// N) where N is the count it saw (capped at max_workers), as soon as
//   - count >= max_workers, or
//   - count >= min_workers and count has not changed for `settle` (measured by this joiner), or
//   - this joiner has waited `rendezvous_timeout` (then N may be below min_workers).
// Only the first compare_set wins; everyone reads the stored W. A joiner with idx >= W was late and
// becomes a waiter of round r (as above).
//
// Below the minimum (decision): a round that closed with W < min_workers is not an error. join()
// returns a Membership with below_minimum = true (and stop_reason "elastic: only W workers
// (minimum M); stopping"); the caller should end cleanly. Every failure of join() itself is a
// typed exception (TimeoutError, PeerLostError, CorruptError). A member of such a round also
// advances the round, so waiters of it are not stranded: they meet in the next round (and get
// below_minimum themselves if nobody else comes).
//
// Recovery: a member that sees its group fail (an error from a collective, or its ElasticMonitor
// aborting the communicator) calls advance(r) (idempotent across members) and join() again.
// Members that want to admit waiters do the same, at a step boundary they agree on.
//
// Thread safety: ElasticRendezvous is a cheap copyable handle; its methods may be called from
// several threads (the Store is thread-safe). ElasticMonitor: see below. FaultPlan: not
// thread-safe (one training thread calls at_step).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/deadline.h"
#include "dtrain/env.h"
#include "dtrain/store.h"

namespace dtrain {

struct ElasticOptions {
  // Namespace of the protocol's keys inside the store (keys are "<prefix>/round", ...).
  std::string prefix = "elastic";
  int min_workers = 1;  // a round with fewer members is below the minimum (>= 1)
  int max_workers = 1;  // a round closes at once when this many joined (>= min_workers)
  // A round with at least min_workers closes when its count has not changed for this long.
  std::chrono::milliseconds settle{1000};
  // Round 0 closes as soon as this many joined (the workers the launchers started), and does not
  // settle for fewer before rendezvous_timeout; 0 = no such wait.
  int first_round_size = 0;
  // A joiner that has waited this long closes the round with whoever joined (maybe < minimum).
  std::chrono::milliseconds rendezvous_timeout{30000};
  // How often a joiner or waiter polls the store (50-100 ms keeps the store load low).
  std::chrono::milliseconds poll_interval{50};
};

// Checks options; InvalidArgumentError naming the bad field.
void validate_elastic_options(const ElasticOptions& options);

// The outcome of join(): this worker's place in a round.
struct Membership {
  int64_t round = 0;
  int rank = 0;                         // in [0, world): the order in which the members joined
  int world = 0;                        // members of the round
  std::vector<std::string> worker_ids;  // by rank; worker_ids[rank] is this worker's id
  // PrefixStore prefix (relative to the rendezvous' base store) of the round's Communicator:
  // "<prefix>/r<round>/comm", so its keys live under "<prefix>/r<round>/comm/".
  std::string comm_prefix;
  // The round closed with world < min_workers: do not train; end cleanly (see above).
  bool below_minimum = false;
  std::string stop_reason;  // set iff below_minimum
};

// One worker's handle on the protocol above.
class ElasticRendezvous {
 public:
  // `worker_id` names this worker in Membership::worker_ids (e.g. "host:pid" or the launcher's
  // original rank); not empty. InvalidArgumentError for bad options or an empty id.
  ElasticRendezvous(std::shared_ptr<Store> store, std::string worker_id, ElasticOptions options);

  // Joins the next round that admits this worker and returns when it is closed (see the protocol
  // above). `deadline` bounds the whole call, including waiting for a running round to end:
  // TimeoutError when it passes. Store errors pass through (PeerLostError, CorruptError, ...).
  Membership join(Deadline deadline);

  // The current round number (creating it as 0 when absent).
  int64_t current_round(Deadline deadline);

  // Ends round r: round r -> r+1 if it is still r. Idempotent: several members may call it for
  // the same r; a later round is left alone. Returns the round number after the call.
  int64_t advance(int64_t round, Deadline deadline);

  // The number of workers that asked to join while `round` ran (0 if none).
  int64_t waiting(int64_t round, Deadline deadline);

  // Records that the group of `round` expelled `worker_id` (expelled/<id>, then expelled_count +1),
  // so the worker's launcher kills it. Idempotent apart from the counter.
  void expel(const std::string& worker_id, int64_t round, Deadline deadline);

  // A communicator (over options.transport) for the members of `membership`'s round (collective
  // over its members; keys under membership.comm_prefix). InvalidArgumentError for a
  // below-minimum membership; Communicator::create's errors otherwise (TimeoutError when a member
  // never connects).
  std::unique_ptr<Communicator> connect(const Membership& membership, CommOptions options) const;

  const std::string& worker_id() const { return worker_id_; }
  const ElasticOptions& options() const { return options_; }
  // The store that holds the protocol's keys (the base store under options().prefix).
  const std::shared_ptr<Store>& keys() const { return keys_; }

 private:
  // Polls until round r is closed (closing it when a condition above holds); returns W, or -1
  // if the round was advanced before it closed.
  int wait_closed(int64_t round, Deadline deadline);
  // Counts this worker as waiting for round r and polls until the round is past r.
  void wait_next_round(int64_t round, Deadline deadline);
  void pause(Deadline deadline) const;  // one poll interval, never past the deadline

  std::shared_ptr<Store> base_;
  std::shared_ptr<Store> keys_;  // PrefixStore(options_.prefix, base_)
  std::string worker_id_;
  ElasticOptions options_;
};

struct MonitorOptions {
  // How often the monitor checks whether the round has advanced.
  std::chrono::milliseconds poll{200};
  // How often a member bumps its heartbeat counter and reads the others'.
  std::chrono::milliseconds heartbeat_interval{1000};
  // A member whose counter has not changed for this long (measured locally) is declared dead.
  std::chrono::milliseconds heartbeat_timeout{10000};
  // Bound on each store call the monitor makes (failures are logged and retried).
  std::chrono::milliseconds store_timeout{5000};
};

// A thread that watches the round of one member while it trains, and aborts its communicator
// when the group must re-form:
//   - every `poll`: round > r  -> comm->abort("elastic: group re-forming (round R)"), stop;
//   - every `heartbeat_interval`: add 1 to r<r>/hb/<rank>, read the other members' counters; one
//     unchanged for heartbeat_timeout -> expel(K's worker id, r) (its launcher kills it: a member
//     silent that long is hung or frozen, not merely slow, since heartbeats come from this
//     thread, not the training thread), advance(r), comm->abort("elastic: rank K missed its
//     heartbeat for T s"), stop.
// A dead member is detected within heartbeat_timeout + heartbeat_interval (+ store latency);
// a round advanced by another member within `poll`. Counters are timed from the monitor's
// start, so a member that never beats is declared dead after heartbeat_timeout too.
// Store errors are logged (once per streak) and retried; they never leave the thread.
//
// Thread safety: reason()/fired() may be called from any thread; stop() from any thread but the
// monitor's own. `comm` must outlive the monitor (or its stop()).
class ElasticMonitor {
 public:
  ElasticMonitor(ElasticRendezvous rendezvous, const Membership& membership, Communicator* comm,
                 MonitorOptions options = {});
  ~ElasticMonitor();  // stop()
  ElasticMonitor(const ElasticMonitor&) = delete;
  ElasticMonitor& operator=(const ElasticMonitor&) = delete;

  // Stops the thread and joins it promptly (no pending sleep is waited out). Idempotent.
  void stop();
  // Whether the monitor has aborted the communicator (true once comm->abort() returned).
  bool fired() const;
  // Why the monitor aborts the communicator; nullopt while it has not decided to. Set just
  // before comm->abort(), so an operation that fails with the monitor's AbortedError can ask.
  std::optional<std::string> reason() const;

 private:
  void run();
  // One heartbeat: bump ours, read the others'. Returns the abort reason for a dead member.
  std::optional<std::string> heartbeat(std::vector<int64_t>& last_seen,
                                       std::vector<Deadline::Clock::time_point>& changed_at);
  void fire(const std::string& reason);

  ElasticRendezvous rendezvous_;
  Membership membership_;
  Communicator* comm_;
  MonitorOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;              // GUARDED_BY(mutex_)
  std::optional<std::string> reason_;  // GUARDED_BY(mutex_)
  bool fired_ = false;                 // GUARDED_BY(mutex_)
  std::thread thread_;                 // the monitor's loop (run())
};

// ---- Fault injection ------------------------------------------------------------------------
//
// Specs (flag --fault, or env DTRAIN_FAULT), several separated by ';':
//   kill:rank=R,step=S         the worker with original rank R raises SIGKILL on itself just
//                              before optimizer step S
//   delay:rank=R,ms=M[,step=S] sleep M ms before every step (or only before step S)
//   drop:rank=R,step=S         at step S the worker aborts its communicator, as if its
//                              connections dropped: peers see a lost peer, the worker rejoins
// R, S, M are non-negative decimal integers. "Original rank" is the rank a worker had when the
// job started (the launcher's), which elastic rounds do not change.

enum class FaultKind { kKill, kDelay, kDrop };

struct FaultSpec {
  FaultKind kind = FaultKind::kKill;
  int rank = 0;                        // original rank it applies to
  std::optional<int64_t> step;         // required for kill/drop; optional for delay (= every step)
  std::chrono::milliseconds delay{0};  // delay only
};

// What the caller does before one step. Several may apply at once (delay, then drop or kill).
struct FaultAction {
  std::chrono::milliseconds delay{0};  // sleep this long first
  bool drop = false;                   // abort the communicator (then rejoin)
  bool kill = false;                   // kill_self_for_fault_injection()
  bool any() const { return delay.count() > 0 || drop || kill; }
};

// Parses the specs above; "" (or only blanks) is an empty list. InvalidArgumentError naming
// `what`, the offending spec and what is wrong with it.
std::vector<FaultSpec> parse_fault_specs(std::string_view text, std::string_view what = "--fault");

class FaultPlan {
 public:
  FaultPlan() = default;
  explicit FaultPlan(std::vector<FaultSpec> specs);
  // Parses `text` (parse_fault_specs).
  static FaultPlan parse(std::string_view text, std::string_view what = "--fault");
  // The plan of DTRAIN_FAULT (empty when unset).
  static FaultPlan from_env(const EnvLookup& lookup);

  // The faults due before step `step` of the worker with `original_rank`. A kill or drop spec
  // fires at most once per plan (one plan per process), so a replayed step after recovery does
  // not fire it again; delays apply every time they match.
  FaultAction at_step(int original_rank, int64_t step);

  bool empty() const { return specs_.empty(); }
  const std::vector<FaultSpec>& specs() const { return specs_; }

 private:
  std::vector<FaultSpec> specs_;
  std::vector<bool> fired_;  // by spec index: a kill/drop spec already fired
};

// The only place dtrain kills its own process: raises SIGKILL on the calling process (the
// explicit request of a kill fault spec). Never returns.
[[noreturn]] void kill_self_for_fault_injection();

}  // namespace dtrain
