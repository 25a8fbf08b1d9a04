#include "jws.h"

#include <string.h>

#include "base64.h"
#include "sa_status.h"
#include "sha256_mb.h"

int sa_jws_parts_at(size_t len, size_t dot1, size_t dot2, sa_jws_parts *p)
{
    p->header_len = dot1;
    p->payload_off = dot1 + 1;
    p->payload_len = dot2 - dot1 - 1;
    p->sig_off = dot2 + 1;
    p->sig_len = len - p->sig_off;
    return p->header_len == 0 || p->payload_len == 0 ? SA_E_EMPTY_SEGMENT : SA_OK;
}

int sa_jws_split_any(const char *tok, size_t len, size_t max_len, sa_jws_parts *p)
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
    return sa_jws_parts_at(len, (size_t)(d1 - tok), (size_t)(d2 - tok), p);
}

int sa_jws_hs256_tag_length(const sa_jws_parts *p)
{
    return p->sig_len == SA_JWS_SIG_B64_LEN ? SA_OK : SA_E_SIG_LENGTH;
}

int sa_jws_split(const char *tok, size_t len, size_t max_len, sa_jws_parts *p)
{
    int rc = sa_jws_split_any(tok, len, max_len, p);

    return rc != SA_OK ? rc : sa_jws_hs256_tag_length(p);
}

/* The 32-byte tag of a split token, strictly decoded. */
static int sig_decode(const char *tok, const sa_jws_parts *p, uint8_t got[32])
{
    size_t n = 0;
    int rc = sa_b64url_decode(tok + p->sig_off, p->sig_len, got, 32, &n);

    if (rc != SA_OK)
        return rc == SA_E_BUFFER ? SA_E_SIG_LENGTH : rc;
    return n == 32 ? SA_OK : SA_E_SIG_LENGTH;
}

/* The computed tag against the token's, in constant time; wipes `want`. */
static int tag_result(uint8_t want[32], const uint8_t got[32])
{
    int eq = sa_ct_equal(want, got, 32), rc;

    /* equal -> SA_OK, different -> SA_E_BAD_SIGNATURE by masking, not by
     * "?:": a compiler may emit a conditional jump on the secret-derived
     * comparison result for that (gcc -O0 does; tools/ct_check.sh finds it). */
    rc = (int)((unsigned)SA_E_BAD_SIGNATURE & (0u - (unsigned)(eq ^ 1)));
    sa_wipe(want, 32);
    /* match or not is the public outcome every caller branches on (tools/ct_check.sh) */
    SA_DECLASSIFY(&rc, sizeof(rc));
    return rc;
}

int sa_jws_hs256_begin(sa_hmac_job *m, const sa_hmac_key *k, const char *tok,
                       const sa_jws_parts *p, uint8_t got[32])
{
    int rc;

    if (!m || !k || !k->ready || !tok || !p)
        return SA_E_ARG;
    /* the first compression is under way while the tag is decoded */
    sa_hmac_begin(m, k, (const uint8_t *)tok, p->sig_off - 1);
    sa_hmac_step(m);
    if ((rc = sig_decode(tok, p, got)) != SA_OK)
        sa_wipe(m, sizeof(*m));
    return rc;
}

int sa_jws_hs256_end(sa_hmac_job *m, const uint8_t got[32])
{
    uint8_t want[32];

    sa_hmac_end(m, want);
    return tag_result(want, got);
}

int sa_jws_hs256_check(const sa_hmac_key *k, const char *tok, const sa_jws_parts *p)
{
    sa_hmac_job m;
    uint8_t got[32];
    int rc = sa_jws_hs256_begin(&m, k, tok, p, got);

    return rc != SA_OK ? rc : sa_jws_hs256_end(&m, got);
}

void sa_jws_hs256_check2(const sa_hmac_key *ka, const char *toka, const sa_jws_parts *pa,
                         const sa_hmac_key *kb, const char *tokb, const sa_jws_parts *pb,
                         int rc[2])
{
    uint8_t wa[32], wb[32], ga[32], gb[32];

    if (!ka || !ka->ready || !toka || !pa || !kb || !kb->ready || !tokb || !pb) {
        rc[0] = sa_jws_hs256_check(ka, toka, pa);
        rc[1] = sa_jws_hs256_check(kb, tokb, pb);
        return;
    }
    rc[0] = sig_decode(toka, pa, ga);
    rc[1] = sig_decode(tokb, pb, gb);
    if (rc[0] != SA_OK || rc[1] != SA_OK) {   /* a malformed tag: the other alone */
        if (rc[0] == SA_OK)
            rc[0] = sa_jws_hs256_check(ka, toka, pa);
        if (rc[1] == SA_OK)
            rc[1] = sa_jws_hs256_check(kb, tokb, pb);
        return;
    }
    sa_hmac_sha256_x2(ka, (const uint8_t *)toka, pa->sig_off - 1, wa,
                      kb, (const uint8_t *)tokb, pb->sig_off - 1, wb);
    rc[0] = tag_result(wa, ga);
    rc[1] = tag_result(wb, gb);
}

void sa_jws_hs256_checkn(int impl, const sa_hmac_key *const *keys, const char *const *toks,
                         const sa_jws_parts *const *parts, size_t n, int *rc)
{
    const sa_hmac_key *k[SA_MB_MAX_LANES];
    const uint8_t *m[SA_MB_MAX_LANES];
    size_t len[SA_MB_MAX_LANES], idx[SA_MB_MAX_LANES], i, c = 0;
    uint8_t got[SA_MB_MAX_LANES][32], want[SA_MB_MAX_LANES * 32];

    if (n > SA_MB_MAX_LANES) {
        for (i = 0; i < n; i += SA_MB_MAX_LANES)
            sa_jws_hs256_checkn(impl, keys + i, toks + i, parts + i,
                                n - i < SA_MB_MAX_LANES ? n - i : SA_MB_MAX_LANES, rc + i);
        return;
    }
    for (i = 0; i < n; i++) {
        if (!keys[i] || !keys[i]->ready || !toks[i] || !parts[i]) {
            rc[i] = SA_E_ARG;
            continue;
        }
        rc[i] = sig_decode(toks[i], parts[i], got[c]);
        if (rc[i] != SA_OK)      /* a malformed tag: no MAC, as in sa_jws_hs256_check */
            continue;
        k[c] = keys[i];
        m[c] = (const uint8_t *)toks[i];
        len[c] = parts[i]->sig_off - 1;
        idx[c++] = i;
    }
    if (!c)
        return;
    if (sa_hmac_sha256_mb(impl, k, m, len, c, want) != SA_OK) {
        for (i = 0; i < c; i++)
            rc[idx[i]] = sa_jws_hs256_check(k[i], toks[idx[i]], parts[idx[i]]);
        return;
    }
    for (i = 0; i < c; i++)
        rc[idx[i]] = tag_result(want + 32 * i, got[i]);
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

/* Header segments as PyJWT, joserfc, python-jose, libjwt and this package write
 * them for HS256 (compact and with json.dumps' default separators). */
static const char *const known_headers[SA_JWS_KNOWN_HEADERS] = {
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",          /* {"alg":"HS256","typ":"JWT"} */
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9",          /* {"typ":"JWT","alg":"HS256"} */
    "eyJhbGciOiJIUzI1NiJ9",                          /* {"alg":"HS256"} */
    "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9",      /* {"alg": "HS256", "typ": "JWT"} */
    "eyJ0eXAiOiAiSldUIiwgImFsZyI6ICJIUzI1NiJ9",      /* {"typ": "JWT", "alg": "HS256"} */
};

const char *sa_jws_known_header(int i)
{
    return i >= 0 && i < SA_JWS_KNOWN_HEADERS ? known_headers[i] : NULL;
}

static int known_header(const char *seg, size_t n)
{
    int i;

    for (i = 0; i < SA_JWS_KNOWN_HEADERS; i++)
        if (strlen(known_headers[i]) == n && memcmp(known_headers[i], seg, n) == 0)
            return i;
    return -1;
}

/* Bytes the pre-scan reads between two sa_hmac_step() calls: about the time
 * SHA-NI needs for half a compression. */
#define PRESCAN_STEP_BYTES 16

/* One pass over the claims bytes (see sa_jws_decoded.json_plain). It does not
 * validate the grammar: the caller's JSON parser does, and a text it refuses
 * goes to the strict reader whatever this says. It only has to be right about
 * texts that are valid JSON. With a job (mac not NULL), the HMAC is stepped
 * every PRESCAN_STEP_BYTES, so the two run side by side. */
static void json_prescan(const uint8_t *s, size_t n, sa_jws_decoded *out, sa_hmac_job *mac)
{
    size_t i = 0, j, next_step = PRESCAN_STEP_BYTES;
    unsigned depth = 0;
    int plain = n > 0 && s[0] == '{';

    out->objects = out->members = 0;
    while (i < n && plain) {
        uint8_t c = s[i];

        if (mac && i >= next_step) {
            sa_hmac_step(mac);
            next_step = i + PRESCAN_STEP_BYTES;
        }

        if (c == '"') {                       /* a string: look at its escapes */
            for (i++; i < n && s[i] != '"'; i++) {
                if (s[i] != '\\')
                    continue;
                if (++i >= n)
                    break;
                if (s[i] == 'u') {
                    long v = i + 4 < n ? sa_hex4(s + i + 1) : -1;

                    /* NUL and surrogates: the strict reader decides */
                    if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
                        plain = 0;
                }
            }
            i++;
        } else if (c == '{' || c == '[') {
            if (c == '{')
                out->objects++;
            if (++depth > SA_JWS_MAX_DEPTH)
                plain = 0;
            i++;
        } else if (c == '}' || c == ']') {
            depth -= depth > 0;
            i++;
        } else if (c == ':') {
            out->members++;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t digits = 0;
            int real = 0, expo = 0;

            for (j = i; j < n; j++) {
                uint8_t d = s[j];

                if (d >= '0' && d <= '9')
                    digits++;
                else if (d == '.')
                    real = 1;
                else if (d == 'e' || d == 'E')
                    expo = 1;
                else if (d != '-' && d != '+')
                    break;
            }
            /* int64 range and double overflow: the strict reader decides */
            if ((!real && !expo && digits >= 19) || expo || j - i >= 300)
                plain = 0;
            i = j;
        } else if (c == 'N' || c == 'I') {   /* NaN, Infinity (or not JSON) */
            plain = 0;
        } else {
            i++;
        }
    }
    out->json_plain = plain;
}

int sa_jws_hs256_decode(const sa_hmac_key *k, int check_mac, const char *tok, size_t len,
                        size_t max_len, uint8_t *buf, size_t cap, sa_jws_decoded *out)
{
    sa_jws_parts p;
    size_t hdr_cap;
    int rc, claims_rc;

    if (!out || !buf)
        return SA_E_ARG;
    rc = sa_jws_split(tok, len, max_len, &p);
    if (rc != SA_OK)
        return rc;
    if (cap < sa_b64_decoded_max(len))
        return SA_E_BUFFER;
    out->header_kind = known_header(tok, p.header_len);
    if (check_mac) {
        /* the claims are decoded and pre-scanned while the HMAC runs; a bad
         * tag is still reported before bad base64 */
        sa_hmac_job m;
        uint8_t got[32];

        rc = sa_jws_hs256_begin(&m, k, tok, &p, got);
        if (rc != SA_OK)
            return rc;
        claims_rc = sa_jws_decode_segment(tok, &p, 1, buf, cap, &out->claims_len);
        if (claims_rc == SA_OK)
            json_prescan(buf, out->claims_len, out, &m);
        rc = sa_jws_hs256_end(&m, got);
        if (rc != SA_OK)
            return rc;
        if (claims_rc != SA_OK)
            return claims_rc;
    } else {
        uint8_t got[32];           /* the tag's shape is still checked */

        rc = sig_decode(tok, &p, got);
        if (rc != SA_OK)
            return rc;
        rc = sa_jws_decode_segment(tok, &p, 1, buf, cap, &out->claims_len);
        if (rc != SA_OK)
            return rc;
        json_prescan(buf, out->claims_len, out, NULL);
    }
    out->header_len = 0;
    if (out->header_kind < 0) {
        hdr_cap = cap - out->claims_len;
        rc = sa_jws_decode_segment(tok, &p, 0, buf + out->claims_len, hdr_cap, &out->header_len);
        if (rc != SA_OK)
            return rc;
    }
    return SA_OK;
}

int sa_jws_hs256_decode_key(const uint8_t *key, size_t key_len, const char *tok, size_t len,
                            size_t max_len, uint8_t *buf, size_t cap, sa_jws_decoded *out)
{
    sa_hmac_key k;
    int rc;

    rc = sa_hmac_secret_check(key, key_len);
    if (rc != SA_OK)
        return rc;
    rc = sa_hmac_key_init(&k, key, key_len);
    if (rc == SA_OK)
        rc = sa_jws_hs256_decode(&k, 1, tok, len, max_len, buf, cap, out);
    sa_wipe(&k, sizeof(k));
    return rc;
}
