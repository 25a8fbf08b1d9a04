/* Constant-time check driver, run under valgrind memcheck.
 *
 * The secret bytes (the HMAC key, and so everything derived from it: the
 * precomputed states, the MAC, the expected tag) are marked "undefined" with
 * VALGRIND_MAKE_MEM_UNDEFINED. Memcheck then reports every conditional jump,
 * conditional move or memory address that depends on them: exactly the
 * secret-dependent branches a timing attacker could observe. The functions
 * under test are sa_hmac_key_init, sa_hmac_sha256, sa_ct_equal,
 * sa_jws_hs256_check and the whole auth/slurm verifier sc_verify (with a
 * valid and a forged tag), and the batch entry sc_verify_list (a forged and a
 * valid token MACed as a pair by sa_jws_hs256_check2, then one alone; and
 * again through the multi-buffer HMAC, sha256_mb.c's portable reference),
 * and sa_hmac_sha256_mb over lanes of different lengths.
 * Their results are public by design (equal or not), so the driver declares
 * each result defined (VALGRIND_MAKE_MEM_DEFINED) before it looks at it; inside sc_verify the one place the comparison
 * outcome becomes public is marked with SA_DECLASSIFY (hmac.h, active only
 * with -DSA_CT_CHECK). A clean run therefore has zero memcheck errors.
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
#include "sha256_mb.h"
#include "slurmcred.h"

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
    uint8_t secret_key[200], pub_key[200], mac[32], other[32];
    sa_hmac_key k;
    sa_jws_parts parts;
    int rc, eq, impl, failures = 0;

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

    /* The auth/slurm hot path: a whole credential verified with the secret key.
     * The token is signed with a public copy of the key, so the tag matches and
     * every step after the comparison runs too. */
    {
        static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        static const char claims[] = "{\"context\":\"auth\",\"exp\":1764000090,\"gid\":1000,"
                                     "\"host\":\"n1\",\"iat\":1764000020,\"ruid\":4294967295,"
                                     "\"uid\":1000,\"ver\":11520}";
        static uint8_t scratch[4096];
        char good[512], orig;
        size_t glen = 0;
        sa_hmac_key pub;
        sc_key sk;
        sc_keyset ks;
        sc_policy pol;

        memset(&sk, 0, sizeof(sk));
        sk.key = &k;
        ks.keys = &sk;
        ks.nkeys = 1;
        ks.default_index = 0;
        ks.by_kid = 0;
        pol.max_len = 4096;
        pol.verifier_uid = 1000;
        pol.contexts = 1u << SC_CTX_AUTH;
        pol.flags = SC_POL_CLIENT_IDS;
        memcpy(pub_key, key, keylen);   /* a defined copy of the key, to sign with */
        if (sa_hmac_key_init(&pub, pub_key, keylen) != SA_OK ||
            sa_jws_hs256_sign(&pub, (const uint8_t *)hdr, sizeof(hdr) - 1, (const uint8_t *)claims,
                              sizeof(claims) - 1, good, sizeof(good), &glen) != SA_OK)
            return 1;
        rc = sc_verify(&ks, &pol, good, glen, 1764000030, scratch, sizeof(scratch));
        PUBLIC(&rc, sizeof(rc));
        failures += rc != SA_OK;
        orig = good[glen - 2];
        good[glen - 2] = orig == 'A' ? 'B' : 'A';   /* a wrong tag */
        rc = sc_verify(&ks, &pol, good, glen, 1764000030, scratch, sizeof(scratch));
        PUBLIC(&rc, sizeof(rc));
        failures += rc != SA_E_BAD_SIGNATURE;

        /* The batch entry: a forged and a good token MACed as a pair
         * (sa_jws_hs256_check2), then a good one alone. */
        {
            static char packed[3 * 512];
            static uint8_t work[16384] __attribute__((aligned(16))), out[8192] __attribute__((aligned(16)));
            size_t lens[3];
            const char *toks[3];
            const int32_t *status;
            memcpy(packed, good, glen);                          /* forged */
            good[glen - 2] = orig;                               /* good again */
            memcpy(packed + glen, good, glen);
            memcpy(packed + 2 * glen, good, glen);
            lens[0] = lens[1] = lens[2] = glen;
            toks[0] = packed;
            toks[1] = packed + glen;
            toks[2] = packed + 2 * glen;
            if (sc_batch_work_need(&pol, 3 * glen) > sizeof(work) ||
                sc_batch_out_need(3, 3 * glen) > sizeof(out))
                return 1;
            /* the 2-way path, then the multi-buffer one (its portable
             * reference: valgrind runs neither SHA-NI nor AVX-512) */
            for (impl = 0; impl < 2; impl++) {
                if (sa_mb_select(impl ? SA_MB_PORTABLE : SA_MB_NONE) < 0)
                    return 1;
                rc = sc_verify_list(&ks, &pol, toks, lens, 3, 1764000030, work,
                                    sizeof(work), out, sizeof(out));
                PUBLIC(&rc, sizeof(rc));
                failures += rc != SA_OK;
                status = (const int32_t *)(const void *)(out + 8 * 3);
                PUBLIC(status, 3 * sizeof(*status));
                failures += status[0] != SA_E_BAD_SIGNATURE || status[1] != SA_OK ||
                            status[2] != SA_OK;
            }
        }
        /* The multi-buffer HMAC itself: lanes of different lengths with the
         * secret key, each tag compared with sa_hmac_sha256's. */
        {
            static const char msg[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1aWQiOjEwMDAsImhvc3QiOiJsb2dpbjAxIiwi"
                                      "Y29udGV4dCI6ImF1dGgiLCJjbHVzdGVyIjoiY2x1c3RlcjEifQ";
            const sa_hmac_key *keys[3] = {&k, &k, &k};
            const uint8_t *msgs[3];
            size_t mlens[3] = {0, 60, sizeof(msg) - 1};
            uint8_t tags[3 * 32], one[32];
            for (impl = 0; impl < 3; impl++)
                msgs[impl] = (const uint8_t *)msg;
            if (sa_hmac_sha256_mb(SA_MB_PORTABLE, keys, msgs, mlens, 3, tags) != SA_OK)
                return 1;
            for (impl = 0; impl < 3; impl++) {
                sa_hmac_sha256(&k, msgs[impl], mlens[impl], one);
                eq = sa_ct_equal(one, tags + 32 * impl, 32);
                PUBLIC(&eq, sizeof(eq));
                failures += eq != 1;
            }
        }
    }

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
