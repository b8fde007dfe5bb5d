#include "train/metrics.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "dtrain/error.h"

namespace dtrain {

MetricsSink::MetricsSink(const std::string& path) {
  if (path.empty()) return;
  enabled_ = true;
  if (path == "-") {
    to_stdout_ = true;
    return;
  }
  file_.open(path, std::ios::out | std::ios::trunc);
  if (!file_) throw IoError("cannot open metrics file '" + path + "'");
}

std::string metrics_json(const MetricsRecord& r) {
  nlohmann::ordered_json j = {{"kind", r.kind},
                      {"step", r.step},
                      {"epoch", r.epoch},
                      {"loss", r.loss}};
  if (r.accuracy) j["accuracy"] = *r.accuracy;
  j["lr"] = r.lr;
  j["samples_per_sec"] = r.samples_per_sec;
  j["bytes_communicated"] = r.bytes_communicated;
  j["comm_seconds"] = r.comm_seconds;
  j["elapsed_s"] = r.elapsed_s;
  j["sync_payload_bytes"] = r.sync_payload_bytes;
  j["sync_dense_bytes"] = r.sync_dense_bytes;
  j["forward_s"] = r.phases.forward_s;
  j["backward_s"] = r.phases.backward_s;
  j["sync_s"] = r.phases.sync_s;
  j["optimizer_s"] = r.phases.optimizer_s;
  return j.dump();
}

void MetricsSink::write(const MetricsRecord& record) {
  if (!enabled_) return;
  std::string line = metrics_json(record);
  std::ostream& out = to_stdout_ ? std::cout : static_cast<std::ostream&>(file_);
  out << line << '\n';
  out.flush();
  if (!out) throw IoError("writing metrics failed");
}

}  // namespace dtrain
