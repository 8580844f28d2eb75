// Shared fixtures of the eval tests (see eval_fixtures.h).
#include "eval_fixtures.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "train/checkpoint.h"
#include "run/config.h"
#include "util/atomic_file.h"
#include "util/rng.h"

namespace bert::eval::testing {

namespace {

const std::vector<std::string> kWords = {
    "the", "of", "and", "to", "in", "is", "was", "it", "that", "cat", "dog", "house", "tree",
    "river", "city", "green", "small", "old", "new", "runs", "sees", "likes", "makes", "paints",
    "beautiful", "pictures", "nature", "light", "water", "stone", "bird", "sings", "morning",
    "evening", "sun", "moon", "road", "long", "quiet", "ala", "ma", "kota", "natura", "tworzy",
    "obrazy", "piękne", "rzeka", "miasto", "zielone"};

}  // namespace

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("bert_eval_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::shared_ptr<const wordpiece::Vocab> write_vocab(const fs::path& dir) {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (const char* p : {".", ",", "!", "?"}) tokens.push_back(p);
  for (char c = 'a'; c <= 'z'; ++c) tokens.push_back(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) tokens.push_back("##" + std::string(1, c));
  for (const char* s : {"ę", "##ę", "ł", "##ł", "ż", "##ż", "ó", "##ó"}) tokens.push_back(s);
  for (const auto& w : kWords) tokens.push_back(w);
  for (const char* s : {"##s", "##ing", "##ed"}) {
    if (std::find(tokens.begin(), tokens.end(), s) == tokens.end()) tokens.push_back(s);
  }
  wordpiece::TokenizerConfig config;
  config.normalizer.lowercase = true;
  config.normalizer.strip_accents = false;  // keep Polish letters (transformers: strip_accents false)
  wordpiece::Vocab vocab(tokens, config, "test vocab");
  fs::create_directories(dir);
  vocab.save(dir);
  return std::make_shared<const wordpiece::Vocab>(wordpiece::Vocab::load(dir));
}

void write_corpus(const fs::path& file, int documents, uint64_t seed) {
  util::Rng rng(util::derive_seed(seed, "test-corpus"));
  std::ostringstream out;
  for (int d = 0; d < documents; ++d) {
    if (d > 0) out << "\n";
    const int sentences = 3 + static_cast<int>(rng.uniform(5));
    for (int s = 0; s < sentences; ++s) {
      const int words = 4 + static_cast<int>(rng.uniform(9));
      for (int w = 0; w < words; ++w) {
        // Zipf-like: index = floor(n^u) - 1 for u uniform in [0, 1).
        const double u = rng.uniform01();
        size_t i = static_cast<size_t>(std::pow(static_cast<double>(kWords.size()), u)) - 1;
        out << (w ? " " : "") << kWords[std::min(i, kWords.size() - 1)];
      }
      out << ".\n";
    }
  }
  util::write_file_atomic(file, out.str());
}

model::BertConfig tiny_config(int vocab_size) {
  model::BertConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = 37;
  c.max_position_embeddings = 64;
  return c;
}

model::BertForPreTraining perturbed_model(int vocab_size, uint64_t seed) {
  model::BertForPreTraining m(tiny_config(vocab_size), seed);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 1000);
  for (auto& p : m->named_parameters()) {
    torch::Tensor noise = at::normal(0.0, 1.0, p.value().sizes(), gen);
    const std::string& k = p.key();
    if (k.size() >= 16 && k.compare(k.size() - 16, 16, "LayerNorm.weight") == 0) {
      p.value().copy_(1 + 0.2 * noise);
    } else if (k.size() >= 4 && k.compare(k.size() - 4, 4, "bias") == 0) {
      p.value().copy_(0.1 * noise);
    } else {
      p.value().copy_(0.3 * noise);
    }
  }
  m->eval();
  return m;
}

fs::path save_tiny_checkpoint(const fs::path& run_dir, model::BertForPreTraining& model,
                              const wordpiece::Vocab& vocab, int64_t step) {
  run::RunConfig cfg;
  cfg.model = model->config();
  cfg.data.train_files = {"train.txt"};
  cfg.data.vocab_dir = run_dir / "vocab";
  cfg.data.max_seq_len = 32;
  cfg.checkpoint.dir = run_dir;
  cfg.training.seed = 42;
  fs::create_directories(run_dir);
  util::write_file_atomic(run_dir / "run_config.json", run::to_json(cfg).dump(2));
  train::CheckpointContents c;
  c.step = step;
  c.trainer_state = {{"run_config", run::to_json(cfg)}, {"tokens_seen", 0}};
  c.optimizer_state["step"] = torch::zeros({1});
  return train::save_checkpoint(run_dir, model, vocab, c);
}

int run(const std::string& command, std::string* out, std::string* err) {
  static int counter = 0;
  const fs::path base = fs::temp_directory_path() /
                        ("bert_eval_run_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  const std::string full = command + " >" + quote(base.string() + ".out") + " 2>" + quote(base.string() + ".err");
  const int status = std::system(full.c_str());
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string o = slurp(base.string() + ".out"), e = slurp(base.string() + ".err");
  if (out) *out = o;
  if (err) *err = e;
  fs::remove(base.string() + ".out");
  fs::remove(base.string() + ".err");
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string binary(const std::string& name) { return std::string(BERT_BINARY_DIR) + "/src/cli/" + name; }

std::string python() {
  const char* py = std::getenv("BERT_PYTHON");
  if (py == nullptr || *py == '\0') {
    ADD_FAILURE() << "BERT_PYTHON is not set: the transformers oracle is required";
    return "false";
  }
  return py;
}

std::string oracle_script() { return std::string(BERT_SOURCE_DIR) + "/scripts/oracle/hf_bridge_oracle.py"; }

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace bert::eval::testing
