// TensorBoard event files: CRC-32C against RFC 3720's vectors, the records read back by our reader
// and by tensorboard's own EventAccumulator (the oracle, Python from $BERT_PYTHON), and the
// dropping of an abandoned branch's points.
#include "util/tensorboard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <algorithm>
#include <string>
#include <vector>

#include "util/crc32c.h"
#include "util/error.h"

namespace bert::util {
namespace {
namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("bert_tb_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// stdout of `cmd` (empty string and a failure if it exits non-zero).
std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << cmd;
  return out;
}

// A new event file in `dir` with one "train/loss" point per entry of `losses` (steps 1, 2, ...).
fs::path write_losses(const fs::path& dir, const std::vector<double>& losses) {
  EventFileWriter w(dir);
  for (size_t i = 0; i < losses.size(); ++i) w.add_scalars(static_cast<int64_t>(i + 1), {{"train/loss", losses[i]}});
  return w.path();
}

// What tensorboard's EventAccumulator reads from `dir`: tag -> [[step, value], ...].
nlohmann::json tensorboard_reads(const fs::path& dir) {
  const char* py = std::getenv("BERT_PYTHON");
  if (py == nullptr || *py == '\0') {
    ADD_FAILURE() << "BERT_PYTHON is not set: the tensorboard oracle is required";
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(capture(std::string(py) + " " BERT_SOURCE_DIR "/tests/oracle/read_tensorboard.py " +
                                       dir.string()))["scalars"];
}

TEST(Crc32c, MatchesTheRfc3720Vectors) {
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(descending), 0x113FDB5Cu);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c("56789", crc32c("1234")), 0xE3069283u);  // continued
}

TEST(TensorBoard, JsonRowsBecomeTypedTagsWithNestedObjectsFlattened) {
  const auto row = nlohmann::json::parse(
      R"({"type":"valid","step":200,"loss":2.5,"accuracy":0.25,"masking":"standard",)"
      R"("training_masking":{"accuracy":0.2,"loss":3.0},"ok":true})");
  Scalars s = json_scalars(row);
  std::sort(s.begin(), s.end());
  const Scalars want = {{"valid/accuracy", 0.25}, {"valid/loss", 2.5},
                        {"valid/training_masking/accuracy", 0.2}, {"valid/training_masking/loss", 3.0}};
  EXPECT_EQ(s, want);
}

TEST(TensorBoard, TensorboardReadsEveryScalarWeWrite) {
  const fs::path dir = fresh_dir("oracle");
  {
    EventFileWriter w(dir);
    for (int step = 1; step <= 5; ++step) {
      w.add_scalars(step, {{"train/loss", 10.0 / step}, {"train/lr", 1e-4 * step}});
    }
    w.add_scalars(5, {{"valid/accuracy", 0.3125}});
  }
  const auto ours = read_scalar_events(event_files(dir).at(0));
  ASSERT_EQ(ours.size(), 11u);
  EXPECT_EQ(ours[0].tag, "train/loss");
  EXPECT_EQ(ours[0].step, 1);
  EXPECT_FLOAT_EQ(ours[0].value, 10.0f);
  const nlohmann::json tb = tensorboard_reads(dir);
  ASSERT_TRUE(tb.contains("train/loss")) << tb.dump();
  ASSERT_EQ(tb["train/loss"].size(), 5u);
  for (int step = 1; step <= 5; ++step) {
    EXPECT_EQ(tb["train/loss"][step - 1][0], step);
    EXPECT_FLOAT_EQ(tb["train/loss"][step - 1][1].get<float>(), static_cast<float>(10.0 / step));
    EXPECT_FLOAT_EQ(tb["train/lr"][step - 1][1].get<float>(), static_cast<float>(1e-4 * step));
  }
  EXPECT_EQ(tb["valid/accuracy"], nlohmann::json::parse("[[5, 0.3125]]"));
  fs::remove_all(dir);
}

TEST(TensorBoard, ACorruptedRecordIsAClearError) {
  const fs::path dir = fresh_dir("corrupt");
  const fs::path file = write_losses(dir, {1.5});
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-6, std::ios::end);  // inside the last Event's bytes
  f.put('\x7f');
  f.close();
  try {
    read_scalar_events(file);
    ADD_FAILURE() << "a flipped byte was not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(TensorBoard, AResumeFromAnEarlierStepDropsTheAbandonedBranch) {
  // Steps 1..6 written, the run resumes from its step-3 checkpoint and writes 4..5 again: the view
  // must show 1..5 once each, the second branch's values at 4 and 5, nothing of the old 6.
  const fs::path dir = fresh_dir("resume");
  {
    EventFileWriter w(dir);
    for (int step = 1; step <= 6; ++step) w.add_scalars(step, {{"train/loss", 100.0 + step}});
  }
  drop_events_after(dir, 3);
  {
    EventFileWriter w(dir);
    w.session_start(4);  // the first step of the new branch
    for (int step = 4; step <= 5; ++step) w.add_scalars(step, {{"train/loss", 200.0 + step}});
  }
  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 2u);
  int64_t last_in_first = 0;
  for (const auto& e : read_scalar_events(files[0])) last_in_first = std::max(last_in_first, e.step);
  EXPECT_EQ(last_in_first, 3);
  const nlohmann::json tb = tensorboard_reads(dir);
  EXPECT_EQ(tb["train/loss"], nlohmann::json::parse("[[1,101],[2,102],[3,103],[4,204],[5,205]]")) << tb.dump();
  fs::remove_all(dir);
}

TEST(TensorBoard, ATornLastRecordIsDroppedOnResume) {
  const fs::path dir = fresh_dir("torn");
  const fs::path file = write_losses(dir, {1.0, 2.0});
  fs::resize_file(file, fs::file_size(file) - 3);  // a crash in the middle of the last write
  drop_events_after(dir, 10);
  const auto events = read_scalar_events(file);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].step, 1);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bert::util
