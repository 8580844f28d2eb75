// The safetensors file format (huggingface/safetensors), read and written here without torch:
// [u64 LE header length N][N bytes of JSON header, space-padded][tensor bytes]. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
// section) and may carry "__metadata__": {string: string}.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace bert::model {

// One tensor entry of a safetensors header.
struct SafetensorInfo {
  std::string dtype;            // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;   // row-major, may be empty (a scalar)
  uint64_t begin = 0;           // byte offsets into the data section, end - begin = numel * size
  uint64_t end = 0;
  int64_t numel() const;
};

// Bytes per element of a safetensors dtype name; 0 if the name is not a known dtype.
size_t safetensors_dtype_size(const std::string& dtype);

// A safetensors file mapped read-only and fully validated on open.
class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws Error(kInput) naming the file (and the key, where there is
  // one) when: the file is shorter than 8 bytes; the header length runs past the end of the file;
  // the header is not a JSON object; an entry lacks dtype/shape/data_offsets or has the wrong types;
  // a dtype is unknown; a shape has a negative dimension; offsets are reversed, out of range, do not
  // match numel * dtype size, overlap another tensor's, or leave bytes of the data section that no
  // tensor covers (a hole, or bytes after the last tensor); __metadata__ is not string -> string.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  // Tensor entries by name (sorted), __metadata__ excluded.
  const std::map<std::string, SafetensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // The entry for `name`; throws Error(kInput) naming file and key if it is absent.
  const SafetensorInfo& info(const std::string& name) const;
  // Pointer to the first byte of the tensor's data inside the mapping (no alignment guarantee).
  const uint8_t* data(const std::string& name) const;

 private:
  std::filesystem::path path_;
  util::MappedFile file_;
  uint64_t data_start_ = 0;  // 8 + header length
  std::map<std::string, SafetensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: little-endian bytes laid out row-major.
struct SafetensorView {
  std::string name;
  std::string dtype;            // a known safetensors dtype name
  std::vector<int64_t> shape;
  const void* data = nullptr;   // numel * dtype size bytes
  size_t nbytes = 0;
};

// Serializes tensors to the safetensors byte layout: keys sorted, data in key order, header padded
// with spaces to a multiple of 8 (as the Rust writer does), so every tensor starts 8-byte aligned.
// Throws Error(kInput) on a duplicate name, an unknown dtype or a size that does not match the shape.
std::string serialize_safetensors(const std::vector<SafetensorView>& tensors,
                                  const std::map<std::string, std::string>& metadata = {
                                      {"format", "pt"}});

// serialize_safetensors() written to `path` atomically (temp file, fsync, rename).
void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace bert::model
