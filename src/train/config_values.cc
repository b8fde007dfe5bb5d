#include "train/config_values.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "dtrain/error.h"

namespace dtrain {
namespace {

std::string format_bound(double v) {
  std::ostringstream os;
  os << v;  // 6 significant digits: "0.001", "604800", "1000"
  return os.str();
}

std::string int_want(IntRange range) {
  return "an integer in " + range.text();
}

}  // namespace

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string IntRange::text() const {
  return std::to_string(min) + ".." + std::to_string(max);
}

bool RealRange::contains(double v) const {
  if (!std::isfinite(v)) return false;
  if (min_open ? !(v > min) : !(v >= min)) return false;
  if (max_open ? !(v < max) : !(v <= max)) return false;
  return true;
}

std::string RealRange::text() const {
  return std::string(min_open ? "(" : "[") + format_bound(min) + ", " + format_bound(max) +
         (max_open ? ")" : "]");
}

void bad_value(std::string_view key, std::string_view value, std::string_view want) {
  throw InvalidArgumentError("config key '" + std::string(key) + "': bad value '" +
                             std::string(value) + "' (expected " + std::string(want) + ")");
}

int64_t parse_int(std::string_view key, std::string_view text, IntRange range) {
  std::string t = trim(text);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size() || !range.contains(v)) {
    bad_value(key, text, int_want(range));
  }
  return v;
}

uint64_t parse_uint64(std::string_view key, std::string_view text) {
  std::string t = trim(text);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size()) {
    bad_value(key, text, "an integer in 0..18446744073709551615");
  }
  return v;
}

double parse_real(std::string_view key, std::string_view text, RealRange range) {
  std::string t = trim(text);
  char* end = nullptr;
  double v = t.empty() ? 0 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !range.contains(v)) {
    bad_value(key, text, "a number in " + range.text());
  }
  return v;
}

bool parse_bool(std::string_view key, std::string_view text) {
  std::string t = trim(text);
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  bad_value(key, text, "true or false");
}

std::vector<int64_t> parse_int_list(std::string_view key, std::string_view text, IntRange item,
                                    size_t max_items) {
  const std::string want = "a list of at most " + std::to_string(max_items) + " integers in " +
                           item.text() + ", like [256, 128]";
  std::string t = trim(text);
  if (!t.empty() && t.front() == '[') {
    if (t.back() != ']') bad_value(key, text, want);
    t = trim(t.substr(1, t.size() - 2));
  }
  if (t.find_first_of("[]{}") != std::string::npos) {
    bad_value(key, text, want + "; nested lists are not accepted");
  }
  std::vector<int64_t> out;
  if (t.empty()) return out;
  size_t begin = 0;
  while (true) {
    size_t comma = t.find(',', begin);
    std::string one = trim(t.substr(begin, comma == std::string::npos ? comma : comma - begin));
    int64_t v = 0;
    auto [p, ec] = std::from_chars(one.data(), one.data() + one.size(), v);
    if (one.empty() || ec != std::errc() || p != one.data() + one.size() || !item.contains(v) ||
        out.size() == max_items) {
      bad_value(key, text, want);
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return out;
}

void check_int(std::string_view key, int64_t value, IntRange range) {
  if (!range.contains(value)) bad_value(key, std::to_string(value), int_want(range));
}

void check_real(std::string_view key, double value, RealRange range) {
  if (!range.contains(value)) bad_value(key, format_real(value), "a number in " + range.text());
}

std::string format_real(double v) {
  // The shortest of 15 and 17 significant digits that reads back as `v` ("0.05", not
  // "0.050000000000000003").
  for (int digits : {15, 17}) {
    std::ostringstream os;
    os.precision(digits);
    os << v;
    if (digits == 17 || std::strtod(os.str().c_str(), nullptr) == v) return os.str();
  }
  return {};
}

}  // namespace dtrain
