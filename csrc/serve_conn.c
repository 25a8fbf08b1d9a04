/* The serving core's connections: time, intrusive lists and timers, per-IP
 * counts, pooled buffers, the connection table and writing replies. */
#define _GNU_SOURCE

#include "serve_conn.h"
#include "serve_frame.h"
#include "serve_upstream.h"

/* ---- time ---------------------------------------------------------------- */

int64_t sv_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sv_mono_ms(void)
{
    return sv_mono_ns() / 1000000;
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

void sv_list_unlink(sa_serve *s, list_t *l, int set, int32_t i)
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

void sv_timer_set(sa_serve *s, int32_t i, int tl)
{
    conn_t *c = &s->conns[i];
    if (c->tlist != TL_NONE)
        sv_list_unlink(s, &s->lists[c->tlist], L_TIMER, i);
    c->tlist = (uint8_t)tl;
    if (tl != TL_NONE) {
        c->deadline = s->now_ms + s->tl_ms[tl];
        list_push(s, &s->lists[tl], L_TIMER, i);
    }
}

void sv_kick(sa_serve *s, int32_t i)
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
int32_t sv_ip_acquire(sa_serve *s, const uint8_t a[16])
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

void sv_ip_release(sa_serve *s, int32_t n)
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

uint8_t *sv_buf_get(sa_serve *s)
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
int sv_buf_grow(sa_serve *s, conn_t *c, size_t want, size_t keep)
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

uint64_t sv_conn_id(const sa_serve *s, int32_t i)
{
    return (uint64_t)s->conns[i].gen << 32 | (uint32_t)i;
}

conn_t *sv_conn_lookup(sa_serve *s, uint64_t id, int32_t *slot)
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

void sv_conn_close(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    if (c->state == ST_FREE)
        return;
    if (c->fd >= 0)
        close(c->fd);
    if (c->up_fd >= 0)
        close(c->up_fd);
    c->fd = c->up_fd = -1;
    sv_timer_set(s, i, TL_NONE);
    if (c->kicked) {
        sv_list_unlink(s, &s->kick, L_KICK, i);
        c->kicked = 0;
    }
    sv_ip_release(s, c->ip_node);
    c->ip_node = -1;
    buf_release(s, c);
    c->state = ST_FREE;
    c->known = 0;
    s->free_slots[s->nfree++] = i;
    s->st.conns_open--;
}

sa_serve_event *sv_emit(sa_serve *s, int32_t i, int kind, int status)
{
    conn_t *c = &s->conns[i];
    sa_serve_event *e;
    if (!s->out || s->nout >= s->maxout)
        return NULL;   /* budgets keep this from happening */
    e = &s->out[s->nout++];
    memset(e, 0, sizeof(*e));
    e->conn_id = sv_conn_id(s, i);
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
        sv_conn_close(s, i);
        return;
    }
    /* next frame on the same connection: what was read past the last one first */
    c->have = c->keep;
    c->need = 0;
    c->keep = c->out_len = c->out_off = 0;
    c->state = ST_HEAD;
    c->known = 0;
    c->plugin = 0;
    sv_timer_set(s, i, TL_HEAD);
    sv_kick(s, i);
}

void sv_conn_write(sa_serve *s, int32_t i)
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
                sv_conn_close(s, i);
                return;
            }
            return;   /* EPOLLOUT continues */
        } else {
            s->st.drop_peer_closed++;
            sv_conn_close(s, i);
            return;
        }
    }
    conn_after_write(s, i);
}

/* Queue reply bytes on c: send what the socket takes now, copy the rest. The
 * frame (and anything read past it, kept for close_after == 0) is no longer
 * needed once this is called. */
int sv_queue_reply(sa_serve *s, int32_t i, const uint8_t *data, size_t len, int close_after)
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
            sv_conn_close(s, i);
            return SA_OK;   /* the client is gone: nothing more to do */
        }
    }
    c->keep = keep;
    if (sent == len) {
        c->out_off = c->out_len = 0;
        conn_after_write(s, i);
        return SA_OK;
    }
    rc = sv_buf_grow(s, c, keep + (len - sent), keep);
    if (rc != SA_OK) {
        s->st.drop_nomem++;
        sv_conn_close(s, i);
        return rc;
    }
    memcpy(c->buf + keep, data + sent, len - sent);
    c->out_off = 0;
    c->out_len = len - sent;
    c->state = ST_WRITING;
    sv_timer_set(s, i, TL_WRITE);
    if (want_out(s, i) != 0) {
        s->last_errno = errno;
        sv_conn_close(s, i);
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
void sv_rc_reply(uint8_t out[24], uint16_t version, uint32_t rc)
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
