// Graceful-stop signals: the first SIGINT/SIGTERM only sets a flag that the training loop polls
// between steps (finish the step, save, exit 130/143); a second one terminates at once.
#pragma once

namespace bert::util {

// Installs the handlers (idempotent).
void install_stop_handlers();
// 0 while no stop was requested, else the signal number (SIGINT = 2, SIGTERM = 15).
int stop_signal();
// Forgets a requested stop (tests that raise a signal themselves).
void clear_stop_signal();
// Exit code for a stop by `signal`: 128 + signal (130 for SIGINT, 143 for SIGTERM).
inline int exit_code_for_signal(int signal) { return 128 + signal; }

}  // namespace bert::util
