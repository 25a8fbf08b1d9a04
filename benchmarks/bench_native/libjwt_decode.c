/* libjwt's verification rate, as a C program using it gets it (slurmctld
 * links libjwt for auth/slurm and auth/jwt): jwt_decode() with the key (split,
 * base64url, jansson parse of header and claims, HMAC with a context keyed
 * afresh, signature compare), the alg check, then jwt_free().
 *
 * Compiled at benchmark time by benchmarks/verify_rate.py:
 *   gcc -O2 libjwt_decode.c -o libjwt_decode -ljwt
 * Usage: libjwt_decode KEY_FILE TOKEN_FILE SECONDS EXPECTED_UID [auth_jwt]
 * Prints "decode ns_per_op iterations" (jwt_decode + jwt_get_alg + jwt_free)
 * and "decode_claims ns_per_op iterations" (the same plus reading the claims
 * Slurm's decode_jwt() reads: exp, ruid, iat, uid, gid, ver, host, context,
 * cluster, payload; with "auth_jwt", the claims auth/jwt's slurm_auth_verify()
 * reads instead: exp, iat, sun, and the check exp >= now). Exits non-zero when
 * libjwt refuses the token or reads another uid (auth_jwt: when the token has
 * no sun or has expired), so the timed work is a successful verification.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include <jwt.h>

static volatile long sink;
static int auth_jwt;      /* read auth/jwt's claims (exp, iat, sun), not auth/slurm's */

/* One verification; with claims, read what Slurm reads. Returns the uid, or -1. */
static long verify_once(const char *tok, const unsigned char *key, int klen, int claims)
{
    jwt_t *jwt = NULL;
    long uid = 0;
    if (jwt_decode(&jwt, tok, key, klen) || !jwt)
        return -1;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        jwt_free(jwt);
        return -1;
    }
    if (claims && auth_jwt) {
        long exp = jwt_get_grant_int(jwt, "exp");
        long iat = jwt_get_grant_int(jwt, "iat");
        const char *sun = jwt_get_grant(jwt, "sun");
        if (!sun || exp < (long)time(NULL))
            uid = -1;
        sink += exp + iat;
    } else if (claims) {
        const char *host, *context, *cluster, *payload;
        long exp = jwt_get_grant_int(jwt, "exp");
        long ruid = jwt_get_grant_int(jwt, "ruid");
        long iat = jwt_get_grant_int(jwt, "iat");
        long gid = jwt_get_grant_int(jwt, "gid");
        long ver = jwt_get_grant_int(jwt, "ver");
        uid = jwt_get_grant_int(jwt, "uid");
        host = jwt_get_grant(jwt, "host");
        context = jwt_get_grant(jwt, "context");
        cluster = jwt_get_grant(jwt, "cluster");
        payload = jwt_get_grant(jwt, "payload");
        if (!host || !context)
            uid = -1;
        sink += exp + ruid + iat + gid + ver + (cluster != NULL) + (payload != NULL);
    }
    jwt_free(jwt);
    return uid;
}

static int run(const char *name, const char *tok, const unsigned char *key, int klen, int claims,
               double seconds)
{
    unsigned long iters = 0, batch = 200, k;
    double start, elapsed;
    start = now_ns();
    do {
        for (k = 0; k < batch; k++)
            if (verify_once(tok, key, klen, claims) < 0)
                return 0;
        iters += batch;
        elapsed = now_ns() - start;
    } while (elapsed < seconds * 1e9);
    printf("%s %.2f %lu\n", name, elapsed / iters, iters);
    return 1;
}

int main(int argc, char **argv)
{
    size_t klen, tlen;
    unsigned char *key, *tok;
    double seconds;
    long expected_uid;
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "auth_jwt") == 0)) {
        fprintf(stderr, "usage: %s KEY_FILE TOKEN_FILE SECONDS EXPECTED_UID [auth_jwt]\n", argv[0]);
        return 2;
    }
    auth_jwt = argc == 6;
    key = slurp(argv[1], &klen);
    tok = slurp(argv[2], &tlen);
    seconds = atof(argv[3]);
    expected_uid = atol(argv[4]);
    if (!key || !tok || seconds <= 0 || klen > 0x7fffffff) {
        fprintf(stderr, "libjwt_decode: cannot read inputs\n");
        return 2;
    }
    if (verify_once((const char *)tok, key, (int)klen, 1) != expected_uid) {
        fprintf(stderr, "libjwt_decode: libjwt refused the token or read another uid\n");
        return 1;
    }
    if (!run("decode", (const char *)tok, key, (int)klen, 0, seconds / 2) ||
        !run("decode_claims", (const char *)tok, key, (int)klen, 1, seconds / 2)) {
        fprintf(stderr, "libjwt_decode: a timed decode failed\n");
        return 1;
    }
    return 0;
}
