/* libFuzzer: the auth/jwt verifier aj_verify() (split, strict header scan,
 * alg/typ/kid rules, HS256 MAC, strict claims scan, exp/iat/user/client-id
 * rules) and its batch form aj_verify_many().
 *
 * Input byte 0 picks the mode:
 *   even: the rest is a raw token;
 *   odd:  byte 1 is the header length; the header and claims JSON that
 *         follow are SIGNED with the fuzz key (so the claims scanner and the
 *         rules behind the MAC are reached).
 * Bit 1 of byte 0 selects the policy: use_jwt_client_ids with
 * userclaimfield "email", or neither.
 * Invariants: no memory error with an exact-size scratch buffer; the status
 * is one the API documents; on success exp >= now, the user name is
 * non-empty and its span (and the alg, kid, signature and "id" spans) lie
 * inside the scratch, uid/gid are in range; aj_verify_many over the token
 * twice gives each copy aj_verify's result with the same bytes behind its
 * spans; aj_verify_local gives aj_verify's result (tokens up to
 * AJ_LOCAL_TOKEN bytes); the token packed in an auth/jwt frame gets
 * aj_verify's status from sa_verify_frame, with the verdict's stage and
 * claim. */
#include "fuzz_common.h"
#include "jws.h"
#include "jwtverify.h"
#include "rpc.h"
#include "sa_status.h"
#include "slurmcred.h"
#include "verify_frame.h"

#define NOW 1764000030
#define MAX_TOKEN 16384

static int known_status(int rc)
{
    return rc == SA_OK || (rc >= SA_E_TOO_LARGE && rc <= SA_E_SIG_LENGTH) || rc == SA_E_BAD_SIGNATURE ||
           rc == SC_E_HEADER_JSON || rc == SC_E_HEADER_DUP || rc == SC_E_ALG_MISSING || rc == SC_E_ALG ||
           rc == SC_E_TYP || rc == SC_E_KID_TYPE || rc == SC_E_CLAIMS_JSON || rc == SC_E_CLAIM_DUP ||
           rc == SC_E_INT_TYPE || rc == SC_E_INT_RANGE || rc == SC_E_EXPIRED ||
           rc == SC_E_EXP_MISSING || rc == SC_E_IAT_MISSING || rc == SC_E_UID_MISSING ||
           rc == SC_E_GID_MISSING || rc == SC_E_DEPTH || rc == SC_E_UTF8 ||
           (rc >= SA_E_JWT_ALG_TYPE && rc <= SA_E_JWT_INT64);
}

static void check_span(int64_t off, int64_t len, size_t cap)
{
    if (len < 0)
        return;
    FUZZ_ASSERT(off >= 0 && (uint64_t)off + (uint64_t)len <= cap);
}

/* The same result and the same bytes behind each span. */
static void same_result(const aj_result *a, const uint8_t *abase, const aj_result *b, const uint8_t *bbase)
{
    FUZZ_ASSERT(a->status == b->status && a->alg == b->alg && a->err_claim == b->err_claim);
    FUZZ_ASSERT(a->exp == b->exp && a->iat == b->iat && a->uid == b->uid && a->gid == b->gid);
    FUZZ_ASSERT(a->user_claim == b->user_claim && a->signing_len == b->signing_len);
    FUZZ_ASSERT(a->sig_status == b->sig_status && a->claims_status == b->claims_status);
    FUZZ_ASSERT(a->user_len == b->user_len && a->alg_len == b->alg_len && a->kid_len == b->kid_len);
    FUZZ_ASSERT(a->id_len == b->id_len && a->sig_len == b->sig_len);
    if (a->user_len > 0)
        FUZZ_ASSERT(memcmp(abase + a->user_off, bbase + b->user_off, (size_t)a->user_len) == 0);
    if (a->alg_len > 0)
        FUZZ_ASSERT(memcmp(abase + a->alg_off, bbase + b->alg_off, (size_t)a->alg_len) == 0);
    if (a->kid_len > 0)
        FUZZ_ASSERT(memcmp(abase + a->kid_off, bbase + b->kid_off, (size_t)a->kid_len) == 0);
    if (a->id_len > 0)
        FUZZ_ASSERT(memcmp(abase + a->id_off, bbase + b->id_off, (size_t)a->id_len) == 0);
    if (a->sig_len > 0)
        FUZZ_ASSERT(memcmp(abase + a->sig_off, bbase + b->sig_off, (size_t)a->sig_len) == 0);
}

/* The token as a plugin-102 frame (with a packed username): sa_verify_frame
 * gives aj_verify's status r->status, at the token stage with its claim. */
static void in_frame(const aj_policy *pol, const char *tok, size_t len, const aj_result *r)
{
    static const uint8_t USER[] = "root";
    sa_rpc_msg m;
    sa_rpc_opts o;
    sa_rpc_frame f;
    sa_frame_verdict v;
    size_t flen = 0, cap = aj_scratch_need(len);
    uint8_t *frame, *scratch;
    int rc;

    if (memchr(tok, 0, len) != NULL)
        return;     /* a packed string holds no NUL */
    memset(&m, 0, sizeof(m));
    m.version = SA_PROTOCOL_VERSION;
    m.msg_type = 1008;
    m.auth_plugin = SA_AUTH_JWT;
    m.cred = (const uint8_t *)tok;
    m.cred_len = len;
    m.user = USER;
    m.user_len = sizeof(USER) - 1;
    m.length_prefix = 1;
    FUZZ_ASSERT(sa_rpc_pack(&m, NULL, 0, &flen) == SA_OK);
    frame = malloc(flen);
    FUZZ_ASSERT(frame != NULL && sa_rpc_pack(&m, frame, flen, &flen) == SA_OK);
    FUZZ_ASSERT(posix_memalign((void **)&scratch, 16, cap) == 0);
    memset(&o, 0, sizeof(o));
    o.min_version = SA_PROTOCOL_VERSION - SA_PROTOCOL_OLDEST_DELTA;
    o.max_version = SA_PROTOCOL_VERSION;
    o.max_frame = 1u << 24;
    o.length_prefix = 1;
    rc = sa_verify_frame(frame, flen, &o, &f, NULL, NULL, pol, NOW, 0, scratch, cap, &v);
    FUZZ_ASSERT(rc == v.status && f.auth_plugin == SA_AUTH_JWT);
    if (len == 0) {
        FUZZ_ASSERT(rc == SA_E_FRAME_NULL_CRED || rc == (int)r->status);
    } else {
        FUZZ_ASSERT(rc == (int)r->status);
        FUZZ_ASSERT(v.stage == (rc == SA_OK ? SA_STAGE_NONE : SA_STAGE_TOKEN));
        FUZZ_ASSERT(v.claim == (rc == SA_OK ? -1 : r->err_claim));
    }
    free(scratch);
    free(frame);
}

static void run(const aj_policy *pol, const char *tok, size_t len)
{
    size_t cap = aj_scratch_need(len), wcap, ocap, lens[2];
    uint8_t *scratch = malloc(cap), *work, *out;
    char *packed;
    aj_result *r = (aj_result *)(void *)scratch, *recs;
    int rc, k;

    FUZZ_ASSERT(scratch != NULL);
    rc = aj_verify(pol, tok, len, NOW, scratch, cap);
    FUZZ_ASSERT(known_status(rc) && r->status == rc);
    if (len > pol->max_len)
        FUZZ_ASSERT(rc == SA_E_TOO_LARGE);
    check_span(r->alg_off, r->alg_len, cap);
    if (rc == SA_OK) {
        FUZZ_ASSERT(r->alg == AJ_ALG_HS256 || r->alg == AJ_ALG_RS256);
        check_span(r->kid_off, r->kid_len, cap);
        if (r->alg == AJ_ALG_RS256) {
            FUZZ_ASSERT(r->signing_len > 0 && (size_t)r->signing_len < len && tok[r->signing_len] == '.');
            check_span(r->sig_off, r->sig_len, cap);
        }
        if (r->alg == AJ_ALG_HS256 || (r->sig_status == SA_OK && r->claims_status == SA_OK)) {
            FUZZ_ASSERT(r->exp >= NOW);
            FUZZ_ASSERT(r->user_len > 0 && r->user_claim >= AJ_CL_SUN && r->user_claim <= AJ_CL_USERCLAIM);
            check_span(r->user_off, r->user_len, cap);
            check_span(r->id_off, r->id_len, cap);
            FUZZ_ASSERT(r->uid >= -1 && r->uid <= 4294967295LL && r->gid >= -1 && r->gid <= 4294967295LL);
            FUZZ_ASSERT((r->uid < 0) == (r->gid < 0));
            if (!(pol->flags & AJ_POL_CLIENT_IDS))
                FUZZ_ASSERT(r->uid == -1 && r->id_len == -1);
        } else {
            FUZZ_ASSERT(known_status((int)r->claims_status) && known_status((int)r->sig_status));
        }
    }

    /* the thread's own scratch */
    rc = aj_verify_local(pol, tok, len, NOW);
    if (len > AJ_LOCAL_TOKEN) {
        FUZZ_ASSERT(rc == SC_E_SCRATCH);
    } else {
        FUZZ_ASSERT(rc == r->status);
        same_result(r, scratch, (const aj_result *)aj_local_scratch(), aj_local_scratch());
    }
    in_frame(pol, tok, len, r);

    /* the batch: the token twice (its MACs as one pair) */
    packed = malloc(2 * len + 1);
    FUZZ_ASSERT(packed != NULL);
    if (len) {
        memcpy(packed, tok, len);
        memcpy(packed + len, tok, len);
    }
    lens[0] = lens[1] = len;
    wcap = aj_batch_work_need(pol, 2 * len);
    ocap = aj_batch_out_need(2, 2 * len);
    FUZZ_ASSERT(posix_memalign((void **)&work, 16, wcap ? wcap : 16) == 0);
    FUZZ_ASSERT(posix_memalign((void **)&out, 16, ocap) == 0);
    FUZZ_ASSERT(aj_verify_many(pol, packed, 2 * len, lens, 2, NOW, work, wcap, out, ocap) == SA_OK);
    recs = (aj_result *)(void *)out;
    for (k = 0; k < 2; k++) {
        check_span(recs[k].user_off, recs[k].user_len, ocap);
        check_span(recs[k].sig_off, recs[k].sig_len, ocap);
        check_span(recs[k].id_off, recs[k].id_len, ocap);
        same_result(r, scratch, &recs[k], out);
    }
    free(work);
    free(out);
    free(packed);
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t UCF[] = "email";
    aj_policy pol;
    char *tok;
    size_t len;

    if (size < 1)
        return 0;
    memset(&pol, 0, sizeof(pol));
    pol.hs256 = fuzz_key();
    pol.have_jwks = 1;
    pol.max_len = MAX_TOKEN;
    if (data[0] & 2) {
        pol.flags = AJ_POL_CLIENT_IDS;
        pol.userclaimfield = UCF;
        pol.userclaimfield_len = sizeof(UCF) - 1;
    }
    if (!(data[0] & 1)) {
        tok = (char *)fuzz_dup(data + 1, size - 1);
        run(&pol, tok, size - 1);
        free(tok);
        return 0;
    }
    if (size < 2 || (size_t)data[1] > size - 2)
        return 0;
    {
        const uint8_t *hdr = data + 2, *claims = data + 2 + data[1];
        size_t hlen = data[1], clen = size - 2 - data[1];
        size_t cap = sa_jws_hs256_signed_len(hlen, clen);
        char *signed_tok = malloc(cap ? cap : 1);
        FUZZ_ASSERT(signed_tok != NULL);
        if (sa_jws_hs256_sign(fuzz_key(), hdr, hlen, claims, clen, signed_tok, cap, &len) == SA_OK) {
            tok = (char *)fuzz_dup((const uint8_t *)signed_tok, len);
            run(&pol, tok, len);
            free(tok);
        }
        free(signed_tok);
    }
    return 0;
}
