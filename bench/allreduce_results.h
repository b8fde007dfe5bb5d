// Results of the allreduce benchmark: parsing the peers' result lines and rendering tables.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dtrain::bench {

// One (system, world, size) measurement, as a peer reported it (peer_common.h).
struct AllreduceResult {
  std::string series;  // "dtrain:auto", "dtrain:ring", "gloo:ring", "gloo:hd", "mpi", ...
  int world = 0;
  size_t bytes = 0;
  int iters = 0;
  double median_s = 0;
  double min_s = 0;
  double p90_s = 0;
  std::string algorithm;  // what ran ("ring", "recursive_doubling", "halving_doubling", ...)
  bool ok = false;        // the peer's result check passed

  double algbw_gbps() const { return median_s > 0 ? bytes / median_s / 1e9 : 0; }
  // 2(n-1)/n * bytes / time, in GB/s (1e9 bytes per second).
  double busbw_gbps() const { return world > 0 ? algbw_gbps() * 2.0 * (world - 1) / world : 0; }
};

// Parses one peer line ({"system","variant",...}); the series is "mpi" for system "mpi", else
// "system:variant". Throws CorruptError for a malformed line.
AllreduceResult parse_result_line(const std::string& line);

// Per (series, world, bytes), one of the rounds' results: with `best`, the one with the lowest
// median; otherwise the one with the median median (the lower middle of an even count), a round
// that really ran. ok only if every round's check passed. Order: first appearance.
std::vector<AllreduceResult> pick_rounds(const std::vector<AllreduceResult>& rounds, bool best);

nlohmann::json to_json(const AllreduceResult& result);

// "4 KiB", "64 MiB"
std::string format_size(size_t bytes);
// "91.2 us", "1.23 ms", "0.41 s"
std::string format_seconds(double seconds);

// A markdown table for one world size: per size, each series' median latency and bus bandwidth
// (dtrain's primary series also algbw and the algorithm that ran), then the ratios of the primary
// series' busbw to "gloo:ring", to the better of gloo's series, and to "mpi" (those present).
void write_world_table(std::ostream& out, int world, const std::string& primary,
                       const std::vector<AllreduceResult>& results);

}  // namespace dtrain::bench
