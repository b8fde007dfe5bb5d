// Private to src/train and src/cli: the key table behind TrainConfig's text interface, the
// config-file reader, and the conversions of validated values.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/config.h"

namespace dtrain {

struct KeyHandler {
  // (config, canonical key, text value): parses the text, checks it against the key's range and
  // sets the field; throws InvalidArgumentError naming the key, the value and the range.
  std::function<void(TrainConfig&, std::string_view, std::string_view)> set;
  std::function<std::string(const TrainConfig&)> get;
  // (config, canonical key): the same range check on the field's current value (a config built
  // in C++); throws like `set`. Empty for keys whose every value is accepted here.
  std::function<void(const TrainConfig&, std::string_view)> check;
  // The key takes a list (a JSON array is accepted for it, and only for it).
  bool list = false;
  // The value's type as `--help` shows it: INT, REAL, BOOL, TEXT, PATH, a form like N|Ts, or the
  // choices of a named value, {a,b,c}. Empty: derived by key_type_name.
  std::string type;
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
// The range check of every key (KeyHandler::check), in table order.
void check_key_ranges(const TrainConfig& config);
// The type name of `entry` for `--help` (KeyHandler::type): its own, else the choices of a key
// whose range lists names ("sgd | adam" -> {sgd,adam}), else BOOL for a switch, else TEXT.
std::string key_type_name(const KeyEntry& entry);

// A config file's text and its format (JSON if the name ends in .json or the text starts with
// '{'). The file must be a regular file (a directory, FIFO or device is refused without being
// read) of at most kMaxConfigFileBytes, with no NUL byte: InvalidArgumentError naming the path;
// IoError if it cannot be opened or read.
struct ConfigFileText {
  std::string text;
  bool json = false;
};
ConfigFileText read_config_file(const std::string& path);

// validate_config without the check that `model` names a built-in model (for a user's module,
// whose name only labels the output).
void validate_config_except_model(const TrainConfig& config);
// Seconds (a validated *_s key: finite, at most kMaxConfigSeconds) as whole milliseconds, at
// least 1 ms; clamped into [1 ms, kMaxConfigSeconds] for any other input, so it never overflows.
std::chrono::milliseconds milliseconds_of_seconds(double seconds);
// The communicator options a training job's config asks for: timeout_s bounds each operation
// (and, at least kDefaultTimeout, the connection), progress_nice the event loop's nice value.
CommOptions comm_options_for(const TrainConfig& config);

}  // namespace dtrain
