// Logging facade over spdlog. Callers pass finished strings, so torch translation units never
// include spdlog/fmt (LibTorch ships its own fmt headers, which must not meet Debian's libfmt).
#pragma once

#include <filesystem>
#include <string>

namespace bert::util {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Sets the console level and, when `file` is non-empty, also appends every line to that file.
void init_logging(LogLevel level, const std::filesystem::path& file = {});
// Adds a log file sink later (e.g. once the run directory exists).
void add_log_file(const std::filesystem::path& file);
// Puts `prefix` (e.g. "rank 1") before the level of every console line; `level` as init_logging.
void set_log_prefix(const std::string& prefix, LogLevel level);

void log_debug(const std::string& message);
void log_info(const std::string& message);
void log_warn(const std::string& message);
void log_error(const std::string& message);

// True when stderr is a terminal (progress displays redraw in place only then).
bool stderr_is_tty();

}  // namespace bert::util
