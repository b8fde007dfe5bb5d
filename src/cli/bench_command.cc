// `dtrain bench allreduce [flags]`: runs the allreduce benchmark's driver (bench/allreduce, see
// bench/allreduce_bench.h) with the flags passed through unchanged, `--help` included. The driver
// is an executable of its own, so the dtrain binary links no benchmark code; this process becomes
// the driver (exec), which then reports itself as `dtrain bench allreduce ...`.
//
// The driver is looked for, relative to the folder of the dtrain binary, in
//   bench/allreduce                  the build folder (build/dtrain, build/bench/allreduce)
//   DTRAIN_BENCH_FROM_BINDIR/allreduce   an installed dtrain (bin/ -> libexec/dtrain/)
//   allreduce                        beside the dtrain binary
// and is a NotFoundError naming those paths when none exists (a build without the bench targets).
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "dtrain/error.h"

#ifndef DTRAIN_BENCH_FROM_BINDIR
#define DTRAIN_BENCH_FROM_BINDIR "../libexec/dtrain"
#endif

namespace dtrain::cli {
namespace {

namespace fs = std::filesystem;

fs::path find_driver(const std::string& name) {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) throw IoError("cannot find the dtrain binary's folder: " + error.message());
  const fs::path dir = self.parent_path();
  const std::vector<fs::path> candidates = {dir / "bench" / name,
                                            dir / DTRAIN_BENCH_FROM_BINDIR / name, dir / name};
  std::string looked;
  for (const fs::path& candidate : candidates) {
    if (::access(candidate.c_str(), X_OK) == 0 && fs::is_regular_file(candidate, error)) {
      return fs::weakly_canonical(candidate, error);
    }
    looked += (looked.empty() ? "" : ", ") + candidate.lexically_normal().string();
  }
  throw NotFoundError("the benchmark driver '" + name + "' is not built (looked for " + looked +
                      "); build it with `cmake --build <build folder> --target bench_" + name +
                      "` (a build configured with -DDTRAIN_BUILD_BENCH=ON)");
}

// Replaces this process with the driver; returns only by throwing.
int exec_driver(const std::string& name, const std::vector<std::string>& args) {
  const fs::path driver = find_driver(name);
  std::vector<std::string> argv = {"dtrain bench " +
                                   name};  // what the driver reports as its command
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  ::execv(driver.c_str(), c_argv.data());
  throw IoError("cannot run the benchmark driver " + driver.string() + ": " + std::strerror(errno));
}

}  // namespace

Subcommand add_bench_command(CLI::App& parent) {
  CLI::App* sub = parent.add_subcommand("bench", "Benchmarks: dtrain bench allreduce [flags]");
  sub->require_subcommand(1);
  CLI::App* allreduce = sub->add_subcommand(
      "allreduce",
      "Allreduce latency and bus bandwidth of dtrain vs raw Gloo vs OpenMPI, per size and world "
      "(the flags go to the driver bench/allreduce: `dtrain bench allreduce --help`)");
  allreduce->prefix_command();  // every argument from the first one on is the driver's
  allreduce->set_help_flag();   // so is --help
  return {sub, [allreduce] { return exec_driver("allreduce", allreduce->remaining()); }};
}

}  // namespace dtrain::cli
