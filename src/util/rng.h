// Seeded random streams. Every random decision in the project draws from an Rng derived from
// (seed, purpose, a, b, c) -- e.g. ("mask", epoch, step, rank) -- so a run repeats exactly and a
// resumed run continues the same trajectory: no stream carries hidden state across steps.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace bert::util {

// Mixes a 64-bit value (splitmix64 finalizer): a bijection with good avalanche.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// 64-bit FNV-1a of a string: names a purpose ("mask", "shuffle", "init") in seed derivation.
constexpr uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// The seed of the stream for (seed, purpose, a, b, c). Distinct tuples give independent streams.
constexpr uint64_t derive_seed(uint64_t seed, std::string_view purpose, uint64_t a = 0,
                               uint64_t b = 0, uint64_t c = 0) {
  uint64_t h = mix64(seed ^ hash_name(purpose));
  h = mix64(h ^ a);
  h = mix64(h ^ (b * 0x9e3779b97f4a7c15ULL));
  h = mix64(h ^ (c * 0xc2b2ae3d27d4eb4fULL));
  return h;
}

// xoshiro256** generator: fast, 256-bit state, passes BigCrush. State is plain data so it can be
// stored in a checkpoint.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& s : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      s = mix64(x);
    }
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform integer in [0, n), n > 0, without modulo bias (Lemire's multiply-and-reject).
  uint64_t uniform(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next_u64()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform double in [0, 1) with 53 random bits.
  double uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  const std::array<uint64_t, 4>& state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_{};
};

}  // namespace bert::util
