// Stop signals: the first SIGINT/SIGTERM only sets the flag the loop polls; a second one stops the
// process at once with that signal.
#include "util/signals.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

namespace bert::util {
namespace {

TEST(Signals, FirstSignalSetsTheFlag) {
  install_stop_handlers();
  clear_stop_signal();
  EXPECT_EQ(stop_signal(), 0);
  std::raise(SIGTERM);
  EXPECT_EQ(stop_signal(), SIGTERM);
  clear_stop_signal();
  std::raise(SIGINT);
  EXPECT_EQ(stop_signal(), SIGINT);
  clear_stop_signal();
  EXPECT_EQ(exit_code_for_signal(SIGINT), 130);
  EXPECT_EQ(exit_code_for_signal(SIGTERM), 143);
}

TEST(Signals, SecondSignalStopsAtOnce) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    install_stop_handlers();
    std::raise(SIGTERM);  // first: the flag
    if (stop_signal() != SIGTERM) ::_exit(3);
    std::raise(SIGTERM);  // second: the default action, the process dies here
    ::_exit(4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit code " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

}  // namespace
}  // namespace bert::util
