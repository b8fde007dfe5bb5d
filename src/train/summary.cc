// The closing summary table and the TrainResult <-> JSON hand-over.
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "dtrain/error.h"
#include "dtrain/trainer.h"

namespace dtrain {
namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string bytes_text(uint64_t bytes) {
  double b = static_cast<double>(bytes);
  if (b >= 1e9) return fmt("%.2f GB", b / 1e9);
  if (b >= 1e6) return fmt("%.2f MB", b / 1e6);
  if (b >= 1e3) return fmt("%.2f kB", b / 1e3);
  return fmt("%.0f B", b);
}

std::string accuracy_text(const TrainResult& r) {
  return r.test_accuracy ? fmt("%.2f %%", *r.test_accuracy * 100.0) : std::string("n/a");
}

// "2.31 / 2.85 / 1.32 / 0.12 ms": forward / backward / sync / optimizer, mean per step.
std::string phases_text(const StepPhases& p) {
  if (p.steps == 0) return "n/a";
  double n = static_cast<double>(p.steps) / 1000.0;
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%.2f / %.2f / %.2f / %.2f ms", p.forward_s / n,
                p.backward_s / n, p.sync_s / n, p.optimizer_s / n);
  return buf;
}

std::vector<std::string> column(const TrainResult& r) {
  return {std::to_string(r.world_size) + (r.world_size == 1 ? " process" : " workers"),
          fmt("%.2f s", r.wall_seconds),
          fmt("%.0f samples/s", r.samples_per_sec),
          std::to_string(r.steps) + " x " + std::to_string(r.global_batch),
          fmt("%.4f", r.final_train_loss),
          fmt("%.4f", r.test_loss),
          accuracy_text(r),
          bytes_text(r.bytes_communicated),
          fmt("%.2f s", r.comm_seconds),
          phases_text(r.phases)};
}

}  // namespace

void print_summary(std::ostream& out, const TrainResult& result, const TrainResult* single) {
  std::vector<std::string> labels = {"",
                                     "wall time",
                                     "throughput",
                                     "steps x global batch",
                                     "final training loss",
                                     "test loss",
                                     "test accuracy",
                                     "bytes communicated",
                                     "time in communication",
                                     "step: fwd/bwd/sync/opt"};
  std::vector<std::vector<std::string>> columns = {labels, column(result)};
  if (single) columns.push_back(column(*single));
  if (result.commit_seconds > 0) {  // elastic runs: the cost of the in-memory commits
    columns[0].push_back("time in in-memory commits");
    for (size_t c = 1; c < columns.size(); ++c) {
      columns[c].push_back(fmt("%.3f s", (c == 1 ? result : *single).commit_seconds));
    }
  }
  if (result.recoveries > 0) {  // elastic runs that re-formed
    columns[0].push_back("group re-formations");
    columns[0].push_back("steps trained again");
    for (size_t c = 1; c < columns.size(); ++c) {
      const TrainResult& r = c == 1 ? result : *single;
      columns[c].push_back(std::to_string(r.recoveries));
      columns[c].push_back(std::to_string(r.steps_lost));
    }
  }
  std::vector<size_t> widths;
  for (const auto& col : columns) {
    size_t w = 0;
    for (const auto& cell : col) w = std::max(w, cell.size());
    widths.push_back(w);
  }
  auto rule = [&] {
    out << '+';
    for (size_t w : widths) out << std::string(w + 2, '-') << '+';
    out << '\n';
  };
  out << "Summary: " << result.model << " on " << result.dataset << "\n";
  rule();
  for (size_t row = 0; row < columns[0].size(); ++row) {
    out << '|';
    for (size_t c = 0; c < columns.size(); ++c) {
      const std::string& cell = columns[c][row];
      out << ' ' << cell << std::string(widths[c] - cell.size(), ' ') << " |";
    }
    out << '\n';
    if (row == 0) rule();
  }
  rule();
  if (single) {
    double speedup = result.wall_seconds > 0 ? single->wall_seconds / result.wall_seconds : 0;
    out << "speedup over 1 process: " << fmt("%.2fx", speedup) << "\n";
    if (result.test_accuracy && single->test_accuracy) {
      out << "accuracy difference (" << result.world_size << " workers - 1 process): "
          << fmt("%+.2f percentage points", (*result.test_accuracy - *single->test_accuracy) * 100)
          << "\n";
    } else {
      out << "test loss difference (" << result.world_size << " workers - 1 process): "
          << fmt("%+.6f", result.test_loss - single->test_loss) << "\n";
    }
  }
  out.flush();
}

std::string train_result_to_json(const TrainResult& r) {
  nlohmann::json j = {{"world_size", r.world_size},
                      {"global_batch", r.global_batch},
                      {"steps", r.steps},
                      {"samples", r.samples},
                      {"wall_seconds", r.wall_seconds},
                      {"samples_per_sec", r.samples_per_sec},
                      {"final_train_loss", r.final_train_loss},
                      {"epoch_losses", r.epoch_losses},
                      {"test_loss", r.test_loss},
                      {"test_accuracy", nullptr},
                      {"bytes_communicated", r.bytes_communicated},
                      {"comm_seconds", r.comm_seconds},
                      {"model", r.model},
                      {"dataset", r.dataset},
                      {"checkpoints_saved", r.checkpoints_saved},
                      {"checkpoint_stall_seconds", r.checkpoint_stall_seconds},
                      {"recoveries", r.recoveries},
                      {"steps_lost", r.steps_lost},
                      {"commit_seconds", r.commit_seconds},
                      {"phases",
                       {{"steps", r.phases.steps},
                        {"forward_s", r.phases.forward_s},
                        {"backward_s", r.phases.backward_s},
                        {"sync_s", r.phases.sync_s},
                        {"optimizer_s", r.phases.optimizer_s}}}};
  if (r.test_accuracy) j["test_accuracy"] = *r.test_accuracy;
  return j.dump();
}

namespace {

// A diverged run has NaN losses, which JSON writes as null: read null back as NaN.
double number_or_nan(const nlohmann::json& v) {
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

}  // namespace

TrainResult train_result_from_json(const std::string& text) {
  TrainResult r;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    r.world_size = j.at("world_size").get<int>();
    r.global_batch = j.at("global_batch").get<int64_t>();
    r.steps = j.at("steps").get<int64_t>();
    r.samples = j.at("samples").get<int64_t>();
    r.wall_seconds = j.at("wall_seconds").get<double>();
    r.samples_per_sec = j.at("samples_per_sec").get<double>();
    r.final_train_loss = number_or_nan(j.at("final_train_loss"));
    for (const auto& v : j.at("epoch_losses")) r.epoch_losses.push_back(number_or_nan(v));
    r.test_loss = number_or_nan(j.at("test_loss"));
    if (!j.at("test_accuracy").is_null()) r.test_accuracy = j.at("test_accuracy").get<double>();
    r.bytes_communicated = j.at("bytes_communicated").get<uint64_t>();
    r.comm_seconds = j.at("comm_seconds").get<double>();
    r.model = j.at("model").get<std::string>();
    r.dataset = j.at("dataset").get<std::string>();
    r.checkpoints_saved = j.value("checkpoints_saved", int64_t{0});
    r.checkpoint_stall_seconds = j.value("checkpoint_stall_seconds", 0.0);
    r.recoveries = j.value("recoveries", int64_t{0});
    r.steps_lost = j.value("steps_lost", int64_t{0});
    r.commit_seconds = j.value("commit_seconds", 0.0);
    if (j.contains("phases")) {
      const auto& p = j.at("phases");
      r.phases.steps = p.at("steps").get<int64_t>();
      r.phases.forward_s = p.at("forward_s").get<double>();
      r.phases.backward_s = p.at("backward_s").get<double>();
      r.phases.sync_s = p.at("sync_s").get<double>();
      r.phases.optimizer_s = p.at("optimizer_s").get<double>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw CorruptError(std::string("malformed train result JSON: ") + e.what());
  }
  return r;
}

}  // namespace dtrain
