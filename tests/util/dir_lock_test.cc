// DirLock: one holder at a time, the refusal names the holder, released on destruction and by the
// kernel when the holding process dies.
#include "util/dir_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "util/error.h"

namespace bert::util {
namespace {

namespace fs = std::filesystem;

fs::path fresh(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("bert_dir_lock_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string refusal(const fs::path& dir) {
  try {
    DirLock::acquire(dir, "second");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    return e.what();
  }
  return "";
}

TEST(DirLock, SecondHolderIsRefusedNamingTheFirstUntilItReleases) {
  const fs::path dir = fresh("second");
  {
    DirLock first = DirLock::acquire(dir, "training");
    const std::string why = refusal(dir);
    EXPECT_NE(why.find(dir.string() + " is in use by another process (training pid " + std::to_string(::getpid()) + " on "),
              std::string::npos) << why;
    EXPECT_NE(why.find(" since "), std::string::npos) << why;
    EXPECT_NE(why.find("another checkpoint.dir"), std::string::npos) << why;
  }
  EXPECT_EQ(refusal(dir), "");  // released with the object
  fs::remove_all(dir);
}

TEST(DirLock, ALockLeftByADeadProcessDoesNotBlock) {
  const fs::path dir = fresh("dead");
  const pid_t child = ::fork();
  if (child == 0) {
    DirLock held = DirLock::acquire(dir, "doomed");
    ::_exit(0);  // no destructor: only the process's end releases it
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(refusal(dir), "");
  fs::remove_all(dir);
}

// wait_for blocks while another process holds the file and takes it the moment that one lets go.
TEST(DirLock, WaitForBlocksUntilTheHolderReleases) {
  const fs::path dir = fresh("wait");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    DirLock held = DirLock::wait_for(dir / "x.lock", "child");
    if (::write(ready[1], "r", 1) != 1) ::_exit(2);
    ::usleep(400 * 1000);
    ::_exit(0);  // the process's end releases it
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  const auto start = std::chrono::steady_clock::now();
  DirLock mine = DirLock::wait_for(dir / "x.lock", "parent");
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(waited, 0.2);  // it did wait for the child
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ::close(ready[0]);
  ::close(ready[1]);
  fs::remove_all(dir);
}

TEST(DirLock, MissingDirectoryIsAnIoError) {
  try {
    DirLock::acquire("/nonexistent/run", "training");
    ADD_FAILURE() << "locked a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/run/.lock"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bert::util
