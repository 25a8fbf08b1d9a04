/* libFuzzer: arbitrary bytes as a compact JWS verified with a fixed key.
 * Invariants: no memory error for any input; split offsets lie inside the
 * token; verify never succeeds without a valid tag, so a success means
 * re-signing the decoded header and claims reproduces the token byte for byte
 * (strict base64url has one encoding per value, HMAC is deterministic); the
 * decoded lengths fit the documented bound; a too-small buffer gives
 * SA_E_BUFFER and never an overflow. sa_jws_hs256_decode (buffer of exactly
 * sa_b64_decoded_max bytes) agrees with verify on success and failure, gives
 * the same claims and header bytes, reports a bad tag before anything about
 * the claims, and, without the MAC, runs its JSON pre-scan over whatever the
 * payload decodes to. sa_jws_hs256_decode_key with the key's bytes gives what
 * the keyed context gives; sa_hmac_secret_check on the input's first bytes
 * as a key never reads past them. */
#include "fuzz_common.h"
#include "base64.h"
#include "jws.h"
#include "sa_status.h"

#define MAX_TOKEN 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sa_hmac_key *k = fuzz_key();
    char *tok = (char *)fuzz_dup(data, size);
    sa_jws_parts p;
    int rc = sa_jws_split(tok, size, MAX_TOKEN, &p);

    if (size > MAX_TOKEN)
        FUZZ_ASSERT(rc == SA_E_TOO_LARGE);
    if (rc == SA_OK) {
        uint8_t *hdr, *claims;
        size_t hcap = sa_b64_decoded_max(p.header_len), ccap = sa_b64_decoded_max(p.payload_len);
        size_t hlen = 0, clen = 0;
        int vr, ck;

        FUZZ_ASSERT(p.header_len > 0 && p.payload_len > 0);
        FUZZ_ASSERT(tok[p.header_len] == '.' && tok[p.sig_off - 1] == '.');
        FUZZ_ASSERT(p.payload_off + p.payload_len + 1 == p.sig_off);
        FUZZ_ASSERT(p.sig_off + p.sig_len == size && p.sig_len == SA_JWS_SIG_B64_LEN);

        ck = sa_jws_hs256_check(k, tok, &p);
        hdr = malloc(hcap);
        claims = malloc(ccap);
        FUZZ_ASSERT(hdr && claims);
        vr = sa_jws_hs256_verify(k, tok, size, MAX_TOKEN, hdr, hcap, &hlen, claims, ccap, &clen);
        FUZZ_ASSERT(ck == SA_OK ? (vr == SA_OK || vr == SA_E_BASE64 || vr == SA_E_BASE64_NONCANON)
                                : vr == ck);
        if (vr == SA_OK) {
            size_t cap = sa_jws_hs256_signed_len(hlen, clen), olen = 0;
            char *again = malloc(cap);
            FUZZ_ASSERT(again != NULL);
            FUZZ_ASSERT(sa_jws_hs256_sign(k, hdr, hlen, claims, clen, again, cap, &olen) == SA_OK);
            FUZZ_ASSERT(olen == size && memcmp(again, tok, size) == 0);
            free(again);
            /* One byte too little room for the claims: refused, not overflowed. */
            if (clen > 0) {
                uint8_t *small = malloc(clen - 1 ? clen - 1 : 1);
                size_t n2 = 0;
                FUZZ_ASSERT(sa_jws_decode_segment(tok, &p, 1, small, clen - 1, &n2) == SA_E_BUFFER);
                free(small);
            }
        }
        {
            size_t dcap = sa_b64_decoded_max(size);
            uint8_t *dbuf = malloc(dcap);
            sa_jws_decoded d;
            int dr;

            FUZZ_ASSERT(dbuf != NULL);
            dr = sa_jws_hs256_decode(k, 1, tok, size, MAX_TOKEN, dbuf, dcap, &d);
            FUZZ_ASSERT((dr == SA_OK) == (vr == SA_OK));
            FUZZ_ASSERT(ck == SA_OK || dr == ck);
            {
                sa_jws_decoded d2;
                uint8_t *dbuf2 = malloc(dcap);

                FUZZ_ASSERT(dbuf2 != NULL);
                FUZZ_ASSERT(sa_jws_hs256_decode_key((const uint8_t *)FUZZ_KEY, FUZZ_KEY_LEN, tok, size,
                                                    MAX_TOKEN, dbuf2, dcap, &d2) == dr);
                if (dr == SA_OK)
                    FUZZ_ASSERT(d2.claims_len == d.claims_len &&
                                memcmp(dbuf2, dbuf, d.claims_len) == 0);
                free(dbuf2);
            }
            if (dr == SA_OK) {
                FUZZ_ASSERT(d.claims_len == clen && memcmp(dbuf, claims, clen) == 0);
                FUZZ_ASSERT(d.objects <= clen && d.members <= clen);
                if (d.header_kind < 0)
                    FUZZ_ASSERT(d.header_len == hlen && memcmp(dbuf + clen, hdr, hlen) == 0);
                else
                    FUZZ_ASSERT(strlen(sa_jws_known_header(d.header_kind)) == p.header_len &&
                                memcmp(sa_jws_known_header(d.header_kind), tok, p.header_len) == 0);
            }
            /* without the MAC: the tag's shape, base64 and the pre-scan on any payload */
            dr = sa_jws_hs256_decode(NULL, 0, tok, size, MAX_TOKEN, dbuf, dcap, &d);
            FUZZ_ASSERT(dr == SA_OK || dr == SA_E_BASE64 || dr == SA_E_BASE64_NONCANON ||
                        dr == SA_E_SIG_LENGTH);
            FUZZ_ASSERT(dr != SA_OK || d.claims_len <= dcap);
            /* a buffer one byte short of the bound is refused before any decoding */
            FUZZ_ASSERT(sa_jws_hs256_decode(k, 1, tok, size, MAX_TOKEN, dbuf, dcap - 1, &d) ==
                        SA_E_BUFFER);
            free(dbuf);
        }
        free(hdr);
        free(claims);
    } else {
        uint8_t *key = fuzz_dup(data, size < 64 ? size : 64);
        int kr = sa_hmac_secret_check(key, size < 64 ? size : 64);

        FUZZ_ASSERT(kr == SA_OK || kr == SA_E_KEY_EMPTY || kr == SA_E_KEY_PUBLIC);
        FUZZ_ASSERT((kr == SA_E_KEY_EMPTY) == (size == 0));
        free(key);
        /* The only failures split can have. */
        FUZZ_ASSERT(rc == SA_E_TOO_LARGE || rc == SA_E_SEGMENTS || rc == SA_E_EMPTY_SEGMENT ||
                    rc == SA_E_SIG_LENGTH);
    }
    free(tok);
    return 0;
}
