#include "cli/train_flags.h"

#include <optional>

#include "dtrain/error.h"
#include "dtrain/strategy.h"
#include "train/config_internal.h"

namespace dtrain::cli {

void add_train_flags(CLI::App& app, TrainFlags& flags) {
  for (const KeyEntry& entry : key_table()) {
    const ConfigKey& key = entry.key;
    std::string dashed = key.name;
    for (char& ch : dashed) {
      if (ch == '_') ch = '-';
    }
    std::string names = "--" + dashed;
    if (dashed != key.name) names += ",--" + key.name;
    std::string help = key.help;
    // Numeric ranges only: the help of a named choice already lists its names.
    if (!key.range.empty() && key.range.find('|') == std::string::npos) {
      help += "; range " + key.range;
    }
    CLI::Option* option = nullptr;
    if (key.is_switch) {
      option = app.add_flag(names, flags.switches[key.name], help);
    } else {
      // The text goes to set_config_value unparsed (its errors, its ranges); CLI11 only shows
      // the key's type and the main job's default (reals in their shortest exact form).
      option = app.add_option(names, flags.text[key.name], help);
      option->type_name(key_type_name(entry));
      option->default_str(get_config_value(TrainConfig{}, key.name));
    }
    // A strategy's own keys under a heading of their own, in table order (after `strategy`).
    const std::string owner = strategy_of_config_key(key.name);
    option->group(owner.empty() ? "Training (also config-file keys)"
                                : "Strategy " + owner + " (with --strategy " + owner + ")");
    flags.options[key.name] = option;
  }
}

TrainConfig config_from_flags(const TrainFlags& flags) {
  // The model picks the defaults (default_config_for_model): a flag, else the file, else mlp.
  // The file is read once (read_config_file: a bounded regular file) and applied twice: to find
  // the model, then onto that model's defaults.
  const CLI::Option* file_option = flags.options.at("config");
  std::optional<ConfigFileText> file;
  const std::string& path = flags.text.at("config");
  std::string model = TrainConfig{}.model;
  if (file_option->count() > 0) {
    file = read_config_file(path);
    TrainConfig from_file;
    apply_config_text(from_file, file->text, file->json, path);
    model = from_file.model;
  }
  if (flags.options.at("model")->count() > 0) model = flags.text.at("model");
  TrainConfig config = default_config_for_model(model);
  if (file) {
    apply_config_text(config, file->text, file->json, path);
    config.config_file = path;
  }
  for (const auto& [name, option] : flags.options) {
    if (name == "config" || option->count() == 0) continue;
    if (auto it = flags.switches.find(name); it != flags.switches.end()) {
      set_config_value(config, name, it->second ? "true" : "false");
    } else {
      set_config_value(config, name, flags.text.at(name));
    }
  }
  validate_config(config);
  return config;
}

}  // namespace dtrain::cli
