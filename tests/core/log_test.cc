#include "dtrain/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <regex>
#include <sstream>

#include "dtrain/error.h"

namespace dtrain {
namespace {

// Installs a logger writing into a string stream; restores a stderr logger afterwards.
class LogCapture {
 public:
  LogCapture(int rank, LogLevel level, std::string name = "dtrain") {
    LogOptions options;
    options.rank = rank;
    options.name = std::move(name);
    options.level = level;
    options.sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    init_logging(options);
  }
  ~LogCapture() { init_logging(-1, LogLevel::kInfo); }
  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::ostringstream stream_;
};

TEST(LogTest, EveryLineCarriesLevelTimeAndRank) {
  LogCapture capture(3, LogLevel::kInfo);
  spdlog::info("hello {}", 42);
  spdlog::warn("careful");
  std::string text = capture.text();
  std::regex pattern(
      "\\[I \\d\\d:\\d\\d:\\d\\d\\.\\d{3} rank 3\\] hello 42\n"
      "\\[W \\d\\d:\\d\\d:\\d\\d\\.\\d{3} rank 3\\] careful\n");
  EXPECT_TRUE(std::regex_match(text, pattern)) << text;
}

TEST(LogTest, NonRankProcessShowsItsName) {
  LogCapture capture(-1, LogLevel::kInfo, "launcher");
  spdlog::error("worker failed");
  std::regex pattern("\\[E \\d\\d:\\d\\d:\\d\\d\\.\\d{3} launcher\\] worker failed\n");
  std::string text = capture.text();
  EXPECT_TRUE(std::regex_match(text, pattern)) << text;
}

TEST(LogTest, LevelFiltersLowerLevels) {
  LogCapture capture(0, LogLevel::kWarn);
  spdlog::debug("no");
  spdlog::info("no");
  spdlog::warn("yes");
  std::string text = capture.text();
  EXPECT_EQ(text.find("no"), std::string::npos) << text;
  EXPECT_NE(text.find("yes"), std::string::npos) << text;
}

TEST(LogTest, PercentInNameIsLiteral) {
  EXPECT_EQ(log_pattern(-1, "a%b"), "[%L %H:%M:%S.%e a%%b] %v");
  EXPECT_EQ(log_pattern(7, "ignored"), "[%L %H:%M:%S.%e rank 7] %v");
}

TEST(LogTest, ParsesLevelNames) {
  EXPECT_EQ(parse_log_level("trace"), LogLevel::kTrace);
  EXPECT_EQ(parse_log_level("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("Info"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_EQ(parse_log_level("off"), LogLevel::kOff);
  try {
    parse_log_level("loud", "DTRAIN_LOG_LEVEL");
    FAIL() << "accepted an unknown level";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("DTRAIN_LOG_LEVEL='loud'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dtrain
