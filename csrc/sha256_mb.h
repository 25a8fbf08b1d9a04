/* Multi-buffer SHA-256 and HMAC-SHA256: many independent messages hashed
 * side by side, one message per 32-bit lane of a vector register -- 8 lanes
 * with AVX2, 16 with AVX-512 (chosen by CPUID, each in functions compiled
 * for their instruction set with __attribute__((target)), so the file builds
 * with the strict flags anywhere and runs those only where the CPU has them),
 * and a portable reference that runs the same schedule one lane at a time.
 * Every implementation gives hashlib's/sa_sha256's bytes for every lane,
 * whatever the lengths of the other lanes.
 *
 * What the batch verifier uses (sc_verify_many): the HMAC over n messages
 * with n keys, when sa_mb_active() is not SA_MB_NONE. sa_mb_select(SA_MB_AUTO)
 * measures, at first use, the 2-way SHA-NI (or portable) HMAC path against
 * each vector implementation the CPU has on a synthetic batch of
 * credential-sized messages, and keeps the fastest (SA_MB_NONE when the
 * 2-way path wins: sc_verify_many then runs exactly as before). */
#ifndef SA_SHA256_MB_H
#define SA_SHA256_MB_H

#include <stddef.h>
#include <stdint.h>

#include "hmac.h"

/* cffi:begin */
#define SA_MB_AUTO 0
#define SA_MB_PORTABLE 1   /* the reference: lanes in plain C, one after another */
#define SA_MB_AVX2 2       /* 8 lanes */
#define SA_MB_AVX512 3     /* 16 lanes */
#define SA_MB_NONE 4       /* no multi-buffer in sc_verify_many: its 2-way path */
#define SA_MB_MAX_LANES 16

/* Select the implementation the batch verifier uses (process-wide; meant
 * for start-up, tests and benchmarks: call before other threads verify).
 * SA_MB_AUTO measures (see above). Returns the implementation now active,
 * or -1 when the requested one is not available here (unchanged then). */
int sa_mb_select(int impl);
/* The active implementation (selecting with SA_MB_AUTO on first call). */
int sa_mb_active(void);
/* 1 when impl can run on this CPU (SA_MB_PORTABLE and SA_MB_NONE always). */
int sa_mb_available(int impl);
/* Lanes of an implementation (SA_MB_NONE: 2, the pairs of the 2-way path). */
int sa_mb_lanes(int impl);

/* out[32 i .. 32 i + 32) = SHA-256(msgs[i][0 .. lens[i])), for i < n, with
 * implementation impl (SA_MB_AUTO or SA_MB_NONE: the active vector one, else
 * the portable reference). Returns SA_OK, or -1 when impl is not available. */
int sa_sha256_mb(int impl, const uint8_t *const *msgs, const size_t *lens, size_t n,
                 uint8_t *out);
/* out[32 i ..) = HMAC-SHA256(keys[i], msgs[i][0 .. lens[i])), likewise. */
int sa_hmac_sha256_mb(int impl, const sa_hmac_key *const *keys, const uint8_t *const *msgs,
                      const size_t *lens, size_t n, uint8_t *out);
/* cffi:end */

#endif
