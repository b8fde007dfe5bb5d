// Private to src/train and src/cli: the key table behind TrainConfig's text interface.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/config.h"

namespace dtrain {

struct KeyHandler {
  // (config, canonical key, text value); throws InvalidArgumentError on a bad value.
  std::function<void(TrainConfig&, std::string_view, std::string_view)> set;
  std::function<std::string(const TrainConfig&)> get;
};

struct KeyEntry {
  ConfigKey key;
  KeyHandler handler;
};

// Dashes to underscores.
std::string canonical_key(std::string_view key);
const std::vector<KeyEntry>& key_table();
// Throws InvalidArgumentError naming `key` if it is not in the table.
const KeyEntry& find_key(std::string_view key);
// validate_config without the check that `model` names a built-in model (for a user's module,
// whose name only labels the output).
void validate_config_except_model(const TrainConfig& config);
// The communicator options a training job's config asks for: timeout_s bounds each operation
// (and, at least kDefaultTimeout, the connection), progress_nice the event loop's nice value.
CommOptions comm_options_for(const TrainConfig& config);

}  // namespace dtrain
