// Weight I/O between BertForPreTraining and safetensors files / Hugging Face model directories.
#include "model/weights.h"

#include <cstring>
#include <set>
#include <vector>

#include "model/safetensors.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json.h"

namespace bert::model {

namespace {

constexpr const char* kWordEmbeddings = "bert.embeddings.word_embeddings.weight";
constexpr const char* kMlmBias = "cls.predictions.bias";
constexpr const char* kDecoderWeight = "cls.predictions.decoder.weight";
constexpr const char* kDecoderBias = "cls.predictions.decoder.bias";
constexpr const char* kPositionIds = "bert.embeddings.position_ids";

const std::vector<std::pair<std::string, torch::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, torch::ScalarType>> kTable = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
      {"I16", torch::kInt16}, {"I8", torch::kInt8}, {"U8", torch::kUInt8}, {"BOOL", torch::kBool}};
  return kTable;
}

std::optional<torch::ScalarType> torch_dtype(const std::string& name) {
  for (const auto& [n, t] : dtype_table()) if (n == name) return t;
  return std::nullopt;
}

std::string safetensors_dtype(torch::ScalarType t, const std::string& key) {
  for (const auto& [n, s] : dtype_table()) if (s == t) return n;
  throw util::input_error("cannot save tensor \"" + key + "\" of dtype " + std::string(c10::toString(t)));
}

std::string where(const SafetensorsFile& f, const std::string& key) {
  return f.path().string() + ": tensor \"" + key + "\"";
}

std::string shape_text(c10::IntArrayRef s) { return c10::str(s); }

// Copies a tensor out of the mapping into an aligned CPU tensor of its stored dtype.
torch::Tensor read_tensor(const SafetensorsFile& f, const std::string& key) {
  const auto& info = f.info(key);
  auto dtype = torch_dtype(info.dtype);
  if (!dtype) throw util::input_error(where(f, key) + ": unsupported dtype " + info.dtype);
  auto t = torch::empty(info.shape, torch::TensorOptions().dtype(*dtype));
  if (info.end > info.begin) std::memcpy(t.data_ptr(), f.data(key), info.end - info.begin);
  return t;
}

bool is_float_dtype(const std::string& d) { return d == "F32" || d == "F16" || d == "BF16"; }

// A tolerated duplicate must equal the tensor it duplicates (tied weights); anything else would be
// silently dropped, so it is an error.
void check_tied_duplicate(const SafetensorsFile& f, const std::string& dup, const std::string& owner,
                          const torch::Tensor& owner_param) {
  const auto& info = f.info(dup);
  if (!is_float_dtype(info.dtype) || c10::IntArrayRef(info.shape) != owner_param.sizes()) {
    throw util::input_error(where(f, dup) + ": expected a tied copy of \"" + owner + "\" with shape " +
                            shape_text(owner_param.sizes()) + ", got " + info.dtype + " " +
                            shape_text(info.shape));
  }
  if (!f.contains(owner)) return;  // reported as missing by the caller
  auto a = read_tensor(f, dup).to(torch::kFloat32);
  auto b = read_tensor(f, owner).to(torch::kFloat32);
  if (!torch::equal(a, b)) {
    throw util::input_error(where(f, dup) + " differs from \"" + owner +
                            "\": untied MLM decoder weights are not supported");
  }
}

std::string list(const std::vector<std::string>& names) {
  std::string s;
  const size_t shown = std::min<size_t>(names.size(), 8);
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > shown) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

}  // namespace

void save_weights(BertForPreTraining& model, const std::filesystem::path& path) {
  std::vector<torch::Tensor> keep_alive;
  std::vector<SafetensorView> views;
  for (const auto& item : model->named_parameters()) {
    auto t = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    keep_alive.push_back(t);
    views.push_back({item.key(), "F32", t.sizes().vec(), t.data_ptr(), t.nbytes()});
  }
  write_safetensors(path, views);
}

namespace {
bool is_nsp_head_key(const std::string& key) {
  return key.rfind("bert.pooler.", 0) == 0 || key.rfind("cls.seq_relationship.", 0) == 0;
}
}  // namespace

bool has_nsp_head(const std::filesystem::path& path) {
  const SafetensorsFile f(path);
  for (const char* k : {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight",
                        "cls.seq_relationship.bias"}) {
    if (!f.contains(k)) return false;
  }
  return true;
}

void load_weights(BertForPreTraining& model, const std::filesystem::path& path, const LoadOptions& options) {
  const SafetensorsFile f(path);
  auto params = model->named_parameters();
  // Pass 1: validate everything, so a bad file leaves the model untouched.
  std::vector<std::string> missing, unexpected;
  for (const auto& item : params) {
    const std::string& key = item.key();
    if (!f.contains(key)) {
      if (!(options.allow_missing_nsp_head && is_nsp_head_key(key))) missing.push_back(key);
      continue;
    }
    const auto& info = f.info(key);
    if (!is_float_dtype(info.dtype)) {
      throw util::input_error(where(f, key) + ": dtype " + info.dtype +
                              " is not a floating-point type (expected F32, F16 or BF16)");
    }
    if (c10::IntArrayRef(info.shape) != item.value().sizes()) {
      throw util::input_error(where(f, key) + ": shape " + shape_text(info.shape) +
                              " does not match the model's " + shape_text(item.value().sizes()) +
                              " (is config.json the one this file was saved with?)");
    }
  }
  for (const auto& [key, info] : f.tensors()) {
    if (params.contains(key)) continue;
    if (key == kDecoderWeight) {
      check_tied_duplicate(f, key, kWordEmbeddings, params[kWordEmbeddings]);
    } else if (key == kDecoderBias) {
      check_tied_duplicate(f, key, kMlmBias, params[kMlmBias]);
    } else if (key != kPositionIds) {
      unexpected.push_back(key);
    }
  }
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = path.string() + ": the weights do not match the model:";
    if (!missing.empty()) msg += " missing " + list(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected " + list(unexpected) + ";";
    if (params.contains("bert.encoder.LayerNorm.weight") || f.contains("bert.encoder.LayerNorm.weight")) {
      msg += " (bert.encoder.LayerNorm exists only in norm=\"pre\" models; check config.json)";
    }
    throw util::input_error(msg);
  }
  // Pass 1b: every value finite (a NaN or Inf weight would only show later, as a NaN loss).
  torch::NoGradGuard no_grad;
  for (auto& item : params) {
    if (!f.contains(item.key())) continue;
    const torch::Tensor t = read_tensor(f, item.key());
    const torch::Tensor bad = torch::logical_not(torch::isfinite(t));
    if (const int64_t n = bad.sum().item<int64_t>(); n > 0) {
      const int64_t first = bad.flatten().nonzero()[0][0].item<int64_t>();
      throw util::input_error(where(f, item.key()) + ": " + std::to_string(n) + " of its " +
                              std::to_string(t.numel()) + " values are NaN or Inf (the first at flat index " +
                              std::to_string(first) + "); the file is damaged or was saved from a diverged run");
    }
  }
  // Pass 2: copy (converting dtype and moving to each parameter's device).
  for (auto& item : params) {
    if (f.contains(item.key())) item.value().copy_(read_tensor(f, item.key()));
  }
}

void save_pretrained(BertForPreTraining& model, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw util::io_error("cannot create " + dir.string() + ": " + ec.message());
  save_weights(model, dir / "model.safetensors");
  util::write_file_atomic(dir / "config.json", model->config().to_hf_json().dump(2) + "\n");
}

BertForPreTraining load_pretrained(const std::filesystem::path& dir) {
  const auto config_path = dir / "config.json";
  const auto j = util::parse_json_file(config_path, util::ErrorKind::kInput);
  BertForPreTraining model(BertConfig::from_hf_json(j, config_path.string()));
  load_weights(model, dir / "model.safetensors");
  return model;
}

std::map<std::string, torch::Tensor> load_tensors(const std::filesystem::path& path) {
  const SafetensorsFile f(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& [key, info] : f.tensors()) out.emplace(key, read_tensor(f, key));
  return out;
}

void save_tensors(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& tensors) {
  std::vector<torch::Tensor> keep_alive;
  std::vector<SafetensorView> views;
  for (const auto& [key, value] : tensors) {
    auto t = value.detach().to(torch::kCPU).contiguous();
    keep_alive.push_back(t);
    views.push_back({key, safetensors_dtype(t.scalar_type(), key), t.sizes().vec(), t.data_ptr(), t.nbytes()});
  }
  write_safetensors(path, views);
}

}  // namespace bert::model
