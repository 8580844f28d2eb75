// WordPiece encoding: normalize, pre-tokenize, then greedy longest-match-first over a trie (linear
// in the word's length, LinMaxMatch-style), with "##" continuation pieces. Same output as Hugging
// Face's BertTokenizerFast given the same vocab and settings.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "wordpiece/vocab.h"

namespace bert::wordpiece {

class Tokenizer {
 public:
  explicit Tokenizer(std::shared_ptr<const Vocab> vocab);
  ~Tokenizer();

  // Appends the ids of one text (no [CLS]/[SEP] added) to `out`. Thread-safe: const, no shared state.
  void encode_ids(std::string_view text, std::vector<int32_t>& out) const;
  std::vector<int32_t> encode_ids(std::string_view text) const;
  // The token strings, e.g. {"żół", "##ć"}.
  std::vector<std::string> encode_tokens(std::string_view text) const;
  // Encodes many texts across `threads` threads (0 = hardware concurrency); result order = input order.
  std::vector<std::vector<int32_t>> encode_batch(const std::vector<std::string>& texts,
                                                 int threads) const;
  // Joins tokens back into text: "##" pieces glue to the previous piece, specials kept or skipped.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;

  const Vocab& vocab() const { return *vocab_; }

 private:
  struct Trie;
  std::shared_ptr<const Vocab> vocab_;
  std::unique_ptr<Trie> trie_;
};

}  // namespace bert::wordpiece
