// Vocabulary loading, validation and saving.
#include "wordpiece/vocab.h"

#include <sstream>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/rng.h"

namespace bert::wordpiece {
namespace fs = std::filesystem;
using util::input_error;

namespace {

bool looks_special(const std::string& t) {
  return t.size() >= 3 && t.front() == '[' && t.back() == ']';
}

nlohmann::json config_to_json(const TokenizerConfig& c) {
  // Keys follow Hugging Face's tokenizer_config.json so AutoTokenizer picks the same settings.
  return {
      {"tokenizer_class", "BertTokenizer"},
      {"do_lower_case", c.normalizer.lowercase},
      {"strip_accents", c.normalizer.strip_accents},
      {"tokenize_chinese_chars", c.normalizer.handle_chinese_chars},
      {"clean_text", c.normalizer.clean_text},
      {"max_input_chars_per_word", c.max_input_chars_per_word},
      {"wordpieces_prefix", c.continuing_prefix},
      {"pad_token", c.pad_token},
      {"unk_token", c.unk_token},
      {"cls_token", c.cls_token},
      {"sep_token", c.sep_token},
      {"mask_token", c.mask_token},
      {"model_max_length", 512},
      {"bert_pretrain_format_version", 1},
  };
}

TokenizerConfig config_from_json(const nlohmann::json& j, const std::string& source) {
  TokenizerConfig c;
  auto get_bool = [&](const char* key, bool fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_boolean()) throw input_error(source + ": \"" + key + "\" must be true or false");
    return j[key].get<bool>();
  };
  auto get_str = [&](const char* key, const std::string& fallback) {
    if (!j.contains(key)) return fallback;
    if (j[key].is_object() && j[key].contains("content") && j[key]["content"].is_string()) {
      return j[key]["content"].get<std::string>();
    }
    if (!j[key].is_string()) throw input_error(source + ": \"" + key + "\" must be a string");
    return j[key].get<std::string>();
  };
  c.normalizer.lowercase = get_bool("do_lower_case", true);
  // Hugging Face: strip_accents null means "follow lowercase".
  c.normalizer.strip_accents = get_bool("strip_accents", c.normalizer.lowercase);
  c.normalizer.handle_chinese_chars = get_bool("tokenize_chinese_chars", true);
  c.normalizer.clean_text = get_bool("clean_text", true);
  if (j.contains("max_input_chars_per_word")) {
    const nlohmann::json& m = j["max_input_chars_per_word"];
    if (!m.is_number_integer() || m.get<int64_t>() <= 0 || m.get<int64_t>() > (int64_t{1} << 30)) {
      throw input_error(source + ": \"max_input_chars_per_word\" must be a positive integer");
    }
    c.max_input_chars_per_word = j["max_input_chars_per_word"].get<int>();
  }
  c.continuing_prefix = get_str("wordpieces_prefix", c.continuing_prefix);
  c.pad_token = get_str("pad_token", c.pad_token);
  c.unk_token = get_str("unk_token", c.unk_token);
  c.cls_token = get_str("cls_token", c.cls_token);
  c.sep_token = get_str("sep_token", c.sep_token);
  c.mask_token = get_str("mask_token", c.mask_token);
  return c;
}

}  // namespace

Vocab::Vocab(std::vector<std::string> tokens, TokenizerConfig config, const std::string& source)
    : tokens_(std::move(tokens)), config_(std::move(config)), source_(source) {
  if (tokens_.empty()) throw input_error(source + ": the vocabulary is empty; rebuild it with bert-vocab build");
  index_.reserve(tokens_.size() * 2);
  special_.resize(tokens_.size());
  continuation_.resize(tokens_.size());
  const std::string& prefix = config_.continuing_prefix;
  uint64_t h = util::hash_name("bert-vocab-v1");
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    if (t.empty()) {
      throw input_error(source + ":" + std::to_string(i + 1) + ": empty token; every line of vocab.txt must hold one token");
    }
    auto [it, inserted] = index_.emplace(t, static_cast<int32_t>(i));
    if (!inserted) {
      throw input_error(source + ":" + std::to_string(i + 1) + ": duplicate token \"" + t +
                        "\" (first on line " + std::to_string(it->second + 1) + "); each token must appear once");
    }
    special_[i] = looks_special(t);
    continuation_[i] = t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0;
    h = util::mix64(h ^ util::hash_name(t));
  }
  auto mark = [&](const std::string& tok) {
    int32_t id = this->id(tok);
    if (id >= 0) special_[static_cast<size_t>(id)] = true;
    return id;
  };
  unk_id_ = mark(config_.unk_token);
  if (unk_id_ < 0) {
    throw input_error(source + ": the unknown-word token " + config_.unk_token +
                      " is missing; add it to vocab.txt (any line) or rebuild the vocabulary with bert-vocab build");
  }
  pad_id_ = mark(config_.pad_token);
  cls_id_ = mark(config_.cls_token);
  sep_id_ = mark(config_.sep_token);
  mask_id_ = mark(config_.mask_token);
  h = util::mix64(h ^ util::hash_name(config_to_json(config_).dump()));
  fingerprint_ = h;
}

void Vocab::require_sequence_tokens(const std::string& user) const {
  std::string missing;
  const std::pair<int32_t, const std::string*> needed[] = {
      {pad_id_, &config_.pad_token}, {cls_id_, &config_.cls_token}, {sep_id_, &config_.sep_token},
      {mask_id_, &config_.mask_token}};
  for (const auto& [id, token] : needed) {
    if (id < 0) missing += (missing.empty() ? "" : ", ") + *token;
  }
  if (missing.empty()) return;
  throw input_error(source_ + ": " + user + " needs the special tokens [PAD] [CLS] [SEP] [MASK] (sequences are " +
                    "[CLS] A [SEP], padded and masked) but vocab.txt lacks " + missing +
                    "; append them as new lines at its end (the other ids stay the same) or rebuild the vocabulary "
                    "with bert-vocab build. Encoding (bert-vocab encode/stats) needs only the unknown-word token");
}

int32_t Vocab::id(std::string_view token) const {
  auto it = index_.find(std::string(token));
  return it == index_.end() ? -1 : it->second;
}

Vocab Vocab::load(const fs::path& dir) {
  fs::path vocab_file = dir / "vocab.txt";
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) vocab_file = dir;  // a vocab.txt passed directly
  fs::path base = fs::is_regular_file(dir, ec) ? dir.parent_path() : dir;
  if (!fs::exists(vocab_file, ec)) {
    throw input_error(vocab_file.string() + " does not exist; pass the directory written by `bert-vocab build`");
  }
  std::string text = util::read_file(vocab_file);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) {  // a UTF-8 byte order mark (some Windows editors write one)
    while (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // (all of them: save + load is a round trip)
    util::log_warn(vocab_file.string() + " starts with a UTF-8 byte order mark; ignored (the first token is \"" +
                   text.substr(0, text.find_first_of("\r\n")) + "\")");
  }
  std::vector<std::string> tokens;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF (all CRs: save + load is a round trip)
    tokens.push_back(line);
  }
  TokenizerConfig config;
  fs::path cfg_file = base / "tokenizer_config.json";
  if (fs::exists(cfg_file, ec)) {
    config = config_from_json(util::parse_json_file(cfg_file, util::ErrorKind::kInput), cfg_file.string());
  }
  return Vocab(std::move(tokens), std::move(config), vocab_file.string());
}

void Vocab::save(const fs::path& dir) const {
  std::string text;
  for (const auto& t : tokens_) {
    text += t;
    text += '\n';
  }
  util::write_file_atomic(dir / "vocab.txt", text);
  util::write_file_atomic(dir / "tokenizer_config.json", config_to_json(config_).dump(2) + "\n");
  nlohmann::json special_map = {{"pad_token", config_.pad_token}, {"unk_token", config_.unk_token},
                                {"cls_token", config_.cls_token}, {"sep_token", config_.sep_token},
                                {"mask_token", config_.mask_token}};
  util::write_file_atomic(dir / "special_tokens_map.json", special_map.dump(2) + "\n");
}

}  // namespace bert::wordpiece
