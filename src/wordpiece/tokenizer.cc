// WordPiece encoding over a byte trie: the fused normalizer/pre-tokenizer yields words, and each
// word is split greedily longest-match-first, exactly as HF's WordPiece model does, but with one
// trie walk per piece instead of HF's repeated hash lookups of shrinking substrings.
#include "wordpiece/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "text/word_splitter.h"
#include "util/error.h"

namespace bert::wordpiece {

// A byte trie flattened into arrays. Nodes with many children get a dense 256-entry table; the rest
// scan a short sorted label list. Node 0 is the root; cont_root_ is the node reached by "##".
struct Tokenizer::Trie {
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kDenseFrom = 8;  // children count at which a node gets a dense table

  struct Node {
    uint32_t edges_begin = 0;  // into labels/targets, or into dense (index * 256) when is_dense
    uint16_t edges = 0;
    bool is_dense = false;
    int32_t token = -1;
  };

  explicit Trie(const Vocab& vocab) : splitter(vocab.config().normalizer) {
    // Build with ordered maps, then flatten breadth-first.
    struct Build {
      std::map<uint8_t, uint32_t> next;
      int32_t token = -1;
    };
    std::vector<Build> b(1);
    for (int32_t id = 0; id < vocab.size(); ++id) {
      uint32_t node = 0;
      for (char ch : vocab.token(id)) {
        const auto byte = static_cast<uint8_t>(ch);
        auto it = b[node].next.find(byte);
        if (it == b[node].next.end()) {
          b.emplace_back();
          it = b[node].next.emplace(byte, static_cast<uint32_t>(b.size() - 1)).first;
        }
        node = it->second;
      }
      b[node].token = id;
    }
    nodes.resize(b.size());
    for (size_t i = 0; i < b.size(); ++i) {
      Node& n = nodes[i];
      n.token = b[i].token;
      n.edges = static_cast<uint16_t>(b[i].next.size());
      if (b[i].next.size() >= kDenseFrom) {
        n.is_dense = true;
        n.edges_begin = static_cast<uint32_t>(dense.size() / 256);
        dense.resize(dense.size() + 256, kNone);
        for (auto [label, target] : b[i].next) dense[n.edges_begin * 256 + label] = target;
      } else {
        n.edges_begin = static_cast<uint32_t>(labels.size());
        for (auto [label, target] : b[i].next) {
          labels.push_back(label);
          targets.push_back(target);
        }
      }
    }
    cont_root = 0;
    for (char ch : vocab.config().continuing_prefix) {
      if (cont_root != kNone) cont_root = child(cont_root, static_cast<uint8_t>(ch));
    }
    unk = vocab.unk_id();
    max_chars = static_cast<size_t>(vocab.config().max_input_chars_per_word);
  }

  uint32_t child(uint32_t node, uint8_t byte) const {
    const Node& n = nodes[node];
    if (n.is_dense) return dense[static_cast<size_t>(n.edges_begin) * 256 + byte];
    const uint8_t* l = labels.data() + n.edges_begin;
    for (uint32_t k = 0; k < n.edges; ++k) {
      if (l[k] == byte) return targets[n.edges_begin + k];
    }
    return kNone;
  }

  // Greedy longest-match-first split of one normalized word; the whole word becomes [UNK] when it
  // is too long or some position has no matching piece (HF semantics).
  void encode_word(std::string_view w, std::vector<int32_t>& out) const {
    if (w.size() > max_chars && text::count_chars(w) > max_chars) {
      out.push_back(unk);
      return;
    }
    const size_t start_size = out.size();
    const auto* p = reinterpret_cast<const uint8_t*>(w.data());
    const size_t len = w.size();
    size_t pos = 0;
    while (pos < len) {
      uint32_t node = pos == 0 ? 0 : cont_root;
      size_t best_end = 0;
      int32_t best = -1;
      for (size_t j = pos; j < len && node != kNone; ++j) {
        node = child(node, p[j]);
        if (node != kNone && nodes[node].token >= 0 && (j + 1 == len || (p[j + 1] & 0xC0) != 0x80)) {
          best = nodes[node].token;
          best_end = j + 1;
        }
      }
      if (best < 0) {
        out.resize(start_size);
        out.push_back(unk);
        return;
      }
      out.push_back(best);
      pos = best_end;
    }
  }

  text::WordSplitter splitter;
  std::vector<Node> nodes;
  std::vector<uint8_t> labels;
  std::vector<uint32_t> targets;
  std::vector<uint32_t> dense;
  uint32_t cont_root = kNone;
  int32_t unk = 0;
  size_t max_chars = 100;
};

Tokenizer::Tokenizer(std::shared_ptr<const Vocab> vocab)
    : vocab_(std::move(vocab)), trie_(std::make_unique<Trie>(*vocab_)) {}

Tokenizer::~Tokenizer() = default;

void Tokenizer::encode_ids(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::string word;
  const Trie& trie = *trie_;
  trie.splitter.split(text, word, [&](std::string_view w) { trie.encode_word(w, out); });
}

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text) const {
  std::vector<int32_t> out;
  encode_ids(text, out);
  return out;
}

std::vector<std::string> Tokenizer::encode_tokens(std::string_view text) const {
  std::vector<std::string> out;
  for (int32_t id : encode_ids(text)) out.push_back(vocab_->token(id));
  return out;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                          int threads) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  constexpr size_t kBlock = 64;  // texts per work item: small enough to balance, big enough to amortize
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t begin; (begin = next.fetch_add(kBlock)) < texts.size();) {
      const size_t end = std::min(begin + kBlock, texts.size());
      for (size_t i = begin; i < end; ++i) encode_ids(texts[i], out[i]);
    }
  };
  const size_t n_threads = std::min<size_t>(static_cast<size_t>(threads), texts.size() / kBlock + 1);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n_threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  // HF's WordPiece decoder: join with spaces, glue "##" pieces, then its per-token cleanup of
  // spaces before punctuation and English contractions.
  static const std::pair<std::string_view, std::string_view> kCleanup[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  const std::string& prefix = vocab_->config().continuing_prefix;
  std::string out, piece;
  bool first = true;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_->size()) {
      throw util::input_error("decode: token id " + std::to_string(id) + " is outside the vocabulary (size " +
                              std::to_string(vocab_->size()) + ")");
    }
    if (skip_special && vocab_->is_special(id)) continue;
    const std::string& t = vocab_->token(id);
    if (!first && t.compare(0, prefix.size(), prefix) == 0) {
      piece = t.substr(prefix.size());
    } else {
      piece = first ? t : " " + t;
    }
    first = false;
    for (const auto& [from, to] : kCleanup) {
      for (size_t at = piece.find(from); at != std::string::npos; at = piece.find(from, at + to.size())) {
        piece.replace(at, from.size(), to);
      }
    }
    out += piece;
  }
  return out;
}

}  // namespace bert::wordpiece
