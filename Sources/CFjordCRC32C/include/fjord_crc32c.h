#ifndef FJORD_CRC32C_H
#define FJORD_CRC32C_H
#include <stddef.h>
#include <stdint.h>
/// Extends `crc` (start with 0) over `len` bytes at `data`. CRC-32C (Castagnoli), as record batch v2 uses.
uint32_t fjord_crc32c_update(uint32_t crc, const void *data, size_t len);
#endif
