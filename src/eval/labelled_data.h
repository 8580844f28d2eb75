// Labelled text files for fine-tuning: TSV or CSV with a header naming the columns, headerless
// `label<TAB>text[<TAB>text_pair]` lines, or JSONL objects. Labels are strings; the label set
// comes from the training file. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bert::eval {

struct LabelledColumns {
  std::string text = "text";      // the text column (header) or JSON key
  std::string text_pair;          // the second text of a sentence-pair task; empty = single texts
  std::string label = "label";    // the label column or key
};

struct LabelledExample {
  std::string text, text_pair;  // text_pair empty for single-text tasks
  std::string label;
  int64_t line = 0;             // 1-based line where the example starts (for messages)
};

struct LabelledFile {
  std::filesystem::path path;
  std::string format;                    // "tsv" | "tsv-headerless" | "csv" | "jsonl"
  std::vector<LabelledExample> examples;
};

// Reads `path`, by extension: .jsonl/.json = JSON lines; .csv = RFC 4180 CSV (quoted fields may hold
// commas, quotes as "" and newlines) with a header; anything else = TSV, with a header when its
// first line names the text or label column, else headerless `label<TAB>text[<TAB>text_pair]`
// (the third field only with a text_pair column). Empty lines are skipped; a leading UTF-8 BOM and
// CRs before the newline are dropped. Throws Error(kInput) naming the file and line: missing
// columns (listing those the header has), a wrong field count, an empty text or label, invalid
// UTF-8, an unterminated quote, a JSON line that is not an object or lacks a key; Error(kInput) for
// an unreadable or empty file.
LabelledFile read_labelled_file(const std::filesystem::path& path, const LabelledColumns& columns);

// The label names of a training file, sorted (numerically when every label is an integer, else by
// bytes), so label ids do not depend on the order of the examples. Throws Error(kInput) naming the
// file when it has fewer than 2 classes.
std::vector<std::string> label_set(const LabelledFile& train);

// The id of every example's label in `labels`. Throws Error(kInput) naming the file, the line and
// the label when a label is not in the set (e.g. a test label the training file never has).
std::vector<int64_t> label_ids(const LabelledFile& file, const std::vector<std::string>& labels,
                               const std::string& train_name);

}  // namespace bert::eval
