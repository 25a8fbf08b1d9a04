#include "fuzz.h"

#include "bodyhash.h"
#include "hmac.h"
#include "jws.h"
#include "rpc.h"
#include "sa_status.h"

#define FUZZ_MAX_TOKEN 65536
#define FUZZ_CLAIMS_CAP 49152   /* decoded size of a FUZZ_MAX_TOKEN segment */

static int check_token(const char *tok, size_t len)
{
    static const uint8_t key[] = "slurmauth_fast fuzz key (not a secret)";
    uint8_t claims[FUZZ_CLAIMS_CAP];
    sa_hmac_key k;
    sa_jws_parts parts;
    size_t n;
    int rc, sig;

    rc = sa_jws_split(tok, len, FUZZ_MAX_TOKEN, &parts);
    if (rc != SA_OK)
        return rc;
    rc = sa_hmac_key_init(&k, key, sizeof(key) - 1);
    if (rc != SA_OK)
        return rc;
    sig = sa_jws_hs256_check(&k, tok, &parts);
    sa_hmac_key_wipe(&k);
    /* decode the claims even when the tag fails, to reach the base64 code */
    rc = sa_jws_decode_segment(tok, &parts, 1, claims, sizeof(claims), &n);
    return rc != SA_OK ? rc : sig;
}

int sa_fuzz_rpc_frame(const uint8_t *data, size_t len)
{
    sa_rpc_opts o;
    sa_rpc_frame f;
    int rc, tok_rc = SA_OK;
    const uint8_t *cred = NULL;
    size_t cred_len = 0;

    if (!data || len == 0)
        return SA_E_ARG;
    o.min_version = SA_PROTOCOL_VERSION - SA_PROTOCOL_OLDEST_DELTA;
    o.max_version = SA_PROTOCOL_VERSION;
    o.max_frame = 1u << 24;
    o.length_prefix = data[0] & 1;
    o.slurmdbd = (data[0] >> 1) & 1;

    rc = sa_rpc_parse(data + 1, len - 1, &o, &f);
    if (rc != SA_OK)
        return rc;
    if (f.cred_len) {
        cred = data + 1 + f.cred_off;
        cred_len = f.cred_len - 1;   /* without the NUL */
        tok_rc = check_token((const char *)cred, cred_len);
    }
    rc = sa_body_hash_check(cred, cred_len, data + 1 + f.body_off, f.body_length, f.msg_type,
                            (unsigned)(data[0] >> 2) & 3);
    return tok_rc != SA_OK ? tok_rc : rc;
}
