/* The serving core's shared state (see serve.h for what the core does): the
 * connection table, the per-IP counts, the buffer pool and the core itself,
 * used by its units: serve_conn.c (lists, timers, buffers, connections,
 * writing), serve_frame.c (reading and verifying frames), serve_upstream.c
 * (relaying to an upstream server) and serve.c (accepting, the loop, the
 * public API). Not part of the cffi interface. */
#ifndef SA_SERVE_INT_H
#define SA_SERVE_INT_H

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
/* identities the driver approved (sa_serve_approve_identity): a direct-mapped table of
 * SHA-256 digests of the raw "id" objects, indexed by their first two bytes */
#define ID_SLOTS 1024
#define EPOLL_BATCH 256
#define ACCEPT_BATCH 64
#define RESPONSE_SLURM_RC 8001
#define RC_AUTH_ERROR 1007
#define RC_BACKOFF 1804          /* SLURMCTLD_COMMUNICATIONS_BACKOFF */
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
    uint8_t objects;                       /* sc_result.objects the driver must check */
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
    uint8_t id_digest[32];                 /* SHA-256 of the raw "id" (objects SA_SERVE_OBJ_ID) */
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
    uint8_t ids[ID_SLOTS][32];             /* approved identities (all zero: empty) */
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
    /* the configured upstream (sa_serve_set_upstream) and auto-forward */
    sa_serve_addr upstream;
    unsigned up_source;
    int auto_forward;
    sa_rl *rl;
    struct epoll_event evs[EPOLL_BATCH];
};

/* The slot of an identity's digest in sa_serve.ids. */
static inline size_t sv_id_slot(const uint8_t *digest)
{
    return ((size_t)digest[0] | (size_t)digest[1] << 8) & (ID_SLOTS - 1);
}

#endif
