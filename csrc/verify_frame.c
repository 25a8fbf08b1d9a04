#include "verify_frame.h"

#include "bodyhash.h"
#include "sa_status.h"

int sa_verify_frame_slurm(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f,
                        const sc_keyset *ks, const sc_policy *pol, int64_t now,
                        unsigned bh_flags, uint8_t *scratch, size_t cap)
{
    const sc_result *r = (const sc_result *)(void *)scratch;
    const uint8_t *payload;
    size_t plen;
    int rc;

    if (!data || !f || !scratch)
        return SA_E_ARG;
    rc = sa_rpc_parse(data, len, o, f);
    if (rc != SA_OK)
        return rc;
    /* an auth/slurm section with a non-NULL token (packstr length counts the NUL) */
    if (!f->has_auth || f->auth_plugin != SA_AUTH_SLURM || f->cred_len == 0)
        return SA_E_ARG;
    rc = sc_verify(ks, pol, (const char *)data + f->cred_off, f->cred_len - 1, now, scratch, cap);
    if (rc != SA_OK)
        return rc;
    /* sc_verify wrote host, cluster and payload back to back after the result */
    plen = r->payload_len > 0 ? (size_t)r->payload_len : 0;
    payload = plen ? scratch + sc_result_space() + (size_t)r->host_len +
                     (r->cluster_len > 0 ? (size_t)r->cluster_len : 0) : NULL;
    return sa_body_hash_check(payload, plen, data + f->body_off, f->body_length, f->msg_type,
                              bh_flags);
}
