/* The SACK kiosk's serving loop (see sack_serve.h). Linux only: epoll,
 * accept4, eventfd, SO_PEERCRED.
 *
 * Connections live in a fixed table (max_conns slots, a free list) and, while
 * open, on one list in accept order: every deadline is the accept time plus
 * read_ns (reading) or request_ns (afterwards), with read_ns <= request_ns,
 * so the list is walked from its head only as far as a deadline can be due.
 * The per-uid counts are an open-addressing table (linear probing, backward
 * shift deletion) of twice the connection table's size. */
#define _GNU_SOURCE
#include "sack_serve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "create.h"
#include "sa_status.h"
#include "serve.h"

#define SACK_CREATE 64001u
#define SACK_VERIFY 64002u
#define HEADER_LEN 10u
#define MIN_LENGTH 8u
#define PACK_MAX_LEN (1024u * 1024u * 1024u)
#define ACCEPT_BATCH 64
#define EPOLL_BATCH 64
#define INLINE_IN 128       /* a SACK_CREATE with a body hash is 51 bytes */
#define INLINE_OUT 1024     /* a credential without "id" is ~400 bytes */
#define MAX_UID_CAPS 64
#define STR_MAX 255
#define EMFILE_PAUSE_NS 100000000LL

#define EK_LISTEN ((uint64_t)1 << 62)
#define EK_WAKE ((uint64_t)1 << 61)
#define EK_DRIVER_WAKE ((uint64_t)1 << 60)

enum { C_FREE = 0, C_READING, C_WAITING, C_WRITING };

typedef struct sack_conn {
    int fd;
    int state;
    int watched;              /* registered with epoll; events in `events` */
    uint32_t events;
    uint32_t gen;
    uint32_t uid, gid;
    int32_t pid;
    int64_t accepted;
    uint32_t have, need;
    uint8_t *in;              /* in_inline or a heap buffer of `need` bytes */
    uint8_t *out;             /* out_inline or a heap copy */
    size_t out_len, out_off;
    struct sack_conn *prev, *next;   /* the open list (accept order) or the free list */
    uint8_t in_inline[INLINE_IN];
    uint8_t out_inline[INLINE_OUT];
} sack_conn;

typedef struct {
    uint32_t uid, count;      /* count 0: an empty slot */
} uid_slot;

typedef struct {
    uint32_t uid, gid;
    int64_t expires;          /* monotonic ns; 0: an empty slot */
    char *members;            /* heap copy (NULL when empty) */
    size_t members_len;
} id_slot;

struct sa_sack {
    sa_sack_config cfg;
    int epfd, wakefd;
    int listening;            /* the listener is in the epoll set */
    int64_t pause_until;      /* listener paused: until then (0: until a slot frees) */
    sack_conn *conns;
    sack_conn *free_list;
    sack_conn *head, *tail;   /* open connections, oldest first */
    uid_slot *uids;
    uint32_t uid_mask;
    uint32_t n_caps;
    uint32_t cap_uid[MAX_UID_CAPS], cap_val[MAX_UID_CAPS];
    int create_on;
    const void *keyset;
    int64_t ttl, ver;
    size_t cluster_len, host_len;
    int has_cluster;
    char cluster[STR_MAX + 1], host[STR_MAX + 1];
    int ids_on;
    id_slot ids[SA_SACK_ID_SLOTS];
    sa_sack_stats st;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* --- per-uid counts ------------------------------------------------------ */

static uint32_t uid_hash(uint32_t uid)
{
    return uid * 2654435761u;
}

static uid_slot *uid_find(sa_sack *s, uint32_t uid)
{
    uint32_t i = uid_hash(uid) & s->uid_mask;
    while (s->uids[i].count && s->uids[i].uid != uid)
        i = (i + 1) & s->uid_mask;
    return &s->uids[i];   /* the uid's slot, or the empty slot where it goes */
}

static void uid_release(sa_sack *s, uint32_t uid)
{
    uid_slot *slot = uid_find(s, uid);
    uint32_t i, j;
    if (!slot->count)
        return;
    if (--slot->count)
        return;
    /* backward shift: move later entries of the probe run into the hole */
    i = (uint32_t)(slot - s->uids);
    j = i;
    for (;;) {
        uint32_t home;
        j = (j + 1) & s->uid_mask;
        if (!s->uids[j].count)
            break;
        home = uid_hash(s->uids[j].uid) & s->uid_mask;
        /* entry j may move to hole i when i lies cyclically in [home, j) */
        if (((j - home) & s->uid_mask) >= ((j - i) & s->uid_mask)) {
            s->uids[i] = s->uids[j];
            s->uids[j].count = 0;
            i = j;
        }
    }
}

static uint32_t uid_cap(const sa_sack *s, uint32_t uid)
{
    uint32_t k;
    for (k = 0; k < s->n_caps; k++)
        if (s->cap_uid[k] == uid)
            return s->cap_val[k];
    return s->cfg.max_per_uid;
}

/* --- connections ----------------------------------------------------------- */

static void listener_set(sa_sack *s, int on)
{
    struct epoll_event ev;
    if (on == s->listening)
        return;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = EK_LISTEN;
    if (on) {
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->cfg.listen_fd, &ev) != 0)
            return;   /* tried again at the next poll */
    } else {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->cfg.listen_fd, &ev);
    }
    s->listening = on;
}

static uint64_t conn_id(const sa_sack *s, const sack_conn *c)
{
    return (uint64_t)c->gen << 32 | (uint64_t)(c - s->conns);
}

static void conn_drop(sa_sack *s, sack_conn *c)
{
    if (c->state == C_FREE)
        return;
    if (c->watched)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    uid_release(s, c->uid);
    if (c->in != c->in_inline)
        free(c->in);
    if (c->out != c->out_inline)
        free(c->out);
    c->in = c->out = NULL;
    c->fd = -1;
    c->state = C_FREE;
    c->watched = 0;
    c->gen++;
    /* off the open list, onto the free list */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    c->prev = NULL;
    c->next = s->free_list;
    s->free_list = c;
    __atomic_store_n(&s->st.conns_open, s->st.conns_open - 1, __ATOMIC_RELAXED);
    if (!s->listening && s->pause_until == 0)
        listener_set(s, 1);   /* a slot is free again */
}

static int conn_watch(sa_sack *s, sack_conn *c, uint32_t events)
{
    struct epoll_event ev;
    if (c->watched && c->events == events)
        return 0;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = (uint64_t)(c - s->conns);
    if (epoll_ctl(s->epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return -1;
    c->watched = 1;
    c->events = events;
    return 0;
}

static void conn_unwatch(sa_sack *s, sack_conn *c)
{
    if (c->watched) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        c->watched = 0;
    }
}

/* Write what the socket takes; close once all is out, wait for room otherwise. */
static void conn_write(sa_sack *s, sack_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (conn_watch(s, c, EPOLLOUT) != 0)
                    conn_drop(s, c);
                return;
            }
            conn_drop(s, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    conn_drop(s, c);   /* one request per connection: done */
}

static id_slot *id_slot_of(sa_sack *s, uint32_t uid, uint32_t gid)
{
    uint32_t h = (uid * 2654435761u) ^ (gid * 2246822519u);
    return &s->ids[(h ^ (h >> 16)) % SA_SACK_ID_SLOTS];
}

static void id_slot_clear(id_slot *e)
{
    free(e->members);
    e->members = NULL;
    e->members_len = 0;
    e->expires = 0;
}

/* Sign a SACK_CREATE in C: 1 when answered, 0 when it goes to the driver. */
static int try_create(sa_sack *s, sack_conn *c)
{
    const uint8_t *body = c->in + HEADER_LEN;
    uint32_t blen = c->need - HEADER_LEN, ruid, dlen;
    const char *members = NULL;
    size_t members_len = 0;
    uint8_t *out;
    int64_t n;
    if (!s->create_on || blen < 8)
        return 0;
    if (s->ids_on) {   /* only with the peer's identity, while it is fresh */
        id_slot *e = id_slot_of(s, c->uid, c->gid);
        if (!e->expires || e->uid != c->uid || e->gid != c->gid || now_ns() >= e->expires)
            return 0;
        members = e->members_len ? e->members : NULL;
        members_len = e->members_len;
    }
    ruid = be32(body);
    dlen = be32(body + 4);
    if (dlen > PACK_MAX_LEN || (uint64_t)dlen + 8 != blen)
        return 0;   /* the driver decodes it and refuses it as the Python loop does */
    n = sa_create_credential(s->keyset, 0, 1, s->ttl, s->ver, ruid, c->uid, c->gid,
                             "sack", 4, s->has_cluster ? s->cluster : NULL, s->cluster_len,
                             s->host, s->host_len,
                             dlen ? (const char *)body + 8 : NULL, dlen, members, members_len,
                             (char *)c->out_inline + 4, INLINE_OUT - 5);
    if (n <= 0)
        return 0;   /* refused: the driver decides (and logs why) */
    out = c->out_inline;
    if (n > (int64_t)INLINE_OUT - 5) {
        /* a large payload: the exact room C asked for (and a digit the clock may add) */
        size_t cap = (size_t)n + 8;
        out = malloc(cap + 5);
        if (!out)
            return 0;
        n = sa_create_credential(s->keyset, 0, 1, s->ttl, s->ver, ruid, c->uid, c->gid,
                                 "sack", 4, s->has_cluster ? s->cluster : NULL, s->cluster_len,
                                 s->host, s->host_len,
                                 dlen ? (const char *)body + 8 : NULL, dlen, members, members_len,
                                 (char *)out + 4, cap);
        if (n <= 0 || n > (int64_t)cap) {
            free(out);
            return 0;
        }
    }
    /* packstr: the length counts the NUL */
    out[0] = (uint8_t)((uint64_t)(n + 1) >> 24);
    out[1] = (uint8_t)((uint64_t)(n + 1) >> 16);
    out[2] = (uint8_t)((uint64_t)(n + 1) >> 8);
    out[3] = (uint8_t)(n + 1);
    out[4 + n] = 0;
    c->out = out;
    c->out_len = (size_t)n + 5;
    c->out_off = 0;
    s->st.created++;
    if (members_len)
        s->st.id_hits++;
    return 1;
}

/* The request is whole: answer it here or hand it up. */
static void conn_dispatch(sa_sack *s, sack_conn *c, sa_sack_event *out, int *n_out)
{
    uint32_t rpc = be32(c->in + 6);
    sa_sack_event *e;
    c->state = C_WAITING;   /* from now on only the request deadline holds */
    conn_unwatch(s, c);
    if (rpc == SACK_CREATE && try_create(s, c)) {
        c->state = C_WRITING;
        conn_write(s, c);
        return;
    }
    e = &out[(*n_out)++];
    memset(e, 0, sizeof *e);
    e->conn_id = conn_id(s, c);
    e->kind = SA_SACK_EV_REQUEST;
    e->pid = c->pid;
    e->uid = c->uid;
    e->gid = c->gid;
    e->rpc = rpc;
    e->version = (uint16_t)(c->in[0] << 8 | c->in[1]);
    e->body = c->in + HEADER_LEN;
    e->body_len = c->need - HEADER_LEN;
    s->st.handed_up++;
}

/* Check the header before any body: the length within the cap, a known rpc. */
static int conn_header(sa_sack *s, sack_conn *c, sa_sack_event *out, int *n_out)
{
    uint32_t length = be32(c->in + 2), rpc = be32(c->in + 6);
    if (length < MIN_LENGTH || length > s->cfg.max_request - 2) {
        s->st.bad_requests++;
        return -1;
    }
    if (rpc != SACK_CREATE && rpc != SACK_VERIFY) {
        sa_sack_event *e = &out[(*n_out)++];
        s->st.bad_requests++;
        memset(e, 0, sizeof *e);
        e->kind = SA_SACK_EV_BAD_RPC;
        e->pid = c->pid;
        e->uid = c->uid;
        e->gid = c->gid;
        e->rpc = rpc;
        return -1;
    }
    c->need = 2 + length;
    if (c->need > INLINE_IN) {
        uint8_t *big = malloc(c->need);
        if (!big)
            return -1;
        memcpy(big, c->in_inline, HEADER_LEN);
        c->in = big;
    }
    return 0;
}

/* Read what is available, never past the declared length; answer once whole.
 * The caller leaves room for two events in out. */
static void conn_read(sa_sack *s, sack_conn *c, sa_sack_event *out, int *n_out)
{
    while (c->have < c->need) {
        ssize_t n = recv(c->fd, c->in + c->have, c->need - c->have, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (conn_watch(s, c, EPOLLIN) != 0)
                    conn_drop(s, c);
                return;
            }
            conn_drop(s, c);
            return;
        }
        if (n == 0) {   /* the client went away before sending a whole request */
            conn_drop(s, c);
            return;
        }
        c->have += (uint32_t)n;
        if (c->have == HEADER_LEN && c->need == HEADER_LEN && conn_header(s, c, out, n_out) != 0) {
            conn_drop(s, c);
            return;
        }
    }
    conn_dispatch(s, c, out, n_out);
}

static void do_accept(sa_sack *s, sa_sack_event *out, int *n_out, int max_events)
{
    int k;
    for (k = 0; k < ACCEPT_BATCH && *n_out + 2 <= max_events; k++) {
        struct ucred cred;
        socklen_t clen = sizeof cred;
        uid_slot *slot;
        sack_conn *c;
        int fd;
        if (s->st.conns_open >= s->cfg.max_conns) {
            listener_set(s, 0);   /* resumes when a connection closes */
            s->pause_until = 0;
            return;
        }
        fd = accept4(s->cfg.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                sa_sack_event *e = &out[(*n_out)++];
                memset(e, 0, sizeof *e);
                e->kind = SA_SACK_EV_ACCEPT;
                e->sys_errno = errno;
                listener_set(s, 0);
                s->pause_until = now_ns() + EMFILE_PAUSE_NS;
                return;
            }
            continue;   /* e.g. ECONNABORTED: the next one */
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || clen != sizeof cred) {
            sa_sack_event *e = &out[(*n_out)++];
            memset(e, 0, sizeof *e);
            e->kind = SA_SACK_EV_PEERCRED;
            e->sys_errno = errno;
            close(fd);
            continue;
        }
        slot = uid_find(s, cred.uid);
        if (slot->count >= uid_cap(s, cred.uid)) {
            sa_sack_event *e = &out[(*n_out)++];
            close(fd);   /* never takes a slot from another uid */
            s->st.over_uid_cap++;
            memset(e, 0, sizeof *e);
            e->kind = SA_SACK_EV_UID_CAP;
            e->pid = cred.pid;
            e->uid = cred.uid;
            e->gid = cred.gid;
            e->held = slot->count;
            continue;
        }
        if (!slot->count)
            slot->uid = cred.uid;
        slot->count++;
        c = s->free_list;   /* never NULL: conns_open < max_conns */
        s->free_list = c->next;
        c->fd = fd;
        c->state = C_READING;
        c->watched = 0;
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
        c->accepted = now_ns();
        c->have = 0;
        c->need = HEADER_LEN;
        c->in = c->in_inline;
        c->out = NULL;
        c->out_len = c->out_off = 0;
        c->next = NULL;
        c->prev = s->tail;
        if (s->tail)
            s->tail->next = c;
        else
            s->head = c;
        s->tail = c;
        s->st.accepted++;
        __atomic_store_n(&s->st.conns_open, s->st.conns_open + 1, __ATOMIC_RELAXED);
        /* a client writes its request right after connecting: read it now */
        conn_read(s, c, out, n_out);
    }
}

static int64_t deadline_of(const sa_sack *s, const sack_conn *c)
{
    return c->accepted + (c->state == C_READING ? s->cfg.read_ns : s->cfg.request_ns);
}

/* Close what is past its deadline (*dropped: how many); returns the next
 * deadline (INT64_MAX: none). */
static int64_t expire(sa_sack *s, int64_t now, int *dropped)
{
    int64_t next = INT64_MAX;
    sack_conn *c = s->head;
    while (c && c->accepted + s->cfg.read_ns < next) {
        sack_conn *after = c->next;
        int64_t d = deadline_of(s, c);
        if (d <= now) {
            if (c->state == C_READING)
                s->st.read_timeouts++;
            else
                s->st.request_timeouts++;
            conn_drop(s, c);
            (*dropped)++;
        } else if (d < next) {
            next = d;
        }
        c = after;
    }
    if (!s->listening && s->pause_until != 0) {
        if (now >= s->pause_until) {
            s->pause_until = 0;
            if (s->st.conns_open < s->cfg.max_conns)
                listener_set(s, 1);
        } else if (s->pause_until < next) {
            next = s->pause_until;
        }
    }
    return next;
}

/* --- public API ---------------------------------------------------------- */

sa_sack *sa_sack_new(const sa_sack_config *cfg)
{
    sa_sack *s;
    uint32_t i, size = 16;
    int fl;
    if (!cfg || cfg->listen_fd < 0 || cfg->max_conns < 1 || cfg->max_conns > (1u << 24) ||
        cfg->max_per_uid < 1 || cfg->max_per_uid > cfg->max_conns ||
        cfg->max_request < HEADER_LEN || cfg->read_ns <= 0 || cfg->request_ns < cfg->read_ns) {
        errno = EINVAL;
        return NULL;
    }
    while (size < 2 * cfg->max_conns)
        size <<= 1;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->epfd = s->wakefd = -1;
    s->conns = calloc(cfg->max_conns, sizeof *s->conns);
    s->uids = calloc(size, sizeof *s->uids);
    s->uid_mask = size - 1;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!s->conns || !s->uids || s->epfd < 0 || s->wakefd < 0)
        goto fail;
    for (i = cfg->max_conns; i-- > 0;) {
        s->conns[i].fd = -1;
        s->conns[i].next = s->free_list;
        s->free_list = &s->conns[i];
    }
    fl = fcntl(cfg->listen_fd, F_GETFL);
    if (fl < 0 || fcntl(cfg->listen_fd, F_SETFL, fl | O_NONBLOCK) != 0)
        goto fail;
    {
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.u64 = EK_WAKE;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev) != 0)
            goto fail;
        ev.data.u64 = EK_DRIVER_WAKE;
        if (cfg->wake_fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_ADD, cfg->wake_fd, &ev) != 0)
            goto fail;
    }
    listener_set(s, 1);
    if (!s->listening)
        goto fail;
    return s;
fail:
    {
        int saved = errno;
        sa_sack_free(s);
        errno = saved;
    }
    return NULL;
}

void sa_sack_free(sa_sack *s)
{
    if (!s)
        return;
    sa_sack_clear_identities(s);
    while (s->head)
        conn_drop(s, s->head);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->wakefd >= 0)
        close(s->wakefd);
    free(s->conns);
    free(s->uids);
    free(s);
}

int sa_sack_set_uid_cap(sa_sack *s, uint32_t uid, uint32_t cap)
{
    uint32_t k;
    if (!s || cap < 1 || cap > s->cfg.max_conns)
        return SA_E_ARG;
    for (k = 0; k < s->n_caps; k++) {
        if (s->cap_uid[k] == uid) {
            s->cap_val[k] = cap;
            return SA_OK;
        }
    }
    if (s->n_caps >= MAX_UID_CAPS)
        return SA_E_SERVE_NOMEM;
    s->cap_uid[s->n_caps] = uid;
    s->cap_val[s->n_caps++] = cap;
    return SA_OK;
}

int sa_sack_set_create(sa_sack *s, int on, const void *keyset, int64_t ttl, int64_t ver,
                       const char *cluster, size_t cluster_len, const char *host,
                       size_t host_len)
{
    if (!s)
        return SA_E_ARG;
    if (!on || !keyset) {
        s->create_on = 0;
        s->keyset = NULL;
        return SA_OK;
    }
    if (ttl <= 0 || ver < 0 || ver > 0xFFFF || cluster_len > STR_MAX || host_len > STR_MAX ||
        !host || (cluster_len && !cluster))
        return SA_E_ARG;
    s->keyset = keyset;
    s->ttl = ttl;
    s->ver = ver;
    s->has_cluster = cluster != NULL;
    s->cluster_len = cluster ? cluster_len : 0;
    if (cluster_len)
        memcpy(s->cluster, cluster, cluster_len);
    s->cluster[s->cluster_len] = 0;
    s->host_len = host_len;
    if (host_len)
        memcpy(s->host, host, host_len);
    s->host[host_len] = 0;
    s->create_on = 1;
    return SA_OK;
}

void sa_sack_clear_identities(sa_sack *s)
{
    size_t k;
    if (!s)
        return;
    for (k = 0; k < SA_SACK_ID_SLOTS; k++)
        id_slot_clear(&s->ids[k]);
}

int sa_sack_set_identities(sa_sack *s, int on)
{
    if (!s)
        return SA_E_ARG;
    sa_sack_clear_identities(s);
    s->ids_on = on ? 1 : 0;
    return SA_OK;
}

int sa_sack_set_identity(sa_sack *s, uint32_t uid, uint32_t gid, const char *members,
                         size_t members_len, int64_t ttl_ns)
{
    id_slot *e;
    char *copy = NULL;
    int64_t now;
    if (!s || !s->ids_on || ttl_ns <= 0 || (members_len && !members))
        return SA_E_ARG;
    if (members_len) {
        copy = malloc(members_len);
        if (!copy)
            return SA_E_SERVE_NOMEM;
        memcpy(copy, members, members_len);
    }
    e = id_slot_of(s, uid, gid);
    id_slot_clear(e);
    now = now_ns();
    e->uid = uid;
    e->gid = gid;
    e->members = copy;
    e->members_len = members_len;
    e->expires = ttl_ns > INT64_MAX - now ? INT64_MAX : now + ttl_ns;
    return SA_OK;
}

int sa_sack_poll(sa_sack *s, int timeout_ms, sa_sack_event *out, int max_events)
{
    struct epoll_event evs[EPOLL_BATCH];
    int64_t start = now_ns(), limit;
    int n_out = 0;
    if (!s || !out || max_events < 2) {
        errno = EINVAL;
        return -1;
    }
    limit = timeout_ms < 0 ? INT64_MAX : start + (int64_t)timeout_ms * 1000000LL;
    for (;;) {
        int64_t now = now_ns(), next, wait_ns;
        int n, k, wait_ms, woken = 0, dropped = 0;
        /* deadlines only between rounds without events: a connection handed up
         * in this call keeps its buffer until the driver has seen it. A round
         * that closed connections returns, for the driver to see the counts. */
        next = expire(s, now, &dropped);
        if (dropped)
            return 0;
        if (next > limit)
            next = limit;
        wait_ns = next == INT64_MAX ? -1 : next - now;
        if (wait_ns < 0 && next != INT64_MAX)
            wait_ns = 0;
        wait_ms = wait_ns < 0 ? -1 : wait_ns > 3600000LL * 1000000LL ? 3600000
                : (int)((wait_ns + 999999) / 1000000);
        n = epoll_wait(s->epfd, evs, EPOLL_BATCH, wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                return 0;   /* a signal: let the driver run its handler */
            return -1;
        }
        for (k = 0; k < n; k++) {
            uint64_t key = evs[k].data.u64;
            if (key == EK_WAKE) {
                uint64_t v;
                if (read(s->wakefd, &v, sizeof v) < 0) {
                    /* nothing pending: a spurious wakeup */
                }
                woken = 1;
            } else if (key == EK_DRIVER_WAKE) {
                uint8_t drain[256];
                while (read(s->cfg.wake_fd, drain, sizeof drain) > 0) {
                    /* empty it: one wakeup however many writes */
                }
                woken = 1;
            } else if (key == EK_LISTEN) {
                if (n_out + 2 <= max_events)
                    do_accept(s, out, &n_out, max_events);
            } else {
                sack_conn *c = &s->conns[key];
                if (n_out + 2 > max_events)
                    continue;   /* level-triggered: it comes back next time */
                if (c->state == C_READING)
                    conn_read(s, c, out, &n_out);
                else if (c->state == C_WRITING)
                    conn_write(s, c);
            }
        }
        if (n_out > 0 || woken)
            return n_out;
        if (now_ns() >= limit)
            return 0;
    }
}

int sa_sack_wakeup(sa_sack *s)
{
    uint64_t one = 1;
    if (!s)
        return SA_E_ARG;
    if (write(s->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
        return SA_E_SERVE_SYS;
    return SA_OK;
}

static sack_conn *waiting(sa_sack *s, uint64_t id)
{
    uint64_t idx = id & 0xFFFFFFFFu;
    sack_conn *c;
    if (idx >= s->cfg.max_conns)
        return NULL;
    c = &s->conns[idx];
    if (c->state != C_WAITING || c->gen != (uint32_t)(id >> 32))
        return NULL;
    return c;
}

int sa_sack_reply(sa_sack *s, uint64_t id, const uint8_t *reply, size_t len)
{
    sack_conn *c;
    if (!s || (!reply && len))
        return SA_E_ARG;
    c = waiting(s, id);
    if (!c)
        return SA_E_SERVE_CONN;
    if (len <= INLINE_OUT) {
        c->out = c->out_inline;
    } else {
        c->out = malloc(len);
        if (!c->out) {
            c->out = NULL;
            conn_drop(s, c);
            return SA_E_SERVE_NOMEM;
        }
    }
    if (len)
        memcpy(c->out, reply, len);
    c->out_len = len;
    c->out_off = 0;
    c->state = C_WRITING;
    conn_write(s, c);
    return SA_OK;
}

int sa_sack_close(sa_sack *s, uint64_t id)
{
    sack_conn *c;
    if (!s)
        return SA_E_ARG;
    c = waiting(s, id);
    if (!c)
        return SA_E_SERVE_CONN;
    conn_drop(s, c);
    return SA_OK;
}

void sa_sack_get_stats(const sa_sack *s, sa_sack_stats *out)
{
    if (s && out)
        *out = s->st;
}

uint64_t sa_sack_open_count(const sa_sack *s)
{
    return s ? __atomic_load_n(&s->st.conns_open, __ATOMIC_RELAXED) : 0;
}

size_t sa_sack_uid_counts(const sa_sack *s, uint32_t *uids, uint32_t *counts, size_t max)
{
    size_t n = 0;
    uint32_t i;
    if (!s)
        return 0;
    for (i = 0; i <= s->uid_mask; i++) {
        if (!s->uids[i].count)
            continue;
        if (n < max && uids && counts) {
            uids[n] = s->uids[i].uid;
            counts[n] = s->uids[i].count;
        }
        n++;
    }
    return n;
}
