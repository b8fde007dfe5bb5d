// Config files (JSON and a flat YAML subset), validation, and batch arithmetic.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dtrain/codec.h"
#include "dtrain/config.h"
#include "dtrain/elastic.h"
#include "dtrain/error.h"
#include "train/config_internal.h"

namespace dtrain {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

void set_from_file(TrainConfig& config, const std::string& key, const std::string& value,
                   std::string_view origin) {
  if (canonical_key(key) == "config") {
    throw InvalidArgumentError(std::string(origin) + ": key 'config' is not allowed in a config file");
  }
  try {
    set_config_value(config, key, value);
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(std::string(origin) + ": " + e.what());
  }
}

// A JSON scalar or array of scalars as the text set_config_value reads.
std::string json_to_text(const nlohmann::json& v, const std::string& key, std::string_view origin) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].is_array() || v[i].is_object()) break;
      out += (i ? "," : "") + json_to_text(v[i], key, origin);
    }
    return out + "]";
  }
  throw InvalidArgumentError(std::string(origin) + ": config key '" + key +
                             "' must be a number, string, boolean or list");
}

void apply_json(TrainConfig& config, std::string_view text, std::string_view origin) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InvalidArgumentError(std::string(origin) + ": malformed JSON: " + e.what());
  }
  if (!doc.is_object()) {
    throw InvalidArgumentError(std::string(origin) + ": a config file must be a JSON object");
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    set_from_file(config, it.key(), json_to_text(it.value(), it.key(), origin), origin);
  }
}

// The YAML subset: `key: value` per line at column 0; `#` starts a comment (at line start or after
// whitespace); values may be quoted with ' or "; lists are `[a, b]`; `---` lines are ignored.
void apply_yaml(TrainConfig& config, std::string_view text, std::string_view origin) {
  std::istringstream in{std::string(text)};
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string where = std::string(origin) + ":" + std::to_string(line_no);
    bool quoted = false;
    char quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      char ch = line[i];
      if (quoted) {
        if (ch == quote) quoted = false;
      } else if (ch == '"' || ch == '\'') {
        quoted = true;
        quote = ch;
      } else if (ch == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(line[i - 1])))) {
        line.resize(i);
        break;
      }
    }
    if (trim(line).empty() || trim(line) == "---") continue;
    if (std::isspace(static_cast<unsigned char>(line[0])) || trim(line).front() == '-') {
      throw InvalidArgumentError(where + ": only flat `key: value` YAML is supported");
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      throw InvalidArgumentError(where + ": expected `key: value`");
    }
    std::string key = trim(line.substr(0, colon));
    std::string value = trim(line.substr(colon + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    set_from_file(config, key, value, where);
  }
}

}  // namespace

void apply_config_text(TrainConfig& config, std::string_view text, bool json,
                       std::string_view origin) {
  if (json) {
    apply_json(config, text, origin);
  } else {
    apply_yaml(config, text, origin);
  }
}

void apply_config_file(TrainConfig& config, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  bool json = path.ends_with(".json") || trim(text).starts_with("{");
  apply_config_text(config, text, json, path);
  config.config_file = path;
}

TrainConfig default_config_for_model(std::string_view model) {
  TrainConfig c;
  c.model = std::string(model);
  if (model == "linreg") {
    c.dataset = "synthetic-linear";
    c.dataset_size = 8192;
    c.epochs = 5;
    c.lr = 0.1;
    c.schedule = LrScheduleKind::kWarmupCosine;
    c.warmup_steps = 10;
  }
  return c;
}

void validate_config(const TrainConfig& c) {
  const std::vector<std::string> models = {"linreg", "logreg", "mlp", "cnn", "transformer"};
  if (std::find(models.begin(), models.end(), c.model) == models.end()) {
    throw InvalidArgumentError("config key 'model': unknown model '" + c.model +
                               "' (linreg, logreg, mlp, cnn, transformer)");
  }
  validate_config_except_model(c);
}

void validate_config_except_model(const TrainConfig& c) {
  auto fail = [](const std::string& key, const std::string& why) {
    throw InvalidArgumentError("config key '" + key + "': " + why);
  };
  if (c.dataset.empty()) fail("dataset", "must not be empty");
  for (int64_t h : c.hidden) {
    if (h <= 0) fail("hidden", "widths must be positive");
  }
  if (c.layers <= 0) fail("layers", "must be positive");
  if (c.width <= 0) fail("width", "must be positive");
  if (c.heads <= 0 || c.width % c.heads != 0) fail("heads", "must be positive and divide width");
  if (c.context <= 0) fail("context", "must be positive");
  if (c.dataset_size < 0) fail("dataset_size", "must not be negative");
  if (c.epochs <= 0) fail("epochs", "must be positive");
  if (c.max_steps < 0) fail("max_steps", "must not be negative");
  if (c.global_batch < 0) fail("global_batch", "must not be negative");
  if (c.per_worker_batch < 0) fail("per_worker_batch", "must not be negative");
  if (c.global_batch > 0 && c.per_worker_batch > 0) {
    fail("global_batch", "give either global_batch or per_worker_batch, not both");
  }
  if (c.grad_accumulation <= 0) fail("grad_accumulation", "must be positive");
  if (c.local_sgd_period < 0) fail("local_sgd_period", "must not be negative");
  try {
    parse_codec_spec(c.compress);
  } catch (const InvalidArgumentError& e) {
    fail("compress", e.what());
  }
  if (c.compress_warmup_steps < 0) fail("compress_warmup_steps", "must not be negative");
  if (!(c.lr > 0)) fail("lr", "must be positive");
  if (c.momentum < 0 || c.momentum >= 1) fail("momentum", "must be in [0, 1)");
  if (c.weight_decay < 0) fail("weight_decay", "must not be negative");
  if (c.warmup_steps < 0) fail("warmup_steps", "must not be negative");
  if (c.step_size <= 0) fail("step_size", "must be positive");
  if (!(c.gamma > 0) || c.gamma > 1) fail("gamma", "must be in (0, 1]");
  if (c.min_lr < 0 || c.min_lr > c.lr) fail("min_lr", "must be in [0, lr]");
  if (c.eval_every < 0) fail("eval_every", "must not be negative");
  if (c.eval_batch <= 0) fail("eval_batch", "must be positive");
  if (c.log_every <= 0) fail("log_every", "must be positive");
  if (c.threads < 0) fail("threads", "must not be negative");
  if (!(c.bucket_mb > 0)) fail("bucket_mb", "must be positive");
  if (!(c.timeout_s > 0)) fail("timeout_s", "must be positive");
  if (c.progress_nice < 0 || c.progress_nice > 19) fail("progress_nice", "must be in 0..19");
  if (c.nproc <= 0) fail("nproc", "must be positive");
  parse_checkpoint_every(c.checkpoint_every);
  if (c.keep_checkpoints < 0) fail("keep_checkpoints", "must not be negative");
  if (c.min_workers < 0) fail("min_workers", "must not be negative");
  if (c.max_workers < 0) fail("max_workers", "must not be negative");
  if (c.max_workers > 0 && c.min_workers > c.max_workers) {
    fail("min_workers", "is larger than max_workers");
  }
  if (c.commit_every < 1) fail("commit_every", "must be at least 1");
  if (!(c.heartbeat_timeout_s > 0)) fail("heartbeat_timeout_s", "must be positive");
  if (!(c.rendezvous_timeout_s > 0)) fail("rendezvous_timeout_s", "must be positive");
  if (!c.fault.empty()) parse_fault_specs(c.fault, "config key 'fault'");
  if (c.resume == "auto" && c.checkpoint_dir.empty()) {
    fail("resume", "'auto' needs checkpoint_dir (the directory to search)");
  }
}

CheckpointEvery parse_checkpoint_every(std::string_view text) {
  std::string t = trim(text);
  auto bad = [&] {
    throw InvalidArgumentError("config key 'checkpoint_every': bad value '" + std::string(text) +
                               "' (expected a positive number of steps like 200, or of seconds "
                               "like 30s)");
  };
  CheckpointEvery every;
  if (t.empty()) bad();
  if (t.back() == 's') {
    std::string number = t.substr(0, t.size() - 1);
    char* end = nullptr;
    double v = number.empty() ? 0 : std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size() || !std::isfinite(v) || !(v > 0)) {
      bad();
    }
    every.seconds = v;
    return every;
  }
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || v <= 0) bad();
  every.steps = v;
  return every;
}

int64_t global_batch(const TrainConfig& c, int world) {
  if (world <= 0) throw InvalidArgumentError("world size must be positive");
  if (c.per_worker_batch > 0) return c.per_worker_batch * world;
  return c.global_batch > 0 ? c.global_batch : 128;
}

int64_t per_worker_batch(const TrainConfig& c, int world) {
  int64_t global = global_batch(c, world);
  if (global % world != 0) {
    throw InvalidArgumentError("config key 'global_batch': " + std::to_string(global) +
                               " does not divide by the " + std::to_string(world) +
                               " workers; use a multiple of " + std::to_string(world) +
                               " or set per_worker_batch");
  }
  int64_t per_worker = global / world;
  if (per_worker % c.grad_accumulation != 0) {
    throw InvalidArgumentError("config key 'grad_accumulation': the per-worker batch " +
                               std::to_string(per_worker) + " does not divide into " +
                               std::to_string(c.grad_accumulation) + " micro-batches");
  }
  return per_worker;
}

CommOptions comm_options_for(const TrainConfig& config) {
  CommOptions o;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(config.timeout_s * 1000));
  o.connect_timeout = std::max(o.timeout, kDefaultTimeout);
  o.progress_thread_nice = static_cast<int>(config.progress_nice);
  return o;
}

}  // namespace dtrain
