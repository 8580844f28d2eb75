// Atomic write-then-rename for files and directories.
#include "util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace bert::util {
namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("cannot write " + path.string() + ": " + errno_text() +
                     " (is the disk full or the directory read-only?)");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io_error("cannot open " + path.string() + " to sync it: " + errno_text());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw io_error("cannot fsync " + path.string() + ": " + errno_text());
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw io_error("cannot create " + tmp.string() + ": " + errno_text() +
                   " (check that " + parent.string() + " exists and is writable)");
  }
  try {
    write_all(fd, content, tmp);
    if (::fsync(fd) != 0) throw io_error("cannot fsync " + tmp.string() + ": " + errno_text());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw io_error("cannot rename " + tmp.string() + " to " + path.string() + ": " + why);
  }
  fsync_path(parent);
}

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw input_error(path.string() + " is a directory; pass a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw input_error("cannot read " + path.string() + ": " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

AtomicDir::AtomicDir(fs::path final_path) : final_(std::move(final_path)) {
  tmp_ = final_;
  tmp_ += ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp_, ec);
  fs::create_directories(tmp_, ec);
  if (ec) {
    throw io_error("cannot create directory " + tmp_.string() + ": " + ec.message() +
                   " (check that the output location is writable)");
  }
}

AtomicDir::~AtomicDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void AtomicDir::commit() {
  for (const auto& entry : fs::recursive_directory_iterator(tmp_)) {
    if (entry.is_regular_file()) fsync_path(entry.path());
  }
  fsync_path(tmp_);
  std::error_code ec;
  fs::path old = final_;
  old += ".old-" + std::to_string(::getpid());
  bool had_old = fs::exists(final_, ec);
  if (had_old) {
    fs::rename(final_, old, ec);
    if (ec) throw io_error("cannot move aside " + final_.string() + ": " + ec.message());
  }
  fs::rename(tmp_, final_, ec);
  if (ec) {
    if (had_old) fs::rename(old, final_, ec);
    throw io_error("cannot rename " + tmp_.string() + " to " + final_.string() + ": " + ec.message());
  }
  committed_ = true;
  if (had_old) fs::remove_all(old, ec);
  fsync_path(final_.has_parent_path() ? final_.parent_path() : fs::path("."));
}

}  // namespace bert::util
