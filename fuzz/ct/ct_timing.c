/* Statistical constant-time check driver (dudect-style), for the SHA-NI path
 * that valgrind cannot run (tools/ct_check.sh covers the portable one).
 *
 * Two classes of forged auth/slurm tokens over the same header and claims:
 * class 0 has the right tag with its FIRST byte changed, class 1 with its
 * LAST byte changed (both re-encoded as canonical base64url, so decoding
 * costs the same). A comparison that stops at the first differing byte takes
 * longer for class 1. Samples of the two classes are interleaved at random;
 * before each one the class's tag is copied into the one token buffer (so
 * both classes run on the same addresses, and only the tag bytes differ),
 * and the call alone is timed (rdtsc, fenced; clock_gettime elsewhere); the
 * driver prints "class cycles" lines and tools/ct_timing.py runs Welch's
 * t-test on them.
 *
 *   ct_timing TARGET IMPL SAMPLES [SEED]
 *     TARGET  verify  sc_verify, the whole auth/slurm verifier (what a daemon calls)
 *             check   sa_jws_hs256_check, the tag check alone (less noise around it)
 *             leaky   the positive control: the same HMAC, then an early-exit
 *                     byte comparison; the method must flag it
 *     IMPL    shani | portable | auto (the SHA-256 compression used)
 *
 * Exit 0 after printing; 2 on a usage error; 3 when the requested SHA-256
 * implementation is not available on this CPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "hmac.h"
#include "jws.h"
#include "sa_status.h"
#include "sha256.h"
#include "slurmcred.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
static inline uint64_t t_begin(void)
{
    unsigned lo, hi;
    __asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t t_end(void)
{
    unsigned lo, hi, aux;
    __asm__ volatile("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi), "=c"(aux) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}
#else
static inline uint64_t t_begin(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#define t_end t_begin
#endif

#define NOW 1700000000LL
#define MAXTOK 2048

static const char HEADER[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char CLAIMS[] =
    "{\"cluster\":\"cluster1\",\"context\":\"auth\",\"exp\":1700000060,\"gid\":100,"
    "\"host\":\"login01\",\"iat\":1700000000,"
    "\"payload\":\"AjExMjIzMzQ0NTU2Njc3ODg5OTAwMTEyMjMzNDQ1NTY2Nzc4OA==\","
    "\"ruid\":4294967295,\"uid\":1000,\"ver\":11520}";

static uint64_t rng_state;
static uint64_t rng(void)       /* xorshift64*: the class order, not a secret */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

/* The positive control: returns at the first differing byte. */
__attribute__((noinline)) static int leaky_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* HMAC over the signing input (the library's own, on the selected SHA-256),
 * then the leaky comparison against the token's decoded tag. */
__attribute__((noinline)) static int leaky_check(const sa_hmac_key *k, const char *tok, size_t len)
{
    sa_jws_parts p;
    uint8_t mac[32], tag[32];
    size_t n = 0;

    if (sa_jws_split(tok, len, MAXTOK, &p) != SA_OK)
        return -1;
    sa_hmac_sha256(k, (const uint8_t *)tok, p.sig_off - 1, mac);
    if (sa_b64url_decode(tok + p.sig_off, p.sig_len, tag, sizeof(tag), &n) != SA_OK || n != 32)
        return -1;
    return leaky_equal(mac, tag, 32) ? SA_OK : SA_E_BAD_SIGNATURE;
}

static int usage(void)
{
    fprintf(stderr, "usage: ct_timing verify|check|leaky shani|portable|auto SAMPLES [SEED]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static uint8_t key[1024], scratch[65536];
    static char good[MAXTOK], bad[2][MAXTOK], tok[MAXTOK];
    sa_hmac_key k;
    sc_key sk;
    sc_keyset ks;
    sc_policy pol;
    sa_jws_parts parts[2];
    uint8_t tag[32];
    size_t len = 0, n = 0, i, samples, warm = 2000, tlen = 0;
    int target, impl, rc[2], c;
    uint64_t *cycles;
    unsigned char *classes;
    char *out;
    size_t used = 0;

    if (argc < 4)
        return usage();
    if (!strcmp(argv[1], "verify"))
        target = 0;
    else if (!strcmp(argv[1], "check"))
        target = 1;
    else if (!strcmp(argv[1], "leaky"))
        target = 2;
    else
        return usage();
    if (!strcmp(argv[2], "shani"))
        impl = SA_SHA256_SHANI;
    else if (!strcmp(argv[2], "portable"))
        impl = SA_SHA256_PORTABLE;
    else if (!strcmp(argv[2], "auto"))
        impl = SA_SHA256_AUTO;
    else
        return usage();
    samples = (size_t)strtoull(argv[3], NULL, 10);
    rng_state = argc > 4 ? strtoull(argv[4], NULL, 10) | 1 : UINT64_C(0x9E3779B97F4A7C15);
    if (samples < 2)
        return usage();
    if (sa_sha256_select(impl) < 0) {
        fprintf(stderr, "ct_timing: SHA-256 implementation %s is not available here\n", argv[2]);
        return 3;
    }

    for (i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(rng() >> 56);
    if (sa_hmac_key_init(&k, key, sizeof(key)) != SA_OK)
        return 1;
    memset(key, 0, sizeof(key));
    if (sa_jws_hs256_sign(&k, (const uint8_t *)HEADER, strlen(HEADER), (const uint8_t *)CLAIMS,
                          strlen(CLAIMS), good, sizeof(good) - 1, &len) != SA_OK)
        return 1;
    good[len] = 0;

    /* the two forgeries: first or last tag byte changed, re-encoded canonically */
    if (sa_jws_split(good, len, MAXTOK, &parts[0]) != SA_OK ||
        sa_b64url_decode(good + parts[0].sig_off, parts[0].sig_len, tag, sizeof(tag), &n) != SA_OK ||
        n != 32)
        return 1;
    for (c = 0; c < 2; c++) {
        uint8_t t2[32];
        memcpy(t2, tag, 32);
        t2[c == 0 ? 0 : 31] ^= 0x01;
        memcpy(bad[c], good, parts[0].sig_off);
        if (sa_b64url_encode(t2, 32, bad[c] + parts[0].sig_off, MAXTOK - parts[0].sig_off, &tlen) != SA_OK ||
            parts[0].sig_off + tlen != len)
            return 1;
        bad[c][len] = 0;
        if (sa_jws_split(bad[c], len, MAXTOK, &parts[c]) != SA_OK)
            return 1;
    }

    memset(&sk, 0, sizeof(sk));
    sk.key = &k;
    ks.keys = &sk;
    ks.nkeys = 1;
    ks.default_index = 0;
    ks.by_kid = 0;
    pol.max_len = MAXTOK;
    pol.verifier_uid = 0;
    pol.contexts = (1u << SC_CTX_AUTH) | (1u << SC_CTX_SACK);

    /* both forgeries must fail the same way, and the real token pass */
    for (c = 0; c < 2; c++) {
        if (target == 0)
            rc[c] = sc_verify(&ks, &pol, bad[c], len, NOW, scratch, sizeof(scratch));
        else if (target == 1)
            rc[c] = sa_jws_hs256_check(&k, bad[c], &parts[c]);
        else
            rc[c] = leaky_check(&k, bad[c], len);
    }
    if (rc[0] != SA_E_BAD_SIGNATURE || rc[1] != SA_E_BAD_SIGNATURE ||
        (target == 0 ? sc_verify(&ks, &pol, good, len, NOW, scratch, sizeof(scratch))
         : target == 1 ? sa_jws_hs256_check(&k, good, &parts[0]) : leaky_check(&k, good, len)) != SA_OK) {
        fprintf(stderr, "ct_timing: unexpected statuses %d %d\n", rc[0], rc[1]);
        return 1;
    }

    cycles = malloc(samples * sizeof(*cycles));
    classes = malloc(samples);
    out = malloc(samples * 24 + 64);
    if (!cycles || !classes || !out)
        return 1;
    for (i = 0; i < samples; i++)
        classes[i] = (unsigned char)(rng() >> 63);
    memcpy(tok, bad[0], len + 1);
    for (i = 0; i < warm + samples; i++) {
        int cl = classes[i < warm ? i % samples : i - warm];
        uint64_t t0, t1;
        int r;
        memcpy(tok + parts[0].sig_off, bad[cl] + parts[0].sig_off, parts[0].sig_len);
        t0 = t_begin();
        if (target == 0)
            r = sc_verify(&ks, &pol, tok, len, NOW, scratch, sizeof(scratch));
        else if (target == 1)
            r = sa_jws_hs256_check(&k, tok, &parts[0]);
        else
            r = leaky_check(&k, tok, len);
        t1 = t_end();
        if (r != SA_E_BAD_SIGNATURE)
            return 1;
        if (i >= warm)
            cycles[i - warm] = t1 - t0;
    }
    for (i = 0; i < samples; i++)
        used += (size_t)sprintf(out + used, "%d %llu\n", classes[i], (unsigned long long)cycles[i]);
    fwrite(out, 1, used, stdout);
    sa_hmac_key_wipe(&k);
    free(cycles);
    free(classes);
    free(out);
    return 0;
}
