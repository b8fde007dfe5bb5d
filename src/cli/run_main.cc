#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "dtrain/error.h"

namespace dtrain::cli {

int run_main(int argc, char** argv) {
  CLI::App app{"dtrain: distributed deep-learning training"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

}  // namespace dtrain::cli
