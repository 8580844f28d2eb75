// flock-based directory lock.
#include "util/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "util/error.h"
#include "util/log.h"

namespace bert::util {

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[512];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

// Records who holds the lock in the file (the next contender names it).
void write_holder(int fd, const std::filesystem::path& path, const std::string& purpose) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  char when[64] = {0};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  const std::string who = purpose + " pid " + std::to_string(::getpid()) + " on " + host + " since " + when + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, who.data(), who.size(), 0) != static_cast<ssize_t>(who.size())) {
    ::close(fd);
    throw io_error("cannot write the lock file " + path.string() + ": " + std::strerror(errno));
  }
}

int open_lock_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("cannot create the lock file " + path.string() + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

DirLock DirLock::acquire(const std::filesystem::path& dir, const std::string& purpose) {
  const std::filesystem::path path = dir / ".lock";
  const int fd = open_lock_file(path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = read_all(fd);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw usage_error(dir.string() + " is in use by another process (" +
                        (holder.empty() ? std::string("holder unknown") : holder) +
                        "); wait for it to finish, stop it, or give this run another checkpoint.dir");
    }
    throw io_error("cannot lock " + path.string() + ": " + std::strerror(err));
  }
  write_holder(fd, path, purpose);
  return DirLock(fd);
}

DirLock DirLock::wait_for(const std::filesystem::path& lock_file, const std::string& purpose) {
  const int fd = open_lock_file(lock_file);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      const std::string holder = read_all(fd);
      log_info("waiting for another process (" + (holder.empty() ? std::string("holder unknown") : holder) +
               ") that holds " + lock_file.string());
    }
    int rc;
    while ((rc = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      const int err = errno;
      ::close(fd);
      throw io_error("cannot lock " + lock_file.string() + ": " + std::strerror(err));
    }
  }
  write_holder(fd, lock_file, purpose);
  return DirLock(fd);
}

DirLock::DirLock(DirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays, naming the last holder
}

}  // namespace bert::util
