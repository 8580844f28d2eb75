// Classification quality from gold and predicted label ids: accuracy, macro-F1, per-class
// precision / recall / F1 / support and the confusion matrix (sklearn's definitions: a class never
// predicted has precision 0, one never present has recall 0; macro-F1 is the unweighted mean of the
// per-class F1 over every class of the label set). Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace bert::eval {

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;  // gold examples of the class
};

struct ClassificationMetrics {
  std::vector<std::string> labels;
  double accuracy = 0;
  double macro_f1 = 0;
  std::vector<ClassScores> per_class;               // in label order
  std::vector<std::vector<int64_t>> confusion;      // [gold][predicted]
  int64_t examples = 0;

  nlohmann::json to_json() const;
  // "label  precision  recall  f1  support" rows and the confusion matrix, fixed width.
  std::string format_per_class() const;
  std::string format_confusion() const;
};

// Throws Error(kRuntime) when the vectors differ in length or hold an id outside [0, labels).
ClassificationMetrics classification_metrics(const std::vector<int64_t>& gold, const std::vector<int64_t>& predicted,
                                             const std::vector<std::string>& labels);

// Mean and sample standard deviation (n - 1; 0 for one value).
struct MeanStd {
  double mean = 0, std = 0;
  nlohmann::json to_json() const { return {{"mean", mean}, {"std", std}}; }
};
MeanStd mean_std(const std::vector<double>& values);

}  // namespace bert::eval
