// A one-line live status on a terminal (redrawn in place on stderr), or nothing when stderr is not
// a terminal -- callers then log periodic plain lines instead.
#pragma once

#include <string>

namespace bert::util {

class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine();
  bool active() const { return tty_; }
  // Replaces the current status line (no-op when not a terminal).
  void update(const std::string& text);
  // Clears the line so that a log message can be printed cleanly.
  void clear();

 private:
  bool tty_;
  size_t last_len_ = 0;
};

// "1h02m", "4m05s", "12s".
std::string format_duration(double seconds);

}  // namespace bert::util
