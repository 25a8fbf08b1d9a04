#include "bodyhash.h"

#include "hmac.h"
#include "k12.h"
#include "sa_status.h"
#include "sha3.h"

static int digest(int type, const uint8_t *body, size_t blen, uint16_t msg_type, uint8_t out[32])
{
    uint8_t mt[2];

    mt[0] = (uint8_t)(msg_type >> 8);
    mt[1] = (uint8_t)msg_type;
    switch (type) {
    case SA_HASH_K12:
        sa_k12(body, blen, mt, sizeof(mt), out, SA_BODYHASH_DIGEST_LEN);
        return SA_OK;
    case SA_HASH_SHA3:
        sa_sha3_256(body, blen, mt, sizeof(mt), out);
        return SA_OK;
    default:
        return SA_E_HASH_TYPE;
    }
}

int sa_body_hash_payload(int type, const uint8_t *body, size_t blen, uint16_t msg_type,
                         uint8_t *out, size_t cap, size_t *outlen)
{
    int rc;

    if (!out || !outlen || (!body && blen))
        return SA_E_ARG;
    if (type == SA_HASH_NONE) {
        if (cap < 3)
            return SA_E_BUFFER;
        out[0] = SA_HASH_NONE;
        out[1] = (uint8_t)(msg_type >> 8);
        out[2] = (uint8_t)msg_type;
        *outlen = 3;
        return SA_OK;
    }
    if (type != SA_HASH_K12 && type != SA_HASH_SHA3)
        return SA_E_HASH_TYPE;
    if (cap < 1 + SA_BODYHASH_DIGEST_LEN)
        return SA_E_BUFFER;
    out[0] = (uint8_t)type;
    rc = digest(type, body, blen, msg_type, out + 1);
    if (rc == SA_OK)
        *outlen = 1 + SA_BODYHASH_DIGEST_LEN;
    return rc;
}

int sa_body_hash_check(const uint8_t *payload, size_t plen, const uint8_t *body, size_t blen,
                       uint16_t msg_type, unsigned flags)
{
    uint8_t d[SA_BODYHASH_DIGEST_LEN];
    int rc;

    if (!body && blen)
        return SA_E_ARG;
    if (!payload || plen == 0)
        return (flags & SA_BH_BLOCK_NULL_HASH) ? SA_E_HASH_MISSING : SA_OK;

    switch (payload[0]) {
    case SA_HASH_NONE:
        if (plen != 3)
            return SA_E_HASH_LENGTH;
        if (flags & SA_BH_BLOCK_ZERO_HASH)
            return SA_E_HASH_NONE_BLOCKED;
        if (payload[1] != (uint8_t)(msg_type >> 8) || payload[2] != (uint8_t)msg_type)
            return SA_E_HASH_MSG_TYPE;
        return SA_OK;
    case SA_HASH_SHA3:
        if (flags & SA_BH_NO_SHA3)
            return SA_E_HASH_TYPE;
        /* fall through */
    case SA_HASH_K12:
        if (plen != 1 + SA_BODYHASH_DIGEST_LEN)
            return SA_E_HASH_LENGTH;
        rc = digest(payload[0], body, blen, msg_type, d);
        if (rc != SA_OK)
            return rc;
        return sa_ct_equal(d, payload + 1, sizeof(d)) ? SA_OK : SA_E_HASH_MISMATCH;
    default:
        return SA_E_HASH_TYPE;
    }
}
