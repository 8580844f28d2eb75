// The one place a CLI main turns an exception into a log line and an exit code (STYLE.md: 1 failure,
// 2 usage or config error). Use inside a catch block:  } catch (...) { return report_exception(); }
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

#include "util/error.h"
#include "util/log.h"
#include "util/signals.h"

namespace bert::cli {

inline int report_exception() {
  try {
    throw;
  } catch (const util::Error& e) {
    if (e.kind() == util::ErrorKind::kInterrupted) {
      util::log_warn(e.what());
      return util::stop_signal() != 0 ? util::exit_code_for_signal(util::stop_signal()) : util::exit_code_for(e.kind());
    }
    util::log_error(e.what());
    return util::exit_code_for(e.kind());
  } catch (const c10::Error& e) {
    util::log_error(std::string("torch: ") + e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    util::log_error(e.what());
    return 1;
  }
}

}  // namespace bert::cli
