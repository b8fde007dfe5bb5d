#include "cli/train_flags.h"

#include "dtrain/error.h"

namespace dtrain::cli {

void add_train_flags(CLI::App& app, TrainFlags& flags) {
  for (const ConfigKey& key : train_config_keys()) {
    std::string dashed = key.name;
    for (char& ch : dashed) {
      if (ch == '_') ch = '-';
    }
    std::string names = "--" + dashed;
    if (dashed != key.name) names += ",--" + key.name;
    CLI::Option* option = nullptr;
    if (key.is_switch) {
      option = app.add_flag(names, flags.switches[key.name], key.help);
    } else {
      option = app.add_option(names, flags.text[key.name], key.help);
      option->default_str(get_config_value(TrainConfig{}, key.name));
    }
    option->group("Training (also config-file keys)");
    flags.options[key.name] = option;
  }
}

TrainConfig config_from_flags(const TrainFlags& flags) {
  // The model picks the defaults (default_config_for_model): a flag, else the file, else mlp.
  const CLI::Option* file = flags.options.at("config");
  std::string model = TrainConfig{}.model;
  if (file->count() > 0) {
    TrainConfig from_file;
    apply_config_file(from_file, flags.text.at("config"));
    model = from_file.model;
  }
  if (flags.options.at("model")->count() > 0) model = flags.text.at("model");
  TrainConfig config = default_config_for_model(model);
  if (file->count() > 0) apply_config_file(config, flags.text.at("config"));
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
