// The bad-input catalogue (issue 12 part 5): one table of bad, damaged or merely unusual inputs given
// to the real binaries (bert-vocab, bert-train, bert-eval). Each row states the exit code, fragments
// the message must contain (naming the file, key or line and what to do), and the harness checks that
// nothing saved before the command was lost: every file of the row's directory (vocabulary, corpus,
// checkpoints) is still there with the same bytes afterwards (a checkpoint set aside on a rewind
// counts under its abandoned-step-* name). Disk-full rows use RLIMIT_FSIZE (always) and a real full
// tmpfs (when this machine lets the test mount one; skipped with the reason otherwise).
#include <gtest/gtest.h>

#include "cli_test_util.h"
#include <nlohmann/json.hpp>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace bert {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

using cli_test::Result;
using cli_test::run;
using cli_test::slurp;

void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }
const std::string kTrain = std::string("'") + BERT_TRAIN_BIN + "'";
const std::string kVocab = std::string("'") + BERT_VOCAB_BIN + "'";
const std::string kEval = std::string("'") + BERT_EVAL_BIN + "'";

// Runs `cmd` as an unprivileged user where the test runs as root (root ignores file permissions),
// so read-only directories are read-only to it.
std::string unprivileged(const std::string& cmd) {
  return ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c " + std::string("\"") + cmd + "\""
                          : cmd;
}

// Rewrites one file of a checkpoint and its manifest entry, so the checkpoint stays "complete" and the
// row reaches the check it is about.
void rewrite_in_checkpoint(const fs::path& ckpt, const std::string& name, const std::string& bytes) {
  put(ckpt / name, bytes);
  json m = json::parse(slurp(ckpt / "manifest.json"));
  m["files"][name] = {{"size", bytes.size()},
                      {"crc32", static_cast<uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(bytes.data()),
                                                              static_cast<uInt>(bytes.size())))}};
  put(ckpt / "manifest.json", m.dump(2));
}

// A safetensors file with its JSON header edited by `edit` (the data section kept).
std::string edit_safetensors(const std::string& bytes, const std::function<void(json&)>& edit) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  json header = json::parse(bytes.substr(8, n));
  edit(header);
  std::string h = header.dump();
  uint64_t m = h.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &m, 8);
  return out + h + bytes.substr(8 + n);
}

// Sets element `index` of the float32 tensor `name` in the safetensors file `file` to `value`.
void set_float(const fs::path& file, const std::string& name, uint64_t index, float value) {
  std::string bytes = slurp(file);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const uint64_t begin = json::parse(bytes.substr(8, n))[name]["data_offsets"][0].get<uint64_t>();
  std::memcpy(bytes.data() + 8 + n + begin + 4 * index, &value, 4);
  put(file, bytes);
}

// Files whose bytes a row may change without losing anything: logs, metrics and their TensorBoard
// view (cut back with metrics.jsonl when a run falls back to an earlier checkpoint), locks, the
// resolved config a start rewrites, the token cache (rebuilt when damaged).
bool volatile_file(const fs::path& rel) {
  const std::string s = rel.generic_string(), name = rel.filename().string();
  return name == "train.log" || name == "metrics.jsonl" || name == ".lock" || name == "run_config.json" ||
         s.find("cache/") != std::string::npos || s.find("tensorboard/") != std::string::npos || name == "out.txt";
}

std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file()) continue;
    const fs::path rel = fs::relative(it->path(), dir);
    if (!volatile_file(rel)) files[rel.generic_string()] = slurp(it->path());
  }
  return files;
}

class BadInputCatalogue : public ::testing::Test {
 public:  // (the rows' lambdas use the fixture's helpers)
  static fs::path root_, fixture_;

  // Once: a corpus slice, a vocabulary and a run with checkpoints at steps 2 and 4.
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("bert_catalogue_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fixture_ = root_ / "fixture";
    fs::create_directories(fixture_);
    const fs::path corpus = fs::path(BERT_SOURCE_DIR) / "data/corpus/train.txt";
    if (!fs::exists(corpus)) {
      ASSERT_EQ(run("python3 " BERT_SOURCE_DIR "/scripts/make_corpus.py " BERT_SOURCE_DIR "/data/corpus").code, 0);
    }
    ASSERT_EQ(run("head -n 1500 " + q(corpus) + " > " + q(fixture_ / "train.txt")).code, 0);
    ASSERT_EQ(run("sed -n 1501,1700p " + q(corpus) + " > " + q(fixture_ / "valid.txt")).code, 0);
    Result v = run(kVocab + " build --input " + q(fixture_ / "train.txt") + " --output " + q(fixture_ / "vocab") +
                   " --vocab-size 600");
    ASSERT_EQ(v.code, 0) << v.output;
    Result t = run(kTrain + " --config " + q(config(fixture_, {{"training", {{"max_steps", 4}}}})));
    ASSERT_EQ(t.code, 0) << t.output;
    ASSERT_TRUE(fs::exists(fixture_ / "run/step-0000004/manifest.json"));
  }
  static void TearDownTestSuite() {
    run("chmod -R u+w " + q(root_));
    fs::remove_all(root_);
  }

  // A tiny-model config in `d` (paths inside d), with `patch` merged in; returns its path.
  static fs::path config(const fs::path& d, const json& patch = json::object(), const std::string& name = "cfg.json") {
    json j = {
        {"model", {{"hidden_size", 32}, {"num_layers", 1}, {"num_heads", 2}, {"intermediate_size", 64},
                   {"max_position_embeddings", 64}}},
        {"data", {{"train_files", {(d / "train.txt").string()}}, {"valid_files", {(d / "valid.txt").string()}},
                  {"vocab_dir", (d / "vocab").string()}, {"max_seq_len", 64}}},
        {"training", {{"batch_size", 4}, {"max_steps", 6}, {"lr", 1e-3}, {"warmup_steps", 1}, {"precision", "fp32"}}},
        {"checkpoint", {{"dir", (d / "run").string()}, {"every", 2}, {"keep_last", 0}}},
        {"runtime", {{"device", "cpu"}, {"threads", 1}, {"log_every", 1}, {"eval_every", 0}}},
    };
    if (patch.is_object()) j.merge_patch(patch);
    const fs::path p = d / name;
    put(p, j.dump(2));
    return p;
  }

  // A fresh copy of the fixture for one row.
  static fs::path case_dir(const std::string& name) {
    const fs::path d = root_ / name;
    fs::remove_all(d);
    fs::copy(fixture_, d, fs::copy_options::recursive);
    return d;
  }

  // A Hugging Face style model dir (no manifest or trainer state) from the fixture's step 4.
  static fs::path hf_dir(const fs::path& d) {
    const fs::path hf = d / "hf";
    fs::create_directories(hf);
    for (const char* f : {"model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json"}) {
      fs::copy_file(d / "run/step-0000004" / f, hf / f);
    }
    return hf;
  }
};
fs::path BadInputCatalogue::root_, BadInputCatalogue::fixture_;

struct Row {
  std::string name;
  std::function<std::string(const fs::path& d)> prepare;  // writes what the row needs; returns the command
  int code;
  std::vector<std::string> fragments;
};

using B = BadInputCatalogue;

std::vector<Row> catalogue() {
  std::vector<Row> rows;
  auto add = [&](std::string name, std::function<std::string(const fs::path&)> prepare, int code,
                 std::vector<std::string> fragments) {
    rows.push_back({std::move(name), std::move(prepare), code, std::move(fragments)});
  };
  auto train = [](const fs::path& d, const json& patch = json::object(), const std::string& extra = "") {
    return kTrain + " --config " + q(B::config(d, patch)) + " " + extra;
  };
  auto encode = [](const fs::path& vocab_dir) {
    return "echo 'The dog' | " + kVocab + " encode --vocab " + q(vocab_dir);
  };

  // ---- bert-vocab ----
  add("vocab build: corpus file missing", [](const fs::path& d) {
    return kVocab + " build --input " + q(d / "nope.txt") + " --output " + q(d / "vocab") + " --vocab-size 300";
  }, 1, {"nope.txt"});
  add("vocab build: corpus is a directory", [](const fs::path& d) {
    return kVocab + " build --input " + q(d / "run") + " --output " + q(d / "v2") + " --vocab-size 300";
  }, 1, {"run", "directory"});
  add("vocab build: vocab size is not a number", [](const fs::path& d) {
    return kVocab + " build --input " + q(d / "train.txt") + " --output " + q(d / "v2") + " --vocab-size many";
  }, 2, {"--vocab-size"});
  add("vocab build: empty corpus", [](const fs::path& d) {
    put(d / "empty.txt", "");
    return kVocab + " build --input " + q(d / "empty.txt") + " --output " + q(d / "vocab") + " --vocab-size 300";
  }, 1, {"empty.txt"});
  add("vocab build: corpus of blank lines (empty after filtering)", [](const fs::path& d) {
    put(d / "blank.txt", "\n  \n\t\n\n");
    return kVocab + " build --input " + q(d / "blank.txt") + " --output " + q(d / "vocab") + " --vocab-size 300";
  }, 1, {"no words found in", "blank.txt"});
  add("vocab build: output path under a regular file", [](const fs::path& d) {
    return kVocab + " build --input " + q(d / "train.txt") + " --output " + q(d / "train.txt/v") + " --vocab-size 300";
  }, 1, {"train.txt/v"});
  add("vocab build: output dir not writable", [](const fs::path& d) {
    fs::create_directories(d / "ro");
    fs::permissions(d / "ro", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                  fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    fs::permissions(d, fs::perms::all);
    fs::permissions(d / "train.txt", fs::perms::all);
    return unprivileged(kVocab + " build --input " + q(d / "train.txt") + " --output " + q(d / "ro/v") +
                        " --vocab-size 300");
  }, 1, {"ro/v"});
  add("vocab encode: vocab dir missing", [encode](const fs::path& d) { return encode(d / "nowhere"); }, 1,
      {"nowhere/vocab.txt does not exist", "bert-vocab build"});
  add("vocab encode: vocab.txt with CRLF line ends (accepted)", [encode](const fs::path& d) {
    std::string v = slurp(d / "vocab/vocab.txt"), crlf;
    for (char c : v) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    put(d / "crlf/vocab.txt", crlf);
    fs::copy_file(d / "vocab/tokenizer_config.json", d / "crlf/tokenizer_config.json");
    return encode(d / "crlf") + " && " + encode(d / "vocab");
  }, 0, {"the do ##g\nthe do ##g\n"});
  add("vocab encode: vocab.txt with a UTF-8 byte order mark (accepted, warned)", [encode](const fs::path& d) {
    put(d / "bom/vocab.txt", "\xEF\xBB\xBF" + slurp(d / "vocab/vocab.txt"));
    fs::copy_file(d / "vocab/tokenizer_config.json", d / "bom/tokenizer_config.json");
    return encode(d / "bom");
  }, 0, {"byte order mark; ignored (the first token is \"[PAD]\")", "the do ##g"});
  add("vocab encode: duplicate token", [encode](const fs::path& d) {
    put(d / "dup/vocab.txt", "[UNK]\nthe\ndog\nthe\n");
    return encode(d / "dup");
  }, 1, {"vocab.txt:4: duplicate token \"the\" (first on line 2)"});
  add("vocab encode: no [UNK]", [encode](const fs::path& d) {
    put(d / "nounk/vocab.txt", "[PAD]\nthe\ndog\n");
    return encode(d / "nounk");
  }, 1, {"vocab.txt", "[UNK]", "is missing"});
  add("vocab encode: empty vocab.txt", [encode](const fs::path& d) {
    put(d / "novocab/vocab.txt", "");
    return encode(d / "novocab");
  }, 1, {"vocab.txt", "empty"});
  add("vocab encode: tokenizer_config.json is not JSON", [encode](const fs::path& d) {
    put(d / "badcfg/vocab.txt", slurp(d / "vocab/vocab.txt"));
    put(d / "badcfg/tokenizer_config.json", "{\n  \"do_lower_case\": true,\n  oops\n}\n");
    return encode(d / "badcfg");
  }, 1, {"tokenizer_config.json:3:"});
  add("vocab encode: do_lower_case is not a boolean", [encode](const fs::path& d) {
    put(d / "badcfg/vocab.txt", slurp(d / "vocab/vocab.txt"));
    put(d / "badcfg/tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
    return encode(d / "badcfg");
  }, 1, {"tokenizer_config.json", "do_lower_case"});
  add("vocab stats: input file missing", [](const fs::path& d) {
    return kVocab + " stats --vocab " + q(d / "vocab") + " --input " + q(d / "nope.txt");
  }, 1, {"nope.txt"});
  add("vocab: unknown subcommand", [](const fs::path&) { return kVocab + " frobnicate"; }, 2, {"subcommand", "--help"});

  // ---- bert-train: the config ----
  add("train: config file missing", [](const fs::path& d) { return kTrain + " --config " + q(d / "none.json"); }, 2,
      {"none.json"});
  add("train: config is not JSON (line and column)", [](const fs::path& d) {
    put(d / "bad.json", "{\n  \"training\": {\n    \"lr\": 1e-3,,\n  }\n}\n");
    return kTrain + " --config " + q(d / "bad.json");
  }, 2, {"bad.json:3:"});
  add("train: config is a JSON array", [](const fs::path& d) {
    put(d / "arr.json", "[1, 2]");
    return kTrain + " --config " + q(d / "arr.json");
  }, 2, {"arr.json"});
  add("train: unknown key", [train](const fs::path& d) { return train(d, {{"training", {{"lrate", 0.1}}}}); }, 2,
      {"training.lrate"});
  add("train: wrong type", [train](const fs::path& d) { return train(d, {{"training", {{"lr", "fast"}}}}); }, 2,
      {"training.lr"});
  add("train: batch size 0", [train](const fs::path& d) { return train(d, {{"training", {{"batch_size", 0}}}}); }, 2,
      {"training.batch_size"});
  add("train: unknown precision", [train](const fs::path& d) {
    return train(d, {{"training", {{"precision", "fp8"}}}});
  }, 2, {"training.precision", "fp8"});
  add("train: max_seq_len above max_position_embeddings", [train](const fs::path& d) {
    return train(d, {{"data", {{"max_seq_len", 128}}}});
  }, 2, {"max_seq_len", "max_position_embeddings"});
  add("train: hidden size not divisible by heads", [train](const fs::path& d) {
    return train(d, {{"model", {{"hidden_size", 30}, {"num_heads", 4}}}});
  }, 2, {"hidden_size", "num_heads"});
  add("train: checkpoint.every 0", [train](const fs::path& d) { return train(d, {{"checkpoint", {{"every", 0}}}}); },
      2, {"checkpoint.every"});
  add("train: negative threads", [train](const fs::path& d) { return train(d, {{"runtime", {{"threads", -2}}}}); }, 2,
      {"runtime.threads"});
  add("train: --set without a value", [train](const fs::path& d) { return train(d, {}, "--set training.lr"); }, 2,
      {"--set", "training.lr"});
  add("train: --set of an unknown key", [train](const fs::path& d) { return train(d, {}, "--set training.nope=1"); },
      2, {"training.nope"});
  add("train: no train files", [train](const fs::path& d) {
    return train(d, {{"data", {{"train_files", json::array()}}}});
  }, 2, {"data.train_files"});
  add("train: --device cuda without a GPU", [train](const fs::path& d) {
    return "CUDA_VISIBLE_DEVICES= " + train(d, {}, "--device cuda");
  }, 2, {"cuda"});

  // ---- bert-train: the data ----
  add("train: train file missing", [train](const fs::path& d) {
    return train(d, {{"data", {{"train_files", {(d / "missing.txt").string()}}}}});
  }, 2, {"data.train_files", "missing.txt", "does not exist"});
  add("train: train file empty", [train](const fs::path& d) {
    put(d / "empty.txt", "");
    return train(d, {{"data", {{"train_files", {(d / "empty.txt").string()}}}}});
  }, 1, {"empty.txt"});
  add("train: train file of blank lines (empty after filtering)", [train](const fs::path& d) {
    put(d / "blank.txt", "\n \n\t\n");
    return train(d, {{"data", {{"train_files", {(d / "blank.txt").string()}}}}});
  }, 1, {"blank.txt"});
  add("train: truncated gzip corpus", [train](const fs::path& d) {
    run("gzip -c " + q(d / "train.txt") + " | head -c 3000 > " + q(d / "c.txt.gz"));
    return train(d, {{"data", {{"train_files", {(d / "c.txt.gz").string()}}}}});
  }, 1, {"c.txt.gz"});
  add("train: bad JSONL line with on_bad_line error", [train](const fs::path& d) {
    put(d / "c.jsonl", "{\"text\": \"In the beginning.\"}\n{\"text\": oops}\n");
    return train(d, {{"data", {{"train_files", {(d / "c.jsonl").string()}}, {"on_bad_line", "fail"}}}, {"checkpoint", {{"dir", (d / "run2").string()}}}});
  }, 1, {"c.jsonl:2"});
  add("train: validation file missing", [train](const fs::path& d) {
    return train(d, {{"data", {{"valid_files", {(d / "nope-valid.txt").string()}}}}});
  }, 2, {"data.valid_files", "nope-valid.txt"});
  add("train: vocab dir missing", [train](const fs::path& d) {
    return train(d, {{"data", {{"vocab_dir", (d / "novocab").string()}}}});
  }, 2, {"data.vocab_dir", "novocab"});
  add("train: vocabulary without [PAD] and [MASK]", [train](const fs::path& d) {
    put(d / "google/vocab.txt", "[UNK]\n[CLS]\n[SEP]\nwant\n##want\n##ed\nwa\nun\nrunn\n##ing\n,\n");
    return train(d, {{"data", {{"vocab_dir", (d / "google").string()}}}});
  }, 1, {"bert-train needs the special tokens", "lacks [PAD], [MASK]"});
  add("train: a corpus that is one 200 MB line (accepted)", [train](const fs::path& d) {
    {
      std::ofstream out(d / "one-line.txt", std::ios::binary);
      const std::string words = "in the beginning god created the heaven and the earth ";
      for (size_t n = 0; n < (200u << 20); n += words.size()) out << words;
      out << "\n";
    }
    return train(d, {{"data", {{"train_files", {(d / "one-line.txt").string()}}}},
                     {"training", {{"max_steps", 5}}}, {"checkpoint", {{"dir", (d / "run2").string()}}}});
  }, 0, {"200 MiB", "step 5/5"});
  add("train: resume with other training data", [train](const fs::path& d) {
    put(d / "other.txt", slurp(d / "valid.txt"));
    return train(d, {{"data", {{"train_files", {(d / "other.txt").string()}}}}});
  }, 1, {"step-0000004/trainer_state.json: cannot resume", "another dataset", "--resume never"});

  // ---- bert-train: checkpoints and the run dir ----
  add("train: the latest checkpoint is truncated (falls back to the previous)", [train](const fs::path& d) {
    fs::resize_file(d / "run/step-0000004/model.safetensors", 100);
    return train(d);
  }, 0, {"skipping checkpoint", "step-0000004", "truncated", "resumed from", "step-0000002"});
  add("train: a checkpoint from a newer format version", [train](const fs::path& d) {
    json s = json::parse(slurp(d / "run/step-0000004/trainer_state.json"));
    s["format_version"] = 2;
    rewrite_in_checkpoint(d / "run/step-0000004", "trainer_state.json", s.dump(2));
    return train(d);
  }, 1, {"trainer_state.json", "newer bert-train", "update bert-train"});
  add("train: --resume names a dir that is not a checkpoint", [train](const fs::path& d) {
    return train(d, {}, "--resume " + q(d / "vocab"));
  }, 1, {"cannot resume from", "vocab: it holds no valid checkpoint"});
  add("train: init_from whose weights do not match its config.json shape", [train](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    json c = json::parse(slurp(hf / "config.json"));
    c["hidden_size"] = 64;
    c["intermediate_size"] = 128;
    put(hf / "config.json", c.dump(2));
    return train(d, {{"training", {{"init_from", hf.string()}}}, {"checkpoint", {{"dir", (d / "run2").string()}}}});
  }, 1, {"model.safetensors", "shape"});
  add("train: init_from a model of another vocabulary", [train](const fs::path& d) {
    run(kVocab + " build --input " + q(d / "train.txt") + " --output " + q(d / "vocab400") + " --vocab-size 400");
    return train(d, {{"training", {{"init_from", (d / "run/step-0000004").string()}}},
                     {"data", {{"vocab_dir", (d / "vocab400").string()}}},
                     {"checkpoint", {{"dir", (d / "run2").string()}}}});
  }, 2, {"vocab_size 600", "400"});
  add("train: init_from weights holding NaN", [train](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    set_float(hf / "model.safetensors", "bert.embeddings.LayerNorm.weight", 0, std::numeric_limits<float>::infinity());
    return train(d, {{"training", {{"init_from", hf.string()}}}, {"checkpoint", {{"dir", (d / "run2").string()}}}});
  }, 1, {"hf/model.safetensors", "bert.embeddings.LayerNorm.weight", "1 of its 32 values are NaN or Inf"});
  add("train: init_from dir missing", [train](const fs::path& d) {
    return train(d, {{"training", {{"init_from", (d / "nomodel").string()}}}, {"checkpoint", {{"dir", (d / "run2").string()}}}});
  }, 2, {"training.init_from", "nomodel"});
  add("train: checkpoint.dir under a regular file", [train](const fs::path& d) {
    return train(d, {{"checkpoint", {{"dir", (d / "train.txt/run").string()}}}});
  }, 1, {"train.txt/run"});
  add("train: read-only run dir on resume", [train](const fs::path& d) {
    const std::string cmd = train(d);
    run("chmod -R a+rX " + q(d) + " && chmod -R a-w " + q(d / "run"));
    return unprivileged(cmd);
  }, 1, {"run is not writable", "checkpoint.dir"});
  add("train: disk full while building token shards (RLIMIT_FSIZE)", [train](const fs::path& d) {
    return "trap '' XFSZ; ulimit -f 16; " + train(d, {{"checkpoint", {{"dir", (d / "fresh").string()}}}});
  }, 1, {"cache", "File too large"});
  add("train: disk full while checkpointing (RLIMIT_FSIZE)", [train](const fs::path& d) {
    // The fixture's own corpus and token cache (built), so only the checkpoint write hits the limit.
    return "trap '' XFSZ; ulimit -f 100; " +
           train(d, {{"data", {{"train_files", {(B::fixture_ / "train.txt").string()}},
                               {"valid_files", {(B::fixture_ / "valid.txt").string()}},
                               {"cache_dir", (B::fixture_ / "run/cache").string()}}}});
  }, 1, {"step-0000006", "File too large"});

  // ---- bert-eval ----
  auto eval = [](const fs::path& ckpt, const fs::path& d) {
    return kEval + " --checkpoint " + q(ckpt) + " --data " + q(d / "valid.txt") + " --max-batches 1 --max-seq-len 64";
  };
  add("eval: checkpoint path missing", [eval](const fs::path& d) { return eval(d / "nope", d); }, 1, {"nope"});
  add("eval: 0-byte model.safetensors in a checkpoint", [eval](const fs::path& d) {
    fs::resize_file(d / "run/step-0000004/model.safetensors", 0);
    return eval(d / "run/step-0000004", d);
  }, 1, {"model.safetensors has 0 bytes"});
  add("eval: 0-byte model.safetensors in a Hugging Face dir", [eval](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    fs::resize_file(hf / "model.safetensors", 0);
    return eval(hf, d);
  }, 1, {"hf/model.safetensors", "0 bytes, shorter than the 8-byte header"});
  add("eval: NaN in the weights", [eval](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    set_float(hf / "model.safetensors", "bert.encoder.layer.0.output.dense.weight", 7,
              std::numeric_limits<float>::quiet_NaN());
    return eval(hf, d);
  }, 1, {"model.safetensors", "bert.encoder.layer.0.output.dense.weight", "NaN"});
  add("eval: safetensors offsets past the end of the file", [eval](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    put(hf / "model.safetensors", edit_safetensors(slurp(hf / "model.safetensors"), [](json& h) {
      h["bert.pooler.dense.bias"]["data_offsets"][1] = 1ull << 40;
    }));
    return eval(hf, d);
  }, 1, {"model.safetensors", "bert.pooler.dense.bias"});
  add("eval: a tensor missing from model.safetensors", [eval](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    put(hf / "model.safetensors", edit_safetensors(slurp(hf / "model.safetensors"), [](json& h) {
      h["renamed.LayerNorm.weight"] = h["bert.embeddings.LayerNorm.weight"];
      h.erase("bert.embeddings.LayerNorm.weight");
    }));
    return eval(hf, d);
  }, 1, {"the weights do not match the model: missing bert.embeddings.LayerNorm.weight", "unexpected renamed"});
  add("eval: config.json vocab_size differs from vocab.txt", [eval](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    json c = json::parse(slurp(hf / "config.json"));
    c["vocab_size"] = 601;
    put(hf / "config.json", c.dump(2));
    return eval(hf, d);
  }, 1, {"config.json", "vocab_size 601", "600"});
  add("eval: config.json is not JSON", [eval](const fs::path& d) {
    const fs::path hf = B::hf_dir(d);
    put(hf / "config.json", "{\"hidden_size\": 32,\n\"num_attention_heads\": }");
    return eval(hf, d);
  }, 1, {"config.json:2:"});
  add("eval: a checkpoint from a newer format version", [eval](const fs::path& d) {
    json s = json::parse(slurp(d / "run/step-0000004/trainer_state.json"));
    s["format_version"] = 7;
    rewrite_in_checkpoint(d / "run/step-0000004", "trainer_state.json", s.dump(2));
    return eval(d / "run/step-0000004", d);
  }, 1, {"newer bert-train"});
  add("eval: run dir with no valid checkpoint", [eval](const fs::path& d) {
    for (const char* s : {"step-0000002", "step-0000004"}) fs::resize_file(d / "run" / s / "optimizer.safetensors", 1);
    return eval(d / "run", d);
  }, 1, {"run", "no valid checkpoint"});
  add("eval: data file missing", [](const fs::path& d) {
    return kEval + " --checkpoint " + q(d / "run") + " --data " + q(d / "nope.txt");
  }, 1, {"nope.txt"});
  add("eval: data file empty", [](const fs::path& d) {
    put(d / "empty.txt", "");
    return kEval + " --checkpoint " + q(d / "run") + " --data " + q(d / "empty.txt");
  }, 1, {"empty.txt"});
  add("eval: batch size 0", [](const fs::path& d) {
    return kEval + " --checkpoint " + q(d / "run") + " --data " + q(d / "valid.txt") + " --batch-size 0";
  }, 2, {"--batch-size"});
  add("eval: fill-mask text without [MASK]", [](const fs::path& d) {
    return kEval + " fill-mask --checkpoint " + q(d / "run") + " 'no mask here'";
  }, 2, {"[MASK]"});
  add("eval: unknown flag", [](const fs::path& d) { return kEval + " --frobnicate"; }, 2, {"frobnicate"});
  return rows;
}

// Every file of `before` is in `after` with the same bytes, or (a set-aside checkpoint) under its
// abandoned-step-* name; `allow_latest` lets a successful row move the latest pointer.
void expect_nothing_lost(const std::map<std::string, std::string>& before,
                         const std::map<std::string, std::string>& after, bool allow_latest) {
  for (const auto& [path, bytes] : before) {
    if (allow_latest && fs::path(path).filename() == "latest") continue;
    auto it = after.find(path);
    if (it == after.end() || it->second != bytes) {  // a rewind set it aside (and may have re-created the step)
      const size_t at = path.find("step-");
      if (at != std::string::npos && after.count(path.substr(0, at) + "abandoned-" + path.substr(at))) {
        it = after.find(path.substr(0, at) + "abandoned-" + path.substr(at));
      }
    }
    if (it == after.end()) {
      ADD_FAILURE() << path << " was lost";
    } else if (it->second != bytes) {
      ADD_FAILURE() << path << " was changed";
    }
  }
}

TEST_F(BadInputCatalogue, EveryRowExitsWithItsCodeNamesTheProblemAndLosesNothing) {
  const std::vector<Row> rows = catalogue();
  EXPECT_GE(rows.size(), 40u);
  int i = 0;
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const fs::path d = case_dir("row" + std::to_string(++i));
    const std::string cmd = row.prepare(d);
    const auto before = snapshot(d);
    const Result r = run(cmd);
    run("chmod -R u+w " + q(d));
    EXPECT_EQ(r.code, row.code) << r.output;
    for (const auto& f : row.fragments) EXPECT_NE(r.output.find(f), std::string::npos) << "no \"" << f << "\" in:\n" << r.output;
    if (row.code != 0) {
      EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
      EXPECT_EQ(r.output.find("[json.exception"), std::string::npos) << r.output;  // a raw library message
    }
    expect_nothing_lost(before, snapshot(d), row.code == 0);
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      const std::string name = e.path().filename().string();
      EXPECT_EQ(name.find(".tmp-"), std::string::npos) << "left behind: " << e.path();
    }
    fs::remove_all(d);
  }
}

// A real full disk: a small tmpfs (when this machine lets the test mount one) holds the run dir,
// with room for one checkpoint and not two, and then the token cache.
TEST_F(BadInputCatalogue, RealDiskFullOnATmpfs) {
  const fs::path d = case_dir("tmpfs");
  const fs::path mnt = d / "mnt";
  fs::create_directories(mnt);
  uintmax_t ckpt = 0;
  for (const auto& e : fs::directory_iterator(fixture_ / "run/step-0000004")) ckpt += fs::file_size(e.path());
  const std::string size = "size=" + std::to_string((ckpt * 3 / 2 + (64 << 10)) / 1024) + "k";
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, size.c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "): only the RLIMIT_FSIZE rows of the catalogue ran";
  }
  // Checkpointing: step 1 fits, step 2 does not; step 1 stays the latest and intact.
  const fs::path cfg = config(d, {{"data", {{"train_files", {(fixture_ / "train.txt").string()}},
                                            {"valid_files", {(fixture_ / "valid.txt").string()}},
                                            {"cache_dir", (fixture_ / "run/cache").string()}}},
                                  {"checkpoint", {{"dir", (mnt / "run").string()}, {"every", 1}}},
                                  {"training", {{"max_steps", 4}}}});
  Result r = run(kTrain + " --config " + q(cfg));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_EQ(slurp(mnt / "run/latest"), "step-0000001\n");
  EXPECT_TRUE(fs::exists(mnt / "run/step-0000001/manifest.json"));
  for (const auto& e : fs::directory_iterator(mnt / "run")) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  // Token cache on the full disk: a clear error naming the cache.
  const fs::path cfg2 = config(d, {{"data", {{"cache_dir", (mnt / "cache").string()}}},
                                   {"checkpoint", {{"dir", (d / "run3").string()}}}}, "cfg2.json");
  run("head -c $((4 << 20)) /dev/zero > " + q(mnt / "filler") + " 2>/dev/null");
  r = run(kTrain + " --config " + q(cfg2));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((mnt / "cache").string()), std::string::npos) << r.output;
  ::umount(mnt.c_str());
  fs::remove_all(d);
}

}  // namespace
}  // namespace bert
