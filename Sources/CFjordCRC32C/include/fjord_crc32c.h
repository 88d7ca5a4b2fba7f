#ifndef FJORD_CRC32C_H
#define FJORD_CRC32C_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Extends `crc` (start with 0) over `len` bytes at `data`. CRC-32C (Castagnoli,
/// reflected polynomial 0x82F63B78, initial and final XOR 0xFFFFFFFF), as record batch v2
/// uses. `fjord_crc32c_update(fjord_crc32c_update(0, a, n), b, m)` equals the CRC of `a`
/// followed by `b`. Uses the CPU's CRC instruction when `fjord_crc32c_hardware()` says so,
/// else the portable table code. Thread-safe; `data` may be NULL when `len` is 0.
uint32_t fjord_crc32c_update(uint32_t crc, const void *data, size_t len);

/// Same result as `fjord_crc32c_update`, always computed with the portable slicing-by-8
/// table code (for tests and benchmarks of the fallback).
uint32_t fjord_crc32c_update_portable(uint32_t crc, const void *data, size_t len);

/// 1 when `fjord_crc32c_update` uses a CPU CRC instruction (x86_64 SSE4.2 `crc32`,
/// AArch64 CRC32 `crc32cx`), 0 when it uses the portable table code.
int fjord_crc32c_hardware(void);

#ifdef __cplusplus
}
#endif
#endif
