// Fertility, [UNK] rate and throughput over files, encoded in parallel by line.
#include "wordpiece/stats.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "util/mapped_file.h"
#include "wordpiece/text_input.h"

namespace bert::wordpiece {

EncodeStats measure(const Tokenizer& tokenizer, const std::vector<std::filesystem::path>& files,
                    int threads, uint64_t max_bytes) {
  EncodeStats total;
  const size_t n_threads = threads > 0 ? static_cast<size_t>(threads)
                                       : std::max(1u, std::thread::hardware_concurrency());
  const Vocab& vocab = tokenizer.vocab();
  for (const auto& file : files) {
    check_text_file(file);
    const util::MappedFile mapped(file);
    std::string_view data(reinterpret_cast<const char*>(mapped.data()), mapped.size());
    if (max_bytes > 0) {
      const uint64_t left = max_bytes - total.bytes;
      if (data.size() > left) data = data.substr(0, data.rfind('\n', left) == std::string_view::npos ? left : data.rfind('\n', left) + 1);
    }
    const std::vector<Chunk> chunks = cut_chunks(data, 256 * 1024);
    std::vector<EncodeStats> per(n_threads);
    std::atomic<size_t> next{0};
    auto worker = [&](size_t t) {
      std::vector<int32_t> ids;
      EncodeStats& s = per[t];
      for (size_t i; (i = next.fetch_add(1)) < chunks.size();) {
        std::string_view text = chunks[i].text;
        while (!text.empty()) {
          size_t nl = text.find('\n');
          std::string_view line = text.substr(0, nl);
          text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
          ids.clear();
          tokenizer.encode_ids(line, ids);
          s.tokens += ids.size();
          for (int32_t id : ids) {
            const bool cont = vocab.is_continuation(id);
            s.continuation += cont;
            s.words += !cont;
            s.unk += id == vocab.unk_id();
          }
        }
      }
    };
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (size_t t = 1; t < n_threads; ++t) pool.emplace_back(worker, t);
    worker(0);
    for (auto& th : pool) th.join();
    total.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& s : per) {
      total.tokens += s.tokens;
      total.words += s.words;
      total.unk += s.unk;
      total.continuation += s.continuation;
    }
    total.lines += count_lines(data);
    total.bytes += data.size();
    if (max_bytes > 0 && total.bytes >= max_bytes) break;
  }
  return total;
}

}  // namespace bert::wordpiece
