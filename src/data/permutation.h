// A seeded random permutation of [0, n) computed per element (a Feistel network with cycle-walking),
// so an epoch's shuffle needs no memory and any position can be looked up directly on resume.
#pragma once

#include <cstdint>

#include "util/rng.h"

namespace bert::data {

class Permutation {
 public:
  // The permutation of [0, n) selected by `seed`; n == 0 is allowed (nothing to permute).
  Permutation(uint64_t n, uint64_t seed) : n_(n) {
    int bits = 2;
    while (bits < 64 && (uint64_t{1} << bits) < n) bits += 2;  // even, so both halves are equal
    half_bits_ = bits / 2;
    half_mask_ = (uint64_t{1} << half_bits_) - 1;
    for (int r = 0; r < kRounds; ++r) keys_[r] = util::derive_seed(seed, "feistel", static_cast<uint64_t>(r));
  }

  uint64_t size() const { return n_; }

  // The element at position i (i < size()). A bijection on [0, n): each element appears once.
  uint64_t operator()(uint64_t i) const {
    // The Feistel network permutes [0, 4^half_bits) >= n; walking the cycle until the value falls
    // back inside [0, n) restricts it to a permutation of [0, n) (expected < 4 steps).
    uint64_t x = i;
    do x = encrypt(x); while (x >= n_);
    return x;
  }

 private:
  static constexpr int kRounds = 4;
  uint64_t encrypt(uint64_t x) const {
    uint64_t left = x >> half_bits_, right = x & half_mask_;
    for (int r = 0; r < kRounds; ++r) {
      uint64_t next = left ^ (util::mix64(right ^ keys_[r]) & half_mask_);
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }

  uint64_t n_;
  int half_bits_ = 1;
  uint64_t half_mask_ = 1;
  uint64_t keys_[kRounds] = {};
};

}  // namespace bert::data
