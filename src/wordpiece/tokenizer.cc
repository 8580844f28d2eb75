// WordPiece encoding over a byte trie: the fused normalizer/pre-tokenizer yields words, and each
// word is split greedily longest-match-first, exactly as HF's WordPiece model does, but in one
// left-to-right pass per word (LinMaxMatch: failure links and failure pops, Song et al. 2021).
#include "wordpiece/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "text/word_splitter.h"
#include "util/error.h"

namespace bert::wordpiece {

// LinMaxMatch ("Fast WordPiece Tokenization", Song et al. 2021) over a byte trie flattened into
// arrays. Two roots: kRoot spells whole tokens (a word's first piece; "##x" tokens included
// literally, as HF matches them there), kContRoot spells continuation tokens without their prefix.
// Each node v also stores its failure link f(v) and failure pops F(v): when the walk is at v and
// cannot follow the next byte, greedy longest-match-first would emit F(v) and be at f(v) (a node
// under kContRoot) with the same unconsumed input. Every failure step emits at least one token, so
// a word of n bytes costs at most 2n trie steps, instead of one walk per piece from its start.
// Nodes with many children get a dense 256-entry table; the rest scan a short label list.
struct Tokenizer::Trie {
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kRoot = 0;
  static constexpr uint32_t kContRoot = 1;
  static constexpr uint32_t kDenseFrom = 8;  // children count at which a node gets a dense table

  struct Node {
    uint32_t edges_begin = 0;  // into labels/targets, or into dense (index * 256) when is_dense
    uint16_t edges = 0;
    bool is_dense = false;
    uint32_t fail = kNone;     // f(v); kNone: greedy matching fails, the word is [UNK]
    uint32_t pops_begin = 0;   // F(v) = pops[pops_begin, pops_begin + pops_len)
    uint32_t pops_len = 0;
  };

  // Byte-level build tree; flattened into `nodes` and then dropped.
  struct Build {
    std::map<uint8_t, uint32_t> next;
    int32_t token = -1;
  };

  explicit Trie(const Vocab& vocab) : splitter(vocab.config().normalizer) {
    std::vector<Build> b(2);  // kRoot, kContRoot
    const std::string& prefix = vocab.config().continuing_prefix;
    for (int32_t id = 0; id < vocab.size(); ++id) {
      const std::string_view t = vocab.token(id);
      insert(b, kRoot, t, id);
      if (t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0) {
        insert(b, kContRoot, t.substr(prefix.size()), id);
      }
    }
    flatten(b);
    link(b);
    unk = vocab.unk_id();
    max_chars = static_cast<size_t>(vocab.config().max_input_chars_per_word);
  }

  // True when `piece`, read from a character boundary of a valid UTF-8 word, ends on one: the old
  // per-byte check "next byte is not a continuation byte", decided once per token instead. Tokens
  // that fail it (invalid UTF-8) can never be a piece, as in HF, which splits on characters.
  static bool ends_on_char_boundary(std::string_view piece) {
    size_t i = 0;
    while (i < piece.size()) {
      const auto lead = static_cast<uint8_t>(piece[i]);
      i += lead < 0x80 ? 1 : lead < 0xC0 ? piece.size() + 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    }
    return i == piece.size();
  }

  static void insert(std::vector<Build>& b, uint32_t root, std::string_view piece, int32_t id) {
    uint32_t node = root;
    for (char ch : piece) {
      const auto byte = static_cast<uint8_t>(ch);
      auto it = b[node].next.find(byte);
      if (it == b[node].next.end()) {
        b.emplace_back();
        it = b[node].next.emplace(byte, static_cast<uint32_t>(b.size() - 1)).first;
      }
      node = it->second;
    }
    if (ends_on_char_boundary(piece)) b[node].token = id;
  }

  void flatten(const std::vector<Build>& b) {
    nodes.resize(b.size());
    for (size_t i = 0; i < b.size(); ++i) {
      Node& n = nodes[i];
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
  }

  // The paper's Algorithm 2, breadth-first so that f(u) and every f(z) below are final before v.
  // A token node pops itself and continues at kContRoot; otherwise v = u + c extends u's failure
  // path: follow failure links from f(u), collecting pops, until a node that has a child c. F(v)
  // usually equals F(u) and then shares its range, which keeps `pops` about one entry per token.
  void link(const std::vector<Build>& b) {
    std::vector<uint32_t> queue = {kRoot, kContRoot};
    std::vector<int32_t> scratch;
    for (size_t qi = 0; qi < queue.size(); ++qi) {
      const uint32_t u = queue[qi];
      for (auto [c, v] : b[u].next) {
        queue.push_back(v);
        Node& nv = nodes[v];
        if (b[v].token >= 0) {
          nv.fail = kContRoot;
          nv.pops_begin = static_cast<uint32_t>(pops.size());
          nv.pops_len = 1;
          pops.push_back(b[v].token);
          continue;
        }
        uint32_t z = nodes[u].fail;
        uint32_t next = z == kNone ? kNone : child(z, c);
        if (next != kNone) {  // F(v) = F(u)
          nv.fail = next;
          nv.pops_begin = nodes[u].pops_begin;
          nv.pops_len = nodes[u].pops_len;
          continue;
        }
        scratch.assign(pops.begin() + nodes[u].pops_begin,
                       pops.begin() + nodes[u].pops_begin + nodes[u].pops_len);
        while (z != kNone && next == kNone) {
          const Node& nz = nodes[z];
          scratch.insert(scratch.end(), pops.begin() + nz.pops_begin,
                         pops.begin() + nz.pops_begin + nz.pops_len);
          z = nz.fail;
          next = z == kNone ? kNone : child(z, c);
        }
        if (next == kNone) continue;  // no full segmentation: f(v) stays kNone
        nv.fail = next;
        nv.pops_begin = static_cast<uint32_t>(pops.size());
        nv.pops_len = static_cast<uint32_t>(scratch.size());
        pops.insert(pops.end(), scratch.begin(), scratch.end());
      }
    }
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

  // Emits F(node) and returns f(node); kNone when greedy matching fails.
  uint32_t fail(uint32_t node, std::vector<int32_t>& out) const {
    const Node& n = nodes[node];
    if (n.pops_len == 1) {
      out.push_back(pops[n.pops_begin]);
    } else {
      out.insert(out.end(), pops.begin() + n.pops_begin, pops.begin() + n.pops_begin + n.pops_len);
    }
    return n.fail;
  }

  // Greedy longest-match-first split of one normalized (valid UTF-8) word; the whole word becomes
  // [UNK] when it is too long or some position has no matching piece (HF semantics).
  void encode_word(std::string_view w, std::vector<int32_t>& out) const {
    if (w.size() > max_chars && text::count_chars(w) > max_chars) {
      out.push_back(unk);
      return;
    }
    const size_t start_size = out.size();
    const auto* p = reinterpret_cast<const uint8_t*>(w.data());
    uint32_t node = kRoot;
    for (size_t j = 0; j < w.size(); ++j) {
      uint32_t next;
      while ((next = child(node, p[j])) == kNone) {
        if ((node = fail(node, out)) == kNone) return unk_word(start_size, out);
      }
      node = next;
    }
    // End of word: pop until nothing is left unconsumed (kContRoot); w empty stays empty.
    while (node != kContRoot && node != kRoot) {
      if ((node = fail(node, out)) == kNone) return unk_word(start_size, out);
    }
  }

  void unk_word(size_t start_size, std::vector<int32_t>& out) const {
    out.resize(start_size);
    out.push_back(unk);
  }

  text::WordSplitter splitter;
  std::vector<Node> nodes;
  std::vector<uint8_t> labels;
  std::vector<uint32_t> targets;
  std::vector<uint32_t> dense;
  std::vector<int32_t> pops;  // failure pops of all nodes, as ranges
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
