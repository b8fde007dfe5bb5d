// train_elastic (trainer.h): the rounds of an elastic run. Note [elastic rounds].
//
// A worker loops: join a round of the elastic rendezvous (include/dtrain/elastic.h), connect the
// round's communicator, start the monitor (heartbeats; aborts the communicator when the round
// moves on), agree on the state to start from, train with a TrainLoop until the end or until
// the round must end, and on a communication failure advance the round and go again.
//
// State agreement (collective over the new round). Every worker keeps its last in-memory commit
// (LoopHooks: taken at the start of each round and every commit_every steps; a copy of model,
// optimizer, position, this rank's residuals and RNG). The round takes the newest commit any
// member holds (allreduce max of the commit steps; a worker that never trained has none); the
// lowest rank holding it broadcasts it (encoded as a checkpoint) when some member lacks it.
// Survivors whose commit is that one restore their own. A worker that receives the state starts
// with empty compression residuals (they are per rank; copying another rank's would count its
// unsent gradient twice). Steps past the commit that a failure interrupted are trained again:
// at most commit_every of them (reported as steps_lost).
//
// Batch and learning rate on a size change (docs/elastic.md): the global batch G stays when it
// divides by the new world size W; otherwise it becomes the largest multiple of W below G and
// the learning rate is scaled by the same factor (linear scaling rule). Each worker then reads
// G/W samples of the same global order, continuing at the same sample of the epoch.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "dtrain/checkpoint.h"
#include "dtrain/elastic.h"
#include "dtrain/env.h"
#include "dtrain/error.h"
#include "dtrain/trainer.h"
#include "train/config_internal.h"
#include "train/train_loop.h"

namespace dtrain {
namespace {

using Clock = std::chrono::steady_clock;

// The state travels in the common checkpoint encoding (encode_checkpoint, checkpoint.h).
std::vector<uint8_t> encode_snapshot(const TrainSnapshot& snapshot) {
  return encode_checkpoint(to_checkpoint(snapshot));
}

TrainSnapshot decode_snapshot(const std::vector<uint8_t>& bytes) {
  return from_checkpoint(decode_checkpoint(bytes, "elastic state"));
}

// The config of a round of `world` workers (batch and learning-rate policy above); `g` is the
// job's global batch (a per-worker batch counts for max_workers workers).
TrainConfig round_config(const TrainConfig& config, int64_t g, int world) {
  TrainConfig c = config;
  int64_t g2 = std::max<int64_t>(world, (g / world) * world);
  c.global_batch = g2;
  c.per_worker_batch = 0;
  if (g2 != g) c.lr = config.lr * static_cast<double>(g2) / static_cast<double>(g);
  c.resume.clear();  // only the first round resumes from disk (LoopHooks::start otherwise)
  return c;
}

// Agrees on the round's starting state (Note above). Returns the snapshot to restore, or
// nullopt when no member holds one (the first round: start fresh or from config.resume).
std::optional<TrainSnapshot> agree_on_state(const std::optional<TrainSnapshot>& commit,
                                            Communicator& comm) {
  int64_t mine = commit ? commit->position.step : -1;
  int64_t newest = mine;
  comm.allreduce(&newest, 1, DType::kInt64, ReduceOp::kMax);
  if (newest < 0) return std::nullopt;
  int64_t source = mine == newest ? comm.rank() : INT64_MAX;
  comm.allreduce(&source, 1, DType::kInt64, ReduceOp::kMin);
  int64_t lacking = mine == newest ? 0 : 1;
  comm.allreduce(&lacking, 1, DType::kInt64, ReduceOp::kSum);
  if (lacking == 0) return commit;
  const int root = static_cast<int>(source);
  std::vector<uint8_t> bytes;
  if (comm.rank() == root) {
    TrainSnapshot shared = *commit;
    shared.ranks.at(0).compression.clear();  // receivers start with empty residuals
    shared.world_size = 1;                   // one rank state: the root's (minus residuals)
    bytes = encode_snapshot(shared);
  }
  int64_t size = static_cast<int64_t>(bytes.size());
  comm.broadcast(&size, 1, DType::kInt64, root);
  bytes.resize(static_cast<size_t>(size));
  comm.broadcast(bytes.data(), bytes.size(), DType::kUInt8, root);
  if (mine == newest) return commit;
  return decode_snapshot(bytes);
}

bool is_group_failure(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kPeerLost:
    case ErrorCode::kTimeout:
    case ErrorCode::kAborted:
    case ErrorCode::kIo:
      return true;
    default:
      return false;
  }
}

}  // namespace

TrainResult train_elastic(const TrainConfig& config, const ModelHandle& model,
                          const DataSplits& data, std::shared_ptr<Store> store, int worker_id,
                          std::ostream& log, const TrainOutput& output, const std::string& secret) {
  validate_config_except_model(config);
  if (config.threads > 0) at::set_num_threads(static_cast<int>(config.threads));
  ElasticOptions options;
  options.min_workers = static_cast<int>(std::max<int64_t>(1, config.min_workers));
  options.max_workers = static_cast<int>(
      config.max_workers > 0 ? config.max_workers
                             : std::max<int64_t>(config.nproc, options.min_workers));
  // The workers the launchers started (launch.h), all expected in round 0.
  if (const char* w = std::getenv("DTRAIN_ELASTIC_FIRST_ROUND")) {
    options.first_round_size = std::min(options.max_workers, std::max(0, std::atoi(w)));
  }
  options.rendezvous_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.rendezvous_timeout_s * 1000));
  // The job's bounds are the first worker's: a launcher that joins later (with its own defaults)
  // adopts them from the store.
  {
    std::string mine =
        std::to_string(options.min_workers) + "," + std::to_string(options.max_workers);
    auto stored = store->compare_set(options.prefix + "/bounds", std::nullopt, mine,
                                     Deadline::after(std::chrono::seconds(30)));
    if (stored && *stored != mine) {
      auto comma = stored->find(',');
      options.min_workers = std::stoi(stored->substr(0, comma));
      options.max_workers = std::stoi(stored->substr(comma + 1));
      options.first_round_size = std::min(options.first_round_size, options.max_workers);
    }
  }
  validate_elastic_options(options);
  MonitorOptions monitor_options;
  monitor_options.heartbeat_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.heartbeat_timeout_s * 1000));
  CommOptions comm_options = comm_options_for(config);
  comm_options.secret = secret;
  FaultPlan faults = config.fault.empty() ? FaultPlan::from_env(process_env())
                                          : FaultPlan::parse(config.fault, "config key 'fault'");

  const int64_t job_batch = global_batch(config, options.max_workers);
  ElasticRendezvous rendezvous(store, std::to_string(worker_id), options);
  std::optional<TrainSnapshot> commit;
  int64_t recoveries = 0, steps_lost = 0;
  double commit_seconds = 0;
  const auto start = Clock::now();
  std::optional<Clock::time_point> failed_at;
  for (int64_t attempt = 0;; ++attempt) {
    Membership m = rendezvous.join(Deadline::after(options.rendezvous_timeout * 4));
    if (m.below_minimum) throw AbortedError(m.stop_reason);
    std::unique_ptr<Communicator> comm;
    try {
      comm = rendezvous.connect(m, comm_options);
    } catch (const Error& e) {
      if (!is_group_failure(e)) throw;
      rendezvous.advance(m.round, Deadline::after(std::chrono::seconds(30)));
      continue;
    }
    ElasticMonitor monitor(rendezvous, m, comm.get(), monitor_options);
    LoopHooks hooks;
    try {
      std::optional<TrainSnapshot> state = agree_on_state(commit, *comm);
      TrainConfig rc = round_config(config, job_batch, m.world);
      if (m.rank == 0 && attempt == 0) {
        log << "elastic: round " << m.round << " with " << m.world << " workers (minimum "
            << options.min_workers << ", maximum " << options.max_workers << ")\n"
            << std::flush;
      }
      if (m.rank == 0 && attempt > 0) {
        double since =
            failed_at ? std::chrono::duration<double>(Clock::now() - *failed_at).count() : 0;
        log << "elastic: round " << m.round << " with " << m.world << " workers resumes at step "
            << (state ? state->position.step : 0) << " (global batch " << rc.global_batch << ", lr "
            << rc.lr << "; re-formed " << since << " s after the failure)\n"
            << std::flush;
      }
      hooks.start = state ? &*state : nullptr;
      hooks.commit_every = config.commit_every;
      hooks.on_commit = [&](TrainSnapshot s) { commit = std::move(s); };
      hooks.leave_round = [&] {
        int64_t waiting = rendezvous.waiting(m.round, Deadline::after(std::chrono::seconds(10)));
        comm->allreduce(&waiting, 1, DType::kInt64, ReduceOp::kMax);
        return waiting > 0 && m.world < options.max_workers;
      };
      hooks.faults = &faults;
      hooks.worker_id = worker_id;
      if (m.rank == 0 && failed_at) {
        hooks.on_first_step = [&, round = m.round, since = *failed_at] {
          log << "elastic: first step of round " << round << " "
              << std::chrono::duration<double>(Clock::now() - since).count()
              << " s after the failure\n"
              << std::flush;
        };
      }
      TrainOutput round_output = output;
      round_output.summary = false;
      TrainResult r = TrainLoop(rc, model, data, comm.get(), log, round_output, &hooks).run();
      commit_seconds += hooks.commit_seconds;
      monitor.stop();
      if (r.interrupted) {
        if (m.rank == 0) {
          log << "elastic: admitting waiting workers at step " << r.steps << "\n" << std::flush;
        }
        rendezvous.advance(m.round, Deadline::after(std::chrono::seconds(30)));
        ++recoveries;
        failed_at = Clock::now();
        continue;
      }
      r.recoveries = recoveries;
      r.steps_lost = steps_lost;
      r.commit_seconds = commit_seconds;
      r.rank = m.rank;
      r.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
      r.samples_per_sec = static_cast<double>(r.samples) / std::max(1e-9, r.wall_seconds);
      if (m.rank == 0 && output.summary) {
        print_summary(log, r);
        log.flush();
      }
      return r;
    } catch (const Error& e) {
      if (!is_group_failure(e)) throw;
      failed_at = Clock::now();
      commit_seconds += hooks.commit_seconds;
      monitor.stop();
      int64_t at_commit = commit ? commit->position.step : 0;
      steps_lost += std::max<int64_t>(0, hooks.reached_step - at_commit);
      log << "elastic: worker " << worker_id << " left round " << m.round << ": " << e.what()
          << "; re-forming from the commit at step " << at_commit << "\n"
          << std::flush;
      comm->abort("elastic: re-forming");
      rendezvous.advance(m.round, Deadline::after(std::chrono::seconds(30)));
      ++recoveries;
    }
  }
}

TrainResult train_elastic(const TrainConfig& config, std::shared_ptr<Store> store, int worker_id,
                          std::ostream& log, const TrainOutput& output, const std::string& secret) {
  validate_config(config);
  DataSplits data = load_dataset(dataset_options_of(config));
  ModelHandle model = make_model(model_options_of(config, data.train));
  return train_elastic(config, model, data, std::move(store), worker_id, log, output, secret);
}

}  // namespace dtrain
