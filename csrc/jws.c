#include "jws.h"

#include <string.h>

#include "base64.h"
#include "sa_status.h"

int sa_jws_split(const char *tok, size_t len, size_t max_len, sa_jws_parts *p)
{
    const char *d1, *d2;

    if (!p || (!tok && len))
        return SA_E_ARG;
    if (len > max_len)
        return SA_E_TOO_LARGE;
    d1 = len ? memchr(tok, '.', len) : NULL;
    if (!d1)
        return SA_E_SEGMENTS;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return SA_E_SEGMENTS;
    p->header_len = (size_t)(d1 - tok);
    p->payload_off = p->header_len + 1;
    p->payload_len = (size_t)(d2 - d1 - 1);
    p->sig_off = (size_t)(d2 - tok) + 1;
    p->sig_len = len - p->sig_off;
    if (p->header_len == 0 || p->payload_len == 0)
        return SA_E_EMPTY_SEGMENT;
    if (p->sig_len != SA_JWS_SIG_B64_LEN)
        return SA_E_SIG_LENGTH;
    return SA_OK;
}

int sa_jws_hs256_check(const sa_hmac_key *k, const char *tok, const sa_jws_parts *p)
{
    uint8_t want[32], got[32];
    size_t n = 0;
    int rc, eq;

    if (!k || !k->ready || !tok || !p)
        return SA_E_ARG;
    rc = sa_b64url_decode(tok + p->sig_off, p->sig_len, got, sizeof(got), &n);
    if (rc != SA_OK)
        return rc == SA_E_BUFFER ? SA_E_SIG_LENGTH : rc;
    if (n != sizeof(got))
        return SA_E_SIG_LENGTH;
    sa_hmac_sha256(k, (const uint8_t *)tok, p->sig_off - 1, want);
    /* equal -> SA_OK, different -> SA_E_BAD_SIGNATURE by masking, not by
     * "?:": a compiler may emit a conditional jump on the secret-derived
     * comparison result for that (gcc -O0 does; tools/ct_check.sh finds it). */
    eq = sa_ct_equal(want, got, sizeof(want));
    rc = (int)((unsigned)SA_E_BAD_SIGNATURE & (0u - (unsigned)(eq ^ 1)));
    sa_wipe(want, sizeof(want));
    /* match or not is the public outcome every caller branches on (tools/ct_check.sh) */
    SA_DECLASSIFY(&rc, sizeof(rc));
    return rc;
}

int sa_jws_decode_segment(const char *tok, const sa_jws_parts *p, int which,
                          uint8_t *out, size_t cap, size_t *outlen)
{
    if (!tok || !p)
        return SA_E_ARG;
    if (which == 0)
        return sa_b64url_decode(tok, p->header_len, out, cap, outlen);
    if (which == 1)
        return sa_b64url_decode(tok + p->payload_off, p->payload_len, out, cap, outlen);
    return SA_E_ARG;
}

int sa_jws_hs256_verify(const sa_hmac_key *k, const char *tok, size_t len, size_t max_len,
                        uint8_t *hdr, size_t hdr_cap, size_t *hdr_len,
                        uint8_t *claims, size_t claims_cap, size_t *claims_len)
{
    sa_jws_parts p;
    int rc = sa_jws_split(tok, len, max_len, &p);

    if (rc != SA_OK)
        return rc;
    rc = sa_jws_hs256_check(k, tok, &p);
    if (rc != SA_OK)
        return rc;
    rc = sa_jws_decode_segment(tok, &p, 0, hdr, hdr_cap, hdr_len);
    if (rc != SA_OK)
        return rc;
    return sa_jws_decode_segment(tok, &p, 1, claims, claims_cap, claims_len);
}

size_t sa_jws_hs256_signed_len(size_t hdr_len, size_t claims_len)
{
    return sa_b64url_encoded_len(hdr_len) + 1 + sa_b64url_encoded_len(claims_len) + 1 +
           SA_JWS_SIG_B64_LEN;
}

int sa_jws_hs256_sign(const sa_hmac_key *k, const uint8_t *hdr, size_t hdr_len,
                      const uint8_t *claims, size_t claims_len,
                      char *out, size_t cap, size_t *outlen)
{
    uint8_t tag[32];
    size_t o = 0, n = 0;
    int rc;

    if (!k || !k->ready || !out || !outlen || (!hdr && hdr_len) || (!claims && claims_len))
        return SA_E_ARG;
    if (hdr_len == 0 || claims_len == 0)
        return SA_E_EMPTY_SEGMENT;
    if (sa_jws_hs256_signed_len(hdr_len, claims_len) > cap)
        return SA_E_BUFFER;
    rc = sa_b64url_encode(hdr, hdr_len, out, cap, &n);
    if (rc != SA_OK)
        return rc;
    o = n;
    out[o++] = '.';
    rc = sa_b64url_encode(claims, claims_len, out + o, cap - o, &n);
    if (rc != SA_OK)
        return rc;
    o += n;
    sa_hmac_sha256(k, (const uint8_t *)out, o, tag);
    out[o++] = '.';
    rc = sa_b64url_encode(tag, sizeof(tag), out + o, cap - o, &n);
    sa_wipe(tag, sizeof(tag));
    if (rc != SA_OK)
        return rc;
    *outlen = o + n;
    return SA_OK;
}
