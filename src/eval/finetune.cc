// Fine-tuning and scoring a sequence classifier (see finetune.h).
#include "eval/finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include <unistd.h>

#include "eval/checkpoint_loader.h"
#include "model/sequence_classifier.h"
#include "run/device.h"
#include "run/loss_scaler.h"
#include "run/optimizer.h"
#include "run/schedule.h"
#include "text/unicode.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/rng.h"
#include "wordpiece/tokenizer.h"

namespace bert::eval {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// One example as model input: [CLS] A [SEP] (B [SEP]); the first `first_len` tokens have type 0.
struct Encoded {
  std::vector<int32_t> ids;
  int32_t first_len = 0;
};

// Tokenizes every example, truncating the longer text first (transformers' "longest_first": one
// token at a time from the longer of the two, from the second on a tie) to `max_len` with specials.
std::vector<Encoded> encode_file(const LabelledFile& f, const wordpiece::Tokenizer& tok, int max_len) {
  std::vector<std::string> a, b;
  const bool pairs = !f.examples.empty() && !f.examples.front().text_pair.empty();
  for (const auto& e : f.examples) {
    a.push_back(e.text);
    if (pairs) b.push_back(e.text_pair);
  }
  auto ia = tok.encode_batch(a, 0);
  std::vector<std::vector<int32_t>> ib = pairs ? tok.encode_batch(b, 0) : std::vector<std::vector<int32_t>>{};
  const wordpiece::Vocab& v = tok.vocab();
  std::vector<Encoded> out(f.examples.size());
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<int32_t>& x = ia[i];
    std::vector<int32_t> none;
    std::vector<int32_t>& y = pairs ? ib[i] : none;
    const size_t budget = static_cast<size_t>(max_len) - (pairs ? 3 : 2);
    while (x.size() + y.size() > budget) {
      if (x.size() > y.size()) x.pop_back();
      else y.pop_back();
    }
    Encoded& e = out[i];
    e.ids.reserve(x.size() + y.size() + 3);
    e.ids.push_back(v.cls_id());
    e.ids.insert(e.ids.end(), x.begin(), x.end());
    e.ids.push_back(v.sep_id());
    e.first_len = static_cast<int32_t>(e.ids.size());
    if (pairs) {
      e.ids.insert(e.ids.end(), y.begin(), y.end());
      e.ids.push_back(v.sep_id());
    }
  }
  return out;
}

struct DeviceBatch {
  torch::Tensor ids, types, mask, labels;  // mask undefined when no row is padded
  int64_t rows = 0;
};

DeviceBatch make_batch(const std::vector<Encoded>& enc, const std::vector<int64_t>& labels,
                       const std::vector<int64_t>& order, size_t begin, size_t end, int32_t pad_id,
                       const torch::Device& device) {
  const int64_t n = static_cast<int64_t>(end - begin);
  int64_t t = 0;
  for (size_t i = begin; i < end; ++i) t = std::max<int64_t>(t, static_cast<int64_t>(enc[order[i]].ids.size()));
  auto ids = torch::full({n, t}, pad_id, torch::kInt64);
  auto types = torch::zeros({n, t}, torch::kInt64);
  auto mask = torch::zeros({n, t}, torch::kInt64);
  auto lab = torch::empty({n}, torch::kInt64);
  auto pi = ids.accessor<int64_t, 2>();
  auto pt = types.accessor<int64_t, 2>();
  auto pm = mask.accessor<int64_t, 2>();
  bool padded = false;
  for (int64_t r = 0; r < n; ++r) {
    const Encoded& e = enc[order[begin + r]];
    for (size_t j = 0; j < e.ids.size(); ++j) {
      pi[r][j] = e.ids[j];
      pt[r][j] = static_cast<int64_t>(j) >= e.first_len ? 1 : 0;
      pm[r][j] = 1;
    }
    padded |= static_cast<int64_t>(e.ids.size()) < t;
    lab[r] = labels[order[begin + r]];
  }
  DeviceBatch b;
  b.rows = n;
  b.ids = ids.to(device);
  b.types = types.to(device);
  if (padded) b.mask = mask.to(device);
  b.labels = lab.to(device);
  return b;
}

// A seeded Fisher-Yates shuffle of 0..n-1 (the same on every platform, unlike std::shuffle).
std::vector<int64_t> shuffled(size_t n, uint64_t seed) {
  std::vector<int64_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<int64_t>(i);
  util::Rng rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(p[i - 1], p[rng.uniform(i)]);
  return p;
}

// A fresh copy of `source` (CPU, fp32), or a randomly initialised model of its shape.
model::BertForPreTraining copy_encoder(model::BertForPreTraining& source, bool random_init, uint64_t init_seed) {
  model::BertForPreTraining m(source->config(), init_seed);
  if (!random_init) {
    torch::NoGradGuard no_grad;
    auto from = source->named_parameters();
    for (auto& item : m->named_parameters()) item.value().copy_(from[item.key()]);
  }
  return m;
}

struct Prepared {
  std::vector<Encoded> train, test;
  int32_t pad_id = 0;
};

ClassificationMetrics score(model::BertForSequenceClassification& clf, const Prepared& p, const LabelledTask& task,
                            const FinetuneOptions& o, const torch::Device& device, double* seconds) {
  const auto start = Clock::now();
  const bool was_training = clf->is_training();
  clf->eval();
  std::vector<int64_t> predicted;
  predicted.reserve(p.test.size());
  {
    torch::InferenceMode inference;
    // Sorted by length so each batch pads little; predictions go back to file order.
    std::vector<int64_t> order(p.test.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return p.test[a].ids.size() < p.test[b].ids.size(); });
    std::vector<int64_t> by_order(order.size());
    for (size_t begin = 0; begin < order.size(); begin += o.eval_batch_size) {
      const size_t end = std::min(order.size(), begin + static_cast<size_t>(o.eval_batch_size));
      DeviceBatch b = make_batch(p.test, task.test_labels, order, begin, end, p.pad_id, device);
      torch::Tensor logits;
      {
        run::AutocastScope autocast(device, o.precision);
        logits = clf->forward(b.ids, b.types, b.mask);
      }
      torch::Tensor arg = logits.argmax(1).to(torch::kCPU);
      auto a = arg.accessor<int64_t, 1>();
      for (int64_t r = 0; r < b.rows; ++r) by_order[begin + r] = a[r];
    }
    predicted.assign(order.size(), 0);
    for (size_t i = 0; i < order.size(); ++i) predicted[order[i]] = by_order[i];
  }
  clf->train(was_training);
  *seconds = seconds_since(start);
  return classification_metrics(task.test_labels, predicted, task.labels);
}

// The training file minus a stratified dev split (dev_ratio of each label's examples, at least one
// of every label with two or more, chosen by a seeded shuffle) as train, and the split as test.
struct DevSplit {
  Prepared p;
  LabelledTask task;
};
DevSplit carve_dev(const Prepared& full, const LabelledTask& task, double ratio, uint64_t seed) {
  DevSplit d;
  d.p.pad_id = full.pad_id;
  d.task.labels = task.labels;
  std::vector<std::vector<int64_t>> by_label(task.labels.size());
  for (size_t i = 0; i < task.train_labels.size(); ++i) by_label[task.train_labels[i]].push_back(static_cast<int64_t>(i));
  std::vector<char> in_dev(task.train_labels.size(), 0);
  for (size_t l = 0; l < by_label.size(); ++l) {
    const auto& idx = by_label[l];
    if (idx.size() < 2) continue;
    const std::vector<int64_t> order = shuffled(idx.size(), util::derive_seed(seed, "finetune-dev", l));
    const size_t k = std::max<size_t>(1, static_cast<size_t>(std::llround(ratio * static_cast<double>(idx.size()))));
    for (size_t j = 0; j < std::min(k, idx.size() - 1); ++j) in_dev[idx[order[j]]] = 1;
  }
  for (size_t i = 0; i < task.train_labels.size(); ++i) {
    (in_dev[i] ? d.p.test : d.p.train).push_back(full.train[i]);
    (in_dev[i] ? d.task.test_labels : d.task.train_labels).push_back(task.train_labels[i]);
  }
  return d;
}

RunResult run_one(model::BertForPreTraining& source, bool random_init, uint64_t seed, const Prepared& p,
                  const LabelledTask& task, const FinetuneOptions& o, double lr, const torch::Device& device,
                  const std::string& name, const std::function<void(model::BertForSequenceClassification&)>& done) {
  const auto start = Clock::now();
  RunResult result;
  result.seed = seed;
  result.lr = lr;
  model::BertForSequenceClassification clf(
      copy_encoder(source, random_init, util::derive_seed(seed, "finetune-baseline-init")),
      static_cast<int>(task.labels.size()), util::derive_seed(seed, "finetune-classifier-init"));
  clf->to(device);
  if (o.probe) clf->freeze_encoder();
  clf->train(true);

  run::TrainingOptions t;
  t.lr = lr;
  t.weight_decay = o.weight_decay;
  t.adam_betas = {0.9, 0.999};
  t.adam_eps = 1e-8;
  t.clip_grad_norm = o.clip_grad_norm;
  t.schedule = "linear";
  const int64_t n = static_cast<int64_t>(p.train.size());
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  t.max_steps = steps_per_epoch * o.epochs;
  t.warmup_steps = static_cast<int64_t>(std::ceil(o.warmup_ratio * static_cast<double>(t.max_steps)));
  run::AdamW optimizer(*clf, t);
  run::LossScaler scaler(o.precision == "fp16", device);
  const std::vector<torch::Tensor> params = optimizer.parameters();

  util::ProgressLine progress;
  int64_t step = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    const std::vector<int64_t> order = shuffled(p.train.size(), util::derive_seed(seed, "finetune-shuffle", epoch));
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    for (int64_t begin = 0; begin < n; begin += o.batch_size, ++step) {
      const int64_t end = std::min(n, begin + o.batch_size);
      DeviceBatch b = make_batch(p.train, task.train_labels, order, begin, end, p.pad_id, device);
      torch::manual_seed(util::derive_seed(seed, "finetune-dropout", static_cast<uint64_t>(step)));
      optimizer.zero_grad();
      torch::Tensor loss;
      {
        run::AutocastScope autocast(device, o.precision);
        torch::Tensor logits = clf->forward(b.ids, b.types, b.mask);
        loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), b.labels);
      }
      scaler.apply(loss).backward();
      scaler.unscale(params);
      std::optional<torch::Tensor> divisor;
      if (o.clip_grad_norm > 0) divisor = run::clip_divisor(run::global_grad_norm(params), o.clip_grad_norm);
      std::optional<torch::Tensor> found_inf;
      if (scaler.enabled()) found_inf = scaler.found_inf();
      optimizer.step(run::lr_at(step, t), divisor, found_inf);
      scaler.update();
      loss_sum.add_(loss.detach().to(torch::kFloat64) * static_cast<double>(b.rows));
      if (o.progress && progress.active() && (step % 5 == 0 || end == n)) {
        const double s = seconds_since(epoch_start);
        progress.update(name + " seed " + std::to_string(seed) + " epoch " + std::to_string(epoch) + "/" +
                        std::to_string(o.epochs) + " " + std::to_string(end) + "/" + std::to_string(n) +
                        " loss " + fixed(loss.item<double>(), 4) + " " +
                        fixed(s > 0 ? static_cast<double>(end) / s : 0.0, 0) + " ex/s");
      }
    }
    EpochResult e;
    e.epoch = epoch;
    const double train_s = seconds_since(epoch_start);
    e.train_loss = loss_sum.item<double>() / static_cast<double>(n);
    e.train_examples_per_s = train_s > 0 ? static_cast<double>(n) / train_s : 0.0;
    double test_s = 0;
    e.test = score(clf, p, task, o, device, &test_s);
    e.test_examples_per_s = test_s > 0 ? static_cast<double>(p.test.size()) / test_s : 0.0;
    progress.clear();
    if (o.progress) {
      util::log_info(name + " seed " + std::to_string(seed) + " epoch " + std::to_string(epoch) + "/" +
                     std::to_string(o.epochs) + ": train loss " + fixed(e.train_loss, 4) + ", test accuracy " +
                     fixed(e.test.accuracy, 4) + ", macro-F1 " + fixed(e.test.macro_f1, 4) + " (" +
                     fixed(e.train_examples_per_s, 0) + " train ex/s, " + fixed(e.test_examples_per_s, 0) +
                     " test ex/s)");
    }
    if (!std::isfinite(e.train_loss)) {
      throw util::runtime_error(name + " seed " + std::to_string(seed) + ": the training loss is " +
                                fixed(e.train_loss, 4) + " in epoch " + std::to_string(epoch) +
                                "; lower --lr or use --precision fp32");
    }
    result.epochs.push_back(std::move(e));
  }
  result.best = 0;
  for (size_t i = 1; i < result.epochs.size(); ++i) {
    if (result.epochs[i].test.accuracy > result.epochs[result.best].test.accuracy) result.best = static_cast<int>(i);
  }
  result.seconds = seconds_since(start);
  if (done) done(clf);
  return result;
}

SeedSummary summarize(std::vector<RunResult> runs) {
  SeedSummary s;
  std::vector<double> acc, f1, bacc, bf1;
  double train_speed = 0, test_speed = 0;
  int64_t epochs = 0;
  for (const auto& r : runs) {
    acc.push_back(r.last().test.accuracy);
    f1.push_back(r.last().test.macro_f1);
    bacc.push_back(r.epochs[r.best].test.accuracy);
    bf1.push_back(r.epochs[r.best].test.macro_f1);
    for (const auto& e : r.epochs) {
      train_speed += e.train_examples_per_s;
      test_speed += e.test_examples_per_s;
      ++epochs;
    }
  }
  s.accuracy = mean_std(acc);
  s.macro_f1 = mean_std(f1);
  s.best_accuracy = mean_std(bacc);
  s.best_macro_f1 = mean_std(bf1);
  if (epochs > 0) {
    s.train_examples_per_s = train_speed / static_cast<double>(epochs);
    s.test_examples_per_s = test_speed / static_cast<double>(epochs);
  }
  s.runs = std::move(runs);
  return s;
}

// Writes the fine-tuned model and its tokenizer files into `dir` through a temporary sibling, so
// `dir` appears complete or not at all.
void save_output_model(model::BertForSequenceClassification& clf, const wordpiece::Vocab& vocab,
                       const std::vector<std::string>& labels, const fs::path& dir) {
  fs::path tmp = dir;
  tmp += ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  clf->save_pretrained(tmp, labels);
  vocab.save(tmp);
  if (fs::exists(dir) && fs::is_empty(dir)) fs::remove(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp);
    throw util::io_error("cannot move the fine-tuned model into " + dir.string() + ": " + ec.message());
  }
  util::log_info("wrote the fine-tuned model (transformers BertForSequenceClassification) to " + dir.string());
}

}  // namespace

nlohmann::json EpochResult::to_json() const {
  return {{"epoch", epoch}, {"train_loss", train_loss}, {"test", test.to_json()},
          {"train_examples_per_s", train_examples_per_s}, {"test_examples_per_s", test_examples_per_s}};
}

nlohmann::json RunResult::to_json() const {
  nlohmann::json e = nlohmann::json::array();
  for (const auto& x : epochs) e.push_back(x.to_json());
  return {{"seed", seed}, {"lr", lr}, {"lr_search", lr_search}, {"epochs", e}, {"best_epoch", best + 1},
          {"seconds", seconds}};
}

nlohmann::json SeedSummary::to_json() const {
  nlohmann::json r = nlohmann::json::array();
  for (const auto& x : runs) r.push_back(x.to_json());
  return {{"accuracy", accuracy.to_json()}, {"macro_f1", macro_f1.to_json()},
          {"best_accuracy", best_accuracy.to_json()}, {"best_macro_f1", best_macro_f1.to_json()},
          {"train_examples_per_s", train_examples_per_s}, {"test_examples_per_s", test_examples_per_s},
          {"runs", r}};
}

nlohmann::json FinetuneReport::to_json() const {
  nlohmann::json j = {{"checkpoint", checkpoint.string()}, {"pretrained", pretrained.to_json()}};
  j["step"] = step >= 0 ? nlohmann::json(step) : nlohmann::json(nullptr);
  if (has_baseline) {
    j["baseline"] = baseline.to_json();
    j["gain"] = {{"accuracy", pretrained.accuracy.mean - baseline.accuracy.mean},
                 {"macro_f1", pretrained.macro_f1.mean - baseline.macro_f1.mean}};
  }
  return j;
}

nlohmann::json LabelledTask::to_json() const {
  auto counts = [&](const std::vector<int64_t>& ids) {
    nlohmann::json c = nlohmann::json::object();
    for (const auto& l : labels) c[l] = 0;
    for (int64_t id : ids) c[labels[id]] = c[labels[id]].get<int64_t>() + 1;
    return c;
  };
  return {{"train", {{"file", train.path.string()}, {"format", train.format}, {"examples", train.examples.size()},
                     {"label_counts", counts(train_labels)}}},
          {"test", {{"file", test.path.string()}, {"format", test.format}, {"examples", test.examples.size()},
                    {"label_counts", counts(test_labels)}}},
          {"labels", labels},
          {"pairs", !train.examples.front().text_pair.empty()}};
}

void validate(const FinetuneOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw util::usage_error(what);
  };
  need(o.epochs >= 1, "--epochs must be at least 1");
  need(!o.lrs.empty(), "--lr needs at least one rate");
  for (double lr : o.lrs) need(lr > 0 && std::isfinite(lr), "--lr must be positive numbers");
  need(o.dev_ratio > 0 && o.dev_ratio <= 0.5, "--dev-ratio must be in (0, 0.5]");
  need(o.batch_size >= 1, "--batch-size must be at least 1");
  need(o.eval_batch_size >= 1, "--eval-batch-size must be at least 1");
  need(o.max_seq_len >= 4, "--max-seq-len must be at least 4 ([CLS] A [SEP] B [SEP] needs room for text)");
  need(o.seeds >= 1, "--seeds must be at least 1");
  need(o.warmup_ratio >= 0 && o.warmup_ratio <= 1, "--warmup-ratio must be in [0, 1]");
  need(o.weight_decay >= 0, "--weight-decay must be >= 0");
  need(o.clip_grad_norm >= 0, "--clip-grad-norm must be >= 0 (0 = no clipping)");
  need(o.train_file != o.test_file || o.train_file.empty(),
       "--train and --test name the same file: scoring on the training data says nothing; hold out a test file");
  need(o.columns.text != o.columns.label, "--text-column and --label-column name the same column");
}

LabelledTask load_task(const FinetuneOptions& o) {
  LabelledTask t;
  t.train = read_labelled_file(o.train_file, o.columns);
  t.test = read_labelled_file(o.test_file, o.columns);
  t.labels = label_set(t.train);
  t.train_labels = label_ids(t.train, t.labels, o.train_file.string());
  t.test_labels = label_ids(t.test, t.labels, o.train_file.string());
  return t;
}

FinetuneReport finetune(const fs::path& model_path, const LabelledTask& task, const FinetuneOptions& o,
                        const torch::Device& device) {
  validate(o);
  if (!o.output_model.empty() && fs::exists(o.output_model) &&
      !(fs::is_directory(o.output_model) && fs::is_empty(o.output_model))) {
    throw util::usage_error("--output-model " + o.output_model.string() +
                            " already exists and is not an empty directory; choose a new path (nothing is overwritten)");
  }
  LoadedModel loaded = load_model(model_path, torch::kCPU);
  loaded.vocab->require_sequence_tokens("bert-eval finetune");
  const model::BertConfig& cfg = loaded.model->config();
  if (o.max_seq_len > cfg.max_position_embeddings) {
    throw util::usage_error("--max-seq-len " + std::to_string(o.max_seq_len) + " exceeds the model's " +
                            std::to_string(cfg.max_position_embeddings) + " positions (" + loaded.dir.string() +
                            "); use --max-seq-len " + std::to_string(cfg.max_position_embeddings) + " or less");
  }
  util::log_info("fine-tuning " + loaded.dir.string() + (loaded.step >= 0 ? " (step " + std::to_string(loaded.step) + ")" : "") +
                 (o.probe ? " as a probe (encoder frozen)" : "") + " on " + std::to_string(task.train.examples.size()) +
                 " examples, " + std::to_string(task.labels.size()) + " labels; " + run::describe_device(device) +
                 ", " + o.precision);
  const wordpiece::Tokenizer tok(loaded.vocab);
  Prepared p;
  p.train = encode_file(task.train, tok, o.max_seq_len);
  p.test = encode_file(task.test, tok, o.max_seq_len);
  p.pad_id = loaded.vocab->pad_id();

  FinetuneReport report;
  report.checkpoint = loaded.dir;
  report.step = loaded.step;
  // With several rates: one dev split of the training file (the same for every seed and both inits).
  std::optional<DevSplit> dev;
  if (o.lrs.size() > 1) {
    dev = carve_dev(p, task, o.dev_ratio, o.seed);
    if (dev->p.test.empty()) {
      throw util::usage_error("--lr lists several rates but " + o.train_file.string() +
                              " has no label with two examples to hold out for choosing one; give one --lr");
    }
    util::log_info("choosing the learning rate among " + std::to_string(o.lrs.size()) + " by accuracy on a dev split of " +
                   std::to_string(dev->p.test.size()) + " training examples (stratified, " + fixed(100 * o.dev_ratio, 0) +
                   " %), trained on the other " + std::to_string(dev->p.train.size()));
  }
  auto runs_of = [&](bool random_init) {
    std::vector<RunResult> runs;
    const std::string name = random_init ? "baseline" : (o.probe ? "probe" : "fine-tune");
    for (int i = 0; i < o.seeds; ++i) {
      const uint64_t seed = o.seed + static_cast<uint64_t>(i);
      double lr = o.lrs.front();
      nlohmann::json search;
      if (dev) {
        double best = -1;
        search = nlohmann::json::array();
        for (double candidate : o.lrs) {
          const RunResult r = run_one(loaded.model, random_init, seed, dev->p, dev->task, o, candidate, device,
                                      name + " (dev, lr " + fixed(candidate, 6) + ")", nullptr);
          const double accuracy = r.last().test.accuracy;
          search.push_back({{"lr", candidate}, {"dev_accuracy", accuracy}});
          if (accuracy > best) {  // the first of equal rates wins
            best = accuracy;
            lr = candidate;
          }
        }
        util::log_info(name + " seed " + std::to_string(seed) + ": lr " + fixed(lr, 6) + " chosen (dev accuracy " +
                       fixed(best, 4) + ")");
      }
      std::function<void(model::BertForSequenceClassification&)> done;
      if (!random_init && i == 0 && !o.output_model.empty()) {
        done = [&](model::BertForSequenceClassification& clf) {
          save_output_model(clf, *loaded.vocab, task.labels, o.output_model);
        };
      }
      runs.push_back(run_one(loaded.model, random_init, seed, p, task, o, lr, device, name, done));
      runs.back().lr_search = search;
    }
    return summarize(std::move(runs));
  };
  report.pretrained = runs_of(false);
  if (o.baseline) {
    report.has_baseline = true;
    report.baseline = runs_of(true);
  }
  return report;
}

nlohmann::json finetune_json(const LabelledTask& task, const FinetuneOptions& o, const torch::Device& device,
                             const std::vector<FinetuneReport>& reports) {
  nlohmann::json seeds = nlohmann::json::array();
  for (int i = 0; i < o.seeds; ++i) seeds.push_back(o.seed + static_cast<uint64_t>(i));
  nlohmann::json settings = {{"mode", o.probe ? "probe" : "finetune"}, {"epochs", o.epochs}, {"lrs", o.lrs}, {"dev_ratio", o.dev_ratio},
                             {"batch_size", o.batch_size}, {"max_seq_len", o.max_seq_len},
                             {"warmup_ratio", o.warmup_ratio}, {"weight_decay", o.weight_decay},
                             {"clip_grad_norm", o.clip_grad_norm}, {"seeds", seeds}, {"baseline", o.baseline},
                             {"precision", o.precision}, {"device", run::describe_device(device)}};
  nlohmann::json models = nlohmann::json::array();
  for (const auto& r : reports) models.push_back(r.to_json());
  return {{"task", task.to_json()}, {"settings", settings}, {"models", models}};
}

namespace {
std::string lr_list(const std::vector<double>& lrs) {
  std::string out;
  for (double lr : lrs) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", lr);
    out += (out.empty() ? "" : ",") + std::string(buf);
  }
  return out;
}
std::string chosen_lrs(const SeedSummary& s) {
  std::vector<double> lrs;
  for (const auto& r : s.runs) lrs.push_back(r.lr);
  return lr_list(lrs);
}
}  // namespace

std::string format_finetune(const LabelledTask& task, const FinetuneOptions& o,
                            const std::vector<FinetuneReport>& reports) {
  auto pm = [&](const MeanStd& m) { return fixed(m.mean, 4) + (o.seeds > 1 ? " ± " + fixed(m.std, 4) : ""); };
  std::string out = "task: " + task.train.path.string() + " (" + std::to_string(task.train.examples.size()) +
                    " examples) -> " + task.test.path.string() + " (" + std::to_string(task.test.examples.size()) +
                    " examples), " + std::to_string(task.labels.size()) + " labels" +
                    (task.train.examples.front().text_pair.empty() ? "" : ", sentence pairs") + "\n";
  out += std::string("mode: ") + (o.probe ? "probe (encoder frozen)" : "fine-tune") + ", " + std::to_string(o.epochs) +
         " epochs, lr " + lr_list(o.lrs) + (o.lrs.size() > 1 ? " (chosen per seed on a " + fixed(100 * o.dev_ratio, 0) +
                                                   " % dev split)" : "") + ", batch " + std::to_string(o.batch_size) + ", max_seq_len " +
         std::to_string(o.max_seq_len) + ", " + std::to_string(o.seeds) + " seed(s) from " + std::to_string(o.seed) +
         ", " + o.precision + "\n\n";
  char head[256];
  std::snprintf(head, sizeof head, "%-28s %-8s %-19s %-19s %-19s %-19s\n", "model", "step", "accuracy", "macro-F1",
                "best-epoch acc", "best-epoch F1");
  out += head;
  auto row = [&](const std::string& name, const std::string& step, const SeedSummary& s) {
    char buf[512];
    const std::string padded = name + std::string(28 - std::min<size_t>(28, text::count_chars(name)), ' ');
    std::snprintf(buf, sizeof buf, "%s %-8s %-19s %-19s %-19s %-19s\n", padded.c_str(), step.c_str(),
                  pm(s.accuracy).c_str(), pm(s.macro_f1).c_str(), pm(s.best_accuracy).c_str(),
                  pm(s.best_macro_f1).c_str());
    out += buf;
  };
  for (const auto& r : reports) {
    std::string name = r.checkpoint.filename().string();
    if (text::count_chars(name) > 28) name = std::string(text::utf8_prefix(name, 25)) + "...";
    row(name, r.step >= 0 ? std::to_string(r.step) : "-", r.pretrained);
    if (o.lrs.size() > 1) out += "  lr chosen per seed: " + chosen_lrs(r.pretrained) + "\n";
    if (r.has_baseline) {
      row("  baseline (random init)", "-", r.baseline);
      if (o.lrs.size() > 1) out += "  lr chosen per seed: " + chosen_lrs(r.baseline) + "\n";
      out += "  pre-training gain: " + std::string(r.pretrained.accuracy.mean >= r.baseline.accuracy.mean ? "+" : "") +
             fixed(r.pretrained.accuracy.mean - r.baseline.accuracy.mean, 4) + " accuracy, " +
             (r.pretrained.macro_f1.mean >= r.baseline.macro_f1.mean ? "+" : "") +
             fixed(r.pretrained.macro_f1.mean - r.baseline.macro_f1.mean, 4) + " macro-F1\n";
    }
  }
  const FinetuneReport& last = reports.back();
  const RunResult& first = last.pretrained.runs.front();
  out += "\n" + last.checkpoint.filename().string() + ", seed " + std::to_string(first.seed) + ", last epoch:\n";
  out += first.last().test.format_per_class();
  out += "\nconfusion matrix (rows: gold, columns: predicted):\n" + first.last().test.format_confusion();
  out += "\nspeed: " + fixed(last.pretrained.train_examples_per_s, 1) + " training examples/s, " +
         fixed(last.pretrained.test_examples_per_s, 1) + " test examples/s\n";
  return out;
}

}  // namespace bert::eval
