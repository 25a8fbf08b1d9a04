/* SHA-256 (FIPS 180-4): portable C and, on x86-64, the SHA-NI instructions
 * selected at run time by CPUID, or on aarch64 the ARMv8 SHA-2 instructions
 * selected at run time by the HWCAP_SHA2 bit of the auxiliary vector. All
 * produce identical output. */
#ifndef SA_SHA256_H
#define SA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SA_SHA256_BLOCK 64
#define SA_SHA256_DIGEST 32

/* cffi:begin */
#define SA_SHA256_AUTO 0
#define SA_SHA256_PORTABLE 1
#define SA_SHA256_SHANI 2
#define SA_SHA256_ARMV8 3

typedef struct {
    uint32_t h[8];
    uint64_t total;      /* bytes absorbed so far */
    uint8_t buf[64];
    size_t buflen;
} sa_sha256_ctx;

void sa_sha256_init(sa_sha256_ctx *ctx);
void sa_sha256_update(sa_sha256_ctx *ctx, const uint8_t *data, size_t len);
void sa_sha256_final(sa_sha256_ctx *ctx, uint8_t out[32]);
void sa_sha256(const uint8_t *data, size_t len, uint8_t out[32]);

/* Choose the compression implementation for the whole process:
 * SA_SHA256_AUTO picks SHA-NI (x86-64) or the ARMv8 SHA-2 instructions
 * (aarch64) when the CPU has them, else the portable code. Returns the implementation
 * now active, or -1 when the requested one is not available here. */
int sa_sha256_select(int impl);
/* Which implementation is active (SA_SHA256_PORTABLE, _SHANI or _ARMV8). */
int sa_sha256_active(void);
/* 1 when this CPU supports SHA-NI (and the build has the code for it). */
int sa_sha256_shani_available(void);
/* 1 when this CPU has the ARMv8 SHA-2 instructions (HWCAP_SHA2; aarch64 builds only). */
int sa_sha256_armv8_available(void);
/* cffi:end */

/* aarch64's selection rule for an AT_HWCAP word: SA_SHA256_ARMV8 when it has
 * HWCAP_SHA2 (bit 6), else SA_SHA256_PORTABLE (internal; the KAT driver
 * checks the rule for words no emulated CPU reports). */
int sa_sha256_pick_hwcap(unsigned long hwcap);

/* Compress nblocks 64-byte blocks into state (internal, used by HMAC). */
void sa_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t nblocks);
/* The same for two independent states and messages of nblocks each, at once
 * (interleaved on SHA-NI; one after the other on the portable code). */
void sa_sha256_blocks2(uint32_t sa[8], const uint8_t *da, uint32_t sb[8], const uint8_t *db,
                       size_t nblocks);
/* HMAC-SHA256's outer hash (internal, used by HMAC): out = the state after
 * compressing, from the outer key state, the one final block holding the
 * inner digest (the inner state's words) and the padding of 96 bytes. On
 * SHA-NI the block is built in registers. The 2 form does two at once. */
void sa_sha256_hmac_outer(const uint32_t outer[8], const uint32_t inner[8], uint32_t out[8]);
void sa_sha256_hmac_outer2(const uint32_t oa[8], const uint32_t ia[8], uint32_t outa[8],
                           const uint32_t ob[8], const uint32_t ib[8], uint32_t outb[8]);
/* One compression in two halves (rounds 0-31, then 32-63), for a caller that
 * interleaves other work with each half's latency (sa_hmac_job): only when
 * sa_sha256_halves() is 1 (SHA-NI active). mid holds the state between halves
 * and blocks in SHA-NI's layout; mid_load/mid_store convert from/to a
 * standard state. Half 0 reads the 64-byte block, or (block NULL) its 16
 * message words. */
int sa_sha256_halves(void);
void sa_sha256_mid_load(uint32_t mid[32], const uint32_t st[8]);
void sa_sha256_mid_store(const uint32_t mid[32], uint32_t st[8]);
void sa_sha256_half(uint32_t mid[32], const uint8_t *block, const uint32_t *words, int half);
extern const uint32_t sa_sha256_iv[8];

#endif
