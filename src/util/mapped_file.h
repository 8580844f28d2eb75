// Read-only memory-mapped file: shards are read in place, so memory stays bounded by the page cache
// however large the corpus is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace bert::util {

class MappedFile {
 public:
  // Maps `path` read-only. Throws Error(kInput) naming the path if it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace bert::util
