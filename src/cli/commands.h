// The subcommands of the dtrain binary. Each adds itself to the CLI11 app in its own file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace dtrain::cli {

// Parses argv, runs the chosen subcommand, returns the process exit code. Never throws.
int run_main(int argc, char** argv);

}  // namespace dtrain::cli
