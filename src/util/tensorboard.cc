#include "util/tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

#include "util/atomic_file.h"
#include "util/crc32c.h"
#include "util/error.h"

namespace bert::util {
namespace fs = std::filesystem;
namespace {

// ---- protobuf wire format: the few field kinds an Event needs ----
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, int field, int wire_type) { put_varint(out, static_cast<uint64_t>(field << 3 | wire_type)); }
template <typename T>
void put_fixed(std::string& out, T v) {  // little-endian, as this host (x86-64, aarch64) stores it
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//         LogMessage log_message = 6 (deprecated); SessionLog session_log = 7; }
// Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
// SessionLog { SessionStatus status = 1; }  (START = 1)
std::string event_head(double wall_time_s, int64_t step) {
  std::string e;
  put_tag(e, 1, 1);
  put_fixed(e, wall_time_s);
  if (step != 0) {
    put_tag(e, 2, 0);
    put_varint(e, static_cast<uint64_t>(step));
  }
  return e;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---- reading back ----
struct Reader {
  const std::string& s;
  size_t pos = 0;
  bool done() const { return pos >= s.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= s.size()) throw std::runtime_error("truncated varint");
      const auto b = static_cast<unsigned char>(s[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("varint too long");
  }
  std::string take(size_t n) {
    if (n > s.size() - pos) throw std::runtime_error("truncated field");
    std::string out = s.substr(pos, n);
    pos += n;
    return out;
  }
  // One field: its number, wire type, and its bytes (varints as their value in `value`).
  struct Field {
    int number = 0, wire = 0;
    uint64_t value = 0;
    std::string bytes;
  };
  Field field() {
    Field f;
    const uint64_t key = varint();
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    switch (f.wire) {
      case 0: f.value = varint(); break;
      case 1: f.bytes = take(8); break;
      case 2: f.bytes = take(varint()); break;
      case 5: f.bytes = take(4); break;
      default: throw std::runtime_error("unsupported wire type " + std::to_string(f.wire));
    }
    return f;
  }
};

template <typename T>
T fixed_of(const std::string& bytes) {
  T v;
  std::memcpy(&v, bytes.data(), sizeof(T));
  return v;
}

// The records of an event file; a torn last record ends the list (`complete` false).
struct Records {
  std::vector<std::string> events;
  bool complete = true;
};
Records read_records(const fs::path& file) {
  const std::string s = read_file(file);
  Records r;
  size_t pos = 0;
  while (pos < s.size()) {
    if (s.size() - pos < 12) {
      r.complete = false;
      break;
    }
    const std::string len_bytes = s.substr(pos, 8);
    const auto len = fixed_of<uint64_t>(len_bytes);
    if (fixed_of<uint32_t>(s.substr(pos + 8, 4)) != masked_crc32c(len_bytes)) {
      throw input_error(file.string() + ": bad length CRC in the record at byte " + std::to_string(pos));
    }
    if (len > s.size() - pos - 12 || s.size() - pos - 12 - len < 4) {
      r.complete = false;
      break;
    }
    std::string data = s.substr(pos + 12, len);
    if (fixed_of<uint32_t>(s.substr(pos + 12 + len, 4)) != masked_crc32c(data)) {
      throw input_error(file.string() + ": bad data CRC in the record at byte " + std::to_string(pos));
    }
    r.events.push_back(std::move(data));
    pos += 12 + len + 4;
  }
  return r;
}

std::string frame(const std::string& event) {
  std::string rec;
  std::string len;
  put_fixed(len, static_cast<uint64_t>(event.size()));
  rec += len;
  put_fixed(rec, masked_crc32c(len));
  rec += event;
  put_fixed(rec, masked_crc32c(event));
  return rec;
}

int64_t step_of(const std::string& event) {
  Reader r{event};
  int64_t step = 0;
  while (!r.done()) {
    const auto f = r.field();
    if (f.number == 2 && f.wire == 0) step = static_cast<int64_t>(f.value);
  }
  return step;
}

bool is_event_file(const fs::path& p) { return p.filename().string().find("tfevents") != std::string::npos; }

}  // namespace

EventFileWriter::EventFileWriter(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  size_t existing = 0;
  if (fs::is_directory(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir, ec)) existing += is_event_file(e.path()) ? 1 : 0;
  }
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  const auto seconds = static_cast<int64_t>(now_s());
  path_ = dir / ("events.out.tfevents." + std::to_string(seconds) + "." + host + "." + std::to_string(::getpid()) + "." +
                 std::to_string(existing));
  out_.open(path_, std::ios::binary | std::ios::trunc);
  if (!out_) throw io_error("cannot create the TensorBoard event file " + path_.string() + ": check that " + dir.string() + " is writable, or set runtime.tensorboard = false");
  std::string e = event_head(now_s(), 0);
  put_bytes(e, 3, "brain.Event:2");
  write_record(e);
}

void EventFileWriter::write_record(const std::string& event) {
  out_ << frame(event);
  out_.flush();
  if (!out_) throw io_error("cannot write the TensorBoard event file " + path_.string() + " (disk full?)");
}

void EventFileWriter::add_scalars(int64_t step, const Scalars& scalars, double wall_time_s) {
  if (scalars.empty()) return;
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    put_bytes(v, 1, tag);
    put_tag(v, 2, 5);
    put_fixed(v, static_cast<float>(value));
    put_bytes(summary, 1, v);
  }
  std::string e = event_head(wall_time_s < 0 ? now_s() : wall_time_s, step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void EventFileWriter::session_start(int64_t step, double wall_time_s) {
  std::string log;
  put_tag(log, 1, 0);
  put_varint(log, 1);  // START
  std::string e = event_head(wall_time_s < 0 ? now_s() : wall_time_s, step);
  put_bytes(e, 7, log);
  write_record(e);
}

void drop_events_after(const fs::path& dir, int64_t step) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!is_event_file(entry.path())) continue;
    const Records records = read_records(entry.path());
    std::string kept;
    bool dropped = !records.complete;
    for (const auto& e : records.events) {
      if (step_of(e) > step) {
        dropped = true;
      } else {
        kept += frame(e);
      }
    }
    if (dropped) write_file_atomic(entry.path(), kept);
  }
}

Scalars json_scalars(const nlohmann::json& row) {
  Scalars out;
  const std::string type = row.value("type", std::string("metrics"));
  auto walk = [&](const auto& self, const nlohmann::json& j, const std::string& prefix) -> void {
    for (const auto& [key, value] : j.items()) {
      if (prefix == type && (key == "type" || key == "step")) continue;
      if (value.is_number()) {
        out.emplace_back(prefix + "/" + key, value.template get<double>());
      } else if (value.is_object()) {
        self(self, value, prefix + "/" + key);
      }
    }
  };
  walk(walk, row, type);
  return out;
}

std::vector<ScalarEvent> read_scalar_events(const fs::path& file) {
  std::vector<ScalarEvent> out;
  for (const std::string& event : read_records(file).events) {
    try {
      Reader r{event};
      int64_t step = 0;
      double wall = 0;
      std::vector<ScalarEvent> values;
      while (!r.done()) {
        const auto f = r.field();
        if (f.number == 1 && f.wire == 1) wall = fixed_of<double>(f.bytes);
        if (f.number == 2 && f.wire == 0) step = static_cast<int64_t>(f.value);
        if (f.number == 7 && f.wire == 2) values.push_back({0, 0, "__session_start__", 0});
        if (f.number == 5 && f.wire == 2) {
          Reader summary{f.bytes};
          while (!summary.done()) {
            const auto v = summary.field();
            if (v.number != 1 || v.wire != 2) continue;
            Reader value{v.bytes};
            ScalarEvent s;
            while (!value.done()) {
              const auto g = value.field();
              if (g.number == 1 && g.wire == 2) s.tag = g.bytes;
              if (g.number == 2 && g.wire == 5) s.value = fixed_of<float>(g.bytes);
            }
            values.push_back(s);
          }
        }
      }
      for (auto& v : values) {
        v.step = step;
        v.wall_time_s = wall;
        out.push_back(v);
      }
    } catch (const std::runtime_error& e) {
      throw input_error(file.string() + ": a malformed Event record: " + e.what());
    }
  }
  return out;
}

}  // namespace bert::util
