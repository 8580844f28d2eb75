// Atomic, verified checkpoint directories and the `latest` pointer.
#include "train/checkpoint.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include "model/weights.h"
#include "train/tensor_file.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

namespace bert::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.json";

uint32_t file_crc32(const fs::path& path, uint64_t* size_out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw util::input_error("cannot read " + path.string());
  std::vector<char> buf(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n));
    size += static_cast<uint64_t>(n);
  }
  *size_out = size;
  return static_cast<uint32_t>(crc);
}

int64_t step_of(const fs::path& dir) {
  std::string name = dir.filename().string();
  if (name.rfind("step-", 0) != 0 || name.find(".tmp-") != std::string::npos ||
      name.find(".old-") != std::string::npos) {
    return -1;
  }
  try {
    return std::stoll(name.substr(5));
  } catch (...) {
    return -1;
  }
}

std::vector<fs::path> step_dirs_newest_first(const fs::path& run_dir) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return dirs;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    if (e.is_directory() && step_of(e.path()) >= 0) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return step_of(a) > step_of(b); });
  return dirs;
}

std::string read_latest_pointer(const fs::path& run_dir) {
  std::error_code ec;
  fs::path p = run_dir / "latest";
  if (!fs::exists(p, ec)) return "";
  std::string s = util::read_file(p);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%07lld", static_cast<long long>(step));
  return buf;
}

fs::path save_checkpoint(const fs::path& run_dir, model::BertForPreTraining& model,
                         const wordpiece::Vocab& vocab, const CheckpointContents& contents) {
  fs::path final_dir = run_dir / checkpoint_name(contents.step);
  util::AtomicDir dir(final_dir);
  const fs::path& tmp = dir.tmp_path();
  model::save_weights(model, tmp / "model.safetensors");
  nlohmann::json hf = model->config().to_hf_json();
  util::write_file_atomic(tmp / "config.json", hf.dump(2) + "\n");
  vocab.save(tmp);
  save_tensor_file(contents.optimizer_state, tmp / "optimizer.safetensors");
  nlohmann::json state = contents.trainer_state;
  state["format_version"] = kCheckpointFormatVersion;
  state["step"] = contents.step;
  util::write_file_atomic(tmp / "trainer_state.json", state.dump(2) + "\n");

  nlohmann::json manifest = {{"format_version", kCheckpointFormatVersion}, {"files", nlohmann::json::object()}};
  for (const auto& e : fs::directory_iterator(tmp)) {
    if (!e.is_regular_file()) continue;
    uint64_t size = 0;
    uint32_t crc = file_crc32(e.path(), &size);
    manifest["files"][e.path().filename().string()] = {{"size", size}, {"crc32", crc}};
  }
  util::write_file_atomic(tmp / kManifest, manifest.dump(2) + "\n");
  dir.commit();
  util::write_file_atomic(run_dir / "latest", final_dir.filename().string() + "\n");
  return final_dir;
}

std::string verify_checkpoint(const fs::path& dir) {
  std::error_code ec;
  fs::path mpath = dir / kManifest;
  if (!fs::exists(mpath, ec)) return "no " + std::string(kManifest) + " (incomplete checkpoint)";
  nlohmann::json manifest;
  try {
    manifest = util::parse_json_file(mpath, util::ErrorKind::kInput);
  } catch (const util::Error& e) {
    return e.what();
  }
  if (!manifest.contains("files") || !manifest["files"].is_object()) return "manifest.json has no file list";
  for (const char* required : {"model.safetensors", "config.json", "vocab.txt", "trainer_state.json",
                               "optimizer.safetensors"}) {
    if (!manifest["files"].contains(required)) return std::string("manifest lists no ") + required;
  }
  for (const auto& item : manifest["files"].items()) {
    fs::path f = dir / item.key();
    if (!fs::exists(f, ec)) return item.key() + " is missing";
    uint64_t size = 0;
    uint32_t crc = 0;
    try {
      crc = file_crc32(f, &size);
    } catch (const util::Error& e) {
      return e.what();
    }
    if (size != item.value().value("size", uint64_t{0})) {
      return item.key() + " has " + std::to_string(size) + " bytes, expected " +
             std::to_string(item.value().value("size", uint64_t{0})) + " (truncated?)";
    }
    if (crc != item.value().value("crc32", uint32_t{0})) return item.key() + " fails its crc32 check (corrupted)";
  }
  return "";
}

std::optional<fs::path> find_latest_checkpoint(const fs::path& run_dir) {
  // `latest` names the checkpoint the run last wrote: after a rewind (resume from an older step) it
  // is not the highest step, so it is trusted first; then the step-* dirs, newest first.
  std::vector<fs::path> candidates;
  std::string latest = read_latest_pointer(run_dir);
  if (!latest.empty()) candidates.push_back(run_dir / latest);
  for (const auto& d : step_dirs_newest_first(run_dir)) {
    if (std::find(candidates.begin(), candidates.end(), d) == candidates.end()) candidates.push_back(d);
  }
  for (const auto& c : candidates) {
    std::error_code ec;
    std::string why = fs::exists(c, ec) ? verify_checkpoint(c) : "it does not exist";
    if (why.empty()) return c;
    util::log_warn("skipping checkpoint " + c.string() + ": " + why + "; trying the previous one");
  }
  return std::nullopt;
}

void set_aside_newer_checkpoints(const fs::path& run_dir, int64_t step) {
  for (const auto& d : step_dirs_newest_first(run_dir)) {
    if (step_of(d) <= step) break;
    fs::path aside = run_dir / ("abandoned-" + d.filename().string());
    std::error_code ec;
    fs::rename(d, aside, ec);
    if (ec) throw util::io_error("cannot move " + d.string() + " aside: " + ec.message());
    util::log_warn("resuming from step " + std::to_string(step) + ": the later checkpoint " + d.string() +
                   " belongs to the abandoned trajectory; kept as " + aside.string());
  }
}

void clean_stale_temporaries(const fs::path& run_dir) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) entries.push_back(e.path());
  for (const auto& p : entries) {
    const std::string name = p.filename().string();
    if (name.rfind("step-", 0) != 0) continue;
    if (auto at = name.find(".old-"); at != std::string::npos) {
      fs::path final_dir = run_dir / name.substr(0, at);
      if (!fs::exists(final_dir, ec)) {  // a crash between the two renames of a save: restore it
        fs::rename(p, final_dir, ec);
        util::log_warn("restored " + final_dir.string() + " from an interrupted save");
      } else {
        fs::remove_all(p, ec);
      }
    } else if (name.find(".tmp-") != std::string::npos) {
      fs::remove_all(p, ec);  // a save that never completed
      util::log_warn("removed the incomplete checkpoint " + p.string());
    }
  }
}

CheckpointContents load_checkpoint(const fs::path& dir, model::BertForPreTraining& model) {
  CheckpointContents c;
  c.trainer_state = util::parse_json_file(dir / "trainer_state.json", util::ErrorKind::kInput);
  if (c.trainer_state.value("format_version", 0) != kCheckpointFormatVersion) {
    throw util::input_error((dir / "trainer_state.json").string() + ": unsupported checkpoint format version " +
                            c.trainer_state.value("format_version", nlohmann::json(0)).dump());
  }
  c.step = c.trainer_state.at("step").get<int64_t>();
  model::load_weights(model, dir / "model.safetensors");
  c.optimizer_state = load_tensor_file(dir / "optimizer.safetensors");
  return c;
}

void prune_checkpoints(const fs::path& run_dir, int keep_last) {
  if (keep_last <= 0) return;
  std::string latest = read_latest_pointer(run_dir);
  auto dirs = step_dirs_newest_first(run_dir);
  for (size_t i = static_cast<size_t>(keep_last); i < dirs.size(); ++i) {
    if (dirs[i].filename().string() == latest) continue;
    std::error_code ec;
    fs::remove_all(dirs[i], ec);
    if (ec) util::log_warn("could not remove old checkpoint " + dirs[i].string() + ": " + ec.message());
  }
}

}  // namespace bert::train
