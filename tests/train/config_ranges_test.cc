// The ranges of the key table (Note [config ranges] in src/train/config_keys.cc): every numeric
// key has one, both ends are accepted, one step past either end is refused by set_config_value
// and by validate_config alike, and the conversions of validated values cannot overflow.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "train/config_internal.h"

namespace dtrain {
namespace {

// Keys whose value is free text (names, paths, specs checked elsewhere).
bool is_text_key(const std::string& name) {
  for (const char* k : {"config", "model", "dataset", "data_dir", "compress", "metrics",
                        "checkpoint_dir", "resume", "fault"}) {
    if (name == k) return true;
  }
  return false;
}

TEST(ConfigRangesTest, EveryNonTextKeyHasARange) {
  for (const ConfigKey& key : train_config_keys()) {
    if (is_text_key(key.name)) continue;
    EXPECT_FALSE(key.range.empty()) << key.name;
  }
}

// "MIN..MAX" integer keys: both ends accepted, one past either end refused (set and validate).
TEST(ConfigRangesTest, IntegerKeysAcceptTheirEndsAndRefuseOnePast) {
  int checked = 0;
  for (const ConfigKey& key : train_config_keys()) {
    size_t dots = key.range.find("..");
    if (dots == std::string::npos || key.name == "hidden" || key.name == "checkpoint_every" ||
        key.name == "seed") {
      continue;
    }
    SCOPED_TRACE(key.name + " " + key.range);
    int64_t min = std::stoll(key.range.substr(0, dots));
    int64_t max = std::stoll(key.range.substr(dots + 2));
    ASSERT_LE(min, max);
    TrainConfig c;
    for (int64_t ok : {min, max}) {
      set_config_value(c, key.name, std::to_string(ok));
      EXPECT_EQ(get_config_value(c, key.name), std::to_string(ok));
    }
    for (int64_t bad : {min - 1, max + 1}) {
      try {
        set_config_value(c, key.name, std::to_string(bad));
        ADD_FAILURE() << bad << " accepted";
      } catch (const InvalidArgumentError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("'" + key.name + "'"), std::string::npos) << what;
        EXPECT_NE(what.find(std::to_string(bad)), std::string::npos) << what;
        EXPECT_NE(what.find(key.range), std::string::npos) << what;
      }
    }
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

// Real keys ("[a, b]", "(a, b]", ...): the closed ends are accepted, 10x past the upper end and
// a negative value refused; inf and nan are never accepted.
TEST(ConfigRangesTest, RealKeysRefuseHugeNegativeAndNonFinite) {
  int checked = 0;
  for (const ConfigKey& key : train_config_keys()) {
    if (key.range.empty() || (key.range[0] != '[' && key.range[0] != '(')) continue;
    SCOPED_TRACE(key.name + " " + key.range);
    size_t comma = key.range.find(',');
    double min = std::stod(key.range.substr(1, comma - 1));
    double max = std::stod(key.range.substr(comma + 1));
    TrainConfig c;
    if (key.range.back() == ']')
      EXPECT_NO_THROW(
          set_config_value(c, key.name, key.range.substr(comma + 2, key.range.size() - comma - 3)));
    if (key.range[0] == '[')
      EXPECT_NO_THROW(set_config_value(c, key.name, key.range.substr(1, comma - 1)));
    for (std::string bad : {std::to_string(max * 10), std::to_string(min - 1), std::string("inf"),
                            std::string("nan"), std::string("1e999")}) {
      EXPECT_THROW(set_config_value(c, key.name, bad), InvalidArgumentError) << bad;
    }
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

TEST(ConfigRangesTest, SecondsBecomeMillisecondsWithoutOverflow) {
  EXPECT_EQ(milliseconds_of_seconds(2.5), std::chrono::milliseconds(2500));
  EXPECT_EQ(milliseconds_of_seconds(1.1), std::chrono::milliseconds(1100));
  EXPECT_EQ(milliseconds_of_seconds(0.001), std::chrono::milliseconds(1));
  EXPECT_EQ(milliseconds_of_seconds(0), std::chrono::milliseconds(1));
  const auto week = std::chrono::milliseconds(static_cast<int64_t>(kMaxConfigSeconds * 1000));
  EXPECT_EQ(milliseconds_of_seconds(kMaxConfigSeconds), week);
  EXPECT_EQ(milliseconds_of_seconds(1e300), week);
  EXPECT_EQ(milliseconds_of_seconds(std::numeric_limits<double>::quiet_NaN()),
            std::chrono::milliseconds(1));
  TrainConfig c;
  set_config_value(c, "timeout_s", std::to_string(kMaxConfigSeconds));
  EXPECT_EQ(comm_options_for(c).timeout, week);
}

}  // namespace
}  // namespace dtrain
