// bert-vocab: build a WordPiece vocabulary from text, encode text with one, or measure one.
// Thin main: flags -> TrainerOptions / Tokenizer calls in bert::wordpiece; errors -> exit codes.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/log.h"
#include "wordpiece/stats.h"
#include "wordpiece/text_input.h"
#include "wordpiece/trainer.h"

namespace fs = std::filesystem;
using namespace bert;

namespace {

// Redraws one progress line on a terminal; logs at 25% steps otherwise.
void show_progress(const wordpiece::TrainProgress& p) {
  static int last = -1;
  const int pct = p.total ? static_cast<int>(100 * p.done / p.total) : 100;
  const int key = pct + 1000 * p.phase;
  const bool tty = util::stderr_is_tty();
  if (key == last || (!tty && pct % 25 != 0)) return;
  last = key;
  const bool counting = p.phase == wordpiece::TrainProgress::kCounting;
  char line[160];
  std::snprintf(line, sizeof line, "%s: %3d%% (%llu / %llu %s)", counting ? "counting words" : "merging", pct,
                (unsigned long long)p.done, (unsigned long long)p.total, counting ? "bytes" : "tokens");
  if (tty) std::fprintf(stderr, "\r%-70s%s", line, pct == 100 ? "\n" : "");
  else util::log_info(line);
}

void print_stats(const char* title, const wordpiece::EncodeStats& s) {
  std::printf("%s: %llu lines, %llu words, %.4f tokens/word, [UNK] %.4f%%, ## pieces %.2f%%, %.1f MB/s, %.0f tokens/s\n",
              title, static_cast<unsigned long long>(s.lines), static_cast<unsigned long long>(s.words),
              s.tokens_per_word(), 100 * s.unk_rate(), 100 * s.continuation_share(), s.mb_per_second(),
              s.tokens_per_second());
}

void build(const std::vector<fs::path>& inputs, const fs::path& output, const wordpiece::TrainerOptions& opt,
           const std::string& heldout) {
  wordpiece::TrainReport r;
  util::AtomicDir dir(output);  // removed again if anything below throws
  auto vocab = std::make_shared<wordpiece::Vocab>(wordpiece::train_vocab(inputs, opt, &r, show_progress));
  vocab->save(dir.tmp_path());
  dir.commit();
  const auto& c = r.counts;
  if (c.invalid_utf8 > 0) {
    util::log_warn(c.first_invalid_file + ": " + std::to_string(c.invalid_utf8) + " invalid UTF-8 sequences were "
                   "replaced and dropped (first at byte offset " + std::to_string(c.first_invalid_offset) +
                   "); convert the file to UTF-8 (iconv -f <encoding> -t UTF-8) if that is unexpected");
  }
  if (c.nul_bytes > 0) util::log_warn(std::to_string(c.nul_bytes) + " NUL bytes in the input were dropped");
  if (c.prune_threshold > 0) {
    util::log_warn(std::to_string(c.pruned_distinct) + " rare distinct words (count < " + std::to_string(c.prune_threshold) +
                   ") were pruned to stay within --memory-mb " + std::to_string(opt.memory_mb) + "; raise it to keep them");
  }
  if (!r.stop_reason.empty()) util::log_warn("stopped at " + std::to_string(vocab->size()) + " tokens: " + r.stop_reason);
  std::printf("read %llu files, %llu lines, %llu words (%llu distinct kept, %llu longer than %d chars skipped)\n",
              (unsigned long long)c.files, (unsigned long long)c.lines, (unsigned long long)c.total_words,
              (unsigned long long)r.distinct_words, (unsigned long long)c.too_long_words,
              opt.max_input_chars_per_word);
  std::printf("alphabet %zu chars (%zu dropped by --limit-alphabet), %zu merges, vocab %d tokens -> %s\n",
              r.alphabet_size, r.alphabet_dropped, r.merges, vocab->size(), output.string().c_str());
  std::printf("time: counting %.2f s, merging %.2f s\n", r.count_seconds, r.merge_seconds);
  wordpiece::Tokenizer tok(vocab);
  if (!heldout.empty()) print_stats("held-out", wordpiece::measure(tok, {heldout}, opt.threads));
  else print_stats("training sample (first 1 MB; pass --heldout for held-out text)",
                   wordpiece::measure(tok, inputs, opt.threads, 1 << 20));
}

void encode(const fs::path& vocab_dir, const std::string& input, bool ids, int threads) {
  const wordpiece::Tokenizer tok(std::make_shared<wordpiece::Vocab>(wordpiece::Vocab::load(vocab_dir)));
  std::ifstream file;
  if (!input.empty()) {
    wordpiece::check_text_file(input);
    file.open(input, std::ios::binary);
  }
  std::istream& in = input.empty() ? std::cin : file;
  std::vector<std::string> lines;
  std::string out;
  auto flush = [&] {
    for (const auto& line_ids : tok.encode_batch(lines, threads)) {
      out.clear();
      for (size_t i = 0; i < line_ids.size(); ++i) {
        if (i) out += ' ';
        out += ids ? std::to_string(line_ids[i]) : tok.vocab().token(line_ids[i]);
      }
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    lines.clear();
  };
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() == 4096) flush();
  }
  flush();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bert-vocab: build, apply and measure WordPiece vocabularies (vocab.txt + tokenizer_config.json,\n"
               "loadable by Hugging Face BertTokenizerFast). Example:\n"
               "  bert-vocab build --input corpus/train.txt --output vocab --vocab-size 30522 --heldout corpus/valid.txt\n"
               "  echo 'Żółć and ümlauts' | bert-vocab encode --vocab vocab"};
  app.set_version_flag("--version", std::string("bert-vocab ") + BERT_VERSION);
  app.require_subcommand(1);
  wordpiece::TrainerOptions opt;
  std::vector<fs::path> inputs;
  fs::path output, vocab_dir;
  std::string mode = "uncased", algorithm = "wordpiece", heldout, input;
  bool ids = false;
  auto* b = app.add_subcommand("build", "learn a vocabulary from UTF-8 text files (one sentence/paragraph per line)");
  b->add_option("--input", inputs, "training text files")->required()->expected(1, -1);
  b->add_option("--output", output, "vocabulary directory to write (replaced atomically)")->required();
  b->add_option("--vocab-size", opt.vocab_size, "final size, including specials and alphabet")->required()->check(CLI::Range(1, 1 << 24));
  b->add_option("--algorithm", algorithm, "wordpiece: merge max likelihood gain count(ab)*log(count(ab)*N/(count(a)count(b))); "
                 "wordpiece-ratio: max count(ab)/(count(a)count(b)); bpe: most frequent pair (HF's trainer)")->capture_default_str();
  b->add_option("--mode", mode, "uncased (lowercase+strip accents), cased, lowercase (keep accents)")->capture_default_str();
  b->add_option("--min-frequency", opt.min_frequency, "never merge pairs seen fewer times")->capture_default_str();
  b->add_option("--limit-alphabet", opt.limit_alphabet, "keep the N most frequent characters (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  b->add_option("--unused", opt.unused, "reserve [unused0]..[unusedN-1] after the specials")->capture_default_str()->check(CLI::NonNegativeNumber);
  b->add_option("--threads", opt.threads, "threads for counting (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  b->add_option("--memory-mb", opt.memory_mb, "word-table budget; rare words are pruned beyond it")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  b->add_option("--heldout", heldout, "text to report fertility on (default: first 1 MB of the input)");
  auto* e = app.add_subcommand("encode", "tokenize text: one output line of tokens (or ids) per input line");
  e->add_option("--vocab", vocab_dir, "vocabulary directory (or vocab.txt)")->required();
  e->add_option("--input", input, "text file (default: stdin)");
  e->add_flag("--ids", ids, "print token ids instead of tokens");
  e->add_option("--threads", opt.threads, "encoding threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  auto* s = app.add_subcommand("stats", "tokens per word, [UNK] rate, ## share and speed of a vocabulary on text");
  s->add_option("--vocab", vocab_dir, "vocabulary directory")->required();
  s->add_option("--input", inputs, "text files")->required()->expected(1, -1);
  s->add_option("--threads", opt.threads, "encoding threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    return app.exit(err) == 0 ? 0 : 2;
  }
  util::init_logging(util::LogLevel::kInfo);
  try {
    if (b->parsed()) {
      opt.mode = text::parse_case_mode(mode);
      opt.algorithm = wordpiece::parse_algorithm(algorithm);
      build(inputs, output, opt, heldout);
    } else if (e->parsed()) {
      encode(vocab_dir, input, ids, opt.threads);
    } else {
      const wordpiece::Tokenizer tok(std::make_shared<wordpiece::Vocab>(wordpiece::Vocab::load(vocab_dir)));
      print_stats("stats", wordpiece::measure(tok, inputs, opt.threads));
    }
  } catch (const util::Error& err) {
    util::log_error(err.what());
    return util::exit_code_for(err.kind());
  } catch (const std::exception& err) {
    util::log_error(std::string("unexpected error: ") + err.what());
    return 1;
  }
  return 0;
}
