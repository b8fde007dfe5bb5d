// TrainSnapshot <-> Checkpoint (the on-disk form; contract in train_state.h and
// docs/checkpoints.md "What the trainer saves").
#include <cmath>
#include <limits>

#include "dtrain/error.h"
#include "train/train_state.h"

namespace dtrain {
namespace {

constexpr const char* kRngName = "torch_cpu";
constexpr const char* kResidualStem = "residuals";

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

}  // namespace

Checkpoint to_checkpoint(TrainSnapshot s, const std::string& strategy) {
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
  c.strategy = strategy;
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
                        {"ranks", ranks}};
  c.files["model"] = std::move(s.model);
  if (!s.optimizer.empty()) c.files["optimizer"] = std::move(s.optimizer);
  return c;
}

TrainSnapshot from_checkpoint(const Checkpoint& c) {
  auto corrupt = [](const std::string& why) {
    throw CorruptError("checkpoint: trainer state in manifest.json: " + why);
  };
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
  return s;
}

}  // namespace dtrain
