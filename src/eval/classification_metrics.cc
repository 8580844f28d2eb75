// Accuracy, macro-F1, per-class scores, confusion matrix.
#include "eval/classification_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

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
size_t label_width(const std::vector<std::string>& labels) {
  size_t w = 5;
  for (const auto& l : labels) w = std::max(w, l.size());
  return std::min<size_t>(w, 24);
}
std::string cell(const std::string& s, size_t w) {
  std::string t = s.size() > w ? s.substr(0, w) : s;
  return t + std::string(w - t.size() + 2, ' ');
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

std::string ClassificationMetrics::format_confusion() const {
  const size_t w = label_width(labels);
  std::string out = cell("gold \\ predicted", std::max<size_t>(w, 16));
  for (const auto& l : labels) out += cell(l, std::max<size_t>(std::min<size_t>(l.size(), 12), 6));
  out += "\n";
  for (size_t g = 0; g < labels.size(); ++g) {
    out += cell(labels[g], std::max<size_t>(w, 16));
    for (size_t p = 0; p < labels.size(); ++p) {
      std::string n = std::to_string(confusion[g][p]);
      const size_t cw = std::max<size_t>(std::min<size_t>(labels[p].size(), 12), 6);
      out += std::string(cw > n.size() ? cw - n.size() : 0, ' ') + n + "  ";
    }
    out += "\n";
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
