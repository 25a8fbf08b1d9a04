/* The serving core's frame reader: the incremental header and auth-section
 * parse, early verification of auth/slurm credentials, the body and its hash. */
#define _GNU_SOURCE

#include "serve_conn.h"
#include "serve_frame.h"
#include "serve_upstream.h"
#include "sha256.h"

/* ---- the incremental frame reader ------------------------------------------- */

static void shift_views(sa_rpc_frame *f, size_t by)
{
    f->header_off += by;
    f->auth_off += by;
    f->body_off += by;
    f->err_off += by;
    if (f->fwd_nodelist_len)
        f->fwd_nodelist_off += by;
    if (f->fwd_net_cred_len)
        f->fwd_net_cred_off += by;
    if (f->addr_family == SA_AF_INET6)
        f->addr_v6_off += by;
    if (f->cred_len)
        f->cred_off += by;
    if (f->user_len)
        f->user_off += by;
}

int sa_serve_parse_head(const uint8_t *data, size_t have, const sa_rpc_opts *o,
                        uint32_t max_head, sa_rpc_frame *f)
{
    sa_rpc_opts ho;
    uint32_t total;
    size_t n, end;
    int rc;

    if (!o || !f || (!data && have))
        return SA_E_ARG;
    if (have < 4)
        return 1;
    total = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
    if (total > o->max_frame)
        return SA_E_RPC_TOO_LARGE;
    /* only the first max_head bytes count: the verdict does not depend on how
     * the frame was cut into reads */
    n = have - 4 < total ? have - 4 : total;
    if (n > max_head)
        n = max_head;
    ho = *o;
    ho.length_prefix = 0;
    ho.max_frame = total;
    rc = sa_rpc_parse(data + 4, n, &ho, f);
    if (rc == SA_OK || rc == SA_E_RPC_BODY_SHORT || rc == SA_E_RPC_BODY_TRAILING) {
        /* header and auth section are complete: does the body end the frame? */
        end = f->body_off + (size_t)f->body_length;
        if (f->body_off > max_head)
            return SA_E_SERVE_HEAD_LONG;   /* the same verdict whatever the read sizes */
        shift_views(f, 4);
        f->total_len = total;
        if (end > total)
            return SA_E_RPC_BODY_SHORT;
        if (end < total)
            return SA_E_RPC_BODY_TRAILING;
        return 0;
    }
    if (rc == SA_E_RPC_HEADER_SHORT || rc == SA_E_RPC_AUTH_SHORT) {
        if (n == total)   /* (total <= max_head here: n is the whole frame) */
            return rc;            /* the frame ends inside its header / auth section */
        if (n >= max_head)
            return SA_E_SERVE_HEAD_LONG;
        return 1;
    }
    return rc;
}

/* ---- frames ------------------------------------------------------------------ */

static void count_plugin(sa_serve *s, uint32_t plugin)
{
    if (plugin == SA_AUTH_MUNGE)
        s->st.frames_munge++;
    else if (plugin == SA_AUTH_JWT)
        s->st.frames_jwt++;
    else
        s->st.frames_none++;
}

/* A credential (or its body hash) failed: policy decides. */
static void refuse(sa_serve *s, int32_t i, int status)
{
    conn_t *c = &s->conns[i];
    uint8_t r[24];

    s->st.frames_refused++;
    c->status = status;
    switch (s->cfg.refuse_mode) {
    case SA_SERVE_REFUSE_REPORT:
        c->state = ST_PENDING;
        c->known = 1;
        sv_timer_set(s, i, TL_NONE);
        {
            sa_serve_event *e = sv_emit(s, i, SA_SERVE_EV_REFUSED, status);
            if (e) {
                e->frame = c->buf;
                e->frame_len = c->need && c->have > c->need ? c->need : c->have;
            }
        }
        return;
    case SA_SERVE_REFUSE_RC:
        s->st.refused_answered++;
        sv_rc_reply(r, c->version, RC_AUTH_ERROR);
        c->need = 0;   /* nothing is kept: the connection closes */
        (void)sv_queue_reply(s, i, r, sizeof(r), 1);
        return;
    default:
        sv_conn_close(s, i);
        return;
    }
}

static void malformed(sa_serve *s, int32_t i, int rc)
{
    if (rc == SA_E_RPC_TOO_LARGE)
        s->st.drop_too_large++;
    else if (rc == SA_E_SERVE_HEAD_LONG)
        s->st.drop_head_long++;
    else
        s->st.frames_malformed++;
    sv_conn_close(s, i);
}

/* Header and auth section are in (f from sa_serve_parse_head): verify an
 * auth/slurm credential now; everything else is read whole. */
static int head_done(sa_serve *s, int32_t i, const sa_rpc_frame *f)
{
    conn_t *c = &s->conns[i];
    int rc;

    c->need = 4 + (size_t)f->total_len;
    c->version = f->version;
    c->msg_type = f->msg_type;
    c->flags = f->flags;
    c->plugin = f->has_auth ? f->auth_plugin : 0;
    c->plen = 0;
    c->objects = 0;
    if (c->plugin == SA_AUTH_SLURM) {
        const sc_result *r;
        const uint8_t *payload;
        size_t plen;

        if (f->cred_len == 0)
            rc = SA_E_ARG;     /* a NULL token, as sa_verify_frame_slurm */
        else if (!s->has_keys)
            rc = SC_E_NO_KEY;
        else
            rc = sc_verify(&s->ks, &s->pol, (const char *)c->buf + f->cred_off, f->cred_len - 1,
                           s->wall, s->scratch, s->scratch_cap);
        if (rc != SA_OK) {
            refuse(s, i, rc);
            return -1;
        }
        r = (const sc_result *)(const void *)s->scratch;
        c->uid = (uint32_t)r->uid;
        c->gid = (uint32_t)r->gid;
        c->objects = (uint8_t)(r->objects & 7);
        if (c->objects == SA_SERVE_OBJ_ID) {
            sa_sha256(s->scratch + r->id_off, (size_t)r->id_len, c->id_digest);
            if (!memcmp(s->ids[sv_id_slot(c->id_digest)], c->id_digest, 32))
                c->objects = 0;
        }
        plen = r->payload_len > 0 ? (size_t)r->payload_len : 0;
        payload = plen ? s->scratch + sc_result_space() + (size_t)r->host_len +
                         (r->cluster_len > 0 ? (size_t)r->cluster_len : 0) : NULL;
        if (plen && (plen != SA_BODYHASH_MAX_PAYLOAD ||
                     (payload[0] != SA_HASH_K12 && payload[0] != SA_HASH_SHA3))) {
            /* a payload whose verdict does not depend on the body: decide now */
            rc = sa_body_hash_check(payload, plen, NULL, 0, f->msg_type, s->bh_flags);
            if (rc != SA_OK) {
                refuse(s, i, rc);
                return -1;
            }
        }
        if (plen) {
            memcpy(c->payload, payload, plen <= sizeof(c->payload) ? plen : sizeof(c->payload));
            c->plen = (uint8_t)(plen <= sizeof(c->payload) ? plen : sizeof(c->payload));
        }
    }
    if (c->need > c->cap) {
        rc = sv_buf_grow(s, c, c->need, c->have);
        if (rc != SA_OK) {
            s->st.drop_nomem++;
            sv_conn_close(s, i);
            return -1;
        }
    }
    c->state = ST_BODY;
    sv_timer_set(s, i, TL_BODY);
    return 0;
}

/* The whole frame is in buf[0..need). */
static void frame_done(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    sa_rpc_frame f;
    sa_serve_event *e;
    int rc, kind = SA_SERVE_EV_UNVERIFIED;

    rc = sa_rpc_parse(c->buf, c->need, &s->opts, &f);
    if (rc != SA_OK) {
        malformed(s, i, rc);
        return;
    }
    if (c->plugin == SA_AUTH_SLURM) {
        rc = sa_body_hash_check(c->plen ? c->payload : NULL, c->plen, c->buf + f.body_off,
                                f.body_length, f.msg_type, s->bh_flags);
        if (rc != SA_OK) {
            refuse(s, i, rc);
            return;
        }
        s->st.frames_verified++;
        kind = SA_SERVE_EV_VERIFIED;
    } else {
        s->st.frames_unverified++;
        count_plugin(s, c->plugin);
    }
    c->state = ST_PENDING;
    c->known = 1;
    c->status = SA_OK;
    sv_timer_set(s, i, TL_NONE);
    /* a token with objects the policy reads goes up: the driver checks those (identity) */
    if (kind == SA_SERVE_EV_VERIFIED && s->auto_forward && !c->objects && sv_auto_forward(s, i))
        return;
    e = sv_emit(s, i, kind, SA_OK);
    if (!e)
        return;
    if (kind == SA_SERVE_EV_VERIFIED) {
        e->uid = c->uid;
        e->gid = c->gid;
        e->objects = c->objects;
        if (c->objects == SA_SERVE_OBJ_ID)
            memcpy(e->id_digest, c->id_digest, 32);
    }
    e->frame = c->buf;
    e->frame_len = c->need;
    e->cred_off = f.cred_off;
    e->cred_len = f.cred_len;
    e->user_off = f.user_off;
    e->user_len = f.user_len;
    e->body_off = f.body_off;
    e->body_len = f.body_length;
}

/* Read what the connection has. A short read ends the loop (the next bytes bring a new
 * edge) unless the peer has hung up (c->hup: EPOLLRDHUP/EPOLLHUP/EPOLLERR came with an
 * event): then the data and the FIN can come in one edge, and reading on until recv()
 * says 0 is the only way to see the close before a deadline does. */
void sv_conn_read(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    int drained = 0;

    for (;;) {
        size_t limit, want;
        ssize_t r;

        /* what is buffered first (a keep-alive connection may hold a whole frame) */
        if (c->state == ST_HEAD) {
            sa_rpc_frame f;
            int rc = sa_serve_parse_head(c->buf, c->have, &s->opts, s->cfg.max_head, &f);
            if (rc == 0) {
                if (head_done(s, i, &f) != 0)
                    return;
            } else if (rc != 1) {
                malformed(s, i, rc);
                return;
            }
        }
        if (c->state == ST_BODY && c->have >= c->need) {
            frame_done(s, i);
            return;
        }
        if (c->state != ST_HEAD && c->state != ST_BODY)
            return;
        if (drained && !c->hup)
            return;   /* the next bytes bring a new edge */
        limit = c->need && c->need < c->cap ? c->need : c->cap;
        if (c->have >= limit) {   /* cannot happen: max_head + 4 <= buf_size */
            malformed(s, i, SA_E_SERVE_HEAD_LONG);
            return;
        }
        want = limit - c->have;
        r = recv(c->fd, c->buf + c->have, want, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            s->st.drop_peer_closed++;
            sv_conn_close(s, i);
            return;
        }
        if (r == 0) {
            s->st.drop_peer_closed++;
            sv_conn_close(s, i);
            return;
        }
        c->have += (size_t)r;
        s->st.bytes_read += (uint64_t)r;
        drained = (size_t)r < want;
    }
}
