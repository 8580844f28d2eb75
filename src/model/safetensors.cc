// Safetensors parsing with full validation, and serialization matching the Rust writer's layout.
#include "model/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

#include "util/atomic_file.h"
#include "util/error.h"

namespace bert::model {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

namespace {

constexpr const char* kMetadataKey = "__metadata__";
// The Rust implementation refuses headers above 100 MB; so do we (a corrupt length is caught early).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// numel * elem_size, or UINT64_MAX on overflow.
uint64_t checked_bytes(const std::vector<int64_t>& shape, size_t elem_size) {
  unsigned __int128 n = elem_size;
  for (int64_t d : shape) {
    n *= static_cast<uint64_t>(d);
    if (n > UINT64_MAX) return UINT64_MAX;
  }
  return static_cast<uint64_t>(n);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

int64_t SafetensorInfo::numel() const {
  // A 0 anywhere makes the tensor empty even where the other dimensions alone overflow int64
  // ([3037000500, 3037000500, 0] is a valid empty U8 entry); otherwise a validated entry's product is
  // bounded by its byte span.
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") {
    return 1;
  }
  return 0;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path), file_(path) {
  const std::string where = path.string();
  auto fail = [&](const std::string& what) -> void { throw util::input_error(where + ": " + what); };
  if (file_.size() < 8) {
    fail("not a safetensors file: " + std::to_string(file_.size()) +
         " bytes, shorter than the 8-byte header length");
  }
  uint64_t n = 0;
  std::memcpy(&n, file_.data(), 8);
  if (n > file_.size() - 8 || n > kMaxHeaderBytes) {
    fail("corrupt safetensors file: header length " + std::to_string(n) + " runs past the end of the " +
         std::to_string(file_.size()) + "-byte file");
  }
  data_start_ = 8 + n;
  const uint64_t data_size = file_.size() - data_start_;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(file_.data()) + 8,
                                   reinterpret_cast<const char*>(file_.data()) + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("corrupt safetensors header (invalid JSON): ") + e.what());
  }
  if (!header.is_object()) fail("corrupt safetensors header: not a JSON object");

  for (const auto& item : header.items()) {
    // (not a structured binding: clang before 16 cannot capture one in the lambda below)
    const std::string& name = item.key();
    const nlohmann::json& entry = item.value();
    auto bad = [&](const std::string& what) { fail("tensor \"" + name + "\": " + what); };
    if (name == kMetadataKey) {
      if (!entry.is_object()) fail("__metadata__ must be an object of strings");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("__metadata__[\"" + k + "\"] must be a string, got " + v.dump());
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) bad("entry must be an object, got " + entry.dump());
    SafetensorInfo info;
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) bad("missing or non-string dtype");
    info.dtype = entry["dtype"].get<std::string>();
    const size_t elem = safetensors_dtype_size(info.dtype);
    if (elem == 0) bad("unknown dtype \"" + info.dtype + "\"");
    if (!entry.contains("shape") || !entry["shape"].is_array()) bad("missing or non-array shape");
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned()) bad("shape must hold non-negative integers, got " + entry["shape"].dump());
      const uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(INT64_MAX)) bad("shape dimension too large: " + d.dump());
      info.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& off = entry.contains("data_offsets") ? entry["data_offsets"] : nlohmann::json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      bad("data_offsets must be [begin, end] with non-negative integers");
    }
    info.begin = off[0].get<uint64_t>();
    info.end = off[1].get<uint64_t>();
    if (info.begin > info.end) bad("data_offsets are reversed: " + off.dump());
    if (info.end > data_size) {
      bad("data_offsets " + off.dump() + " run past the data section (" + std::to_string(data_size) +
          " bytes): the file is truncated or corrupt");
    }
    const uint64_t expect = checked_bytes(info.shape, elem);
    if (info.end - info.begin != expect) {
      bad("data_offsets span " + std::to_string(info.end - info.begin) + " bytes but shape " +
          shape_text(info.shape) + " of " + info.dtype + " needs " + std::to_string(expect));
    }
    tensors_.emplace(name, std::move(info));
  }

  // Overlap check: sort the byte ranges; each non-empty range must start at or after the previous end.
  std::vector<std::pair<const std::string*, const SafetensorInfo*>> by_offset;
  for (const auto& [name, info] : tensors_) {
    if (info.end > info.begin) by_offset.emplace_back(&name, &info);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i].second->begin < by_offset[i - 1].second->end) {
      fail("tensors \"" + *by_offset[i - 1].first + "\" and \"" + *by_offset[i].first +
           "\" have overlapping data_offsets");
    }
  }
  // Coverage: the tensors tile the data section, as the Rust reader requires (its
  // MetadataIncompleteBuffer / InvalidOffset); a hole or trailing bytes mean a corrupt header.
  uint64_t covered = 0;
  for (const auto& [name, info] : by_offset) {
    if (info->begin > covered) {
      fail("bytes [" + std::to_string(covered) + ", " + std::to_string(info->begin) +
           ") of the data section belong to no tensor (before \"" + *name + "\"): corrupt data_offsets");
    }
    covered = info->end;
  }
  if (covered != data_size) {
    fail("bytes [" + std::to_string(covered) + ", " + std::to_string(data_size) +
         ") at the end of the data section belong to no tensor: corrupt data_offsets or bytes appended");
  }
}

const SafetensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw util::input_error(path_.string() + ": no tensor \"" + name + "\"");
  return it->second;
}

const uint8_t* SafetensorsFile::data(const std::string& name) const {
  return file_.data() + data_start_ + info(name).begin;
}

std::string serialize_safetensors(const std::vector<SafetensorView>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::map<std::string, const SafetensorView*> sorted;
  for (const auto& t : tensors) {
    if (t.name == kMetadataKey) throw util::input_error("safetensors: reserved tensor name " + t.name);
    if (!sorted.emplace(t.name, &t).second) {
      throw util::input_error("safetensors: duplicate tensor name \"" + t.name + "\"");
    }
    const size_t elem = safetensors_dtype_size(t.dtype);
    if (elem == 0) throw util::input_error("safetensors: tensor \"" + t.name + "\": unknown dtype " + t.dtype);
    if (checked_bytes(t.shape, elem) != t.nbytes) {
      throw util::input_error("safetensors: tensor \"" + t.name + "\": " + std::to_string(t.nbytes) +
                              " bytes do not match shape " + shape_text(t.shape) + " of " + t.dtype);
    }
  }
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    header[name] = {{"dtype", t->dtype}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
  for (const auto& [name, t] : sorted) out.append(static_cast<const char*>(t->data), t->nbytes);
  return out;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  util::write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace bert::model
