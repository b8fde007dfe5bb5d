// dtrain: the command-line entry point. Each subcommand lives in its own file (commands.h).
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  return dtrain::cli::run_main(argc, argv);
}
