// A per-test temporary directory, removed on destruction. Removal walks the tree itself: the
// libtorch.so of the torch 2.11 wheel exports a broken std::filesystem::remove_all (it crashes with
// a null call), which wins over libstdc++'s in any binary linked against torch.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace bert::model::testing {

// Deletes `p` and everything below it; errors are ignored (best effort, for test cleanup).
inline void remove_tree(const std::filesystem::path& p) {
  std::error_code ec;
  if (std::filesystem::is_directory(std::filesystem::symlink_status(p, ec))) {
    for (const auto& e : std::filesystem::directory_iterator(p, ec)) remove_tree(e.path());
  }
  std::filesystem::remove(p, ec);
}

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
    remove_tree(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    if (!keep_) remove_tree(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Leave the directory in place (to inspect a failed test's files).
  void keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace bert::model::testing
