// Shared pieces of the allreduce benchmark peers (dtrain, raw Gloo, OpenMPI).
//
// Peer protocol (what the driver, allreduce_bench_lib.cc, relies on):
//   <peer> --world N --plan BYTES:WARMUP:ITERS[,BYTES:WARMUP:ITERS...] [peer-specific flags]
// Rank 0 writes one JSON object per line on stdout per planned size, in plan order:
//   {"system": "...", "variant": "...", "world": N, "bytes": B, "iters": I,
//    "median_s": ..., "min_s": ..., "p90_s": ..., "algorithm": "...", "check": "ok"}
// Diagnostics go to stderr. Exit status 0 only if every rank finished and every check passed.
//
// Timing method, identical for the three systems: before each iteration all ranks pass a barrier
// (then, with --gap-us G, every rank computes for G microseconds, untimed: the CPU-bound work that
// precedes a training step's last gradient allreduce); each rank times its own allreduce call (steady clock, seconds); after all iterations the
// per-iteration times are reduced with max over ranks (one allreduce of a double array on the
// system under test, not timed); the reported figure is the median over iterations of that max.
// Buffers are float32, allocated once at the largest planned size and touched before timing.
// Timed iterations allreduce zeros (sums stay finite); after them, one checked allreduce of
// value rank+1 per element must give N(N+1)/2 everywhere.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dtrain::bench {

struct PlannedSize {
  size_t bytes = 0;  // multiple of 4 (float32 elements)
  int warmup = 0;
  int iters = 1;
};

struct PeerArgs {
  int world = 2;
  std::vector<PlannedSize> plan;
  std::chrono::microseconds gap{0};  // --gap-us: busy time between the barrier and each allreduce
  bool bind_cpu = false;  // --bind-to cpu: rank r runs on the (r mod m)-th of the m allowed CPUs
  // Flags this module does not know, "--name value" -> {"name", "value"}.
  std::map<std::string, std::string> extra;
};

// Parses the protocol above. Throws std::invalid_argument with a readable message.
PeerArgs parse_peer_args(int argc, char** argv);
// "4096:5:40,8192:5:40"
std::string format_plan(const std::vector<PlannedSize>& plan);
std::vector<PlannedSize> parse_plan(const std::string& text);

// Per-iteration seconds on this rank: `warmup` untimed runs, then `iters` timed ones, each after
// barrier() and `gap` of busy computation on this thread.
std::vector<double> time_iterations(int warmup, int iters, const std::function<void()>& barrier,
                                    const std::function<void()>& run,
                                    std::chrono::microseconds gap = {});

struct Summary {
  double median_s = 0;
  double min_s = 0;
  double p90_s = 0;
};
Summary summarize(std::vector<double> seconds);

// One result line of the protocol (without the trailing newline).
std::string result_line(const std::string& system, const std::string& variant, int world,
                        const PlannedSize& size, const Summary& summary,
                        const std::string& algorithm, bool check_ok);

// A float32 buffer of `count` elements, 64-byte aligned, every page touched (zeros).
class FloatBuffer {
 public:
  explicit FloatBuffer(size_t count);
  ~FloatBuffer();
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  float* data() { return data_; }
  size_t count() const { return count_; }

 private:
  float* data_ = nullptr;
  size_t count_ = 0;
};

// Fills data[0..count) with rank+1; after a sum allreduce over `world` ranks every element must
// equal world*(world+1)/2 (exact in float32 for small worlds).
void fill_check_values(float* data, size_t count, int rank);
bool check_sum(const float* data, size_t count, int world);

// Forks `world` child processes; child r runs body(r) and exits with its return value (a thrown
// exception is printed to stderr and gives 1). The parent waits up to `timeout` for all of them;
// if one fails or time runs out it kills the rest (SIGKILL). Returns 0 if all exited 0, else 1.
// With bind_cpu, child r first binds itself to the (r mod m)-th of the m CPUs this process may
// run on (as `dtrain launch --bind-to cpu` and `mpirun --bind-to core` do).
// Call it before creating any thread in this process.
int run_forked_ranks(int world, const std::function<int(int rank)>& body,
                     std::chrono::seconds timeout, bool bind_cpu = false);

}  // namespace dtrain::bench
