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

}  // namespace
}  // namespace bert::util
