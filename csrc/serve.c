/* The epoll serving core (see serve.h): accepting connections, the event
 * loop, deadlines and the public API; its other units are listed in
 * serve_int.h. Linux only: epoll, accept4, eventfd. */
#define _GNU_SOURCE

#include "serve_conn.h"
#include "serve_frame.h"
#include "serve_upstream.h"

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
            sv_conn_read(s, i);
        break;
    case ST_WRITING:
        if (ev & (EPOLLERR | EPOLLHUP)) {
            s->st.drop_peer_closed++;
            sv_conn_close(s, i);
        } else if (ev & EPOLLOUT) {
            sv_conn_write(s, i);
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
                sv_emit(s, i, SA_SERVE_EV_CLOSED, SA_OK);
            sv_conn_close(s, i);
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
            node = sv_ip_acquire(s, a);
            if (node < 0) {
                s->st.drop_ip_cap++;
                close(fd);
                continue;
            }
        }
        i = s->free_slots[s->nfree - 1];
        c = &s->conns[i];
        c->buf = sv_buf_get(s);
        if (!c->buf) {
            s->st.drop_nomem++;
            sv_ip_release(s, node);
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
            sv_conn_close(s, i);
            continue;
        }
        sv_timer_set(s, i, TL_HEAD);
        if (read_now) {
            int before = s->nout;
            sv_conn_read(s, i);
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
                sv_conn_close(s, i);
                break;
            case TL_BODY:
                s->st.drop_body_timeout++;
                sv_conn_close(s, i);
                break;
            case TL_WRITE:
                s->st.drop_write_timeout++;
                sv_conn_close(s, i);
                break;
            default:   /* upstream: an event for the driver */
                if (s->nout >= s->maxout)
                    goto next_list;
                sv_fwd_fail(s, i, SA_E_SERVE_UP_TIMEOUT, 0);
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
        sv_list_unlink(s, &s->kick, L_KICK, i);
        c->kicked = 0;
        if (c->state == ST_HEAD || c->state == ST_BODY)
            sv_conn_read(s, i);
        else if (c->state == ST_FWD_WRITE || c->state == ST_FWD_CONNECT)
            sv_up_write(s, i, 1);
        else if (c->state == ST_FWD_FAILED)
            sv_fwd_fail(s, i, c->status, c->sys_errno);
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
                sv_conn_close(s, (int32_t)k);
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

int sa_serve_approve_identity(sa_serve *s, const uint8_t *digest)
{
    if (!s || !digest)
        return SA_E_ARG;
    memcpy(s->ids[sv_id_slot(digest)], digest, 32);
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
    start = sv_mono_ms();
    until = timeout_ms < 0 ? -1 : start + timeout_ms;
    for (;;) {
        int n, k, wait, room;
        int64_t d;

        s->now_ms = sv_mono_ms();
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
        s->now_ms = sv_mono_ms();
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
                sv_up_event(s, (int32_t)idx, ev);
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
    c = sv_conn_lookup(s, id, &i);
    if (!c)
        return SA_E_SERVE_CONN;
    if (c->state != ST_PENDING)
        return SA_E_SERVE_STATE;
    s->now_ms = sv_mono_ms();
    c->known = 0;
    return sv_queue_reply(s, i, reply, len, close_after);
}

int sa_serve_close(sa_serve *s, uint64_t id)
{
    int32_t i;
    if (!s)
        return SA_E_ARG;
    if (!sv_conn_lookup(s, id, &i))
        return SA_E_SERVE_CONN;
    sv_conn_close(s, i);
    return SA_OK;
}

void sa_serve_get_stats(const sa_serve *s, sa_serve_stats *out)
{
    if (s && out)
        *out = s->st;
}

int sa_serve_errno(const sa_serve *s)
{
    return s ? s->last_errno : 0;
}
