// The table of TrainConfig keys: name, help, range, and how to read/write/check the field from
// text. Flags, config files, validate_config and config_to_args all go through this one table, so
// their names and ranges cannot drift.
#include <algorithm>
#include <limits>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/strategy.h"
#include "train/config_internal.h"
#include "train/config_values.h"

namespace dtrain {
namespace {

using C = TrainConfig;

// Note [config ranges]. Every numeric key has a range, checked when the key is set from text
// (the same set() for flags and files) and again by validate_config (a config built in C++). The
// bounds lie far beyond any real job; they are chosen so that no derived value can overflow:
//   - epochs <= 1e6 times the steps of an epoch (at most the examples of a split, far below
//     1e12) stays below 2^63 (TrainLoop's total step count);
//   - step counts <= 1e9 fit the int fields they are copied to (DdpOptions);
//   - seconds in [0.001, kMaxConfigSeconds] are at least 1 ms, and times 1000 (milliseconds)
//     or any small factor stay far inside int64;
//   - batches <= 2^30 times workers <= 4096 stay below 2^42, and an index plus eval_batch cannot
//     overflow (an eval_batch above the test split simply evaluates it in one pass);
//   - bucket_mb <= 65536 MiB in bytes fits size_t; workers, threads and counts fit int.
constexpr int64_t kMaxBatch = int64_t{1} << 30;
constexpr int64_t kMaxWorkers = 4096;
constexpr IntRange kSteps{0, kMaxConfigSteps};          // a step count or interval, 0 allowed
constexpr IntRange kPositiveSteps{1, kMaxConfigSteps};  // a step count or interval, at least 1
constexpr RealRange kSeconds{0.001, kMaxConfigSeconds};
constexpr IntRange kWidth{1, int64_t{1} << 20};  // a layer width
constexpr size_t kMaxHiddenLayers = 64;

KeyEntry int_key(const char* name, const char* help, int64_t C::*field, IntRange range) {
  KeyEntry e{{name, help, false, range.text()}, {}};
  e.handler.set = [field, range](C& c, std::string_view k, std::string_view v) {
    c.*field = parse_int(k, v, range);
  };
  e.handler.type = "INT";
  e.handler.get = [field](const C& c) { return std::to_string(c.*field); };
  e.handler.check = [field, range](const C& c, std::string_view k) {
    check_int(k, c.*field, range);
  };
  return e;
}

// A positive integer whose 0 in the struct means "not set" (global_batch, per_worker_batch): the
// text form of 0 is "", and a text value must lie in `range`.
KeyEntry unset_or_int_key(const char* name, const char* help, int64_t C::*field, IntRange range) {
  KeyEntry e = int_key(name, help, field, range);
  e.handler.get = [field](const C& c) { return c.*field == 0 ? "" : std::to_string(c.*field); };
  e.handler.check = [field, range](const C& c, std::string_view k) {
    if (c.*field != 0) check_int(k, c.*field, range);
  };
  return e;
}

KeyEntry real_key(const char* name, const char* help, double C::*field, RealRange range) {
  KeyEntry e{{name, help, false, range.text()}, {}};
  e.handler.set = [field, range](C& c, std::string_view k, std::string_view v) {
    c.*field = parse_real(k, v, range);
  };
  e.handler.type = "REAL";
  e.handler.get = [field](const C& c) { return format_real(c.*field); };
  e.handler.check = [field, range](const C& c, std::string_view k) {
    check_real(k, c.*field, range);
  };
  return e;
}

KeyEntry bool_key(const char* name, const char* help, bool C::*field) {
  KeyEntry e{{name, help, true, "true | false"}, {}};
  e.handler.set = [field](C& c, std::string_view k, std::string_view v) {
    c.*field = parse_bool(k, v);
  };
  e.handler.type = "BOOL";
  e.handler.get = [field](const C& c) { return std::string(c.*field ? "true" : "false"); };
  return e;
}

// Free text (names and paths; the names are checked by validate_config).
KeyEntry string_key(const char* name, const char* help, std::string C::*field) {
  KeyEntry e{{name, help, false, ""}, {}};
  e.handler.set = [field](C& c, std::string_view, std::string_view v) { c.*field = trim(v); };
  e.handler.type = "TEXT";
  e.handler.get = [field](const C& c) { return c.*field; };
  return e;
}

// `entry` with the type name `--help` shows (KeyHandler::type), e.g. PATH for a string key.
KeyEntry typed(KeyEntry entry, const char* type) {
  entry.handler.type = type;
  return entry;
}

KeyEntry seed_key() {
  KeyEntry e{{"seed", "seed of initialisation and data order", false,
              "0.." + std::to_string(std::numeric_limits<uint64_t>::max())},
             {}};
  e.handler.set = [](C& c, std::string_view k, std::string_view v) { c.seed = parse_uint64(k, v); };
  e.handler.type = "INT";
  e.handler.get = [](const C& c) { return std::to_string(c.seed); };
  return e;
}

KeyEntry optimizer_key() {
  KeyEntry e{{"optimizer", "sgd (with momentum) | adam | adamw", false, "sgd | adam | adamw"}, {}};
  e.handler.set = [](C& c, std::string_view k, std::string_view v) {
    std::string t = trim(v);
    if (t == "sgd")
      c.optimizer = OptimizerKind::kSgd;
    else if (t == "adam")
      c.optimizer = OptimizerKind::kAdam;
    else if (t == "adamw")
      c.optimizer = OptimizerKind::kAdamW;
    else
      bad_value(k, v, "sgd, adam or adamw");
  };
  e.handler.get = [](const C& c) { return std::string(optimizer_name(c.optimizer)); };
  return e;
}

KeyEntry strategy_key() {
  KeyEntry e{{"strategy", "how replicas stay consistent: ddp | localsgd | diloco", false,
              "ddp | localsgd | diloco"},
             {}};
  e.handler.set = [](C& c, std::string_view k, std::string_view v) {
    std::string t = trim(v);
    const auto& names = strategy_names();
    if (std::find(names.begin(), names.end(), t) == names.end()) {
      bad_value(k, v, "ddp, localsgd or diloco");
    }
    c.strategy = t;
  };
  e.handler.get = [](const C& c) { return c.strategy; };
  e.handler.check = [](const C& c, std::string_view) { check_strategy_keys(c); };
  return e;
}

KeyEntry schedule_key() {
  KeyEntry e{{"schedule", "learning-rate schedule: constant | warmup-cosine | step", false,
              "constant | warmup-cosine | step"},
             {}};
  e.handler.set = [](C& c, std::string_view k, std::string_view v) {
    std::string t = trim(v);
    if (t == "constant")
      c.schedule = LrScheduleKind::kConstant;
    else if (t == "warmup-cosine" || t == "cosine")
      c.schedule = LrScheduleKind::kWarmupCosine;
    else if (t == "step")
      c.schedule = LrScheduleKind::kStep;
    else
      bad_value(k, v, "constant, warmup-cosine or step");
  };
  e.handler.get = [](const C& c) { return std::string(lr_schedule_name(c.schedule)); };
  return e;
}

KeyEntry transport_key() {
  KeyEntry e{{"transport",
              "communication transport: tcp (dtrain's own, every connection authenticated) | "
              "gloo (Gloo's, unauthenticated)",
              false, "tcp | gloo"},
             {}};
  e.handler.set = [](C& c, std::string_view k, std::string_view v) {
    std::string t = trim(v);
    if (t != "tcp" && t != "gloo") bad_value(k, v, "tcp or gloo");
    c.transport = t;
  };
  e.handler.get = [](const C& c) { return c.transport; };
  e.handler.check = [](const C& c, std::string_view k) {
    if (c.transport != "tcp" && c.transport != "gloo") bad_value(k, c.transport, "tcp or gloo");
  };
  return e;
}

KeyEntry hidden_key() {
  KeyEntry e{{"hidden", "mlp hidden layer widths, e.g. 256,128", false,
              "0.." + std::to_string(kMaxHiddenLayers) + " widths in " + kWidth.text()},
             {}};
  e.handler.set = [](C& c, std::string_view k, std::string_view v) {
    c.hidden = parse_int_list(k, v, kWidth, kMaxHiddenLayers);
  };
  e.handler.get = [](const C& c) {
    if (c.hidden.empty()) return std::string("[]");
    std::string out;
    for (size_t i = 0; i < c.hidden.size(); ++i) {
      out += (i ? "," : "") + std::to_string(c.hidden[i]);
    }
    return out;
  };
  e.handler.check = [](const C& c, std::string_view k) {
    if (c.hidden.size() > kMaxHiddenLayers) {
      bad_value(k, std::to_string(c.hidden.size()) + " widths",
                "at most " + std::to_string(kMaxHiddenLayers));
    }
    for (int64_t h : c.hidden) check_int(k, h, kWidth);
  };
  e.handler.list = true;
  e.handler.type = "INT,...";
  return e;
}

// Checked by parsing (parse_checkpoint_every) at set time and by validate_config.
KeyEntry checkpoint_every_key() {
  KeyEntry e = string_key("checkpoint_every",
                          "checkpoint interval: N (optimizer steps) or Ts (seconds), e.g. 30s",
                          &C::checkpoint_every);
  e.key.range = kPositiveSteps.text() + " steps, or " +
                RealRange{0, kMaxConfigSeconds, true, false}.text() + " seconds as Ts";
  e.handler.set = [](C& c, std::string_view, std::string_view v) {
    parse_checkpoint_every(v);
    c.checkpoint_every = trim(v);
  };
  e.handler.type = "N|Ts";
  e.handler.check = [](const C& c, std::string_view) {
    parse_checkpoint_every(c.checkpoint_every);
  };
  return e;
}

std::vector<KeyEntry> make_table() {
  return {
      typed(string_key("config", "config file (JSON, or flat YAML `key: value`); flags override it",
                       &C::config_file),
            "PATH"),
      typed(string_key("model", "model: linreg | logreg | mlp | cnn | transformer", &C::model),
            "{linreg,logreg,mlp,cnn,transformer}"),
      hidden_key(),
      int_key("layers", "transformer blocks", &C::layers, {1, 1024}),
      int_key("width", "transformer model width", &C::width, {1, 65536}),
      int_key("heads", "transformer attention heads (must divide width)", &C::heads, {1, 1024}),
      int_key("context", "transformer context length (tokens)", &C::context, {1, 65536}),
      typed(string_key("dataset", "dataset: fashion-mnist | synthetic-linear | text", &C::dataset),
            "{fashion-mnist,synthetic-linear,text}"),
      typed(string_key("data_dir", "directory of the dataset files (default: the dataset's own)",
                       &C::data_dir),
            "PATH"),
      int_key("dataset_size", "training samples of a synthetic dataset (0 = its default)",
              &C::dataset_size, {0, 1'000'000'000}),
      int_key("epochs", "passes over the training split", &C::epochs, {1, 1'000'000}),
      int_key("max_steps", "stop after this many optimizer steps (0 = no limit)", &C::max_steps,
              kSteps),
      unset_or_int_key("global_batch",
                       "samples per optimizer step over all workers (default: per_worker_batch "
                       "times the workers)",
                       &C::global_batch, {1, kMaxBatch}),
      unset_or_int_key("per_worker_batch",
                       "samples per optimizer step on each worker (default 64 unless global_batch "
                       "is given)",
                       &C::per_worker_batch, {1, kMaxBatch}),
      int_key("grad_accumulation", "micro-batches per optimizer step (sync on the last only)",
              &C::grad_accumulation, {1, kMaxBatch}),
      strategy_key(),
      real_key("bucket_mb", "ddp: gradient bucket size, MiB", &C::bucket_mb, {0.001, 65536}),
      int_key("local_sgd_period", "localsgd: optimizer steps between parameter averagings",
              &C::local_sgd_period, kPositiveSteps),
      int_key("inner_steps", "diloco: inner optimizer steps per outer step (H)", &C::inner_steps,
              kPositiveSteps),
      real_key("outer_lr", "diloco: outer learning rate", &C::outer_lr, {0, 1000, true, false}),
      real_key("outer_momentum", "diloco: outer momentum", &C::outer_momentum,
               {0, 1, false, true}),
      bool_key("outer_nesterov", "diloco: Nesterov momentum in the outer step",
               &C::outer_nesterov),
      typed(string_key("compress",
                       "gradient compression: none | fp16 | bf16 | topk:R | randomk:R | "
                       "qsgd:LEVELS | sign | 2bit:THRESHOLD | powersgd:RANK [+ef|+noef]",
                       &C::compress),
            "SPEC"),
      int_key("compress_warmup_steps", "optimizer steps synchronized dense before compression",
              &C::compress_warmup_steps, kSteps),
      optimizer_key(),
      real_key("lr", "peak learning rate", &C::lr, {0, 1000, true, false}),
      real_key("momentum", "SGD momentum", &C::momentum, {0, 1, false, true}),
      real_key("weight_decay", "weight decay (decoupled for adamw)", &C::weight_decay, {0, 100}),
      schedule_key(),
      int_key("warmup_steps", "linear warm-up steps", &C::warmup_steps, kSteps),
      int_key("step_size", "step schedule: steps between decays", &C::step_size, kPositiveSteps),
      real_key("gamma", "step schedule: decay factor", &C::gamma, {0, 1, true, false}),
      real_key("min_lr", "cosine schedule: final learning rate (at most lr)", &C::min_lr,
               {0, 1000}),
      seed_key(),
      int_key("eval_every", "evaluate every N steps (0 = end of each epoch)", &C::eval_every,
              kSteps),
      int_key("eval_batch", "samples per forward pass in evaluation", &C::eval_batch,
              {1, kMaxBatch}),
      int_key("log_every", "metrics / progress every N steps", &C::log_every, kPositiveSteps),
      int_key("threads", "intra-op threads per worker (0 = LibTorch default)", &C::threads,
              {0, 1024}),
      typed(string_key("metrics", "JSON-lines metrics file ('-' = stdout, '' = none)", &C::metrics),
            "PATH"),
      real_key("timeout_s", "bound on each communication operation, seconds", &C::timeout_s,
               kSeconds),
      int_key("progress_nice", "nice value of the communication event loop (docs/training.md)",
              &C::progress_nice, {0, 19}),
      transport_key(),
      bool_key("quiet", "no progress output (the summary is still printed)", &C::quiet),
      typed(
          string_key("checkpoint_dir", "directory for checkpoints ('' = none)", &C::checkpoint_dir),
          "PATH"),
      checkpoint_every_key(),
      int_key("keep_checkpoints", "complete checkpoints to keep (0 = all)", &C::keep_checkpoints,
              {0, 1'000'000}),
      typed(
          string_key("resume",
                     "resume: '' (fresh) | auto (newest good checkpoint in checkpoint_dir) | PATH",
                     &C::resume),
          "auto|PATH"),
      bool_key("elastic", "re-form the group and go on when a worker dies (docs/elastic.md)",
               &C::elastic),
      int_key("min_workers", "elastic: stop below this many workers (0 = 1)", &C::min_workers,
              {0, kMaxWorkers}),
      int_key("max_workers", "elastic: at most this many workers (0 = nproc)", &C::max_workers,
              {0, kMaxWorkers}),
      int_key("commit_every", "elastic: in-memory commit every N optimizer steps", &C::commit_every,
              kPositiveSteps),
      real_key("heartbeat_timeout_s", "elastic: a worker silent this long is declared dead, s",
               &C::heartbeat_timeout_s, kSeconds),
      real_key("rendezvous_timeout_s", "elastic: longest wait for min_workers to gather, s",
               &C::rendezvous_timeout_s, kSeconds),
      typed(string_key("fault",
                       "fault injection: kill:rank=R,step=S | delay:rank=R,ms=M[,step=S] | "
                       "drop:rank=R,step=S (';' between several)",
                       &C::fault),
            "SPEC"),
      int_key("nproc", "dtrain run: number of local workers", &C::nproc, {1, kMaxWorkers}),
      bool_key("compare_single", "dtrain run: also train on one process and compare",
               &C::compare_single),
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

void check_key_ranges(const TrainConfig& config) {
  for (const KeyEntry& e : key_table()) {
    if (e.handler.check) e.handler.check(config, e.key.name);
  }
}

std::string key_type_name(const KeyEntry& entry) {
  if (!entry.handler.type.empty()) return entry.handler.type;
  const std::string& range = entry.key.range;
  if (range.find(" | ") != std::string::npos) {
    std::string choices = "{";
    for (char ch : range) {
      if (ch == '|') {
        choices += ',';
      } else if (ch != ' ') {
        choices += ch;
      }
    }
    return choices + "}";
  }
  return entry.key.is_switch ? "BOOL" : "TEXT";
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
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
  }
  return "?";
}

std::string_view lr_schedule_name(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kConstant:
      return "constant";
    case LrScheduleKind::kWarmupCosine:
      return "warmup-cosine";
    case LrScheduleKind::kStep:
      return "step";
  }
  return "?";
}

}  // namespace dtrain
