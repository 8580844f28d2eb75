// Writes the fuzz seeds that must come from the project's real writers: token shards (ShardWriter),
// safetensors files (serialize_safetensors) and gzip corpora. Run once by hand after a format change:
//   build-fuzz/tests/fuzz/make_fuzz_seeds tests/fuzz
// Each file starts with the mode byte its harness reads (see the harness's header comment).
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/shard.h"
#include "fuzz_util.h"
#include "model/safetensors.h"
#include "run/checkpoint_format.h"
#include "util/atomic_file.h"
#include "wordpiece/vocab.h"

namespace fs = std::filesystem;
using namespace bert;

namespace {

void put(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

std::string gzip(const std::string& raw) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A shard written by ShardWriter, read back as bytes, behind the harness's mode byte.
void shard_seed(const fs::path& out, char mode, const wordpiece::Vocab& vocab,
                const std::vector<std::vector<std::vector<int32_t>>>& docs) {
  const fs::path tmp = fs::temp_directory_path() / "bert-fuzz-seed.shard";
  data::ShardWriter w(tmp, vocab);
  for (const auto& d : docs) {
    for (const auto& s : d) w.add_sentence(s);
    w.end_document();
  }
  w.finish();
  put(out, std::string(1, mode) + util::read_file(tmp));
  fs::remove(tmp);
}

std::string bytes_of(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s tests/fuzz\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];

  // Token shards: 16-bit ids with several documents, an empty shard, and 32-bit ids (vocab > 65536).
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; i < 60; ++i) tokens.push_back("w" + std::to_string(i));
  const wordpiece::Vocab small(tokens, wordpiece::TokenizerConfig{}, "seed");
  const std::vector<std::vector<std::vector<int32_t>>> docs = {
      {{5, 6, 7}, {8, 9}}, {{10}}, {{11, 12, 13, 14, 15, 16}, {17, 18}, {19}}};
  shard_seed(root / "shard/u16-three-docs", 0x00, small, docs);
  shard_seed(root / "shard/u16-three-docs-fix-crc", 0x03, small, docs);
  shard_seed(root / "shard/u16-no-verify-fingerprint", 0x0F, small, docs);
  shard_seed(root / "shard/empty", 0x03, small, {});
  for (int i = 60; i < 65600; ++i) tokens.push_back("w" + std::to_string(i));
  const wordpiece::Vocab large(tokens, wordpiece::TokenizerConfig{}, "seed");
  shard_seed(root / "shard/u32-two-docs-fix-crc", 0x03, large, {{{65590, 3, 65599}}, {{70000 % 65600, 1}}});

  // Safetensors: several dtypes and shapes (a scalar, an empty tensor) with metadata; metadata only.
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  const std::string half = "\x00\x3c\x00\x40\x00\x42\x00\x44";  // 4 x F16/BF16
  const std::string ids(8, '\x07');
  const std::string b = bytes_of(w);
  put(root / "safetensors/mixed",
      model::serialize_safetensors({{"bert.embeddings.weight", "F32", {2, 3}, b.data(), b.size()},
                                    {"bert.pooler.bias", "BF16", {4}, half.data(), 8},
                                    {"cls.scale", "F16", {2, 2}, half.data(), 8},
                                    {"step", "I64", {}, ids.data(), 8},
                                    {"empty", "U8", {0, 5}, nullptr, 0}}));
  put(root / "safetensors/metadata-only", model::serialize_safetensors({}, {{"format", "pt"}, {"note", "żółć"}}));
  put(root / "safetensors/one-f32", model::serialize_safetensors({{"w", "F32", {6}, b.data(), b.size()}}, {}));

  // Corpora: real gzip bytes (detected by content, mode 0 = written as they are), text to be
  // compressed by the harness (mode 2), JSONL gzip.
  const std::string polish = "Zażółć gęślą jaźń.\nŁódź leży w Polsce.\n\nDrugi dokument: ćma, żółw, ńa.\n";
  const std::string jsonl = "{\"text\": \"Pierwsze zdanie. Drugie zdanie!\\nTrzecie?\"}\n{\"text\": \"Źdźbło trawy.\"}\n";
  put(root / "corpus_reader/text-gzip", std::string(1, '\x00') + gzip(polish));
  put(root / "corpus_reader/text-compress-here", std::string(1, '\x02') + polish);
  put(root / "corpus_reader/jsonl-gzip-fail", std::string(1, '\x05') + gzip(jsonl));
  put(root / "corpus_reader/truncated-gzip", std::string(1, '\x00') + gzip(polish).substr(0, 30));

  // Checkpoint dirs: manifest.json written by write_manifest over the fixed files plus a
  // trainer_state.json, then the state, then the run's `latest` pointer (checkpoint_format_fuzz).
  const fs::path ckpt = fs::temp_directory_path() / "bert-fuzz-seed-ckpt";
  auto checkpoint_seed = [&](const std::string& name, const std::string& state, const std::string& latest) {
    fs::remove_all(ckpt);
    fuzz::write_checkpoint_fixture(ckpt);
    std::ofstream(ckpt / "trainer_state.json", std::ios::binary) << state;
    run::write_manifest(ckpt);
    std::string bytes = util::read_file(ckpt / "manifest.json") + "\n--trainer_state.json--\n" + state;
    if (!latest.empty()) bytes += "\n--latest--\n" + latest;
    put(root / "checkpoint_format" / name, bytes);
  };
  const std::string state = R"({"format_version": 1, "step": 1, "tokens_seen": 4096, "skipped_steps": 0, )"
                            R"("loader": {"epoch": 0, "cursor": 32}, "config": {"training": {"lr": 0.0005}}})";
  checkpoint_seed("valid", state, "step-0000001\n");
  checkpoint_seed("valid-no-latest", state, "");
  checkpoint_seed("newer-format", R"({"format_version": 2, "step": 7})", "step-0000001");
  checkpoint_seed("negative-step", R"({"format_version": 1, "step": -3, "tokens_seen": 1})", "../step-0000001");
  checkpoint_seed("latest-elsewhere", state, "step-0000009\n");
  fs::remove_all(ckpt);
  return 0;
}
