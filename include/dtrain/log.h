// Logging: spdlog's default logger, set up once per process with the rank in every line.
//
//   [I 12:00:01.123 rank 1] message        a worker (rank >= 0)
//   [W 12:00:01.123 launcher] message      a process that is not a rank (name shown instead)
//
// The letter is the level (T, D, I, W, E, C). After init_logging, code anywhere logs with
// spdlog::info(...), spdlog::warn(...): spdlog's default logger is the one process-wide logger
// dtrain accepts (it holds only the sink and the pattern).
//
// Thread safety: init_logging may race with nothing else that logs; call it first in main.
#pragma once

#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <string_view>

namespace dtrain {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// "trace", "debug", "info", "warn" (or "warning"), "error", "off"; case-insensitive.
// InvalidArgumentError naming `what` (e.g. "DTRAIN_LOG_LEVEL") for anything else.
LogLevel parse_log_level(std::string_view text, std::string_view what = "log level");

// The level named by DTRAIN_LOG_LEVEL, or `fallback` when it is unset or empty.
// InvalidArgumentError if it is set to an unknown name.
LogLevel log_level_from_env(LogLevel fallback = LogLevel::kInfo);

struct LogOptions {
  int rank = -1;                // >= 0: lines say "rank R"; < 0: lines say `name`
  std::string name = "dtrain";  // shown when rank < 0 (e.g. "launcher")
  LogLevel level = LogLevel::kInfo;
  spdlog::sink_ptr sink;  // where lines go; null = stderr
};

// Replaces spdlog's default logger by one with the pattern above. Idempotent; a later call wins.
void init_logging(const LogOptions& options);
// Shorthand for a rank (or rank < 0 = "dtrain").
void init_logging(int rank, LogLevel level);

// The spdlog pattern init_logging installs (exposed for tests and for custom sinks).
std::string log_pattern(int rank, std::string_view name);

}  // namespace dtrain
