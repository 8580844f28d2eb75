// The vocabulary: token <-> id (id = line number in vocab.txt, as Google BERT and Hugging Face use),
// the special tokens, and the normalization settings that travel with it (tokenizer_config.json),
// so training-time and inference-time tokenization cannot disagree.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/normalizer.h"

namespace bert::wordpiece {

// Settings stored in tokenizer_config.json beside vocab.txt.
struct TokenizerConfig {
  text::NormalizerOptions normalizer;  // lowercase / strip_accents / clean_text / CJK handling
  int max_input_chars_per_word = 100;  // longer words become [UNK]
  std::string continuing_prefix = "##";
  std::string pad_token = "[PAD]";
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string mask_token = "[MASK]";
};

class Vocab {
 public:
  // Builds from tokens in id order. Throws Error(kInput) on duplicates, empty tokens, or a missing
  // unknown token (the one special token encoding needs); `source` names the origin in messages.
  // [PAD] [CLS] [SEP] [MASK] may be absent (Google's tokenization_test.py vocabulary has no [PAD]):
  // what builds sequences or masks calls require_sequence_tokens() first.
  Vocab(std::vector<std::string> tokens, TokenizerConfig config, const std::string& source = "vocab");

  // Loads DIR/vocab.txt and DIR/tokenizer_config.json (defaults to uncased BERT settings when the
  // json is absent, as for Google's released vocabs). Throws Error(kInput) naming the file and line.
  static Vocab load(const std::filesystem::path& dir);
  // Writes vocab.txt + tokenizer_config.json into an existing directory, each atomically.
  void save(const std::filesystem::path& dir) const;

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  // Id of `token`, or -1 if absent.
  int32_t id(std::string_view token) const;
  const std::string& token(int32_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const TokenizerConfig& config() const { return config_; }

  // Throws Error(kInput) naming every one of [PAD] [CLS] [SEP] [MASK] (as configured) that
  // vocab.txt lacks and `user` ("bert-train", "bert-eval", ...), which needs them to build
  // [CLS] A [SEP] sequences, pad and mask them. Encoding, decoding and stats never need them.
  void require_sequence_tokens(const std::string& user) const;

  // Ids of the special tokens; -1 for one that vocab.txt lacks (see require_sequence_tokens).
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t mask_id() const { return mask_id_; }
  // True for [PAD] [UNK] [CLS] [SEP] [MASK], any other "[...]" token such as [unused7].
  bool is_special(int32_t id) const { return special_[static_cast<size_t>(id)]; }
  // True for "##"-prefixed pieces (a word's non-first piece): whole-word masking groups on this.
  bool is_continuation(int32_t id) const { return continuation_[static_cast<size_t>(id)]; }
  // 64-bit hash of the tokens and the settings: the key that ties token shards to this vocab.
  uint64_t fingerprint() const { return fingerprint_; }

 private:
  std::vector<std::string> tokens_;
  TokenizerConfig config_;
  std::string source_;
  std::unordered_map<std::string, int32_t> index_;
  std::vector<bool> special_;
  std::vector<bool> continuation_;
  int32_t pad_id_ = -1, unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, mask_id_ = -1;
  uint64_t fingerprint_ = 0;
};

}  // namespace bert::wordpiece
