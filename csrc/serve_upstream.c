/* The serving core's relay: a verified frame sent byte for byte to an
 * upstream server on a new connection, its reply back to the client, and the
 * upstream-time buckets; the configured upstream, whose address it sees, and the
 * auto-forward of verified frames after the rate limit. */
#define _GNU_SOURCE

#include "serve_conn.h"
#include "serve_frame.h"
#include "serve_upstream.h"

/* ---- upstream (forwarding) ------------------------------------------------------ */

void sv_fwd_fail(sa_serve *s, int32_t i, int status, int err)
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
        sv_timer_set(s, i, TL_NONE);
        sv_kick(s, i);
        return;
    }
    s->st.forward_errors++;
    c->state = ST_PENDING;
    c->need = c->have = 0;   /* the frame may be overwritten: it is gone */
    c->sys_errno = err;
    sv_timer_set(s, i, TL_NONE);
    e = sv_emit(s, i, SA_SERVE_EV_FORWARD_ERROR, status);
    if (e)
        e->upstream_ns = sv_mono_ns() - c->up_start_ns;
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
                sv_fwd_fail(s, i, SA_E_SERVE_UP_FRAME, 0);
                return;
            }
            c->need = 4 + (size_t)total;
            if (sv_buf_grow(s, c, c->need, c->have) != SA_OK) {
                s->st.drop_nomem++;
                sv_fwd_fail(s, i, SA_E_SERVE_NOMEM, 0);
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
        sv_fwd_fail(s, i, r == 0 ? SA_E_SERVE_UP_CLOSED : SA_E_SERVE_SYS, r == 0 ? 0 : errno);
        return;
    }
    /* relay it */
    close(c->up_fd);
    c->up_fd = -1;
    s->st.forward_done++;
    up_ns = (uint64_t)(sv_mono_ns() - c->up_start_ns);
    latency_count(s, up_ns);
    if (s->cfg.report_forward_done) {
        sa_serve_event *e = sv_emit(s, i, SA_SERVE_EV_FORWARD_DONE, SA_OK);
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
    sv_timer_set(s, i, TL_WRITE);
    sv_conn_write(s, i);
}

/* Send the frame upstream (in ST_FWD_CONNECT: the first send tells whether
 * the connection is up; EAGAIN there means still connecting). try_read: the
 * upstream may already have sent something (else the reply comes with a new
 * EPOLLIN edge and reading now would only cost an EAGAIN). */
void sv_up_write(sa_serve *s, int32_t i, int try_read)
{
    conn_t *c = &s->conns[i];

    while (c->out_off < c->need) {
        ssize_t w = send(c->up_fd, c->buf + c->out_off, c->need - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            if (c->state == ST_FWD_CONNECT) {
                c->state = ST_FWD_WRITE;
                sv_timer_set(s, i, TL_UPR);
            }
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            return;
        } else {
            sv_fwd_fail(s, i, SA_E_SERVE_SYS, errno);
            return;
        }
    }
    /* the buffer now receives the reply */
    c->have = c->need = 0;
    c->out_off = 0;
    c->state = ST_FWD_READ;
    sv_timer_set(s, i, TL_UPR);
    if (try_read)
        up_read(s, i);
}

void sv_up_event(sa_serve *s, int32_t i, uint32_t ev)
{
    conn_t *c = &s->conns[i];

    if (c->up_fd < 0)
        return;
    if (c->state == ST_FWD_CONNECT && (ev & EPOLLERR)) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->up_fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        sv_fwd_fail(s, i, SA_E_SERVE_SYS, err ? err : ECONNREFUSED);
        return;
    }
    if (c->state == ST_FWD_CONNECT || c->state == ST_FWD_WRITE)
        sv_up_write(s, i, (ev & EPOLLIN) != 0);
    else if (c->state == ST_FWD_READ && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        up_read(s, i);   /* (not for the EPOLLOUT edge of a connect that finished at once) */
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

/* An IPv4 client of a dual-stack (::) listener: ::ffff:a.b.c.d */
static int v4_mapped(const conn_t *c)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return c->peer_family == SA_SERVE_AF_INET6 && memcmp(c->peer_addr, prefix, 12) == 0;
}

/* The client's address family as an upstream sees it (a v4-mapped client is IPv4). */
static int peer_family(const conn_t *c)
{
    return v4_mapped(c) ? SA_SERVE_AF_INET : c->peer_family;
}

static int is_loopback(const conn_t *c)
{
    static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (c->peer_family == SA_SERVE_AF_INET)
        return c->peer_addr[0] == 127;
    if (v4_mapped(c))
        return c->peer_addr[12] == 127;
    return c->peer_family == SA_SERVE_AF_INET6 && memcmp(c->peer_addr, v6_loopback, 16) == 0;
}

/* The sa_serve_forward flags that give the configured upstream the address
 * s->up_source says it sees for this client. */
static unsigned source_flags(const sa_serve *s, const conn_t *c)
{
    if (s->upstream.family == SA_SERVE_AF_UNIX || peer_family(c) != s->upstream.family)
        return 0;
    if (s->up_source & SA_SERVE_SRC_ALL)
        return SA_SERVE_FWD_BIND_PEER | SA_SERVE_FWD_TRANSPARENT;
    if (is_loopback(c))
        return (s->up_source & SA_SERVE_SRC_LOOPBACK) ? SA_SERVE_FWD_BIND_PEER : 0;
    return (s->up_source & SA_SERVE_SRC_REMOTE)
               ? SA_SERVE_FWD_BIND_PEER | SA_SERVE_FWD_TRANSPARENT : 0;
}

int sa_serve_set_upstream(sa_serve *s, const sa_serve_addr *upstream, unsigned source)
{
    struct sockaddr_storage ss;
    socklen_t sl;

    if (!s || !upstream || source > (SA_SERVE_SRC_LOOPBACK | SA_SERVE_SRC_REMOTE | SA_SERVE_SRC_ALL))
        return SA_E_ARG;
    if (to_sockaddr(upstream, &ss, &sl) != SA_OK)
        return SA_E_ARG;
    s->upstream = *upstream;
    s->up_source = source;
    return SA_OK;
}

int sa_serve_set_auto_forward(sa_serve *s, int on, sa_rl *rl)
{
    if (!s || (on && !s->upstream.family))
        return SA_E_ARG;
    s->auto_forward = on != 0;
    s->rl = on ? rl : NULL;
    return SA_OK;
}

int sv_auto_forward(sa_serve *s, int32_t i)
{
    conn_t *c = &s->conns[i];
    int r = sa_rl_check(s->rl, c->uid, c->msg_type, s->wall);

    if (r != SA_RL_PASS) {
        uint8_t reply[24];
        s->st.rate_limited++;
        if (r == SA_RL_EXCEEDED_LOG) {
            sa_serve_event *e = sv_emit(s, i, SA_SERVE_EV_RATE_LIMITED, SA_OK);
            if (e) {
                e->uid = c->uid;
                e->gid = c->gid;
            }
        }
        sv_rc_reply(reply, c->version, RC_BACKOFF);
        c->known = 0;
        sv_queue_reply(s, i, reply, sizeof(reply), 1);
        return 1;
    }
    if (sa_serve_forward(s, sv_conn_id(s, i), NULL, NULL, 0) != SA_OK)
        return 0;
    s->st.auto_forwarded++;
    return 1;
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

    if (!s)
        return SA_E_ARG;
    c = sv_conn_lookup(s, id, &i);
    if (!c)
        return SA_E_SERVE_CONN;
    if (!upstream) {               /* the configured one, from the address it says */
        if (!s->upstream.family || src || flags)
            return SA_E_ARG;
        upstream = &s->upstream;
        flags = source_flags(s, c);
    }
    if (c->state != ST_PENDING || c->need == 0 || c->have < c->need)
        return SA_E_SERVE_STATE;
    if (to_sockaddr(upstream, &up, &ul) != SA_OK)
        return SA_E_ARG;
    if (flags & SA_SERVE_FWD_BIND_PEER) {
        if (c->peer_family != SA_SERVE_AF_INET && c->peer_family != SA_SERVE_AF_INET6)
            return SA_E_ARG;
        memset(&peer, 0, sizeof(peer));
        if (upstream->family == SA_SERVE_AF_INET && v4_mapped(c)) {
            peer.family = SA_SERVE_AF_INET;
            memcpy(peer.addr, c->peer_addr + 12, 4);
        } else {
            peer.family = c->peer_family;
            memcpy(peer.addr, c->peer_addr, 16);
        }
        src = &peer;
    }
    if (src) {
        if (src->family != upstream->family || src->family == SA_SERVE_AF_UNIX)
            return SA_E_ARG;
        if ((rc = to_sockaddr(src, &bs, &bl)) != SA_OK)
            return rc;
    }
    s->now_ms = sv_mono_ms();
    c->up_start_ns = sv_mono_ns();
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
        sv_timer_set(s, i, TL_UPR);
        sv_up_write(s, i, 0);
        return SA_OK;
    }
    if (errno != EINPROGRESS) {
        err = errno;
        goto failed;
    }
    c->state = ST_FWD_CONNECT;
    sv_timer_set(s, i, TL_UPC);
    /* on loopback the handshake is usually done by the time connect returns:
     * the first send goes out now (EAGAIN: still connecting, EPOLLOUT follows;
     * a failure is reported at the next poll) */
    sv_up_write(s, i, 0);
    return SA_OK;
failed:
    /* reported as an event at the next poll, like a failure seen later */
    if (c->up_fd >= 0)
        close(c->up_fd);
    c->up_fd = -1;
    c->state = ST_FWD_FAILED;
    c->status = SA_E_SERVE_SYS;
    c->sys_errno = err;
    sv_timer_set(s, i, TL_NONE);
    sv_kick(s, i);
    return SA_OK;
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
