// Data pipeline benchmark (scripts/bench_data.sh): shard building in MB/s with peak RSS, and loader
// throughput in sequences/s with masking on one thread. Prints one JSON object per run.
//   bench_data build --corpus F --vocab DIR [--threads N]
//   bench_data load  --corpus F --vocab DIR --cache DIR [--seq-len 128] [--batch 32] [--seconds 3]
//                    [--packing full-sentences|nsp-pairs] [--whole-word]
//   bench_data make-vocab --corpus F --out DIR [--size 8000]   (a simple vocab when none is given)
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "data/corpus_reader.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/shard_builder.h"
#include "util/error.h"
#include "wordpiece/tokenizer.h"

namespace fs = std::filesystem;
using namespace bert;

namespace {

double max_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Current anonymous resident memory (heap, stacks): excludes the page cache of memory-mapped shards,
// which the kernel can drop at any time.
double rss_anon_mb() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "RssAnon:") {
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) throw util::usage_error("unexpected argument " + k);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) a[k.substr(2)] = argv[++i];
    else a[k.substr(2)] = "1";
  }
  return a;
}

std::string need(const std::map<std::string, std::string>& a, const std::string& k) {
  auto it = a.find(k);
  if (it == a.end()) throw util::usage_error("missing --" + k);
  return it->second;
}

int make_vocab(const std::map<std::string, std::string>& a) {
  const size_t size = std::stoul(a.count("size") ? a.at("size") : "8000");
  std::unordered_map<std::string, uint64_t> counts;
  data::CorpusReader reader(need(a, "corpus"), "skip");
  std::vector<std::string> doc;
  while (reader.next_document(doc)) {
    for (const auto& s : doc) {
      std::string w;
      for (char c : s + " ") {
        unsigned char u = static_cast<unsigned char>(c);
        if (std::isalnum(u)) {
          w += static_cast<char>(std::tolower(u));
        } else {
          if (!w.empty()) ++counts[w];
          w.clear();
        }
      }
    }
  }
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int c = 33; c < 127; ++c) {
    char ch = static_cast<char>(std::tolower(c));
    if (ch != static_cast<char>(c)) continue;
    tokens.push_back(std::string(1, ch));
    if (std::isalnum(c)) tokens.push_back("##" + std::string(1, ch));
  }
  std::vector<std::pair<uint64_t, std::string>> by_count;
  for (auto& [w, n] : counts) if (w.size() > 1) by_count.emplace_back(n, w);
  std::sort(by_count.rbegin(), by_count.rend());
  for (const auto& [n, w] : by_count) {
    if (tokens.size() >= size) break;
    tokens.push_back(w);
  }
  wordpiece::Vocab vocab(tokens, wordpiece::TokenizerConfig{}, "bench");
  fs::create_directories(need(a, "out"));
  vocab.save(need(a, "out"));
  std::cout << nlohmann::json{{"vocab_size", vocab.size()}}.dump() << "\n";
  return 0;
}

int build(const std::map<std::string, std::string>& a) {
  auto vocab = std::make_shared<const wordpiece::Vocab>(wordpiece::Vocab::load(need(a, "vocab")));
  wordpiece::Tokenizer tokenizer(vocab);
  data::ShardBuildOptions o;
  o.threads = a.count("threads") ? std::stoi(a.at("threads")) : 0;
  const fs::path out = fs::temp_directory_path() / ("bench_data_build_" + std::to_string(::getpid()));
  fs::remove_all(out);
  fs::create_directories(out);
  const fs::path corpus = need(a, "corpus");
  auto t0 = std::chrono::steady_clock::now();
  data::SourceShards s = data::build_shards(corpus, tokenizer, out, o);
  const double secs = seconds_since(t0);
  uint64_t shard_bytes = 0;
  for (const auto& p : s.shards) shard_bytes += fs::file_size(p);
  fs::remove_all(out);
  const double mb = static_cast<double>(s.read.bytes) / 1e6;
  std::cout << nlohmann::json{{"mode", "build"}, {"corpus_mb", mb}, {"seconds", secs},
                              {"mb_per_s", mb / secs}, {"tokens", s.tokens}, {"shards", s.shards.size()},
                              {"shard_mb", static_cast<double>(shard_bytes) / 1e6},
                              {"threads", o.threads}, {"max_rss_mb", max_rss_mb()}}
                   .dump()
            << "\n";
  return 0;
}

int load(const std::map<std::string, std::string>& a) {
  auto vocab = std::make_shared<const wordpiece::Vocab>(wordpiece::Vocab::load(need(a, "vocab")));
  data::DataOptions o;
  o.cache_dir = need(a, "cache");
  o.max_seq_len = a.count("seq-len") ? std::stoi(a.at("seq-len")) : 128;
  o.packing = a.count("packing") ? a.at("packing") : "full-sentences";
  auto dataset = data::prepare_dataset({need(a, "corpus")}, vocab, o, 42);
  data::LoaderOptions lo;
  lo.batch_size = a.count("batch") ? std::stoi(a.at("batch")) : 32;
  lo.prefetch = 0;  // one thread: the number is what a single worker sustains
  data::MaskingOptions mo;
  mo.whole_word = a.count("whole-word") > 0;
  data::Loader loader(dataset, lo, mo);
  const double budget = a.count("seconds") ? std::stod(a.at("seconds")) : 3.0;
  int64_t sequences = 0, tokens = 0, predictions = 0;
  auto t0 = std::chrono::steady_clock::now();
  double secs = 0;
  while ((secs = seconds_since(t0)) < budget) {
    data::HostBatch b = loader.next();
    sequences += b.batch_size;
    tokens += b.num_real_tokens;
    predictions += b.num_predictions;
  }
  std::cout << nlohmann::json{{"mode", "load"}, {"seq_len", o.max_seq_len}, {"packing", o.packing},
                              {"batch", lo.batch_size}, {"whole_word", mo.whole_word},
                              {"sequences_per_s", sequences / secs}, {"tokens_per_s", tokens / secs},
                              {"predicted_share", static_cast<double>(predictions) / static_cast<double>(tokens)},
                              {"stats", dataset->stats().to_json()}, {"max_rss_mb", max_rss_mb()},
                              {"rss_anon_mb", rss_anon_mb()}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) throw util::usage_error("usage: bench_data build|load|make-vocab --corpus FILE ...");
    const std::string mode = argv[1];
    auto a = parse(argc, argv);
    if (mode == "build") return build(a);
    if (mode == "load") return load(a);
    if (mode == "make-vocab") return make_vocab(a);
    throw util::usage_error("unknown mode " + mode);
  } catch (const util::Error& e) {
    std::cerr << "bench_data: " << e.what() << "\n";
    return util::exit_code_for(e.kind());
  }
}
