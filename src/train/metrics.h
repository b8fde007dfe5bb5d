// MetricsSink: one JSON object per line, for machines (jq, pandas). Written by rank 0.
//
//   {"kind":"train","step":100,"epoch":0,"loss":0.53,"lr":0.05,"samples_per_sec":41000.0,
//    "bytes_communicated":812000,"comm_seconds":0.31,"elapsed_s":1.9}
//   {"kind":"eval","step":468,"epoch":0,"loss":0.41,"accuracy":0.853,...}
//
// loss: mean over all ranks (train: since the previous line; eval: the test split); accuracy: a
// fraction, present only for classification; samples_per_sec: all ranks together, over the
// interval; bytes_communicated / comm_seconds: cumulative for this rank (sent payload bytes;
// seconds blocked waiting for communication); elapsed_s since the first step.
// sync_payload_bytes / sync_dense_bytes: cumulative for this rank, the gradient (or local SGD
// parameter) averaging only: the exact payload bytes contributed (compressed buckets by their
// encoded size, headers in) and what the same averaging would have cost dense (their ratio is the
// compression ratio; equal without --compress).
// forward_s / backward_s / sync_s / optimizer_s: cumulative for this rank, the phases of its
// training steps (StepPhases in trainer.h); divided by step they give the time per step.
#pragma once

#include <fstream>
#include <optional>
#include <string>

#include "dtrain/trainer.h"

namespace dtrain {

struct MetricsRecord {
  std::string kind;  // "train" | "eval"
  int64_t step = 0;
  int64_t epoch = 0;
  double loss = 0;
  std::optional<double> accuracy;
  double lr = 0;
  double samples_per_sec = 0;
  uint64_t bytes_communicated = 0;
  double comm_seconds = 0;
  double elapsed_s = 0;
  uint64_t sync_payload_bytes = 0;
  uint64_t sync_dense_bytes = 0;
  StepPhases phases;  // cumulative for this rank
};

class MetricsSink {
 public:
  // path: a file (created/truncated), "-" for stdout, "" for nowhere. Throws IoError.
  explicit MetricsSink(const std::string& path);
  bool enabled() const { return enabled_; }
  void write(const MetricsRecord& record);

 private:
  bool enabled_ = false;
  bool to_stdout_ = false;
  std::ofstream file_;
};

// The line MetricsSink writes for `record` (no newline).
std::string metrics_json(const MetricsRecord& record);

}  // namespace dtrain
