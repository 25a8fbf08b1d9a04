/* libFuzzer: the strict base64url and padded standard base64 decoders.
 * Invariants: decoding succeeds exactly when the input is the canonical
 * encoding of the result (decode then encode gives the input back; this is
 * what makes every byte string have one accepted encoding); encode then
 * decode gives any byte string back; the decoded length never exceeds
 * sa_b64_decoded_max; a buffer one byte short is refused with SA_E_BUFFER;
 * the portable and the AVX2 decoder (where the CPU has it) give the same
 * status, length and output bytes, errors included; and nothing reads or
 * writes outside the exact-size heap buffers. */
#include "fuzz_common.h"
#include "base64.h"
#include "sa_status.h"

static void decode_roundtrip(int url, const char *in, size_t n)
{
    size_t cap = sa_b64_decoded_max(n), len = 0, elen = 0;
    uint8_t *out = malloc(cap);
    int rc;

    FUZZ_ASSERT(out != NULL);
    rc = url ? sa_b64url_decode(in, n, out, cap, &len) : sa_b64_decode(in, n, out, cap, &len);
    FUZZ_ASSERT(rc == SA_OK || rc == SA_E_BASE64 || rc == SA_E_BASE64_NONCANON);
    if (rc == SA_OK) {
        size_t ecap = url ? sa_b64url_encoded_len(len) : sa_b64_encoded_len(len);
        char *enc = malloc(ecap ? ecap : 1);
        FUZZ_ASSERT(len <= cap && enc != NULL);
        FUZZ_ASSERT(ecap == n);
        FUZZ_ASSERT((url ? sa_b64url_encode(out, len, enc, ecap, &elen)
                         : sa_b64_encode(out, len, enc, ecap, &elen)) == SA_OK);
        FUZZ_ASSERT(elen == n && memcmp(enc, in, n) == 0);
        free(enc);
        if (len > 0) {
            uint8_t *small = malloc(len - 1 ? len - 1 : 1);
            size_t l2 = 0;
            FUZZ_ASSERT(small != NULL);
            rc = url ? sa_b64url_decode(in, n, small, len - 1, &l2) : sa_b64_decode(in, n, small, len - 1, &l2);
            FUZZ_ASSERT(rc == SA_E_BUFFER);
            free(small);
        }
    }
    free(out);
}

static void encode_roundtrip(int url, const uint8_t *in, size_t n)
{
    size_t ecap = url ? sa_b64url_encoded_len(n) : sa_b64_encoded_len(n), elen = 0, dlen = 0;
    char *enc = malloc(ecap ? ecap : 1);
    uint8_t *dec = malloc(n ? n : 1);

    FUZZ_ASSERT(enc && dec);
    FUZZ_ASSERT((url ? sa_b64url_encode(in, n, enc, ecap, &elen) : sa_b64_encode(in, n, enc, ecap, &elen)) == SA_OK);
    FUZZ_ASSERT(elen == ecap);
    if (ecap > 0) {
        size_t l2 = 0;
        FUZZ_ASSERT((url ? sa_b64url_encode(in, n, enc, ecap - 1, &l2)
                         : sa_b64_encode(in, n, enc, ecap - 1, &l2)) == SA_E_BUFFER);
    }
    FUZZ_ASSERT((url ? sa_b64url_decode(enc, elen, dec, n, &dlen) : sa_b64_decode(enc, elen, dec, n, &dlen)) == SA_OK);
    FUZZ_ASSERT(dlen == n && (n == 0 || memcmp(dec, in, n) == 0));
    free(enc);
    free(dec);
}

/* Every decoder implementation: the same status, length and output buffer. */
static void impls_agree(int url, const char *in, size_t n)
{
    size_t cap = sa_b64_decoded_max(n), len[2] = {0, 0};
    uint8_t *out[2];
    int rc[2], k;

    for (k = 0; k < 2; k++) {
        out[k] = malloc(cap);
        FUZZ_ASSERT(out[k] != NULL);
        memset(out[k], 0xA5, cap);
        if (sa_b64_select(k ? SA_B64_AVX2 : SA_B64_PORTABLE) < 0) {   /* no AVX2 here */
            rc[k] = rc[0];
            len[k] = len[0];
            memcpy(out[k], out[0], cap);
            continue;
        }
        rc[k] = url ? sa_b64url_decode(in, n, out[k], cap, &len[k]) : sa_b64_decode(in, n, out[k], cap, &len[k]);
    }
    sa_b64_select(SA_B64_AUTO);
    FUZZ_ASSERT(rc[0] == rc[1] && len[0] == len[1] && memcmp(out[0], out[1], cap) == 0);
    free(out[0]);
    free(out[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_dup(data, size);

    impls_agree(1, (const char *)copy, size);
    impls_agree(0, (const char *)copy, size);
    decode_roundtrip(1, (const char *)copy, size);
    decode_roundtrip(0, (const char *)copy, size);
    encode_roundtrip(1, copy, size);
    encode_roundtrip(0, copy, size);
    free(copy);
    return 0;
}
