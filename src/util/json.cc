// Strict JSON parsing with positions, and "did you mean" for unknown keys.
#include "util/json.h"

#include <algorithm>
#include <set>

#include "util/atomic_file.h"

namespace bert::util {

namespace {
// 1-based byte offset of the token a parse rejects. nlohmann's parse_error carries it; its
// out_of_range (a number beyond a double, "1e999") does not, so a second pass finds it with SAX.
size_t error_byte(const std::string& text) {
  struct Locate : nlohmann::json::json_sax_t {
    size_t byte = 0;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string& token, const nlohmann::json::exception&) override {
      byte = position >= token.size() ? position - token.size() + 1 : position;  // the token's first byte
      return false;
    }
  } locate;
  nlohmann::json::sax_parse(text, &locate);
  return locate.byte;
}
}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& source, ErrorKind kind) {
  // A duplicate key would silently keep its last value: in a config that hides a typo'd override.
  std::vector<std::set<std::string>> seen;  // keys of each open object
  std::vector<std::string> path;            // the key each open object was found under
  std::string last_key, duplicate;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      seen.emplace_back();
      path.push_back(last_key);
    } else if (event == E::object_end) {
      seen.pop_back();
      path.pop_back();
    } else if (event == E::key) {
      last_key = parsed.get<std::string>();
      if (!seen.back().insert(last_key).second && duplicate.empty()) {
        for (const auto& p : path) duplicate += p.empty() ? "" : p + ".";
        duplicate += last_key;
      }
    } else if (event == E::array_start) {
      last_key.clear();
    }
    return true;
  };
  try {
    nlohmann::json j = nlohmann::json::parse(text, callback);
    if (!duplicate.empty()) {
      throw Error(kind, source + ": the key \"" + duplicate + "\" appears twice; keep one (JSON keeps only the last)");
    }
    return j;
  } catch (const nlohmann::json::exception& e) {
    // parse_error (syntax) or out_of_range (a number too large): both are bad input, with a position.
    const auto* syntax = dynamic_cast<const nlohmann::json::parse_error*>(&e);
    const size_t byte = syntax != nullptr ? syntax->byte : error_byte(text);
    size_t line = 1, col = 1;
    size_t end = std::min<size_t>(byte == 0 ? 0 : byte - 1, text.size());
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    std::string what = e.what();
    auto pos = what.find("syntax error");
    if (pos == std::string::npos && what.rfind("[json.exception.", 0) == 0) pos = what.find("] ") + 2;
    if (pos != std::string::npos) what = what.substr(pos);
    throw Error(kind, source + ":" + std::to_string(line) + ":" + std::to_string(col) +
                          ": invalid JSON: " + what);
  }
}

nlohmann::json parse_json_file(const std::filesystem::path& path, ErrorKind kind) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw Error(kind, e.what());
  }
  return parse_json(text, path.string(), kind);
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string dump_for_message(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = 4;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) { best_d = d; best = c; }
  }
  return best;
}

JsonSection::JsonSection(const nlohmann::json& obj, std::string source, std::string path)
    : source_(std::move(source)), path_(std::move(path)) {
  if (obj.is_null()) return;
  if (!obj.is_object()) {
    throw usage_error(source_ + ": " + path_ + " must be a JSON object, got " + dump_for_message(obj));
  }
  obj_ = &obj;
}

const nlohmann::json* JsonSection::child(const std::string& key) {
  known_.push_back(key);
  if (obj_ == nullptr || !obj_->contains(key)) return nullptr;
  return &(*obj_)[key];
}

void JsonSection::finish() const {
  if (obj_ == nullptr) return;
  for (const auto& item : obj_->items()) {
    if (std::find(known_.begin(), known_.end(), item.key()) != known_.end()) continue;
    std::string hint = closest_match(item.key(), known_);
    std::string msg = "is not a known key";
    if (!hint.empty()) msg += "; did you mean \"" + hint + "\"?";
    else {
      msg += "; known keys:";
      for (const auto& k : known_) msg += " " + k;
    }
    fail(item.key(), msg);
  }
}

void JsonSection::fail(const std::string& key, const std::string& what) const {
  throw usage_error(source_ + ": " + (path_.empty() ? key : path_ + "." + key) + " " + what);
}

}  // namespace bert::util
