// Atomic file and directory replacement: all-or-nothing, no temporaries left behind, clear errors.
#include "util/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "util/error.h"

namespace bert::util {
namespace {
namespace fs = std::filesystem;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("bert_util_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFile, WritesReplacesAndLeavesNoTemporary) {
  TempDir d;
  const fs::path f = d.path / "a.json";
  write_file_atomic(f, "first");
  EXPECT_EQ(read_file(f), "first");
  write_file_atomic(f, std::string(100000, 'x'));
  EXPECT_EQ(read_file(f), std::string(100000, 'x'));
  EXPECT_EQ(entries(d.path), 1u);  // no .tmp sibling
}

TEST(AtomicFile, FailureNamesThePathAndKeepsTheOldFile) {
  TempDir d;
  const fs::path f = d.path / "keep.txt";
  write_file_atomic(f, "old");
  // A write larger than the file size limit fails (SIGXFSZ ignored -> EFBIG), as a full disk would.
  struct rlimit old_limit {};
  ::getrlimit(RLIMIT_FSIZE, &old_limit);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  try {
    write_file_atomic(f, std::string(5000, 'n'));
    ADD_FAILURE() << "a write past RLIMIT_FSIZE succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find(f.string()), std::string::npos) << e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(read_file(f), "old");
  EXPECT_EQ(entries(d.path), 1u);
}

TEST(AtomicFile, ReadingAMissingFileIsAnInputError) {
  try {
    read_file("/nonexistent/file.txt");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/file.txt"), std::string::npos);
  }
}

TEST(AtomicDir, VisibleOnlyAfterCommitAndRemovedWhenAbandoned) {
  TempDir d;
  const fs::path out = d.path / "out";
  {
    AtomicDir dir(out);
    std::ofstream(dir.tmp_path() / "x") << "1";
    EXPECT_FALSE(fs::exists(out));
    dir.commit();
  }
  EXPECT_EQ(read_file(out / "x"), "1");
  {
    AtomicDir dir(out);  // replaces the old directory on commit
    std::ofstream(dir.tmp_path() / "y") << "2";
    dir.commit();
  }
  EXPECT_FALSE(fs::exists(out / "x"));
  EXPECT_EQ(read_file(out / "y"), "2");
  {
    AtomicDir abandoned(out);  // dies uncommitted (an exception, a full disk)
    std::ofstream(abandoned.tmp_path() / "z") << "3";
  }
  EXPECT_EQ(read_file(out / "y"), "2");
  EXPECT_EQ(entries(d.path), 1u);  // no .tmp-<pid> left
}

}  // namespace
}  // namespace bert::util
