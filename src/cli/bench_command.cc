// `dtrain bench allreduce [flags]`: the allreduce benchmark (bench/allreduce_bench.h). The driver
// runs the peer executables built by the bench targets (`--target bench_allreduce`), which sit
// next to the dtrain binary.
#include <iostream>
#include <memory>

#include "../../bench/allreduce_bench.h"
#include "cli/commands.h"

namespace dtrain::cli {

Subcommand add_bench_command(CLI::App& parent) {
  auto options = std::make_shared<bench::AllreduceBenchOptions>();
  CLI::App* sub = parent.add_subcommand("bench", "Benchmarks: dtrain bench allreduce [flags]");
  sub->require_subcommand(1);
  CLI::App* allreduce = sub->add_subcommand(
      "allreduce",
      "Allreduce latency and bus bandwidth of dtrain vs raw Gloo vs OpenMPI, per size and world");
  bench::add_allreduce_bench_flags(*allreduce, *options);
  return {sub, [options] {
            std::string command = "dtrain bench allreduce " + bench::canonical_flags(*options);
            return bench::run_allreduce_bench(*options, command, std::cout);
          }};
}

}  // namespace dtrain::cli
