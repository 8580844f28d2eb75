// Data-parallel training on PyTorch's c10d: the launch environment (torchrun or SLURM), the
// rendezvous through a TCPStore, and the collectives the training loop needs (gradient averaging in
// buckets, parameter broadcast, flag agreement, barriers). With no launch variables set, a run is a
// single process exactly as before: no store, no sockets, no process group.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace bert::train {

// Where this process sits, from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT) or, without
// them, SLURM's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE; MASTER_ADDR/PORT given).
struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent hosts the store: every rank is a client
  int restart_count = 0;     // > 0: a restarted worker group (resumes from the latest checkpoint)
  std::string source;        // "torchrun", "slurm" or "" (single process)
  bool distributed() const { return world_size > 1; }
};

// Reads the environment. Throws Error(kUsage) naming the variable for WORLD_SIZE without
// MASTER_ADDR/MASTER_PORT, RANK outside [0, WORLD_SIZE), a non-numeric value, a bad port.
DistEnv read_dist_env();

// One c10d process group over a TCPStore rendezvous (Gloo; NCCL where built with it).
class Distributed {
 public:
  // Connects to the store (rank 0 hosts it unless torchrun's agent does) and builds the group.
  // `backend`: "auto" (nccl for CUDA, gloo otherwise), "gloo", "nccl". Throws Error(kUsage) for nccl
  // on the CPU or in a build without it, Error(kRuntime) naming the ranks that did not arrive within
  // `timeout`, or a port in use.
  static std::unique_ptr<Distributed> connect(const DistEnv& env, const std::string& backend,
                                              std::chrono::seconds timeout, const torch::Device& device);
  ~Distributed();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const std::string& backend() const { return backend_; }

  // A collective started and not yet finished.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;  // throws Error(kRuntime) when a rank failed or timed out
    virtual bool done() = 0;  // finished already (does not wait)
  };
  // Starts summing `t` over the ranks in place (c10d runs it on its own thread); the result is in
  // `t` once the returned handle's wait() returns. Every rank must start the same sums in the same order.
  std::unique_ptr<Pending> start_sum(torch::Tensor t);
  // Every rank's `t` (the same shape and dtype on each), stacked along a new first dimension in
  // rank order: [world_size, ...t.shape]. Blocks until all have arrived.
  torch::Tensor all_gather(const torch::Tensor& t);
  // Copies rank 0's values of `tensors` to every rank.
  void broadcast_from_rank0(const std::vector<torch::Tensor>& tensors);
  // Sums a small tensor over the ranks in place.
  void sum_(torch::Tensor& t);
  // True on every rank when `flag` is true on any.
  bool any(bool flag);
  // The largest `value` over the ranks.
  int64_t max(int64_t value);
  // Waits for every rank (with the group's timeout).
  void barrier();

 private:
  struct Impl;
  Distributed(DistEnv env, std::string backend, std::unique_ptr<Impl> impl);
  DistEnv env_;
  std::string backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bert::train
