/* The epoll serving core (see serve.h). Linux only: epoll, accept4, eventfd. */
#define _GNU_SOURCE

#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bodyhash.h"
#include "sa_status.h"

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif


#define MAX_LISTENERS 8
#define EPOLL_BATCH 256
#define ACCEPT_BATCH 64
#define RESPONSE_SLURM_RC 8001
#define RC_AUTH_ERROR 1007
#define REPLY_FLAGS (SA_RPC_NO_AUTH_CRED | SA_RPC_MSG_KEEP_BUFFER)

/* epoll data: kind << 32 | index */
#define EK_CLIENT   1u
#define EK_UPSTREAM 2u
#define EK_LISTENER 3u
#define EK_WAKE     4u

enum { ST_FREE = 0, ST_HEAD, ST_BODY, ST_PENDING, ST_WRITING, ST_FWD_CONNECT, ST_FWD_WRITE,
       ST_FWD_READ, ST_FWD_FAILED };

/* Timer lists (link set 0), each with one fixed duration so it stays sorted;
 * the kick list (link set 1) holds connections to process at the next poll. */
enum { TL_NONE = 0, TL_HEAD, TL_BODY, TL_WRITE, TL_UPC, TL_UPR, TL_COUNT };
#define L_TIMER 0
#define L_KICK  1

typedef struct {
    int32_t head, tail;
} list_t;

typedef struct {
    int fd, up_fd;
    uint32_t gen;
    uint8_t state, tlist, kicked, known;   /* known: the driver holds its id */
    uint8_t close_after, big;              /* big: buf is a frame-sized malloc, not pooled */
    uint8_t want_out;                      /* EPOLLOUT registered (only once a write blocked) */
    uint8_t hup;                           /* the peer hung up (EPOLLRDHUP/HUP/ERR seen) */
    uint8_t plen;
    uint16_t listener;
    int32_t link_prev[2], link_next[2];
    int32_t ip_node;
    int64_t deadline;                      /* monotonic ms */
    uint8_t *buf;
    size_t cap, have, need;                /* need: 4 + total_len once known, else 0 */
    size_t out_off, out_len, keep;         /* reply bytes at buf[keep .. keep + out_len) */
    int32_t status, sys_errno;
    uint32_t plugin, uid, gid;
    uint16_t msg_type, version, flags;
    int peer_family;
    uint16_t peer_port;
    uint8_t peer_addr[16];
    uint8_t payload[SA_BODYHASH_MAX_PAYLOAD];
    int64_t up_start_ns;
} conn_t;

typedef struct {
    int32_t next;
    uint32_t count;
    uint8_t addr[16];
} ipnode_t;

struct sa_serve {
    sa_serve_config cfg;
    sa_rpc_opts opts;
    int epfd, wakefd, reserve_fd;
    int lfd[MAX_LISTENERS];
    int ltcp[MAX_LISTENERS];
    int nlisten;
    conn_t *conns;
    int32_t *free_slots;
    uint32_t nfree;
    list_t lists[TL_COUNT];
    list_t kick;
    int64_t tl_ms[TL_COUNT];
    /* per-IP counts: chained hash, nodes preallocated (one per connection) */
    int32_t *ip_buckets;
    uint32_t ip_mask;
    ipnode_t *ip_nodes;
    int32_t ip_free;
    /* buffer pool */
    uint8_t **pool;
    uint32_t npool;
    /* keys */
    int has_keys;
    sc_keyset ks;
    sc_policy pol;
    unsigned bh_flags;
    uint8_t *scratch;
    size_t scratch_cap;
    /* during a poll */
    sa_serve_event *out;
    int nout, maxout;
    int64_t now_ms;
    int64_t wall;
    int last_errno;
    sa_serve_stats st;
    uint64_t lat_bounds[SA_SERVE_LAT_MAX_BUCKETS];
    uint64_t lat_counts[SA_SERVE_LAT_MAX_BUCKETS + 1];
    uint64_t lat_sum_ns;
    uint32_t lat_n;
    struct epoll_event evs[EPOLL_BATCH];
};

/* ---- time ---------------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    return mono_ns() / 1000000;
}

/* ---- intrusive lists ------------------------------------------------------ */

static void list_push(sa_serve *s, list_t *l, int set, int32_t i)
{
    conn_t *c = &s->conns[i];
    c->link_prev[set] = l->tail;
    c->link_next[set] = -1;
    if (l->tail >= 0)
        s->conns[l->tail].link_next[set] = i;
    else
        l->head = i;
    l->tail = i;
}

static void list_unlink(sa_serve *s, list_t *l, int set, int32_t i)
{
    conn_t *c = &s->conns[i];
    if (c->link_prev[set] >= 0)
        s->conns[c->link_prev[set]].link_next[set] = c->link_next[set];
    else
        l->head = c->link_next[set];
    if (c->link_next[set] >= 0)
        s->conns[c->link_next[set]].link_prev[set] = c->link_prev[set];
    else
        l->tail = c->link_prev[set];
    c->link_prev[set] = c->link_next[set] = -1;
}

static void timer_set(sa_serve *s, int32_t i, int tl)
{
    conn_t *c = &s->conns[i];
    if (c->tlist != TL_NONE)
        list_unlink(s, &s->lists[c->tlist], L_TIMER, i);
    c->tlist = (uint8_t)tl;
    if (tl != TL_NONE) {
        c->deadline = s->now_ms + s->tl_ms[tl];
        list_push(s, &s->lists[tl], L_TIMER, i);
    }
}

static void kick(sa_serve *s, int32_t i)
{
    if (!s->conns[i].kicked) {
        s->conns[i].kicked = 1;
        list_push(s, &s->kick, L_KICK, i);
    }
}

/* ---- per-IP counts ------------------------------------------------------- */

static uint32_t ip_hash(const uint8_t a[16])
{
    uint32_t h = 2166136261u;
    int k;
    for (k = 0; k < 16; k++)
        h = (h ^ a[k]) * 16777619u;
    return h;
}

/* Count one more connection from a; returns the node or -1 over the cap. */
static int32_t ip_acquire(sa_serve *s, const uint8_t a[16])
{
    uint32_t b = ip_hash(a) & s->ip_mask;
    int32_t n;
    for (n = s->ip_buckets[b]; n >= 0; n = s->ip_nodes[n].next)
        if (memcmp(s->ip_nodes[n].addr, a, 16) == 0)
            break;
    if (n >= 0) {
        if (s->cfg.max_per_ip && s->ip_nodes[n].count >= s->cfg.max_per_ip)
            return -1;
        s->ip_nodes[n].count++;
        return n;
    }
    if (s->ip_free < 0)
        return -1;   /* cannot happen: one node per connection slot */
    n = s->ip_free;
    s->ip_free = s->ip_nodes[n].next;
    memcpy(s->ip_nodes[n].addr, a, 16);
    s->ip_nodes[n].count = 1;
    s->ip_nodes[n].next = s->ip_buckets[b];
    s->ip_buckets[b] = n;
    return n;
}

static void ip_release(sa_serve *s, int32_t n)
{
    uint32_t b;
    int32_t *pp;
    if (n < 0 || --s->ip_nodes[n].count > 0)
        return;
    b = ip_hash(s->ip_nodes[n].addr) & s->ip_mask;
    for (pp = &s->ip_buckets[b]; *pp >= 0; pp = &s->ip_nodes[*pp].next)
        if (*pp == n) {
            *pp = s->ip_nodes[n].next;
            break;
        }
    s->ip_nodes[n].next = s->ip_free;
    s->ip_free = n;
}

/* ---- buffers --------------------------------------------------------------- */

static void account(sa_serve *s, int64_t delta)
{
    s->st.buffered = (uint64_t)((int64_t)s->st.buffered + delta);
    if (s->st.buffered > s->st.buffered_high)
        s->st.buffered_high = s->st.buffered;
}

static uint8_t *buf_get(sa_serve *s)
{
    uint8_t *b;
    if (s->st.buffered + s->cfg.buf_size > s->cfg.max_buffered)
        return NULL;
    b = s->npool ? s->pool[--s->npool] : malloc(s->cfg.buf_size);
    if (b)
        account(s, (int64_t)s->cfg.buf_size);
    return b;
}

static void buf_release(sa_serve *s, conn_t *c)
{
    if (!c->buf)
        return;
    account(s, -(int64_t)c->cap);
    if (!c->big && s->npool < s->cfg.pool_keep)
        s->pool[s->npool++] = c->buf;
    else
        free(c->buf);
    c->buf = NULL;
    c->cap = 0;
    c->big = 0;
}

/* Make c->buf hold at least want bytes (keeping the first keep bytes). */
static int buf_grow(sa_serve *s, conn_t *c, size_t want, size_t keep)
{
    uint8_t *nb;
    if (want <= c->cap)
        return SA_OK;
    if (s->st.buffered - c->cap + want > s->cfg.max_buffered)
        return SA_E_SERVE_NOMEM;
    nb = malloc(want);
    if (!nb)
        return SA_E_SERVE_NOMEM;
    if (keep)
        memcpy(nb, c->buf, keep);
    buf_release(s, c);
    c->buf = nb;
    c->cap = want;
    c->big = 1;
    account(s, (int64_t)want);
    return SA_OK;
}

/* ---- connections ----------------------------------------------------------- */

static uint64_t conn_id(const sa_serve *s, int32_t i)
{
    return (uint64_t)s->conns[i].gen << 32 | (uint32_t)i;
}

static conn_t *conn_lookup(sa_serve *s, uint64_t id, int32_t *slot)
{
    uint32_t i = (uint32_t)id;
    conn_t *c;
    if (i >= s->cfg.max_conns)
        return NULL;
    c = &s->conns[i];
    if (c->state == ST_FREE || c->gen != (uint32_t)(id >> 32))
        return NULL;
    *slot = (int32_t)i;
    return c;
}

static void conn_close(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    if (c->state == ST_FREE)
        return;
    if (c->fd >= 0)
        close(c->fd);
    if (c->up_fd >= 0)
        close(c->up_fd);
    c->fd = c->up_fd = -1;
    timer_set(s, i, TL_NONE);
    if (c->kicked) {
        list_unlink(s, &s->kick, L_KICK, i);
        c->kicked = 0;
    }
    ip_release(s, c->ip_node);
    c->ip_node = -1;
    buf_release(s, c);
    c->state = ST_FREE;
    c->known = 0;
    s->free_slots[s->nfree++] = i;
    s->st.conns_open--;
}

static sa_serve_event *emit(sa_serve *s, int32_t i, int kind, int status)
{
    conn_t *c = &s->conns[i];
    sa_serve_event *e;
    if (!s->out || s->nout >= s->maxout)
        return NULL;   /* budgets keep this from happening */
    e = &s->out[s->nout++];
    memset(e, 0, sizeof(*e));
    e->conn_id = conn_id(s, i);
    e->kind = kind;
    e->status = status;
    e->sys_errno = c->sys_errno;
    e->plugin = c->plugin;
    e->msg_type = c->msg_type;
    e->version = c->version;
    e->flags = c->flags;
    e->listener = c->listener;
    e->peer_family = c->peer_family;
    e->peer_port = c->peer_port;
    memcpy(e->peer_addr, c->peer_addr, 16);
    return e;
}

/* ---- writing ---------------------------------------------------------------- */

/* A write met a full socket buffer: from now on the connection also wants
 * EPOLLOUT (edge-triggered: reported at once if it is writable again). */
static int want_out(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    struct epoll_event ev;
    if (c->want_out)
        return 0;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = (uint64_t)EK_CLIENT << 32 | (uint32_t)i;
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        return -1;
    c->want_out = 1;
    return 0;
}

static void conn_after_write(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    if (c->close_after) {
        conn_close(s, i);
        return;
    }
    /* next frame on the same connection: what was read past the last one first */
    c->have = c->keep;
    c->need = 0;
    c->keep = c->out_len = c->out_off = 0;
    c->state = ST_HEAD;
    c->known = 0;
    c->plugin = 0;
    timer_set(s, i, TL_HEAD);
    kick(s, i);
}

static void conn_write(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->buf + c->keep + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            s->st.bytes_written += (uint64_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            if (want_out(s, i) != 0) {
                conn_close(s, i);
                return;
            }
            return;   /* EPOLLOUT continues */
        } else {
            s->st.drop_peer_closed++;
            conn_close(s, i);
            return;
        }
    }
    conn_after_write(s, i);
}

/* Queue reply bytes on c: send what the socket takes now, copy the rest. The
 * frame (and anything read past it, kept for close_after == 0) is no longer
 * needed once this is called. */
static int queue_reply(sa_serve *s, int32_t i, const uint8_t *data, size_t len, int close_after)
{
    conn_t *c = &s->conns[i];
    size_t sent = 0, keep = 0;
    int rc;

    if (!close_after && c->need && c->have > c->need) {
        keep = c->have - c->need;
        memmove(c->buf, c->buf + c->need, keep);
    }
    c->close_after = (uint8_t)(close_after != 0);
    while (sent < len) {
        ssize_t w = send(c->fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            s->st.bytes_written += (uint64_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            break;
        } else {
            s->st.drop_peer_closed++;
            conn_close(s, i);
            return SA_OK;   /* the client is gone: nothing more to do */
        }
    }
    c->keep = keep;
    if (sent == len) {
        c->out_off = c->out_len = 0;
        conn_after_write(s, i);
        return SA_OK;
    }
    rc = buf_grow(s, c, keep + (len - sent), keep);
    if (rc != SA_OK) {
        s->st.drop_nomem++;
        conn_close(s, i);
        return rc;
    }
    memcpy(c->buf + keep, data + sent, len - sent);
    c->out_off = 0;
    c->out_len = len - sent;
    c->state = ST_WRITING;
    timer_set(s, i, TL_WRITE);
    if (want_out(s, i) != 0) {
        s->last_errno = errno;
        conn_close(s, i);
        return SA_E_SERVE_SYS;
    }
    return SA_OK;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* RESPONSE_SLURM_RC as slurmctld sends it: no auth section, flags 0x0044. */
static void rc_reply(uint8_t out[24], uint16_t version, uint32_t rc)
{
    memset(out, 0, 24);
    put32(out, 20);
    put16(out + 4, version);
    put16(out + 6, REPLY_FLAGS);
    put16(out + 8, RESPONSE_SLURM_RC);
    put32(out + 10, 4);
    /* forward_cnt, ret_cnt, orig_addr family: 0 */
    put32(out + 20, rc);
}

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
        timer_set(s, i, TL_NONE);
        {
            sa_serve_event *e = emit(s, i, SA_SERVE_EV_REFUSED, status);
            if (e) {
                e->frame = c->buf;
                e->frame_len = c->need && c->have > c->need ? c->need : c->have;
            }
        }
        return;
    case SA_SERVE_REFUSE_RC:
        s->st.refused_answered++;
        rc_reply(r, c->version, RC_AUTH_ERROR);
        c->need = 0;   /* nothing is kept: the connection closes */
        (void)queue_reply(s, i, r, sizeof(r), 1);
        return;
    default:
        conn_close(s, i);
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
    conn_close(s, i);
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
        rc = buf_grow(s, c, c->need, c->have);
        if (rc != SA_OK) {
            s->st.drop_nomem++;
            conn_close(s, i);
            return -1;
        }
    }
    c->state = ST_BODY;
    timer_set(s, i, TL_BODY);
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
    timer_set(s, i, TL_NONE);
    e = emit(s, i, kind, SA_OK);
    if (!e)
        return;
    if (kind == SA_SERVE_EV_VERIFIED) {
        e->uid = c->uid;
        e->gid = c->gid;
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
static void conn_read(sa_serve *s, int32_t i)
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
            conn_close(s, i);
            return;
        }
        if (r == 0) {
            s->st.drop_peer_closed++;
            conn_close(s, i);
            return;
        }
        c->have += (size_t)r;
        s->st.bytes_read += (uint64_t)r;
        drained = (size_t)r < want;
    }
}

/* ---- upstream (forwarding) ------------------------------------------------------ */

static void fwd_fail(sa_serve *s, int32_t i, int status, int err)
{
    conn_t *c = &s->conns[i];
    sa_serve_event *e;

    if (c->up_fd >= 0)
        close(c->up_fd);
    c->up_fd = -1;
    if (!s->out || s->nout >= s->maxout) {
        /* no room for an event now: report it at the next poll */
        c->state = ST_FWD_FAILED;
        c->status = status;
        c->sys_errno = err;
        timer_set(s, i, TL_NONE);
        kick(s, i);
        return;
    }
    s->st.forward_errors++;
    c->state = ST_PENDING;
    c->need = c->have = 0;   /* the frame may be overwritten: it is gone */
    c->sys_errno = err;
    timer_set(s, i, TL_NONE);
    e = emit(s, i, SA_SERVE_EV_FORWARD_ERROR, status);
    if (e)
        e->upstream_ns = mono_ns() - c->up_start_ns;
    c->sys_errno = 0;
}

static void latency_count(sa_serve *s, uint64_t ns)
{
    uint32_t b = 0;
    if (!s->lat_n)
        return;
    while (b < s->lat_n && ns > s->lat_bounds[b])
        b++;
    s->lat_counts[b]++;
    s->lat_sum_ns += ns;
}

static void up_read(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    uint64_t up_ns;

    for (;;) {
        size_t limit;
        ssize_t r;

        if (!c->need && c->have >= 4) {
            uint32_t total = (uint32_t)c->buf[0] << 24 | (uint32_t)c->buf[1] << 16 |
                             (uint32_t)c->buf[2] << 8 | c->buf[3];
            if (total > s->cfg.max_frame) {
                fwd_fail(s, i, SA_E_SERVE_UP_FRAME, 0);
                return;
            }
            c->need = 4 + (size_t)total;
            if (buf_grow(s, c, c->need, c->have) != SA_OK) {
                s->st.drop_nomem++;
                fwd_fail(s, i, SA_E_SERVE_NOMEM, 0);
                return;
            }
        }
        if (c->need && c->have >= c->need)
            break;   /* the whole reply (anything after it is not relayed) */
        limit = c->need ? c->need : c->cap;
        r = recv(c->up_fd, c->buf + c->have, limit - c->have, 0);
        if (r > 0) {
            c->have += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        fwd_fail(s, i, r == 0 ? SA_E_SERVE_UP_CLOSED : SA_E_SERVE_SYS, r == 0 ? 0 : errno);
        return;
    }
    /* relay it */
    close(c->up_fd);
    c->up_fd = -1;
    s->st.forward_done++;
    up_ns = (uint64_t)(mono_ns() - c->up_start_ns);
    latency_count(s, up_ns);
    if (s->cfg.report_forward_done) {
        sa_serve_event *e = emit(s, i, SA_SERVE_EV_FORWARD_DONE, SA_OK);
        if (e) {
            e->upstream_ns = (int64_t)up_ns;
            e->reply_len = (uint32_t)c->need;
        }
    }
    c->known = 0;
    c->keep = 0;
    c->out_off = 0;
    c->out_len = c->need;
    c->close_after = 1;
    c->state = ST_WRITING;
    timer_set(s, i, TL_WRITE);
    conn_write(s, i);
}

/* Send the frame upstream (in ST_FWD_CONNECT: the first send tells whether
 * the connection is up; EAGAIN there means still connecting). try_read: the
 * upstream may already have sent something (else the reply comes with a new
 * EPOLLIN edge and reading now would only cost an EAGAIN). */
static void up_write(sa_serve *s, int32_t i, int try_read)
{
    conn_t *c = &s->conns[i];

    while (c->out_off < c->need) {
        ssize_t w = send(c->up_fd, c->buf + c->out_off, c->need - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            if (c->state == ST_FWD_CONNECT) {
                c->state = ST_FWD_WRITE;
                timer_set(s, i, TL_UPR);
            }
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            return;
        } else {
            fwd_fail(s, i, SA_E_SERVE_SYS, errno);
            return;
        }
    }
    /* the buffer now receives the reply */
    c->have = c->need = 0;
    c->out_off = 0;
    c->state = ST_FWD_READ;
    timer_set(s, i, TL_UPR);
    if (try_read)
        up_read(s, i);
}

static void up_event(sa_serve *s, int32_t i, uint32_t ev)
{
    conn_t *c = &s->conns[i];

    if (c->up_fd < 0)
        return;
    if (c->state == ST_FWD_CONNECT && (ev & EPOLLERR)) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->up_fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        fwd_fail(s, i, SA_E_SERVE_SYS, err ? err : ECONNREFUSED);
        return;
    }
    if (c->state == ST_FWD_CONNECT || c->state == ST_FWD_WRITE)
        up_write(s, i, (ev & EPOLLIN) != 0);
    else if (c->state == ST_FWD_READ && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        up_read(s, i);   /* (not for the EPOLLOUT edge of a connect that finished at once) */
}

/* ---- client events ---------------------------------------------------------------- */

static void client_event(sa_serve *s, int32_t i, uint32_t ev)
{
    conn_t *c = &s->conns[i];

    switch (c->state) {
    case ST_HEAD:
    case ST_BODY:
        if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            c->hup = 1;
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            conn_read(s, i);
        break;
    case ST_WRITING:
        if (ev & (EPOLLERR | EPOLLHUP)) {
            s->st.drop_peer_closed++;
            conn_close(s, i);
        } else if (ev & EPOLLOUT) {
            conn_write(s, i);
        }
        break;
    case ST_PENDING:
    case ST_FWD_CONNECT:
    case ST_FWD_WRITE:
    case ST_FWD_READ:
    case ST_FWD_FAILED:
        if (ev & (EPOLLERR | EPOLLHUP)) {
            s->st.drop_peer_closed++;
            if (c->known)
                emit(s, i, SA_SERVE_EV_CLOSED, SA_OK);
            conn_close(s, i);
        }
        break;
    default:
        break;
    }
}

static void addr_from_sockaddr(const struct sockaddr_storage *ss, int *family, uint16_t *port,
                               uint8_t addr[16])
{
    memset(addr, 0, 16);
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
        *family = SA_SERVE_AF_INET;
        *port = ntohs(a->sin_port);
        memcpy(addr, &a->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
        *family = SA_SERVE_AF_INET6;
        *port = ntohs(a->sin6_port);
        memcpy(addr, &a->sin6_addr, 16);
    } else {
        *family = SA_SERVE_AF_UNIX;
    }
}

/* Out of descriptors: the reserve fd makes room to accept one connection
 * and close it at once (the client sees the close instead of waiting in the
 * backlog). Returns 0 when the backlog is empty. */
static int accept_emfile(sa_serve *s, int lfd)
{
    int fd;
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
    }
    fd = accept(lfd, NULL, NULL);
    if (fd >= 0) {
        s->st.drop_emfile++;
        close(fd);
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
}

/* budget: events the accepted connections may emit (read at once) */
static void accept_some(sa_serve *s, int li, int budget)
{
    int lfd = s->lfd[li], n;
    int read_now = s->ltcp[li] && s->cfg.defer_accept_s > 0;

    for (n = 0; n < ACCEPT_BATCH; n++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct epoll_event ev;
        conn_t *c;
        int32_t i, node = -1;
        int fd;

        if (read_now && budget <= 0)
            return;
        fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                if (accept_emfile(s, lfd))
                    continue;
                return;
            }
            return;   /* EAGAIN or a listener error */
        }
        s->st.accepted++;
        if (s->st.conns_open >= s->cfg.max_conns || s->nfree == 0) {
            s->st.drop_conn_cap++;
            close(fd);
            continue;
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            int fam;
            uint16_t port;
            uint8_t a[16];
            addr_from_sockaddr(&ss, &fam, &port, a);
            if (fam == SA_SERVE_AF_INET)
                a[15] = 4;   /* keep v4 apart from v6 in the table (bytes 4..15 are 0) */
            node = ip_acquire(s, a);
            if (node < 0) {
                s->st.drop_ip_cap++;
                close(fd);
                continue;
            }
        }
        i = s->free_slots[s->nfree - 1];
        c = &s->conns[i];
        c->buf = buf_get(s);
        if (!c->buf) {
            s->st.drop_nomem++;
            ip_release(s, node);
            close(fd);
            continue;
        }
        s->nfree--;
        c->cap = s->cfg.buf_size;
        c->big = 0;
        c->fd = fd;
        c->up_fd = -1;
        c->gen++;
        if (c->gen == 0)
            c->gen = 1;
        c->state = ST_HEAD;
        c->tlist = TL_NONE;
        c->kicked = c->known = 0;
        c->close_after = 1;
        c->want_out = 0;
        c->hup = 0;
        c->plen = 0;
        c->listener = (uint16_t)li;
        c->ip_node = node;
        c->have = c->need = c->out_off = c->out_len = c->keep = 0;
        c->status = c->sys_errno = 0;
        c->plugin = c->uid = c->gid = 0;
        c->msg_type = c->version = c->flags = 0;
        addr_from_sockaddr(&ss, &c->peer_family, &c->peer_port, c->peer_addr);
        s->st.conns_open++;
        if (s->st.conns_open > s->st.conns_high)
            s->st.conns_high = s->st.conns_open;
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = (uint64_t)EK_CLIENT << 32 | (uint32_t)i;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_close(s, i);
            continue;
        }
        timer_set(s, i, TL_HEAD);
        if (read_now) {
            int before = s->nout;
            conn_read(s, i);
            budget -= s->nout - before;
        }
    }
}

/* ---- timers ----------------------------------------------------------------------- */

static void expire(sa_serve *s)
{
    int tl;
    for (tl = 1; tl < TL_COUNT; tl++) {
        list_t *l = &s->lists[tl];
        while (l->head >= 0 && s->conns[l->head].deadline <= s->now_ms) {
            int32_t i = l->head;
            switch (tl) {
            case TL_HEAD:
                s->st.drop_head_timeout++;
                conn_close(s, i);
                break;
            case TL_BODY:
                s->st.drop_body_timeout++;
                conn_close(s, i);
                break;
            case TL_WRITE:
                s->st.drop_write_timeout++;
                conn_close(s, i);
                break;
            default:   /* upstream: an event for the driver */
                if (s->nout >= s->maxout)
                    goto next_list;
                fwd_fail(s, i, SA_E_SERVE_UP_TIMEOUT, 0);
                break;
            }
        }
    next_list:;
    }
}

static int64_t next_deadline(const sa_serve *s)
{
    int64_t d = -1;
    int tl;
    for (tl = 1; tl < TL_COUNT; tl++) {
        const list_t *l = &s->lists[tl];
        if (l->head >= 0 && (d < 0 || s->conns[l->head].deadline < d))
            d = s->conns[l->head].deadline;
    }
    return d;
}

static void run_kicks(sa_serve *s)
{
    while (s->kick.head >= 0 && s->nout < s->maxout) {
        int32_t i = s->kick.head;
        conn_t *c = &s->conns[i];
        list_unlink(s, &s->kick, L_KICK, i);
        c->kicked = 0;
        if (c->state == ST_HEAD || c->state == ST_BODY)
            conn_read(s, i);
        else if (c->state == ST_FWD_WRITE || c->state == ST_FWD_CONNECT)
            up_write(s, i, 1);
        else if (c->state == ST_FWD_FAILED)
            fwd_fail(s, i, c->status, c->sys_errno);
    }
}

/* ---- public API ---------------------------------------------------------------------- */

void sa_serve_config_init(sa_serve_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_conns = 4096;
    cfg->max_per_ip = 64;
    cfg->max_frame = 1024 * 1024;
    cfg->max_head = 16 * 1024 - 4;
    cfg->buf_size = 16 * 1024;
    cfg->pool_keep = 1024;
    cfg->max_buffered = 64u * 1024 * 1024;
    cfg->head_ms = 2000;
    cfg->body_ms = 10000;
    cfg->write_ms = 10000;
    cfg->up_connect_ms = 2000;
    cfg->up_reply_ms = 30000;
    cfg->min_version = SA_PROTOCOL_VERSION - SA_PROTOCOL_OLDEST_DELTA;
    cfg->max_version = SA_PROTOCOL_VERSION;
    cfg->refuse_mode = SA_SERVE_REFUSE_RC;
    cfg->report_forward_done = 1;
    cfg->defer_accept_s = 0;
    cfg->backlog = 4096;
}

sa_serve *sa_serve_new(const sa_serve_config *cfg)
{
    sa_serve *s;
    struct epoll_event ev;
    uint32_t k, nb;

    if (!cfg || cfg->max_conns == 0 || cfg->max_conns > (1u << 24) || cfg->max_head < 16 ||
        cfg->buf_size < 64 || cfg->min_version > cfg->max_version ||
        cfg->refuse_mode < 0 || cfg->refuse_mode > SA_SERVE_REFUSE_REPORT) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    /* the header and auth section always fit the pooled buffer */
    if (s->cfg.max_head > s->cfg.max_frame)
        s->cfg.max_head = s->cfg.max_frame;
    if (s->cfg.buf_size < s->cfg.max_head + 4)
        s->cfg.buf_size = s->cfg.max_head + 4;
    s->opts.min_version = cfg->min_version;
    s->opts.max_version = cfg->max_version;
    s->opts.max_frame = cfg->max_frame;
    s->opts.length_prefix = 1;
    s->opts.slurmdbd = 0;
    s->epfd = s->wakefd = s->reserve_fd = -1;
    s->tl_ms[TL_HEAD] = cfg->head_ms;
    s->tl_ms[TL_BODY] = cfg->body_ms;
    s->tl_ms[TL_WRITE] = cfg->write_ms;
    s->tl_ms[TL_UPC] = cfg->up_connect_ms;
    s->tl_ms[TL_UPR] = cfg->up_reply_ms;
    for (k = 0; k < TL_COUNT; k++)
        s->lists[k].head = s->lists[k].tail = -1;
    s->kick.head = s->kick.tail = -1;

    for (nb = 16; nb < cfg->max_conns * 2; nb <<= 1)
        ;
    s->conns = calloc(cfg->max_conns, sizeof(*s->conns));
    s->free_slots = malloc(cfg->max_conns * sizeof(*s->free_slots));
    s->ip_nodes = malloc(cfg->max_conns * sizeof(*s->ip_nodes));
    s->ip_buckets = malloc(nb * sizeof(*s->ip_buckets));
    s->pool = malloc((s->cfg.pool_keep ? s->cfg.pool_keep : 1) * sizeof(*s->pool));
    if (!s->conns || !s->free_slots || !s->ip_nodes || !s->ip_buckets || !s->pool)
        goto fail;
    s->ip_mask = nb - 1;
    for (k = 0; k < nb; k++)
        s->ip_buckets[k] = -1;
    for (k = 0; k < cfg->max_conns; k++) {
        conn_t *c = &s->conns[k];
        c->fd = c->up_fd = -1;
        c->ip_node = -1;
        c->link_prev[0] = c->link_prev[1] = c->link_next[0] = c->link_next[1] = -1;
        /* lowest slots on top of the stack */
        s->free_slots[k] = (int32_t)(cfg->max_conns - 1 - k);
        s->ip_nodes[k].next = k + 1 < cfg->max_conns ? (int32_t)(k + 1) : -1;
    }
    s->nfree = cfg->max_conns;
    s->ip_free = 0;

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s->epfd < 0 || s->wakefd < 0 || s->reserve_fd < 0)
        goto fail;
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)EK_WAKE << 32;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev) != 0)
        goto fail;
    return s;
fail:
    sa_serve_free(s);
    return NULL;
}

void sa_serve_free(sa_serve *s)
{
    uint32_t k;
    int l;

    if (!s)
        return;
    if (s->conns)
        for (k = 0; k < s->cfg.max_conns; k++)
            if (s->conns[k].state != ST_FREE)
                conn_close(s, (int32_t)k);
    for (l = 0; l < s->nlisten; l++)
        close(s->lfd[l]);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->wakefd >= 0)
        close(s->wakefd);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    if (s->pool)
        for (k = 0; k < s->npool; k++)
            free(s->pool[k]);
    free(s->pool);
    free(s->conns);
    free(s->free_slots);
    free(s->ip_nodes);
    free(s->ip_buckets);
    free(s->scratch);
    free(s);
}

static int add_listener(sa_serve *s, int fd, int tcp)
{
    struct epoll_event ev;
    if (listen(fd, s->cfg.backlog > 0 ? s->cfg.backlog : 128) != 0)
        goto sys;
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)EK_LISTENER << 32 | (uint32_t)s->nlisten;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        goto sys;
    s->lfd[s->nlisten] = fd;
    s->ltcp[s->nlisten] = tcp;
    s->nlisten++;
    return SA_OK;
sys:
    s->last_errno = errno;
    close(fd);
    return SA_E_SERVE_SYS;
}

int sa_serve_listen_tcp(sa_serve *s, const char *host, uint16_t port, uint16_t *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1;

    if (!s)
        return SA_E_ARG;
    if (s->nlisten >= MAX_LISTENERS)
        return SA_E_SERVE_LISTENERS;
    memset(&ss, 0, sizeof(ss));
    if (!host || !*host) {
        struct sockaddr_in *a = (struct sockaddr_in *)(void *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        a->sin_port = htons(port);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)(void *)&ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)&ss;
        if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
            a->sin_family = AF_INET;
            a->sin_port = htons(port);
            sl = sizeof(*a);
        } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons(port);
            sl = sizeof(*a6);
        } else {
            return SA_E_ARG;
        }
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s->last_errno = errno;
        return SA_E_SERVE_SYS;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (s->cfg.defer_accept_s > 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &s->cfg.defer_accept_s,
                         sizeof(s->cfg.defer_accept_s));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        s->last_errno = errno;
        close(fd);
        return SA_E_SERVE_SYS;
    }
    if (bound_port) {
        struct sockaddr_storage b;
        socklen_t bl = sizeof(b);
        if (getsockname(fd, (struct sockaddr *)&b, &bl) != 0) {
            s->last_errno = errno;
            close(fd);
            return SA_E_SERVE_SYS;
        }
        *bound_port = ntohs(b.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)(void *)&b)->sin6_port
                                : ((struct sockaddr_in *)(void *)&b)->sin_port);
    }
    return add_listener(s, fd, 1);
}

int sa_serve_listen_unix(sa_serve *s, const char *path)
{
    struct sockaddr_un a;
    size_t n;
    int fd;

    if (!s || !path)
        return SA_E_ARG;
    if (s->nlisten >= MAX_LISTENERS)
        return SA_E_SERVE_LISTENERS;
    n = strlen(path);
    if (n == 0 || n >= sizeof(a.sun_path))
        return SA_E_ARG;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path, n);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s->last_errno = errno;
        return SA_E_SERVE_SYS;
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        s->last_errno = errno;
        close(fd);
        return SA_E_SERVE_SYS;
    }
    return add_listener(s, fd, 0);
}

int sa_serve_stop_listening(sa_serve *s)
{
    int l;

    if (!s)
        return SA_E_ARG;
    for (l = 0; l < s->nlisten; l++) {
        (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd[l], NULL);
        close(s->lfd[l]);
        s->lfd[l] = -1;
    }
    s->nlisten = 0;
    return SA_OK;
}

int sa_serve_set_keys(sa_serve *s, const void *ks, const void *pol, unsigned bh_flags)
{
    const sc_policy *p = pol;
    size_t need;

    if (!s || !ks || !pol)
        return SA_E_ARG;
    need = sc_scratch_need(s->cfg.max_head);
    if (need > s->scratch_cap) {
        uint8_t *nb = malloc(need);
        if (!nb)
            return SA_E_SERVE_NOMEM;
        free(s->scratch);
        s->scratch = nb;
        s->scratch_cap = need;
    }
    s->ks = *(const sc_keyset *)ks;
    s->pol = *p;
    s->bh_flags = bh_flags;
    s->has_keys = 1;
    return SA_OK;
}

int sa_serve_wakeup(sa_serve *s)
{
    uint64_t one = 1;
    if (!s)
        return SA_E_ARG;
    return write(s->wakefd, &one, sizeof(one)) == (ssize_t)sizeof(one) || errno == EAGAIN
               ? SA_OK : SA_E_SERVE_SYS;
}

int sa_serve_poll(sa_serve *s, int timeout_ms, sa_serve_event *out, int max_events)
{
    int64_t start, until;
    int woken = 0;

    if (!s || !out || max_events <= 0) {
        errno = EINVAL;
        return -1;
    }
    s->out = out;
    s->nout = 0;
    s->maxout = max_events;
    start = mono_ms();
    until = timeout_ms < 0 ? -1 : start + timeout_ms;
    for (;;) {
        int n, k, wait, room;
        int64_t d;

        s->now_ms = mono_ms();
        s->wall = (int64_t)time(NULL);
        run_kicks(s);
        expire(s);
        if (s->nout > 0 || woken)
            break;
        if (until >= 0 && s->now_ms >= until)
            break;
        d = next_deadline(s);
        if (until >= 0 && (d < 0 || until < d))
            d = until;
        if (d < 0)
            wait = -1;
        else
            wait = d - s->now_ms > 0x7fffffff ? 0x7fffffff
                   : d - s->now_ms < 0 ? 0 : (int)(d - s->now_ms);
        if (s->kick.head >= 0)
            wait = 0;
        room = s->maxout - s->nout;
        if (room > EPOLL_BATCH)
            room = EPOLL_BATCH;
        n = epoll_wait(s->epfd, s->evs, room, wait);
        if (n < 0) {
            if (errno == EINTR)
                break;   /* let the caller handle its signal */
            s->out = NULL;
            return -1;
        }
        s->now_ms = mono_ms();
        s->wall = (int64_t)time(NULL);
        for (k = 0; k < n; k++) {
            uint64_t u = s->evs[k].data.u64;
            uint32_t kind = (uint32_t)(u >> 32), idx = (uint32_t)u;
            uint32_t ev = s->evs[k].events;
            switch (kind) {
            case EK_CLIENT:
                client_event(s, (int32_t)idx, ev);
                break;
            case EK_UPSTREAM:
                up_event(s, (int32_t)idx, ev);
                break;
            case EK_LISTENER:
                /* every later event in this batch may emit one */
                accept_some(s, (int)idx, s->maxout - s->nout - (n - k - 1));
                break;
            case EK_WAKE: {
                uint64_t v;
                while (read(s->wakefd, &v, sizeof(v)) > 0)
                    ;
                woken = 1;
                break;
            }
            default:
                break;
            }
        }
    }
    s->out = NULL;
    return s->nout;
}

int sa_serve_reply(sa_serve *s, uint64_t id, const uint8_t *reply, size_t len, int close_after)
{
    int32_t i;
    conn_t *c;

    if (!s || (!reply && len))
        return SA_E_ARG;
    c = conn_lookup(s, id, &i);
    if (!c)
        return SA_E_SERVE_CONN;
    if (c->state != ST_PENDING)
        return SA_E_SERVE_STATE;
    s->now_ms = mono_ms();
    c->known = 0;
    return queue_reply(s, i, reply, len, close_after);
}

int sa_serve_close(sa_serve *s, uint64_t id)
{
    int32_t i;
    if (!s)
        return SA_E_ARG;
    if (!conn_lookup(s, id, &i))
        return SA_E_SERVE_CONN;
    conn_close(s, i);
    return SA_OK;
}

static int to_sockaddr(const sa_serve_addr *a, struct sockaddr_storage *ss, socklen_t *sl)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == SA_SERVE_AF_INET) {
        struct sockaddr_in *v = (struct sockaddr_in *)(void *)ss;
        v->sin_family = AF_INET;
        v->sin_port = htons(a->port);
        memcpy(&v->sin_addr, a->addr, 4);
        *sl = sizeof(*v);
    } else if (a->family == SA_SERVE_AF_INET6) {
        struct sockaddr_in6 *v = (struct sockaddr_in6 *)(void *)ss;
        v->sin6_family = AF_INET6;
        v->sin6_port = htons(a->port);
        memcpy(&v->sin6_addr, a->addr, 16);
        *sl = sizeof(*v);
    } else if (a->family == SA_SERVE_AF_UNIX) {
        struct sockaddr_un *v = (struct sockaddr_un *)(void *)ss;
        size_t n = strnlen(a->path, sizeof(a->path));
        if (n == 0 || n >= sizeof(v->sun_path))
            return SA_E_ARG;
        v->sun_family = AF_UNIX;
        memcpy(v->sun_path, a->path, n);
        *sl = sizeof(*v);
    } else {
        return SA_E_ARG;
    }
    return SA_OK;
}

int sa_serve_forward(sa_serve *s, uint64_t id, const sa_serve_addr *upstream,
                     const sa_serve_addr *src, unsigned flags)
{
    struct sockaddr_storage up, bs;
    socklen_t ul, bl = 0;
    struct epoll_event ev;
    sa_serve_addr peer;
    int32_t i;
    conn_t *c;
    int fd, one = 1, err = 0, rc;

    if (!s || !upstream)
        return SA_E_ARG;
    c = conn_lookup(s, id, &i);
    if (!c)
        return SA_E_SERVE_CONN;
    if (c->state != ST_PENDING || c->need == 0 || c->have < c->need)
        return SA_E_SERVE_STATE;
    if (to_sockaddr(upstream, &up, &ul) != SA_OK)
        return SA_E_ARG;
    if (flags & SA_SERVE_FWD_BIND_PEER) {
        if (c->peer_family != SA_SERVE_AF_INET && c->peer_family != SA_SERVE_AF_INET6)
            return SA_E_ARG;
        memset(&peer, 0, sizeof(peer));
        peer.family = c->peer_family;
        memcpy(peer.addr, c->peer_addr, 16);
        src = &peer;
    }
    if (src) {
        if (src->family != upstream->family || src->family == SA_SERVE_AF_UNIX)
            return SA_E_ARG;
        if ((rc = to_sockaddr(src, &bs, &bl)) != SA_OK)
            return rc;
    }
    s->now_ms = mono_ms();
    c->up_start_ns = mono_ns();
    s->st.forwarded++;
    c->known = 1;
    fd = socket(up.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        goto failed;
    }
    c->up_fd = fd;
    if (src) {
        if (flags & SA_SERVE_FWD_TRANSPARENT) {
            int r = up.ss_family == AF_INET6
                        ? setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                        : setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
            if (r != 0) {
                err = errno;
                goto failed;
            }
        }
        /* the port is chosen at connect time, per destination: many clients
         * bound to the same source IP do not exhaust its ports */
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&bs, bl) != 0) {
            err = errno;
            goto failed;
        }
    }
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = (uint64_t)EK_UPSTREAM << 32 | (uint32_t)i;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        err = errno;
        goto failed;
    }
    c->out_off = 0;
    if (connect(fd, (struct sockaddr *)&up, ul) == 0) {
        /* connected at once (unix sockets); a failure while writing is
         * reported at the next poll */
        c->state = ST_FWD_WRITE;
        timer_set(s, i, TL_UPR);
        up_write(s, i, 0);
        return SA_OK;
    }
    if (errno != EINPROGRESS) {
        err = errno;
        goto failed;
    }
    c->state = ST_FWD_CONNECT;
    timer_set(s, i, TL_UPC);
    /* on loopback the handshake is usually done by the time connect returns:
     * the first send goes out now (EAGAIN: still connecting, EPOLLOUT follows;
     * a failure is reported at the next poll) */
    up_write(s, i, 0);
    return SA_OK;
failed:
    /* reported as an event at the next poll, like a failure seen later */
    if (c->up_fd >= 0)
        close(c->up_fd);
    c->up_fd = -1;
    c->state = ST_FWD_FAILED;
    c->status = SA_E_SERVE_SYS;
    c->sys_errno = err;
    timer_set(s, i, TL_NONE);
    kick(s, i);
    return SA_OK;
}

void sa_serve_get_stats(const sa_serve *s, sa_serve_stats *out)
{
    if (s && out)
        *out = s->st;
}

int sa_serve_set_latency_buckets(sa_serve *s, const uint64_t *bounds_ns, uint32_t n)
{
    uint32_t k;
    if (!s || n > SA_SERVE_LAT_MAX_BUCKETS || (n && !bounds_ns))
        return SA_E_ARG;
    for (k = 1; k < n; k++)
        if (bounds_ns[k] <= bounds_ns[k - 1])
            return SA_E_ARG;
    if (n)
        memcpy(s->lat_bounds, bounds_ns, n * sizeof(*bounds_ns));
    memset(s->lat_counts, 0, sizeof(s->lat_counts));
    s->lat_sum_ns = 0;
    s->lat_n = n;
    return SA_OK;
}

uint32_t sa_serve_get_latency(const sa_serve *s, uint64_t *counts, uint64_t *sum_ns)
{
    if (!s)
        return 0;
    if (counts)
        memcpy(counts, s->lat_counts, (s->lat_n + 1) * sizeof(*counts));
    if (sum_ns)
        *sum_ns = s->lat_sum_ns;
    return s->lat_n;
}

int sa_serve_errno(const sa_serve *s)
{
    return s ? s->last_errno : 0;
}
