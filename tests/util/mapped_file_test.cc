// MappedFile (the bytes as written, empty files, a clear error naming a missing path) and the small
// helpers of log and progress output.
#include "util/mapped_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"

namespace bert::util {
namespace {

namespace fs = std::filesystem;

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("bert_util_" + name + "_" + std::to_string(::getpid()));
}

TEST(MappedFile, MapsTheBytesAsWrittenAndMovesOwnership) {
  const fs::path p = temp("mapped.bin");
  std::string bytes(100000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  std::ofstream(p, std::ios::binary) << bytes;
  MappedFile m(p);
  ASSERT_EQ(m.size(), bytes.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), m.size()), bytes);
  MappedFile moved(std::move(m));
  EXPECT_EQ(moved.size(), bytes.size());
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.data(), nullptr);
  fs::remove(p);
}

TEST(MappedFile, EmptyFileHasNoBytesAndMissingFileIsAnInputError) {
  const fs::path p = temp("empty.bin");
  std::ofstream(p).close();
  MappedFile m(p);
  EXPECT_EQ(m.size(), 0u);
  fs::remove(p);
  try {
    MappedFile missing(p);
    ADD_FAILURE() << "mapped a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
}

TEST(Log, FileSinkGetsEveryLevelAtOrAboveTheConsoleLevel) {
  const fs::path p = temp("train.log");
  fs::remove(p);
  init_logging(LogLevel::kInfo);
  add_log_file(p);
  log_debug("hidden debug line");
  log_info("an info line");
  log_warn("a warning line");
  log_error("an error line");
  std::stringstream text;
  text << std::ifstream(p).rdbuf();
  EXPECT_EQ(text.str().find("hidden debug line"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("info an info line"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("warning a warning line"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("error an error line"), std::string::npos) << text.str();
  fs::remove(p);
}

TEST(Progress, DurationsAndNoRedrawWithoutATerminal) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(245), "4m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(0.0 / 0.0), "?");
  ProgressLine line;  // stderr is a file or pipe under ctest
  EXPECT_EQ(line.active(), stderr_is_tty());
  if (!line.active()) line.update("nothing is drawn");
}

}  // namespace
}  // namespace bert::util
