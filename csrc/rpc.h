/* One Slurm RPC on a stream socket: uint32 total_len, header, auth section
 * (unless NO_AUTH_CRED), body. sa_rpc_parse checks every length against the
 * bytes present and returns offsets into the caller's buffer (the body is a
 * view, never copied); sa_rpc_pack writes the same format. */
#ifndef SA_RPC_H
#define SA_RPC_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
#define SA_PROTOCOL_VERSION      0x2D00   /* 26.05 */
#define SA_PROTOCOL_OLDEST_DELTA 0x0300   /* a daemon accepts its version and the three before */

/* header flags */
#define SA_RPC_GLOBAL_AUTH_KEY       0x0001
#define SA_RPC_SLURMDBD_CONNECTION   0x0002
#define SA_RPC_MSG_KEEP_BUFFER       0x0004
#define SA_RPC_USE_BCAST_NETWORK     0x0010
#define SA_RPC_CTLD_QUEUE_PROCESSING 0x0020
#define SA_RPC_NO_AUTH_CRED          0x0040
#define SA_RPC_PACK_ADDRS            0x0080

/* auth plugin ids */
#define SA_AUTH_NONE  100
#define SA_AUTH_MUNGE 101
#define SA_AUTH_JWT   102
#define SA_AUTH_SLURM 103

#define SA_AF_UNSPEC 0
#define SA_AF_INET   2
#define SA_AF_INET6  10

/* Status codes 65-79 (wire range 60-99): frames. */
#define SA_E_RPC_PREFIX_SHORT  65  /* fewer than 4 bytes: no length prefix */
#define SA_E_RPC_TOO_LARGE     66  /* total_len above the configured cap */
#define SA_E_RPC_TRUNCATED     67  /* total_len says more bytes than are present */
#define SA_E_RPC_TRAILING      68  /* bytes present beyond total_len */
#define SA_E_RPC_VERSION       69  /* protocol version outside the accepted range */
#define SA_E_RPC_HEADER_SHORT  70  /* header (incl. forward/orig_addr) cut short */
#define SA_E_RPC_DBD_FLAG      71  /* SLURMDBD_CONNECTION flag disagrees with the framing */
#define SA_E_RPC_DBD_MSG_TYPE  72  /* slurmdbd msg_type prefix differs from the header's */
#define SA_E_RPC_RET_LIST      73  /* ret_cnt > 0: per-node reply lists are not supported */
#define SA_E_RPC_ADDR6_LEN     74  /* AF_INET6 orig_addr is not exactly 16 bytes */
#define SA_E_RPC_AUTH_SHORT    75  /* auth section cut short */
#define SA_E_RPC_AUTH_PLUGIN   76  /* unknown auth plugin id */
#define SA_E_RPC_BODY_SHORT    77  /* body_length larger than the bytes left */
#define SA_E_RPC_BODY_TRAILING 78  /* bytes left after body_length */
#define SA_E_RPC_OPTIONS       79  /* invalid parse/pack options (e.g. version range) */

typedef struct {
    uint16_t min_version;   /* accepted versions, inclusive */
    uint16_t max_version;
    uint32_t max_frame;     /* cap on total_len (bytes after the prefix) */
    int length_prefix;      /* the data starts with uint32 total_len */
    int slurmdbd;           /* a uint16 msg_type precedes the header (slurmdbd framing) */
} sa_rpc_opts;

typedef struct {
    uint32_t total_len;         /* bytes after the prefix (= frame bytes without a prefix) */
    size_t header_off;          /* where the header starts (after prefix / dbd msg_type) */
    uint16_t version;
    uint16_t flags;
    uint16_t msg_type;
    uint32_t body_length;
    uint16_t forward_cnt;
    size_t fwd_nodelist_off, fwd_nodelist_len;   /* packstr views: len counts the NUL; 0 = NULL */
    uint32_t fwd_timeout;
    uint16_t fwd_tree_width;
    int fwd_has_net_cred;       /* PACK_ADDRS: net_cred present */
    size_t fwd_net_cred_off, fwd_net_cred_len;
    uint16_t fwd_tree_depth;
    uint16_t ret_cnt;
    uint16_t addr_family;
    uint32_t addr_v4;           /* AF_INET: the uint32 as packed */
    size_t addr_v6_off;         /* AF_INET6: 16 bytes at data + addr_v6_off */
    uint16_t addr_port;         /* the uint16 as packed */
    size_t auth_off;            /* where the auth section starts (== body_off without one) */
    int has_auth;
    uint32_t auth_plugin;
    size_t cred_off, cred_len;  /* packstr views, len counts the NUL; 0 = NULL */
    size_t user_off, user_len;  /* auth/jwt username */
    size_t body_off;            /* body = data[body_off .. body_off + body_length) */
    size_t err_off;             /* on failure: offset of the field that failed */
} sa_rpc_frame;

int sa_rpc_parse(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f);

/* What sa_rpc_pack writes. String pointers NULL = NULL string; lengths
 * exclude the NUL. ret_cnt is always packed as 0. */
typedef struct {
    uint16_t version;
    uint16_t flags;
    uint16_t msg_type;
    uint16_t forward_cnt;
    const uint8_t *fwd_nodelist; size_t fwd_nodelist_len;
    uint32_t fwd_timeout;
    uint16_t fwd_tree_width;
    const uint8_t *fwd_net_cred; size_t fwd_net_cred_len;   /* packed only with PACK_ADDRS */
    uint16_t fwd_tree_depth;
    uint16_t addr_family;
    uint32_t addr_v4;
    const uint8_t *addr_v6;     /* 16 bytes for AF_INET6 */
    uint16_t addr_port;
    uint32_t auth_plugin;       /* ignored with NO_AUTH_CRED */
    const uint8_t *cred; size_t cred_len;
    const uint8_t *user; size_t user_len;
    const uint8_t *body; size_t body_len;
    int length_prefix;
} sa_rpc_msg;

/* Pack m into out[0..cap); out == NULL measures (*outlen = bytes needed). */
int sa_rpc_pack(const sa_rpc_msg *m, uint8_t *out, size_t cap, size_t *outlen);
/* cffi:end */

#endif
