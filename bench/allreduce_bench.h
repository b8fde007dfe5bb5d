// The allreduce benchmark driver: dtrain's Communicator against raw Gloo and OpenMPI.
//
// For each world size it runs three peer executables (found next to the running executable, or
// in its parent folder): dtrain_allreduce_peer, gloo_allreduce_peer (AllreduceRing and
// AllreduceHalvingDoubling) and mpi_allreduce_peer under `mpirun`, over the same plan of sizes
// (powers of two from min_bytes to max_bytes) and with the same timing method (peer_common.h),
// then prints one markdown table per world size: latency (median), algorithm bandwidth
// (bytes / time) and bus bandwidth (2(n-1)/n * bytes / time) per system, and the ratios
// dtrain/peer of bus bandwidth. Reached as `dtrain bench allreduce` and as bench/allreduce.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace dtrain::bench {

struct AllreduceBenchOptions {
  std::vector<int> worlds = {2, 4};
  size_t min_bytes = size_t{4} << 10;   // 4 KiB
  size_t max_bytes = size_t{64} << 20;  // 64 MiB
  int iters = 40;                       // timed iterations per size, at most
  int warmup = 5;                       // untimed iterations per size, at most
  // Fewer iterations at large sizes: iters(size) = clamp(iter_budget_bytes / size, min_iters,
  // iters).
  size_t iter_budget_bytes = size_t{512} << 20;
  int min_iters = 8;
  std::vector<std::string> peers = {"gloo", "mpi"};  // besides dtrain
  std::vector<std::string> dtrain_algos = {"auto"};  // auto, ring, rd; the first is compared
  // Gloo's allreduces: ring and hd (its algorithm classes over registered buffers), fn (the
  // function gloo::allreduce over unbound buffers, what PyTorch's Gloo process group calls; not
  // run by default: on the 2-vCPU VM it stalls ~40 ms per step on 4 ranks, 0.5 s at 1 MiB).
  std::vector<std::string> gloo_algos = {"ring", "hd"};
  // dtrain's transports (CommOptions::transport): tcp (its own, authenticated) and/or gloo (Gloo's
  // TCP transport under the same communicator); the first is compared with the peers, the others
  // appear beside it with a ratio column each.
  std::vector<std::string> dtrain_transports = {"tcp"};
  bool dtrain_verify = true;       // CommOptions::verify_collectives
  bool dtrain_post_ahead = false;  // CommOptions::post_descriptors_ahead
  // Every system's rank r runs on one CPU, round-robin over the allowed CPUs (dtrain and Gloo
  // peers bind themselves; mpirun gets --bind-to core:overload-allowed). Default: unbound.
  bool bind_cpu = false;
  std::string dtrain_store = "file";  // file or tcp: how dtrain's ranks rendezvous
  // Set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ (4294967295) for every peer process alike,
  // so no system pays fresh-page faults for large temporary buffers (docs/performance.md).
  bool tune_malloc = true;
  // Each round runs every system once per world size, systems taking turns; the tables report,
  // per system and size, the median of the rounds' medians (or, with best_round, the lowest).
  // The median round damps bursts of load from other processes on a shared machine without
  // favouring the system whose times spread most, as the best round does.
  int rounds = 1;
  bool best_round = false;
  std::string json_path;  // write every result here too (empty: no file)
  int timeout_s = 600;    // bound on one peer run
  // Busy computation on every rank between the barrier and each allreduce (peer_common.h), as a
  // training step's backward precedes its last bucket's allreduce. 0: none.
  int gap_us = 0;
};

// Registers the flags of `options` on `app` (shared by `dtrain bench allreduce` and
// bench/allreduce, so both take the same flags).
void add_allreduce_bench_flags(CLI::App& app, AllreduceBenchOptions& options);

// The flags that reproduce `options` ("--world 2,4 --min 4KiB ..."), for reports.
std::string canonical_flags(const AllreduceBenchOptions& options);

// "4096", "4KiB", "4K", "64MiB", "1GiB" -> bytes. Throws InvalidArgumentError.
size_t parse_bytes(const std::string& text);

// Runs the benchmark, writes the tables on `out` and progress notes on stderr. Returns 0 when
// every run that was attempted succeeded and every check passed, 1 otherwise. Throws
// InvalidArgumentError for inconsistent options and NotFoundError if a peer executable is missing.
int run_allreduce_bench(const AllreduceBenchOptions& options, const std::string& command_line,
                        std::ostream& out);

}  // namespace dtrain::bench
