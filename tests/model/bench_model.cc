// Micro-benchmark: training-step throughput (forward + backward + AdamW) of BERT sizes, fp32 and bf16
// autocast, on random full-length batches with 15% predicted positions and NSP labels -- the same
// work as scripts/bench_train_hf.py does with transformers, so the two lines compare directly.
#include <CLI/CLI.hpp>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <sstream>

#include "model/autocast.h"
#include "model/bert_model.h"
#include "util/allocator.h"

namespace {

using bert::model::BertConfig;
using bert::model::BertForPreTraining;

BertConfig named_config(const std::string& name, int vocab, int seq) {
  BertConfig c;
  c.vocab_size = vocab;
  c.max_position_embeddings = std::max(512, seq);
  if (name == "tiny") { c.num_layers = 2; c.hidden_size = 128; c.num_heads = 2; }
  else if (name == "mini") { c.num_layers = 4; c.hidden_size = 256; c.num_heads = 4; }
  else if (name == "small") { c.num_layers = 4; c.hidden_size = 512; c.num_heads = 8; }
  else if (name == "medium") { c.num_layers = 8; c.hidden_size = 512; c.num_heads = 8; }
  else if (name == "base") { c.num_layers = 12; c.hidden_size = 768; c.num_heads = 12; }
  else throw std::runtime_error("unknown model size " + name);
  c.intermediate_size = 4 * c.hidden_size;
  return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The instruction-level ceiling of this CPU: 12 independent chains of 512-bit fp32 FMAs
// (32 FLOP each) vs bf16 dot-products VDPBF16PS (64 FLOP each), per thread. Whatever a library
// does, bf16 matmul cannot beat fp32 matmul by more than the ratio of these two.
__attribute__((target("avx512f,avx512bf16"))) double fma_loop(long n, bool bf16) {
  __m512 acc[12];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512 x = _mm512_set1_ps(1.0001f), y = _mm512_set1_ps(0.9999f);
  const __m512bh bx = (__m512bh)_mm512_set1_epi16(0x3f80);
  for (long i = 0; i < n; ++i) {
    if (bf16) {
      for (auto& a : acc) a = _mm512_dpbf16_ps(a, bx, bx);
    } else {
      for (auto& a : acc) a = _mm512_fmadd_ps(x, y, a);
    }
  }
  float sum = 0;
  for (auto& a : acc) sum += _mm512_reduce_add_ps(a);
  return sum;  // keeps the loop alive
}

// GFLOP/s of `threads` threads running fma_loop at once; 0 when the CPU lacks AVX-512 BF16.
double instruction_peak(int threads, bool bf16) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16")) return 0.0;
  const long n = 50'000'000;
  std::vector<std::thread> pool;
  std::vector<double> sink(threads);
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink[t] = fma_loop(n, bf16); });
  for (auto& th : pool) th.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(n) * 12 * (bf16 ? 64 : 32) * threads / secs / 1e9 + 0 * sink[0];
}
#else
double instruction_peak(int, bool) { return 0.0; }
#endif

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bert::util::tune_allocator();
  CLI::App app("bench_model: BERT training-step tokens/s (forward + backward + AdamW)");
  std::string models = "tiny,mini,small", dtypes = "fp32,bf16", device_name = "cpu";
  int seq = 128, batch = 32, vocab = 30522, steps = 5, warmup = 2, threads = 2;
  double mask_prob = 0.15;
  bool json = false, hw_peak = false;
  std::string profile;
  app.add_option("--models", models, "comma-separated: tiny,mini,small,medium,base");
  app.add_option("--dtypes", dtypes, "comma-separated: fp32,bf16");
  app.add_option("--seq", seq, "sequence length");
  app.add_option("--batch", batch, "batch size");
  app.add_option("--vocab", vocab, "vocabulary size");
  app.add_option("--steps", steps, "timed steps");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--threads", threads, "torch intra-op threads (0 = leave as is)");
  app.add_option("--mask-prob", mask_prob, "fraction of positions predicted");
  app.add_option("--device", device_name, "cpu or cuda");
  app.add_flag("--json", json, "print one JSON object per line");
  app.add_flag("--hw-peak", hw_peak, "only measure the FMA vs bf16-dot instruction peak of --threads threads");
  app.add_option("--profile", profile, "write a chrome trace of the timed steps of the last run here");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) torch::set_num_threads(threads);
  const torch::Device device(device_name);
  if (hw_peak) {
    const int n = threads > 0 ? threads : 1;
    const double fp32 = instruction_peak(n, false), bf16 = instruction_peak(n, true);
    std::cout << "{\"impl\": \"hw\", \"threads\": " << n << ", \"fp32_fma_gflops\": " << fp32
              << ", \"bf16_dot_gflops\": " << bf16 << "}" << std::endl;
    return 0;
  }

  for (const auto& name : split(models)) {
    for (const auto& dtype : split(dtypes)) {
      BertForPreTraining model(named_config(name, vocab, seq), 1);
      model->to(device);
      model->train();
      torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.01));
      torch::manual_seed(0);
      auto ids = torch::randint(5, vocab, {batch, seq}, torch::kLong);
      auto types = torch::zeros({batch, seq}, torch::kLong);
      types.narrow(1, seq / 2, seq - seq / 2).fill_(1);
      auto mask = torch::ones({batch, seq}, torch::kLong);
      auto labels = torch::where(torch::rand({batch, seq}) < mask_prob, ids, torch::full_like(ids, -100));
      auto nsp = torch::randint(0, 2, {batch}, torch::kLong);
      ids = ids.to(device), types = types.to(device), mask = mask.to(device);
      labels = labels.to(device), nsp = nsp.to(device);

      auto step = [&] {
        opt.zero_grad();
        bert::model::PretrainingOutput out;
        if (dtype == "bf16") {
          bert::model::AutocastScope autocast(device.type(), torch::kBFloat16);
          out = model->forward(ids, types, mask, labels, nsp);
        } else {
          out = model->forward(ids, types, mask, labels, nsp);
        }
        out.loss.backward();
        opt.step();
        return out.loss.item<double>();
      };
      for (int i = 0; i < warmup; ++i) step();
      if (device.is_cuda()) torch::cuda::synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      double loss = 0;
      {
        namespace prof = torch::profiler::impl;
        const prof::ProfilerConfig config(prof::ProfilerState::KINETO, /*report_input_shapes=*/true);
        const std::set<prof::ActivityType> cpu{prof::ActivityType::CPU};
        if (!profile.empty()) {
          torch::autograd::profiler::prepareProfiler(config, cpu);
          torch::autograd::profiler::enableProfiler(config, cpu);
        }
        for (int i = 0; i < steps; ++i) loss = step();
        if (!profile.empty()) torch::autograd::profiler::disableProfiler()->save(profile);
      }
      if (device.is_cuda()) torch::cuda::synchronize();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      // Process CPU time per step: on a shared machine it is steadier than wall time (it does not
      // count time other processes hold the cores), so compare it too.
      const double cpu_ms = 1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / steps;
      const double tps = static_cast<double>(steps) * batch * seq / secs;
      if (json) {
        std::cout << "{\"impl\": \"cpp\", \"model\": \"" << name << "\", \"dtype\": \"" << dtype
                  << "\", \"seq\": " << seq << ", \"batch\": " << batch << ", \"threads\": "
                  << torch::get_num_threads() << ", \"ms_per_step\": " << 1000 * secs / steps
                  << ", \"cpu_ms_per_step\": " << cpu_ms << ", \"tokens_per_s\": " << tps << ", \"loss\": " << loss << "}" << std::endl;
      } else {
        std::cout << std::fixed << std::setprecision(1) << "cpp  " << std::setw(6) << name << " "
                  << std::setw(4) << dtype << " seq " << seq << " batch " << batch << " threads "
                  << torch::get_num_threads() << ": " << std::setw(8) << 1000 * secs / steps
                  << " ms/step " << std::setw(9) << tps << " tokens/s " << std::setw(8) << cpu_ms
                  << " cpu-ms/step (loss " << std::setprecision(3)
                  << loss << ")" << std::endl;
      }
    }
  }
  return 0;
}
