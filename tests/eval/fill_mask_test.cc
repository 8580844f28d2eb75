// Fill-mask: encoding around literal [MASK] tokens, and top-k probabilities equal to a manual
// softmax of the model's full logits.
#include "eval/fill_mask.h"

#include <gtest/gtest.h>

#include "eval_fixtures.h"
#include "util/error.h"

namespace bert::eval {
namespace {

namespace fs = std::filesystem;
using namespace testing;

class FillMaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto vocab = write_vocab(dir_ / "vocab");
    auto m = perturbed_model(vocab->size(), 21);
    save_tiny_checkpoint(dir_ / "run", m, *vocab, 1);
    model_ = load_model(dir_ / "run", torch::kCPU);
    tokenizer_ = std::make_unique<wordpiece::Tokenizer>(model_.vocab);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::vector<int32_t> ids(const std::string& text) { return tokenizer_->encode_ids(text); }
  fs::path dir_;
  LoadedModel model_;
  std::unique_ptr<wordpiece::Tokenizer> tokenizer_;
};

TEST_F(FillMaskTest, MaskTokenStaysOneTokenWherever) {
  const auto& v = *model_.vocab;
  std::vector<int32_t> expect = {v.cls_id()};
  for (int32_t i : ids("Ala ma")) expect.push_back(i);
  expect.push_back(v.mask_id());
  for (int32_t i : ids("kota.")) expect.push_back(i);
  expect.push_back(v.sep_id());
  EXPECT_EQ(encode_with_masks(*tokenizer_, "Ala ma [MASK] kota."), expect);
  // Glued to words and at both ends; the tokenizer alone would split "[MASK]" into pieces.
  EXPECT_NE(ids("[MASK]"), std::vector<int32_t>{v.mask_id()});
  std::vector<int32_t> two = encode_with_masks(*tokenizer_, "[MASK]cat [MASK]");
  ASSERT_EQ(two.size(), 5u);
  EXPECT_EQ(two[1], v.mask_id());
  EXPECT_EQ(two[2], v.id("cat"));
  EXPECT_EQ(two[3], v.mask_id());
  try {
    encode_with_masks(*tokenizer_, "no mask here, only [mask] in lower case");
    ADD_FAILURE() << "no error";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("[MASK]"), std::string::npos);
  }
}

TEST_F(FillMaskTest, TopKIsTheSoftmaxOfTheFullLogits) {
  FillMask filler(model_, torch::kCPU);
  FillMaskResult r = filler.predict("the [MASK] sees a [MASK] bird.", 7);
  ASSERT_EQ(r.masks.size(), 2u);
  torch::Tensor input = torch::tensor(std::vector<int64_t>(r.input_ids.begin(), r.input_ids.end())).view({1, -1});
  torch::NoGradGuard no_grad;
  torch::Tensor probs = model_.model->logits(input, torch::zeros_like(input), torch::ones_like(input))
                            .first[0].softmax(-1);  // [T, V]
  for (const auto& m : r.masks) {
    EXPECT_EQ(r.input_ids[static_cast<size_t>(m.position)], model_.vocab->mask_id());
    ASSERT_EQ(m.candidates.size(), 7u);
    auto [p, i] = probs[m.position].topk(7);
    for (int k = 0; k < 7; ++k) {
      EXPECT_EQ(m.candidates[k].id, i[k].item<int64_t>());
      EXPECT_NEAR(m.candidates[k].probability, p[k].item<double>(), 1e-7);
      EXPECT_EQ(m.candidates[k].token, model_.vocab->token(m.candidates[k].id));
      if (k) {
        EXPECT_GE(m.candidates[k - 1].probability, m.candidates[k].probability);
      }
    }
  }
  EXPECT_NE(r.masks[0].candidates[0].probability, r.masks[1].candidates[0].probability);
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["masks"].size(), 2u);
  EXPECT_EQ(j["masks"][1]["candidates"][0]["id"], r.masks[1].candidates[0].id);
  EXPECT_NE(r.format().find(r.masks[0].candidates[0].token), std::string::npos);
}

TEST_F(FillMaskTest, BadRequestsAreUsageErrors) {
  FillMask filler(model_, torch::kCPU);
  EXPECT_THROW(filler.predict("nothing to fill", 5), util::Error);
  EXPECT_THROW(filler.predict("the [MASK]", 0), util::Error);
  EXPECT_THROW(filler.predict("the [MASK]", model_.vocab->size() + 1), util::Error);
  std::string long_text = "[MASK]";
  for (int i = 0; i < 70; ++i) long_text += " cat";
  try {
    filler.predict(long_text, 5);
    ADD_FAILURE() << "no error for a text longer than the model's positions";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("at most 64"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bert::eval
