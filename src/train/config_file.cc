// Config files: reading one (a bounded regular file), JSON through a SAX handler, and the flat
// YAML subset. Both formats hand each key's value as text to set_config_value, so files and
// flags share one parser and one range check per key (config_keys.cc).
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/regular_file.h"
#include "dtrain/config.h"
#include "dtrain/error.h"
#include "train/config_internal.h"
#include "train/config_values.h"

namespace dtrain {
namespace {

// Sets one key read from a file; `origin` (file, or file:line) prefixes the error.
void set_from_file(TrainConfig& config, const std::string& key, const std::string& value,
                   std::string_view origin) {
  if (canonical_key(key) == "config") {
    throw InvalidArgumentError(std::string(origin) +
                               ": key 'config' is not allowed in a config file");
  }
  try {
    set_config_value(config, key, value);
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(std::string(origin) + ": " + e.what());
  }
}

// Collects the keys of a JSON config file, in file order, as the text set_config_value reads.
// The document must be one object whose values are scalars, or for a list key (KeyHandler::list)
// a flat array of integers. A duplicate key (also `global_batch` beside `global-batch`), a nested
// value, null, or a number that overflows a double is an InvalidArgumentError naming the key.
class JsonConfigHandler : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit JsonConfigHandler(std::string_view origin) : origin_(origin) {}

  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

  bool null() override { fail("null is not a value"); }
  bool boolean(bool v) override { return scalar(v ? "true" : "false", false); }
  bool number_integer(number_integer_t v) override { return scalar(std::to_string(v), true); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(std::to_string(v), true); }
  bool number_float(number_float_t, const string_t& text) override {
    return scalar(text, false);  // the number as written: "0.1" stays 0.1
  }
  bool string(string_t& v) override { return scalar(v, false); }
  bool binary(binary_t&) override { fail("binary values are not accepted"); }

  bool start_object(std::size_t) override {
    if (depth_ == 0) {
      depth_ = 1;
      return true;
    }
    fail(depth_ == 1 ? "must be a number, string, boolean or list, not an object"
                     : "nested lists are not accepted (expected a list of integers)");
  }
  bool end_object() override {
    depth_ = 0;
    return true;
  }
  bool key(string_t& k) override {
    key_ = k;
    std::string canonical = canonical_key(k);
    if (auto it = seen_.find(canonical); it != seen_.end()) {
      fail(it->second == k ? "duplicate key (given twice)"
                           : "duplicate key (also given as '" + it->second + "')");
    }
    seen_.emplace(canonical, k);
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) top_level_not_object();
    if (depth_ == 2) fail("nested lists are not accepted (expected a list of integers)");
    if (!entry().handler.list) {
      fail("a list is not accepted here (expected " + wanted() + ")");
    }
    depth_ = 2;
    list_.clear();
    list_items_ = 0;
    return true;
  }
  bool end_array() override {
    depth_ = 1;
    entries_.emplace_back(key_, "[" + list_ + "]");
    return true;
  }

  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) override {
    if (e.id == 406 && depth_ > 0) {  // number overflow: name the key and its range
      fail("bad value '" + token + "' (expected " + wanted() + ")");
    }
    throw InvalidArgumentError(origin_ + ": malformed JSON at byte " + std::to_string(position) +
                               (key_.empty() ? "" : " (after key '" + key_ + "')") + ": " +
                               e.what());
  }

 private:
  // `text`: the value as set_config_value reads it; `integer`: a JSON integer (a list item must
  // be one).
  bool scalar(const std::string& text, bool integer) {
    if (depth_ == 0) top_level_not_object();
    if (depth_ == 1) {
      entries_.emplace_back(key_, text);
      return true;
    }
    if (!integer) fail("bad list item '" + text + "' (expected " + wanted() + ")");
    list_ += (list_items_++ ? "," : "") + text;
    return true;
  }
  // The table entry of the current key (an unknown key is an error naming it).
  const KeyEntry& entry() const {
    try {
      return find_key(key_);
    } catch (const InvalidArgumentError& e) {
      throw InvalidArgumentError(origin_ + ": " + e.what());
    }
  }
  // What the current key accepts, for an error message.
  std::string wanted() const {
    const std::string& range = entry().key.range;
    if (range.empty()) return "text";
    if (range.find('|') != std::string::npos) return "one of " + range;
    return "a value in " + range;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw InvalidArgumentError(origin_ + ": config key '" + key_ + "': " + why);
  }
  [[noreturn]] void top_level_not_object() const {
    throw InvalidArgumentError(origin_ + ": a config file must be a JSON object");
  }

  std::string origin_;
  int depth_ = 0;  // 0: outside the object, 1: in the object, 2: in a list value
  std::string key_;
  std::map<std::string, std::string> seen_;  // canonical key -> key as written
  std::string list_;
  size_t list_items_ = 0;
  std::vector<std::pair<std::string, std::string>> entries_;
};

void apply_json(TrainConfig& config, std::string_view text, std::string_view origin) {
  JsonConfigHandler handler(origin);
  nlohmann::json::sax_parse(text.data(), text.data() + text.size(), &handler);
  for (const auto& [key, value] : handler.entries()) set_from_file(config, key, value, origin);
}

// The YAML subset: `key: value` per line at column 0; `#` starts a comment (at line start or after
// whitespace); values may be quoted with ' or "; lists are `[a, b]`; `---` lines are ignored. A
// key given twice (also as `global_batch` and `global-batch`) is an error naming both lines.
void apply_yaml(TrainConfig& config, std::string_view text, std::string_view origin) {
  std::istringstream in{std::string(text)};
  std::string line;
  int line_no = 0;
  std::map<std::string, int> seen;  // canonical key -> line
  while (std::getline(in, line)) {
    ++line_no;
    std::string where = std::string(origin) + ":" + std::to_string(line_no);
    bool quoted = false;
    char quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      char ch = line[i];
      if (quoted) {
        if (ch == quote) quoted = false;
      } else if (ch == '"' || ch == '\'') {
        quoted = true;
        quote = ch;
      } else if (ch == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(line[i - 1])))) {
        line.resize(i);
        break;
      }
    }
    if (trim(line).empty() || trim(line) == "---") continue;
    if (std::isspace(static_cast<unsigned char>(line[0])) || trim(line).front() == '-') {
      throw InvalidArgumentError(where + ": only flat `key: value` YAML is supported");
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      throw InvalidArgumentError(where + ": expected `key: value`");
    }
    std::string key = trim(line.substr(0, colon));
    std::string value = trim(line.substr(colon + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    auto [it, fresh] = seen.emplace(canonical_key(key), line_no);
    if (!fresh) {
      throw InvalidArgumentError(where + ": config key '" + key +
                                 "': duplicate key (first given on line " +
                                 std::to_string(it->second) + ")");
    }
    set_from_file(config, key, value, where);
  }
}

}  // namespace

ConfigFileText read_config_file(const std::string& path) {
  const std::string what = "config file '" + path + "'";
  // The user named the file: one that is not a regular file is bad input, not an I/O fault.
  RegularFile file(
      path, {.what = what, .missing = ErrorCode::kIo, .not_regular = ErrorCode::kInvalidArgument});
  const std::string too_large =
      what + " is larger than " + std::to_string(kMaxConfigFileBytes) + " bytes";
  if (file.size() > kMaxConfigFileBytes) throw InvalidArgumentError(too_large);
  // Read at most one byte past the bound: a file that grew since fstat is refused too.
  ConfigFileText out;
  std::string& text = out.text;
  text.resize(kMaxConfigFileBytes + 1);
  text.resize(file.read(text.data(), text.size()));
  if (text.size() > kMaxConfigFileBytes) throw InvalidArgumentError(too_large);
  if (text.find('\0') != std::string::npos) {
    throw InvalidArgumentError(what + " is not text (it holds a NUL byte)");
  }
  out.json = path.ends_with(".json") || trim(text).starts_with("{");
  return out;
}

void apply_config_text(TrainConfig& config, std::string_view text, bool json,
                       std::string_view origin) {
  if (json) {
    apply_json(config, text, origin);
  } else {
    apply_yaml(config, text, origin);
  }
}

void apply_config_file(TrainConfig& config, const std::string& path) {
  ConfigFileText file = read_config_file(path);
  apply_config_text(config, file.text, file.json, path);
  config.config_file = path;
}

}  // namespace dtrain
