// Gradient averaging for data-parallel training, overlapped with the backward as DDP does it:
// the parameters are grouped into buckets in reverse order (the order the backward finishes them),
// a hook on each parameter marks its gradient ready once it is accumulated, and a bucket whose
// gradients are all ready is flattened and its all-reduce started at once on c10d's thread, while
// the backward goes on with the earlier layers. Buckets start strictly in order, so every rank
// issues the same collectives in the same sequence whatever order its own backward ran in.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "train/distributed.h"

namespace bert::train {

// What one synchronisation cost.
struct GradSyncStats {
  int64_t bytes = 0;             // gradient bytes reduced (per rank)
  int buckets = 0;               // all-reduces issued
  int started_in_backward = 0;   // of them, started before the backward returned
  int64_t bytes_done_in_backward = 0;  // of `bytes`, reduced completely before the backward returned:
                                       // the communication the backward hid
  double exposed_ms = 0.0;       // time finish() waited: the communication the backward did not hide
  GradSyncStats& operator+=(const GradSyncStats& o) {
    bytes += o.bytes;
    buckets += o.buckets;
    started_in_backward += o.started_in_backward;
    bytes_done_in_backward += o.bytes_done_in_backward;
    exposed_ms += o.exposed_ms;
    return *this;
  }
};

// A tied weight whose gradient has two parts (the word embeddings: the MLM decoder's dense part and
// the embedding lookup's sparse rows), with `alias` the leaf the decoder reads
// (model::BertForPreTrainingImpl::set_decoder_alias).
struct TiedWeight {
  torch::Tensor weight, alias;
};

class GradientSync {
 public:
  // Buckets hold about `bucket_bytes` each (DDP's 25 MB); for a small model the cap shrinks to an
  // eighth of its gradient bytes (at least 256 KiB), so even bert-tiny has buckets to overlap.
  // `overlap` = false starts every all-reduce only in finish(): the baseline for measurements.
  // With `tied` (its weight one of `params`), the alias's gradient -- the decoder's part, complete
  // early in the backward -- is bucketed in the weight's place, and the weight's own gradient (the
  // lookup's part, complete only at the end, and nonzero only in the rows of the step's tokens) is
  // exchanged sparsely in finish(): an all-gather of each rank's touched row ids and rows, summed
  // into place. The weight then holds the mean of both parts, as if it had been one all-reduce.
  GradientSync(Distributed& dist, std::vector<torch::Tensor> params, int64_t bucket_bytes = 25 << 20,
               bool overlap = true, TiedWeight tied = {});
  ~GradientSync();  // removes the hooks
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // The next backward is the step's last micro-batch: its accumulated gradients are reduced as
  // they become ready. (Earlier micro-batches of a step accumulate locally, unsynchronised.)
  void arm();
  // After that backward: starts the buckets not yet started (a parameter without a gradient
  // contributes zeros and keeps no gradient), exchanges the tied weight's rows, waits for all, and
  // divides by the world size, so every rank holds the mean gradient. Disarms.
  GradSyncStats finish();

  int num_buckets() const;

  struct State;  // (shared with the hooks, which outlive nothing: the destructor removes them)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace bert::train
