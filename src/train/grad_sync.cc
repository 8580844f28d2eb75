// Overlapped, bucketed gradient averaging.
#include "train/grad_sync.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "util/error.h"

namespace bert::train {

struct GradientSync::State {
  struct Bucket {
    std::vector<size_t> members;  // indices into params, in the order they are flattened
    int remaining = 0;            // members whose gradient is not yet accumulated in this backward
    torch::Tensor flat;
    std::unique_ptr<Distributed::Pending> pending;
  };

  Distributed* dist = nullptr;
  std::vector<torch::Tensor> params;
  int64_t cap = 0;
  bool overlap = true;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;  // param index -> bucket
  std::mutex mu;
  bool armed = false;
  size_t next = 0;  // the first bucket not yet started: buckets start strictly in order
  int started_in_backward = 0;
  TiedWeight tied;                  // see TiedWeight; undefined tensors when there is none
  bool rebuilt = false;             // buckets follow the observed ready order (after the first sync)
  std::vector<int64_t> ready_order;  // params in the order their gradients became ready

  // Groups `order` into buckets of at most `cap` bytes and one dtype and device each.
  void build(const std::vector<size_t>& order) {
    buckets.clear();
    bucket_of.assign(params.size(), 0);
    int64_t bytes = 0;
    for (size_t i : order) {
      const torch::Tensor& p = params[i];
      const int64_t nbytes = static_cast<int64_t>(p.nbytes());
      if (buckets.empty() || bytes + nbytes > cap ||
          p.scalar_type() != params[buckets.back().members.front()].scalar_type() ||
          p.device() != params[buckets.back().members.front()].device()) {
        buckets.emplace_back();
        bytes = 0;
      }
      buckets.back().members.push_back(i);
      bucket_of[i] = buckets.size() - 1;
      bytes += nbytes;
    }
  }

  void reset_counts() {
    for (Bucket& b : buckets) {
      b.remaining = static_cast<int>(b.members.size());
      b.flat = torch::Tensor();
      b.pending.reset();
    }
    next = 0;
    started_in_backward = 0;
  }

  void start(size_t index) {
    torch::NoGradGuard no_grad;
    Bucket& b = buckets[index];
    std::vector<torch::Tensor> pieces;
    pieces.reserve(b.members.size());
    for (size_t i : b.members) {
      const torch::Tensor& g = params[i].grad();
      pieces.push_back(g.defined() ? g.reshape({-1}) : torch::zeros({params[i].numel()}, params[i].options()));
    }
    b.flat = torch::cat(pieces);
    b.pending = dist->start_sum(b.flat);
  }

  // Called by the hook once parameter `i`'s gradient is accumulated.
  void ready(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;
    if (!rebuilt) ready_order.push_back(static_cast<int64_t>(i));
    Bucket& b = buckets[bucket_of[i]];
    if (--b.remaining > 0 || !overlap) return;
    while (next < buckets.size() && buckets[next].remaining == 0) {
      start(next++);
      ++started_in_backward;
    }
  }

  // The lookup part of the tied weight's gradient, summed over the ranks in place: each rank sends
  // the ids of its nonzero rows (padded with -1 to the largest count) and those rows. Returns the
  // bytes this rank sent.
  int64_t sum_tied_rows() {
    torch::NoGradGuard no_grad;
    const torch::Tensor& w = tied.weight;
    torch::Tensor& g = w.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(w);
    const torch::Tensor idx = g.ne(0).any(1).nonzero().squeeze(1);  // ascending row ids
    const int64_t n = idx.size(0), m = dist->max(n), h = w.size(1);
    torch::Tensor ids = torch::full({m}, -1, torch::TensorOptions().dtype(torch::kInt64).device(w.device()));
    torch::Tensor rows = torch::zeros({m, h}, g.options());
    ids.narrow(0, 0, n).copy_(idx);
    rows.narrow(0, 0, n).copy_(g.index_select(0, idx));
    const torch::Tensor all_ids = dist->all_gather(ids).reshape({-1});
    const torch::Tensor all_rows = dist->all_gather(rows).reshape({-1, h});
    const torch::Tensor keep = all_ids.ge(0).nonzero().squeeze(1);
    g.zero_();
    g.index_add_(0, all_ids.index_select(0, keep), all_rows.index_select(0, keep));  // in rank order
    return m * (static_cast<int64_t>(sizeof(int64_t)) + h * static_cast<int64_t>(g.element_size()));
  }
};

namespace {

class ReadyHook final : public torch::autograd::PostAccumulateGradHook {
 public:
  ReadyHook(std::weak_ptr<GradientSync::State> state, size_t index) : state_(std::move(state)), index_(index) {}
  void operator()(const torch::autograd::Variable&) override {
    if (auto s = state_.lock()) s->ready(index_);
  }

 private:
  std::weak_ptr<GradientSync::State> state_;
  size_t index_;
};

}  // namespace

GradientSync::GradientSync(Distributed& dist, std::vector<torch::Tensor> params, int64_t bucket_bytes, bool overlap,
                           TiedWeight tied)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.dist = &dist;
  s.params = std::move(params);
  s.overlap = overlap;
  if (tied.weight.defined()) {
    auto it = std::find_if(s.params.begin(), s.params.end(), [&](const torch::Tensor& p) { return p.is_same(tied.weight); });
    if (it == s.params.end() || !tied.alias.defined() || !tied.alias.is_leaf() || !tied.alias.requires_grad() ||
        tied.alias.sizes() != tied.weight.sizes() || tied.weight.dim() != 2) {
      throw util::runtime_error("GradientSync: the tied weight must be one of the parameters, with a [V, H] leaf alias");
    }
    *it = tied.alias;  // bucketed in the weight's place
    s.tied = std::move(tied);
  }
  int64_t total = 0;
  for (const auto& p : s.params) total += static_cast<int64_t>(p.nbytes());
  s.cap = std::min<int64_t>(bucket_bytes, std::max<int64_t>(256 << 10, total / 8));
  std::vector<size_t> reverse(s.params.size());
  for (size_t i = 0; i < reverse.size(); ++i) reverse[i] = reverse.size() - 1 - i;
  s.build(reverse);
  for (size_t i = 0; i < s.params.size(); ++i) {
    if (!s.params[i].requires_grad()) throw util::runtime_error("GradientSync: a parameter does not require grad");
    torch::autograd::impl::set_post_acc_grad_hooks(s.params[i], std::make_unique<ReadyHook>(state_, i));
  }
}

GradientSync::~GradientSync() {
  for (const auto& p : state_->params) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

int GradientSync::num_buckets() const { return static_cast<int>(state_->buckets.size()); }

void GradientSync::arm() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->reset_counts();
  state_->armed = true;
}

GradSyncStats GradientSync::finish() {
  State& s = *state_;
  const auto t0 = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.armed) throw util::runtime_error("GradientSync::finish without arm()");
  s.armed = false;
  GradSyncStats stats;
  stats.started_in_backward = s.started_in_backward;
  for (size_t i = 0; i < s.next; ++i) {
    if (s.buckets[i].pending->done()) stats.bytes_done_in_backward += static_cast<int64_t>(s.buckets[i].flat.nbytes());
  }
  while (s.next < s.buckets.size()) s.start(s.next++);
  torch::NoGradGuard no_grad;
  const double inv_world = 1.0 / static_cast<double>(s.dist->world_size());
  // (while the last buckets are in flight on c10d's thread)
  if (s.tied.weight.defined()) stats.bytes += s.sum_tied_rows();
  for (State::Bucket& b : s.buckets) {
    b.pending->wait();
    b.flat.mul_(inv_world);
    int64_t offset = 0;
    for (size_t i : b.members) {
      torch::Tensor& g = s.params[i].mutable_grad();
      const int64_t n = s.params[i].numel();
      if (g.defined()) g.copy_(b.flat.narrow(0, offset, n).view_as(g));
      offset += n;
    }
    stats.bytes += static_cast<int64_t>(b.flat.nbytes());
    b.flat = torch::Tensor();
    b.pending.reset();
  }
  if (s.tied.weight.defined()) {
    torch::Tensor& g = s.tied.weight.mutable_grad();
    g.mul_(inv_world);
    torch::Tensor& decoder = s.tied.alias.mutable_grad();
    if (decoder.defined()) g.add_(decoder);
    decoder = torch::Tensor();  // accumulates afresh from the next step's micro-batches
  }
  stats.buckets = static_cast<int>(s.buckets.size());
  stats.exposed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!s.rebuilt) {
    // As DDP after its first iteration: rebuild the buckets in the order the gradients became ready
    // (rank 0's order, so every rank holds the same buckets); parameters that got no gradient go last.
    s.rebuilt = true;
    std::vector<int64_t> order = s.ready_order;
    std::vector<bool> seen(s.params.size(), false);
    for (int64_t i : order) seen[static_cast<size_t>(i)] = true;
    for (size_t i = s.params.size(); i-- > 0;) {
      if (!seen[i]) order.push_back(static_cast<int64_t>(i));
    }
    if (order.size() != s.params.size()) throw util::runtime_error("GradientSync: a parameter was ready twice");
    torch::Tensor agreed = torch::tensor(order, torch::kInt64);
    s.dist->broadcast_from_rank0({agreed});
    const int64_t* agreed_order = agreed.data_ptr<int64_t>();
    std::vector<size_t> rebuilt(s.params.size());
    for (size_t k = 0; k < rebuilt.size(); ++k) rebuilt[k] = static_cast<size_t>(agreed_order[k]);
    s.build(rebuilt);
    s.ready_order.clear();
  }
  return stats;
}

}  // namespace bert::train
