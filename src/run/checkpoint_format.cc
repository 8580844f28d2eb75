// Checkpoint directory format: names, manifest, verification, latest pointer, pruning, repair.
#include "run/checkpoint_format.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

namespace bert::run {
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

// A manifest entry's unsigned field, or nullopt when absent or not a non-negative integer.
std::optional<uint64_t> manifest_number(const nlohmann::json& entry, const char* key) {
  if (!entry.is_object() || !entry.contains(key) || !entry[key].is_number_unsigned()) return std::nullopt;
  return entry[key].get<uint64_t>();
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%07lld", static_cast<long long>(step));
  return buf;
}

void write_manifest(const fs::path& dir) {
  nlohmann::json manifest = {{"format_version", kCheckpointFormatVersion}, {"files", nlohmann::json::object()}};
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == kManifest) continue;
    uint64_t size = 0;
    uint32_t crc = file_crc32(e.path(), &size);
    manifest["files"][e.path().filename().string()] = {{"size", size}, {"crc32", crc}};
  }
  util::write_file_atomic(dir / kManifest, manifest.dump(2) + "\n");
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
    const std::optional<uint64_t> want_size = manifest_number(item.value(), "size");
    const std::optional<uint64_t> want_crc = manifest_number(item.value(), "crc32");
    if (!want_size || !want_crc || *want_crc > 0xFFFFFFFFull) {
      return "manifest.json: the entry for " + item.key() + " needs a non-negative integer size and crc32";
    }
    if (item.key().empty() || item.key().find('/') != std::string::npos || item.key() == "." || item.key() == "..") {
      return "manifest.json names \"" + item.key() + "\", which is not a file name in the checkpoint dir";
    }
    fs::path f = dir / item.key();
    if (!fs::is_regular_file(f, ec)) return item.key() + " is missing";
    uint64_t size = 0;
    uint32_t crc = 0;
    try {
      crc = file_crc32(f, &size);
    } catch (const util::Error& e) {
      return e.what();
    }
    if (size != *want_size) {
      return item.key() + " has " + std::to_string(size) + " bytes, expected " + std::to_string(*want_size) +
             " (truncated?)";
    }
    if (crc != *want_crc) return item.key() + " fails its crc32 check (corrupted)";
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

nlohmann::json read_trainer_state(const fs::path& dir, int64_t* step) {
  const fs::path file = dir / "trainer_state.json";
  nlohmann::json state = util::parse_json_file(file, util::ErrorKind::kInput);
  if (!state.is_object()) throw util::input_error(file.string() + ": expected a JSON object");
  const nlohmann::json version = state.value("format_version", nlohmann::json());
  if (!version.is_number_integer()) {
    throw util::input_error(file.string() + ": \"format_version\" is missing or not an integer; this is not a "
                            "checkpoint written by bert-train");
  }
  if (version.get<int64_t>() > kCheckpointFormatVersion) {
    throw util::input_error(file.string() + ": checkpoint format version " + version.dump() +
                            " was written by a newer bert-train (this one reads version " +
                            std::to_string(kCheckpointFormatVersion) + "); update bert-train to resume it");
  }
  if (version.get<int64_t>() != kCheckpointFormatVersion) {
    throw util::input_error(file.string() + ": unsupported checkpoint format version " + version.dump());
  }
  const nlohmann::json s = state.value("step", nlohmann::json());
  if (!s.is_number_integer() || s.get<int64_t>() < 0) {
    throw util::input_error(file.string() + ": \"step\" must be an integer >= 0, got " + s.dump());
  }
  *step = s.get<int64_t>();
  for (const char* key : {"tokens_seen", "skipped_steps"}) {
    if (state.contains(key) && !(state[key].is_number_integer() && state[key].get<int64_t>() >= 0)) {
      throw util::input_error(file.string() + ": \"" + key + "\" must be an integer >= 0, got " + state[key].dump());
    }
  }
  return state;
}

}  // namespace bert::run
