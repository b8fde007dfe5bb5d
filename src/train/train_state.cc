// Capture and restore of the training state (contract in train_state.h).
#include "train/train_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/string_utils.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "ddp/torch_dtype.h"
#include "dtrain/strategy.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

c10::ScalarType to_scalar_type(DType d) {
  switch (d) {
    case DType::kFloat32:
      return c10::ScalarType::Float;
    case DType::kFloat64:
      return c10::ScalarType::Double;
    case DType::kFloat16:
      return c10::ScalarType::Half;
    case DType::kBFloat16:
      return c10::ScalarType::BFloat16;
    case DType::kInt32:
      return c10::ScalarType::Int;
    case DType::kInt64:
      return c10::ScalarType::Long;
    case DType::kUInt8:
      return c10::ScalarType::Byte;
  }
  throw InvalidArgumentError("unsupported dtype in a snapshot");
}

// The optimizer's per-parameter state key (LibTorch keys it by the parameter's TensorImpl).
std::string optimizer_key(const torch::Tensor& p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}

const TensorRecord* find(const TensorMap& map, const std::string& name) {
  auto it = map.find(name);
  return it == map.end() ? nullptr : &it->second;
}


template <typename State>
void capture_adam_like(const torch::optim::OptimizerParamState& base, const std::string& name,
                       TensorMap& out) {
  const auto& s = static_cast<const State&>(base);
  int64_t step = s.step();
  out[name + ".step"] = TensorRecord::copy_of(name + ".step", DType::kInt64, {}, &step);
  out[name + ".exp_avg"] = record_of(name + ".exp_avg", s.exp_avg());
  out[name + ".exp_avg_sq"] = record_of(name + ".exp_avg_sq", s.exp_avg_sq());
  if (s.max_exp_avg_sq().defined()) {
    out[name + ".max_exp_avg_sq"] = record_of(name + ".max_exp_avg_sq", s.max_exp_avg_sq());
  }
}

template <typename State>
std::unique_ptr<torch::optim::OptimizerParamState> restore_adam_like(const TensorMap& in,
                                                                     const std::string& name,
                                                                     const torch::Tensor& p) {
  const TensorRecord* step = find(in, name + ".step");
  if (!step) return nullptr;  // not stepped yet
  const TensorRecord* avg = find(in, name + ".exp_avg");
  const TensorRecord* avg_sq = find(in, name + ".exp_avg_sq");
  if (!avg || !avg_sq || step->dtype != DType::kInt64 || step->bytes.size() != 8) {
    throw MismatchError("snapshot: incomplete Adam state for parameter '" + name + "'");
  }
  auto s = std::make_unique<State>();
  s->step(step->view<int64_t>()[0]);
  torch::Tensor a = torch::empty_like(p), b = torch::empty_like(p);
  copy_into(a, *avg, "optimizer state");
  copy_into(b, *avg_sq, "optimizer state");
  s->exp_avg(a);
  s->exp_avg_sq(b);
  if (const TensorRecord* m = find(in, name + ".max_exp_avg_sq")) {
    torch::Tensor c = torch::empty_like(p);
    copy_into(c, *m, "optimizer state");
    s->max_exp_avg_sq(c);
  }
  return s;
}

// Every parameter the optimizer holds, with its module name.
std::vector<std::pair<std::string, torch::Tensor>> optimizer_params(const TrainParts& parts) {
  std::map<const void*, std::string> names;
  for (const auto& item : parts.module->named_parameters()) {
    names[item.value().unsafeGetTensorImpl()] = item.key();
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& group : parts.optimizer->param_groups()) {
    for (const auto& p : group.params()) {
      auto it = names.find(p.unsafeGetTensorImpl());
      if (it == names.end()) {
        throw InvalidArgumentError(
            "snapshot: the optimizer holds a tensor that is not a parameter "
            "of the module");
      }
      out.emplace_back(it->second, p);
    }
  }
  return out;
}

TensorMap capture_optimizer(const TrainParts& parts) {
  TensorMap out;
  const auto& state = parts.optimizer->state();
  for (const auto& [name, p] : optimizer_params(parts)) {
    auto it = state.find(optimizer_key(p));
    if (it == state.end()) continue;
    switch (parts.optimizer_kind) {
      case OptimizerKind::kSgd: {
        const auto& s = static_cast<const torch::optim::SGDParamState&>(*it->second);
        if (s.momentum_buffer().defined()) {
          out[name + ".momentum_buffer"] =
              record_of(name + ".momentum_buffer", s.momentum_buffer());
        }
        break;
      }
      case OptimizerKind::kAdam:
        capture_adam_like<torch::optim::AdamParamState>(*it->second, name, out);
        break;
      case OptimizerKind::kAdamW:
        capture_adam_like<torch::optim::AdamWParamState>(*it->second, name, out);
        break;
    }
  }
  return out;
}

void restore_optimizer(const TensorMap& in, const TrainParts& parts) {
  auto& state = parts.optimizer->state();
  state.clear();
  size_t used = 0;
  for (const auto& [name, p] : optimizer_params(parts)) {
    std::unique_ptr<torch::optim::OptimizerParamState> s;
    switch (parts.optimizer_kind) {
      case OptimizerKind::kSgd:
        if (const TensorRecord* m = find(in, name + ".momentum_buffer")) {
          auto sgd = std::make_unique<torch::optim::SGDParamState>();
          torch::Tensor buf = torch::empty_like(p);
          copy_into(buf, *m, "optimizer state");
          sgd->momentum_buffer(buf);
          s = std::move(sgd);
          used += 1;
        }
        break;
      case OptimizerKind::kAdam:
        s = restore_adam_like<torch::optim::AdamParamState>(in, name, p);
        break;
      case OptimizerKind::kAdamW:
        s = restore_adam_like<torch::optim::AdamWParamState>(in, name, p);
        break;
    }
    if (s && parts.optimizer_kind != OptimizerKind::kSgd) {
      used += 3 + (find(in, name + ".max_exp_avg_sq") ? 1 : 0);
    }
    if (s) state[optimizer_key(p)] = std::move(s);
  }
  if (used != in.size()) {
    throw MismatchError(
        "snapshot: the optimizer state holds entries for parameters this model "
        "lacks");
  }
}

std::vector<uint8_t> capture_rng() {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  torch::Tensor state = gen.get_state();
  const auto* p = state.data_ptr<uint8_t>();
  return std::vector<uint8_t>(p, p + state.numel());
}

void restore_rng(const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) return;
  torch::Tensor state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(state.data_ptr(), bytes.data(), bytes.size());
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    throw CorruptError(std::string("snapshot: bad CPU generator state: ") +
                       e.what_without_backtrace());
  }
}

// Names of codec state entries that are per-rank residuals (averaged on a world-size change).
bool is_residual(const std::string& name) {
  return name.starts_with("ef/") || name.starts_with("powersgd.residual/");
}

}  // namespace

TensorRecord record_of(const std::string& name, const torch::Tensor& t) {
  torch::Tensor host = t.detach().to(torch::kCPU).contiguous();
  return TensorRecord::copy_of(name, to_dtype(host.scalar_type()),
                               std::vector<int64_t>(host.sizes().begin(), host.sizes().end()),
                               host.data_ptr());
}

// A tensor that owns a copy of the record's bytes.
torch::Tensor tensor_of(const TensorRecord& r) {
  torch::Tensor t = torch::empty(r.shape, torch::TensorOptions().dtype(to_scalar_type(r.dtype)));
  if (!r.bytes.empty()) std::memcpy(t.data_ptr(), r.bytes.data(), r.bytes.size());
  return t;
}

// Copies `r` into the live tensor `t` after checking that they agree in shape and dtype.
void copy_into(const torch::Tensor& t, const TensorRecord& r, const std::string& what) {
  std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
  if (shape != r.shape || to_dtype(t.scalar_type()) != r.dtype) {
    throw MismatchError("snapshot: " + what + " '" + r.name +
                        "' has another shape or dtype than the live one");
  }
  torch::NoGradGuard no_grad;
  t.copy_(tensor_of(r));
}

std::string rank_stem(const std::string& stem, int rank) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "-rank%05d", rank);
  return stem + buf;
}

ModelSignature live_model_signature(const TrainParts& parts) {
  ModelSignature sig;
  sig.name = parts.model_name;
  for (const auto& item : parts.module->named_parameters()) {
    const auto& t = item.value();
    sig.params.push_back({item.key(), to_dtype(t.scalar_type()),
                          std::vector<int64_t>(t.sizes().begin(), t.sizes().end())});
  }
  for (const auto& item : parts.module->named_buffers()) {
    const auto& t = item.value();
    sig.params.push_back({item.key(), to_dtype(t.scalar_type()),
                          std::vector<int64_t>(t.sizes().begin(), t.sizes().end())});
  }
  std::sort(sig.params.begin(), sig.params.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return sig;
}

TrainSnapshot capture(const TrainParts& parts, const LoopPosition& position, RankState rank_state,
                      int world_size, int64_t global_batch) {
  TrainSnapshot s;
  s.position = position;
  s.world_size = world_size;
  s.global_batch = global_batch;
  s.model_name = parts.model_name;
  s.optimizer_kind = parts.optimizer_kind;
  for (const auto& item : parts.module->named_parameters()) {
    s.model[item.key()] = record_of(item.key(), item.value());
  }
  for (const auto& item : parts.module->named_buffers()) {
    s.model[item.key()] = record_of(item.key(), item.value());
  }
  s.optimizer = capture_optimizer(parts);
  if (parts.strategy) {
    StrategyState state = parts.strategy->state();
    s.strategy = parts.strategy->name();
    s.strategy_options = parts.strategy->options();
    s.strategy_shared = std::move(state.shared);
    rank_state.compression = std::move(state.rank);
  } else {
    rank_state.compression.clear();
  }
  rank_state.rng_cpu = capture_rng();
  s.ranks.push_back(std::move(rank_state));
  return s;
}

RankState rank_state_for(const TrainSnapshot& snapshot, int rank, int world) {
  const auto& old = snapshot.ranks;
  if (old.empty()) return {};
  if (old.size() == 1) return old[0];
  if (static_cast<int>(old.size()) == world) return old[static_cast<size_t>(rank)];
  // Note [resharding rank states]: the mean of the old ranks' residuals and accumulators.
  RankState out = old[0];
  const double n = static_cast<double>(old.size());
  for (auto& [name, values] : out.compression) {
    if (!is_residual(name)) continue;
    std::vector<double> sum(values.size(), 0.0);
    for (const RankState& r : old) {
      auto it = r.compression.find(name);
      if (it == r.compression.end() || it->second.size() != values.size()) {
        throw MismatchError("snapshot: the ranks' compression residuals '" + name +
                            "' differ in presence or size");
      }
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += it->second[i];
    }
    for (size_t i = 0; i < sum.size(); ++i) values[i] = static_cast<float>(sum[i] / n);
  }
  double interval = 0, epoch = 0;
  for (const RankState& r : old) {
    interval += r.interval_loss_sum;
    epoch += r.epoch_loss_sum;
  }
  out.interval_loss_sum = interval / n;
  out.epoch_loss_sum = epoch / n;
  out.rng_cpu = old[static_cast<size_t>(rank) % old.size()].rng_cpu;
  return out;
}

RankState restore(const TrainSnapshot& snapshot, const TrainParts& parts, int rank, int world) {
  check_model_signature(live_model_signature(parts),
                        ModelSignature::of(snapshot.model_name, snapshot.model), "snapshot");
  if (snapshot.optimizer_kind != parts.optimizer_kind) {
    throw MismatchError(
        "snapshot: it holds " + std::string(optimizer_name(snapshot.optimizer_kind)) +
        " optimizer state, this run uses " + std::string(optimizer_name(parts.optimizer_kind)));
  }
  for (auto& item : parts.module->named_parameters()) {
    copy_into(item.value(), snapshot.model.at(item.key()), "parameter");
  }
  for (auto& item : parts.module->named_buffers()) {
    copy_into(item.value(), snapshot.model.at(item.key()), "buffer");
  }
  restore_optimizer(snapshot.optimizer, parts);
  RankState mine = rank_state_for(snapshot, rank, world);
  restore_rng(mine.rng_cpu);
  return mine;
}

}  // namespace dtrain
