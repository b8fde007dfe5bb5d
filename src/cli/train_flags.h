// The training flags shared by `dtrain train` and `dtrain run`: one CLI11 option per TrainConfig
// key (config.h), spelled `--global-batch` or `--global_batch`, plus `--config FILE`. `--help`
// shows each key's type (INT, REAL, PATH, {choices}, ...: key_type_name) and default.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "dtrain/config.h"

namespace dtrain::cli {

// Exit codes of `dtrain train` / `dtrain run`.
inline constexpr int kExitRuntime = 1;    // a runtime fault (peer lost, timeout, I/O, ...)
inline constexpr int kExitBadConfig = 2;  // bad flags, config file or values

struct TrainFlags {
  std::map<std::string, std::string> text;   // canonical key -> value given on the command line
  std::map<std::string, bool> switches;      // canonical key -> value of a switch
  std::map<std::string, CLI::Option*> options;
};

// Adds every TrainConfig key to `app`, bound to `flags` (which must outlive the parse).
void add_train_flags(CLI::App& app, TrainFlags& flags);

// The config: defaults, then the --config file, then the flags given. Validated (config.h);
// throws InvalidArgumentError / IoError.
TrainConfig config_from_flags(const TrainFlags& flags);

}  // namespace dtrain::cli
