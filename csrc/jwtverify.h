/* auth/jwt (Slurm plugin 102) token verification in one call.
 *
 * aj_verify() does, in slurmauth_fast.jwt's order and with its rules, all
 * of a token's work but the user database and the RS256 signature: size
 * limit, split, the header (strict JSON: alg exactly "HS256" or "RS256",
 * typ "JWT" compared case-insensitively when present, kid for RS256), the
 * HS256 MAC with the pre-keyed context (constant time), the claims (strict
 * JSON with jansson's number rules; exp and iat required int64 integers,
 * exp >= now; the user from the string claim "sun", else "username", else
 * the policy's userclaimfield; with AJ_POL_CLIENT_IDS the uid/gid claims in
 * 0..4294967295 and the raw "id" value). It allocates nothing: decoded bytes
 * go into the caller's scratch buffer, which starts with an aj_result.
 *
 * JSON is scanned with slurmcred.c's scanner (UTF-8 validated, escapes
 * decoded, \u0000 and lone surrogates refused, integers beyond int64 and
 * reals that overflow a double refused, nesting up to SC_MAX_DEPTH). Names
 * are compared after unescaping; a duplicate member of the header or the
 * claims object is refused. Values that are skipped (claims nobody reads)
 * are checked for syntax but not for duplicate keys inside them: jansson
 * (so Slurm) keeps the last one and no decision depends on them.
 *
 * RS256: aj_verify() returns SA_OK with alg AJ_ALG_RS256 once the header
 * passed; the caller looks the kid up, checks the decoded signature
 * (sig_status, then the bytes at sig_off) over tok[0..signing_len) and, only
 * if it verifies, takes claims_status: what the claims' decode, scan and
 * rules gave (the claims are not acted on before the signature verified).
 */
#ifndef SA_JWTVERIFY_H
#define SA_JWTVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "hmac.h"

/* cffi:begin */
/* Status codes 120-139: auth/jwt (others come from sa_status.h and slurmcred.h). */
#define SA_E_JWT_ALG_TYPE      120  /* header alg is present and not a string */
#define SA_E_JWT_NO_HS256_KEY  121  /* an HS256 token, but no HS256 key is loaded */
#define SA_E_JWT_NO_JWKS       122  /* an RS256 token, but no jwks is loaded */
#define SA_E_JWT_KID_MISSING   123  /* an RS256 token without a kid (or with kid null) */
#define SA_E_JWT_NO_USER       124  /* no string claim sun, username or userclaimfield */
#define SA_E_JWT_USER_EMPTY    125  /* the user claim is the empty string */
#define SA_E_JWT_TOO_MANY      126  /* more than AJ_MAX_MEMBERS claims */
#define SA_E_JWT_INT64         127  /* exp, iat, uid or gid is an integer beyond int64 */

#define AJ_MAX_MEMBERS 256   /* members of the header or of the claims object */

/* aj_result.alg */
#define AJ_ALG_NONE   0      /* the header was not read far enough */
#define AJ_ALG_HS256  1
#define AJ_ALG_RS256  2

/* Claims named in aj_result.err_claim and user_claim. */
#define AJ_CL_EXP       0
#define AJ_CL_IAT       1
#define AJ_CL_UID       2
#define AJ_CL_GID       3
#define AJ_CL_ID        4
#define AJ_CL_SUN       5
#define AJ_CL_USERNAME  6
#define AJ_CL_USERCLAIM 7

/* aj_policy.flags */
#define AJ_POL_CLIENT_IDS 1  /* use_jwt_client_ids: read uid, gid and "id" */

/* now: this value (INT64_MIN + 1) means "the current time" (time(NULL)). */
#define AJ_NOW_CLOCK -9223372036854775807

typedef struct {
    const sa_hmac_key *hs256;     /* NULL: no HS256 key (an RS256-only configuration) */
    int have_jwks;                /* RS256 tokens are accepted for the caller to check */
    size_t max_len;               /* token size limit, checked first */
    const uint8_t *userclaimfield; /* AuthAltParameters userclaimfield=, or NULL */
    size_t userclaimfield_len;
    uint32_t flags;               /* AJ_POL_* */
} aj_policy;

/* At the start of the scratch region (every field an int64_t, so a caller
 * may read it as an array). Offsets are from the start of that region;
 * a length of -1 means absent. */
typedef struct {
    int64_t status;           /* aj_verify()'s return value */
    int64_t alg;              /* AJ_ALG_* */
    int64_t exp, iat;
    int64_t user_off, user_len;   /* the user name (unescaped) */
    int64_t uid, gid;             /* AJ_POL_CLIENT_IDS: -1 when the token carries no client ids */
    int64_t err_claim;        /* on failure: the AJ_CL_* at fault, or -1 */
    int64_t user_claim;       /* AJ_CL_SUN, _USERNAME or _USERCLAIM */
    int64_t alg_off, alg_len;     /* the alg string (unescaped): -1 when absent or not a string */
    int64_t kid_off, kid_len;     /* RS256: the kid (unescaped) */
    int64_t id_off, id_len;       /* AJ_POL_CLIENT_IDS: the raw "id" value */
    int64_t signing_len;          /* RS256: tok[0..signing_len) is signed */
    int64_t sig_off, sig_len;     /* RS256: the decoded signature */
    int64_t sig_status;           /* RS256: the signature segment's base64url status */
    int64_t claims_status;        /* RS256, when sig_status is SA_OK: the claims' outcome, to
                                   * take once the signature verified */
} aj_result;

/* Scratch bytes a token of len bytes needs (aj_result included). */
size_t aj_scratch_need(size_t len);

/* Verify one token (see above). now: the time exp is compared with, or
 * AJ_NOW_CLOCK. The result is at scratch (16-byte aligned). */
int aj_verify(const aj_policy *pol, const char *tok, size_t len, int64_t now,
              void *scratch, size_t cap);

/* The same into the calling thread's own scratch (aj_local_scratch(),
 * aj_local_scratch_size() bytes, valid while the thread lives), for tokens of
 * at most AJ_LOCAL_TOKEN bytes: the caller passes no buffer, and reads the
 * result only when it needs more than the status. A longer token returns
 * SC_E_SCRATCH at once (use aj_verify()). */
#define AJ_LOCAL_TOKEN 1024
int aj_verify_local(const aj_policy *pol, const char *tok, size_t len, int64_t now);
/* aj_verify_local at the current time (now AJ_NOW_CLOCK), in one argument
 * less: the common call, made per token. */
int aj_verify_local_now(const aj_policy *pol, const char *tok, size_t len);
void *aj_local_scratch(void);
size_t aj_local_scratch_size(void);

/* ---- many tokens in one call ---------------------------------------------
 * n tokens back to back in packed[0..packed_len), token i lens[i] bytes.
 * Each gets exactly aj_verify()'s outcome. out (8-byte aligned) holds n
 * aj_result records, then the bytes their offsets point at (offsets are
 * from the start of out). work (16-byte aligned) is scratch for one token
 * at a time. HS256 MACs of consecutive tokens are computed two at a time.
 * Returns SA_OK (outcomes in the records), SA_E_ARG or SC_E_SCRATCH. */
size_t aj_batch_work_need(const aj_policy *pol, size_t packed_len);
size_t aj_batch_out_need(size_t n, size_t packed_len);
int aj_verify_many(const aj_policy *pol, const char *packed, size_t packed_len,
                   const size_t *lens, size_t n, int64_t now,
                   void *work, size_t work_cap, void *out, size_t out_cap);
/* cffi:end */

#endif
