// Masked-LM evaluation pass.
#include "run/mlm_metrics.h"

#include <chrono>
#include <cmath>

#include "data/batch.h"
#include "run/device.h"

namespace bert::run {

model::PretrainingInputs model_inputs(const data::Batch& b) {
  model::PretrainingInputs in;
  in.input_ids = b.input_ids;
  in.token_type_ids = b.token_type_ids;
  in.attention_mask = b.attention_mask;
  in.mlm_labels = b.mlm_labels;
  in.nsp_labels = b.nsp_labels;
  in.mlm_positions = b.mlm_positions;
  in.has_padding = b.has_padding;
  in.has_nsp = b.has_nsp;
  return in;
}

nlohmann::json MlmMetrics::to_json() const {
  nlohmann::json j = {{"loss", loss}, {"accuracy", accuracy}, {"top5_accuracy", top5},
                      {"perplexity", perplexity}, {"predictions", predictions}, {"sequences", sequences},
                      {"tokens", tokens}, {"seconds", seconds}};
  if (nsp_accuracy >= 0) j["nsp_accuracy"] = nsp_accuracy;
  return j;
}

MlmMetrics evaluate_mlm(model::BertForPreTraining& model, const BatchSource& next,
                        const torch::Device& device, const std::string& precision, int64_t max_batches,
                        const SumOverRanks& sum_over_ranks) {
  const auto start = std::chrono::steady_clock::now();
  const bool was_training = model->is_training();
  model->eval();
  torch::InferenceMode inference;
  // Sums stay on the device: [loss, top1, top5, nsp correct, nsp total], read once at the end.
  torch::Tensor sums = torch::zeros({5}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  MlmMetrics m;
  data::HostBatch host;
  for (int64_t i = 0; (max_batches <= 0 || i < max_batches) && next(host); ++i) {
    data::Batch b = data::to_device(host, device);
    model::PretrainingOutput out;
    {
      AutocastScope autocast(device, precision);
      out = model->forward(model_inputs(b));
    }
    const int64_t n = b.num_predictions;
    if (n > 0) {
      torch::Tensor logits = out.mlm_logits.to(torch::kFloat32);  // [N, V]
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits, out.mlm_targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      torch::Tensor best = std::get<1>(logits.topk(std::min<int64_t>(5, logits.size(1)), -1));  // [N, 5]
      torch::Tensor hit = best.eq(out.mlm_targets.unsqueeze(1));                               // [N, 5]
      sums.slice(0, 0, 3).add_(torch::stack({loss.to(torch::kFloat64), hit.select(1, 0).sum().to(torch::kFloat64),
                                             hit.any(1).sum().to(torch::kFloat64)}));
    }
    if (out.nsp_logits.defined()) {
      torch::Tensor valid = b.nsp_labels.ne(-100);  // [B]
      sums.slice(0, 3, 5).add_(torch::stack({(out.nsp_logits.argmax(-1).eq(b.nsp_labels) & valid).sum(),
                                             valid.sum()}).to(torch::kFloat64));
    }
    m.predictions += n;
    m.sequences += host.batch_size;
    m.tokens += host.num_real_tokens;
  }
  // [loss, top1, top5, nsp correct, nsp total, predictions, sequences, tokens]
  torch::Tensor totals = torch::cat({sums.cpu(), torch::tensor({static_cast<double>(m.predictions),
                                                                static_cast<double>(m.sequences),
                                                                static_cast<double>(m.tokens)}, torch::kFloat64)});
  if (sum_over_ranks) sum_over_ranks(totals);
  const double* v = totals.data_ptr<double>();
  m.predictions = static_cast<int64_t>(v[5]);
  m.sequences = static_cast<int64_t>(v[6]);
  m.tokens = static_cast<int64_t>(v[7]);
  const double loss_sum = v[0];
  const double top1 = v[1], top5 = v[2], nsp_correct = v[3], nsp_total = v[4];
  if (was_training) model->train();
  if (m.predictions > 0) {
    m.loss = loss_sum / static_cast<double>(m.predictions);
    m.accuracy = static_cast<double>(top1) / static_cast<double>(m.predictions);
    m.top5 = static_cast<double>(top5) / static_cast<double>(m.predictions);
    m.perplexity = std::exp(m.loss);
  }
  if (nsp_total > 0) m.nsp_accuracy = static_cast<double>(nsp_correct) / static_cast<double>(nsp_total);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

}  // namespace bert::run
