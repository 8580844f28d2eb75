// One writer per directory: an exclusive advisory lock (flock) on DIR/.lock (or on a named lock file), held for the life of
// the object and released by the kernel when the process ends however it ends, so a lock left by a
// dead process never blocks. The file also records who holds it (pid, host, start time), which the
// refusal names.
#pragma once

#include <filesystem>
#include <string>

namespace bert::util {

class DirLock {
 public:
  // Takes the lock on `dir` (which must exist) for `purpose` (e.g. "training"). Throws
  // Error(kUsage) naming the holder when another process has it, Error(kIo) when the lock file
  // cannot be created.
  static DirLock acquire(const std::filesystem::path& dir, const std::string& purpose);
  // Takes the lock on the file `lock_file` (created if absent), waiting while another process
  // holds it; says once, at info level, whom it waits for. For work that two processes may start
  // together and one should do (building the same token-cache entry). Throws Error(kIo) when the
  // file cannot be created or locked.
  static DirLock wait_for(const std::filesystem::path& lock_file, const std::string& purpose);
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&&) = delete;
  DirLock(const DirLock&) = delete;
  ~DirLock();

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace bert::util
