// Fuzzes the safetensors reader (model::SafetensorsFile): the 8-byte length, the JSON header, dtypes,
// shapes (including products that overflow), data offsets (reversed, past the end, overlapping, or
// leaving bytes that no tensor covers). Input: the file's bytes.
// Invariants, once the file is accepted: every tensor's bytes lie inside the data section and can be
// read, numel() * dtype size equals its byte span, no two tensors share a byte, and re-serializing
// the tensors gives a file the reader accepts with the same names, dtypes, shapes, bytes and metadata.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "model/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bert::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bert::model::SafetensorsFile;
  const auto path = bert::fuzz::write_scratch("fuzz.safetensors",
                                              std::string_view(reinterpret_cast<const char*>(data), size));
  std::unique_ptr<SafetensorsFile> f;
  try {
    f = std::make_unique<SafetensorsFile>(path);
  } catch (const bert::util::Error&) {
    return 0;
  }
  BERT_FUZZ_CHECK(size >= 8);
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);
  const uint64_t data_size = size - 8 - header_len;

  std::vector<bert::model::SafetensorView> views;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  uint32_t checksum = 0;
  for (const auto& [name, info] : f->tensors()) {
    const size_t elem = bert::model::safetensors_dtype_size(info.dtype);
    BERT_FUZZ_CHECK(elem > 0);
    BERT_FUZZ_CHECK(info.begin <= info.end && info.end <= data_size);
    BERT_FUZZ_CHECK(static_cast<uint64_t>(info.numel()) * elem == info.end - info.begin);
    const uint8_t* p = f->data(name);
    for (uint64_t i = 0; i < info.end - info.begin; ++i) checksum += p[i];  // ASan checks each read
    if (info.end > info.begin) ranges.emplace_back(info.begin, info.end);
    views.push_back({name, info.dtype, info.shape, p, static_cast<size_t>(info.end - info.begin)});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) BERT_FUZZ_CHECK(ranges[i - 1].second <= ranges[i].first);
  try {
    (void)f->info("\x01 no such tensor");
    BERT_FUZZ_CHECK(false);
  } catch (const bert::util::Error&) {
  }

  const std::string again = bert::model::serialize_safetensors(views, f->metadata());
  const auto path2 = bert::fuzz::write_scratch("again.safetensors", again);
  const SafetensorsFile g(path2);
  BERT_FUZZ_CHECK(g.metadata() == f->metadata());
  BERT_FUZZ_CHECK(g.tensors().size() == f->tensors().size());
  for (const auto& [name, info] : f->tensors()) {
    const auto& other = g.info(name);
    BERT_FUZZ_CHECK(other.dtype == info.dtype && other.shape == info.shape);
    BERT_FUZZ_CHECK(other.end - other.begin == info.end - info.begin);
    BERT_FUZZ_CHECK(std::memcmp(g.data(name), f->data(name), info.end - info.begin) == 0);
  }
  (void)checksum;
  return 0;
}
