/* A single-threaded epoll serving core for Slurm RPCs (one RPC per
 * connection, as Slurm clients and slurmctld do).
 *
 * The core accepts connections, reads each frame incrementally and, for
 * auth/slurm (plugin 103), verifies the credential as soon as the header and
 * auth section are in: a forged frame costs only the bytes up to the end of
 * its token, never its body. A verified credential then has its body read and
 * its body hash checked (the same three steps, in the same order, as
 * sa_verify_frame_slurm: sa_rpc_parse, sc_verify, sa_body_hash_check).
 * Frames with another plugin (munge, jwt, none) or no auth section are read
 * whole (within the caps) and handed up unverified, marked with their plugin.
 * Refused credentials can be answered (rc 1007) or dropped inside the core,
 * so a forged flood never reaches the driver per frame; they are counted.
 *
 * sa_serve_poll() runs the loop until it has at least one event or the
 * timeout passes; the driver answers with sa_serve_reply() (reply bytes are
 * copied; partial writes finish on EPOLLOUT), sa_serve_forward() (relay the
 * frame byte for byte to an upstream server and its reply back to the
 * client) or sa_serve_close(). Not thread-safe: one thread calls every
 * function (the Python binding drops the GIL around sa_serve_poll only).
 *
 * Bounds: total connections, connections per peer IP, one small buffer per
 * connection from a freelist (grown to the frame's size only for a frame
 * whose credential verified or that is handed up), a cap on all buffered
 * bytes, deadlines for the header+auth section, for the rest of the frame,
 * for writing the reply and for upstream connect/reply. A reserve fd lets
 * the core accept-and-close when the process is out of descriptors.
 */
#ifndef SA_SERVE_H
#define SA_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"
#include "rpc.h"
#include "slurmcred.h"

/* cffi:begin */
/* Status codes 90-99 (wire range 60-99): the serving core. */
#define SA_E_SERVE_SYS        90  /* a system call failed (errno in the event / sa_serve_errno) */
#define SA_E_SERVE_CONN       91  /* no such connection (closed, or the id is stale) */
#define SA_E_SERVE_STATE      92  /* the connection is not waiting for an answer */
#define SA_E_SERVE_NOMEM      93  /* allocation failed or the buffered-bytes cap was reached */
#define SA_E_SERVE_UP_CLOSED  94  /* upstream closed before its whole reply */
#define SA_E_SERVE_UP_TIMEOUT 95  /* upstream did not connect / reply in time */
#define SA_E_SERVE_UP_FRAME   96  /* upstream reply is larger than max_frame */
#define SA_E_SERVE_LISTENERS  97  /* too many listeners */
#define SA_E_SERVE_HEAD_LONG  98  /* header + auth section longer than max_head */

/* What the core does with a frame whose auth/slurm credential (or body hash)
 * fails. A frame that does not parse is always closed without a reply. */
#define SA_SERVE_REFUSE_RC     0  /* reply RESPONSE_SLURM_RC rc 1007, then close (slurmctld) */
#define SA_SERVE_REFUSE_CLOSE  1  /* close without a reply */
#define SA_SERVE_REFUSE_REPORT 2  /* hand it up as SA_SERVE_EV_REFUSED (the driver answers) */

/* Event kinds. */
#define SA_SERVE_EV_VERIFIED     1  /* auth/slurm frame verified (uid, gid set); answer it */
#define SA_SERVE_EV_UNVERIFIED   2  /* other plugin / no auth section: frame handed up as is */
#define SA_SERVE_EV_REFUSED      3  /* credential refused (status), REFUSE_REPORT only */
#define SA_SERVE_EV_CLOSED       4  /* a connection waiting for an answer was reset / hung up
                                       (one that only shut down its write side still waits) */
#define SA_SERVE_EV_FORWARD_DONE 5  /* upstream reply relayed (upstream_ns); the core closes */
#define SA_SERVE_EV_FORWARD_ERROR 6 /* upstream failed (status, sys_errno); answer or close */
#define SA_SERVE_EV_RATE_LIMITED 7  /* auto-forward: an over-limit request the core answered
                                       (rc 1804) that rl_log_freq says to log; nothing to do */

/* sa_serve_event.objects: the bits of sc_result.objects ("id" 1, "sbcast" 2, "net" 4). */
#define SA_SERVE_OBJ_ID 1

/* Address families in sa_serve_addr / events. */
#define SA_SERVE_AF_UNIX  1
#define SA_SERVE_AF_INET  2
#define SA_SERVE_AF_INET6 10

/* sa_serve_forward flags */
#define SA_SERVE_FWD_BIND_PEER   1  /* bind the upstream socket to the client's own IP */
#define SA_SERVE_FWD_TRANSPARENT 2  /* set IP_TRANSPARENT before binding (needs CAP_NET_ADMIN) */

/* Whose address the configured upstream sees (sa_serve_set_upstream). A client of
 * another address family than the upstream's, or a unix-socket client, is relayed
 * from the core's own address. */
#define SA_SERVE_SRC_LOOPBACK 1  /* loopback clients: bind their own address (unprivileged) */
#define SA_SERVE_SRC_REMOTE   2  /* other clients: their address, with IP_TRANSPARENT */
#define SA_SERVE_SRC_ALL      4  /* every client: its address, with IP_TRANSPARENT */

typedef struct {
    int family;               /* SA_SERVE_AF_* */
    uint16_t port;            /* host order */
    uint8_t addr[16];         /* network order; 4 bytes for AF_INET */
    char path[108];           /* AF_UNIX: NUL-terminated path */
} sa_serve_addr;

typedef struct {
    uint32_t max_conns;       /* open client connections (accept-and-close above it) */
    uint32_t max_per_ip;      /* open connections from one peer IP; 0 = no limit */
    uint32_t max_frame;       /* largest total_len accepted */
    uint32_t max_head;        /* header + auth section must end within this many bytes */
    uint32_t buf_size;        /* the pooled per-connection buffer */
    uint32_t pool_keep;       /* free buffers kept for reuse */
    uint64_t max_buffered;    /* all connection buffers together */
    uint32_t head_ms;         /* accept -> header+auth complete */
    uint32_t body_ms;         /* header+auth -> whole frame */
    uint32_t write_ms;        /* reply queued -> written */
    uint32_t up_connect_ms;   /* upstream connect */
    uint32_t up_reply_ms;     /* request written upstream -> whole reply read */
    uint16_t min_version;     /* accepted protocol versions */
    uint16_t max_version;
    int refuse_mode;          /* SA_SERVE_REFUSE_* */
    int report_forward_done;  /* 1: an SA_SERVE_EV_FORWARD_DONE per relayed reply */
    int defer_accept_s;       /* TCP_DEFER_ACCEPT on TCP listeners (0 = off) */
    int backlog;
} sa_serve_config;

typedef struct {
    uint64_t conn_id;         /* stable while the connection lives; never reused soon */
    int32_t kind;             /* SA_SERVE_EV_* */
    int32_t status;           /* SA_OK or the verifier's / core's status code */
    int32_t sys_errno;        /* errno behind SA_E_SERVE_SYS, else 0 */
    uint32_t plugin;          /* auth plugin id; 0 = no auth section */
    uint32_t uid, gid;        /* EV_VERIFIED only */
    uint32_t objects;         /* EV_VERIFIED: the token's "id"/"sbcast"/"net" objects that the
                                 policy reads (sc_result.objects bits), unless the "id" alone
                                 is one the driver approved; the core checks them as JSON only,
                                 so the driver verifies such a frame itself */
    uint8_t id_digest[32];    /* EV_VERIFIED with objects == 1 ("id" only): SHA-256 of the raw
                                 "id" object, for sa_serve_approve_identity */
    uint16_t msg_type, version, flags;
    uint16_t listener;        /* index of the listener that accepted it */
    int peer_family;          /* SA_SERVE_AF_*; unix peers carry no address */
    uint16_t peer_port;
    uint8_t peer_addr[16];
    const uint8_t *frame;     /* the whole frame, length prefix included; valid until */
    size_t frame_len;         /* the connection is answered, forwarded or closed */
    size_t cred_off, cred_len;  /* packstr view of the credential (len counts the NUL) */
    size_t user_off, user_len;  /* auth/jwt username view */
    size_t body_off;
    uint32_t body_len;
    uint32_t reply_len;       /* FORWARD_DONE: bytes relayed to the client */
    int64_t upstream_ns;      /* FORWARD_*: time from forward call to reply / error */
} sa_serve_event;

typedef struct {
    uint64_t accepted;
    uint64_t conns_open;
    uint64_t conns_high;
    uint64_t frames_verified;
    uint64_t frames_refused;      /* credential or body hash failed */
    uint64_t frames_malformed;    /* did not parse: closed */
    uint64_t frames_unverified;   /* handed up: another plugin or no auth section */
    uint64_t frames_munge, frames_jwt, frames_none;
    uint64_t refused_answered;    /* refusals answered with rc 1007 inside the core */
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t buffered;            /* bytes in connection buffers now */
    uint64_t buffered_high;
    uint64_t drop_conn_cap;
    uint64_t drop_ip_cap;
    uint64_t drop_emfile;
    uint64_t drop_nomem;
    uint64_t drop_too_large;
    uint64_t drop_head_long;      /* header+auth longer than max_head */
    uint64_t drop_head_timeout;
    uint64_t drop_body_timeout;
    uint64_t drop_write_timeout;
    uint64_t drop_peer_closed;    /* client left before its frame / reply was done */
    uint64_t forwarded;
    uint64_t forward_done;
    uint64_t forward_errors;
    uint64_t auto_forwarded;      /* forwarded by the core itself (sa_serve_set_auto_forward) */
    uint64_t rate_limited;        /* answered rc 1804 by the core (over the rate limit) */
} sa_serve_stats;

typedef struct sa_serve sa_serve;

/* Fill *cfg with the defaults (e.g. 4096 connections, 64 per IP, 1 MiB
 * frames, 16 KiB header+auth, 2 s head / 10 s body deadlines). */
void sa_serve_config_init(sa_serve_config *cfg);

/* NULL on failure (bad config or out of memory/descriptors). */
sa_serve *sa_serve_new(const sa_serve_config *cfg);
/* Closes every listener, connection and upstream socket (unlinks nothing). */
void sa_serve_free(sa_serve *srv);

/* Listen on host (numeric IPv4/IPv6; "" = 0.0.0.0) : port (0 = ephemeral);
 * *bound_port (may be NULL) receives the port actually bound. */
int sa_serve_listen_tcp(sa_serve *srv, const char *host, uint16_t port, uint16_t *bound_port);
/* Listen on a unix stream socket at path (must not exist). */
int sa_serve_listen_unix(sa_serve *srv, const char *path);
/* Close every listener (no new connection is accepted); connections already open are
 * served to the end. For a drain before exit. */
int sa_serve_stop_listening(sa_serve *srv);

/* Keys and policy for auth/slurm frames: ks is a const sc_keyset *, pol a
 * const sc_policy * (void here because the cffi cdef is concatenated in
 * header-name order and this header sorts before slurmcred.h). *ks is copied,
 * but everything it points to (keys, key material, kid/header bytes) must
 * stay valid until the next set_keys or sa_serve_free; *pol is copied.
 * bh_flags: SA_BH_*. Until keys are set, every auth/slurm credential is
 * refused with SC_E_NO_KEY. */
int sa_serve_set_keys(sa_serve *srv, const void *ks, const void *pol, unsigned bh_flags);

/* The driver verified a frame whose token carries an "id" object (an EV_VERIFIED event with
 * objects == 1) and found the identity well formed: a later token whose "id" has the same
 * bytes (digest: the event's id_digest) is then treated as if it had none (no event of its
 * own, auto-forward). Identities are kept in a table of 1024 slots; one may replace another,
 * which then comes up once more. */
int sa_serve_approve_identity(sa_serve *srv, const uint8_t *digest);

/* Run the loop for up to timeout_ms (< 0: no limit) or until at least one
 * event is ready; returns the number written to out (0 on timeout, on a
 * wakeup or when a signal interrupted the wait), or -1 with errno set. */
int sa_serve_poll(sa_serve *srv, int timeout_ms, sa_serve_event *out, int max_events);
/* From any thread: make a blocked sa_serve_poll return. */
int sa_serve_wakeup(sa_serve *srv);

/* Send reply[0..len) on conn_id (copied; the rest goes out on EPOLLOUT).
 * close_after = 1: close once written (one RPC per connection); 0: read the
 * next frame on the same connection (same conn_id; bytes already read past
 * this frame are kept). The event's frame pointer is invalid afterwards. */
int sa_serve_reply(sa_serve *srv, uint64_t conn_id, const uint8_t *reply, size_t len,
                   int close_after);
int sa_serve_close(sa_serve *srv, uint64_t conn_id);

/* Relay the connection's frame to upstream (TCP or unix) byte for byte and
 * the upstream's length-prefixed reply back to the client, then close both.
 * src (may be NULL): bind the upstream socket to this address first (port 0
 * picks one); SA_SERVE_FWD_BIND_PEER binds to the client's IP instead. An
 * upstream that fails yields SA_SERVE_EV_FORWARD_ERROR and the connection
 * waits for an answer again (the frame pointer of the first event is no
 * longer valid). */
int sa_serve_forward(sa_serve *srv, uint64_t conn_id, const sa_serve_addr *upstream,
                     const sa_serve_addr *src, unsigned flags);

/* The upstream sa_serve_forward relays to when its upstream is NULL (src and flags
 * are then chosen by source, SA_SERVE_SRC_*), and that auto-forward uses. */
int sa_serve_set_upstream(sa_serve *srv, const sa_serve_addr *upstream, unsigned source);
/* on: the core forwards every verified auth/slurm frame to the configured upstream
 * itself, without an event, after the rate limit rl (NULL: none, see ratelimit.h):
 * an over-limit request is answered RESPONSE_SLURM_RC rc 1804 and closed (an
 * SA_SERVE_EV_RATE_LIMITED event when it is to be logged). Frames of other plugins
 * are still handed up. rl must outlive its use (set it again before freeing it). */
int sa_serve_set_auto_forward(sa_serve *srv, int on, sa_rl *rl);

void sa_serve_get_stats(const sa_serve *srv, sa_serve_stats *out);

/* The upstream time of every relayed reply (from forwarding the frame to the
 * whole reply in), counted into buckets by the core itself, so that no event
 * per request is needed for it. bounds_ns: n ascending upper bounds (n <=
 * SA_SERVE_LAT_MAX_BUCKETS); setting them clears the counts. */
#define SA_SERVE_LAT_MAX_BUCKETS 32
int sa_serve_set_latency_buckets(sa_serve *srv, const uint64_t *bounds_ns, uint32_t n);
/* counts[0..n]: replies per bucket (not cumulative; counts[n]: above the last
 * bound), *sum_ns their total time; n as set (0 before). Returns n. */
uint32_t sa_serve_get_latency(const sa_serve *srv, uint64_t *counts, uint64_t *sum_ns);
/* errno of the last SA_E_SERVE_SYS returned by a call. */
int sa_serve_errno(const sa_serve *srv);

/* The incremental frame reader the core runs on every read, exposed for
 * tests and fuzzing. data[0..have) is a prefix of one length-prefixed frame.
 * Returns 1 when more bytes are needed to see the end of the auth section,
 * 0 when header and auth section are complete within the prefix (*f filled:
 * total_len, header fields, auth views, body_off), or a status when the
 * prefix already proves the frame invalid (whatever follows). */
int sa_serve_parse_head(const uint8_t *data, size_t have, const sa_rpc_opts *o,
                        uint32_t max_head, sa_rpc_frame *f);
/* cffi:end */

#endif
