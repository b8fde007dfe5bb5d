// bench/allreduce: the allreduce benchmark as its own executable (the same driver and flags as
// `dtrain bench allreduce`; see allreduce_bench.h).
#include <exception>
#include <iostream>
#include <string>

#include "allreduce_bench.h"
#include "dtrain/error.h"

int main(int argc, char** argv) {
  dtrain::bench::AllreduceBenchOptions options;
  CLI::App app{"allreduce benchmark: dtrain vs raw Gloo vs OpenMPI"};
  app.name("allreduce");
  dtrain::bench::add_allreduce_bench_flags(app, options);
  CLI11_PARSE(app, argc, argv);
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  try {
    return dtrain::bench::run_allreduce_bench(options, command_line, std::cout);
  } catch (const std::exception& e) {
    std::cerr << "allreduce: error: " << e.what() << "\n";
    return 2;
  }
}
