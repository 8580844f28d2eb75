// c10d glue: environment, TCPStore rendezvous, the Gloo process group and bucketed all-reduce.
#include "train/distributed.h"

#include <cstdlib>

#include "util/error.h"

#if defined(USE_C10D_GLOO)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#if defined(USE_C10D_NCCL)
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace bert::train {
namespace {

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = env_or_null(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || x < lo || x > hi) {
    throw util::usage_error(std::string("environment variable ") + name + "=\"" + v + "\" is not an integer in [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(x);
}

}  // namespace

DistEnv read_dist_env() {
  DistEnv e;
  const bool torchrun = env_or_null("WORLD_SIZE") != nullptr || env_or_null("RANK") != nullptr;
  const bool slurm = !torchrun && env_or_null("SLURM_NTASKS") != nullptr && env_or_null("MASTER_ADDR") != nullptr;
  if (!torchrun && !slurm) return e;
  constexpr int kMax = 1 << 20;
  if (torchrun) {
    e.source = "torchrun";
    e.world_size = env_int("WORLD_SIZE", 1, 1, kMax);
    e.rank = env_int("RANK", 0, 0, kMax);
    e.local_rank = env_int("LOCAL_RANK", e.rank, 0, kMax);
    e.local_world_size = env_int("LOCAL_WORLD_SIZE", e.world_size, 1, kMax);
  } else {
    e.source = "slurm";
    e.world_size = env_int("SLURM_NTASKS", 1, 1, kMax);
    e.rank = env_int("SLURM_PROCID", 0, 0, kMax);
    e.local_rank = env_int("SLURM_LOCALID", 0, 0, kMax);
    e.local_world_size = env_int("SLURM_NTASKS_PER_NODE", e.world_size, 1, kMax);
  }
  if (e.rank >= e.world_size) {
    throw util::usage_error((e.source == "slurm" ? std::string("SLURM_PROCID=") : std::string("RANK=")) +
                            std::to_string(e.rank) + " is not below the world size " + std::to_string(e.world_size));
  }
  e.agent_store = env_or_null("TORCHELASTIC_USE_AGENT_STORE") != nullptr &&
                  std::string(env_or_null("TORCHELASTIC_USE_AGENT_STORE")) == "True";
  e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0, kMax);
  if (e.world_size > 1) {
    if (env_or_null("MASTER_ADDR") == nullptr || env_or_null("MASTER_PORT") == nullptr) {
      throw util::usage_error("WORLD_SIZE=" + std::to_string(e.world_size) +
                              " but MASTER_ADDR and MASTER_PORT are not both set: launch with torchrun, or set "
                              "them to rank 0's address and a free port");
    }
    e.master_addr = env_or_null("MASTER_ADDR");
    e.master_port = env_int("MASTER_PORT", 0, 1, 65535);
  }
  return e;
}

#if defined(USE_C10D_GLOO)
struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> group;
  torch::Device device = torch::kCPU;  // NCCL reduces only CUDA tensors: host values travel through it
  bool nccl = false;
  // `t` as the group can reduce it, and back.
  torch::Tensor to_group(const torch::Tensor& t) const { return nccl ? t.to(device) : t; }
};
#else
struct Distributed::Impl {};
#endif

Distributed::Distributed(DistEnv env, std::string backend, std::unique_ptr<Impl> impl)
    : env_(std::move(env)), backend_(std::move(backend)), impl_(std::move(impl)) {}
Distributed::~Distributed() = default;

std::unique_ptr<Distributed> Distributed::connect(const DistEnv& env, const std::string& backend_name,
                                                  std::chrono::seconds timeout, const torch::Device& device) {
  std::string backend = backend_name == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : backend_name;
  if (backend == "nccl" && !device.is_cuda()) {
    throw util::usage_error("runtime.backend = \"nccl\" needs CUDA devices; on the CPU use \"gloo\" or \"auto\"");
  }
#if !defined(USE_C10D_NCCL)
  if (backend == "nccl") {
    throw util::usage_error("runtime.backend = \"nccl\": this bert-train was built without NCCL (it needs the CUDA "
                            "toolkit and nccl.h at build time); use \"gloo\", which reduces CUDA tensors through host memory");
  }
#endif
#if defined(USE_C10D_GLOO)
  auto impl = std::make_unique<Impl>();
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(env.master_port);
  o.isServer = env.rank == 0 && !env.agent_store;
  o.numWorkers = env.agent_store ? std::nullopt : std::optional<size_t>(env.world_size);
  o.waitWorkers = false;
  o.timeout = timeout;
  try {
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  } catch (const std::exception& e) {
    const std::string what = "rank " + std::to_string(env.rank) + ": cannot " + (o.isServer ? "host" : "reach") +
                             " the rendezvous store at " + env.master_addr + ":" + std::to_string(env.master_port) +
                             " (" + e.what() + "); ";
    // Hosting fails on a port in use (a usage problem: pick another MASTER_PORT); reaching fails
    // when rank 0 is not up within the timeout.
    if (o.isServer) throw util::usage_error(what + "the port is in use or not allowed: set MASTER_PORT to a free port");
    throw util::runtime_error(what + "check MASTER_ADDR/MASTER_PORT and that rank 0 is running");
  }
  // A fresh key space per restart of a torchrun worker group.
  auto store = c10::make_intrusive<c10d::PrefixStore>("bert/" + std::to_string(env.restart_count), impl->store);
  // Arrival: every rank sets its key, then waits for all; a timeout names the ranks missing.
  store->set("arrived/" + std::to_string(env.rank), std::vector<uint8_t>{1});
  std::vector<std::string> keys;
  for (int r = 0; r < env.world_size; ++r) keys.push_back("arrived/" + std::to_string(r));
  try {
    store->wait(keys, timeout);
  } catch (const std::exception&) {
    std::string missing;
    for (int r = 0; r < env.world_size; ++r) {
      if (!store->check({"arrived/" + std::to_string(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    throw util::runtime_error("rank " + std::to_string(env.rank) + ": rank(s) " + missing + " of " +
                              std::to_string(env.world_size) + " did not arrive within runtime.dist_timeout_s = " +
                              std::to_string(timeout.count()) + " s");
  }
  impl->device = device;
#if defined(USE_C10D_NCCL)
  if (backend == "nccl") {
    c10::cuda::set_device(device.index());  // NCCL's communicator and barrier use the current device
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    impl->nccl = true;
    impl->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, options);
    return std::unique_ptr<Distributed>(new Distributed(env, backend, std::move(impl)));
  }
#endif
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
  options->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                      : c10d::ProcessGroupGloo::createDefaultDevice());
  impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  return std::unique_ptr<Distributed>(new Distributed(env, backend, std::move(impl)));
#else
  (void)timeout;
  throw util::usage_error("this bert-train was built without c10d's Gloo (libgloo-dev was missing at build "
                          "time): install it (scripts/setup.sh does) and rebuild to train on " +
                          std::to_string(env.world_size) + " processes");
#endif
}

#if defined(USE_C10D_GLOO)
namespace {
class GlooPending final : public Distributed::Pending {
 public:
  GlooPending(c10::intrusive_ptr<c10d::Work> work, int rank) : work_(std::move(work)), rank_(rank) {}
  bool done() override { return work_->isCompleted(); }
  void wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      throw util::runtime_error("rank " + std::to_string(rank_) + ": a gradient all-reduce failed (" + e.what() +
                                "): another rank stopped or timed out");
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  int rank_;
};
}  // namespace

std::unique_ptr<Distributed::Pending> Distributed::start_sum(torch::Tensor t) {
  std::vector<torch::Tensor> one = {std::move(t)};
  return std::make_unique<GlooPending>(impl_->group->allreduce(one), env_.rank);
}

void Distributed::broadcast_from_rank0(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> one = {impl_->to_group(t.detach())};
    impl_->group->broadcast(one)->wait();
    if (one[0].data_ptr() != t.data_ptr()) t.detach().copy_(one[0]);
  }
}

void Distributed::sum_(torch::Tensor& t) {
  std::vector<torch::Tensor> one = {impl_->to_group(t)};
  impl_->group->allreduce(one)->wait();
  if (!one[0].is_same(t)) t.copy_(one[0]);
}

torch::Tensor Distributed::all_gather(const torch::Tensor& t) {
  torch::NoGradGuard no_grad;
  const torch::Tensor in = impl_->to_group(t.contiguous());
  std::vector<torch::Tensor> slots;
  for (int r = 0; r < env_.world_size; ++r) slots.push_back(torch::empty_like(in));
  std::vector<std::vector<torch::Tensor>> outputs = {slots};
  std::vector<torch::Tensor> inputs = {in};
  impl_->group->allgather(outputs, inputs)->wait();
  return torch::stack(outputs[0]).to(t.device());
}

bool Distributed::any(bool flag) { return max(flag ? 1 : 0) > 0; }

int64_t Distributed::max(int64_t value) {
  std::vector<torch::Tensor> one = {impl_->to_group(torch::full({1}, value, torch::kInt64))};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  impl_->group->allreduce(one, o)->wait();
  return one[0].item<int64_t>();
}

void Distributed::barrier() { impl_->group->barrier()->wait(); }
#else
std::unique_ptr<Distributed::Pending> Distributed::start_sum(torch::Tensor) {
  throw util::runtime_error("start_sum: this build has no process group");
}
void Distributed::broadcast_from_rank0(const std::vector<torch::Tensor>&) {}
void Distributed::sum_(torch::Tensor&) {}
bool Distributed::any(bool flag) { return flag; }
int64_t Distributed::max(int64_t value) { return value; }
torch::Tensor Distributed::all_gather(const torch::Tensor& t) { return t.unsqueeze(0).clone(); }
void Distributed::barrier() {}
#endif

}  // namespace bert::train
