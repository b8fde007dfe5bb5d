// Private to src/train: one config value from its text form, checked against the key's range.
// The building blocks of the key table (config_keys.cc).
//
// Every error is an InvalidArgumentError naming the key, the value and what is accepted:
//   config key 'epochs': bad value '0' (expected an integer in 1..1000000)
// A value that does not parse (text, overflow, a fraction for an integer) and a value outside the
// range get the same message, so `--epochs 9223372036854775808` and `--epochs 0` read alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dtrain {

// The largest step count or step interval a key accepts (Note [config ranges]).
inline constexpr int64_t kMaxConfigSteps = 1'000'000'000;

// Whitespace (isspace) stripped from both ends.
std::string trim(std::string_view s);

// An inclusive integer range, shown as "MIN..MAX".
struct IntRange {
  int64_t min = 0;
  int64_t max = 0;
  bool contains(int64_t v) const { return v >= min && v <= max; }
  std::string text() const;
};

// A range of finite reals, each end open or closed, shown as "(0, 1000]".
struct RealRange {
  double min = 0;
  double max = 0;
  bool min_open = false;
  bool max_open = false;
  bool contains(double v) const;
  std::string text() const;
};

[[noreturn]] void bad_value(std::string_view key, std::string_view value, std::string_view want);

// A decimal integer (optional leading '-', no '+', no fraction, no exponent) inside `range`.
int64_t parse_int(std::string_view key, std::string_view text, IntRange range);
// A decimal integer in 0..2^64-1.
uint64_t parse_uint64(std::string_view key, std::string_view text);
// A finite real (strtod syntax; inf and nan are refused) inside `range`.
double parse_real(std::string_view key, std::string_view text, RealRange range);
// true/1/yes/on or false/0/no/off.
bool parse_bool(std::string_view key, std::string_view text);
// "256,128", "[256, 128]", "[]" or "" (an empty list): at most `max_items` integers, each inside
// `item`. Nested lists and empty items ("256,,128", "256,") are refused.
std::vector<int64_t> parse_int_list(std::string_view key, std::string_view text, IntRange item,
                                    size_t max_items);

// Throw bad_value (with the value's text) when a field set in C++ is outside its range.
void check_int(std::string_view key, int64_t value, IntRange range);
void check_real(std::string_view key, double value, RealRange range);

// A real as text that parses back to the same double.
std::string format_real(double v);

}  // namespace dtrain
