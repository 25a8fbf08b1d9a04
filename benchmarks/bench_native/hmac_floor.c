/* The floor for HS256 verification: OpenSSL's HMAC-SHA256 over a token's
 * signing input with a keyed context reused across calls (the key's inner
 * and outer pads are hashed once, as in every serious verifier). Nothing else
 * a verifier must do (split, base64, JSON, claims) is timed here.
 *
 * Compiled at benchmark time by benchmarks/verify_rate.py:
 *   gcc -O2 hmac_floor.c -o hmac_floor -lcrypto
 * Usage: hmac_floor KEY_FILE INPUT_FILE SECONDS EXPECTED_TAG_HEX
 * Prints, per method, "NAME ns_per_op iterations": "hmac_ctx" (HMAC_CTX
 * re-initialised with HMAC_Init_ex(ctx, NULL, 0, NULL, NULL)) and "evp_mac_dup"
 * (EVP_MAC_CTX_dup of a keyed EVP_MAC context per operation). Exits non-zero
 * when a tag differs from EXPECTED_TAG_HEX, so the timed work is the real one.
 */
#define _POSIX_C_SOURCE 200809L
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "bench_util.h"

static int check(const unsigned char *tag, const char *expected_hex)
{
    char hex[65];
    int i;
    for (i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", tag[i]);
    return strcmp(hex, expected_hex) == 0;
}

static volatile unsigned char sink;

static int run_hmac_ctx(const unsigned char *key, size_t klen, const unsigned char *in, size_t n,
                        double seconds, const char *expected)
{
    HMAC_CTX *ctx = HMAC_CTX_new();
    unsigned char tag[32];
    unsigned int tlen = 0;
    unsigned long iters = 0, batch = 1000, k;
    double start, elapsed;
    if (!ctx || !HMAC_Init_ex(ctx, key, (int)klen, EVP_sha256(), NULL))
        return 0;
    HMAC_Update(ctx, in, n);
    HMAC_Final(ctx, tag, &tlen);
    if (tlen != 32 || !check(tag, expected))
        return 0;
    start = now_ns();
    do {
        for (k = 0; k < batch; k++) {
            HMAC_Init_ex(ctx, NULL, 0, NULL, NULL);
            HMAC_Update(ctx, in, n);
            HMAC_Final(ctx, tag, &tlen);
            sink ^= tag[0];
        }
        iters += batch;
        elapsed = now_ns() - start;
    } while (elapsed < seconds * 1e9);
    printf("hmac_ctx %.2f %lu\n", elapsed / iters, iters);
    HMAC_CTX_free(ctx);
    return check(tag, expected);
}

static int run_evp_mac_dup(const unsigned char *key, size_t klen, const unsigned char *in, size_t n,
                           double seconds, const char *expected)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *base, *ctx;
    OSSL_PARAM params[2];
    unsigned char tag[32];
    size_t tlen = 0;
    unsigned long iters = 0, batch = 1000, k;
    double start, elapsed;
    char digest[] = "SHA256";
    if (!mac || !(base = EVP_MAC_CTX_new(mac)))
        return 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(base, key, klen, params))
        return 0;
    start = now_ns();
    do {
        for (k = 0; k < batch; k++) {
            ctx = EVP_MAC_CTX_dup(base);
            EVP_MAC_update(ctx, in, n);
            EVP_MAC_final(ctx, tag, &tlen, sizeof tag);
            EVP_MAC_CTX_free(ctx);
            sink ^= tag[0];
        }
        iters += batch;
        elapsed = now_ns() - start;
    } while (elapsed < seconds * 1e9);
    printf("evp_mac_dup %.2f %lu\n", elapsed / iters, iters);
    EVP_MAC_CTX_free(base);
    EVP_MAC_free(mac);
    return tlen == 32 && check(tag, expected);
}

int main(int argc, char **argv)
{
    size_t klen, n;
    unsigned char *key, *in;
    double seconds;
    int ok;
    if (argc != 5) {
        fprintf(stderr, "usage: %s KEY_FILE INPUT_FILE SECONDS EXPECTED_TAG_HEX\n", argv[0]);
        return 2;
    }
    key = slurp(argv[1], &klen);
    in = slurp(argv[2], &n);
    seconds = atof(argv[3]);
    if (!key || !in || seconds <= 0) {
        fprintf(stderr, "hmac_floor: cannot read inputs\n");
        return 2;
    }
    ok = run_hmac_ctx(key, klen, in, n, seconds / 2, argv[4]) &&
         run_evp_mac_dup(key, klen, in, n, seconds / 2, argv[4]);
    if (!ok) {
        fprintf(stderr, "hmac_floor: tag mismatch or OpenSSL failure\n");
        return 1;
    }
    return 0;
}
