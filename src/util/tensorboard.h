// TensorBoard event files (TFRecord framing of `Event` protobufs), written without TensorFlow or
// protobuf: a record is [uint64 length][masked CRC-32C of the length][Event bytes][masked CRC-32C
// of the bytes], little-endian; the first Event of a file holds file_version "brain.Event:2", each
// later one a wall time, a step and a Summary of scalar Values. The two messages are encoded by hand
// (five fields in all), which is less code and fewer dependencies than linking libprotobuf for them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace bert::util {

using Scalars = std::vector<std::pair<std::string, double>>;  // (tag, value)

class EventFileWriter {
 public:
  // Creates `dir` if needed and a new file "events.out.tfevents.<unix seconds>.<host>.<pid>.<n>" in it
  // (n counts the files already there, so names sort in the order they were started). Throws Error(kIo)
  // naming the path if it cannot be created.
  explicit EventFileWriter(const std::filesystem::path& dir);

  // One Event with these scalars at `step`, flushed at once (a crash loses nothing written).
  void add_scalars(int64_t step, const Scalars& scalars, double wall_time_s = -1);
  // SessionLog START at `first_step`: TensorBoard's EventAccumulator then drops the points at steps
  // >= first_step that it read before (a restart from an earlier step). A resumed run writes it with
  // the first step it will train.
  void session_start(int64_t first_step, double wall_time_s = -1);

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& event);

  std::filesystem::path path_;
  std::ofstream out_;
};

// Rewrites (atomically) every event file in `dir` that holds an Event with a step above `step`,
// keeping the others: a run resumed from an earlier checkpoint shows no point of the abandoned branch.
// A torn last record (a crash in a write) is dropped too. Missing `dir`: nothing to do.
void drop_events_after(const std::filesystem::path& dir, int64_t step);

// The numeric fields of a metrics.jsonl row as TensorBoard scalars: "<type>/<key>", nested objects
// as "<type>/<key>/<inner key>"; "type" and "step" themselves are not scalars; booleans are skipped.
Scalars json_scalars(const nlohmann::json& row);

// What a file holds, for tests and tools: one entry per scalar Value (SessionLog events give tag
// "__session_start__"). Throws Error(kInput) naming the file on a bad CRC or a malformed record.
struct ScalarEvent {
  int64_t step = 0;
  double wall_time_s = 0;
  std::string tag;
  float value = 0;
};
std::vector<ScalarEvent> read_scalar_events(const std::filesystem::path& file);

}  // namespace bert::util
