// Batch assembly, the prefetching training loader with its cursor, the evaluation pass, batch dumps.
#include "data/loader.h"

#include <algorithm>

#include "data/permutation.h"
#include "util/error.h"
#include "util/rng.h"

namespace bert::data {

namespace {

constexpr const char* kCursorFormat = "bert-loader-cursor";
constexpr int kCursorVersion = 1;

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void validate(const LoaderOptions& o) {
  if (o.batch_size < 1) throw util::usage_error("training.batch_size must be >= 1, got " + std::to_string(o.batch_size));
  if (o.world_size < 1) throw util::usage_error("world_size must be >= 1, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size) {
    throw util::usage_error("rank " + std::to_string(o.rank) + " is outside [0, world_size " +
                            std::to_string(o.world_size) + ")");
  }
  if (o.prefetch < 0) throw util::usage_error("loader prefetch must be >= 0, got " + std::to_string(o.prefetch));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// BatchMaker

BatchMaker::BatchMaker(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options,
                       const MaskingOptions& masking, bool shuffle)
    : dataset_(std::move(dataset)), options_(options), masker_(dataset_->vocab(), masking), shuffle_(shuffle) {
  validate(options_);
}

int64_t BatchMaker::batches_in_epoch(uint64_t epoch) const {
  const auto n = static_cast<int64_t>(dataset_->sequences(epoch)->refs.size());
  const int64_t global = static_cast<int64_t>(options_.batch_size) * options_.world_size;
  return options_.drop_last ? n / global : (n + global - 1) / global;
}

HostBatch BatchMaker::make(uint64_t epoch, int64_t batch) const {
  auto index = dataset_->sequences(epoch);
  const uint64_t n = index->refs.size();
  const int t = dataset_->max_seq_len();
  const uint64_t global = static_cast<uint64_t>(options_.batch_size) * options_.world_size;
  const uint64_t first = static_cast<uint64_t>(batch) * global + static_cast<uint64_t>(options_.rank) * options_.batch_size;
  const uint64_t rows = first >= n ? 0 : std::min<uint64_t>(options_.batch_size, n - first);
  const Permutation perm(n, util::derive_seed(options_.seed, "shuffle", epoch));

  HostBatch b;
  b.batch_size = static_cast<int>(rows);
  b.seq_len = t;
  const size_t cells = rows * static_cast<size_t>(t);
  b.input_ids.resize(cells);
  b.token_type_ids.resize(cells);
  b.attention_mask.resize(cells);
  b.mlm_labels.assign(cells, -100);
  b.nsp_labels.resize(rows);
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t p = first + r;
    const SequenceRef& ref = index->refs[shuffle_ ? perm(p) : p];
    const size_t off = r * static_cast<size_t>(t);
    const int len = dataset_->fill(ref, &b.input_ids[off], &b.token_type_ids[off], &b.attention_mask[off]);
    util::Rng rng(util::derive_seed(options_.seed, "mask", epoch, p));
    b.num_predictions += masker_.apply(&b.input_ids[off], &b.mlm_labels[off], len, rng);
    b.num_real_tokens += len;
    b.nsp_labels[r] = ref.nsp_label;
  }
  return b;
}

// ---------------------------------------------------------------------------------------------------
// Loader

Loader::Loader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options, const MaskingOptions& masking)
    : maker_(std::move(dataset), options, masking, /*shuffle=*/true) {
  if (maker_.batches_in_epoch(0) == 0) {
    throw util::usage_error("the data has " + std::to_string(maker_.dataset().stats().sequences) +
                            " sequences, fewer than one global batch of training.batch_size " +
                            std::to_string(options.batch_size) + " x world size " + std::to_string(options.world_size) +
                            "; use more data, a smaller training.batch_size or fewer processes");
  }
  start_worker();
}

Loader::~Loader() { stop_worker(); }

LoaderPosition Loader::advance(LoaderPosition p, int64_t batches_in_epoch) const {
  if (++p.batch >= batches_in_epoch) {
    ++p.epoch;
    p.batch = 0;
  }
  return p;
}

void Loader::start_worker() {
  if (maker_.options().prefetch == 0) return;
  stop_ = false;
  worker_ = std::thread([this, from = pos_] { worker_loop(from); });
}

void Loader::stop_worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  queue_.clear();
}

void Loader::worker_loop(LoaderPosition p) {
  const size_t capacity = static_cast<size_t>(maker_.options().prefetch);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || queue_.size() < capacity; });
      if (stop_) return;
    }
    Item item;
    try {
      item.batch = maker_.make(p.epoch, p.batch);
      item.next = advance(p, maker_.batches_in_epoch(p.epoch));
    } catch (...) {
      item.error = std::current_exception();
    }
    const bool failed = item.error != nullptr;
    p = item.next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(item));
    }
    cv_.notify_all();
    if (failed) return;  // next() re-throws; restore() starts a fresh worker
  }
}

HostBatch Loader::next() {
  if (maker_.options().prefetch == 0) {
    HostBatch b = maker_.make(pos_.epoch, pos_.batch);
    pos_ = advance(pos_, maker_.batches_in_epoch(pos_.epoch));
    return b;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !queue_.empty(); });
  if (queue_.front().error) {
    std::exception_ptr e = queue_.front().error;  // stays queued: every later next() fails the same way
    std::rethrow_exception(e);
  }
  Item item = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  cv_.notify_all();
  pos_ = item.next;
  return std::move(item.batch);
}

nlohmann::json Loader::cursor() const {
  const LoaderOptions& o = maker_.options();
  return {{"format", kCursorFormat}, {"version", kCursorVersion},
          {"epoch", pos_.epoch}, {"batch", pos_.batch},
          {"seed", o.seed}, {"batch_size", o.batch_size}, {"world_size", o.world_size},
          {"drop_last", o.drop_last}, {"dataset", hex64(maker_.dataset().fingerprint())}};
}

void Loader::restore(const nlohmann::json& c) {
  const LoaderOptions& o = maker_.options();
  auto bad = [](const std::string& what) {
    return util::input_error("loader cursor: " + what);
  };
  if (!c.is_object()) throw bad("expected a JSON object, got " + c.dump());
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!c.contains(key)) throw bad(std::string("missing \"") + key + "\"");
    return c.at(key);
  };
  if (field("format") != kCursorFormat) throw bad("\"format\" is not \"" + std::string(kCursorFormat) + "\"");
  if (field("version") != kCursorVersion) throw bad("unsupported version " + field("version").dump());
  auto expect = [&](const char* key, const nlohmann::json& want) {
    if (field(key) != want) {
      throw bad(std::string("it was saved with ") + key + " " + field(key).dump() + ", this run has " +
                want.dump() + "; resume with the same settings");
    }
  };
  expect("seed", o.seed);
  // (epoch, batch) count global batches and a row's mask depends only on its position in the epoch,
  // so the stream continues exactly under another split of the same global batch (B x W).
  if (!field("batch_size").is_number_integer() || !field("world_size").is_number_integer()) {
    throw bad("\"batch_size\" and \"world_size\" must be integers");
  }
  const int64_t saved_global = field("batch_size").get<int64_t>() * field("world_size").get<int64_t>();
  if (saved_global != int64_t{o.batch_size} * o.world_size) {
    throw bad("it was saved with a global batch of " + field("batch_size").dump() + " x " + field("world_size").dump() +
              " ranks, this run has " + std::to_string(o.batch_size) + " x " + std::to_string(o.world_size) +
              "; resume with training.batch_size x world size = " + std::to_string(saved_global));
  }
  expect("drop_last", o.drop_last);
  if (field("dataset") != hex64(maker_.dataset().fingerprint())) {
    throw bad("it belongs to another dataset (files, vocab or sequence options changed: " +
              field("dataset").dump() + " vs \"" + hex64(maker_.dataset().fingerprint()) + "\")");
  }
  if (!field("epoch").is_number_integer() || field("epoch").get<int64_t>() < 0) {
    throw bad("\"epoch\" must be a non-negative integer");
  }
  if (!field("batch").is_number_integer() || field("batch").get<int64_t>() < 0) {
    throw bad("\"batch\" must be a non-negative integer");
  }
  LoaderPosition p{static_cast<uint64_t>(field("epoch").get<int64_t>()), field("batch").get<int64_t>()};
  const int64_t in_epoch = maker_.batches_in_epoch(p.epoch);
  if (p.batch >= in_epoch) {
    throw bad("batch " + std::to_string(p.batch) + " is past the end of epoch " + std::to_string(p.epoch) +
              " (" + std::to_string(in_epoch) + " batches)");
  }
  stop_worker();
  pos_ = p;
  start_worker();
}

int64_t Loader::batches_per_epoch() const { return maker_.batches_in_epoch(pos_.epoch); }

// ---------------------------------------------------------------------------------------------------
// EvalLoader

namespace {
LoaderOptions eval_options(int batch_size, uint64_t seed) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.seed = seed;
  o.drop_last = false;
  o.prefetch = 0;
  return o;
}
}  // namespace

EvalLoader::EvalLoader(std::shared_ptr<const Dataset> dataset, int batch_size, const MaskingOptions& masking,
                       uint64_t seed, int rank, int world_size)
    : maker_(std::move(dataset), eval_options(batch_size, seed), masking, /*shuffle=*/false),
      rank_(rank), world_size_(world_size), next_(rank) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw util::usage_error("eval rank " + std::to_string(rank) + " is outside [0, " + std::to_string(world_size) + ")");
  }
}

int64_t EvalLoader::num_batches() const {
  const int64_t total = maker_.batches_in_epoch(0);
  return total > rank_ ? (total - rank_ + world_size_ - 1) / world_size_ : 0;
}

bool EvalLoader::next(HostBatch& out) {
  if (next_ >= maker_.batches_in_epoch(0)) return false;
  out = maker_.make(0, next_);
  next_ += world_size_;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// dump_batches_jsonl

void dump_batches_jsonl(Loader& loader, const wordpiece::Vocab& vocab, int n, std::ostream& out) {
  for (int k = 0; k < n; ++k) {
    const HostBatch b = loader.next();
    for (int r = 0; r < b.batch_size; ++r) {
      const size_t off = static_cast<size_t>(r) * b.seq_len;
      nlohmann::json ids = nlohmann::json::array(), tokens = nlohmann::json::array(),
                     types = nlohmann::json::array(), labels = nlohmann::json::array(),
                     label_tokens = nlohmann::json::array();
      for (int i = 0; i < b.seq_len && b.attention_mask[off + i] == 1; ++i) {
        const int64_t id = b.input_ids[off + i], label = b.mlm_labels[off + i];
        ids.push_back(id);
        tokens.push_back(vocab.token(static_cast<int32_t>(id)));
        types.push_back(b.token_type_ids[off + i]);
        labels.push_back(label);
        label_tokens.push_back(label >= 0 ? nlohmann::json(vocab.token(static_cast<int32_t>(label))) : nlohmann::json());
      }
      nlohmann::json line = {{"batch", k}, {"row", r}, {"input_ids", ids}, {"tokens", tokens},
                             {"token_type_ids", types}, {"labels", labels}, {"label_tokens", label_tokens},
                             {"nsp_label", b.nsp_labels[static_cast<size_t>(r)]}};
      out << line.dump() << '\n';
    }
  }
  if (!out) throw util::io_error("cannot write the batch dump (disk full?)");
}

}  // namespace bert::data
