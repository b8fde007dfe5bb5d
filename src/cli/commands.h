// The subcommands of the dtrain binary: a registry of one function per subcommand.
//
// Adding a subcommand `foo` is a new file src/cli/foo_command.cc defining
//   Subcommand add_foo_command(CLI::App& parent);
// (add the CLI11 sub-app with its options bound to state the returned action owns) plus its line
// in kSubcommands below. Nothing else: the file is picked up by the build's glob.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace dtrain {
struct LaunchOptions;
}

namespace dtrain::cli {

// Exit codes shared by the subcommands (a subcommand's own code, e.g. a worker's, passes through).
inline constexpr int kExitUsage = 2;   // bad flags or values: a usage message was printed
inline constexpr int kExitError = 2;   // a dtrain::Error before the work started

struct Subcommand {
  CLI::App* app = nullptr;  // the sub-app, owned by the parent app
  // Runs after a successful parse; returns the exit code. May throw dtrain::Error (printed by
  // run_main as "dtrain: error: <message>", exit kExitError).
  std::function<int()> run;
};

using AddSubcommand = Subcommand (*)(CLI::App& parent);

// The registry, one line per subcommand (defined in src/cli/<name>_command.cc), in the order
// `dtrain --help` lists them.
Subcommand add_launch_command(CLI::App& parent);  // launch_command.cc
Subcommand add_bench_command(CLI::App& parent);   // bench_command.cc
#if DTRAIN_HAVE_TORCH
Subcommand add_train_command(CLI::App& parent);  // train_command.cc
Subcommand add_run_command(CLI::App& parent);    // run_command.cc
#endif

// --bind-to none|cpu into `value`, for parse_cpu_binding (launch_command.cc; `dtrain run` shares
// it).
void add_bind_to_flag(CLI::App& sub, std::string& value);

// --elastic, --min-workers, --max-workers, --join (launch_command.cc; `dtrain run` shares them).
void add_elastic_launch_flags(CLI::App& sub, LaunchOptions& options);

inline constexpr AddSubcommand kSubcommands[] = {
    add_launch_command,
    add_bench_command,
#if DTRAIN_HAVE_TORCH
    add_train_command,
    add_run_command,
#endif
};

// Parses argv, runs the chosen subcommand, returns the process exit code. Never throws.
//   no subcommand            -> help on stderr, kExitUsage
//   --help                   -> help on stdout, 0
//   unknown flag, bad value  -> the error and the subcommand's usage on stderr, kExitUsage
int run_main(int argc, char** argv);

}  // namespace dtrain::cli
