// Fuzzes strict JSON (util/json) and the bert-train run config parser (run/config) on arbitrary
// bytes. Input: JSON text, optionally followed by NUL-separated "--set" overrides
// ("section.key=value"), which are applied before the config is parsed.
// Invariants: a config that parses resolves to JSON (to_json) that parses back to the same config,
// and a parsed document dumps to text that parse_json reads back unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "run/config.h"
#include "util/error.h"
#include "util/json.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bert::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string text = input.substr(0, nul);
  std::vector<std::string> overrides;
  for (size_t at = nul; at != std::string::npos && at < input.size();) {
    const size_t next = input.find('\0', at + 1);
    overrides.push_back(input.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1));
    at = next;
  }

  nlohmann::json j;
  try {
    j = bert::util::parse_json(text, "fuzz.json");
  } catch (const bert::util::Error&) {
    return 0;
  }
  // What parse_json accepted, dumped, is JSON it accepts again and reads back as the same value.
  const std::string dumped = j.dump();
  BERT_FUZZ_CHECK(bert::util::parse_json(dumped, "dumped.json") == j);

  try {
    for (const auto& o : overrides) bert::run::apply_override(j, o);
    const bert::run::RunConfig c = bert::run::parse_run_config(j, "fuzz.json");
    const nlohmann::json resolved = bert::run::to_json(c);
    const bert::run::RunConfig again = bert::run::parse_run_config(resolved, "resolved.json");
    BERT_FUZZ_CHECK(bert::run::to_json(again) == resolved);
  } catch (const bert::util::Error&) {
  }
  return 0;
}
