/* Keccak-p[1600, n_r] (FIPS 202 section 3.3) and a byte-oriented sponge over
 * it. One permutation serves both users: KangarooTwelve runs the last 12
 * rounds (TurboSHAKE128, RFC 9861), SHA3-256 all 24. Lanes are little-endian
 * as FIPS 202 specifies, on any host byte order. The permutation is portable
 * C, or on x86-64 an AVX-512VL version selected at run time by CPUID. */
#ifndef SA_KECCAK_H
#define SA_KECCAK_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
#define SA_KECCAK_AUTO 0
#define SA_KECCAK_PORTABLE 1
#define SA_KECCAK_AVX512 2

typedef struct {
    uint64_t st[25];
    size_t rate;      /* bytes per block: 168 for TurboSHAKE128, 136 for SHA3-256 */
    size_t pos;       /* bytes absorbed (or squeezed) in the current block */
    unsigned rounds;  /* 12 or 24 */
} sa_sponge;

/* Apply the last `rounds` (1..24) rounds of Keccak-f[1600] to st. */
void sa_keccak_p1600(uint64_t st[25], unsigned rounds);

/* Choose the permutation's implementation for the whole process:
 * SA_KECCAK_AUTO picks AVX-512 (F + VL, with the OS saving the ZMM and
 * opmask state) when the CPU has it. Returns the implementation now active,
 * or -1 when the requested one is not available here (the active one is then
 * unchanged). Both compute the same permutation. */
int sa_keccak_select(int impl);
/* Which implementation is active (SA_KECCAK_PORTABLE or SA_KECCAK_AVX512). */
int sa_keccak_active(void);
/* cffi:end */

void sa_sponge_init(sa_sponge *s, size_t rate, unsigned rounds);
void sa_sponge_absorb(sa_sponge *s, const uint8_t *in, size_t len);
/* Pad with domain-separation byte `ds` (pad10*1) and switch to squeezing. */
void sa_sponge_finish(sa_sponge *s, uint8_t ds);
void sa_sponge_squeeze(sa_sponge *s, uint8_t *out, size_t len);

#endif
