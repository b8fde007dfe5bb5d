// The table of TrainConfig keys: name, help, and how to read/write the field from text. Flags,
// config files and config_to_args all go through this one table, so their names cannot drift.
#include <charconv>
#include <cmath>
#include <sstream>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "train/config_internal.h"

namespace dtrain {
namespace {

[[noreturn]] void bad_value(std::string_view key, std::string_view value, std::string_view want) {
  throw InvalidArgumentError("config key '" + std::string(key) + "': bad value '" +
                             std::string(value) + "' (expected " + std::string(want) + ")");
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

int64_t parse_int(std::string_view key, std::string_view text) {
  std::string t = trim(text);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size()) bad_value(key, text, "an integer");
  return v;
}

double parse_double(std::string_view key, std::string_view text) {
  std::string t = trim(text);
  char* end = nullptr;
  double v = t.empty() ? 0 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(v)) bad_value(key, text, "a number");
  return v;
}

bool parse_bool(std::string_view key, std::string_view text) {
  std::string t = trim(text);
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  bad_value(key, text, "true or false");
}

// "256,128", "[256, 128]" or "" (an empty list).
std::vector<int64_t> parse_int_list(std::string_view key, std::string_view text) {
  std::string t = trim(text);
  if (!t.empty() && t.front() == '[') {
    if (t.back() != ']') bad_value(key, text, "a list like [256, 128]");
    t = t.substr(1, t.size() - 2);
  }
  std::vector<int64_t> out;
  if (trim(t).empty()) return out;
  std::stringstream ss(t);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(parse_int(key, item));
  return out;
}

std::string format_double(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

template <typename Field>
KeyHandler int_key(Field TrainConfig::*field) {
  return {[field](TrainConfig& c, std::string_view k, std::string_view v) {
            c.*field = static_cast<Field>(parse_int(k, v));
          },
          [field](const TrainConfig& c) { return std::to_string(c.*field); }};
}

KeyHandler double_key(double TrainConfig::*field) {
  return {[field](TrainConfig& c, std::string_view k, std::string_view v) {
            c.*field = parse_double(k, v);
          },
          [field](const TrainConfig& c) { return format_double(c.*field); }};
}

KeyHandler bool_key(bool TrainConfig::*field) {
  return {[field](TrainConfig& c, std::string_view k, std::string_view v) {
            c.*field = parse_bool(k, v);
          },
          [field](const TrainConfig& c) { return std::string(c.*field ? "true" : "false"); }};
}

KeyHandler string_key(std::string TrainConfig::*field) {
  return {[field](TrainConfig& c, std::string_view, std::string_view v) { c.*field = trim(v); },
          [field](const TrainConfig& c) { return c.*field; }};
}

KeyHandler optimizer_key() {
  return {[](TrainConfig& c, std::string_view k, std::string_view v) {
            std::string t = trim(v);
            if (t == "sgd") c.optimizer = OptimizerKind::kSgd;
            else if (t == "adam") c.optimizer = OptimizerKind::kAdam;
            else if (t == "adamw") c.optimizer = OptimizerKind::kAdamW;
            else bad_value(k, v, "sgd, adam or adamw");
          },
          [](const TrainConfig& c) { return std::string(optimizer_name(c.optimizer)); }};
}

KeyHandler schedule_key() {
  return {[](TrainConfig& c, std::string_view k, std::string_view v) {
            std::string t = trim(v);
            if (t == "constant") c.schedule = LrScheduleKind::kConstant;
            else if (t == "warmup-cosine" || t == "cosine") c.schedule = LrScheduleKind::kWarmupCosine;
            else if (t == "step") c.schedule = LrScheduleKind::kStep;
            else bad_value(k, v, "constant, warmup-cosine or step");
          },
          [](const TrainConfig& c) { return std::string(lr_schedule_name(c.schedule)); }};
}

KeyHandler hidden_key() {
  return {[](TrainConfig& c, std::string_view k, std::string_view v) {
            c.hidden = parse_int_list(k, v);
          },
          [](const TrainConfig& c) {
            if (c.hidden.empty()) return std::string("[]");
            std::string out;
            for (size_t i = 0; i < c.hidden.size(); ++i) {
              out += (i ? "," : "") + std::to_string(c.hidden[i]);
            }
            return out;
          }};
}

std::vector<KeyEntry> make_table() {
  using C = TrainConfig;
  return {
      {{"config", "config file (JSON, or flat YAML `key: value`); flags override it"},
       string_key(&C::config_file)},
      {{"model", "model: linreg | logreg | mlp | cnn | transformer"}, string_key(&C::model)},
      {{"hidden", "mlp hidden layer widths, e.g. 256,128"}, hidden_key()},
      {{"layers", "transformer blocks"}, int_key(&C::layers)},
      {{"width", "transformer model width"}, int_key(&C::width)},
      {{"heads", "transformer attention heads"}, int_key(&C::heads)},
      {{"context", "transformer context length (tokens)"}, int_key(&C::context)},
      {{"dataset", "dataset: fashion-mnist | synthetic-linear | text"}, string_key(&C::dataset)},
      {{"data_dir", "directory of the dataset files (default: the dataset's own)"},
       string_key(&C::data_dir)},
      {{"dataset_size", "training samples of a synthetic dataset (0 = its default)"},
       int_key(&C::dataset_size)},
      {{"epochs", "passes over the training split"}, int_key(&C::epochs)},
      {{"max_steps", "stop after this many optimizer steps (0 = no limit)"},
       int_key(&C::max_steps)},
      {{"global_batch", "samples per optimizer step over all workers (default 128)"},
       int_key(&C::global_batch)},
      {{"per_worker_batch", "samples per optimizer step on each worker"},
       int_key(&C::per_worker_batch)},
      {{"grad_accumulation", "micro-batches per optimizer step (sync on the last only)"},
       int_key(&C::grad_accumulation)},
      {{"local_sgd_period", "local SGD: average parameters every H steps (0 = off)"},
       int_key(&C::local_sgd_period)},
      {{"compress", "gradient compression: none | fp16 | bf16 | topk:R | randomk:R | qsgd:LEVELS | "
                    "sign | 2bit:THRESHOLD | powersgd:RANK [+ef|+noef]"},
       string_key(&C::compress)},
      {{"compress_warmup_steps", "optimizer steps synchronized dense before compression starts"},
       int_key(&C::compress_warmup_steps)},
      {{"optimizer", "sgd (with momentum) | adam | adamw"}, optimizer_key()},
      {{"lr", "peak learning rate"}, double_key(&C::lr)},
      {{"momentum", "SGD momentum"}, double_key(&C::momentum)},
      {{"weight_decay", "weight decay (decoupled for adamw)"}, double_key(&C::weight_decay)},
      {{"schedule", "learning-rate schedule: constant | warmup-cosine | step"}, schedule_key()},
      {{"warmup_steps", "linear warm-up steps"}, int_key(&C::warmup_steps)},
      {{"step_size", "step schedule: steps between decays"}, int_key(&C::step_size)},
      {{"gamma", "step schedule: decay factor"}, double_key(&C::gamma)},
      {{"min_lr", "cosine schedule: final learning rate"}, double_key(&C::min_lr)},
      {{"seed", "seed of initialisation and data order"}, int_key(&C::seed)},
      {{"eval_every", "evaluate every N steps (0 = end of each epoch)"}, int_key(&C::eval_every)},
      {{"eval_batch", "samples per forward pass in evaluation"}, int_key(&C::eval_batch)},
      {{"log_every", "metrics / progress every N steps"}, int_key(&C::log_every)},
      {{"threads", "intra-op threads per worker (0 = LibTorch default)"}, int_key(&C::threads)},
      {{"bucket_mb", "gradient bucket size, MiB"}, double_key(&C::bucket_mb)},
      {{"metrics", "JSON-lines metrics file ('-' = stdout, '' = none)"}, string_key(&C::metrics)},
      {{"timeout_s", "bound on each communication operation, seconds"}, double_key(&C::timeout_s)},
      {{"progress_nice", "nice value of the communication event loop, 0..19 (docs/training.md)"},
       int_key(&C::progress_nice)},
      {{"quiet", "no progress output (the summary is still printed)", true}, bool_key(&C::quiet)},
      {{"checkpoint_dir", "directory for checkpoints ('' = none)"}, string_key(&C::checkpoint_dir)},
      {{"checkpoint_every", "checkpoint interval: N (optimizer steps) or Ts (seconds), e.g. 30s"},
       string_key(&C::checkpoint_every)},
      {{"keep_checkpoints", "complete checkpoints to keep (0 = all)"},
       int_key(&C::keep_checkpoints)},
      {{"resume", "resume: '' (fresh) | auto (newest good checkpoint in checkpoint_dir) | PATH"},
       string_key(&C::resume)},
      {{"elastic", "re-form the group and go on when a worker dies (docs/elastic.md)", true},
       bool_key(&C::elastic)},
      {{"min_workers", "elastic: stop below this many workers (0 = 1)"}, int_key(&C::min_workers)},
      {{"max_workers", "elastic: at most this many workers (0 = nproc)"},
       int_key(&C::max_workers)},
      {{"commit_every", "elastic: in-memory commit every N optimizer steps"},
       int_key(&C::commit_every)},
      {{"heartbeat_timeout_s", "elastic: a worker silent this long is declared dead, seconds"},
       double_key(&C::heartbeat_timeout_s)},
      {{"rendezvous_timeout_s", "elastic: longest wait for min_workers to gather, seconds"},
       double_key(&C::rendezvous_timeout_s)},
      {{"fault", "fault injection: kill:rank=R,step=S | delay:rank=R,ms=M[,step=S] | "
                 "drop:rank=R,step=S (';' between several)"},
       string_key(&C::fault)},
      {{"nproc", "dtrain run: number of local workers"}, int_key(&C::nproc)},
      {{"compare_single", "dtrain run: also train on one process and compare", true},
       bool_key(&C::compare_single)},
  };
}

}  // namespace

std::string canonical_key(std::string_view key) {
  std::string out(key);
  for (char& ch : out) {
    if (ch == '-') ch = '_';
  }
  return out;
}

const std::vector<KeyEntry>& key_table() {
  static const std::vector<KeyEntry> table = make_table();  // immutable after first use
  return table;
}

const KeyEntry& find_key(std::string_view key) {
  std::string name = canonical_key(key);
  for (const KeyEntry& e : key_table()) {
    if (e.key.name == name) return e;
  }
  throw InvalidArgumentError("unknown config key '" + std::string(key) +
                             "' (see `dtrain train --help` for the accepted keys)");
}

const std::vector<ConfigKey>& train_config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const KeyEntry& e : key_table()) out.push_back(e.key);
    return out;
  }();
  return keys;
}

void set_config_value(TrainConfig& config, std::string_view key, std::string_view value) {
  const KeyEntry& e = find_key(key);
  e.handler.set(config, e.key.name, value);
}

std::string get_config_value(const TrainConfig& config, std::string_view key) {
  return find_key(key).handler.get(config);
}

std::vector<std::string> config_to_args(const TrainConfig& config) {
  std::vector<std::string> args;
  for (const KeyEntry& e : key_table()) {
    if (e.key.name == "config") continue;  // already folded into the other keys
    std::string flag = "--" + e.key.name;
    for (char& ch : flag) {
      if (ch == '_') ch = '-';
    }
    std::string value = e.handler.get(config);
    if (value.empty()) continue;  // empty strings are the defaults
    args.push_back(flag + "=" + value);
  }
  return args;
}

std::string_view optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd: return "sgd";
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kAdamW: return "adamw";
  }
  return "?";
}

std::string_view lr_schedule_name(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kConstant: return "constant";
    case LrScheduleKind::kWarmupCosine: return "warmup-cosine";
    case LrScheduleKind::kStep: return "step";
  }
  return "?";
}

}  // namespace dtrain
