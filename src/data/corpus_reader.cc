// Line-oriented streaming over (gzipped) BERT text and JSONL corpora.
#include "data/corpus_reader.h"

#include <zlib.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/log.h"

namespace bert::data {
namespace fs = std::filesystem;

namespace {

constexpr size_t kReadBuffer = 1 << 20;
constexpr uint64_t kMaxWarnings = 5;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v') return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

CorpusFormat corpus_format_for(const fs::path& path) {
  std::string name = path.filename().string();
  if (ends_with(name, ".gz")) name.resize(name.size() - 3);
  return ends_with(name, ".jsonl") || ends_with(name, ".json") ? CorpusFormat::kJsonl : CorpusFormat::kText;
}

std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> out;
  auto emit = [&](std::string_view s) {
    s = trim(s);
    if (!s.empty()) out.emplace_back(s);
  };
  size_t line_start = 0;
  while (line_start <= text.size()) {
    size_t nl = text.find('\n', line_start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(line_start, nl - line_start);
    size_t start = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (c != '.' && c != '!' && c != '?') continue;
      size_t j = i;
      while (j + 1 < line.size() && (line[j + 1] == '.' || line[j + 1] == '!' || line[j + 1] == '?')) ++j;
      while (j + 1 < line.size() && std::strchr("\"')]", line[j + 1]) != nullptr) ++j;
      if (j + 1 < line.size() && std::isspace(static_cast<unsigned char>(line[j + 1]))) {
        emit(line.substr(start, j + 1 - start));
        start = j + 1;
      }
      i = j;
    }
    emit(line.substr(start));
    line_start = nl + 1;
  }
  return out;
}

CorpusReader::CorpusReader(fs::path path, const std::string& on_bad_line)
    : path_(std::move(path)), format_(corpus_format_for(path_)) {
  if (on_bad_line != "skip" && on_bad_line != "fail") {
    throw util::usage_error("data.on_bad_line must be \"skip\" or \"fail\", got \"" + on_bad_line + "\"");
  }
  skip_bad_ = on_bad_line == "skip";
  std::error_code ec;
  if (fs::is_directory(path_, ec)) throw util::input_error(path_.string() + " is a directory; pass a corpus file");
  gzFile gz = gzopen(path_.c_str(), "rb");
  if (gz == nullptr) {
    throw util::input_error("cannot open corpus " + path_.string() + ": " + std::strerror(errno));
  }
  gzbuffer(gz, 256 * 1024);
  gz_ = gz;
  buf_.resize(kReadBuffer);
}

CorpusReader::~CorpusReader() {
  if (gz_ != nullptr) gzclose(static_cast<gzFile>(gz_));
}

bool CorpusReader::read_line(std::string& line) {
  line.clear();
  for (;;) {
    if (pos_ == end_) {
      if (eof_) return !line.empty();
      int n = gzread(static_cast<gzFile>(gz_), buf_.data(), static_cast<unsigned>(buf_.size()));
      if (n < 0) {
        int code = 0;
        const char* msg = gzerror(static_cast<gzFile>(gz_), &code);
        throw util::input_error("cannot read " + path_.string() + " near line " +
                                std::to_string(stats_.lines + 1) + ": " + msg +
                                " (truncated or corrupt gzip?)");
      }
      if (n == 0) {
        int code = Z_OK;
        gzerror(static_cast<gzFile>(gz_), &code);
        if (code == Z_BUF_ERROR) {  // the gzip stream ended before its trailer
          throw util::input_error("cannot read " + path_.string() + " near line " +
                                  std::to_string(stats_.lines + 1) +
                                  ": the gzip stream is truncated (incomplete download or copy?)");
        }
        eof_ = true;
        if (line.empty()) return false;
        ++stats_.lines;
        return true;
      }
      stats_.bytes += static_cast<uint64_t>(n);
      pos_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(start, '\n', end_ - pos_);
    if (nl == nullptr) {
      line.append(start, end_ - pos_);
      pos_ = end_;
      continue;
    }
    size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
    line.append(start, len);
    pos_ += len + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ++stats_.lines;
    return true;
  }
}

bool CorpusReader::next_document(std::vector<std::string>& sentences) {
  sentences.clear();
  bool ok = format_ == CorpusFormat::kText ? next_text_document(sentences) : next_jsonl_document(sentences);
  if (ok) {
    ++stats_.documents;
    stats_.sentences += sentences.size();
  }
  return ok;
}

bool CorpusReader::next_text_document(std::vector<std::string>& sentences) {
  std::string line;
  while (read_line(line)) {
    if (is_blank(line)) {
      if (!sentences.empty()) return true;
      continue;
    }
    sentences.push_back(std::move(line));
    line = std::string();
  }
  return !sentences.empty();
}

bool CorpusReader::next_jsonl_document(std::vector<std::string>& sentences) {
  std::string line;
  while (read_line(line)) {
    if (is_blank(line)) continue;
    std::string why;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) why = "not valid JSON";
    else if (!j.is_object()) why = "not a JSON object";
    else if (!j.contains("text")) why = "no \"text\" key";
    else if (!j["text"].is_string()) why = "\"text\" is not a string";
    if (why.empty()) {
      sentences = split_sentences(j["text"].get_ref<const std::string&>());
      if (sentences.empty()) continue;
      return true;
    }
    std::string where = path_.string() + ":" + std::to_string(stats_.lines);
    if (!skip_bad_) {
      throw util::input_error(where + ": " + why +
                              "; each line must be {\"text\": \"...\"} (set data.on_bad_line=\"skip\" to skip such lines)");
    }
    ++stats_.bad_lines;
    if (stats_.bad_lines <= kMaxWarnings) {
      util::log_warn(where + ": skipping line: " + why +
                     (stats_.bad_lines == kMaxWarnings ? " (further bad lines are only counted)" : ""));
    }
  }
  return false;
}

}  // namespace bert::data
