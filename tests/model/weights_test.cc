// Weight I/O: strict loading, tied duplicates, dtype conversion, and parity with transformers in both
// directions (HF -> C++ and C++ -> HF) plus a bit-exact HF -> C++ -> HF round trip.
#include "model/weights.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "temp_dir.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace bert::model {
namespace {

namespace fs = std::filesystem;
using Tensors = std::map<std::string, torch::Tensor>;

BertConfig small_config() {
  BertConfig c;
  c.vocab_size = 31;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 24;
  c.max_position_embeddings = 20;
  return c;
}

Tensors state_of(BertForPreTraining& m) {
  Tensors s;
  for (const auto& p : m->named_parameters()) s[p.key()] = p.value().detach().clone();
  return s;
}

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<testing::TempDir>("bert_weights_test");
    dir_ = tmp_->path();
  }
  void TearDown() override {
    if (HasFailure()) tmp_->keep();
    tmp_.reset();
  }
  // Loading `file` into a fresh model must fail with Error(kInput) whose message has every `needle`;
  // the model must be left as it was.
  void expect_load_error(const fs::path& file, std::initializer_list<std::string> needles) {
    BertForPreTraining m(small_config(), 99);
    const auto before = state_of(m);
    try {
      load_weights(m, file);
      ADD_FAILURE() << "no error loading " << file;
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
      for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    }
    for (const auto& [k, v] : state_of(m)) EXPECT_TRUE(torch::equal(v, before.at(k))) << k << " changed";
  }
  std::unique_ptr<testing::TempDir> tmp_;
  fs::path dir_;
};

TEST_F(WeightsTest, SaveLoadRoundTrip) {
  BertForPreTraining a(small_config(), 1), b(small_config(), 2);
  const auto path = dir_ / "m.safetensors";
  save_weights(a, path);
  const auto file = load_tensors(path);
  EXPECT_EQ(file.size(), a->named_parameters().size());
  EXPECT_EQ(file.count("cls.predictions.decoder.weight"), 0u);  // tied: written once
  for (const auto& [k, v] : file) EXPECT_EQ(v.scalar_type(), torch::kFloat32) << k;
  load_weights(b, path);
  for (const auto& [k, v] : state_of(a)) EXPECT_TRUE(torch::equal(v, state_of(b).at(k))) << k;
  // pretrained dir: config.json + weights.
  save_pretrained(a, dir_ / "pre");
  auto c = load_pretrained(dir_ / "pre");
  EXPECT_EQ(c->config().intermediate_size, 24);
  for (const auto& [k, v] : state_of(a)) EXPECT_TRUE(torch::equal(v, state_of(c).at(k))) << k;
}

TEST_F(WeightsTest, LoadConvertsHalfPrecisionFiles) {
  BertForPreTraining a(small_config(), 1);
  for (auto dtype : {torch::kBFloat16, torch::kFloat16}) {
    Tensors half;
    for (auto& [k, v] : state_of(a)) half[k] = v.to(dtype);
    save_tensors(dir_ / "half.safetensors", half);
    BertForPreTraining b(small_config(), 2);
    load_weights(b, dir_ / "half.safetensors");
    for (const auto& [k, v] : state_of(b)) {
      EXPECT_EQ(v.scalar_type(), torch::kFloat32);
      EXPECT_TRUE(torch::equal(v, half.at(k).to(torch::kFloat32))) << k;
    }
  }
}

TEST_F(WeightsTest, TolerantOfTransformersDuplicatesOnly) {
  BertForPreTraining a(small_config(), 1);
  auto s = state_of(a);
  s["cls.predictions.decoder.weight"] = s["bert.embeddings.word_embeddings.weight"];
  s["cls.predictions.decoder.bias"] = s["cls.predictions.bias"];
  s["bert.embeddings.position_ids"] = torch::arange(20, torch::kLong).unsqueeze(0);
  save_tensors(dir_ / "dup.safetensors", s);
  BertForPreTraining b(small_config(), 2);
  EXPECT_NO_THROW(load_weights(b, dir_ / "dup.safetensors"));
  EXPECT_TRUE(torch::equal(b->word_embeddings(), a->word_embeddings()));

  auto untied = s;
  untied["cls.predictions.decoder.weight"] = s["bert.embeddings.word_embeddings.weight"] + 1;
  save_tensors(dir_ / "untied.safetensors", untied);
  expect_load_error(dir_ / "untied.safetensors", {"cls.predictions.decoder.weight", "untied"});
  auto bad_bias = s;
  bad_bias["cls.predictions.decoder.bias"] = torch::zeros({5});
  save_tensors(dir_ / "bias.safetensors", bad_bias);
  expect_load_error(dir_ / "bias.safetensors", {"cls.predictions.decoder.bias", "[5]"});
}

TEST_F(WeightsTest, KeyShapeAndDtypeErrorsNameFileAndKey) {
  BertForPreTraining a(small_config(), 1);
  const auto s = state_of(a);
  auto missing = s;
  missing.erase("bert.pooler.dense.weight");
  save_tensors(dir_ / "missing.safetensors", missing);
  expect_load_error(dir_ / "missing.safetensors", {"missing bert.pooler.dense.weight"});

  auto extra = s;
  extra["bert.encoder.layer.2.output.dense.bias"] = torch::zeros({16});
  save_tensors(dir_ / "extra.safetensors", extra);
  expect_load_error(dir_ / "extra.safetensors", {"unexpected bert.encoder.layer.2.output.dense.bias"});

  auto shape = s;
  shape["bert.encoder.layer.0.intermediate.dense.weight"] = torch::zeros({25, 16});
  save_tensors(dir_ / "shape.safetensors", shape);
  expect_load_error(dir_ / "shape.safetensors",
                    {"\"bert.encoder.layer.0.intermediate.dense.weight\"", "[25, 16]", "[24, 16]"});

  auto dtype = s;
  dtype["cls.predictions.bias"] = torch::zeros({31}, torch::kInt32);
  save_tensors(dir_ / "dtype.safetensors", dtype);
  expect_load_error(dir_ / "dtype.safetensors", {"\"cls.predictions.bias\"", "I32"});

  // A pre-LN file into a post-LN model: the hint points at config.json.
  BertConfig pre = small_config();
  pre.norm = "pre";
  BertForPreTraining p(pre, 1);
  save_weights(p, dir_ / "pre.safetensors");
  expect_load_error(dir_ / "pre.safetensors", {"unexpected bert.encoder.LayerNorm", "norm=\"pre\""});
}

TEST_F(WeightsTest, CorruptFilesAreInputErrors) {
  BertForPreTraining a(small_config(), 1);
  save_weights(a, dir_ / "good.safetensors");
  const std::string bytes = util::read_file(dir_ / "good.safetensors");
  util::write_file_atomic(dir_ / "truncated.safetensors", bytes.substr(0, bytes.size() - 100));
  expect_load_error(dir_ / "truncated.safetensors", {"run past the data section"});
  util::write_file_atomic(dir_ / "short.safetensors", bytes.substr(0, 5));
  expect_load_error(dir_ / "short.safetensors", {"shorter than the 8-byte header"});
  std::string garbled = bytes;
  garbled[8] = '#';  // the header's opening brace
  util::write_file_atomic(dir_ / "garbled.safetensors", garbled);
  expect_load_error(dir_ / "garbled.safetensors", {"invalid JSON"});
  expect_load_error(dir_ / "absent.safetensors", {"cannot open"});
}

// ---- Parity with transformers ----------------------------------------------------------------------

// Runs scripts/oracle/bert_oracle.py with `args`; returns its exit status and fills `output`.
int run_oracle(const std::string& args, const fs::path& log, std::string* output) {
  const char* py = std::getenv("BERT_PYTHON");
  if (py == nullptr || *py == '\0') {
    ADD_FAILURE() << "BERT_PYTHON is not set: the transformers oracle is required";
    return -1;
  }
  const std::string cmd = std::string(py) + " " + BERT_SOURCE_DIR + "/scripts/oracle/bert_oracle.py " +
                          args + " > " + log.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  *output = util::read_file(log);
  return rc;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

TEST_F(WeightsTest, ParityWithTransformersBothDirections) {
  std::string out;
  ASSERT_EQ(run_oracle("make " + dir_.string(), dir_ / "make.log", &out), 0) << out;

  // (a) transformers -> C++: same weights, same padded batch, eval mode.
  auto hf = load_pretrained(dir_ / "hf");
  hf->eval();
  const auto x = load_tensors(dir_ / "inputs.safetensors");
  const auto ref = load_tensors(dir_ / "hf_outputs.safetensors");
  const auto &ids = x.at("input_ids"), &types = x.at("token_type_ids"), &mask = x.at("attention_mask");
  const auto &labels = x.at("mlm_labels"), &nsp = x.at("nsp_labels");
  ASSERT_GT((mask == 0).sum().item<int64_t>(), 0) << "the batch must contain padding";
  torch::NoGradGuard no_grad;
  const auto [mlm, nsp_logits] = hf->logits(ids, types, mask);
  EXPECT_LT(max_abs_diff(mlm, ref.at("mlm_logits")), 1e-5);
  EXPECT_LT(max_abs_diff(nsp_logits, ref.at("nsp_logits")), 1e-5);
  const auto out_a = hf->forward(ids, types, mask, labels, nsp);
  EXPECT_NEAR(out_a.loss.item<double>(), ref.at("loss").item<double>(), 1e-5);
  EXPECT_NEAR(out_a.mlm_loss.item<double>(), ref.at("mlm_loss").item<double>(), 1e-5);
  EXPECT_NEAR(out_a.nsp_loss.item<double>(), ref.at("nsp_loss").item<double>(), 1e-5);
  const auto sel = (labels.reshape(-1) != -100).nonzero().squeeze(1);
  EXPECT_LT(max_abs_diff(out_a.mlm_logits, ref.at("mlm_logits").reshape({-1, 99}).index_select(0, sel)), 1e-5);
  std::cout << "HF->C++ max |diff|: mlm " << max_abs_diff(mlm, ref.at("mlm_logits")) << ", nsp "
            << max_abs_diff(nsp_logits, ref.at("nsp_logits")) << ", loss "
            << std::abs(out_a.loss.item<double>() - ref.at("loss").item<double>()) << "\n";

  // Round trip: HF file -> C++ load -> C++ save; the oracle compares tensors bit for bit.
  fs::create_directories(dir_ / "roundtrip");
  save_weights(hf, dir_ / "roundtrip" / "model.safetensors");

  // (b) C++ -> transformers: our own init (perturbed off BERT's init so biases/LayerNorms matter).
  BertForPreTraining ours(hf->config(), 1234);
  {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(77);
    for (auto& p : ours->parameters()) p.add_(torch::randn(p.sizes(), gen) * 0.2);
  }
  ours->eval();
  save_pretrained(ours, dir_ / "cpp");
  const auto [m2, n2] = ours->logits(ids, types, mask);
  const auto out_b = ours->forward(ids, types, mask, labels, nsp);
  save_tensors(dir_ / "cpp_outputs.safetensors", {{"mlm_logits", m2}, {"nsp_logits", n2},
                                                  {"loss", out_b.loss}, {"mlm_loss", out_b.mlm_loss},
                                                  {"nsp_loss", out_b.nsp_loss}});
  const int rc = run_oracle("check " + dir_.string(), dir_ / "check.log", &out);
  std::cout << "oracle check: " << out.substr(out.rfind('{') == std::string::npos ? 0 : out.rfind('{'));
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace bert::model
