// Typed options of the data pipeline: the `data` and `masking` sections of a run config. The train
// layer fills them from JSON; this layer only sees the structs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bert::data {

struct DataOptions {
  std::vector<std::filesystem::path> train_files;  // BERT text (.txt[.gz]) or JSONL (.jsonl[.gz])
  std::vector<std::filesystem::path> valid_files;  // same formats; may be empty
  std::filesystem::path vocab_dir;                 // vocab.txt + tokenizer_config.json
  std::filesystem::path cache_dir;                 // token shards; default "<run dir>/cache"
  int max_seq_len = 128;                           // tokens per sequence incl. [CLS]/[SEP]
  std::string packing = "full-sentences";          // "full-sentences" | "nsp-pairs"
  bool cross_documents = true;                     // full-sentences: pack across docs with a [SEP]
  double short_seq_prob = 0.1;                     // nsp-pairs: share of shorter target lengths
  std::string on_stale_cache = "rebuild";          // "rebuild" | "error" when files/vocab changed
  std::string on_bad_line = "skip";                // JSONL line not JSON / no "text": "skip" | "fail"
  int tokenize_threads = 0;                        // 0 = all cores
  bool nsp() const { return packing == "nsp-pairs"; }
};

struct MaskingOptions {
  double mask_prob = 0.15;          // share of maskable tokens chosen for prediction
  double mask_token_prob = 0.8;     // of the chosen: replaced by [MASK]
  double random_token_prob = 0.1;   // of the chosen: replaced by a uniform non-special token
  bool whole_word = false;          // choose all pieces of a word together
  int max_predictions_per_seq = 0;  // cap on chosen tokens per sequence; 0 = no cap
  bool at_least_one = true;         // every sequence gets at least one prediction
};

struct LoaderOptions {
  int batch_size = 32;      // sequences per batch on this rank
  uint64_t seed = 42;       // shuffling, NSP pairing and masking streams derive from it
  int rank = 0;             // this process's rank in data-parallel training
  int world_size = 1;       // number of ranks; each sees a disjoint 1/world_size of every epoch
  int prefetch = 4;         // batches prepared ahead in a background thread (0 = synchronous)
  bool drop_last = true;    // training drops a ragged last batch; evaluation keeps it
};

}  // namespace bert::data
