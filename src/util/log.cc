// spdlog-backed implementation of the logging facade.
#include "util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace bert::util {
namespace {

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("bert", sink);
    l->set_pattern("[%H:%M:%S] %^%l%$ %v");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return instance;
}

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

void init_logging(LogLevel level, const std::filesystem::path& file) {
  logger()->set_level(to_spdlog(level));
  if (!file.empty()) add_log_file(file);
}

void add_log_file(const std::filesystem::path& file) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %l %v");
  sink->set_level(spdlog::level::debug);
  logger()->sinks().push_back(sink);
  logger()->flush_on(spdlog::level::info);
}

void set_log_prefix(const std::string& prefix, LogLevel level) {
  logger()->set_pattern("[%H:%M:%S] " + prefix + " %^%l%$ %v");
  logger()->set_level(to_spdlog(level));
}

void log_debug(const std::string& m) { logger()->debug(m); }
void log_info(const std::string& m) { logger()->info(m); }
void log_warn(const std::string& m) { logger()->warn(m); }
void log_error(const std::string& m) { logger()->error(m); }

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace bert::util
