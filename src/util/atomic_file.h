// Crash-safe file and directory replacement (the leveldb discipline): write to a temporary sibling,
// fsync, rename over the target, fsync the parent. A reader sees the old or the new file, never half.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace bert::util {

// Writes `content` to `path` atomically. Throws Error(kIo) naming the path on failure (disk full,
// permissions); the previous file, if any, is left untouched.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Reads a whole file. Throws Error(kInput) naming the path if it is missing or unreadable.
std::string read_file(const std::filesystem::path& path);

// fsyncs a file or directory by path. Throws Error(kIo) on failure.
void fsync_path(const std::filesystem::path& path);

// A directory that becomes visible at `final_path` only on commit(). Until then files are written into
// tmp_path(); if the object dies uncommitted (an exception, a full disk) the temporary is removed, so
// no half-written output directory is ever left behind.
class AtomicDir {
 public:
  // Creates `<final_path>.tmp-<pid>`. Throws Error(kIo) if the parent is not writable.
  explicit AtomicDir(std::filesystem::path final_path);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  const std::filesystem::path& tmp_path() const { return tmp_; }
  // fsyncs every file inside, replaces `final_path` (removing an old one) and fsyncs the parent.
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path tmp_;
  bool committed_ = false;
};

}  // namespace bert::util
