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
/* The generic verify path (HS256Key.verify, decode): one call does the size
 * limit, the split, a byte comparison of the header segment against the
 * headers JWT libraries write (so a usual header needs no JSON parse), the
 * constant-time HMAC (skipped only when check_mac is 0, for an explicitly
 * unverified decode), the strict base64url decode of the claims (and of the
 * header when it is not a known one) into the caller's buffer, and a pre-scan
 * of the claims JSON telling the caller whether a plain JSON parse of them
 * gives exactly what the strict reader (slurmauth_fast/jsonutil.py) gives. */
#define SA_JWS_KNOWN_HEADERS 5

typedef struct {
    size_t claims_len;    /* decoded claims: buf[0 .. claims_len) */
    size_t header_len;    /* header_kind < 0: decoded header at buf[claims_len .. +header_len) */
    int header_kind;      /* index of the known header segment (sa_jws_known_header), or -1 */
    int json_plain;       /* 1: the claims start with '{', nest at most SA_JWS_MAX_DEPTH levels
                           * and hold no NUL (u+0000) or surrogate escape, no NaN/Infinity, no integer
                           * of 19 digits or more, no real with an exponent or 300+ characters */
    uint32_t objects;     /* '{' outside strings (exact when the claims are valid JSON) */
    uint32_t members;     /* ':' outside strings: the members of all objects together */
} sa_jws_decoded;

#define SA_JWS_MAX_DEPTH 16

/* The known header segment i (base64url text, NUL-terminated), or NULL. */
const char *sa_jws_known_header(int i);

/* buf must hold sa_b64_decoded_max(len) bytes (SA_E_BUFFER otherwise). Errors
 * come in the order of sa_jws_hs256_verify: size, shape, tag, base64. */
int sa_jws_hs256_decode(const sa_hmac_key *k, int check_mac, const char *tok, size_t len,
                        size_t max_len, uint8_t *buf, size_t cap, sa_jws_decoded *out);
/* sa_jws_hs256_decode (tag checked) under a key given as its bytes, which is
 * first refused as sa_hmac_secret_check() refuses it (before anything about
 * the token); its HMAC states live on the stack for this call only and are
 * wiped before it returns. */
int sa_jws_hs256_decode_key(const uint8_t *key, size_t key_len, const char *tok, size_t len,
                            size_t max_len, uint8_t *buf, size_t cap, sa_jws_decoded *out);
/* cffi:end */

/* The parts of a token of len bytes whose only two '.' are at dot1 < dot2:
 * SA_E_EMPTY_SEGMENT for an empty header or payload, else SA_OK (the
 * signature segment may have any length). */
int sa_jws_parts_at(size_t len, size_t dot1, size_t dot2, sa_jws_parts *p);
/* sa_jws_split() but for the signature's length (any alg): size limit, then
 * exactly two '.', then non-empty header and payload. */
int sa_jws_split_any(const char *tok, size_t len, size_t max_len, sa_jws_parts *p);
/* The check sa_jws_split() adds for HS256: SA_E_SIG_LENGTH unless the
 * signature segment is SA_JWS_SIG_B64_LEN characters. */
int sa_jws_hs256_tag_length(const sa_jws_parts *p);

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
