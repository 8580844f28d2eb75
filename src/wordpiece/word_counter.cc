// Parallel word counting with in-order merging and deterministic pruning.
#include "wordpiece/word_counter.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "text/word_splitter.h"
#include "util/mapped_file.h"
#include "wordpiece/text_input.h"

namespace bert::wordpiece {
namespace fs = std::filesystem;

namespace {

using Table = std::unordered_map<std::string, uint64_t>;

struct ChunkCounts {
  Table table;
  uint64_t words = 0, too_long = 0, nul = 0, invalid = 0, first_invalid = UINT64_MAX;
  bool done = false;
};

void count_chunk(const Chunk& chunk, const text::WordSplitter& splitter, size_t max_chars,
                 ChunkCounts& out) {
  std::string_view text = chunk.text;
  if (chunk.skip_partial_word) {  // the tail of a word longer than a chunk: [UNK] anyway
    size_t k = 0;
    while (k < text.size() && !(text[k] == ' ' || text[k] == '\n' || text[k] == '\t' ||
                                 text::is_punctuation(static_cast<uint8_t>(text[k])))) {
      ++k;
    }
    text.remove_prefix(k);
  }
  for (const char* p = text.data(); (p = static_cast<const char*>(std::memchr(p, 0, text.data() + text.size() - p)));
       ++p) {
    ++out.nul;
  }
  std::string scratch, key;
  text::Utf8Issues issues;
  splitter.split(text, scratch, [&](std::string_view w) {
    ++out.words;
    if (w.size() > max_chars && text::count_chars(w) > max_chars) {
      ++out.too_long;
      return;
    }
    key.assign(w);
    ++out.table[key];
  }, &issues);
  out.invalid = issues.invalid_sequences;
  if (issues.invalid_sequences > 0) {
    out.first_invalid = chunk.offset + (chunk.text.size() - text.size()) + issues.first_invalid_offset;
  }
}

// The global table with a running estimate of its heap footprint.
class BudgetedTable {
 public:
  explicit BudgetedTable(size_t budget_bytes) : budget_(budget_bytes) {}

  void add(Table& chunk) {
    for (auto& [word, count] : chunk) {
      auto [it, inserted] = table_.try_emplace(word, 0);
      it->second += count;
      if (inserted) bytes_ += entry_bytes(word);
    }
  }
  // Drops ever more frequent words until the table is under 3/4 of the budget (fastText's rule).
  void prune_if_needed(WordCounts& stats) {
    if (bytes_ <= budget_) return;
    while (bytes_ > budget_ / 4 * 3 && !table_.empty()) {
      threshold_ = std::max<uint64_t>(threshold_ + 1, 2);
      for (auto it = table_.begin(); it != table_.end();) {
        if (it->second < threshold_) {
          bytes_ -= entry_bytes(it->first);
          ++stats.pruned_distinct;
          it = table_.erase(it);
        } else {
          ++it;
        }
      }
    }
    stats.prune_threshold = threshold_;
  }
  Table& table() { return table_; }

 private:
  static size_t entry_bytes(const std::string& w) { return 72 + (w.size() > 15 ? w.size() + 1 : 0); }
  Table table_;
  size_t budget_;
  size_t bytes_ = 0;
  uint64_t threshold_ = 1;
};

}  // namespace

WordCounts count_words(const std::vector<fs::path>& files, const CountOptions& options,
                       const std::function<void(const CountProgress&)>& progress) {
  WordCounts result;
  CountProgress prog;
  for (const auto& f : files) prog.bytes_total += check_text_file(f);
  const text::WordSplitter splitter(options.normalizer);
  const size_t max_chars = static_cast<size_t>(options.max_input_chars_per_word);
  const size_t threads = options.threads > 0 ? static_cast<size_t>(options.threads)
                                             : std::max(1u, std::thread::hardware_concurrency());
  BudgetedTable global(options.memory_mb << 20);

  for (const auto& file : files) {
    const util::MappedFile mapped(file);
    const std::string_view data(reinterpret_cast<const char*>(mapped.data()), mapped.size());
    const std::vector<Chunk> chunks = cut_chunks(data, options.chunk_bytes);
    std::vector<ChunkCounts> counts(chunks.size());
    std::mutex mu;
    std::condition_variable cv;
    size_t merged = 0;  // chunks merged so far; workers stay within a window ahead of it
    std::atomic<size_t> next{0};
    const size_t window = 2 * threads;
    auto worker = [&] {
      for (size_t i; (i = next.fetch_add(1)) < chunks.size();) {
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return i < merged + window; });
        }
        ChunkCounts local;
        count_chunk(chunks[i], splitter, max_chars, local);
        std::lock_guard<std::mutex> lock(mu);
        counts[i] = std::move(local);
        counts[i].done = true;
        cv.notify_all();
      }
    };
    std::vector<std::thread> pool;
    for (size_t t = 0; t < std::min(threads, chunks.size()); ++t) pool.emplace_back(worker);
    for (size_t i = 0; i < chunks.size(); ++i) {
      ChunkCounts c;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return counts[i].done; });
        c = std::move(counts[i]);
      }
      global.add(c.table);
      global.prune_if_needed(result);
      result.total_words += c.words;
      result.too_long_words += c.too_long;
      result.nul_bytes += c.nul;
      if (c.invalid > 0 && result.invalid_utf8 == 0) {
        result.first_invalid_file = file.string();
        result.first_invalid_offset = c.first_invalid;
      }
      result.invalid_utf8 += c.invalid;
      {
        std::lock_guard<std::mutex> lock(mu);
        merged = i + 1;
        cv.notify_all();
      }
      prog.bytes_done += chunks[i].text.size();
      if (progress) progress(prog);
    }
    for (auto& t : pool) t.join();
    result.files += 1;
    result.bytes += data.size();
    result.lines += count_lines(data);
  }
  auto& table = global.table();
  result.words.reserve(table.size());
  for (auto& [w, c] : table) result.words.emplace_back(w, c);
  std::sort(result.words.begin(), result.words.end());
  return result;
}

}  // namespace bert::wordpiece
