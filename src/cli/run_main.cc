#include <exception>
#include <iostream>
#include <vector>

#include "cli/commands.h"
#include "dtrain/error.h"

namespace dtrain::cli {

int run_main(int argc, char** argv) {
  CLI::App app{"dtrain: distributed deep-learning training"};
  app.name("dtrain");
  app.require_subcommand(0, 1);
  std::vector<Subcommand> subcommands;
  for (AddSubcommand add : kSubcommands) subcommands.push_back(add(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // help on stdout, 0
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11's help() shows the usage of the subcommand that was being parsed.
    std::cerr << "dtrain: error: " << e.what() << "\n\n" << app.help();
    return kExitUsage;
  }

  for (const Subcommand& sub : subcommands) {
    if (!sub.app->parsed()) continue;
    try {
      return sub.run();
    } catch (const Error& e) {
      std::cerr << "dtrain: error: " << e.what() << "\n";
      return kExitError;
    } catch (const std::exception& e) {
      std::cerr << "dtrain: internal error: " << e.what() << "\n";
      return kExitError;
    }
  }
  std::cerr << app.help();
  return kExitUsage;
}

}  // namespace dtrain::cli
