// Strict JSON reading for configs and metadata files: syntax errors carry file:line:column, unknown
// keys are rejected with a "did you mean", wrong types and ranges name the JSON path.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "util/error.h"

namespace bert::util {

// Parses JSON text. On a syntax error throws Error(kind) "SOURCE:LINE:COL: <what>".
nlohmann::json parse_json(const std::string& text, const std::string& source,
                          ErrorKind kind = ErrorKind::kUsage);
// Reads and parses a JSON file (missing/unreadable file: Error(kind) naming it).
nlohmann::json parse_json_file(const std::filesystem::path& path, ErrorKind kind = ErrorKind::kUsage);

// `j` as compact JSON text for an error message; never throws (invalid UTF-8 in a string, possible in
// values built from command-line bytes, becomes U+FFFD instead of nlohmann's type_error).
std::string dump_for_message(const nlohmann::json& j);

// Levenshtein-closest candidate within distance 3, or "" if none is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// One JSON object read strictly. Each get() names a known key; finish() rejects any other key.
// Errors are Error(kUsage) prefixed with "<source>: <path>.<key>".
//   JsonSection s(j["training"], "run.json", "training");
//   cfg.lr = s.get("lr", 5e-4);  s.finish();
class JsonSection {
 public:
  // `obj` may be null (section absent: every key takes its default). Non-object: error.
  JsonSection(const nlohmann::json& obj, std::string source, std::string path);

  // Value of `key` converted to T, or `fallback` if absent. Wrong type: error naming the path.
  template <typename T>
  T get(const std::string& key, const T& fallback) {
    known_.push_back(key);
    if (obj_ == nullptr || !obj_->contains(key)) return fallback;
    return convert<T>(key);
  }
  // Value of a key that must be present.
  template <typename T>
  T require(const std::string& key) {
    known_.push_back(key);
    if (obj_ == nullptr || !obj_->contains(key)) fail(key, "is required but missing");
    return convert<T>(key);
  }
  // A sub-object (may be absent).
  const nlohmann::json* child(const std::string& key);
  // Throws if the object has a key that no get()/require()/child() named.
  void finish() const;
  // Throws Error(kUsage) "<source>: <path>.<key> <what>".
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  const std::string& path() const { return path_; }

 private:
  template <typename T>
  T convert(const std::string& key) {
    const nlohmann::json& v = (*obj_)[key];
    if (!type_matches<T>(v)) fail(key, "has the wrong type: expected " + type_name<T>() +
                                           ", got " + dump_for_message(v));
    return v.get<T>();
  }
  template <typename T> static bool type_matches(const nlohmann::json& v);
  template <typename T> static std::string type_name();

  const nlohmann::json* obj_ = nullptr;
  std::string source_;
  std::string path_;
  std::vector<std::string> known_;
};

template <> inline bool JsonSection::type_matches<bool>(const nlohmann::json& v) { return v.is_boolean(); }
// An integer outside int's range is a wrong value, not one to truncate ("batch_size": 4294967328 is not 32).
template <> inline bool JsonSection::type_matches<int>(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(INT32_MAX);
  return v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
}
template <> inline bool JsonSection::type_matches<int64_t>(const nlohmann::json& v) { return v.is_number_integer(); }
template <> inline bool JsonSection::type_matches<uint64_t>(const nlohmann::json& v) { return v.is_number_unsigned(); }
template <> inline bool JsonSection::type_matches<double>(const nlohmann::json& v) { return v.is_number(); }
template <> inline bool JsonSection::type_matches<std::string>(const nlohmann::json& v) { return v.is_string(); }
template <> inline bool JsonSection::type_matches<std::vector<std::string>>(const nlohmann::json& v) {
  if (!v.is_array()) return false;
  for (const auto& e : v) if (!e.is_string()) return false;
  return true;
}
template <> inline bool JsonSection::type_matches<std::vector<double>>(const nlohmann::json& v) {
  if (!v.is_array()) return false;
  for (const auto& e : v) if (!e.is_number()) return false;
  return true;
}
template <> inline bool JsonSection::type_matches<nlohmann::json>(const nlohmann::json&) { return true; }
template <> inline std::string JsonSection::type_name<nlohmann::json>() { return "any JSON value"; }
template <> inline std::string JsonSection::type_name<bool>() { return "true or false"; }
template <> inline std::string JsonSection::type_name<int>() { return "an integer from -2147483648 to 2147483647"; }
template <> inline std::string JsonSection::type_name<int64_t>() { return "an integer"; }
template <> inline std::string JsonSection::type_name<uint64_t>() { return "a non-negative integer"; }
template <> inline std::string JsonSection::type_name<double>() { return "a number"; }
template <> inline std::string JsonSection::type_name<std::string>() { return "a string"; }
template <> inline std::string JsonSection::type_name<std::vector<std::string>>() { return "an array of strings"; }
template <> inline std::string JsonSection::type_name<std::vector<double>>() { return "an array of numbers"; }

}  // namespace bert::util
