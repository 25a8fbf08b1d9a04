#include "rpc.h"

#include <string.h>

#include "pack.h"
#include "sa_status.h"

/* A primitive that ran out of bytes means "this section is cut short"; the
 * other primitive failures (1 GiB limit, NUL rules) keep their own codes. */
#define TRY(expr, short_code)                                            \
    do {                                                                 \
        size_t at_ = r.off;                                              \
        int rc_ = (expr);                                                \
        if (rc_ != SA_OK) {                                              \
            f->err_off = base + at_;                                     \
            return rc_ == SA_E_PACK_SHORT ? (short_code) : rc_;          \
        }                                                                \
    } while (0)

static int parse_forward(sa_reader *rp, size_t base, sa_rpc_frame *f)
{
    sa_reader r = *rp;

    TRY(sa_unpackstr_view(&r, &f->fwd_nodelist_off, &f->fwd_nodelist_len), SA_E_RPC_HEADER_SHORT);
    TRY(sa_unpack32(&r, &f->fwd_timeout), SA_E_RPC_HEADER_SHORT);
    TRY(sa_unpack16(&r, &f->fwd_tree_width), SA_E_RPC_HEADER_SHORT);
    if (f->flags & SA_RPC_PACK_ADDRS) {
        f->fwd_has_net_cred = 1;
        TRY(sa_unpackstr_view(&r, &f->fwd_net_cred_off, &f->fwd_net_cred_len),
            SA_E_RPC_HEADER_SHORT);
    }
    TRY(sa_unpack16(&r, &f->fwd_tree_depth), SA_E_RPC_HEADER_SHORT);
    *rp = r;
    return SA_OK;
}

static int parse_addr(sa_reader *rp, size_t base, sa_rpc_frame *f)
{
    sa_reader r = *rp;
    size_t len;

    TRY(sa_unpack16(&r, &f->addr_family), SA_E_RPC_HEADER_SHORT);
    if (f->addr_family == SA_AF_INET) {
        TRY(sa_unpack32(&r, &f->addr_v4), SA_E_RPC_HEADER_SHORT);
        TRY(sa_unpack16(&r, &f->addr_port), SA_E_RPC_HEADER_SHORT);
    } else if (f->addr_family == SA_AF_INET6) {
        size_t at = r.off;
        TRY(sa_unpackmem_view(&r, &f->addr_v6_off, &len), SA_E_RPC_HEADER_SHORT);
        if (len != 16) {
            f->err_off = base + at;
            return SA_E_RPC_ADDR6_LEN;
        }
        TRY(sa_unpack16(&r, &f->addr_port), SA_E_RPC_HEADER_SHORT);
    }
    *rp = r;
    return SA_OK;
}

static int parse_auth(sa_reader *rp, size_t base, sa_rpc_frame *f)
{
    sa_reader r = *rp;
    size_t at = r.off;

    f->has_auth = 1;
    TRY(sa_unpack32(&r, &f->auth_plugin), SA_E_RPC_AUTH_SHORT);
    switch (f->auth_plugin) {
    case SA_AUTH_NONE:
        break;
    case SA_AUTH_JWT:
        TRY(sa_unpackstr_view(&r, &f->cred_off, &f->cred_len), SA_E_RPC_AUTH_SHORT);
        TRY(sa_unpackstr_view(&r, &f->user_off, &f->user_len), SA_E_RPC_AUTH_SHORT);
        break;
    case SA_AUTH_MUNGE:
    case SA_AUTH_SLURM:
        TRY(sa_unpackstr_view(&r, &f->cred_off, &f->cred_len), SA_E_RPC_AUTH_SHORT);
        break;
    default:
        f->err_off = base + at;
        return SA_E_RPC_AUTH_PLUGIN;
    }
    *rp = r;
    return SA_OK;
}

int sa_rpc_parse(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f)
{
    sa_reader r;
    size_t base = 0, avail;
    uint16_t dbd_type = 0;
    int rc;

    if (!f || !o || (!data && len))
        return SA_E_ARG;
    memset(f, 0, sizeof(*f));
    if (o->min_version > o->max_version)
        return SA_E_RPC_OPTIONS;

    /* Lengths first, before any field is interpreted. */
    if (o->length_prefix) {
        if (len < 4)
            return SA_E_RPC_PREFIX_SHORT;
        f->total_len = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
                       (uint32_t)data[2] << 8 | data[3];
        if (f->total_len > o->max_frame)
            return SA_E_RPC_TOO_LARGE;
        avail = len - 4;
        if (f->total_len > avail)
            return SA_E_RPC_TRUNCATED;
        if (f->total_len < avail) {
            f->err_off = 4 + (size_t)f->total_len;
            return SA_E_RPC_TRAILING;
        }
        base = 4;
    } else {
        if (len > o->max_frame)
            return SA_E_RPC_TOO_LARGE;
        f->total_len = (uint32_t)len;
    }
    /* Offsets inside the reader are relative to base; store them absolute. */
    sa_reader_init(&r, data + base, len - base);

    if (o->slurmdbd)
        TRY(sa_unpack16(&r, &dbd_type), SA_E_RPC_HEADER_SHORT);
    f->header_off = base + r.off;
    TRY(sa_unpack16(&r, &f->version), SA_E_RPC_HEADER_SHORT);
    if (f->version < o->min_version || f->version > o->max_version) {
        f->err_off = f->header_off;
        return SA_E_RPC_VERSION;
    }
    TRY(sa_unpack16(&r, &f->flags), SA_E_RPC_HEADER_SHORT);
    if (!(f->flags & SA_RPC_SLURMDBD_CONNECTION) != !o->slurmdbd) {
        f->err_off = f->header_off + 2;
        return SA_E_RPC_DBD_FLAG;
    }
    TRY(sa_unpack16(&r, &f->msg_type), SA_E_RPC_HEADER_SHORT);
    if (o->slurmdbd && dbd_type != f->msg_type) {
        f->err_off = base;
        return SA_E_RPC_DBD_MSG_TYPE;
    }
    TRY(sa_unpack32(&r, &f->body_length), SA_E_RPC_HEADER_SHORT);
    TRY(sa_unpack16(&r, &f->forward_cnt), SA_E_RPC_HEADER_SHORT);
    if (f->forward_cnt && (rc = parse_forward(&r, base, f)) != SA_OK)
        return rc;
    TRY(sa_unpack16(&r, &f->ret_cnt), SA_E_RPC_HEADER_SHORT);
    if (f->ret_cnt) {
        f->err_off = base + r.off - 2;
        return SA_E_RPC_RET_LIST;
    }
    if ((rc = parse_addr(&r, base, f)) != SA_OK)
        return rc;

    f->auth_off = base + r.off;
    if (!(f->flags & SA_RPC_NO_AUTH_CRED) && (rc = parse_auth(&r, base, f)) != SA_OK)
        return rc;

    f->body_off = base + r.off;
    if (f->body_length > r.len - r.off) {
        f->err_off = f->body_off;
        return SA_E_RPC_BODY_SHORT;
    }
    if (f->body_length < r.len - r.off) {
        f->err_off = f->body_off + f->body_length;
        return SA_E_RPC_BODY_TRAILING;
    }
    /* make every view absolute */
    if (f->fwd_nodelist_len)
        f->fwd_nodelist_off += base;
    if (f->fwd_net_cred_len)
        f->fwd_net_cred_off += base;
    if (f->addr_family == SA_AF_INET6)
        f->addr_v6_off += base;
    if (f->cred_len)
        f->cred_off += base;
    if (f->user_len)
        f->user_off += base;
    return SA_OK;
}

#define PUT(expr)                  \
    do {                           \
        int rc_ = (expr);          \
        if (rc_ != SA_OK)          \
            return rc_;            \
    } while (0)

static int pack_all(const sa_rpc_msg *m, sa_writer *w, uint32_t total_len)
{
    if (m->length_prefix)
        PUT(sa_pack32(w, total_len));
    if (m->flags & SA_RPC_SLURMDBD_CONNECTION)
        PUT(sa_pack16(w, m->msg_type));
    PUT(sa_pack16(w, m->version));
    PUT(sa_pack16(w, m->flags));
    PUT(sa_pack16(w, m->msg_type));
    PUT(sa_pack32(w, (uint32_t)m->body_len));
    PUT(sa_pack16(w, m->forward_cnt));
    if (m->forward_cnt) {
        PUT(sa_packstr(w, m->fwd_nodelist, m->fwd_nodelist_len));
        PUT(sa_pack32(w, m->fwd_timeout));
        PUT(sa_pack16(w, m->fwd_tree_width));
        if (m->flags & SA_RPC_PACK_ADDRS)
            PUT(sa_packstr(w, m->fwd_net_cred, m->fwd_net_cred_len));
        PUT(sa_pack16(w, m->fwd_tree_depth));
    }
    PUT(sa_pack16(w, 0)); /* ret_cnt */
    PUT(sa_pack16(w, m->addr_family));
    if (m->addr_family == SA_AF_INET) {
        PUT(sa_pack32(w, m->addr_v4));
        PUT(sa_pack16(w, m->addr_port));
    } else if (m->addr_family == SA_AF_INET6) {
        PUT(sa_packmem(w, m->addr_v6, 16));
        PUT(sa_pack16(w, m->addr_port));
    }
    if (!(m->flags & SA_RPC_NO_AUTH_CRED)) {
        PUT(sa_pack32(w, m->auth_plugin));
        switch (m->auth_plugin) {
        case SA_AUTH_NONE:
            break;
        case SA_AUTH_JWT:
            PUT(sa_packstr(w, m->cred, m->cred_len));
            PUT(sa_packstr(w, m->user, m->user_len));
            break;
        case SA_AUTH_MUNGE:
        case SA_AUTH_SLURM:
            PUT(sa_packstr(w, m->cred, m->cred_len));
            break;
        default:
            return SA_E_RPC_AUTH_PLUGIN;
        }
    }
    if (w->data) {
        if (w->cap - w->off < m->body_len)
            return SA_E_PACK_FULL;
        if (m->body_len)
            memcpy(w->data + w->off, m->body, m->body_len);
    }
    w->off += m->body_len;
    return SA_OK;
}

int sa_rpc_pack(const sa_rpc_msg *m, uint8_t *out, size_t cap, size_t *outlen)
{
    sa_writer w;
    size_t total;

    if (!m || !outlen || (!m->body && m->body_len) ||
        (m->addr_family == SA_AF_INET6 && !m->addr_v6))
        return SA_E_ARG;
    if (m->body_len > UINT32_MAX)
        return SA_E_RPC_TOO_LARGE;
    /* Measure first: total_len must be known before the first byte. */
    sa_writer_init(&w, NULL, 0);
    PUT(pack_all(m, &w, 0));
    total = w.off - (m->length_prefix ? 4 : 0);
    if (total > UINT32_MAX)
        return SA_E_RPC_TOO_LARGE;
    *outlen = w.off;
    if (!out)
        return SA_OK;
    if (cap < w.off)
        return SA_E_PACK_FULL;
    sa_writer_init(&w, out, cap);
    return pack_all(m, &w, (uint32_t)total);
}
