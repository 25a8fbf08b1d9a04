#include "jwtverify.h"

#include <string.h>
#include <time.h>

#include "base64.h"
#include "jws.h"
#include "sa_status.h"
#include "slurmcred.h"

#define RESULT_SPACE ((sizeof(aj_result) + 15) & ~(size_t)15)
/* base64url of {"alg":"HS256","typ":"JWT"} */
static const char SLURM_HDR[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
#define UINT32_ANY 4294967295LL

/* Scratch layout after the result: decoded header, decoded claims, decoded
 * signature, unescaped strings (alg, kid, user), unescaped member names;
 * each area sa_b64_decoded_max(len) bytes. */
typedef struct {
    size_t dmax, hdr, cl, sig, str, names;
} layout;

static void lay_out(size_t len, layout *l)
{
    l->dmax = sa_b64_decoded_max(len);
    l->hdr = RESULT_SPACE;
    l->cl = l->hdr + l->dmax;
    l->sig = l->cl + l->dmax;
    l->str = l->sig + l->dmax;
    l->names = l->str + l->dmax;
}

size_t aj_scratch_need(size_t len)
{
    return (RESULT_SPACE + 5 * sa_b64_decoded_max(len) + 15) & ~(size_t)15;
}

static int peek(const sc_jcur *j)
{
    return j->i < j->n ? j->p[j->i] : -1;
}

static int bytes_is(const uint8_t *a, size_t n, const char *lit, size_t litlen)
{
    return n == litlen && memcmp(a, lit, n) == 0;
}

/* ---- a top-level object: members dispatched, duplicate names refused ---- */

typedef int (*member_fn)(void *ctx, const uint8_t *name, size_t nlen, sc_jcur *j);

/* Walk the object that is all of j (whitespace around it allowed). Names
 * are unescaped into `names` when they hold escapes and compared with every
 * earlier one. bad: the status of malformed JSON; dup: of a duplicate name. */
static int walk(sc_jcur *j, int bad, int dup, uint8_t *names, member_fn fn, void *ctx)
{
    const uint8_t *seen[AJ_MAX_MEMBERS];
    size_t seen_len[AJ_MAX_MEMBERS], nseen = 0, used = 0, q;
    int rc;

    sc_json_ws(j);
    if (peek(j) != '{')
        return bad;
    j->i++;
    sc_json_ws(j);
    if (peek(j) == '}') {
        j->i++;
        goto end;
    }
    for (;;) {
        sc_jstr s;
        const uint8_t *nm;
        size_t nlen;

        if (peek(j) != '"')
            return bad;
        if ((rc = sc_json_string(j, &s)) != SA_OK)
            return rc;
        if (s.esc) {
            nm = names + used;
            nlen = sc_json_unescape(j->p, &s, names + used);
            used += nlen;
        } else {
            nm = j->p + s.off;
            nlen = s.len;
        }
        for (q = 0; q < nseen; q++)
            if (seen_len[q] == nlen && memcmp(seen[q], nm, nlen) == 0)
                return dup;
        if (nseen == AJ_MAX_MEMBERS)
            return SA_E_JWT_TOO_MANY;
        seen[nseen] = nm;
        seen_len[nseen++] = nlen;
        sc_json_ws(j);
        if (peek(j) != ':')
            return bad;
        j->i++;
        sc_json_ws(j);
        if ((rc = fn(ctx, nm, nlen, j)) != SA_OK)
            return rc;
        if ((rc = sc_json_after_value(j, '}')) < 0)
            return bad;
        if (rc == 0)
            break;
    }
end:
    sc_json_ws(j);
    return j->i == j->n ? SA_OK : bad;
}

/* ---- header --------------------------------------------------------------- */

/* What a header member holds: absent (or null, which the rules treat the
 * same), a string, or another value. */
#define V_ABSENT 0
#define V_STRING 1
#define V_OTHER  2

typedef struct {
    int kind[3];              /* alg typ kid */
    sc_jstr s[3];
} hdr_ctx;

static int hdr_member(void *vctx, const uint8_t *nm, size_t nlen, sc_jcur *j)
{
    hdr_ctx *h = vctx;
    int idx = bytes_is(nm, nlen, "alg", 3) ? 0 : bytes_is(nm, nlen, "typ", 3) ? 1 :
              bytes_is(nm, nlen, "kid", 3) ? 2 : -1;
    size_t start = j->i;
    int rc;

    if (idx >= 0 && peek(j) == '"') {
        h->kind[idx] = V_STRING;
        return sc_json_string(j, &h->s[idx]);
    }
    if ((rc = sc_json_skip(j, SC_E_HEADER_JSON)) != SA_OK)
        return rc;
    if (idx >= 0)
        h->kind[idx] = (j->i - start == 4 && memcmp(j->p + start, "null", 4) == 0) ? V_ABSENT : V_OTHER;
    return SA_OK;
}

/* A scanned string's bytes: in place, or unescaped into *area (advanced). */
static const uint8_t *str_bytes(const uint8_t *base, const sc_jstr *s, uint8_t **area, size_t *n)
{
    const uint8_t *p;
    if (!s->esc) {
        *n = s->len;
        return base + s->off;
    }
    p = *area;
    *n = sc_json_unescape(base, s, *area);
    *area += *n;
    return p;
}

static int typ_is_jwt(const uint8_t *v, size_t n)
{
    size_t k;
    if (n != 3)
        return 0;
    for (k = 0; k < 3; k++) {
        uint8_t c = v[k];
        if (c >= 'a' && c <= 'z')
            c = (uint8_t)(c - 32);
        if (c != (uint8_t)"JWT"[k])
            return 0;
    }
    return 1;
}

/* ---- claims --------------------------------------------------------------- */

#define I_ABSENT 0
#define I_INT    1
#define I_OTHER  2            /* present, not a JSON integer */

typedef struct {
    const aj_policy *pol;
    int ikind[4];             /* exp iat uid gid */
    int64_t ival[4];
    size_t id_off, id_len;
    int has_id;
    int has_user[3];          /* sun username userclaimfield: a string */
    sc_jstr user[3];
    int err_claim;
} cl_ctx;

/* The AJ_CL_* of a claim this verifier reads as a value, or -1. */
static int claim_index(const cl_ctx *c, const uint8_t *nm, size_t nlen)
{
    if (nlen == 3) {
        if (bytes_is(nm, nlen, "exp", 3))
            return AJ_CL_EXP;
        if (bytes_is(nm, nlen, "iat", 3))
            return AJ_CL_IAT;
        if (c->pol->flags & AJ_POL_CLIENT_IDS) {
            if (bytes_is(nm, nlen, "uid", 3))
                return AJ_CL_UID;
            if (bytes_is(nm, nlen, "gid", 3))
                return AJ_CL_GID;
        }
    } else if (nlen == 2 && (c->pol->flags & AJ_POL_CLIENT_IDS) && bytes_is(nm, nlen, "id", 2)) {
        return AJ_CL_ID;
    }
    return -1;
}

/* Bit k set when the name is user claim k (sun, username, userclaimfield). */
static unsigned user_bits(const cl_ctx *c, const uint8_t *nm, size_t nlen)
{
    unsigned b = 0;
    if (bytes_is(nm, nlen, "sun", 3))
        b |= 1;
    if (bytes_is(nm, nlen, "username", 8))
        b |= 2;
    if (c->pol->userclaimfield && nlen == c->pol->userclaimfield_len &&
        memcmp(nm, c->pol->userclaimfield, nlen) == 0)
        b |= 4;
    return b;
}

/* One claim: JSON errors end the scan; a claim of the wrong type is noted
 * for the rules, which run in their order once the whole object parsed. */
static int cl_member(void *vctx, const uint8_t *nm, size_t nlen, sc_jcur *j)
{
    cl_ctx *c = vctx;
    int idx = claim_index(c, nm, nlen), ch = peek(j), rc, k;
    unsigned ub = user_bits(c, nm, nlen);
    size_t start = j->i;

    if (ch == '"') {
        sc_jstr s;
        if ((rc = sc_json_string(j, &s)) != SA_OK)
            return rc;
        for (k = 0; k < 3; k++)
            if (ub & (1u << k)) {
                c->has_user[k] = 1;
                c->user[k] = s;
            }
    } else if (idx >= 0 && idx <= AJ_CL_GID && (ch == '-' || (ch >= '0' && ch <= '9'))) {
        int is_int, neg, big;
        uint64_t mag;
        if ((rc = sc_json_number(j, &is_int, &neg, &mag, &big, SC_E_CLAIMS_JSON)) != SA_OK)
            return rc;
        if (!is_int) {
            c->ikind[idx] = I_OTHER;
            return SA_OK;
        }
        if (big || (!neg && mag > (uint64_t)INT64_MAX)) {
            c->err_claim = idx;            /* jansson refuses it: a parse error */
            return SA_E_JWT_INT64;
        }
        c->ikind[idx] = I_INT;
        c->ival[idx] = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        return SA_OK;
    } else if ((rc = sc_json_skip(j, SC_E_CLAIMS_JSON)) != SA_OK) {
        return rc;
    }
    if (idx == AJ_CL_ID) {
        c->has_id = 1;
        c->id_off = start;
        c->id_len = j->i - start;
    } else if (idx >= 0) {
        c->ikind[idx] = I_OTHER;
    }
    return SA_OK;
}

/* An integer claim's rule: present, an integer, within [lo, hi]. */
static int int_rule(const cl_ctx *c, int idx, int missing, int64_t lo, int64_t hi)
{
    if (c->ikind[idx] == I_ABSENT)
        return missing;
    if (c->ikind[idx] == I_OTHER)
        return SC_E_INT_TYPE;
    if (c->ival[idx] < lo || c->ival[idx] > hi)
        return SC_E_INT_RANGE;
    return SA_OK;
}

/* Decode, scan and apply the claim rules (in slurmauth_fast.jwt's order:
 * exp, expiry, iat, the user, client ids). */
static int claims(const aj_policy *pol, const char *tok, const sa_jws_parts *p, int64_t now,
                  uint8_t *scratch, const layout *l, uint8_t **str_area)
{
    aj_result *r = (aj_result *)(void *)scratch;
    size_t cl_len = 0, n;
    sc_jcur j;
    cl_ctx c;
    const uint8_t *u;
    int rc, k;

    rc = sa_jws_decode_segment(tok, p, 1, scratch + l->cl, l->dmax, &cl_len);
    if (rc != SA_OK)
        return rc;
    memset(&c, 0, sizeof(c));
    c.pol = pol;
    c.err_claim = -1;
    j.p = scratch + l->cl;
    j.n = cl_len;
    j.i = 0;
    rc = walk(&j, SC_E_CLAIMS_JSON, SC_E_CLAIM_DUP, scratch + l->names, cl_member, &c);
    if (rc != SA_OK) {
        r->err_claim = c.err_claim;
        return rc;
    }
    r->err_claim = AJ_CL_EXP;
    if ((rc = int_rule(&c, AJ_CL_EXP, SC_E_EXP_MISSING, INT64_MIN, INT64_MAX)) != SA_OK)
        return rc;
    if (c.ival[AJ_CL_EXP] < now)
        return SC_E_EXPIRED;
    r->err_claim = AJ_CL_IAT;
    if ((rc = int_rule(&c, AJ_CL_IAT, SC_E_IAT_MISSING, INT64_MIN, INT64_MAX)) != SA_OK)
        return rc;
    r->exp = c.ival[AJ_CL_EXP];
    r->iat = c.ival[AJ_CL_IAT];

    r->err_claim = -1;
    for (k = 0; k < 3 && !c.has_user[k]; k++)
        ;
    if (k == 3)
        return SA_E_JWT_NO_USER;
    r->err_claim = AJ_CL_SUN + k;
    if (c.user[k].len == 0)
        return SA_E_JWT_USER_EMPTY;
    u = str_bytes(scratch + l->cl, &c.user[k], str_area, &n);
    r->user_claim = AJ_CL_SUN + k;
    r->user_off = (int64_t)(u - scratch);
    r->user_len = (int64_t)n;

    r->uid = r->gid = -1;
    r->id_len = -1;
    if ((pol->flags & AJ_POL_CLIENT_IDS) &&
        (c.ikind[AJ_CL_UID] != I_ABSENT || c.ikind[AJ_CL_GID] != I_ABSENT || c.has_id)) {
        r->err_claim = AJ_CL_UID;
        if ((rc = int_rule(&c, AJ_CL_UID, SC_E_UID_MISSING, 0, UINT32_ANY)) != SA_OK)
            return rc;
        r->err_claim = AJ_CL_GID;
        if ((rc = int_rule(&c, AJ_CL_GID, SC_E_GID_MISSING, 0, UINT32_ANY)) != SA_OK)
            return rc;
        r->uid = c.ival[AJ_CL_UID];
        r->gid = c.ival[AJ_CL_GID];
        if (c.has_id) {
            r->id_off = (int64_t)(l->cl + c.id_off);
            r->id_len = (int64_t)c.id_len;
        }
    }
    r->err_claim = -1;
    return SA_OK;
}

/* ---- one token ------------------------------------------------------------ */

/* What the header step found, for the steps after it. */
typedef struct {
    sa_jws_parts parts;
    layout l;
    uint8_t *str_area;
} vstate;

static void result_init(aj_result *r)
{
    memset(r, 0, sizeof(*r));
    r->err_claim = -1;
    r->user_claim = -1;
    r->user_len = r->alg_len = r->kid_len = r->id_len = r->sig_len = -1;
    r->uid = r->gid = -1;
}

/* Steps up to the signature: size, split, header decode and scan, its rules.
 * For RS256 also the signature decode and the claims (kept aside). */
static int head(const aj_policy *pol, const char *tok, size_t len, int64_t now,
                uint8_t *scratch, size_t cap, vstate *v)
{
    aj_result *r = (aj_result *)(void *)scratch;
    size_t hdr_len = 0, n, sig_n = 0;
    const uint8_t *a;
    sc_jcur j;
    hdr_ctx h;
    int rc;

    if ((rc = sa_jws_split_any(tok, len, pol->max_len, &v->parts)) != SA_OK)
        return rc;
    if (cap < aj_scratch_need(len))
        return SC_E_SCRATCH;
    lay_out(len, &v->l);
    v->str_area = scratch + v->l.str;

    /* The header libjwt writes for scontrol token ({"alg":"HS256","typ":"JWT"}):
     * the outcome of decoding and scanning it is known */
    if (v->parts.header_len == sizeof(SLURM_HDR) - 1 && memcmp(tok, SLURM_HDR, sizeof(SLURM_HDR) - 1) == 0) {
        memcpy(v->str_area, "HS256", 5);
        r->alg_off = (int64_t)(v->str_area - scratch);
        r->alg_len = 5;
        v->str_area += 5;
        r->alg = AJ_ALG_HS256;
        return pol->hs256 ? SA_OK : SA_E_JWT_NO_HS256_KEY;
    }
    rc = sa_jws_decode_segment(tok, &v->parts, 0, scratch + v->l.hdr, v->l.dmax, &hdr_len);
    if (rc != SA_OK)
        return rc;
    memset(&h, 0, sizeof(h));
    j.p = scratch + v->l.hdr;
    j.n = hdr_len;
    j.i = 0;
    rc = walk(&j, SC_E_HEADER_JSON, SC_E_HEADER_DUP, scratch + v->l.names, hdr_member, &h);
    if (rc != SA_OK)
        return rc == SC_E_HEADER_DUP ? rc : SC_E_HEADER_JSON;

    if (h.kind[1] == V_OTHER)
        return SC_E_TYP;
    if (h.kind[1] == V_STRING) {
        a = str_bytes(j.p, &h.s[1], &v->str_area, &n);
        if (!typ_is_jwt(a, n))
            return SC_E_TYP;
    }
    if (h.kind[0] == V_ABSENT)
        return SC_E_ALG_MISSING;
    if (h.kind[0] == V_OTHER)
        return SA_E_JWT_ALG_TYPE;
    a = str_bytes(j.p, &h.s[0], &v->str_area, &n);
    r->alg_off = (int64_t)(a - scratch);
    r->alg_len = (int64_t)n;
    if (bytes_is(a, n, "HS256", 5)) {
        r->alg = AJ_ALG_HS256;
        return pol->hs256 ? SA_OK : SA_E_JWT_NO_HS256_KEY;
    }
    if (!bytes_is(a, n, "RS256", 5))
        return SC_E_ALG;
    r->alg = AJ_ALG_RS256;
    if (!pol->have_jwks)
        return SA_E_JWT_NO_JWKS;
    if (h.kind[2] == V_ABSENT)
        return SA_E_JWT_KID_MISSING;
    if (h.kind[2] == V_OTHER)
        return SC_E_KID_TYPE;
    a = str_bytes(j.p, &h.s[2], &v->str_area, &n);
    r->kid_off = (int64_t)(a - scratch);
    r->kid_len = (int64_t)n;

    /* the caller checks the signature; what follows it is computed now */
    r->signing_len = (int64_t)(v->parts.sig_off - 1);
    rc = sa_b64url_decode(tok + v->parts.sig_off, v->parts.sig_len, scratch + v->l.sig, v->l.dmax,
                          &sig_n);
    r->sig_status = rc;
    if (rc == SA_OK) {
        r->sig_off = (int64_t)v->l.sig;
        r->sig_len = (int64_t)sig_n;
        r->claims_status = claims(pol, tok, &v->parts, now, scratch, &v->l, &v->str_area);
    }
    return SA_OK;
}

static int64_t clock_now(int64_t now)
{
    return now == AJ_NOW_CLOCK ? (int64_t)time(NULL) : now;
}

/* The HS256 steps after the MAC matched. */
static int hs256_tail(const aj_policy *pol, const char *tok, int64_t now, uint8_t *scratch, vstate *v)
{
    return claims(pol, tok, &v->parts, now, scratch, &v->l, &v->str_area);
}

int aj_verify(const aj_policy *pol, const char *tok, size_t len, int64_t now,
              void *scratch, size_t cap)
{
    aj_result *r = scratch;
    vstate v;
    int rc;

    if (!pol || !scratch || cap < RESULT_SPACE || (!tok && len))
        return SA_E_ARG;
    result_init(r);
    now = clock_now(now);
    rc = head(pol, tok, len, now, scratch, cap, &v);
    if (rc == SA_OK && r->alg == AJ_ALG_HS256) {
        rc = sa_jws_hs256_tag_length(&v.parts);
        if (rc == SA_OK)
            rc = sa_jws_hs256_check(pol->hs256, tok, &v.parts);
        if (rc == SA_OK)
            rc = hs256_tail(pol, tok, now, scratch, &v);
    }
    r->status = rc;
    return rc;
}

/* aj_scratch_need(AJ_LOCAL_TOKEN), as a count of 16-byte units */
#define LOCAL_UNITS ((RESULT_SPACE + 5 * ((AJ_LOCAL_TOKEN + 3) / 4 * 3 + 2) + 15) / 16)

typedef struct {
    int64_t w[2];
} unit16;

static __thread unit16 local_scratch[LOCAL_UNITS]
#if defined(__GNUC__)
    __attribute__((aligned(16)))
#endif
    ;

void *aj_local_scratch(void)
{
    return local_scratch;
}

size_t aj_local_scratch_size(void)
{
    return sizeof(local_scratch);
}

int aj_verify_local(const aj_policy *pol, const char *tok, size_t len, int64_t now)
{
    if (len > AJ_LOCAL_TOKEN)
        return SC_E_SCRATCH;
    return aj_verify(pol, tok, len, now, local_scratch, sizeof(local_scratch));
}

int aj_verify_local_now(const aj_policy *pol, const char *tok, size_t len)
{
    return aj_verify_local(pol, tok, len, AJ_NOW_CLOCK);
}

/* ---- many tokens ------------------------------------------------------------ */

size_t aj_batch_work_need(const aj_policy *pol, size_t packed_len)
{
    size_t longest = pol && pol->max_len < packed_len ? pol->max_len : packed_len;
    return 2 * aj_scratch_need(longest);
}

size_t aj_batch_out_need(size_t n, size_t packed_len)
{
    return n * sizeof(aj_result) + packed_len + 16;
}

/* Copy one token's result and the bytes it points at into out. */
static void put_result(const uint8_t *scratch, aj_result *rec, uint8_t *out, size_t cap,
                       size_t *used)
{
    const aj_result *r = (const aj_result *)(const void *)scratch;
    int64_t *offs[5], *lens[5];
    size_t k;

    *rec = *r;
    offs[0] = &rec->user_off; lens[0] = &rec->user_len;
    offs[1] = &rec->alg_off; lens[1] = &rec->alg_len;
    offs[2] = &rec->kid_off; lens[2] = &rec->kid_len;
    offs[3] = &rec->id_off; lens[3] = &rec->id_len;
    offs[4] = &rec->sig_off; lens[4] = &rec->sig_len;
    for (k = 0; k < 5; k++) {
        if (*lens[k] < 0 || (size_t)*lens[k] > cap - *used) {
            *lens[k] = -1;          /* cannot happen: the bytes fit in the token's length */
            continue;
        }
        memcpy(out + *used, scratch + *offs[k], (size_t)*lens[k]);
        *offs[k] = (int64_t)*used;
        *used += (size_t)*lens[k];
    }
}

int aj_verify_many(const aj_policy *pol, const char *packed, size_t packed_len,
                   const size_t *lens, size_t n, int64_t now,
                   void *work_region, size_t work_cap, void *out_region, size_t out_cap)
{
    uint8_t *work = work_region, *out = out_region;
    aj_result *recs = out_region;
    size_t i, off = 0, used, half;
    uint8_t *scr[2];

    if (!pol || (!packed && packed_len) || (!lens && n) || !work || !out ||
        ((uintptr_t)work & 15) || ((uintptr_t)out & 7))
        return SA_E_ARG;
    for (i = 0; i < n; i++) {
        if (lens[i] > packed_len - off)
            return SA_E_ARG;
        off += lens[i];
    }
    if (work_cap < aj_batch_work_need(pol, packed_len) || out_cap < aj_batch_out_need(n, packed_len))
        return SC_E_SCRATCH;
    half = aj_batch_work_need(pol, packed_len) / 2;
    scr[0] = work;
    scr[1] = work + half;
    now = clock_now(now);
    used = n * sizeof(aj_result);
    off = 0;
    for (i = 0; i < n; i += 2) {
        const size_t m = n - i < 2 ? n - i : 2;
        const char *tok[2];
        vstate v[2];
        int rc[2], mac_due[2], two[2];
        size_t k;

        for (k = 0; k < m; k++) {
            aj_result *r = (aj_result *)(void *)scr[k];
            tok[k] = packed + off;
            off += lens[i + k];
            result_init(r);
            rc[k] = head(pol, tok[k], lens[i + k], now, scr[k], half, &v[k]);
            mac_due[k] = rc[k] == SA_OK && r->alg == AJ_ALG_HS256;
            if (mac_due[k])
                rc[k] = sa_jws_hs256_tag_length(&v[k].parts);
            mac_due[k] = mac_due[k] && rc[k] == SA_OK;
        }
        if (m == 2 && mac_due[0] && mac_due[1]) {
            sa_jws_hs256_check2(pol->hs256, tok[0], &v[0].parts, pol->hs256, tok[1], &v[1].parts, two);
            rc[0] = two[0];
            rc[1] = two[1];
        } else {
            for (k = 0; k < m; k++)
                if (mac_due[k])
                    rc[k] = sa_jws_hs256_check(pol->hs256, tok[k], &v[k].parts);
        }
        for (k = 0; k < m; k++) {
            aj_result *r = (aj_result *)(void *)scr[k];
            if (mac_due[k] && rc[k] == SA_OK)
                rc[k] = hs256_tail(pol, tok[k], now, scr[k], &v[k]);
            r->status = rc[k];
            put_result(scr[k], &recs[i + k], out, out_cap, &used);
        }
    }
    return SA_OK;
}
