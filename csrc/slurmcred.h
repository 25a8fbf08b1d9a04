/* auth/slurm credential verification in one call (Slurm's order and rules).
 *
 * sc_verify() takes a compact HS256 JWS and does everything Slurm's
 * decode_jwt() + copy_jwt_grants_to_cred() do: size limit, split, header
 * decode and strict parse (alg, typ, kid), key selection by kid (or the
 * default key), key expiry, the HMAC (constant time), alg exactly "HS256",
 * claims decode and a strict scan of the flat claims, exp against now, ruid
 * against the verifier's uid, the required claims, the context, the payload
 * decode and uid/gid ranges. It allocates nothing: every decoded byte goes
 * into the caller's scratch buffer, which starts with an sc_result.
 *
 * The claims scanner is strict JSON (RFC 8259): UTF-8 validated, escapes
 * decoded (surrogate pairs checked, \u0000 refused like jansson), no
 * duplicate top-level names (compared after unescaping), integers as exact
 * ranges (a float, bool or string where an integer is due is refused),
 * numbers only where jansson takes them (integers within int64, reals that
 * do not overflow a double),
 * unknown claims skipped including nested values up to SC_MAX_DEPTH, whose
 * raw span is returned for "id", "sbcast" and "net".
 */
#ifndef SA_SLURMCRED_H
#define SA_SLURMCRED_H

#include <stddef.h>
#include <stdint.h>

#include "hmac.h"

/* cffi:begin */
/* Status codes 20-59: auth/slurm credentials and claims. */
#define SC_E_HEADER_JSON    20  /* JOSE header is not a strict JSON object */
#define SC_E_HEADER_DUP     21  /* JOSE header has a duplicate member */
#define SC_E_ALG_MISSING    22  /* JOSE header has no alg string */
#define SC_E_ALG            23  /* alg is not exactly HS256 */
#define SC_E_TYP            24  /* typ is present and is not "JWT" */
#define SC_E_KID_TYPE       25  /* kid is present and is not a string */
#define SC_E_KID_UNKNOWN    26  /* kid names no loaded key */
#define SC_E_NO_KEY         27  /* the key set is empty or has no default key */
#define SC_E_KEY_EXPIRED    28  /* the selected slurm.jwks key's exp has passed */
#define SC_E_CLAIMS_JSON    29  /* claims are not a strict JSON object */
#define SC_E_CLAIM_DUP      30  /* a claim name appears twice */
#define SC_E_INT_TYPE       31  /* an integer claim is not a JSON integer */
#define SC_E_INT_RANGE      32  /* an integer claim is outside its range */
#define SC_E_STR_TYPE       33  /* a string claim is not a JSON string */
#define SC_E_EXPIRED        34  /* claim exp < now */
#define SC_E_EXP_MISSING    35  /* no exp claim */
#define SC_E_RUID_MISSING   36  /* no ruid claim */
#define SC_E_RUID           37  /* ruid is neither 4294967295 nor the verifier's uid */
#define SC_E_IAT_MISSING    38
#define SC_E_UID_MISSING    39
#define SC_E_GID_MISSING    40
#define SC_E_HOST_MISSING   41
#define SC_E_CONTEXT_MISSING 42
#define SC_E_CONTEXT        43  /* context is not one the verifier accepts */
#define SC_E_PAYLOAD        44  /* payload is not strict padded standard base64 */
#define SC_E_DEPTH          45  /* claims nest deeper than SC_MAX_DEPTH */
#define SC_E_UTF8           46  /* invalid UTF-8, control character or bad escape in a string */
#define SC_E_TOO_MANY       47  /* more unknown members than the scanner tracks */
#define SC_E_NAME_LONG      48  /* a member name longer than SC_MAX_NAME bytes */
#define SC_E_SCRATCH        49  /* scratch buffer smaller than sc_scratch_need() */
#define SC_E_OBJ_TYPE       50  /* "id", "sbcast" or "net" is not a JSON object */
#define SC_E_BATCH_SPLIT    51  /* a separated batch does not hold exactly n tokens */
#define SC_E_PAYLOAD_EMPTY  52  /* payload is "" (Slurm's base64 decode refuses it) */

#define SC_MAX_DEPTH        16
#define SC_MAX_NAME         128
#define SC_MAX_UNKNOWN      32
/* shape = host_len + (cluster_len + 1) << 21 + (payload_len + 1) << 42 when
 * every length is below SC_SHAPE_LIMIT and there is no "id"/"sbcast"/"net"
 * object, else -1 (lets a caller check for its common layout at once). */
#define SC_SHAPE_LIMIT      2097151

/* Contexts: bit i of a context mask allows context i. */
#define SC_CTX_AUTH    0
#define SC_CTX_SACK    1
#define SC_CTX_LAUNCH  2
#define SC_CTX_SBCAST  3
#define SC_CTX_NET     4

/* Claims named in sc_result.err_claim (index, or -1). */
#define SC_CL_IAT      0
#define SC_CL_EXP      1
#define SC_CL_VER      2
#define SC_CL_RUID     3
#define SC_CL_UID      4
#define SC_CL_GID      5
#define SC_CL_CONTEXT  6
#define SC_CL_CLUSTER  7
#define SC_CL_HOST     8
#define SC_CL_PAYLOAD  9
#define SC_CL_ID       10
#define SC_CL_SBCAST   11
#define SC_CL_NET      12

typedef struct {
    const uint8_t *kid;       /* NULL for a slurm.key key */
    size_t kid_len;
    const sa_hmac_key *key;
    int64_t exp;              /* 0: no expiry */
    /* The base64url header segment Slurm writes for this key
     * ({"alg":"HS256","kid":...,"typ":"JWT"}, no kid for slurm.key): a token
     * whose header segment is exactly this selects the key without decoding
     * and parsing its header (the result is the same). May be NULL. */
    const char *hdr;
    size_t hdr_len;
} sc_key;

typedef struct {
    const sc_key *keys;
    size_t nkeys;
    size_t default_index;
    int by_kid;               /* 1: slurm.jwks (select by kid); 0: slurm.key (kid ignored) */
} sc_keyset;

/* sc_policy.flags */
#define SC_POL_CLIENT_IDS 1   /* AuthInfo=use_client_ids: read the "id" object; without it
                                 "id" is skipped like any unknown claim, as Slurm does */

typedef struct {
    size_t max_len;           /* token size limit, checked first */
    uint32_t verifier_uid;    /* ruid must be 4294967295 or this */
    uint32_t contexts;        /* mask of allowed SC_CTX_* */
    uint32_t flags;           /* SC_POL_* */
} sc_policy;

/* At the start of the scratch buffer. Right after it (at offset
 * sc_result_space()) come host, cluster and the decoded payload, back to back
 * (host_len, cluster_len, payload_len bytes; a length of -1 means absent), so
 * a caller can read all three at once. The raw JSON of "id", "sbcast" and
 * "net" is at the given offsets from the start of the scratch region. */
typedef struct {
    int64_t err_claim;        /* on failure: the SC_CL_* at fault, or -1 */
    int64_t iat, exp, ver;    /* ver -1 when absent */
    int64_t ruid, uid, gid;
    int64_t context;          /* SC_CTX_* */
    int64_t key_index;
    int64_t objects;          /* bit 0 id, bit 1 sbcast, bit 2 net present */
    int64_t shape;            /* the three lengths packed (see SC_SHAPE_LIMIT), or -1 */
    int64_t host_len, cluster_len, payload_len;
    int64_t id_off, id_len;
    int64_t sbcast_off, sbcast_len;
    int64_t net_off, net_len;
} sc_result;

/* String scanner implementation: 16 bytes at a time with SSE2 where it is
 * compiled in (every x86-64 CPU has it), else byte by byte; SC_SCAN_AVX512 is
 * SSE2 plus sc_verify_many's search for token ends and dots 64 bytes at a time
 * with AVX-512BW (AUTO picks it where the CPU and OS have it). All accept and
 * refuse exactly the same inputs; tests compare them. Select one for the
 * whole process (tests and benchmarks; call it before other threads verify):
 * returns the one now active, or -1 when the requested one is not available
 * (the active one is then unchanged). */
#define SC_SCAN_AUTO 0
#define SC_SCAN_PORTABLE 1
#define SC_SCAN_SSE2 2
#define SC_SCAN_AVX512 3
int sc_scan_select(int impl);

/* Offset of the host/cluster/payload bytes in a scratch region. */
size_t sc_result_space(void);

/* Scratch bytes one token of len bytes needs (sc_result included). */
size_t sc_scratch_need(size_t len);

/* Verify one token. now < 0 means "the current time" (time(NULL)). */
int sc_verify(const sc_keyset *ks, const sc_policy *pol, const char *tok, size_t len,
              int64_t now, uint8_t *scratch, size_t cap);

/* ---- many tokens in one call ---------------------------------------------
 *
 * sc_verify_many() verifies n tokens stored in one buffer, separated by
 * SC_BATCH_SEP ('\n', a byte no token can contain: a caller with n strings
 * joins them once); sc_verify_list() verifies n tokens wherever they are,
 * token i at toks[i], lens[i] bytes long (a caller holding n buffers passes
 * their addresses: nothing is copied). Pairs of tokens have their MACs
 * computed together (sa_hmac_sha256_x2); each token still goes through
 * sc_verify's steps in sc_verify's order and gets sc_verify's status.
 *
 * total below is packed_len, or the sum of lens[]. work: 16-byte aligned, at
 * least sc_batch_work_need(pol, total) bytes (reusable between calls). out:
 * 8-byte aligned, at least sc_batch_out_need(n, total) bytes, laid out as
 *     uint64 rec_off[n] | int32 status[n] | uint32 uid[n] | uint32 gid[n]
 * from offset 0 (uid/gid are 0 where status != 0), and token i's record at
 * out + rec_off[i]: its sc_result (err_claim on failure) followed, when
 * verified, by host, cluster and payload and the raw "id"/"sbcast"/"net"
 * objects, whose offsets are relative to the record.
 *
 * Returns SA_OK (each token's outcome is in status[]), SA_E_ARG (bad
 * arguments, misaligned buffers, a NULL token of nonzero length), SC_E_SCRATCH
 * (buffers too small) or, from sc_verify_many, SC_E_BATCH_SPLIT (the buffer
 * does not hold exactly n separated tokens: one of them contained the
 * separator). */
#define SC_BATCH_SEP 10
size_t sc_batch_work_need(const sc_policy *pol, size_t total);
size_t sc_batch_out_need(size_t n, size_t total);
int sc_verify_many(const sc_keyset *ks, const sc_policy *pol, const char *packed,
                   size_t packed_len, size_t n, int64_t now,
                   uint8_t *work, size_t work_cap, uint8_t *out, size_t out_cap);
int sc_verify_list(const sc_keyset *ks, const sc_policy *pol, const char *const *toks,
                   const size_t *lens, size_t n, int64_t now,
                   uint8_t *work, size_t work_cap, uint8_t *out, size_t out_cap);
/* cffi:end */


/* ---- the strict JSON scanner's steps, for other units (csrc/jwtverify.c) ---
 * Exactly the rules above: strings validated (UTF-8, escapes, \u0000 and
 * lone surrogates refused), numbers as jansson reads them, values skipped up
 * to SC_MAX_DEPTH. Not part of the Python API. */
typedef struct {
    const uint8_t *p;
    size_t n;
    size_t i;
} sc_jcur;

typedef struct {          /* a scanned string: raw span between the quotes */
    size_t off, len;
    int esc;              /* contains escapes: must be unescaped before use */
} sc_jstr;

/* Skip JSON whitespace. */
void sc_json_ws(sc_jcur *j);
/* Scan a string at its opening quote (SA_OK or SC_E_UTF8); decodes nothing. */
int sc_json_string(sc_jcur *j, sc_jstr *s);
/* Decode a scanned string into out (never longer than s->len); its length. */
size_t sc_json_unescape(const uint8_t *base, const sc_jstr *s, uint8_t *out);
/* Scan a number: *is_int when it has no fraction or exponent, and then its
 * sign and magnitude (*big: beyond 2^63); a real that overflows a double or
 * a malformed number is `bad`. */
int sc_json_number(sc_jcur *j, int *is_int, int *neg, uint64_t *mag, int *big, int bad);
/* Skip and validate one member's value (integers beyond int64 are `bad`,
 * nesting past SC_MAX_DEPTH is SC_E_DEPTH). */
int sc_json_skip(sc_jcur *j, int bad);
/* After a value: ',' (1), the closing byte (0) or anything else (-1). */
int sc_json_after_value(sc_jcur *j, int close);

#endif
