// CRC-32C (Castagnoli) for Kafka record batches (magic 2).
//
// Three implementations, chosen once at run time:
//  - x86_64 with SSE4.2: the `crc32` instruction, 8 bytes at a time;
//  - AArch64 with the CRC32 extension: `crc32cx`, 8 bytes at a time;
//  - anything else: a portable slicing-by-8 table.
//
// The instruction has a latency of about three cycles but can start one per cycle, so for
// large buffers the hardware path runs three independent CRCs over three adjacent
// stretches of the input and joins them afterwards. Joining uses linearity: for the raw
// (not inverted) CRC register `R(r, data)`,
//
//     R(r, A || B) = Z_|B|(R(r, A)) ^ R(0, B)
//
// where `Z_n` is the linear map "feed n zero bytes", applied here with four 256-entry
// tables (one per byte of the register) built at start-up for each stretch length.

#include "fjord_crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#  include <nmmintrin.h>
#  define FJORD_CRC_X86 1
#elif defined(__aarch64__) && (defined(__ARM_FEATURE_CRC32) || defined(__linux__) || defined(__APPLE__))
#  define FJORD_CRC_ARM 1
#  if defined(__linux__)
#    include <sys/auxv.h>
#    ifndef HWCAP_CRC32
#      define HWCAP_CRC32 (1 << 7)
#    endif
#  endif
#endif

/// Reflected CRC-32C polynomial.
#define FJORD_CRC32C_POLY 0x82F63B78u

/// Bytes per stream in one interleaved block of the hardware path (three streams each):
/// long blocks for the bulk, then medium and short ones for the tail and small buffers.
#define FJORD_CRC_LONG 8192
#define FJORD_CRC_MEDIUM 256
#define FJORD_CRC_SHORT 64

/// Slicing-by-8 tables: `crc_table[k][b]` is byte `b` followed by `k` zero bytes.
static uint32_t crc_table[8][256];
/// Zero-extension operators `Z_LONG`, `Z_MEDIUM`, `Z_SHORT`: one 256-entry table per
/// register byte.
static uint32_t shift_long[4][256];
static uint32_t shift_medium[4][256];
static uint32_t shift_short[4][256];
/// Which implementation `fjord_crc32c_update` uses (set once by `crc_init`).
static int crc_use_hardware;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/// Little-endian 64-bit load from any address.
static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/// Applies a zero-extension operator table to a raw CRC register.
static inline uint32_t shift_apply(const uint32_t t[4][256], uint32_t r) {
    return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
}

/// Builds operator tables from the images of the 32 basis vectors of the register.
static void shift_build(uint32_t t[4][256], const uint32_t basis[32]) {
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int bit = 0; bit < 8; bit++) {
                if (b & (1u << bit)) v ^= basis[8 * k + bit];
            }
            t[k][b] = v;
        }
    }
}

static int cpu_has_crc_instruction(void) {
#if defined(FJORD_CRC_X86)
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#elif defined(FJORD_CRC_ARM)
#  if defined(__ARM_FEATURE_CRC32) || defined(__APPLE__)
    return 1;
#  else
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
#  endif
#else
    return 0;
#endif
}

static void crc_init(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t r = b;
        for (int k = 0; k < 8; k++) r = (r >> 1) ^ (FJORD_CRC32C_POLY & (0u - (r & 1u)));
        crc_table[0][b] = r;
    }
    for (int k = 1; k < 8; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t r = crc_table[k - 1][b];
            crc_table[k][b] = (r >> 8) ^ crc_table[0][r & 0xff];
        }
    }

    // Z_SHORT from the byte table, then Z_MEDIUM = Z_SHORT^(MEDIUM/SHORT) and
    // Z_LONG = Z_MEDIUM^(LONG/MEDIUM), each from the images of the 32 basis vectors.
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) {
        uint32_t r = 1u << i;
        for (int n = 0; n < FJORD_CRC_SHORT; n++) r = (r >> 8) ^ crc_table[0][r & 0xff];
        basis[i] = r;
    }
    shift_build(shift_short, basis);
    for (int i = 0; i < 32; i++) {
        uint32_t r = 1u << i;
        for (int n = 0; n < FJORD_CRC_MEDIUM / FJORD_CRC_SHORT; n++) r = shift_apply(shift_short, r);
        basis[i] = r;
    }
    shift_build(shift_medium, basis);
    for (int i = 0; i < 32; i++) {
        uint32_t r = 1u << i;
        for (int n = 0; n < FJORD_CRC_LONG / FJORD_CRC_MEDIUM; n++) r = shift_apply(shift_medium, r);
        basis[i] = r;
    }
    shift_build(shift_long, basis);

    crc_use_hardware = cpu_has_crc_instruction();
}

/// Slicing-by-8 over a raw register.
static uint32_t crc_portable_raw(uint32_t r, const unsigned char *p, size_t len) {
    while (len && ((uintptr_t)p & 7)) {
        r = (r >> 8) ^ crc_table[0][(r ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ r;
        r = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) r = (r >> 8) ^ crc_table[0][(r ^ *p++) & 0xff];
    return r;
}

// The hardware path is written once over three primitives: CRC_HW_TARGET (function
// attribute enabling the instruction), CRC_HW_U8 and CRC_HW_U64 (raw register updates).
#if defined(FJORD_CRC_X86)
#  define CRC_HW_TARGET __attribute__((target("sse4.2")))
#  define CRC_HW_U8(r, b) _mm_crc32_u8((r), (b))
#  define CRC_HW_U64(r, w) ((uint32_t)_mm_crc32_u64((r), (w)))
#elif defined(FJORD_CRC_ARM)
#  define CRC_HW_TARGET __attribute__((target("crc")))
#  define CRC_HW_U8(r, b) ((uint32_t)__builtin_arm_crc32cb((r), (b)))
#  define CRC_HW_U64(r, w) ((uint32_t)__builtin_arm_crc32cd((r), (w)))
#endif

#if defined(CRC_HW_TARGET)
/// Runs three streams of `stride` bytes each over `*pp`, joined into one register.
/// Consumes `3 * stride` bytes per block while at least that many remain.
CRC_HW_TARGET
static inline uint32_t crc_hw_interleaved(uint32_t r, const unsigned char **pp, size_t *lenp,
                                          size_t stride, const uint32_t shift[4][256]) {
    const unsigned char *p = *pp;
    size_t len = *lenp;
    while (len >= 3 * stride) {
        uint32_t r1 = 0, r2 = 0;
        const unsigned char *end = p + stride;
        do {
            r = CRC_HW_U64(r, load_le64(p));
            r1 = CRC_HW_U64(r1, load_le64(p + stride));
            r2 = CRC_HW_U64(r2, load_le64(p + 2 * stride));
            p += 8;
        } while (p < end);
        r = shift_apply(shift, r) ^ r1;
        r = shift_apply(shift, r) ^ r2;
        p += 2 * stride;
        len -= 3 * stride;
    }
    *pp = p;
    *lenp = len;
    return r;
}

/// The CRC instruction over a raw register.
CRC_HW_TARGET
static uint32_t crc_hw_raw(uint32_t r, const unsigned char *p, size_t len) {
    while (len && ((uintptr_t)p & 7)) {
        r = CRC_HW_U8(r, *p++);
        len--;
    }
    r = crc_hw_interleaved(r, &p, &len, FJORD_CRC_LONG, shift_long);
    r = crc_hw_interleaved(r, &p, &len, FJORD_CRC_MEDIUM, shift_medium);
    r = crc_hw_interleaved(r, &p, &len, FJORD_CRC_SHORT, shift_short);
    while (len >= 8) {
        r = CRC_HW_U64(r, load_le64(p));
        p += 8;
        len -= 8;
    }
    while (len--) r = CRC_HW_U8(r, *p++);
    return r;
}
#endif

uint32_t fjord_crc32c_update(uint32_t crc, const void *data, size_t len) {
    pthread_once(&crc_once, crc_init);
#if defined(CRC_HW_TARGET)
    if (crc_use_hardware) return ~crc_hw_raw(~crc, (const unsigned char *)data, len);
#endif
    return ~crc_portable_raw(~crc, (const unsigned char *)data, len);
}

uint32_t fjord_crc32c_update_portable(uint32_t crc, const void *data, size_t len) {
    pthread_once(&crc_once, crc_init);
    return ~crc_portable_raw(~crc, (const unsigned char *)data, len);
}

int fjord_crc32c_hardware(void) {
    pthread_once(&crc_once, crc_init);
    return crc_use_hardware;
}
