// Accuracy, macro-F1, per-class scores, confusion matrix.
#include "eval/classification_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "text/unicode.h"
#include "util/error.h"

namespace bert::eval {

ClassificationMetrics classification_metrics(const std::vector<int64_t>& gold, const std::vector<int64_t>& predicted,
                                             const std::vector<std::string>& labels) {
  if (gold.size() != predicted.size()) {
    throw util::runtime_error("classification_metrics: " + std::to_string(gold.size()) + " gold labels, " +
                              std::to_string(predicted.size()) + " predictions");
  }
  const int64_t k = static_cast<int64_t>(labels.size());
  ClassificationMetrics m;
  m.labels = labels;
  m.examples = static_cast<int64_t>(gold.size());
  m.confusion.assign(k, std::vector<int64_t>(k, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    if (gold[i] < 0 || gold[i] >= k || predicted[i] < 0 || predicted[i] >= k) {
      throw util::runtime_error("classification_metrics: label id out of range at example " + std::to_string(i));
    }
    ++m.confusion[gold[i]][predicted[i]];
    correct += gold[i] == predicted[i];
  }
  m.accuracy = gold.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(gold.size());
  double f1_sum = 0;
  for (int64_t c = 0; c < k; ++c) {
    int64_t tp = m.confusion[c][c], pred = 0, actual = 0;
    for (int64_t o = 0; o < k; ++o) {
      pred += m.confusion[o][c];
      actual += m.confusion[c][o];
    }
    ClassScores s;
    s.support = actual;
    s.precision = pred > 0 ? static_cast<double>(tp) / static_cast<double>(pred) : 0.0;
    s.recall = actual > 0 ? static_cast<double>(tp) / static_cast<double>(actual) : 0.0;
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
    f1_sum += s.f1;
    m.per_class.push_back(s);
  }
  m.macro_f1 = k > 0 ? f1_sum / static_cast<double>(k) : 0.0;
  return m;
}

nlohmann::json ClassificationMetrics::to_json() const {
  nlohmann::json classes = nlohmann::json::array();
  for (size_t c = 0; c < labels.size(); ++c) {
    classes.push_back({{"label", labels[c]}, {"precision", per_class[c].precision}, {"recall", per_class[c].recall},
                       {"f1", per_class[c].f1}, {"support", per_class[c].support}});
  }
  return {{"accuracy", accuracy}, {"macro_f1", macro_f1}, {"examples", examples}, {"per_class", classes},
          {"confusion", confusion}, {"labels", labels}};
}

namespace {
// Widths count code points, and truncation cuts between them, so Polish (or any UTF-8) labels line
// up and stay valid UTF-8. (East Asian wide characters still take two columns on a terminal.)
constexpr size_t kMaxLabelWidth = 24;     // the label column of both tables
constexpr size_t kMaxColumnLabel = 12;    // confusion columns headed by names up to this long

std::string truncated(const std::string& s, size_t chars) {
  if (text::count_chars(s) <= chars) return s;
  return std::string(text::utf8_prefix(s, chars - 1)) + "~";  // one char marks the cut
}
size_t label_width(const std::vector<std::string>& labels) {
  size_t w = 5;
  for (const auto& l : labels) w = std::max(w, text::count_chars(l));
  return std::min(w, kMaxLabelWidth);
}
std::string cell(const std::string& s, size_t w) {  // left-aligned, w chars + 2 spaces
  const std::string t = truncated(s, w);
  return t + std::string(w - text::count_chars(t) + 2, ' ');
}
std::string right(const std::string& s, size_t w) {  // right-aligned in w chars, then 2 spaces
  const size_t n = text::count_chars(s);
  return std::string(w > n ? w - n : 0, ' ') + s + "  ";
}
void end_line(std::string& out) {  // no trailing spaces
  while (!out.empty() && out.back() == ' ') out.pop_back();
  out += '\n';
}
}  // namespace

std::string ClassificationMetrics::format_per_class() const {
  const size_t w = label_width(labels);
  std::string out = cell("label", w) + "precision  recall     f1  support\n";
  char buf[96];
  for (size_t c = 0; c < labels.size(); ++c) {
    std::snprintf(buf, sizeof buf, "%9.4f %7.4f %6.4f %8lld\n", per_class[c].precision, per_class[c].recall,
                  per_class[c].f1, static_cast<long long>(per_class[c].support));
    out += cell(labels[c], w) + buf;
  }
  return out;
}

// Columns are headed by the label names when all are short; otherwise by the rows' numbers, so no
// name is cut to an ambiguous prefix ("Mansfield Pa").
std::string ClassificationMetrics::format_confusion() const {
  bool short_names = true;
  for (const auto& l : labels) short_names = short_names && text::count_chars(l) <= kMaxColumnLabel;
  std::vector<std::string> rows, columns;
  for (size_t c = 0; c < labels.size(); ++c) {
    rows.push_back(short_names ? labels[c] : std::to_string(c) + " " + labels[c]);
    columns.push_back(short_names ? labels[c] : std::to_string(c));
  }
  const size_t w = std::max<size_t>(label_width(rows), 16);
  std::vector<size_t> cw;
  for (size_t c = 0; c < labels.size(); ++c) {
    size_t width = std::max<size_t>(text::count_chars(columns[c]), 5);
    for (size_t g = 0; g < labels.size(); ++g) width = std::max(width, std::to_string(confusion[g][c]).size());
    cw.push_back(width);
  }
  std::string out = cell("gold \\ predicted", w);
  for (size_t c = 0; c < labels.size(); ++c) out += right(columns[c], cw[c]);
  end_line(out);
  for (size_t g = 0; g < labels.size(); ++g) {
    out += cell(rows[g], w);
    for (size_t p = 0; p < labels.size(); ++p) out += right(std::to_string(confusion[g][p]), cw[p]);
    end_line(out);
  }
  return out;
}

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  if (v.empty()) return r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - r.mean) * (x - r.mean);
    r.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return r;
}

}  // namespace bert::eval
