// Vocabulary training: alphabet selection, initial "##" characters, the merge loop with incremental
// pair counts, and (wordpiece rule) the swap of unused intermediate tokens for further merges. The BPE rule follows HF's BpeTrainer (which WordPieceTrainer wraps) step
// for step: alphabet counted over word occurrences, limit_alphabet keeps the most frequent
// characters, characters outside the alphabet are dropped from words, a word's non-first characters
// carry "##", ties between equal counts go to the pair with the smaller ids, training stops at
// vocab_size or when the best pair is rarer than min_frequency. Unlike HF (whose ids depend on hash
// iteration order) every id here follows a total order, so the output is reproducible.
#include "wordpiece/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "text/unicode.h"
#include "util/error.h"

namespace bert::wordpiece {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Pair {
  int32_t a = 0, b = 0;
  int64_t count = 0;
  double score = 0;             // see score_of(); may be stale (too high) under kWordPiece, see revalidate_top()
  int32_t heap_pos = -1;        // index in the heap, -1 when not eligible
  uint32_t dirty = 0;           // last merge step that queued this pair for a heap update
  bool in_lists = false;        // registered in sym_pairs_ of a and b (wordpiece rule only)
  std::vector<uint32_t> where;  // words that may contain the pair (duplicates/stale allowed)
};

struct Word {
  uint32_t begin, len;
  int64_t count;
};

// Merges pairs until the vocabulary is full. One heap slot per eligible pair (an indexed binary
// heap with increase/decrease-key), so memory stays bounded by the number of distinct pairs even
// though under the wordpiece rule every merge of (a, b) changes the score of all pairs holding a or b.
class Merger {
 public:
  Merger(const TrainerOptions& options, std::vector<std::string>& tokens,
         std::unordered_map<std::string, int32_t>& ids, std::string prefix)
      : opt_(options), tokens_(tokens), ids_(ids), prefix_(std::move(prefix)),
        rule_(options.algorithm),
        wordpiece_(options.algorithm != Algorithm::kBpe),
        min_count_(static_cast<int64_t>(std::max<uint64_t>(1, options.min_frequency))) {}

  void add_word(const std::vector<int32_t>& symbols, int64_t count) {
    words_.push_back({static_cast<uint32_t>(syms_.size()), static_cast<uint32_t>(symbols.size()), count});
    syms_.insert(syms_.end(), symbols.begin(), symbols.end());
  }

  // `text` is the word as the tokenizer will see it; empty when a character of it was dropped (the
  // tokenizer makes such a word [UNK], so it uses no piece). Only the wordpiece rule reads it.
  void add_word(const std::vector<int32_t>& symbols, int64_t count, std::string_view text) {
    add_word(symbols, count);
    if (rule_ == Algorithm::kWordPiece) text_.push_back(text);
  }

  // Runs merges until the vocabulary has `vocab_size` tokens or no eligible pair is left; under the
  // wordpiece rule, then swaps merged tokens that no training word uses for further merges.
  size_t run(TrainReport* report, const std::function<void(const TrainProgress&)>& progress) {
    initial_ = tokens_.size();
    sym_count_.assign(tokens_.size(), 0);
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (uint32_t i = 0; i < word.len; ++i) {
        sym_count_[static_cast<size_t>(syms_[word.begin + i])] += word.count;
        total_ += word.count;
        if (i + 1 < word.len) change(syms_[word.begin + i], syms_[word.begin + i + 1], word.count, w);
      }
    }
    for (uint32_t k = 0; k < pairs_.size(); ++k) update(k);
    dirty_.clear();
    ++step_;  // the dirty marks of the initial count belong to step 0
    const size_t target = static_cast<size_t>(opt_.vocab_size);
    size_t merges = merge_until(target, target, report, progress);
    if (rule_ == Algorithm::kWordPiece) merges += prune_unused(target, report, progress);
    if (progress) progress({TrainProgress::kMerging, std::min(tokens_.size(), target), target});
    return merges;
  }

 private:
  size_t merge_until(size_t limit, size_t target, TrainReport* report,
                     const std::function<void(const TrainProgress&)>& progress) {
    size_t merges = 0;
    while (tokens_.size() < limit) {
      if (heap_.empty()) {
        report->stop_reason = "no pair of tokens occurs at least --min-frequency (" +
                              std::to_string(min_count_) + ") times any more; lower it or add text";
        break;
      }
      if (rule_ == Algorithm::kWordPiece) revalidate_top();
      merge(heap_[0].pair);
      ++merges;
      if (progress && (merges & 255) == 0) {
        progress({TrainProgress::kMerging, std::min(tokens_.size(), target), target});
      }
    }
    return merges;
  }

  // A merged token that the tokenizer (greedy longest match) never picks in any training word is
  // an intermediate step of longer merges ("convin" once "convince" exists). It has count 0 in the
  // training segmentation, so dropping it changes neither that segmentation nor its likelihood;
  // its slot is refilled by further merges, in rounds, until `target` tokens are used or no pair
  // is left. If the live tokens end up above `target` the latest merges go; below it (pairs ran
  // out), the earliest unused tokens come back. Returns the extra merges; sets report->pruned.
  size_t prune_unused(size_t target, TrainReport* report,
                      const std::function<void(const TrainProgress&)>& progress) {
    constexpr int kMaxRounds = 8;
    size_t merges = 0;
    std::vector<char> live;
    for (int round = 0;; ++round) {
      live = mark_used();
      const size_t n_live = initial_ + static_cast<size_t>(std::count(live.begin() + static_cast<long>(initial_), live.end(), 1));
      if (n_live >= target || heap_.empty() || round == kMaxRounds) break;
      merges += merge_until(tokens_.size() + (target - n_live), target, report, progress);
    }
    std::vector<size_t> keep;
    for (size_t id = initial_; id < tokens_.size(); ++id) {
      if (live[id]) keep.push_back(id);
    }
    if (initial_ + keep.size() > target) keep.resize(target - initial_);
    for (size_t id = initial_; id < tokens_.size() && initial_ + keep.size() < target; ++id) {
      if (!live[id]) keep.push_back(id);
    }
    std::sort(keep.begin(), keep.end());
    report->pruned = tokens_.size() - initial_ - keep.size();
    if (initial_ + keep.size() == target) report->stop_reason.clear();
    std::vector<std::string> out(tokens_.begin(), tokens_.begin() + static_cast<long>(initial_));
    for (size_t id : keep) out.push_back(std::move(tokens_[id]));
    tokens_ = std::move(out);
    return merges;
  }

  // Marks the tokens that greedy longest-match-first picks in at least one training word.
  std::vector<char> mark_used() const {
    std::vector<char> used(tokens_.size(), 0);
    size_t longest = 0;
    for (size_t id = initial_; id < tokens_.size(); ++id) longest = std::max(longest, tokens_[id].size());
    std::string piece;
    for (std::string_view w : text_) {
      for (size_t i = 0; i < w.size();) {
        size_t j = std::min(w.size(), i + longest);
        int32_t found = -1;
        for (; j > i; --j) {
          if (j < w.size() && (static_cast<uint8_t>(w[j]) & 0xC0) == 0x80) continue;  // inside a character
          piece.assign(i == 0 ? "" : prefix_);
          piece.append(w.substr(i, j - i));
          auto it = ids_.find(piece);
          if (it != ids_.end()) {
            found = it->second;
            break;
          }
        }
        if (found < 0) break;  // cannot happen: every kept character is a token
        used[static_cast<size_t>(found)] = 1;
        i = j;
      }
    }
    return used;
  }

 private:
  // Heap order: higher score, then higher count, then smaller ids (HF's tie rule for BPE). The
  // keys live in the heap array itself so sifting does not chase pointers into pairs_.
  struct Slot {
    double score;
    int64_t count;
    int32_t a, b;
    uint32_t pair;
  };
  static bool better(const Slot& p, const Slot& q) {
    if (p.score != q.score) return p.score > q.score;
    if (p.count != q.count) return p.count > q.count;
    if (p.a != q.a) return p.a < q.a;
    return p.b < q.b;
  }
  void place(size_t i, const Slot& s) {
    heap_[i] = s;
    pairs_[s.pair].heap_pos = static_cast<int32_t>(i);
  }
  void sift_up(size_t i) {
    const Slot s = heap_[i];
    while (i > 0 && better(s, heap_[(i - 1) / 2])) {
      place(i, heap_[(i - 1) / 2]);
      i = (i - 1) / 2;
    }
    place(i, s);
  }
  void sift_down(size_t i) {
    const Slot s = heap_[i];
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= heap_.size()) break;
      if (c + 1 < heap_.size() && better(heap_[c + 1], heap_[c])) ++c;
      if (!better(heap_[c], s)) break;
      place(i, heap_[c]);
      i = c;
    }
    place(i, s);
  }
  // Recomputes pair k's score and fixes its heap slot (insert, move, or remove).
  void update(uint32_t k) {
    Pair& p = pairs_[k];
    const bool eligible = p.count >= min_count_;
    if (eligible) p.score = score_of(p);
    const Slot slot{p.score, p.count, p.a, p.b, k};
    if (p.heap_pos < 0) {
      if (!eligible) return;
      heap_.push_back(slot);
      sift_up(heap_.size() - 1);
      return;
    }
    const size_t i = static_cast<size_t>(p.heap_pos);
    if (!eligible) {
      p.heap_pos = -1;
      const Slot last = heap_.back();
      heap_.pop_back();
      if (i < heap_.size()) {
        place(i, last);
        sift_up(i);
        sift_down(static_cast<size_t>(pairs_[last.pair].heap_pos));
      }
      return;
    }
    heap_[i] = slot;
    sift_up(i);
    sift_down(static_cast<size_t>(pairs_[k].heap_pos));
  }

  void mark_dirty(uint32_t k) {
    if (pairs_[k].dirty != step_ + 1) {
      pairs_[k].dirty = step_ + 1;
      dirty_.push_back(k);
    }
  }

  // Adds `delta` occurrences of (a, b) found in word `w`.
  void change(int32_t a, int32_t b, int64_t delta, uint32_t w) {
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    auto [it, inserted] = pair_index_.try_emplace(key, static_cast<uint32_t>(pairs_.size()));
    if (inserted) {
      pairs_.emplace_back();
      pairs_.back().a = a;
      pairs_.back().b = b;
    }
    const uint32_t k = it->second;
    Pair& p = pairs_[k];
    p.count += delta;
    mark_dirty(k);
    if (delta > 0) {
      p.where.push_back(w);
      if (wordpiece_ && !p.in_lists) {
        p.in_lists = true;
        sym_pairs(a).push_back(k);
        if (b != a) sym_pairs(b).push_back(k);
      }
    }
  }

  std::vector<uint32_t>& sym_pairs(int32_t s) {
    if (static_cast<size_t>(s) >= sym_pairs_.size()) sym_pairs_.resize(static_cast<size_t>(s) + 1);
    return sym_pairs_[static_cast<size_t>(s)];
  }

  void merge(uint32_t k) {
    const int32_t a = pairs_[k].a, b = pairs_[k].b;
    std::string_view right = tokens_[static_cast<size_t>(b)];
    if (right.compare(0, prefix_.size(), prefix_) == 0) right.remove_prefix(prefix_.size());
    std::string merged = tokens_[static_cast<size_t>(a)] + std::string(right);
    auto [it, inserted] = ids_.try_emplace(merged, static_cast<int32_t>(tokens_.size()));
    if (inserted) tokens_.push_back(merged);
    const int32_t t = it->second;
    if (static_cast<size_t>(t) >= sym_count_.size()) sym_count_.resize(static_cast<size_t>(t) + 1, 0);

    std::vector<uint32_t> where = std::move(pairs_[k].where);
    pairs_[k].where = {};
    std::sort(where.begin(), where.end());
    where.erase(std::unique(where.begin(), where.end()), where.end());
    for (uint32_t w : where) {
      Word& word = words_[w];
      int32_t* s = syms_.data() + word.begin;
      uint32_t out = 0;
      for (uint32_t i = 0; i < word.len; ++i) {
        if (i + 1 < word.len && s[i] == a && s[i + 1] == b) {
          if (out > 0) {
            change(s[out - 1], a, -word.count, w);
            change(s[out - 1], t, word.count, w);
          }
          if (i + 2 < word.len) {
            change(b, s[i + 2], -word.count, w);
            change(t, s[i + 2], word.count, w);
          }
          sym_count_[static_cast<size_t>(a)] -= word.count;
          sym_count_[static_cast<size_t>(b)] -= word.count;
          sym_count_[static_cast<size_t>(t)] += word.count;
          total_ -= word.count;
          s[out++] = t;
          ++i;
        } else {
          s[out++] = s[i];
        }
      }
      word.len = out;
    }
    pairs_[k].count = 0;
    mark_dirty(k);
    if (wordpiece_) {  // count(a) and count(b) fell, so every pair holding a or b scores higher now
      dirty_pairs_of(a);
      if (b != a) dirty_pairs_of(b);
    }
    if (dirty_.size() * 4 > heap_.size()) {
      rebuild_heap();  // many changed keys (typical under the wordpiece rule): O(heap) beats sifting each
    } else {
      for (uint32_t q : dirty_) update(q);
    }
    dirty_.clear();
    ++step_;
  }

  // Recomputes the dirty pairs' scores and rebuilds the heap bottom-up (Floyd). The heap order is a
  // strict total order, so the top -- and thus the training result -- is the same as with update().
  void rebuild_heap() {
    std::vector<uint32_t> added;
    for (uint32_t q : dirty_) {
      Pair& p = pairs_[q];
      if (p.count < min_count_) continue;
      p.score = score_of(p);
      if (p.heap_pos < 0) added.push_back(q);
    }
    size_t n = 0;
    for (size_t i = 0; i < heap_.size(); ++i) {
      const Pair& p = pairs_[heap_[i].pair];
      if (p.count >= min_count_) {
        heap_[n++] = {p.score, p.count, p.a, p.b, heap_[i].pair};
      } else {
        pairs_[heap_[i].pair].heap_pos = -1;
      }
    }
    heap_.resize(n);
    for (uint32_t q : added) {
      const Pair& p = pairs_[q];
      heap_.push_back({p.score, p.count, p.a, p.b, q});
    }
    for (size_t i = 0; i < heap_.size(); ++i) pairs_[heap_[i].pair].heap_pos = static_cast<int32_t>(i);
    for (size_t i = heap_.size() / 2; i-- > 0;) sift_down(i);
  }

  // The gain falls as its symbols' counts rise and as total_
  // shrinks (d/dN n log(nN/(ca cb)) = n/N > 0). A merge re-scores every pair whose own count or
  // whose symbols' counts fell, so a key left stale by a merge elsewhere is an upper bound of its
  // pair's gain now: re-scoring the top until it is current yields the exact maximum (lazy greedy)
  // without re-scoring every pair each time N falls.
  void revalidate_top() {
    for (;;) {
      Slot& top = heap_[0];
      const double s = score_of(pairs_[top.pair]);
      if (s == top.score) return;
      pairs_[top.pair].score = s;
      top.score = s;
      sift_down(0);
    }
  }

  double score_of(const Pair& p) const {
    const double n = static_cast<double>(p.count);
    if (!wordpiece_) return n;
    const double ca = static_cast<double>(sym_count_[static_cast<size_t>(p.a)]);
    const double cb = static_cast<double>(sym_count_[static_cast<size_t>(p.b)]);
    if (rule_ == Algorithm::kWordPieceRatio) return n / (ca * cb);
    return n * std::log(n * static_cast<double>(total_) / (ca * cb));
  }

  void dirty_pairs_of(int32_t s) {
    auto& list = sym_pairs(s);
    size_t keep = 0;
    for (uint32_t q : list) {
      Pair& p = pairs_[q];
      if (p.count < min_count_ && p.heap_pos < 0) {  // not eligible: its score does not matter
        p.in_lists = false;                          // until an increase registers it again
        continue;
      }
      list[keep++] = q;
      mark_dirty(q);
    }
    list.resize(keep);
    // A pair dropped here but still listed under its other symbol may get listed there twice
    // after re-registration; that only costs a redundant (idempotent) update.
    // (Pairs below min_frequency are also re-registered by change() when their count rises.)
  }

  const TrainerOptions& opt_;
  std::vector<std::string>& tokens_;
  std::unordered_map<std::string, int32_t>& ids_;
  const std::string prefix_;
  const Algorithm rule_;
  const bool wordpiece_;  // a score that depends on count(a) and count(b) (both wordpiece rules)
  const int64_t min_count_;
  int64_t total_ = 0;      // N: symbols in the corpus, summed over word occurrences

  std::vector<Word> words_;
  std::vector<int32_t> syms_;
  std::vector<int64_t> sym_count_;
  std::vector<Pair> pairs_;
  std::unordered_map<uint64_t, uint32_t> pair_index_;
  std::vector<std::vector<uint32_t>> sym_pairs_;
  std::vector<Slot> heap_;      // eligible pairs, best at [0]
  std::vector<uint32_t> dirty_;  // pairs whose count or score changed in this merge step
  uint32_t step_ = 0;
  size_t initial_ = 0;                 // specials, unused slots and characters: never pruned
  std::vector<std::string_view> text_;  // per word, for mark_used() (wordpiece rule only)
};

std::vector<char32_t> decode_all(std::string_view w) {
  std::vector<char32_t> out;
  const auto* p = reinterpret_cast<const uint8_t*>(w.data());
  for (size_t i = 0; i < w.size();) {
    char32_t c;
    bool valid;
    i += text::decode_utf8(p + i, w.size() - i, &c, &valid);
    out.push_back(c);
  }
  return out;
}

std::string utf8(char32_t c) {
  std::string s;
  text::append_utf8(s, c);
  return s;
}

}  // namespace

Algorithm parse_algorithm(std::string_view name) {
  if (name == "wordpiece") return Algorithm::kWordPiece;
  if (name == "wordpiece-ratio") return Algorithm::kWordPieceRatio;
  if (name == "bpe") return Algorithm::kBpe;
  throw util::usage_error("unknown algorithm \"" + std::string(name) +
                          "\"; choose wordpiece (merge by likelihood gain count(ab)*log(count(ab)*N/"
                          "(count(a)count(b)))), wordpiece-ratio (merge by count(ab)/(count(a)count(b))) "
                          "or bpe (merge the most frequent pair, as Hugging Face's WordPieceTrainer)");
}

TokenizerConfig config_for(const TrainerOptions& options) {
  TokenizerConfig c;
  c.normalizer = text::options_for(options.mode);
  c.max_input_chars_per_word = options.max_input_chars_per_word;
  return c;
}

std::vector<std::string> learn_vocab(const WordCounts& counts, const TrainerOptions& options,
                                     TrainReport* report,
                                     const std::function<void(const TrainProgress&)>& progress) {
  if (counts.words.empty()) {
    throw util::input_error("no words found in the input (" + std::to_string(counts.lines) +
                            " lines read); pass text files with content");
  }
  const std::string prefix = config_for(options).continuing_prefix;
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int32_t> ids;
  auto add = [&](const std::string& t) {
    if (ids.try_emplace(t, static_cast<int32_t>(tokens.size())).second) tokens.push_back(t);
  };
  for (const auto& s : options.special_tokens) add(s);
  for (int i = 0; i < options.unused; ++i) add("[unused" + std::to_string(i) + "]");

  // Alphabet: characters weighted by word count; limit_alphabet keeps the most frequent.
  std::unordered_map<char32_t, uint64_t> char_count;
  for (const auto& [w, c] : counts.words) {
    for (char32_t ch : decode_all(w)) char_count[ch] += c;
  }
  std::vector<std::pair<char32_t, uint64_t>> alphabet(char_count.begin(), char_count.end());
  std::sort(alphabet.begin(), alphabet.end(), [](const auto& x, const auto& y) {
    return x.second != y.second ? x.second > y.second : x.first < y.first;
  });
  const size_t limit = options.limit_alphabet > 0 ? static_cast<size_t>(options.limit_alphabet) : alphabet.size();
  report->alphabet_dropped = alphabet.size() > limit ? alphabet.size() - limit : 0;
  if (alphabet.size() > limit) alphabet.resize(limit);
  std::sort(alphabet.begin(), alphabet.end());
  std::unordered_map<char32_t, bool> in_alphabet;  // value: seen at a non-first position
  for (const auto& [ch, c] : alphabet) in_alphabet[ch] = false;
  for (const auto& [w, c] : counts.words) {
    const auto chars = decode_all(w);
    for (size_t i = 1; i < chars.size(); ++i) {
      auto it = in_alphabet.find(chars[i]);
      if (it != in_alphabet.end()) it->second = true;
    }
  }
  for (const auto& [ch, c] : alphabet) add(utf8(ch));
  for (const auto& [ch, c] : alphabet) {
    if (in_alphabet[ch]) add(prefix + utf8(ch));
  }
  report->alphabet_size = alphabet.size();
  report->initial_vocab = tokens.size();
  if (static_cast<size_t>(options.vocab_size) < tokens.size()) {
    throw util::usage_error(
        "--vocab-size " + std::to_string(options.vocab_size) + " cannot hold the " +
        std::to_string(options.special_tokens.size() + static_cast<size_t>(options.unused)) +
        " special/unused tokens, the " + std::to_string(alphabet.size()) + " alphabet characters and their " +
        std::to_string(tokens.size() - alphabet.size() - options.special_tokens.size() -
                       static_cast<size_t>(options.unused)) +
        " \"##\" forms; use --vocab-size " + std::to_string(tokens.size()) +
        " or more, or lower --limit-alphabet");
  }

  Merger merger(options, tokens, ids, prefix);
  std::vector<int32_t> symbols;
  for (const auto& [w, c] : counts.words) {
    symbols.clear();
    const auto chars = decode_all(w);
    for (size_t i = 0; i < chars.size(); ++i) {
      if (in_alphabet.count(chars[i]) == 0) continue;  // dropped, as HF does
      symbols.push_back(ids.at(i == 0 ? utf8(chars[i]) : prefix + utf8(chars[i])));
    }
    if (!symbols.empty()) {
      merger.add_word(symbols, static_cast<int64_t>(c), symbols.size() == chars.size() ? std::string_view(w) : std::string_view());
    }
  }
  report->merges = merger.run(report, progress);
  return tokens;
}

Vocab train_vocab(const std::vector<std::filesystem::path>& files, const TrainerOptions& options,
                  TrainReport* report, const std::function<void(const TrainProgress&)>& progress) {
  CountOptions co;
  co.normalizer = text::options_for(options.mode);
  co.threads = options.threads;
  co.memory_mb = options.memory_mb;
  co.max_input_chars_per_word = options.max_input_chars_per_word;
  auto t0 = Clock::now();
  WordCounts counts = count_words(files, co, [&](const CountProgress& p) {
    if (progress) progress({TrainProgress::kCounting, p.bytes_done, p.bytes_total});
  });
  report->count_seconds = seconds_since(t0);
  if (counts.words.empty()) {
    std::string names;
    for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.string();
    throw util::input_error("no words found in " + names + " (" + std::to_string(counts.lines) +
                            " lines read, all empty or blank); pass text files with content");
  }
  t0 = Clock::now();
  std::vector<std::string> tokens = learn_vocab(counts, options, report, progress);
  report->merge_seconds = seconds_since(t0);
  report->distinct_words = counts.words.size();
  counts.words.clear();
  counts.words.shrink_to_fit();
  report->counts = std::move(counts);
  return Vocab(std::move(tokens), config_for(options), "trained vocabulary");
}

}  // namespace bert::wordpiece
