// model.init = "local": every layer's heads start on their neighbour offsets, checked by
// computing the attention scores by hand from the initialised weights (embeddings, LayerNorm,
// query/key projections), not through the model's own forward.
#include "model/local_init.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/bert_model.h"
#include "util/error.h"

namespace bert::model {
namespace {

BertConfig small_config(const std::string& init, int hidden = 128, int heads = 2) {
  BertConfig c;
  c.vocab_size = 500;
  c.hidden_size = hidden;
  c.num_layers = 2;
  c.num_heads = heads;
  c.intermediate_size = 2 * hidden;
  c.max_position_embeddings = 96;
  c.hidden_dropout = 0.0;
  c.attention_dropout = 0.0;
  c.init = init;
  return c;
}

// For each head of layer 0: the share of query positions p (with p + offset inside the sequence)
// whose highest-scoring key is p + local_head_offset(head).
std::vector<double> share_on_offset(BertForPreTraining& m, const BertConfig& c, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto params = m->named_parameters();
  const int64_t seq = c.max_position_embeddings, hidden = c.hidden_size, d = hidden / c.num_heads;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto ids = torch::randint(5, c.vocab_size, {seq}, gen, torch::kLong);
  auto x = params["bert.embeddings.word_embeddings.weight"].index_select(0, ids) +
           params["bert.embeddings.position_embeddings.weight"].narrow(0, 0, seq) +
           params["bert.embeddings.token_type_embeddings.weight"][0];
  x = torch::layer_norm(x, {hidden}, params["bert.embeddings.LayerNorm.weight"],
                        params["bert.embeddings.LayerNorm.bias"], c.layer_norm_eps);  // [T, H]
  const std::string self = "bert.encoder.layer.0.attention.self.";
  const auto q = torch::linear(x, params[self + "query.weight"], params[self + "query.bias"]);  // [T, H]
  const auto k = torch::linear(x, params[self + "key.weight"], params[self + "key.bias"]);      // [T, H]
  std::vector<double> out;
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const auto scores = q.narrow(1, h * d, d).matmul(k.narrow(1, h * d, d).t());  // [T, T]
    const auto best = scores.argmax(1);
    const int64_t off = local_head_offset(h);
    int64_t hit = 0, n = 0;
    for (int64_t p = 0; p < seq; ++p) {
      if (p + off < 0 || p + off >= seq) continue;
      ++n;
      hit += best[p].item<int64_t>() == p + off;
    }
    out.push_back(static_cast<double>(hit) / static_cast<double>(n));
  }
  return out;
}

TEST(LocalInit, HeadOffsetsAlternateLeftAndRight) {
  const std::vector<int64_t> want = {-1, 1, -2, 2, -3, 3, -4, 4, -1, 1};
  for (int64_t h = 0; h < 10; ++h) EXPECT_EQ(local_head_offset(h), want[static_cast<size_t>(h)]) << h;
}

TEST(LocalInit, FirstLayerHeadsAttendToTheirNeighbour) {
  for (int heads : {2, 4}) {
    BertConfig c = small_config("local", 128, heads);
    BertForPreTraining m(c, 11);
    for (double share : share_on_offset(m, c, 5)) EXPECT_GE(share, 0.95) << heads << " heads";
  }
}

// Every later layer starts local too, on the offsets that follow the first layer's: layer l's head h
// on local_head_offset(l * heads + h). Checked on the normalised position vectors alone (what the
// positional columns of the residual stream carry), through layer l's own query/key weights.
TEST(LocalInit, LaterLayersContinueTheOffsets) {
  torch::NoGradGuard no_grad;
  BertConfig c = small_config("local", 128, 2);
  c.num_layers = 3;
  BertForPreTraining m(c, 11);
  auto params = m->named_parameters();
  const int64_t seq = c.max_position_embeddings, d = c.hidden_size / c.num_heads;
  const auto x = torch::layer_norm(params["bert.embeddings.position_embeddings.weight"], {c.hidden_size});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string self = "bert.encoder.layer." + std::to_string(l) + ".attention.self.";
    const auto q = torch::linear(x, params[self + "query.weight"], params[self + "query.bias"]);
    const auto k = torch::linear(x, params[self + "key.weight"], params[self + "key.bias"]);
    for (int64_t h = 0; h < c.num_heads; ++h) {
      const int64_t off = local_head_offset(l * c.num_heads + h);
      const auto best = q.narrow(1, h * d, d).matmul(k.narrow(1, h * d, d).t()).argmax(1);
      int64_t hit = 0, n = 0;
      for (int64_t p = 0; p < seq; ++p) {
        if (p + off < 0 || p + off >= seq) continue;
        ++n;
        hit += best[p].item<int64_t>() == p + off;
      }
      EXPECT_GE(static_cast<double>(hit) / static_cast<double>(n), 0.95) << "layer " << l << " head " << h << " offset " << off;
    }
  }
}

TEST(LocalInit, NormalInitHasNoSuchPreference) {
  BertConfig c = small_config("normal");
  BertForPreTraining m(c, 11);
  for (double share : share_on_offset(m, c, 5)) EXPECT_LE(share, 0.2);
}

TEST(LocalInit, PositionsAreSinusoidsWithATokensNorm) {
  BertConfig c = small_config("local");
  BertForPreTraining m(c, 11);
  auto params = m->named_parameters();
  const auto pos = params["bert.embeddings.position_embeddings.weight"];  // [P, H]
  const int64_t d = c.hidden_size / c.num_heads;
  // Only the first head_size columns are used, each (cos, sin) pair has norm 1 before scaling.
  EXPECT_EQ(pos.narrow(1, d, c.hidden_size - d).abs().max().item<float>(), 0.0f);
  const double scale = c.initializer_range * std::sqrt(double(c.hidden_size)) / std::sqrt(double(d / 2));
  const auto pairs = pos.narrow(1, 0, d).view({c.max_position_embeddings, d / 2, 2});
  const auto pair_norm = pairs.pow(2).sum(2).sqrt();  // [P, K]
  EXPECT_TRUE(torch::allclose(pair_norm, torch::full_like(pair_norm, scale), 1e-4, 1e-6));
  // Position 0 is (1, 0) in every pair; everything but the positions and the query/key projections
  // is the normal init.
  EXPECT_TRUE(torch::allclose(pairs[0].select(1, 0), torch::full({d / 2}, scale), 1e-5, 1e-7));
  for (const std::string l : {"0", "1"}) {
    const auto v = params["bert.encoder.layer." + l + ".attention.self.value.weight"];
    EXPECT_NEAR(v.std().item<double>(), c.initializer_range, 0.002);
    const auto ffn = params["bert.encoder.layer." + l + ".intermediate.dense.weight"];
    EXPECT_NEAR(ffn.std().item<double>(), c.initializer_range, 0.002);
  }
}

TEST(LocalInit, NeedsAHeadSizeOfTwo) {
  BertConfig c = small_config("local", 4, 4);  // head size 1
  c.vocab_size = 30;
  try {
    c.validate();
    ADD_FAILURE() << "head size 1 accepted";
  } catch (const util::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.init"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bert::model
