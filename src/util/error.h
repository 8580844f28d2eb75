// The project's one error type. Library code throws it with enough context (file, line, key) for a
// user to act; CLI mains catch it and map its kind to an exit code. Nothing in the library exits.
#pragma once

#include <stdexcept>
#include <string>

namespace bert::util {

// What went wrong, which decides the exit code a CLI main returns.
enum class ErrorKind {
  kUsage,        // bad flags or config values: exit 2
  kInput,        // unreadable or malformed input data: exit 1
  kIo,           // a failure writing or reading the filesystem: exit 1
  kRuntime,      // anything else that stops the work (NaN streak, device missing): exit 1
  kInterrupted,  // SIGINT/SIGTERM arrived before there was anything to save: exit 128 + signal
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Shorthands: `throw usage_error("...")`.
inline Error usage_error(const std::string& m) { return Error(ErrorKind::kUsage, m); }
inline Error input_error(const std::string& m) { return Error(ErrorKind::kInput, m); }
inline Error io_error(const std::string& m) { return Error(ErrorKind::kIo, m); }
inline Error runtime_error(const std::string& m) { return Error(ErrorKind::kRuntime, m); }

// Exit code for an error kind: 2 for usage/config, 130 (SIGINT's) for an interruption, 1 otherwise.
// (cli::report_exception gives an interruption 128 + the actual signal.)
inline int exit_code_for(ErrorKind kind) {
  return kind == ErrorKind::kUsage ? 2 : kind == ErrorKind::kInterrupted ? 130 : 1;
}

}  // namespace bert::util
