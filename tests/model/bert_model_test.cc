// BertForPreTraining numerics: HF names, init, masked-only loss, gradients (finite differences),
// overfitting a batch, padding, dropout, bf16 autocast.
#include "model/bert_model.h"

#include <gtest/gtest.h>

#include <set>

#include "model/autocast.h"
#include "util/error.h"

namespace bert::model {
namespace {

BertConfig tiny_config(const std::string& norm = "post") {
  BertConfig c;
  c.vocab_size = 23;
  c.hidden_size = 8;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 12;
  c.max_position_embeddings = 16;
  c.hidden_dropout = 0.0;
  c.attention_dropout = 0.0;
  c.norm = norm;
  return c;
}

// A padded batch: row 1 has 2 padding positions. Labels at a few real positions.
struct Inputs {
  torch::Tensor ids, types, mask, labels, nsp;
};
Inputs tiny_inputs(int64_t vocab, int64_t batch = 2, int64_t seq = 6, uint64_t seed = 3) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Inputs x;
  x.ids = torch::randint(1, vocab, {batch, seq}, gen, torch::kLong);
  x.types = torch::zeros({batch, seq}, torch::kLong);
  x.types.narrow(1, seq / 2, seq - seq / 2).fill_(1);
  x.mask = torch::ones({batch, seq}, torch::kLong);
  x.mask[1].narrow(0, seq - 2, 2).fill_(0);
  x.ids.masked_fill_(x.mask == 0, 0);
  x.labels = torch::full({batch, seq}, -100, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    x.labels[b][1] = (3 * b + 5) % vocab;
    x.labels[b][3] = (7 * b + 2) % vocab;
  }
  x.nsp = torch::arange(batch, torch::kLong) % 2;
  return x;
}

// Moves every parameter away from the HF init (biases 0, LayerNorm 1 would hide wiring mistakes).
void perturb(BertForPreTraining& m, uint64_t seed, double scale = 0.3) {
  torch::NoGradGuard g;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : m->parameters()) {
    p.add_(torch::randn(p.sizes(), gen, torch::kFloat64).to(p.dtype()) * scale);
  }
}

TEST(BertModel, ParameterNamesAreTransformersKeys) {
  BertForPreTraining m(tiny_config());
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  std::set<std::string> expect = {
      "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
      "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
      "bert.embeddings.LayerNorm.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias",
      "cls.predictions.bias", "cls.predictions.transform.dense.weight",
      "cls.predictions.transform.dense.bias", "cls.predictions.transform.LayerNorm.weight",
      "cls.predictions.transform.LayerNorm.bias", "cls.seq_relationship.weight",
      "cls.seq_relationship.bias"};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    for (const char* s : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                          "output.dense", "output.LayerNorm"}) {
      expect.insert(p + s + ".weight");
      expect.insert(p + s + ".bias");
    }
  }
  EXPECT_EQ(names, expect);
  EXPECT_EQ(m->named_buffers().size(), 0u);
  auto params = m->named_parameters();
  EXPECT_EQ(params["bert.encoder.layer.1.intermediate.dense.weight"].sizes(), (c10::IntArrayRef{12, 8}));
  EXPECT_EQ(params["bert.encoder.layer.1.output.dense.weight"].sizes(), (c10::IntArrayRef{8, 12}));
  EXPECT_EQ(params["cls.predictions.bias"].sizes(), (c10::IntArrayRef{23}));

  BertForPreTraining pre(tiny_config("pre"));
  auto pre_params = pre->named_parameters();
  EXPECT_EQ(pre_params.size(), expect.size() + 2);
  EXPECT_TRUE(pre_params.contains("bert.encoder.LayerNorm.weight"));
  EXPECT_TRUE(pre_params.contains("bert.encoder.LayerNorm.bias"));
}

TEST(BertModel, InitFollowsBertScheme) {
  BertConfig c = tiny_config();
  c.vocab_size = 2000;
  c.hidden_size = 64;
  c.num_heads = 4;
  c.pad_token_id = 5;
  BertForPreTraining a(c, 11), b(c, 11), other(c, 12);
  auto pa = a->named_parameters(), pb = b->named_parameters(), po = other->named_parameters();
  for (const auto& item : pa) {
    const std::string& k = item.key();
    EXPECT_TRUE(torch::equal(item.value(), pb[k])) << k << " differs for the same seed";
    if (k.find("LayerNorm.weight") != std::string::npos) {
      EXPECT_TRUE(torch::all(item.value() == 1).item<bool>()) << k;
    } else if (k.size() >= 4 && k.compare(k.size() - 4, 4, "bias") == 0) {
      EXPECT_TRUE(torch::all(item.value() == 0).item<bool>()) << k;
    } else {
      EXPECT_FALSE(torch::equal(item.value(), po[k])) << k << " equal for different seeds";
    }
  }
  const auto w = pa["bert.embeddings.word_embeddings.weight"];
  EXPECT_TRUE(torch::all(w[5] == 0).item<bool>());
  EXPECT_FALSE(torch::all(w[4] == 0).item<bool>());
  EXPECT_NEAR(w.std().item<double>(), 0.02, 0.0005);  // 128k draws
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.0005);
  // init_weights re-draws the same weights for the same seed.
  perturb(a, 1);
  a->init_weights(11);
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
}

TEST(BertModel, MaskedOnlyLossEqualsFullLogitsLoss) {
  for (const std::string norm : {"post", "pre"}) {
    BertForPreTraining m(tiny_config(norm), 5);
    perturb(m, 6);
    m->eval();
    const auto x = tiny_inputs(23, 3, 7);
    const auto out = m->forward(x.ids, x.types, x.mask, x.labels, x.nsp);
    const auto [full, nsp] = m->logits(x.ids, x.types, x.mask);  // [B, T, V], [B, 2]
    ASSERT_EQ(full.sizes(), (c10::IntArrayRef{3, 7, 23}));
    const auto ref = torch::nn::functional::cross_entropy(full.reshape({-1, 23}), x.labels.reshape(-1));
    EXPECT_NEAR(out.mlm_loss.item<double>(), ref.item<double>(), 1e-6) << norm;
    // The N gathered rows are exactly the full logits at the labelled positions, in row-major order.
    const auto sel = (x.labels.reshape(-1) != -100).nonzero().squeeze(1);
    ASSERT_EQ(out.mlm_logits.size(0), 6);
    EXPECT_TRUE(torch::allclose(out.mlm_logits, full.reshape({-1, 23}).index_select(0, sel), 1e-6, 1e-6));
    EXPECT_TRUE(torch::equal(out.mlm_targets, x.labels.reshape(-1).index_select(0, sel)));
    EXPECT_TRUE(torch::allclose(out.nsp_logits, nsp, 1e-6, 1e-6));
    const auto nsp_ref = torch::nn::functional::cross_entropy(nsp, x.nsp);
    EXPECT_NEAR(out.nsp_loss.item<double>(), nsp_ref.item<double>(), 1e-6);
    EXPECT_NEAR(out.loss.item<double>(), ref.item<double>() + nsp_ref.item<double>(), 1e-5);
    EXPECT_EQ(out.loss.scalar_type(), torch::kFloat32);
  }
}

TEST(BertModel, NspLossOnlyWithLabels) {
  BertForPreTraining m(tiny_config(), 5);
  const auto x = tiny_inputs(23);
  const auto none = m->forward(x.ids, x.types, x.mask, x.labels);
  EXPECT_FALSE(none.nsp_loss.defined());
  EXPECT_FALSE(none.nsp_logits.defined());
  const auto ignored = m->forward(x.ids, x.types, x.mask, x.labels, torch::full({2}, -100, torch::kLong));
  EXPECT_FALSE(ignored.nsp_loss.defined());
  EXPECT_EQ(ignored.loss.item<float>(), ignored.mlm_loss.item<float>());
  // Without NSP the pooler and NSP head get no gradient; with it they do.
  ignored.loss.backward();
  auto params = m->named_parameters();
  EXPECT_FALSE(params["bert.pooler.dense.weight"].grad().defined());
  EXPECT_TRUE(params["cls.predictions.bias"].grad().defined());
  m->forward(x.ids, x.types, x.mask, x.labels, x.nsp).loss.backward();
  EXPECT_TRUE(params["cls.seq_relationship.weight"].grad().defined());
}

TEST(BertModel, NoPredictedPositionsGivesZeroLoss) {
  BertForPreTraining m(tiny_config(), 5);
  const auto x = tiny_inputs(23);
  const auto out = m->forward(x.ids, x.types, x.mask, torch::full({2, 6}, -100, torch::kLong));
  EXPECT_EQ(out.mlm_logits.size(0), 0);
  EXPECT_EQ(out.mlm_loss.item<float>(), 0.0f);
  EXPECT_NO_THROW(out.loss.backward());
}

TEST(BertModel, PaddingDoesNotLeakIntoRealPositions) {
  BertForPreTraining m(tiny_config(), 5);
  perturb(m, 9);
  m->eval();
  const auto x = tiny_inputs(23);
  const auto [a, na] = m->logits(x.ids, x.types, x.mask);
  auto ids2 = x.ids.clone();
  ids2[1][4] = 17;  // padded positions of row 1
  ids2[1][5] = 9;
  const auto [b, nb] = m->logits(ids2, x.types, x.mask);
  EXPECT_TRUE(torch::allclose(a[1].narrow(0, 0, 4), b[1].narrow(0, 0, 4), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(na, nb, 1e-6, 1e-6));
  // ...whereas without the mask the change is visible: the mask is what isolates them.
  const auto [c, nc] = m->logits(ids2, x.types, torch::ones_like(x.mask));
  const auto [d, nd] = m->logits(x.ids, x.types, torch::ones_like(x.mask));
  EXPECT_GT((c[1].narrow(0, 0, 4) - d[1].narrow(0, 0, 4)).abs().max().item<double>(), 1e-4);
}

TEST(BertModel, DropoutOnlyInTraining) {
  BertConfig c = tiny_config();
  c.hidden_dropout = 0.1;
  c.attention_dropout = 0.1;
  BertForPreTraining m(c, 5);
  const auto x = tiny_inputs(23);
  m->eval();
  const auto e1 = m->forward(x.ids, x.types, x.mask, x.labels).loss.item<double>();
  const auto e2 = m->forward(x.ids, x.types, x.mask, x.labels).loss.item<double>();
  EXPECT_EQ(e1, e2);
  m->train();
  torch::manual_seed(1);
  const auto t1 = m->forward(x.ids, x.types, x.mask, x.labels).loss.item<double>();
  const auto t2 = m->forward(x.ids, x.types, x.mask, x.labels).loss.item<double>();
  torch::manual_seed(1);
  const auto t3 = m->forward(x.ids, x.types, x.mask, x.labels).loss.item<double>();
  EXPECT_NE(t1, e1);
  EXPECT_NE(t1, t2);
  EXPECT_EQ(t1, t3);  // dropout draws from torch's seeded default generator
}

TEST(BertModel, RejectsBadShapes) {
  BertForPreTraining m(tiny_config(), 5);
  const auto long_ids = torch::ones({1, 17}, torch::kLong);
  try {
    m->logits(long_ids, {}, {});
    FAIL() << "no error for a sequence longer than max_position_embeddings";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("max_position_embeddings 16"), std::string::npos) << e.what();
  }
  const auto x = tiny_inputs(23);
  EXPECT_THROW(m->forward(x.ids, x.types, x.mask.narrow(1, 0, 5), x.labels), util::Error);
  EXPECT_THROW(m->forward(x.ids, x.types, x.mask, x.labels, torch::zeros({3}, torch::kLong)), util::Error);
  BertConfig bad = tiny_config();
  bad.num_heads = 3;
  EXPECT_THROW(BertForPreTraining{bad}, util::Error);
}

// Central finite differences in double precision vs autograd, for entries of several parameters.
TEST(BertModel, GradientsMatchFiniteDifferences) {
  for (const std::string norm : {"post", "pre"}) {
    BertForPreTraining m(tiny_config(norm), 21);
    m->to(torch::kFloat64);
    perturb(m, 22);
    m->eval();
    const auto x = tiny_inputs(23);
    auto loss_of = [&] { return m->forward(x.ids, x.types, x.mask, x.labels, x.nsp).loss; };
    m->zero_grad();
    loss_of().backward();
    auto params = m->named_parameters();
    const char* checked[] = {
        "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.attention.self.key.bias",
        "bert.encoder.layer.1.attention.self.value.weight", "bert.encoder.layer.0.attention.output.dense.weight",
        "bert.encoder.layer.1.attention.output.LayerNorm.bias", "bert.encoder.layer.0.intermediate.dense.weight",
        "bert.encoder.layer.1.output.dense.bias", "bert.encoder.layer.1.output.LayerNorm.weight",
        "bert.pooler.dense.weight", "cls.predictions.bias", "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.LayerNorm.weight", "cls.seq_relationship.bias"};
    torch::NoGradGuard no_grad;
    const double eps = 1e-6;
    for (const char* name : checked) {
      auto p = params[name];
      auto flat = p.view(-1);
      auto grad = p.grad().view(-1);
      for (int64_t i : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
        const double orig = flat[i].item<double>();
        flat[i] = orig + eps;
        const double up = loss_of().item<double>();
        flat[i] = orig - eps;
        const double down = loss_of().item<double>();
        flat[i] = orig;
        const double fd = (up - down) / (2 * eps);
        const double ag = grad[i].item<double>();
        EXPECT_NEAR(ag, fd, 1e-7 + 1e-5 * std::abs(fd)) << norm << " " << name << "[" << i << "]";
      }
    }
  }
}

TEST(BertModel, OverfitsOneBatch) {
  BertConfig c = tiny_config();
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.num_heads = 4;
  c.intermediate_size = 64;
  BertForPreTraining m(c, 31);
  const auto x = tiny_inputs(40, 4, 10);
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    auto loss = m->forward(x.ids, x.types, x.mask, x.labels, x.nsp).loss;
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_GT(first, 3.0);   // ~ln(40) + ln(2)
  EXPECT_LT(last, 0.02);
}

TEST(BertModel, Bf16AutocastRunsAndStaysCloseToFp32) {
  BertConfig c = tiny_config();
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.num_heads = 4;
  c.intermediate_size = 128;
  BertForPreTraining m(c, 41);
  perturb(m, 42, 0.02);
  m->eval();
  const auto x = tiny_inputs(300, 4, 12);
  const auto ref = m->forward(x.ids, x.types, x.mask, x.labels, x.nsp);
  const auto [ref_full, ref_nsp] = m->logits(x.ids, x.types, x.mask);
  PretrainingOutput low;
  torch::Tensor low_full;
  {
    AutocastScope autocast(torch::kCPU, torch::kBFloat16);
    low = m->forward(x.ids, x.types, x.mask, x.labels, x.nsp);
    low_full = m->logits(x.ids, x.types, x.mask).first;
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(torch::kCPU));
  EXPECT_EQ(low.loss.scalar_type(), torch::kFloat32);
  EXPECT_EQ(low.mlm_logits.scalar_type(), torch::kBFloat16);  // the loss reads them in fp32
  // bf16 has 8 mantissa bits: relative error ~1e-2, but it must not be garbage either.
  const double scale = ref_full.abs().max().item<double>();
  const double diff = (low_full - ref_full).abs().max().item<double>();
  EXPECT_GT(diff, 0.0);  // autocast really ran in bf16
  EXPECT_LT(diff, 0.05 * scale);
  EXPECT_NEAR(low.loss.item<double>(), ref.loss.item<double>(), 0.02 * ref.loss.item<double>());
  m->zero_grad();
  low.loss.backward();
  for (const auto& p : m->parameters()) {
    if (!p.grad().defined()) continue;
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
  }
}

TEST(BertModel, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  BertForPreTraining m(tiny_config(), 5);
  perturb(m, 6);
  m->eval();
  const auto x = tiny_inputs(23);
  const auto cpu = m->forward(x.ids, x.types, x.mask, x.labels, x.nsp);
  m->to(torch::kCUDA);
  const auto dev = torch::Device(torch::kCUDA);
  const auto gpu = m->forward(x.ids.to(dev), x.types.to(dev), x.mask.to(dev), x.labels.to(dev), x.nsp.to(dev));
  EXPECT_NEAR(gpu.loss.item<double>(), cpu.loss.item<double>(), 1e-4);
  EXPECT_TRUE(torch::allclose(gpu.mlm_logits.cpu(), cpu.mlm_logits, 1e-4, 1e-4));
  {
    AutocastScope autocast(torch::kCUDA, torch::kBFloat16);
    const auto low = m->forward(x.ids.to(dev), x.types.to(dev), x.mask.to(dev), x.labels.to(dev), x.nsp.to(dev));
    EXPECT_NEAR(low.loss.item<double>(), cpu.loss.item<double>(), 0.05 * cpu.loss.item<double>());
    low.loss.backward();
  }
}

// A head size the fused CUDA kernels take (64): in bf16 an unpadded batch runs on flash, a padded one
// on memory-efficient attention (runtime.attention_backend "auto"); both against the CPU in fp32.
TEST(BertModel, CudaMatchesCpuOnFusedKernels) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  BertConfig c = tiny_config();
  c.hidden_size = 128;
  c.num_heads = 2;
  c.intermediate_size = 256;
  c.max_position_embeddings = 64;
  BertForPreTraining m(c, 5);
  perturb(m, 6);
  m->eval();
  const auto dev = torch::Device(torch::kCUDA);
  for (bool padded : {false, true}) {
    m->to(torch::kCPU);
    auto x = tiny_inputs(23, 4, 48, 29);
    if (!padded) {
      x.mask.fill_(1);
      x.ids.masked_fill_(x.ids == 0, 1);
    }
    const auto cpu = m->forward(x.ids, x.types, x.mask, x.labels, x.nsp);
    m->to(dev);
    AutocastScope autocast(torch::kCUDA, torch::kBFloat16);
    const auto gpu = m->forward(x.ids.to(dev), x.types.to(dev), x.mask.to(dev), x.labels.to(dev), x.nsp.to(dev));
    EXPECT_NEAR(gpu.loss.item<double>(), cpu.loss.item<double>(), 0.05 * cpu.loss.item<double>()) << "padded " << padded;
    gpu.loss.backward();
  }
}

}  // namespace
}  // namespace bert::model
