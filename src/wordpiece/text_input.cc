// Input checks and chunking for text files.
#include "wordpiece/text_input.h"

#include <algorithm>
#include <fstream>

#include "util/error.h"

namespace bert::wordpiece {
namespace fs = std::filesystem;

uint64_t check_text_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw util::input_error(path.string() + " does not exist; check the path passed to --input");
  }
  if (fs::is_directory(path, ec)) {
    throw util::input_error(path.string() + " is a directory; pass the text files inside it (e.g. " +
                            path.string() + "/*.txt)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw util::input_error("cannot read " + path.string() + "; check its permissions");
  const uint64_t size = fs::file_size(path, ec);
  if (ec || size == 0) {
    throw util::input_error(path.string() + " is empty; pass a UTF-8 text file with one sentence or "
                            "paragraph per line");
  }
  std::string head(static_cast<size_t>(std::min<uint64_t>(size, 64 * 1024)), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  size_t bad = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(head.data());
  for (size_t i = 0; i < head.size();) {
    char32_t c;
    bool valid;
    size_t len = text::decode_utf8(p + i, head.size() - i, &c, &valid);
    // A sequence cut by the 64 KiB window is not evidence of binary data.
    const bool cut = !valid && i + len == head.size() && head.size() < size;
    if ((!valid && !cut) || (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f')) bad += len;
    i += len;
  }
  // Over 10% suspicious bytes in a sample large enough to judge, or over half in a tiny file.
  if ((bad * 10 > head.size() && head.size() >= 512) || bad * 2 > head.size()) {
    throw util::input_error(path.string() + " looks like a binary file (" + std::to_string(bad) + " of the first " +
                            std::to_string(head.size()) + " bytes are NUL, control or invalid UTF-8); "
                            "pass UTF-8 text (convert with iconv, or extract the text first)");
  }
  return size;
}

std::vector<Chunk> cut_chunks(std::string_view data, size_t target) {
  std::vector<Chunk> chunks;
  auto boundary = [](char c) {
    const auto b = static_cast<uint8_t>(c);
    return b == ' ' || b == '\t' || text::is_punctuation(b);
  };
  size_t start = 0;
  bool skip = false;
  while (start < data.size()) {
    size_t end = std::min(data.size(), start + target);
    bool next_skip = false;
    if (end < data.size()) {
      const std::string_view window = data.substr(start, end - start);
      size_t nl = window.rfind('\n');
      if (nl != std::string_view::npos) {
        end = start + nl + 1;
      } else {
        size_t cut = end;
        while (cut > start && !boundary(data[cut])) --cut;
        if (cut > start) {
          end = cut;
        } else {  // one word longer than a chunk: cut at a character boundary, skip its tail later
          while (end > start + 1 && (static_cast<uint8_t>(data[end]) & 0xC0) == 0x80) --end;
          next_skip = true;
        }
      }
    }
    chunks.push_back({start, data.substr(start, end - start), skip});
    skip = next_skip;
    start = end;
  }
  return chunks;
}

uint64_t count_lines(std::string_view data) {
  uint64_t n = static_cast<uint64_t>(std::count(data.begin(), data.end(), '\n'));
  if (!data.empty() && data.back() != '\n') ++n;
  return n;
}

}  // namespace bert::wordpiece
