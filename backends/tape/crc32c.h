#pragma once

// CRC-32C (Castagnoli), the checksum framing each record of a virtual tape
// image.

#include <cstddef>
#include <cstdint>

namespace hsmfs::tape {

// Extends `crc` (0 to start) over `len` bytes at `data`. Uses the CPU's
// CRC-32C instruction where there is one.
uint32_t Crc32c(uint32_t crc, const void* data, size_t len);
// The portable table version (exposed so tests can compare the two).
uint32_t Crc32cSw(uint32_t crc, const void* data, size_t len);

}  // namespace hsmfs::tape
