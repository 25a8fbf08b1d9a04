#include "verify_frame.h"

#include "bodyhash.h"
#include "sa_status.h"

static int verdict(sa_frame_verdict *v, int status, int stage, int64_t offset, int64_t claim)
{
    if (v) {
        v->status = status;
        v->stage = stage;
        v->offset = offset;
        v->claim = claim;
    }
    return status;
}

/* The auth/slurm token and body hash of a parsed frame. */
static int slurm_section(const uint8_t *data, const sa_rpc_frame *f, const sc_keyset *ks,
                         const sc_policy *pol, int64_t now, unsigned bh_flags, uint8_t *scratch,
                         size_t cap, sa_frame_verdict *v)
{
    const sc_result *r = (const sc_result *)(void *)scratch;
    const uint8_t *payload;
    size_t plen;
    int rc;

    rc = sc_verify(ks, pol, (const char *)data + f->cred_off, f->cred_len - 1, now, scratch, cap);
    if (rc != SA_OK)
        /* err_claim is written for the statuses of the claims scan (20 and up) */
        return verdict(v, rc, SA_STAGE_TOKEN, 0, rc >= 20 ? r->err_claim : -1);
    /* sc_verify wrote host, cluster and payload back to back after the result */
    plen = r->payload_len > 0 ? (size_t)r->payload_len : 0;
    payload = plen ? scratch + sc_result_space() + (size_t)r->host_len +
                     (r->cluster_len > 0 ? (size_t)r->cluster_len : 0) : NULL;
    rc = sa_body_hash_check(payload, plen, data + f->body_off, f->body_length, f->msg_type,
                            bh_flags);
    return verdict(v, rc, rc == SA_OK ? SA_STAGE_NONE : SA_STAGE_BODY_HASH, 0, -1);
}

/* The auth/jwt token of a parsed frame. */
static int jwt_section(const uint8_t *data, const sa_rpc_frame *f, const aj_policy *jpol,
                       int64_t now, uint8_t *scratch, size_t cap, sa_frame_verdict *v)
{
    const aj_result *r = (const aj_result *)(void *)scratch;
    /* now < 0 is "the current time" here, as for sc_verify; aj_verify names it AJ_NOW_CLOCK */
    int rc = aj_verify(jpol, (const char *)data + f->cred_off, f->cred_len - 1,
                       now < 0 ? AJ_NOW_CLOCK : now, scratch, cap);

    if (rc != SA_OK)
        /* SA_E_ARG (a scratch too small for the result) comes before the result is written */
        return verdict(v, rc, SA_STAGE_TOKEN, 0, rc == SA_E_ARG ? -1 : r->err_claim);
    return verdict(v, SA_OK, SA_STAGE_NONE, 0, -1);
}

int sa_verify_frame(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f,
                    const sc_keyset *ks, const sc_policy *pol, const aj_policy *jpol, int64_t now,
                    unsigned bh_flags, uint8_t *scratch, size_t cap, sa_frame_verdict *v)
{
    int slurm, rc;

    if (!data || !f || !scratch)
        return verdict(v, SA_E_ARG, SA_STAGE_PARSE, 0, -1);
    rc = sa_rpc_parse(data, len, o, f);
    if (rc != SA_OK)
        return verdict(v, rc, SA_STAGE_PARSE, (int64_t)f->err_off, -1);
    /* a served plugin's section with a non-NULL token (packstr length counts the NUL) */
    if (!f->has_auth)
        return verdict(v, SA_E_FRAME_NO_AUTH, SA_STAGE_AUTH, 0, -1);
    slurm = f->auth_plugin == SA_AUTH_SLURM && ks && pol;
    if (!slurm && !(f->auth_plugin == SA_AUTH_JWT && jpol))
        return verdict(v, SA_E_FRAME_PLUGIN, SA_STAGE_AUTH, 0, -1);
    if (f->cred_len == 0)
        return verdict(v, SA_E_FRAME_NULL_CRED, SA_STAGE_AUTH, 0, -1);
    if (slurm)
        return slurm_section(data, f, ks, pol, now, bh_flags, scratch, cap, v);
    return jwt_section(data, f, jpol, now, scratch, cap, v);
}

int sa_verify_frame_slurm(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f,
                          const sc_keyset *ks, const sc_policy *pol, int64_t now,
                          unsigned bh_flags, uint8_t *scratch, size_t cap, sa_frame_verdict *v)
{
    if (!ks || !pol)
        return verdict(v, SA_E_ARG, SA_STAGE_PARSE, 0, -1);
    return sa_verify_frame(data, len, o, f, ks, pol, NULL, now, bh_flags, scratch, cap, v);
}
