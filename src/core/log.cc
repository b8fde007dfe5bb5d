#include "dtrain/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

#include "dtrain/error.h"

namespace dtrain {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

LogLevel parse_log_level(std::string_view text, std::string_view what) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "trace") return LogLevel::kTrace;
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warn" || lower == "warning") return LogLevel::kWarn;
  if (lower == "error") return LogLevel::kError;
  if (lower == "off") return LogLevel::kOff;
  throw InvalidArgumentError(std::string(what) + "='" + std::string(text) +
                             "' is not a log level (trace, debug, info, warn, error, off)");
}

LogLevel log_level_from_env(LogLevel fallback) {
  const char* value = std::getenv("DTRAIN_LOG_LEVEL");
  if (value == nullptr || *value == '\0') return fallback;
  return parse_log_level(value, "DTRAIN_LOG_LEVEL");
}

std::string log_pattern(int rank, std::string_view name) {
  // %L: one-letter level; %e: milliseconds. The rank is fixed text, so '%' cannot appear in it;
  // a name is escaped in case it holds one.
  std::string who;
  if (rank >= 0) {
    who = "rank " + std::to_string(rank);
  } else {
    for (char c : name) {
      who += c;
      if (c == '%') who += '%';
    }
  }
  return "[%L %H:%M:%S.%e " + who + "] %v";
}

void init_logging(const LogOptions& options) {
  spdlog::sink_ptr sink = options.sink;
  if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("dtrain", std::move(sink));
  logger->set_pattern(log_pattern(options.rank, options.name));
  logger->set_level(to_spdlog(options.level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

void init_logging(int rank, LogLevel level) {
  LogOptions options;
  options.rank = rank;
  options.level = level;
  init_logging(options);
}

}  // namespace dtrain
