// When and how the trainer saves and resumes (Note [when the trainer saves] in checkpointer.h).
#include "train/checkpointer.h"

#include <array>
#include <cstdio>

#include "checkpoint/safetensors.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

// Point-to-point tags of the rank-state gather: a size, then the bytes.
constexpr uint32_t kTagStateSize = 0x636b7000;  // "ckp\0"
constexpr uint32_t kTagStateBytes = 0x636b7001;

std::vector<uint8_t> encode_rank_state(const RankState& s) {
  TensorMap t;
  for (const auto& [name, values] : s.compression) {
    std::string key = "codec/" + name;
    t[key] = TensorRecord::copy_of(key, DType::kFloat32, {static_cast<int64_t>(values.size())},
                                   values.data());
  }
  t["rng"] = TensorRecord::copy_of("rng", DType::kUInt8, {static_cast<int64_t>(s.rng_cpu.size())},
                                   s.rng_cpu.data());
  std::array<double, 4> loss = {s.interval_loss_sum, s.interval_steps, s.epoch_loss_sum,
                                s.epoch_steps};
  t["loss"] = TensorRecord::copy_of("loss", DType::kFloat64, {4}, loss.data());
  return encode_safetensors(t);
}

RankState decode_rank_state(const std::vector<uint8_t>& bytes, int from) {
  SafetensorsContents c = decode_safetensors(bytes, "rank state of rank " + std::to_string(from));
  RankState s;
  for (const auto& [name, rec] : c.tensors) {
    if (name.starts_with("codec/")) {
      auto v = rec.view<float>();
      s.compression[name.substr(6)] = std::vector<float>(v.begin(), v.end());
    }
  }
  const TensorRecord& rng = c.tensors.at("rng");
  s.rng_cpu = rng.bytes;
  auto loss = c.tensors.at("loss").view<double>();
  s.interval_loss_sum = loss[0];
  s.interval_steps = loss[1];
  s.epoch_loss_sum = loss[2];
  s.epoch_steps = loss[3];
  return s;
}

// The snapshot LoadOptions::validate built for the checkpoint of `step` just loaded.
TrainSnapshot take_validated(std::optional<TrainSnapshot>& validated, int64_t step) {
  if (!validated || validated->position.step != step) {
    throw InternalError("load_for_resume: no validated snapshot for the checkpoint of step " +
                        std::to_string(step));
  }
  TrainSnapshot s = std::move(*validated);
  validated.reset();
  return s;
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1u << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(b) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(b) / 1024);
  }
  return buf;
}

}  // namespace

void gather_rank_states(TrainSnapshot& snapshot, Communicator* comm) {
  if (!comm || comm->size() == 1) return;
  if (snapshot.ranks.size() != 1) {
    throw InvalidArgumentError("gather_rank_states: the snapshot must hold this rank's state only");
  }
  if (comm->rank() != 0) {
    std::vector<uint8_t> bytes = encode_rank_state(snapshot.ranks[0]);
    int64_t size = static_cast<int64_t>(bytes.size());
    comm->send(&size, 1, DType::kInt64, 0, kTagStateSize);
    comm->send(bytes.data(), bytes.size(), DType::kUInt8, 0, kTagStateBytes);
    return;
  }
  for (int r = 1; r < comm->size(); ++r) {
    int64_t size = 0;
    comm->recv(&size, 1, DType::kInt64, r, kTagStateSize);
    if (size < 0 || size > (int64_t{1} << 40)) {
      throw CorruptError("gather_rank_states: rank " + std::to_string(r) + " announced " +
                         std::to_string(size) + " bytes");
    }
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    comm->recv(bytes.data(), bytes.size(), DType::kUInt8, r, kTagStateBytes);
    snapshot.ranks.push_back(decode_rank_state(bytes, r));
  }
}

Checkpointer::Checkpointer(const TrainConfig& config, Communicator* comm)
    : comm_(comm),
      rank_(comm ? comm->rank() : 0),
      world_(comm ? comm->size() : 1),
      enabled_(!config.checkpoint_dir.empty()),
      every_(parse_checkpoint_every(config.checkpoint_every)),
      timeout_s_(std::max(60.0, config.timeout_s * 5)),
      last_save_time_(Clock::now()) {
  if (enabled_ && rank_ == 0) {
    CheckpointOptions options;
    options.keep_last = static_cast<int>(config.keep_checkpoints);
    writer_ = std::make_unique<CheckpointWriter>(config.checkpoint_dir, options);
  }
}

Checkpointer::~Checkpointer() = default;

double Checkpointer::time_vote() const {
  if (!enabled_ || rank_ != 0 || every_.seconds <= 0) return 0;
  double elapsed = std::chrono::duration<double>(Clock::now() - last_save_time_).count();
  return elapsed >= every_.seconds ? 1 : 0;
}

void Checkpointer::count_votes(double sum) {
  if (enabled_ && sum > 0) due_ = true;
}

void Checkpointer::after_step(int64_t step, int64_t total_steps) {
  if (!enabled_) return;
  if (every_.steps > 0 && step % every_.steps == 0) due_ = true;
  if (step == total_steps) due_ = true;
}

bool Checkpointer::should_save(int64_t step, bool replicas_agree) const {
  return enabled_ && due_ && step != last_saved_step_ && replicas_agree;
}

void Checkpointer::commit(TrainSnapshot snapshot, Clock::time_point t0, Clock::time_point t1) {
  const int64_t step = snapshot.position.step;
  gather_rank_states(snapshot, comm_);
  if (writer_) {
    // One write in flight: every requested checkpoint is written (no coalescing). At a sane
    // interval the previous write finished long ago and this returns at once.
    flush();
    writer_->save(to_checkpoint(std::move(snapshot)));
  }
  auto t2 = Clock::now();
  due_ = false;
  last_saved_step_ = step;
  last_save_time_ = t2;
  double stall = std::chrono::duration<double>(t2 - t0).count();
  stats_.saves += 1;
  stats_.stall_seconds += stall;
  stats_.max_stall_seconds = std::max(stats_.max_stall_seconds, stall);
  stats_.capture_seconds += std::chrono::duration<double>(t1 - t0).count();
}

void Checkpointer::flush() {
  if (!writer_) return;
  writer_->flush(
      Deadline::after(std::chrono::milliseconds(static_cast<int64_t>(timeout_s_ * 1000))));
}

std::string Checkpointer::describe() const {
  if (!writer_ || stats_.saves == 0) return "";
  LastSaveStats last = writer_->last_stats();
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "checkpoint: %lld saved (last %s, %s, written in %.1f ms); training stalled "
                "%.2f ms per save (capture %.2f ms), at most %.2f ms",
                static_cast<long long>(stats_.saves), last.path.c_str(),
                human_bytes(last.bytes).c_str(), last.write_seconds * 1e3,
                stats_.stall_seconds / stats_.saves * 1e3,
                stats_.capture_seconds / stats_.saves * 1e3, stats_.max_stall_seconds * 1e3);
  return buf;
}

std::optional<TrainSnapshot> load_for_resume(const TrainConfig& config, const ModelSignature& live,
                                             Communicator* comm, std::ostream& log,
                                             int64_t train_examples, std::string* path) {
  if (config.resume.empty()) return std::nullopt;
  const int rank = comm ? comm->rank() : 0;
  const int world = comm ? comm->size() : 1;
  // Every candidate is fully validated as part of choosing it (snapshot_for_resume), so a
  // checkpoint whose trainer state is bad is skipped with its reason instead of failing the run
  // after it was chosen. validate runs last in load_checkpoint: the snapshot it leaves belongs to
  // the checkpoint returned or chosen.
  const ResumeTarget target{live, config.optimizer, rank, world, train_examples, config.strategy};
  std::optional<TrainSnapshot> validated;
  LoadOptions options;
  options.expected_model = live;
  options.validate = [&](const Checkpoint& c) { validated = snapshot_for_resume(c, target); };

  std::optional<TrainSnapshot> snapshot;
  std::string chosen;
  std::exception_ptr error;
  int64_t created = 0;
  try {
    if (config.resume == "auto") {
      ResumeChoice choice = find_resume(config.checkpoint_dir, options);
      if (rank == 0) {
        for (const SkippedCheckpoint& k : choice.skipped) {
          log << "checkpoint: skipped " << k.path << ": " << k.reason << "\n";
        }
        log << std::flush;
      }
      if (!choice.checkpoint) {
        // Sound checkpoints of another run (model, optimizer, strategy, dataset) are not damage:
        // starting from scratch would save over them (keep_checkpoints), so refuse.
        for (const SkippedCheckpoint& k : choice.skipped) {
          if (k.code != ErrorCode::kMismatch) continue;
          throw MismatchError("checkpoint " + k.path + " " + k.reason + "; --resume auto " +
                              "does not start from scratch over the checkpoints of another run " +
                              "(use another checkpoint_dir, or the run's own settings)");
        }
      }
      if (rank == 0) {
        if (choice.checkpoint) {
          log << "checkpoint: resuming from " << choice.path << " (step " << choice.checkpoint->step
              << ")\n";
        } else {
          log << "checkpoint: no loadable checkpoint in " << config.checkpoint_dir
              << "; starting from scratch\n";
        }
        log << std::flush;
      }
      if (choice.checkpoint) {
        created = choice.checkpoint->created_unix_ms;
        snapshot = take_validated(validated, choice.checkpoint->step);
        chosen = choice.path;
      }
    } else {
      Checkpoint c = load_checkpoint(config.resume, options);
      created = c.created_unix_ms;
      snapshot = take_validated(validated, c.step);
      chosen = config.resume;
      if (rank == 0) {
        log << "checkpoint: resuming from " << chosen << " (step " << c.step << ")\n" << std::flush;
      }
    }
  } catch (const Error&) {
    error = std::current_exception();
  }

  if (world > 1) {
    // status: 0 nothing to resume, 1 loaded, 2 failed.
    std::array<int64_t, 3> mine = {error ? 2 : (snapshot ? 1 : 0),
                                   snapshot ? snapshot->position.step : -1, created};
    std::vector<int64_t> all(3 * static_cast<size_t>(world));
    comm->allgather(mine.data(), all.data(), 3, DType::kInt64);
    if (error) std::rethrow_exception(error);
    for (int r = 0; r < world; ++r) {
      const int64_t* o = &all[3 * static_cast<size_t>(r)];
      if (o[0] == 2) {
        throw MismatchError("rank " + std::to_string(r) +
                            " could not load the checkpoint to resume from (see its error)");
      }
      if (o[0] != mine[0] || o[1] != mine[1] || o[2] != mine[2]) {
        auto what = [](const int64_t* v) {
          return v[0] == 0
                     ? std::string("no checkpoint")
                     : "step " + std::to_string(v[1]) + " (created " + std::to_string(v[2]) + ")";
        };
        throw MismatchError("ranks resume from different checkpoints: rank " +
                            std::to_string(rank) + " from " + what(mine.data()) + ", rank " +
                            std::to_string(r) + " from " + what(o) +
                            "; every rank must see the same checkpoint_dir");
      }
    }
  } else if (error) {
    std::rethrow_exception(error);
  }
  if (path) *path = chosen;
  return snapshot;
}

}  // namespace dtrain
