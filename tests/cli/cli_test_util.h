// Helpers shared by the end-to-end tests that run the real binaries: run a shell command capturing
// its output and exit code, read a file whole.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace bert::cli_test {

struct Result {
  int code = -1;       // the exit code, or 128 + the signal that killed it
  std::string output;  // stdout and stderr together
};

// Runs `cmd` (a shell command line; compound commands are fine) capturing stdout and stderr.
inline Result run(const std::string& cmd) {
  Result r;
  FILE* p = ::popen(("( " + cmd + " ) 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// The bytes of a file ("" if it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace bert::cli_test
