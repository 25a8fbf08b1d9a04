/* libFuzzer: sign -> verify. The input is split into header and claims
 * bytes (first byte = split point), signed with the fixed key, verified back
 * (the decoded bytes must equal what was signed), then the token is damaged
 * in one place chosen by the input and must no longer verify. Also checks
 * that the size limit is applied before anything else: a valid token is
 * refused with SA_E_TOO_LARGE one byte under its length, even with no key. */
#include "fuzz_common.h"
#include "base64.h"
#include "jws.h"
#include "sa_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sa_hmac_key *k = fuzz_key();
    size_t split, hlen, clen, cap, olen = 0, dh = 0, dc = 0, pos;
    uint8_t *hdr, *claims, *dhdr, *dclaims;
    char *tok;
    int rc;

    if (size < 3)
        return 0;
    split = 1 + (size_t)data[0] % (size - 2);     /* header: data[1 .. 1+split) */
    hlen = split;
    clen = size - 1 - split;
    hdr = fuzz_dup(data + 1, hlen);
    claims = fuzz_dup(data + 1 + hlen, clen);
    cap = sa_jws_hs256_signed_len(hlen, clen);
    tok = malloc(cap);
    FUZZ_ASSERT(tok != NULL);
    /* Too small a buffer is refused. */
    FUZZ_ASSERT(sa_jws_hs256_sign(k, hdr, hlen, claims, clen, tok, cap - 1, &olen) == SA_E_BUFFER);
    rc = sa_jws_hs256_sign(k, hdr, hlen, claims, clen, tok, cap, &olen);
    FUZZ_ASSERT(rc == SA_OK && olen == cap);

    dhdr = malloc(hlen);
    dclaims = malloc(clen);
    FUZZ_ASSERT(dhdr && dclaims);
    rc = sa_jws_hs256_verify(k, tok, olen, olen, dhdr, hlen, &dh, dclaims, clen, &dc);
    FUZZ_ASSERT(rc == SA_OK && dh == hlen && dc == clen);
    FUZZ_ASSERT(memcmp(dhdr, hdr, hlen) == 0 && memcmp(dclaims, claims, clen) == 0);

    /* Size limit first: no key at all, still SA_E_TOO_LARGE. */
    FUZZ_ASSERT(sa_jws_hs256_verify(NULL, tok, olen, olen - 1, dhdr, hlen, &dh, dclaims, clen, &dc) ==
                SA_E_TOO_LARGE);

    /* Change one character to another base64url character (or a '.'):
     * whatever the failure, it must not verify. */
    pos = (size_t)data[size - 1] * 131u % olen;
    {
        static const char alt[] = "AQgw-_.";
        char old = tok[pos];
        size_t j;
        for (j = 0; j < sizeof(alt) - 1; j++) {
            if (alt[j] == old)
                continue;
            tok[pos] = alt[j];
            rc = sa_jws_hs256_verify(k, tok, olen, olen, dhdr, hlen, &dh, dclaims, clen, &dc);
            FUZZ_ASSERT(rc != SA_OK);
        }
        tok[pos] = old;
    }
    free(dhdr);
    free(dclaims);
    free(tok);
    free(hdr);
    free(claims);
    return 0;
}
