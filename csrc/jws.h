/* Compact JWS (RFC 7515) with HS256 (RFC 7518 section 3.2): split, check,
 * verify and sign with explicit lengths. The verify path allocates nothing:
 * decoded header and claims go into buffers the caller owns. */
#ifndef SA_JWS_H
#define SA_JWS_H

#include <stddef.h>
#include <stdint.h>

#include "hmac.h"

/* cffi:begin */
#define SA_JWS_SIG_B64_LEN 43   /* 32-byte HS256 tag in base64url */

typedef struct {
    size_t header_len;    /* header segment: tok[0 .. header_len) */
    size_t payload_off;   /* payload segment: tok[payload_off .. payload_off + payload_len) */
    size_t payload_len;
    size_t sig_off;       /* signature segment: tok[sig_off .. len) */
    size_t sig_len;
} sa_jws_parts;

/* Check the size limit (first, before looking at any byte), then the shape:
 * exactly two '.' separators, non-empty header and payload, and a signature
 * segment of exactly SA_JWS_SIG_B64_LEN characters. */
int sa_jws_split(const char *tok, size_t len, size_t max_len, sa_jws_parts *p);

/* Verify the HS256 tag of a split token in constant time. */
int sa_jws_hs256_check(const sa_hmac_key *k, const char *tok, const sa_jws_parts *p);
/* The same for two split tokens at once (sa_hmac_sha256_x2): rc[0] and rc[1]
 * are what sa_jws_hs256_check would return for each. */
void sa_jws_hs256_check2(const sa_hmac_key *ka, const char *toka, const sa_jws_parts *pa,
                         const sa_hmac_key *kb, const char *tokb, const sa_jws_parts *pb,
                         int rc[2]);

/* Decode one base64url segment of a split token (0 = header, 1 = payload). */
int sa_jws_decode_segment(const char *tok, const sa_jws_parts *p, int which,
                          uint8_t *out, size_t cap, size_t *outlen);

/* split + check + decode header and payload. */
int sa_jws_hs256_verify(const sa_hmac_key *k, const char *tok, size_t len, size_t max_len,
                        uint8_t *hdr, size_t hdr_cap, size_t *hdr_len,
                        uint8_t *claims, size_t claims_cap, size_t *claims_len);

/* Length of the compact token for a header and claims of these sizes. */
size_t sa_jws_hs256_signed_len(size_t hdr_len, size_t claims_len);

/* Write base64url(hdr) "." base64url(claims) "." base64url(HMAC) into out. */
int sa_jws_hs256_sign(const sa_hmac_key *k, const uint8_t *hdr, size_t hdr_len,
                      const uint8_t *claims, size_t claims_len,
                      char *out, size_t cap, size_t *outlen);
/* cffi:end */

/* sa_jws_hs256_check for n split tokens with the multi-buffer HMAC
 * (sha256_mb.h, implementation impl): rc[i] is what sa_jws_hs256_check
 * would return for token i. */
void sa_jws_hs256_checkn(int impl, const sa_hmac_key *const *keys, const char *const *toks,
                         const sa_jws_parts *const *parts, size_t n, int *rc);

/* sa_jws_hs256_check in two halves, for a caller with work to interleave:
 * begin decodes the token's tag into got (its errors are check's) and starts
 * the HMAC (step it with sa_hmac_step); end finishes it and compares. */
int sa_jws_hs256_begin(sa_hmac_job *m, const sa_hmac_key *k, const char *tok,
                       const sa_jws_parts *p, uint8_t got[32]);
int sa_jws_hs256_end(sa_hmac_job *m, const uint8_t got[32]);

#endif
