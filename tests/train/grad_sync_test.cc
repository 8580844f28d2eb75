// GradientSync with two ranks in one process (two threads, each its own Gloo group over a
// TCPStore on 127.0.0.1): the averaged gradients equal the mean of what each rank computed alone,
// buckets really start during the backward, accumulation synchronises only the last micro-batch,
// and a parameter without a gradient neither blocks the others nor gains a gradient.
#include "train/grad_sync.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <thread>

namespace bert::train {
namespace {

std::mutex rng_mu;  // the ranks are threads sharing torch's default generator

// Six 256x256 layers (1.5 MB of fp32 gradients: buckets of 256 KiB) and one unused parameter.
struct Net : torch::nn::Module {
  Net() {
    std::lock_guard<std::mutex> lock(rng_mu);
    torch::manual_seed(7);
    for (int i = 0; i < 6; ++i) layers.push_back(register_module("l" + std::to_string(i), torch::nn::Linear(256, 256)));
    unused = register_parameter("unused", torch::ones({10}));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& l : layers) x = torch::tanh(l->forward(x));
    return x.pow(2).mean();
  }
  std::vector<torch::nn::Linear> layers;
  torch::Tensor unused;
};

torch::Tensor input(int rank, int micro) {
  std::lock_guard<std::mutex> lock(rng_mu);
  torch::manual_seed(100 + 10 * rank + micro);
  return torch::randn({8, 256});
}

// The gradients one rank computes alone over `micro` micro-batches (summed, as accumulation does).
std::vector<torch::Tensor> local_grads(int rank, int micro) {
  Net net;
  for (int m = 0; m < micro; ++m) net.forward(input(rank, m)).backward();
  std::vector<torch::Tensor> out;
  for (const auto& p : net.parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return out;
}

struct RankResult {
  std::vector<std::vector<torch::Tensor>> grads_per_step;
  std::vector<GradSyncStats> stats;
  int buckets = 0;
  std::string error;
};

RankResult run_rank(int rank, int port, int micro, int steps, bool overlap) {
  RankResult out;
  try {
    torch::set_num_threads(1);
    DistEnv env;
    env.rank = rank;
    env.world_size = 2;
    env.master_addr = "127.0.0.1";
    env.master_port = port;
    auto dist = Distributed::connect(env, "gloo", std::chrono::seconds(30), torch::kCPU);
    Net net;
    GradientSync sync(*dist, net.parameters(), 25 << 20, overlap);
    out.buckets = sync.num_buckets();
    for (int s = 0; s < steps; ++s) {
      for (auto& p : net.parameters()) p.mutable_grad() = torch::Tensor();
      for (int m = 0; m < micro; ++m) {
        if (m == micro - 1) sync.arm();
        net.forward(input(rank, m)).backward();
      }
      out.stats.push_back(sync.finish());
      std::vector<torch::Tensor> g;
      for (const auto& p : net.parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
      out.grads_per_step.push_back(g);
    }
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

void expect_mean_of_ranks(int micro, bool overlap, int port) {
  RankResult r0, r1;
  std::thread t1([&] { r1 = run_rank(1, port, micro, 3, overlap); });
  r0 = run_rank(0, port, micro, 3, overlap);
  t1.join();
  ASSERT_EQ(r0.error, "");
  ASSERT_EQ(r1.error, "");
  const auto a = local_grads(0, micro), b = local_grads(1, micro);
  EXPECT_GE(r0.buckets, 4);  // the model is small: the cap shrinks so there is something to overlap
  for (int s = 0; s < 3; ++s) {
    for (size_t i = 0; i < a.size(); ++i) {
      SCOPED_TRACE("step " + std::to_string(s) + " parameter " + std::to_string(i));
      if (!a[i].defined()) {  // the unused parameter keeps no gradient on either rank
        EXPECT_FALSE(r0.grads_per_step[s][i].defined());
        EXPECT_FALSE(r1.grads_per_step[s][i].defined());
        continue;
      }
      const torch::Tensor mean = (a[i] + b[i]) / 2;
      EXPECT_TRUE(torch::allclose(r0.grads_per_step[s][i], mean, 1e-6, 1e-8));
      EXPECT_TRUE(torch::equal(r0.grads_per_step[s][i], r1.grads_per_step[s][i]));  // replicas agree bitwise
    }
    EXPECT_EQ(r0.stats[s].bytes, 4 * (6 * (256 * 256 + 256) + 10));
    if (overlap && s > 0) {
      // After the first step the buckets follow the ready order, with the unused parameter last:
      // every bucket but that one starts inside the backward.
      EXPECT_EQ(r0.stats[s].started_in_backward, r0.stats[s].buckets - 1);
    }
    EXPECT_LE(r0.stats[s].bytes_done_in_backward, r0.stats[s].bytes);
    if (!overlap) {
      EXPECT_EQ(r0.stats[s].started_in_backward, 0);
      EXPECT_EQ(r0.stats[s].bytes_done_in_backward, 0);
    }
  }
}

// A port the kernel reports free on 127.0.0.1 (bound to 0, read back, released). A fixed
// pid-derived port could collide with another test process running in parallel (CI saw it).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 30000 + static_cast<int>(::getpid() % 20000);
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

TEST(GradientSync, AveragesTheRanksGradientsWhileTheBackwardRuns) { expect_mean_of_ranks(1, true, free_port()); }

TEST(GradientSync, AccumulationSynchronisesOnlyTheLastMicroBatch) { expect_mean_of_ranks(3, true, free_port()); }

TEST(GradientSync, WithoutOverlapEverythingStartsAfterTheBackward) { expect_mean_of_ranks(2, false, free_port()); }

// A tied weight (an embedding table read by a lookup and, through an alias leaf, by a decoder) with
// two 256x256 layers between: the decoder's part is bucketed during the backward, the lookup's rows
// exchanged sparsely after it; the result is the mean of the full gradients each rank computes alone.
struct TiedNet : torch::nn::Module {
  TiedNet() {
    std::lock_guard<std::mutex> lock(rng_mu);
    torch::manual_seed(8);
    table = register_parameter("table", torch::randn({300, 256}) * 0.1);
    for (int i = 0; i < 2; ++i) layers.push_back(register_module("l" + std::to_string(i), torch::nn::Linear(256, 256)));
  }
  // Rank r looks up its own ids (some shared with the other rank, some its own).
  torch::Tensor forward(int rank, const torch::Tensor& decoder) {
    torch::Tensor ids = torch::arange(0, 40, torch::kInt64) * 3 + rank * 50;
    torch::Tensor x = table.index_select(0, ids);
    for (auto& l : layers) x = torch::tanh(l->forward(x));
    return torch::log_softmax(torch::matmul(x, decoder.t()), 1).select(1, 7).mean();
  }
  torch::Tensor table;
  std::vector<torch::nn::Linear> layers;
};

TEST(GradientSync, ATiedWeightsDecoderPartOverlapsAndItsLookupRowsAreExchangedSparsely) {
  std::vector<torch::Tensor> alone[2];
  for (int r = 0; r < 2; ++r) {
    TiedNet net;
    net.forward(r, net.table).backward();
    for (const auto& p : net.parameters()) alone[r].push_back(p.grad().clone());
  }
  struct Out {
    std::vector<torch::Tensor> grads;
    GradSyncStats stats;
    std::string error;
  } out[2];
  const int port = free_port();
  auto rank_main = [&](int rank) {
    try {
      torch::set_num_threads(1);
      DistEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.master_addr = "127.0.0.1";
      env.master_port = port;
      auto dist = Distributed::connect(env, "gloo", std::chrono::seconds(30), torch::kCPU);
      TiedNet net;
      TiedWeight tied{net.table, net.table.detach().requires_grad_(true)};
      GradientSync sync(*dist, net.parameters(), 25 << 20, true, tied);
      for (int step = 0; step < 2; ++step) {  // the second step runs on the rebuilt buckets
        for (auto& p : net.parameters()) p.mutable_grad() = torch::Tensor();
        sync.arm();
        net.forward(rank, tied.alias).backward();
        out[rank].stats = sync.finish();
        EXPECT_FALSE(tied.alias.grad().defined());  // folded into the weight's gradient
      }
      for (const auto& p : net.parameters()) out[rank].grads.push_back(p.grad().clone());
    } catch (const std::exception& e) {
      out[rank].error = e.what();
    }
  };
  std::thread t1(rank_main, 1);
  rank_main(0);
  t1.join();
  ASSERT_EQ(out[0].error, "");
  ASSERT_EQ(out[1].error, "");
  for (size_t i = 0; i < alone[0].size(); ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i));
    const torch::Tensor mean = (alone[0][i] + alone[1][i]) / 2;
    EXPECT_TRUE(torch::allclose(out[0].grads[i], mean, 1e-5, 1e-7));
    EXPECT_TRUE(torch::equal(out[0].grads[i], out[1].grads[i]));
  }
  // Dense: the alias (300 x 256) and the layers; sparse: 40 row ids and rows per rank.
  const int64_t dense = 4 * (300 * 256 + 2 * (256 * 256 + 256)), sparse = 40 * (8 + 256 * 4);
  EXPECT_EQ(out[0].stats.bytes, dense + sparse);
  EXPECT_EQ(out[0].stats.started_in_backward, out[0].stats.buckets);  // every dense bucket, the alias's too
}

TEST(GradientSync, FinishWithoutArmIsAnError) {
  RankResult r0, r1;
  const int port = free_port();
  auto misuse = [port](int rank, RankResult& out) {  // both ranks connect, then call finish() unarmed
    try {
      DistEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.master_addr = "127.0.0.1";
      env.master_port = port;
      auto dist = Distributed::connect(env, "gloo", std::chrono::seconds(30), torch::kCPU);
      Net net;
      GradientSync sync(*dist, net.parameters());
      sync.finish();
    } catch (const std::exception& e) {
      out.error = e.what();
    }
  };
  std::thread t1([&] { misuse(1, r1); });
  misuse(0, r0);
  t1.join();
  EXPECT_NE(r0.error.find("without arm"), std::string::npos) << r0.error;
  EXPECT_NE(r1.error.find("without arm"), std::string::npos) << r1.error;
}

}  // namespace
}  // namespace bert::train
