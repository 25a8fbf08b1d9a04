/* Constant-time check driver, run under valgrind memcheck.
 *
 * The secret bytes (the HMAC key, and so everything derived from it: the
 * precomputed states, the MAC, the expected tag) are marked "undefined" with
 * VALGRIND_MAKE_MEM_UNDEFINED. Memcheck then reports every conditional jump,
 * conditional move or memory address that depends on them: exactly the
 * secret-dependent branches a timing attacker could observe. The functions
 * under test are sa_hmac_key_init, sa_hmac_sha256, sa_ct_equal and
 * sa_jws_hs256_check; their results are public by design (equal or not), so
 * the driver declares each result defined (VALGRIND_MAKE_MEM_DEFINED) before
 * it looks at it. A clean run therefore has zero memcheck errors.
 *
 *   ct_driver          the real functions (must be clean)
 *   ct_driver leaky    also compares with leaky_equal(), an early-exit loop,
 *                      to show the method catches a branching comparison
 */
#include <stdio.h>
#include <string.h>

#include <valgrind/memcheck.h>

#include "hmac.h"
#include "jws.h"
#include "sa_status.h"
#include "sha256.h"

#define SECRET(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define PUBLIC(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))

/* A deliberately wrong comparison: returns at the first differing byte. */
__attribute__((noinline)) static int leaky_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int run_key(const uint8_t *key, size_t keylen, const char *tok, size_t toklen, int leaky)
{
    uint8_t secret_key[200], mac[32], other[32];
    sa_hmac_key k;
    sa_jws_parts parts;
    int rc, eq, failures = 0;

    memcpy(secret_key, key, keylen);
    SECRET(secret_key, keylen);

    rc = sa_hmac_key_init(&k, secret_key, keylen);
    PUBLIC(&rc, sizeof(rc));
    if (rc != SA_OK) {
        fprintf(stderr, "key init failed: %d\n", rc);
        return 1;
    }

    /* MAC of a public message with the secret key: the tag is secret. */
    sa_hmac_sha256(&k, (const uint8_t *)"header.claims", 13, mac);
    memset(other, 0x5a, sizeof(other));
    eq = sa_ct_equal(mac, other, sizeof(mac));
    PUBLIC(&eq, sizeof(eq));
    failures += eq != 0;
    eq = sa_ct_equal(mac, mac, sizeof(mac));
    PUBLIC(&eq, sizeof(eq));
    failures += eq != 1;

    /* A whole token check: the attacker's tag is public, ours is secret. */
    rc = sa_jws_split(tok, toklen, 4096, &parts);
    if (rc != SA_OK) {
        fprintf(stderr, "split failed: %d\n", rc);
        return 1;
    }
    rc = sa_jws_hs256_check(&k, tok, &parts);
    PUBLIC(&rc, sizeof(rc));
    failures += rc != SA_E_BAD_SIGNATURE && rc != SA_OK;

    if (leaky) {
        eq = leaky_equal(mac, other, sizeof(mac));
        PUBLIC(&eq, sizeof(eq));
        failures += eq != 0;
    }
    sa_hmac_key_wipe(&k);
    return failures;
}

int main(int argc, char **argv)
{
    static const char tok[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1aWQiOjEwMDB9."
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    uint8_t short_key[32], long_key[150];
    int leaky = argc > 1 && strcmp(argv[1], "leaky") == 0;
    int failures = 0;
    size_t i;

    /* Valgrind does not run SHA-NI; the portable code is what it can check. */
    if (sa_sha256_select(SA_SHA256_PORTABLE) != SA_SHA256_PORTABLE)
        return 2;
    for (i = 0; i < sizeof(long_key); i++)
        long_key[i] = (uint8_t)(i * 7 + 3);
    memcpy(short_key, long_key, sizeof(short_key));
    /* Both key paths: up to one block (copied) and longer (hashed first). */
    failures += run_key(short_key, sizeof(short_key), tok, sizeof(tok) - 1, leaky);
    failures += run_key(long_key, sizeof(long_key), tok, sizeof(tok) - 1, leaky);
    printf("ct_driver: %s, %d functional failure(s)\n", leaky ? "leaky" : "clean", failures);
    return failures ? 1 : 0;
}
