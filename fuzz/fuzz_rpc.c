/* libFuzzer: whole Slurm RPC frames.
 *
 * 1. sa_fuzz_rpc_frame (the wire unit's fuzz entry point: parse, token split
 *    and tag check, body-hash check) on an exact-size copy of the input.
 * 2. sa_rpc_parse with the options in data[0]; every view it returns lies
 *    inside the frame and the sections are in order; a frame that parses
 *    (ordinary framing, no ret list) packs back with sa_rpc_pack to the very
 *    same bytes: one encoding per message, nothing parsed that is not packed.
 *    A frame cut short by one byte never parses. */
#include "fuzz_common.h"
#include "fuzz.h"
#include "pack.h"
#include "rpc.h"
#include "sa_status.h"

static void in_frame(size_t off, size_t len, size_t n)
{
    FUZZ_ASSERT(off <= n && len <= n - off);
}

static void repack(const uint8_t *d, size_t n, const sa_rpc_opts *o, const sa_rpc_frame *f)
{
    sa_rpc_msg m;
    uint8_t *out;
    size_t need = 0, got = 0;
    int rc;

    memset(&m, 0, sizeof(m));
    m.version = f->version;
    m.flags = f->flags;
    m.msg_type = f->msg_type;
    m.forward_cnt = f->forward_cnt;
    if (f->forward_cnt) {
        m.fwd_nodelist = f->fwd_nodelist_len ? d + f->fwd_nodelist_off : NULL;
        m.fwd_nodelist_len = f->fwd_nodelist_len ? f->fwd_nodelist_len - 1 : 0;
        m.fwd_timeout = f->fwd_timeout;
        m.fwd_tree_width = f->fwd_tree_width;
        m.fwd_net_cred = f->fwd_has_net_cred && f->fwd_net_cred_len ? d + f->fwd_net_cred_off : NULL;
        m.fwd_net_cred_len = f->fwd_has_net_cred && f->fwd_net_cred_len ? f->fwd_net_cred_len - 1 : 0;
        m.fwd_tree_depth = f->fwd_tree_depth;
    }
    m.addr_family = f->addr_family;
    m.addr_v4 = f->addr_v4;
    m.addr_v6 = f->addr_family == SA_AF_INET6 ? d + f->addr_v6_off : NULL;
    m.addr_port = f->addr_port;
    m.auth_plugin = f->auth_plugin;
    m.cred = f->cred_len ? d + f->cred_off : NULL;
    m.cred_len = f->cred_len ? f->cred_len - 1 : 0;
    m.user = f->user_len ? d + f->user_off : NULL;
    m.user_len = f->user_len ? f->user_len - 1 : 0;
    m.body = d + f->body_off;
    m.body_len = f->body_length;
    m.length_prefix = o->length_prefix;

    rc = sa_rpc_pack(&m, NULL, 0, &need);
    if (rc == SA_E_PACK_STR_EMBEDDED)
        return;   /* parse accepts a NUL inside a packstr view; pack refuses to write one */
    FUZZ_ASSERT(rc == SA_OK);
    FUZZ_ASSERT(need == n);
    out = malloc(need);
    FUZZ_ASSERT(out != NULL);
    if (need > 0)
        FUZZ_ASSERT(sa_rpc_pack(&m, out, need - 1, &got) != SA_OK);
    FUZZ_ASSERT(sa_rpc_pack(&m, out, need, &got) == SA_OK && got == n);
    FUZZ_ASSERT(memcmp(out, d, n) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_dup(data, size);
    sa_rpc_opts o;
    sa_rpc_frame f;
    const uint8_t *d;
    size_t n;
    int rc;

    (void)sa_fuzz_rpc_frame(copy, size);
    free(copy);
    if (size < 1)
        return 0;

    n = size - 1;
    d = fuzz_dup(data + 1, n);
    o.min_version = SA_PROTOCOL_VERSION - SA_PROTOCOL_OLDEST_DELTA;
    o.max_version = SA_PROTOCOL_VERSION;
    o.max_frame = 1u << 20;
    o.length_prefix = data[0] & 1;
    o.slurmdbd = (data[0] >> 1) & 1;
    rc = sa_rpc_parse(d, n, &o, &f);
    if (rc == SA_OK) {
        FUZZ_ASSERT(f.header_off <= f.auth_off && f.auth_off <= f.body_off);
        in_frame(f.body_off, f.body_length, n);
        FUZZ_ASSERT(f.body_off + f.body_length == n);   /* nothing trails the body */
        if (f.forward_cnt) {
            in_frame(f.fwd_nodelist_off, f.fwd_nodelist_len, n);
            if (f.fwd_has_net_cred)
                in_frame(f.fwd_net_cred_off, f.fwd_net_cred_len, n);
        }
        if (f.addr_family == SA_AF_INET6)
            in_frame(f.addr_v6_off, 16, n);
        if (f.has_auth) {
            in_frame(f.cred_off, f.cred_len, n);
            in_frame(f.user_off, f.user_len, n);
            if (f.cred_len)
                FUZZ_ASSERT(d[f.cred_off + f.cred_len - 1] == 0);   /* packstr ends in NUL */
        }
        FUZZ_ASSERT(f.ret_cnt == 0);
        if (!o.slurmdbd)
            repack(d, n, &o, &f);
        if (n > 0) {   /* one byte less never parses */
            sa_rpc_frame g;
            uint8_t *cut = fuzz_dup(d, n - 1);
            FUZZ_ASSERT(sa_rpc_parse(cut, n - 1, &o, &g) != SA_OK);
            free(cut);
        }
    } else {
        FUZZ_ASSERT(rc == SA_E_ARG || (rc >= 60 && rc <= 79));
        FUZZ_ASSERT(f.err_off <= n);
    }
    free((void *)d);
    return 0;
}
