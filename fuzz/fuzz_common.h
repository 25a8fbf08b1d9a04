/* Shared helpers for the libFuzzer harnesses: a fixed key, exact-size heap
 * copies (so AddressSanitizer sees any read or write past a length) and an
 * abort-on-invariant macro that libFuzzer reports as a crash. */
#ifndef SA_FUZZ_COMMON_H
#define SA_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"

#define FUZZ_ASSERT(cond)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* The key every token harness verifies with (and the seed generator signs with). */
static const uint8_t FUZZ_KEY[] = "slurmauth-fast fuzzing key, 32+ bytes long";
#define FUZZ_KEY_LEN (sizeof(FUZZ_KEY) - 1)

static inline const sa_hmac_key *fuzz_key(void)
{
    static sa_hmac_key k;
    static int done;
    if (!done) {
        FUZZ_ASSERT(sa_hmac_key_init(&k, FUZZ_KEY, FUZZ_KEY_LEN) == 0);
        done = 1;
    }
    return &k;
}

/* A heap copy of exactly n bytes (n may be 0: a 1-byte block that must not be read). */
static inline uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    FUZZ_ASSERT(q != NULL);
    if (n)
        memcpy(q, p, n);
    return q;
}

#endif
