// Batches for training (endless epochs, seeded shuffle, rank sharding, background prefetch, exact
// resumable cursor) and for evaluation (one ordered pass), with dynamic masking applied per batch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "data/dataset.h"
#include "data/host_batch.h"
#include "data/masking.h"
#include "data/options.h"

namespace bert::data {

// Where the training stream is: the next batch to be returned is batch `batch` of epoch `epoch`.
struct LoaderPosition {
  uint64_t epoch = 0;
  int64_t batch = 0;
};

// Makes batch (epoch, index) of the stream; shared by Loader (any thread) and EvalLoader.
//
// Epoch e's order is Permutation(n_e, derive_seed(seed, "shuffle", e)) over its sequences (identity
// when not shuffling). Global batch k covers positions [k*B*W, (k+1)*B*W); rank r takes the B
// positions starting at k*B*W + r*B, so ranks never overlap and together cover the epoch exactly as
// one rank with batch B*W would. Row at position p is masked with Rng(derive_seed(seed, "mask", e, p)):
// p is a function of (step, rank, row), so the mask is fixed by (seed, epoch, step, rank) and does not
// depend on prefetching or resumption.
class BatchMaker {
 public:
  BatchMaker(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options,
             const MaskingOptions& masking, bool shuffle);
  // Batches in epoch e (fewer than batch_size rows in a last ragged one when !drop_last).
  int64_t batches_in_epoch(uint64_t epoch) const;
  HostBatch make(uint64_t epoch, int64_t batch) const;
  const Dataset& dataset() const { return *dataset_; }
  const LoaderOptions& options() const { return options_; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  Masker masker_;
  bool shuffle_;
};

// Training loader: an endless stream of batches across epochs.
//   Loader loader(dataset, loader_opts, masking_opts);
//   HostBatch b = loader.next();  ...  state["loader"] = loader.cursor();
//   later: loader.restore(state["loader"]);  // continues with exactly the batches that would have come
class Loader {
 public:
  // Throws Error(kUsage) for bad options (batch_size < 1, rank outside [0, world_size), ...) and
  // Error(kInput) when an epoch has fewer sequences than batch_size * world_size.
  Loader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options, const MaskingOptions& masking);
  ~Loader();  // stops and joins the prefetch thread
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch. An exception raised while preparing it (in the prefetch thread) is re-thrown here.
  HostBatch next();
  // The position of the batch next() returns next, as JSON: {"epoch", "batch", plus what must match
  // on restore: "seed", "batch_size", "world_size", "drop_last", "dataset" fingerprint}.
  nlohmann::json cursor() const;
  // Continues from a cursor(). Throws Error(kInput) naming the field when it is malformed or was
  // saved with another seed / batch size / world size / dataset, or points past the epoch's end.
  void restore(const nlohmann::json& cursor);
  // Batches per epoch on this rank, for the epoch the cursor is in (nsp-pairs re-pairs each epoch,
  // so the count can differ slightly between epochs).
  int64_t batches_per_epoch() const;
  LoaderPosition position() const { return pos_; }
  const Dataset& dataset() const { return maker_.dataset(); }

 private:
  struct Item {
    HostBatch batch;
    std::exception_ptr error;
    LoaderPosition next;  // the position after this batch
  };
  LoaderPosition advance(LoaderPosition p, int64_t batches_in_epoch) const;
  void start_worker();
  void stop_worker();
  void worker_loop(LoaderPosition from);

  BatchMaker maker_;
  LoaderPosition pos_;
  std::thread worker_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
};

// Evaluation: every sequence of epoch 0 once, in index order (no shuffle), masked with the fixed
// seed, the last partial batch kept. With world_size > 1, rank r gets every batch k with k % W == r.
class EvalLoader {
 public:
  EvalLoader(std::shared_ptr<const Dataset> dataset, int batch_size, const MaskingOptions& masking,
             uint64_t seed, int rank = 0, int world_size = 1);
  // Fills `out` with the next batch; false after the last one.
  bool next(HostBatch& out);
  void reset() { next_ = static_cast<int64_t>(rank_); }
  // Batches this rank will see in a pass.
  int64_t num_batches() const;

 private:
  BatchMaker maker_;
  int rank_, world_size_;
  int64_t next_;
};

// Writes `n` batches from `loader` as JSONL, one line per sequence: {"batch", "row", "input_ids",
// "tokens", "token_type_ids", "labels" (ids, -100 unpredicted), "label_tokens" (original token at each
// prediction, null elsewhere), "nsp_label"}; padding is left out. Advances the loader.
void dump_batches_jsonl(Loader& loader, const wordpiece::Vocab& vocab, int n, std::ostream& out);

}  // namespace bert::data
