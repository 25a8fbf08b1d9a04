/* libjwt's credential creation rate, as Slurm's create_internal() gets it
 * (auth/slurm, libjwt 1.x + jansson): jwt_new(), the grants iat, exp, ver,
 * ruid, context, cluster, uid, gid, host and payload (jwt_Base64encode of
 * the payload bytes), jwt_set_alg(HS256, key), jwt_encode_str(), then
 * free() and jwt_free().
 *
 * Compiled at benchmark time by slurmauth_fast.verify_rate:
 *   gcc -O2 libjwt_create.c -o libjwt_create -ljwt
 * Usage: libjwt_create KEY_FILE EXPECTED_TOKEN_FILE SECONDS PAYLOAD_FILE
 *                      UID GID HOST CLUSTER IAT TTL VERSION
 * Prints "create ns_per_op iterations". Exits non-zero unless the token
 * libjwt writes is byte for byte EXPECTED_TOKEN_FILE (slurmauth_fast's
 * create_credential for the same claims), so both sides time the same work.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include <jwt.h>

/* In libjwt 1.x but not in its header (Slurm declares it the same way). */
int jwt_Base64encode(char *coded_dst, const char *plain_src, int len_plain_src);

struct claims {
    const unsigned char *key;
    int klen;
    const char *payload;     /* base64 of the payload bytes, or NULL */
    long uid, gid, iat, ttl, ver;
    const char *host, *cluster;
};

static char *create_once(const struct claims *c)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    if (jwt_new(&jwt))
        return NULL;
    if (jwt_add_grant_int(jwt, "iat", c->iat) || jwt_add_grant_int(jwt, "exp", c->iat + c->ttl) ||
        jwt_add_grant_int(jwt, "ver", c->ver) || jwt_add_grant_int(jwt, "ruid", 4294967295L) ||
        jwt_add_grant(jwt, "context", "auth") || jwt_add_grant(jwt, "cluster", c->cluster) ||
        jwt_add_grant_int(jwt, "uid", c->uid) || jwt_add_grant_int(jwt, "gid", c->gid) ||
        jwt_add_grant(jwt, "host", c->host) ||
        (c->payload && jwt_add_grant(jwt, "payload", c->payload)) ||
        jwt_set_alg(jwt, JWT_ALG_HS256, c->key, c->klen))
        goto out;
    tok = jwt_encode_str(jwt);
out:
    jwt_free(jwt);
    return tok;
}

int main(int argc, char **argv)
{
    size_t klen, tlen, plen;
    unsigned char *key, *want, *payload;
    char *b64 = NULL, *tok;
    struct claims c;
    double seconds, start, elapsed;
    unsigned long iters = 0, batch = 200, k;
    if (argc != 12) {
        fprintf(stderr, "usage: %s KEY_FILE EXPECTED_TOKEN_FILE SECONDS PAYLOAD_FILE UID GID "
                "HOST CLUSTER IAT TTL VERSION\n", argv[0]);
        return 2;
    }
    key = slurp(argv[1], &klen);
    want = slurp(argv[2], &tlen);
    seconds = atof(argv[3]);
    payload = slurp(argv[4], &plen);
    if (!key || !want || !payload || seconds <= 0 || klen > 0x7fffffff || plen > 0xffff) {
        fprintf(stderr, "libjwt_create: cannot read inputs\n");
        return 2;
    }
    if (plen) {
        b64 = malloc(2 * plen + 8);
        if (!b64 || jwt_Base64encode(b64, (const char *)payload, (int)plen) <= 0) {
            fprintf(stderr, "libjwt_create: jwt_Base64encode failed\n");
            return 2;
        }
    }
    c.key = key;
    c.klen = (int)klen;
    c.payload = b64;
    c.uid = atol(argv[5]);
    c.gid = atol(argv[6]);
    c.host = argv[7];
    c.cluster = argv[8];
    c.iat = atol(argv[9]);
    c.ttl = atol(argv[10]);
    c.ver = atol(argv[11]);
    tok = create_once(&c);
    if (!tok || strcmp(tok, (const char *)want) != 0) {
        fprintf(stderr, "libjwt_create: libjwt wrote another token than slurmauth_fast:\n%s\n%s\n",
                tok ? tok : "(none)", (const char *)want);
        return 1;
    }
    free(tok);
    start = now_ns();
    do {
        for (k = 0; k < batch; k++) {
            /* Slurm base64-encodes the payload on every call */
            if (plen && jwt_Base64encode(b64, (const char *)payload, (int)plen) <= 0)
                return 1;
            tok = create_once(&c);
            if (!tok)
                return 1;
            free(tok);
        }
        iters += batch;
        elapsed = now_ns() - start;
    } while (elapsed < seconds * 1e9);
    printf("create %.2f %lu\n", elapsed / iters, iters);
    return 0;
}
