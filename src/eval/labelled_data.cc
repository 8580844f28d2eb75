// Labelled file parsing (TSV / CSV / JSONL).
#include "eval/labelled_data.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "text/unicode.h"
#include "util/error.h"

namespace bert::eval {
namespace fs = std::filesystem;

namespace {

std::string where(const fs::path& path, int64_t line) { return path.string() + ":" + std::to_string(line); }

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw util::input_error("cannot read " + path.string() + ": no such file or not readable");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
  return s;
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    bool ok = true;
    i += text::decode_utf8(p + i, s.size() - i, &cp, &ok);
    if (!ok) return false;
  }
  return true;
}

// Physical lines with their 1-based numbers, CR before LF dropped.
std::vector<std::pair<int64_t, std::string>> split_lines(const std::string& s) {
  std::vector<std::pair<int64_t, std::string>> out;
  size_t start = 0;
  int64_t n = 1;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    std::string line = s.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.emplace_back(n++, std::move(line));
    start = end + 1;
  }
  return out;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return f;
    start = tab + 1;
  }
}

struct Record {
  int64_t line;
  std::vector<std::string> fields;
};

// RFC 4180 records; a quoted field may span lines. Blank lines are skipped.
std::vector<Record> parse_csv(const std::string& s, const fs::path& path) {
  std::vector<Record> out;
  Record rec{1, {}};
  std::string field;
  int64_t line = 1;
  bool quoted = false, field_started = false, after_quote = false;
  auto end_field = [&] {
    rec.fields.push_back(std::move(field));
    field.clear();
    field_started = after_quote = false;
  };
  auto end_record = [&] {
    if (!(rec.fields.size() == 0 && !field_started && field.empty())) {
      end_field();
      out.push_back(std::move(rec));
    }
    rec = Record{line + 1, {}};
    field.clear();
    field_started = after_quote = false;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') { field += '"'; ++i; }
        else { quoted = false; after_quote = true; }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == ',') { end_field(); field_started = true; continue; }
    if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    if (c == '\n') { end_record(); ++line; continue; }
    if (after_quote) {
      throw util::input_error(where(path, line) + ": text after a closing quote; a quote inside a quoted "
                              "CSV field is written as \"\"");
    }
    if (c == '"' && field.empty()) { quoted = true; field_started = true; continue; }
    field += c;
    field_started = true;
  }
  if (quoted) throw util::input_error(where(path, rec.line) + ": a quoted CSV field is never closed");
  end_record();
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + ("\"" + x + "\"");
  return s;
}

// Maps header names to the example's fields.
struct ColumnIndex {
  int text = -1, pair = -1, label = -1;
};

ColumnIndex find_columns(const std::vector<std::string>& header, const LabelledColumns& c, const fs::path& path) {
  ColumnIndex ix;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == c.text && ix.text < 0) ix.text = static_cast<int>(i);
    if (!c.text_pair.empty() && header[i] == c.text_pair && ix.pair < 0) ix.pair = static_cast<int>(i);
    if (header[i] == c.label && ix.label < 0) ix.label = static_cast<int>(i);
  }
  auto missing = [&](const std::string& what, const std::string& flag, const std::string& name) {
    throw util::input_error(path.string() + ":1: the header has no " + what + " column \"" + name +
                            "\" (its columns: " + join(header) + "); name it with " + flag);
  };
  if (ix.text < 0) missing("text", "--text-column", c.text);
  if (ix.label < 0) missing("label", "--label-column", c.label);
  if (!c.text_pair.empty() && ix.pair < 0) missing("text-pair", "--text-pair-column", c.text_pair);
  return ix;
}

void add_example(LabelledFile& out, int64_t line, std::string text, std::string pair, std::string label,
                 bool has_pair) {
  const std::string at = where(out.path, line);
  if (!valid_utf8(text) || !valid_utf8(pair) || !valid_utf8(label)) {
    throw util::input_error(at + ": not valid UTF-8 (convert the file to UTF-8, e.g. with iconv)");
  }
  auto blank = [](const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; };
  if (blank(label)) throw util::input_error(at + ": the label is empty");
  if (blank(text)) throw util::input_error(at + ": the text is empty");
  if (has_pair && blank(pair)) throw util::input_error(at + ": the second text (text pair) is empty");
  out.examples.push_back({std::move(text), std::move(pair), std::move(label), line});
}

void read_rows(LabelledFile& out, const std::vector<Record>& records, const LabelledColumns& c,
               bool allow_headerless) {
  if (records.empty()) return;
  const auto& first = records.front().fields;
  const bool has_header = std::find(first.begin(), first.end(), c.text) != first.end() ||
                          std::find(first.begin(), first.end(), c.label) != first.end();
  const bool has_pair = !c.text_pair.empty();
  if (!has_header && !allow_headerless) {
    throw util::input_error(out.path.string() + ":1: a CSV file needs a header naming its columns (found " +
                            join(first) + "; expected \"" + c.text + "\" and \"" + c.label +
                            "\", or name them with --text-column / --label-column)");
  }
  ColumnIndex ix;
  size_t width;
  if (has_header) {
    ix = find_columns(first, c, out.path);
    width = first.size();
    out.format = out.format == "csv" ? "csv" : "tsv";
  } else {
    ix = {1, has_pair ? 2 : -1, 0};
    width = has_pair ? 3 : 2;
    out.format = "tsv-headerless";
  }
  for (size_t r = has_header ? 1 : 0; r < records.size(); ++r) {
    const Record& rec = records[r];
    if (rec.fields.size() != width) {
      std::string expect = has_header ? "the header's " + std::to_string(width)
                                      : std::to_string(width) + " (label, text" + (has_pair ? ", text pair)" : ")");
      throw util::input_error(where(out.path, rec.line) + ": " + std::to_string(rec.fields.size()) +
                              " fields, expected " + expect +
                              (has_header ? "" : "; a header line naming the columns selects them by name"));
    }
    add_example(out, rec.line, rec.fields[ix.text], ix.pair >= 0 ? rec.fields[ix.pair] : "", rec.fields[ix.label],
                has_pair);
  }
}

std::string json_label(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_boolean()) return v.dump();
  return "";
}

void read_jsonl(LabelledFile& out, const std::string& s, const LabelledColumns& c) {
  const bool has_pair = !c.text_pair.empty();
  for (const auto& [n, line] : split_lines(s)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string at = where(out.path, n);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw util::input_error(at + ": not a JSON value");
    if (!j.is_object()) throw util::input_error(at + ": expected a JSON object with \"" + c.text + "\" and \"" + c.label + "\"");
    auto text_of = [&](const std::string& key, const std::string& flag) {
      if (!j.contains(key)) throw util::input_error(at + ": no key \"" + key + "\" (name it with " + flag + ")");
      if (!j[key].is_string()) throw util::input_error(at + ": \"" + key + "\" must be a string");
      return j[key].get<std::string>();
    };
    std::string text = text_of(c.text, "--text-column");
    std::string pair = has_pair ? text_of(c.text_pair, "--text-pair-column") : "";
    if (!j.contains(c.label)) throw util::input_error(at + ": no key \"" + c.label + "\" (name it with --label-column)");
    std::string label = json_label(j[c.label]);
    if (label.empty() && !j[c.label].is_string()) {
      throw util::input_error(at + ": \"" + c.label + "\" must be a string, an integer or a boolean");
    }
    add_example(out, n, std::move(text), std::move(pair), std::move(label), has_pair);
  }
}

bool is_integer(const std::string& s) {
  size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  if (i == s.size() || s.size() - i > 18) return false;
  for (; i < s.size(); ++i) if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

}  // namespace

LabelledFile read_labelled_file(const fs::path& path, const LabelledColumns& columns) {
  LabelledFile out;
  out.path = path;
  const std::string s = read_all(path);
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (ext == ".jsonl" || ext == ".json") {
    out.format = "jsonl";
    read_jsonl(out, s, columns);
  } else if (ext == ".csv") {
    out.format = "csv";
    read_rows(out, parse_csv(s, path), columns, /*allow_headerless=*/false);
  } else {
    std::vector<Record> records;
    for (auto& [n, line] : split_lines(s)) {
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      records.push_back({n, split_tabs(line)});
    }
    read_rows(out, records, columns, /*allow_headerless=*/true);
  }
  if (out.examples.empty()) throw util::input_error(path.string() + ": no labelled examples in the file");
  return out;
}

std::vector<std::string> label_set(const LabelledFile& train) {
  std::vector<std::string> labels;
  for (const auto& e : train.examples) labels.push_back(e.label);
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  if (std::all_of(labels.begin(), labels.end(), is_integer)) {
    std::stable_sort(labels.begin(), labels.end(),
                     [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  }
  if (labels.size() < 2) {
    throw util::input_error(train.path.string() + ": every example has the label \"" + labels.front() +
                            "\"; a classifier needs at least 2 classes in the training file");
  }
  return labels;
}

std::vector<int64_t> label_ids(const LabelledFile& file, const std::vector<std::string>& labels,
                               const std::string& train_name) {
  std::map<std::string, int64_t> id;
  for (size_t i = 0; i < labels.size(); ++i) id[labels[i]] = static_cast<int64_t>(i);
  std::vector<int64_t> out;
  out.reserve(file.examples.size());
  for (const auto& e : file.examples) {
    auto it = id.find(e.label);
    if (it == id.end()) {
      throw util::input_error(where(file.path, e.line) + ": the label \"" + e.label + "\" does not occur in the "
                              "training file " + train_name + " (its labels: " + join(labels) +
                              "); the model cannot predict a class it never saw");
    }
    out.push_back(it->second);
  }
  return out;
}

}  // namespace bert::eval
