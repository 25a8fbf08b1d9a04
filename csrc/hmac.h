/* HMAC-SHA256 (RFC 2104) with a keyed context: the inner and outer states
 * after absorbing key^ipad and key^opad are computed once per key, so each
 * MAC costs only the message blocks plus one outer block. */
#ifndef SA_HMAC_H
#define SA_HMAC_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
typedef struct {
    uint32_t inner[8];
    uint32_t outer[8];
    int ready;
} sa_hmac_key;

/* Precompute the states for key[0..keylen). Returns SA_OK, SA_E_ARG or
 * SA_E_KEY_EMPTY (a zero-length key is refused: Slurm never uses one). */
int sa_hmac_key_init(sa_hmac_key *k, const uint8_t *key, size_t keylen);
/* PyJWT's refusal of keys that are not secrets: SA_E_KEY_PUBLIC when
 * key[0..keylen) holds "-----BEGIN " (PEM: a public key or certificate used
 * as the secret lets whoever has it sign) or starts as an OpenSSH public key
 * does; SA_E_KEY_EMPTY for no bytes; else SA_OK. */
int sa_hmac_secret_check(const uint8_t *key, size_t keylen);
/* Overwrite the precomputed states (they are key-equivalent secrets). */
void sa_hmac_key_wipe(sa_hmac_key *k);
/* out = HMAC-SHA256(key, msg[0..len)). */
void sa_hmac_sha256(const sa_hmac_key *k, const uint8_t *msg, size_t len, uint8_t out[32]);
/* Two independent HMACs at once (what a batch verifier does with two tokens;
 * about twice the rate of one after the other on SHA-NI). Same results as two
 * sa_hmac_sha256 calls; the keys may be the same. */
void sa_hmac_sha256_x2(const sa_hmac_key *ka, const uint8_t *ma, size_t la, uint8_t outa[32],
                       const sa_hmac_key *kb, const uint8_t *mb, size_t lb, uint8_t outb[32]);
/* Constant-time comparison: 1 when equal, 0 otherwise; time depends on n only. */
int sa_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);
/* Overwrite n bytes in a way the compiler may not elide. */
void sa_wipe(void *p, size_t n);
/* An HMAC-SHA256 computed a piece at a time: sa_hmac_step() issues the next
 * piece (half a compression on SHA-NI, a whole one otherwise) and returns at
 * once, so work the caller does until the next step runs while the SHA unit
 * works through that piece's latency (the auth/slurm verifier scans the
 * claims this way). sa_hmac_end() does what is left and gives the tag;
 * sa_hmac_sha256 is begin + end. The job holds key-derived state: sa_hmac_end
 * wipes it. */
typedef struct {
    const sa_hmac_key *k;
    uint32_t st[8];           /* the standard state between blocks; the inner
                               * digest once the outer hash has begun */
    uint32_t mid[32];         /* SHA-NI: the state between halves and blocks */
    uint32_t ow[16];          /* SHA-NI: the outer block's message words */
    const uint8_t *msg;       /* the next full message block */
    size_t full;              /* full message blocks left */
    uint8_t pad[128];         /* the padded final block(s) */
    size_t npad, padded;      /* how many, how many compressed */
    int phase;                /* 0 inner hash, 1 outer hash, 2 done */
    int half;                 /* SHA-NI: the next half of the current block */
    int ni;                   /* SHA-NI halves in use */
} sa_hmac_job;

void sa_hmac_begin(sa_hmac_job *m, const sa_hmac_key *k, const uint8_t *msg, size_t len);
void sa_hmac_step(sa_hmac_job *m);
void sa_hmac_end(sa_hmac_job *m, uint8_t out[32]);
/* cffi:end */

/* SA_DECLASSIFY(p, n): the n bytes at p were computed from secrets but are
 * public by design from here on -- the outcome of a tag comparison (match or
 * not), which the caller must branch on. A no-op, except in the constant-time
 * check build (tools/ct_check.sh compiles with -DSA_CT_CHECK), where valgrind
 * memcheck is told the bytes are defined so that it reports only branches on
 * data that is still secret. */

#ifdef SA_CT_CHECK
#include <valgrind/memcheck.h>
#define SA_DECLASSIFY(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#else
#define SA_DECLASSIFY(p, n) ((void)(p), (void)(n))
#endif

#endif
