// Strict JSON: file:line:column on syntax errors, duplicate keys, unknown keys with "did you mean",
// wrong types naming the path.
#include "util/json.h"

#include <gtest/gtest.h>

#include <functional>

namespace bert::util {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Json, SyntaxErrorsCarryLineAndColumn) {
  const std::string text = "{\n  \"a\": 1,\n  \"b\": ,\n}\n";
  const std::string e = error_of([&] { parse_json(text, "run.json"); });
  EXPECT_EQ(e.rfind("run.json:3:8:", 0), 0u) << e;  // line 3, the column of the stray ','
}

TEST(Json, DuplicateKeysAreErrorsNamingTheirPath) {
  const std::string e = error_of([] { parse_json("{\"training\": {\"lr\": 1, \"lr\": 2}}", "run.json"); });
  EXPECT_NE(e.find("training.lr"), std::string::npos) << e;
}

TEST(Json, ClosestMatchWithinThreeEdits) {
  EXPECT_EQ(closest_match("lrate", {"lr", "batch_size", "warmup_steps"}), "lr");
  EXPECT_EQ(closest_match("batchsize", {"lr", "batch_size"}), "batch_size");
  EXPECT_EQ(closest_match("completely_different", {"lr", "batch_size"}), "");
}

TEST(Json, SectionRejectsUnknownKeysAndWrongTypes) {
  const nlohmann::json j = {{"lr", "fast"}, {"batch_sise", 8}};
  {
    JsonSection s(j, "run.json", "training");
    EXPECT_NE(error_of([&] { s.get("lr", 1.0); }).find("run.json: training.lr"), std::string::npos);
  }
  JsonSection s(j, "run.json", "training");
  s.get("batch_size", 1);
  s.get<std::string>("lr", "");
  const std::string e = error_of([&] { s.finish(); });
  EXPECT_NE(e.find("training.batch_sise"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean \"batch_size\""), std::string::npos) << e;
  JsonSection absent(nlohmann::json(), "run.json", "runtime");  // an absent section: defaults
  EXPECT_EQ(absent.get("threads", 3), 3);
  EXPECT_NO_THROW(absent.finish());
}

// Found by tests/fuzz/json_config_fuzz: a number beyond a double made nlohmann throw out_of_range,
// which escaped parse_json (every caller expects util::Error) and ended bert-train with terminate().
TEST(Json, NumberTooLargeIsAnErrorWithLineAndColumn) {
  ErrorKind kind = ErrorKind::kRuntime;
  std::string e;
  try {
    parse_json("{\n  \"lr\": 1e999\n}\n", "run.json", ErrorKind::kUsage);
  } catch (const Error& err) {
    kind = err.kind();
    e = err.what();
  }
  EXPECT_EQ(kind, ErrorKind::kUsage);
  EXPECT_EQ(e.rfind("run.json:2:9:", 0), 0u) << e;  // line 2, the column where 1e999 starts
  EXPECT_NE(e.find("number overflow parsing '1e999'"), std::string::npos) << e;
  EXPECT_NE(error_of([] { parse_json("[-1e400]", "x.json"); }).find("x.json:1:2:"), std::string::npos);
}

// Values built in code (e.g. from command-line bytes) may hold invalid UTF-8: the wrong-type message
// shows U+FFFD instead of nlohmann throwing type_error 316 out of the message itself.
TEST(Json, WrongTypeMessageSurvivesInvalidUtf8) {
  const nlohmann::json j = {{"lr", "\xff"}};
  JsonSection s(j, "run.json", "training");
  const std::string e = error_of([&] { s.get("lr", 1.0); });
  EXPECT_NE(e.find("training.lr has the wrong type: expected a number, got \"\xEF\xBF\xBD\""), std::string::npos) << e;
  EXPECT_EQ(dump_for_message(nlohmann::json::array({"\xC3", 1})), "[\"\xEF\xBF\xBD\",1]");
}

// An integer key read as int used to take any JSON integer and truncate it to 32 bits, so
// "batch_size": 4294967328 ran with 32. Out of int's range is now a type error naming the key.
TEST(Json, IntegersOutsideIntAreRejectedNotTruncated) {
  const nlohmann::json j = {{"big", 4294967328ull}, {"low", -2147483649ll}, {"max", 2147483647}, {"min", -2147483648ll}};
  JsonSection s(j, "run.json", "training");
  const std::string e = error_of([&] { s.get("big", 1); });
  EXPECT_NE(e.find("run.json: training.big has the wrong type: expected an integer from -2147483648 to 2147483647, got 4294967328"),
            std::string::npos) << e;
  EXPECT_NE(error_of([&] { s.get("low", 1); }).find("got -2147483649"), std::string::npos);
  EXPECT_EQ(s.get("max", 1), 2147483647);
  EXPECT_EQ(s.get("min", 1), -2147483647 - 1);
  EXPECT_EQ(s.get<int64_t>("big", 1), 4294967328ll);  // int64 keys keep the whole value
}

}  // namespace
}  // namespace bert::util
