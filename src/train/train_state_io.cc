// TrainSnapshot <-> Checkpoint (the on-disk form; contract in train_state.h and
// docs/checkpoints.md "What the trainer saves").
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "dtrain/error.h"
#include "train/train_state.h"

namespace dtrain {
namespace {

constexpr const char* kRngName = "torch_cpu";
constexpr const char* kResidualStem = "residuals";
constexpr const char* kStrategyStem = "strategy";

nlohmann::json number(double v) {
  // JSON has no NaN/inf: a diverged loss is stored as null and read back as NaN.
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

double read_number(const nlohmann::json& v) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  return v.get<double>();
}

std::optional<OptimizerKind> parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamw") return OptimizerKind::kAdamW;
  return std::nullopt;
}

[[noreturn]] void corrupt(const std::string& why) {
  throw CorruptError("trainer state in manifest.json: " + why);
}

// Why torch's CPU generator would refuse `state` (its size, an invalid mt19937 state), tried on a
// scratch generator; nullopt when it would take it.
std::optional<std::string> invalid_cpu_generator_state(const std::vector<uint8_t>& state) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(state.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), state.data(), state.size());
  at::Generator scratch = at::detail::createCPUGenerator();
  try {
    scratch.set_state(t);
  } catch (const c10::Error& e) {
    return std::string(e.what_without_backtrace());
  }
  return std::nullopt;
}

// MismatchError unless every entry of `state` is one restore_optimizer (train_state.cc) takes for
// a parameter of `model` with that parameter's dtype and shape: "<param>.momentum_buffer" (SGD);
// "<param>.step" (int64 scalar), ".exp_avg", ".exp_avg_sq" (both required with .step) and
// ".max_exp_avg_sq" (Adam, AdamW).
void check_optimizer_state(const TensorMap& state, OptimizerKind kind,
                           const ModelSignature& model) {
  std::map<std::string, const TensorSignature*> params;
  for (const auto& p : model.params) params[p.name] = &p;
  const std::vector<std::string> suffixes =
      kind == OptimizerKind::kSgd
          ? std::vector<std::string>{".momentum_buffer"}
          : std::vector<std::string>{".max_exp_avg_sq", ".exp_avg_sq", ".exp_avg", ".step"};
  std::map<std::string, std::set<std::string>> found;  // parameter -> suffixes present
  for (const auto& [name, rec] : state) {
    const TensorSignature* param = nullptr;
    std::string suffix;
    for (const std::string& x : suffixes) {
      if (!name.ends_with(x)) continue;
      auto it = params.find(name.substr(0, name.size() - x.size()));
      if (it != params.end()) {
        param = it->second;
        suffix = x;
        break;
      }
    }
    if (!param) {
      throw MismatchError("optimizer state '" + name + "' belongs to no parameter of this model (" +
                          std::string(optimizer_name(kind)) + ")");
    }
    const bool step = suffix == ".step";
    if (step ? (rec.dtype != DType::kInt64 || !rec.shape.empty())
             : (rec.dtype != param->dtype || rec.shape != param->shape)) {
      throw MismatchError(
          "optimizer state '" + name + "' has another dtype or shape than " +
          (step ? std::string("an int64 scalar") : "parameter '" + param->name + "'"));
    }
    found[param->name].insert(suffix);
  }
  if (kind == OptimizerKind::kSgd) return;
  for (const auto& [param, have] : found) {
    for (const char* need : {".step", ".exp_avg", ".exp_avg_sq"}) {
      if (!have.count(need)) {
        throw MismatchError("optimizer state of parameter '" + param + "' lacks '" + param + need +
                            "'");
      }
    }
  }
}

// from_checkpoint without the "checkpoint: " prefix on its messages.
TrainSnapshot parse_snapshot(const Checkpoint& c) {
  if (!c.extra.contains("trainer") || !c.extra["trainer"].is_object()) {
    corrupt("no extra.trainer object (not written by the dtrain trainer)");
  }
  const nlohmann::json& t = c.extra["trainer"];
  TrainSnapshot s;
  try {
    s.position.step = c.step;
    s.position.epoch = c.epoch;
    s.position.epoch_samples = t.at("epoch_samples").get<int64_t>();
    s.position.samples = t.at("samples").get<int64_t>();
    for (const auto& l : t.at("epoch_losses")) s.position.epoch_losses.push_back(read_number(l));
    s.global_batch = t.at("global_batch").get<int64_t>();
    if (t.contains("strategy_options")) {
      s.strategy_options = t.at("strategy_options").get<std::map<std::string, std::string>>();
    }
    auto kind = parse_optimizer(t.at("optimizer").get<std::string>());
    if (!kind) corrupt("unknown optimizer '" + t.at("optimizer").get<std::string>() + "'");
    s.optimizer_kind = *kind;
    const nlohmann::json& ranks = t.at("ranks");
    if (!ranks.is_array() || static_cast<int>(ranks.size()) != c.world_size) {
      corrupt("'ranks' must list one entry per rank of world_size " + std::to_string(c.world_size));
    }
    for (int r = 0; r < c.world_size; ++r) {
      const nlohmann::json& jr = ranks[static_cast<size_t>(r)];
      RankState rs;
      rs.interval_loss_sum = read_number(jr.at("interval_loss").at(0));
      rs.interval_steps = jr.at("interval_loss").at(1).get<double>();
      rs.epoch_loss_sum = read_number(jr.at("epoch_loss").at(0));
      rs.epoch_steps = jr.at("epoch_loss").at(1).get<double>();
      if (auto it = c.rng.find(rank_stem(kRngName, r)); it != c.rng.end()) {
        rs.rng_cpu.assign(it->second.begin(), it->second.end());
      }
      if (auto f = c.files.find(rank_stem(kResidualStem, r)); f != c.files.end()) {
        for (const auto& [name, rec] : f->second) {
          if (rec.dtype != DType::kFloat32 || rec.shape.size() != 1) {
            corrupt("residual '" + name + "' must be a float32 vector");
          }
          auto v = rec.view<float>();
          rs.compression[name] = std::vector<float>(v.begin(), v.end());
        }
      }
      s.ranks.push_back(std::move(rs));
    }
  } catch (const nlohmann::json::exception& e) {
    corrupt(e.what());
  }
  if (s.position.epoch_samples < 0 || s.position.step < 0 || s.position.samples < 0) {
    corrupt("negative step or sample counts");
  }
  s.world_size = c.world_size;
  s.model_name = c.model.name;
  auto model = c.files.find("model");
  if (model == c.files.end()) corrupt("no model.safetensors");
  s.model = model->second;
  if (auto opt = c.files.find("optimizer"); opt != c.files.end()) s.optimizer = opt->second;
  if (auto f = c.files.find(kStrategyStem); f != c.files.end()) s.strategy_shared = f->second;
  s.strategy = c.strategy;
  return s;
}

}  // namespace

Checkpoint to_checkpoint(TrainSnapshot s) {
  if (static_cast<int>(s.ranks.size()) != s.world_size) {
    throw InvalidArgumentError("to_checkpoint: the snapshot holds " +
                               std::to_string(s.ranks.size()) + " rank states for a world of " +
                               std::to_string(s.world_size) + " (gather them first)");
  }
  Checkpoint c;
  c.step = s.position.step;
  c.epoch = s.position.epoch;
  // The trainer's position is an offset into the epoch's GLOBAL order (Note [global batches]).
  c.sampler = {s.position.epoch, s.position.epoch_samples};
  c.world_size = s.world_size;
  c.strategy = s.strategy;
  c.model = ModelSignature::of(s.model_name, s.model);
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < s.world_size; ++r) {
    RankState& rs = s.ranks[static_cast<size_t>(r)];
    ranks.push_back({{"interval_loss", {number(rs.interval_loss_sum), rs.interval_steps}},
                     {"epoch_loss", {number(rs.epoch_loss_sum), rs.epoch_steps}}});
    if (!rs.rng_cpu.empty()) {
      c.rng[rank_stem(kRngName, r)] = std::string(rs.rng_cpu.begin(), rs.rng_cpu.end());
    }
    const std::string stem = rank_stem(kResidualStem, r);
    for (auto& [name, values] : rs.compression) {
      c.put(stem, TensorRecord::copy_of(name, DType::kFloat32,
                                        {static_cast<int64_t>(values.size())}, values.data()));
    }
  }
  nlohmann::json losses = nlohmann::json::array();
  for (double l : s.position.epoch_losses) losses.push_back(number(l));
  c.extra["trainer"] = {{"format_version", 1},
                        {"samples", s.position.samples},
                        {"epoch_samples", s.position.epoch_samples},
                        {"global_batch", s.global_batch},
                        {"optimizer", std::string(optimizer_name(s.optimizer_kind))},
                        {"epoch_losses", losses},
                        {"strategy_options", s.strategy_options},
                        {"ranks", ranks}};
  c.files["model"] = std::move(s.model);
  if (!s.optimizer.empty()) c.files["optimizer"] = std::move(s.optimizer);
  if (!s.strategy_shared.empty()) c.files[kStrategyStem] = std::move(s.strategy_shared);
  return c;
}

TrainSnapshot from_checkpoint(const Checkpoint& c) {
  try {
    return parse_snapshot(c);
  } catch (const CorruptError& e) {
    throw CorruptError(std::string("checkpoint: ") + e.what());
  }
}

TrainSnapshot snapshot_for_resume(const Checkpoint& c, const ResumeTarget& target) {
  if (c.world_size < 1) corrupt("world_size " + std::to_string(c.world_size));
  TrainSnapshot s = parse_snapshot(c);
  const LoopPosition& p = s.position;
  if (p.epoch < 0) corrupt("negative epoch " + std::to_string(p.epoch));
  if (c.sampler.epoch != p.epoch || c.sampler.offset != p.epoch_samples) {
    corrupt("sampler position {" + std::to_string(c.sampler.epoch) + ", " +
            std::to_string(c.sampler.offset) + "} disagrees with epoch " + std::to_string(p.epoch) +
            " and epoch_samples " + std::to_string(p.epoch_samples));
  }
  if (p.samples < p.epoch_samples) {
    corrupt("samples (" + std::to_string(p.samples) + ") fewer than epoch_samples (" +
            std::to_string(p.epoch_samples) + ")");
  }
  if (s.global_batch < 0) corrupt("negative global_batch");
  if (target.train_examples >= 0 && p.epoch_samples > target.train_examples) {
    throw MismatchError(
        "checkpoint position (" + std::to_string(p.epoch_samples) + " samples into epoch " +
        std::to_string(p.epoch) + ") lies beyond this training split of " +
        std::to_string(target.train_examples) + " examples: written for another dataset?");
  }
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    const RankState& rs = s.ranks[r];
    for (double steps : {rs.interval_steps, rs.epoch_steps}) {
      if (!(steps >= 0) || !std::isfinite(steps)) {
        corrupt("rank " + std::to_string(r) + "'s loss accumulators count " +
                std::to_string(steps) + " steps");
      }
    }
    if (!rs.rng_cpu.empty()) {
      if (auto why = invalid_cpu_generator_state(rs.rng_cpu)) {
        corrupt("rng state " + rank_stem(kRngName, static_cast<int>(r)) + " is invalid (" + *why +
                ")");
      }
    }
  }
  if (s.optimizer_kind != target.optimizer) {
    throw MismatchError("it holds " + std::string(optimizer_name(s.optimizer_kind)) +
                        " optimizer state, this run uses " +
                        std::string(optimizer_name(target.optimizer)));
  }
  if (s.strategy != target.strategy) {
    throw MismatchError("it was written by strategy " + s.strategy + ", this run uses " +
                        target.strategy + " (resume with --strategy " + s.strategy +
                        ", or start a new checkpoint_dir)");
  }
  check_model_signature(target.model, ModelSignature::of(s.model_name, s.model),
                        "model.safetensors");
  check_optimizer_state(s.optimizer, s.optimizer_kind, target.model);
  rank_state_for(s, target.rank, target.world);  // residuals agree across ranks
  return s;
}

}  // namespace dtrain
