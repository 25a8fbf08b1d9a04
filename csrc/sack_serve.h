/* The SACK kiosk's serving loop in C (what SackServer runs with native=True).
 *
 * One connection per request, on a unix stream socket the driver has bound
 * and listens on: accept (nonblocking, up to 64 per wakeup; paused while
 * max_conns are open, and for 100 ms after EMFILE/ENFILE/ENOBUFS/ENOMEM),
 * SO_PEERCRED, the per-uid cap (a connection over its uid's cap is closed at
 * accept without taking a slot), then the request read exactly as the Python
 * loop reads it: the 10-byte header (uint16 version, uint32 length, uint32
 * rpc) checked first (MIN_LENGTH <= length <= max_request - 2, rpc
 * SACK_CREATE or SACK_VERIFY, else closed and counted as a bad request), the
 * body read up to the declared length and never past it, a read deadline
 * from accept until the request is whole and a request deadline (from
 * accept) for the whole exchange.
 *
 * A SACK_CREATE whose body is well formed (uint32 r_uid, packmem data ending
 * the body) is answered in C when the driver enabled it (sa_sack_set_create):
 * the credential of sa_create_credential (context "sack", the peer's uid and
 * gid, the request's r_uid and data as payload, the clock's iat) as a packstr
 * reply, then closed. With identities on (sa_sack_set_identities,
 * AuthInfo=use_client_ids), C signs only for a peer (uid, gid) whose "id"
 * member the driver has put in the identity cache, while that entry is fresh.
 * Everything else -- SACK_VERIFY, a SACK_CREATE C cannot sign or decode, one
 * without a cached identity, or every SACK_CREATE while creating in C is off -- is
 * handed up as an SA_SACK_EV_REQUEST event; the driver answers it with
 * sa_sack_reply or sa_sack_close (the connection is not read meanwhile and
 * its request deadline keeps running).
 *
 * Not thread-safe: one thread calls every function (the binding drops the
 * GIL around sa_sack_poll); sa_sack_wakeup may be called from any thread.
 */
#ifndef SA_SACK_SERVE_H
#define SA_SACK_SERVE_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
/* Event kinds. */
#define SA_SACK_EV_REQUEST   1  /* a whole request for the driver: answer (reply / close) */
#define SA_SACK_EV_UID_CAP   2  /* closed at accept: its uid holds `held` connections already */
#define SA_SACK_EV_BAD_RPC   3  /* closed: the header names another rpc (rpc set) */
#define SA_SACK_EV_PEERCRED  4  /* closed: SO_PEERCRED failed (sys_errno) */
#define SA_SACK_EV_ACCEPT    5  /* accept failed for lack of resources (sys_errno): paused */

typedef struct {
    int listen_fd;            /* bound and listening; made nonblocking, never closed here */
    int wake_fd;              /* -1, or a nonblocking descriptor the driver writes to (from
                                 any thread) to make sa_sack_poll return; drained here,
                                 never closed here */
    uint32_t max_conns;       /* connections held at once */
    uint32_t max_per_uid;     /* the default per-uid cap (1..max_conns) */
    uint32_t max_request;     /* largest request, version to end (>= 10) */
    int64_t read_ns;          /* accept -> whole request */
    int64_t request_ns;       /* accept -> reply written (>= read_ns) */
} sa_sack_config;

typedef struct {
    uint64_t conn_id;         /* for sa_sack_reply / sa_sack_close (REQUEST only) */
    int32_t kind;             /* SA_SACK_EV_* */
    int32_t sys_errno;
    int32_t pid;
    uint32_t uid, gid;
    uint32_t held;            /* UID_CAP: connections its uid holds */
    uint32_t rpc;
    uint16_t version;
    const uint8_t *body;      /* REQUEST: the body after the header; valid until answered */
    size_t body_len;
} sa_sack_event;

typedef struct {
    uint64_t accepted;
    uint64_t conns_open;
    uint64_t over_uid_cap;
    uint64_t read_timeouts;
    uint64_t request_timeouts;
    uint64_t bad_requests;
    uint64_t created;         /* SACK_CREATE answered in C */
    uint64_t handed_up;       /* SA_SACK_EV_REQUEST events */
    uint64_t id_hits;         /* SACK_CREATE signed with a cached identity */
} sa_sack_stats;

typedef struct sa_sack sa_sack;

/* NULL on failure (bad config: errno EINVAL; or out of memory/descriptors). */
sa_sack *sa_sack_new(const sa_sack_config *cfg);
/* Closes every connection, the epoll and wakeup descriptors (not the listener). */
void sa_sack_free(sa_sack *s);

/* Give uid its own cap (1..max_conns); SA_E_ARG when out of range, SA_E_SERVE_NOMEM
 * when the table is full (at most 64 uids). */
int sa_sack_set_uid_cap(sa_sack *s, uint32_t uid, uint32_t cap);

/* Answer well-formed SACK_CREATE requests in C (on = 1) with keyset (a const
 * sc_keyset *, void here for the cffi cdef order; it and what it points to must
 * stay valid until the next call or sa_sack_free), ttl, protocol version ver,
 * cluster (NULL: none) and host, both copied (at most 255 bytes each). on = 0 (or
 * keyset NULL): every SACK_CREATE is handed up. */
int sa_sack_set_create(sa_sack *s, int on, const void *keyset, int64_t ttl, int64_t ver,
                       const char *cluster, size_t cluster_len, const char *host,
                       size_t host_len);

/* Identities (use_client_ids): on = 1, every SACK_CREATE is signed in C only
 * with the "id" member cached for its peer's (uid, gid), and handed up
 * otherwise; on = 0 (the default): no "id", the cache is not used. Turning
 * it either way empties the cache. */
int sa_sack_set_identities(sa_sack *s, int on);
/* Cache the extra members (records as sa_create_credential takes them, e.g.
 * "id\0{...}\0"; empty: signed without "id", as for a failed lookup) for
 * (uid, gid) for ttl_ns from now (copied). The cache holds SA_SACK_ID_SLOTS
 * entries, one per hash slot: a newer entry replaces the one in its slot.
 * SA_E_ARG when identities are off or ttl_ns <= 0, SA_E_SERVE_NOMEM when the
 * copy cannot be made. */
#define SA_SACK_ID_SLOTS 1024
int sa_sack_set_identity(sa_sack *s, uint32_t uid, uint32_t gid, const char *members,
                         size_t members_len, int64_t ttl_ns);
/* Forget every cached identity (e.g. after a reload). */
void sa_sack_clear_identities(sa_sack *s);

/* Run the loop for up to timeout_ms (< 0: no limit) or until at least one
 * event is ready; returns the number written to out (0 on timeout, on a
 * wakeup or when a signal interrupted the wait), or -1 with errno set. */
int sa_sack_poll(sa_sack *s, int timeout_ms, sa_sack_event *out, int max_events);
/* From any thread: make a blocked sa_sack_poll return. */
int sa_sack_wakeup(sa_sack *s);

/* Answer a REQUEST: reply[0..len) is copied and written, then the connection
 * is closed. SA_E_SERVE_CONN for a connection closed meanwhile (its deadline
 * passed), SA_E_SERVE_NOMEM when the copy cannot be made (then closed). */
int sa_sack_reply(sa_sack *s, uint64_t conn_id, const uint8_t *reply, size_t len);
/* Close a REQUEST's connection without a reply. */
int sa_sack_close(sa_sack *s, uint64_t conn_id);

void sa_sack_get_stats(const sa_sack *s, sa_sack_stats *out);
/* Connections open now; the one call another thread may make while the loop
 * runs (an atomic read of the count; the caller keeps s alive). */
uint64_t sa_sack_open_count(const sa_sack *s);
/* The uids holding connections now and their counts, at most max of them;
 * returns how many there are in all. */
size_t sa_sack_uid_counts(const sa_sack *s, uint32_t *uids, uint32_t *counts, size_t max);
/* cffi:end */

#endif
