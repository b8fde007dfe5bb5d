// Fault injection specs (grammar in include/dtrain/elastic.h) and the FaultPlan that fires them.
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <charconv>
#include <climits>
#include <map>

#include "dtrain/elastic.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t at = s.find(sep);
    parts.push_back(trim(s.substr(0, at)));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

// Parses one spec ("kind:key=value,..."); `fail(message)` throws for it.
template <typename Fail>
FaultSpec parse_one(std::string_view spec, const Fail& fail) {
  size_t colon = spec.find(':');
  if (colon == std::string_view::npos) fail("expected KIND:KEY=VALUE,... (kill, delay or drop)");
  std::string_view kind = trim(spec.substr(0, colon));
  FaultSpec out;
  if (kind == "kill") {
    out.kind = FaultKind::kKill;
  } else if (kind == "delay") {
    out.kind = FaultKind::kDelay;
  } else if (kind == "drop") {
    out.kind = FaultKind::kDrop;
  } else {
    fail("unknown fault kind \"" + std::string(kind) + "\" (expected kill, delay or drop)");
  }
  std::map<std::string, int64_t, std::less<>> values;
  for (std::string_view field : split(spec.substr(colon + 1), ',')) {
    size_t eq = field.find('=');
    if (eq == std::string_view::npos)
      fail("expected KEY=VALUE, got \"" + std::string(field) + "\"");
    std::string key(trim(field.substr(0, eq)));
    std::string_view text = trim(field.substr(eq + 1));
    bool allowed = key == "rank" || key == "step" || (key == "ms" && out.kind == FaultKind::kDelay);
    if (!allowed) fail("unknown key \"" + key + "\" for " + std::string(kind));
    if (values.count(key) != 0) fail(key + " given twice");
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 0) {
      fail(key + " must be a non-negative integer, got \"" + std::string(text) + "\"");
    }
    if (key == "rank" && value > INT_MAX) fail("rank " + std::string(text) + " is out of range");
    values[key] = value;
  }
  if (values.count("rank") == 0) fail("missing rank=R");
  out.rank = static_cast<int>(values["rank"]);
  if (values.count("step") != 0) out.step = values["step"];
  if (out.kind == FaultKind::kDelay) {
    if (values.count("ms") == 0) fail("missing ms=M");
    out.delay = std::chrono::milliseconds(values["ms"]);
  } else if (!out.step) {
    fail("missing step=S");
  }
  return out;
}

}  // namespace

std::vector<FaultSpec> parse_fault_specs(std::string_view text, std::string_view what) {
  std::vector<FaultSpec> specs;
  for (std::string_view spec : split(text, ';')) {
    if (spec.empty()) continue;  // "a;b;" and blank text
    auto fail = [&](const std::string& problem) {
      throw InvalidArgumentError(std::string(what) + " \"" + std::string(spec) + "\": " + problem);
    };
    specs.push_back(parse_one(spec, fail));
  }
  return specs;
}

FaultPlan::FaultPlan(std::vector<FaultSpec> specs)
    : specs_(std::move(specs)), fired_(specs_.size(), false) {}

FaultPlan FaultPlan::parse(std::string_view text, std::string_view what) {
  return FaultPlan(parse_fault_specs(text, what));
}

FaultPlan FaultPlan::from_env(const EnvLookup& lookup) {
  auto value = lookup("DTRAIN_FAULT");
  return value ? parse(*value, "DTRAIN_FAULT") : FaultPlan();
}

FaultAction FaultPlan::at_step(int original_rank, int64_t step) {
  FaultAction action;
  for (size_t i = 0; i < specs_.size(); ++i) {
    const FaultSpec& spec = specs_[i];
    if (spec.rank != original_rank || (spec.step && *spec.step != step)) continue;
    if (spec.kind == FaultKind::kDelay) {
      action.delay += spec.delay;
      continue;
    }
    if (fired_[i]) continue;
    fired_[i] = true;
    (spec.kind == FaultKind::kKill ? action.kill : action.drop) = true;
  }
  return action;
}

void kill_self_for_fault_injection() {
  spdlog::warn("fault injection: raising SIGKILL on this process");
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
  for (;;) ::pause();  // SIGKILL cannot be caught: never reached past delivery
}

}  // namespace dtrain
