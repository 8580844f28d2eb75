// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), as TFRecord files frame their records.
// Written here because Debian 12 ships no C/C++ CRC-32C library (only python3-crc32c) and Boost.CRC
// would add a large header-only dependency for twenty lines; checked against RFC 3720's test vectors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bert::util {

// The CRC-32C of `data`, continuing from `crc` (0 to start).
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

// TFRecord's masked form: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(std::string_view data);

}  // namespace bert::util
