// Labelled files for fine-tuning (TSV with and without a header, CSV with quoting, JSONL), the
// label set, and classification metrics against hand-computed (sklearn-defined) values.
#include <gtest/gtest.h>

#include <fstream>

#include "eval/classification_metrics.h"
#include "eval/labelled_data.h"
#include "text/unicode.h"
#include "eval_fixtures.h"
#include "util/error.h"

namespace bert::eval {
namespace {

namespace fs = std::filesystem;

class LabelledData : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name()); }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  fs::path write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
    return dir_ / name;
  }
  // The message of the Error(kInput) reading `path` throws ("" when it does not throw).
  std::string error_of(const fs::path& path, const LabelledColumns& c = {}) {
    try {
      read_labelled_file(path, c);
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kInput) << e.what();
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(LabelledData, TsvWithAHeaderSelectsColumnsByNameAndKeepsPolishText) {
  const auto f = write("a.tsv", "\xEF\xBB\xBFid\tlabel\ttext\r\n1\tpl\tZażółć gęślą jaźń\r\n\n2\ten\tThe quick fox\r\n");
  const LabelledFile r = read_labelled_file(f, {});
  EXPECT_EQ(r.format, "tsv");
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[0].text, "Zażółć gęślą jaźń");
  EXPECT_EQ(r.examples[0].label, "pl");
  EXPECT_EQ(r.examples[0].line, 2);
  EXPECT_EQ(r.examples[1].text, "The quick fox");
  EXPECT_EQ(r.examples[1].line, 4);  // the empty line 3 is skipped but counted
}

TEST_F(LabelledData, HeaderlessTsvIsLabelThenTextAndOptionallyAPair) {
  const LabelledFile r = read_labelled_file(write("a.tsv", "pos\tgood film\nneg\tbad film\n"), {});
  EXPECT_EQ(r.format, "tsv-headerless");
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[1].label, "neg");
  EXPECT_EQ(r.examples[1].text, "bad film");
  LabelledColumns pair;
  pair.text_pair = "hypothesis";
  const LabelledFile p = read_labelled_file(write("p.tsv", "entail\tA man sleeps.\tSomeone sleeps.\n"), pair);
  EXPECT_EQ(p.examples[0].text_pair, "Someone sleeps.");
  EXPECT_NE(error_of(write("bad.tsv", "pos\tgood\textra\n")).find("bad.tsv:1: 3 fields, expected 2"), std::string::npos);
}

TEST_F(LabelledData, CsvFieldsMayQuoteCommasQuotesAndNewlines) {
  const auto f = write("a.csv", "label,text,premise\n"
                                "yes,\"Hello, \"\"world\"\"\",p1\n"
                                "no,\"two\nlines\",p2\r\n"
                                "\n"
                                "no,plain,\"\"\n");
  LabelledColumns c;
  c.text_pair = "premise";
  EXPECT_NE(error_of(f, c).find("a.csv:6: the second text (text pair) is empty"), std::string::npos);
  const LabelledFile r = read_labelled_file(f, {});
  EXPECT_EQ(r.format, "csv");
  ASSERT_EQ(r.examples.size(), 3u);
  EXPECT_EQ(r.examples[0].text, "Hello, \"world\"");
  EXPECT_EQ(r.examples[1].text, "two\nlines");
  EXPECT_EQ(r.examples[1].line, 3);
  EXPECT_EQ(r.examples[2].line, 6);  // after a record spanning lines 3-4 and the empty line 5
  EXPECT_NE(error_of(write("open.csv", "label,text\nyes,\"never closed\n")).find("open.csv:2: a quoted CSV field is never closed"),
            std::string::npos);
  EXPECT_NE(error_of(write("nohead.csv", "yes,hello\n")).find("needs a header"), std::string::npos);
}

TEST_F(LabelledData, JsonlTakesStringIntegerAndBooleanLabels) {
  const auto f = write("a.jsonl", "{\"text\": \"ą\", \"label\": 1}\n\n{\"text\": \"b\", \"label\": \"x\"}\n"
                                  "{\"text\": \"c\", \"label\": true}\n");
  const LabelledFile r = read_labelled_file(f, {});
  ASSERT_EQ(r.examples.size(), 3u);
  EXPECT_EQ(r.examples[0].label, "1");
  EXPECT_EQ(r.examples[1].label, "x");
  EXPECT_EQ(r.examples[1].line, 3);
  EXPECT_EQ(r.examples[2].label, "true");
  EXPECT_NE(error_of(write("b.jsonl", "{\"text\": \"a\", \"label\": 1.5}\n")).find("b.jsonl:1: \"label\" must be"),
            std::string::npos);
  EXPECT_NE(error_of(write("c.jsonl", "{\"sentence\": \"a\", \"label\": 1}\n")).find("c.jsonl:1: no key \"text\" (name it with --text-column)"),
            std::string::npos);
  EXPECT_NE(error_of(write("d.jsonl", "[1, 2]\n")).find("d.jsonl:1: expected a JSON object"), std::string::npos);
  EXPECT_NE(error_of(write("e.jsonl", "{\"text\": \n")).find("e.jsonl:1: not a JSON value"), std::string::npos);
}

TEST_F(LabelledData, BadFilesNameTheFileLineAndWhatToDo) {
  const std::string missing = error_of(write("m.tsv", "sentence\tlabel\nhi\tyes\n"));
  EXPECT_NE(missing.find("m.tsv:1: the header has no text column \"text\" (its columns: \"sentence\", \"label\"); "
                         "name it with --text-column"), std::string::npos) << missing;
  EXPECT_NE(error_of(write("u.tsv", "yes\tok\nno\t\xC3\x28 bad\n")).find("u.tsv:2: not valid UTF-8"), std::string::npos);
  EXPECT_NE(error_of(write("e.tsv", "yes\t  \n")).find("e.tsv:1: the text is empty"), std::string::npos);
  EXPECT_NE(error_of(write("l.tsv", "text\tlabel\nhello\t\n")).find("l.tsv:2: the label is empty"), std::string::npos);
  EXPECT_NE(error_of(write("empty.tsv", "\n\n")).find("empty.tsv: no labelled examples"), std::string::npos);
  EXPECT_NE(error_of(dir_ / "absent.tsv").find("cannot read"), std::string::npos);
}

TEST_F(LabelledData, LabelSetComesFromTheTrainingFileSortedAndTestLabelsMustBeInIt) {
  const LabelledFile train = read_labelled_file(write("train.tsv", "10\ta\n2\tb\n10\tc\n1\td\n"), {});
  const std::vector<std::string> labels = label_set(train);
  EXPECT_EQ(labels, (std::vector<std::string>{"1", "2", "10"}));  // numeric order for integer labels
  EXPECT_EQ(label_ids(train, labels, "train.tsv"), (std::vector<int64_t>{2, 1, 2, 0}));
  const LabelledFile test = read_labelled_file(write("test.tsv", "2\tx\n\n7\ty\n"), {});
  try {
    label_ids(test, labels, "train.tsv");
    FAIL() << "a label missing from the training file was accepted";
  } catch (const util::Error& e) {
    EXPECT_NE(std::string(e.what()).find("test.tsv:3: the label \"7\" does not occur in the training file train.tsv"),
              std::string::npos) << e.what();
  }
  const LabelledFile one = read_labelled_file(write("one.tsv", "a\tx\na\ty\n"), {});
  try {
    label_set(one);
    FAIL() << "a training file with one class was accepted";
  } catch (const util::Error& e) {
    EXPECT_NE(std::string(e.what()).find("one.tsv: every example has the label \"a\"; a classifier needs at least 2"),
              std::string::npos) << e.what();
  }
  EXPECT_EQ(label_set(read_labelled_file(write("s.tsv", "b\tx\na\ty\nc\tz\n"), {})),
            (std::vector<std::string>{"a", "b", "c"}));
}

TEST(ClassificationMetrics, MatchHandComputedSklearnValues) {
  // gold:      0 0 0 1 1 2 ; predicted: 0 0 1 1 2 2 (class 3 never appears)
  const ClassificationMetrics m =
      classification_metrics({0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2}, {"a", "b", "c", "d"});
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].f1, 0.8);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[2].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[2].recall, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[2].f1, 2.0 / 3.0);
  EXPECT_EQ(m.per_class[3].support, 0);
  EXPECT_DOUBLE_EQ(m.per_class[3].f1, 0.0);
  // sklearn f1_score(average="macro", labels=[0,1,2,3]) = (0.8 + 0.5 + 2/3 + 0) / 4
  EXPECT_NEAR(m.macro_f1, (0.8 + 0.5 + 2.0 / 3.0) / 4.0, 1e-15);
  EXPECT_EQ(m.confusion[0], (std::vector<int64_t>{2, 1, 0, 0}));
  EXPECT_EQ(m.confusion[1], (std::vector<int64_t>{0, 1, 1, 0}));
  const MeanStd s = mean_std({0.9, 0.8, 0.7});
  EXPECT_NEAR(s.mean, 0.8, 1e-15);
  EXPECT_NEAR(s.std, 0.1, 1e-15);  // sample standard deviation (n - 1)
  EXPECT_EQ(mean_std({0.5}).std, 0.0);
  EXPECT_THROW(classification_metrics({0}, {4}, {"a", "b"}), util::Error);
}

TEST(ClassificationMetrics, TablesKeepPolishLabelsWholeAndAligned) {
  // Short names head the confusion columns; a long one switches them to numbers, so no name is cut
  // to an ambiguous prefix, and widths count characters, not bytes (ł, ż, ś are 2 bytes each).
  const ClassificationMetrics small = classification_metrics({0, 1, 1}, {0, 1, 0}, {"żółw", "łoś"});
  const std::string a = small.format_confusion();
  EXPECT_NE(a.find("żółw"), std::string::npos) << a;
  std::vector<size_t> widths;  // every line the same number of characters
  for (size_t at = 0, nl; (nl = a.find('\n', at)) != std::string::npos; at = nl + 1)
    widths.push_back(text::count_chars(a.substr(at, nl - at)));
  ASSERT_EQ(widths.size(), 3u) << a;
  EXPECT_EQ(widths[0], widths[1]) << a;
  EXPECT_EQ(widths[1], widths[2]) << a;

  const ClassificationMetrics big = classification_metrics(
      {0, 1, 2}, {0, 1, 1}, {"Pan Tadeusz, czyli ostatni zajazd na Litwie", "Przedwiośnie", "Ślub"});
  const std::string b = big.format_confusion();
  EXPECT_NE(b.find("1 Przedwiośnie"), std::string::npos) << b;
  EXPECT_NE(b.find("2 Ślub"), std::string::npos) << b;
  EXPECT_EQ(b.find("Przedwio "), std::string::npos) << b;
  const std::string per_class = big.format_per_class();  // a cut label ends in "~", still valid UTF-8
  EXPECT_NE(per_class.find("Pan Tadeusz, czyli osta~"), std::string::npos) << per_class;
  for (const std::string& s : {b, per_class}) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    for (size_t at = 0; at < s.size();) {
      char32_t cp;
      bool valid = true;
      at += text::decode_utf8(p + at, s.size() - at, &cp, &valid);
      ASSERT_TRUE(valid) << s;
    }
  }
}

}  // namespace
}  // namespace bert::eval
