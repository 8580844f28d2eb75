// Terminal status line.
#include "util/progress.h"

#include <cstdio>

#include "util/log.h"

namespace bert::util {

ProgressLine::ProgressLine() : tty_(stderr_is_tty()) {}
ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::update(const std::string& text) {
  if (!tty_) return;
  std::string line = "\r" + text;
  if (text.size() < last_len_) line += std::string(last_len_ - text.size(), ' ');
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  last_len_ = text.size();
}

void ProgressLine::clear() {
  if (!tty_ || last_len_ == 0) return;
  std::fputs(("\r" + std::string(last_len_, ' ') + "\r").c_str(), stderr);
  std::fflush(stderr);
  last_len_ = 0;
}

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

}  // namespace bert::util
