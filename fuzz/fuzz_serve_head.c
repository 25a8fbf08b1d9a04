/* libFuzzer: the serving core's incremental frame reader (sa_serve_parse_head)
 * fed a frame in random chunks, and the core's early verification against
 * the fused verifier.
 *
 * Input: data[0] seeds the chunk sizes (1..64 bytes), data[1] picks max_head
 * (bit 0 set: a small one, 64 + 8 * data[1]; else 16380), data[2..) is the
 * frame (length prefix included).
 * Invariants, with every prefix an exact-size heap copy:
 * - the reader says "more" (1) until it decides, and once decided (0 or a
 *   status) every longer prefix gets the same decision and the same views;
 * - a decision of 0 means the exact frame (4 + total_len bytes) parses with
 *   sa_rpc_parse, with the same header fields and credential view; a frame
 *   that parses is never refused by the reader except for max_head; a
 *   refused one (other than max_head) never parses;
 * - for auth/slurm, the core's order (token at the end of the auth section,
 *   then the body hash) gives the very status of sa_verify_frame_slurm on
 *   the whole frame. */
#include "fuzz_common.h"
#include "bodyhash.h"
#include "rpc.h"
#include "sa_status.h"
#include "serve.h"
#include "slurmcred.h"
#include "verify_frame.h"

#define NOW 1764000030
#define MAX_TOKEN 16384

static sc_key key1;
static sc_keyset ks;
static sc_policy pol;
static uint8_t *scratch;
static size_t scratch_cap;

static void setup(void)
{
    static int done;
    if (done)
        return;
    key1.key = fuzz_key();
    ks.keys = &key1;
    ks.nkeys = 1;
    ks.default_index = 0;
    ks.by_kid = 0;
    pol.max_len = MAX_TOKEN;
    pol.verifier_uid = 1000;
    pol.contexts = (1u << SC_CTX_AUTH) | (1u << SC_CTX_SACK);
    scratch_cap = sc_scratch_need(1u << 20);
    scratch = malloc(scratch_cap);
    FUZZ_ASSERT(scratch != NULL);
    done = 1;
}

static int at(const uint8_t *d, size_t len, const sa_rpc_opts *o, uint32_t max_head,
              sa_rpc_frame *f)
{
    uint8_t *copy = fuzz_dup(d, len);
    int rc = sa_serve_parse_head(copy, len, o, max_head, f);
    free(copy);
    return rc;
}

/* The core's steps for an auth/slurm frame whose header+auth are in. */
static int core_status(const uint8_t *d, const sa_rpc_frame *h, const sa_rpc_opts *o)
{
    const sc_result *r = (const sc_result *)(void *)scratch;
    sa_rpc_frame f;
    const uint8_t *payload;
    size_t plen;
    int rc;

    if (h->cred_len == 0)
        return SA_E_ARG;
    rc = sc_verify(&ks, &pol, (const char *)d + h->cred_off, h->cred_len - 1, NOW, scratch,
                   scratch_cap);
    if (rc != SA_OK)
        return rc;
    plen = r->payload_len > 0 ? (size_t)r->payload_len : 0;
    payload = plen ? scratch + sc_result_space() + (size_t)r->host_len +
                     (r->cluster_len > 0 ? (size_t)r->cluster_len : 0) : NULL;
    FUZZ_ASSERT(sa_rpc_parse(d, 4 + (size_t)h->total_len, o, &f) == SA_OK);
    return sa_body_hash_check(payload, plen, d + f.body_off, f.body_length, f.msg_type, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sa_rpc_opts o;
    sa_rpc_frame f, first;
    const uint8_t *d;
    size_t n, p = 0;
    uint32_t rng, max_head;
    int decided = 1, rc;

    if (size < 2)
        return 0;
    setup();
    rng = data[0] * 2654435761u + 1;
    max_head = (data[1] & 1) ? 64u + 8u * data[1] : 16380u;
    d = data + 2;
    n = size - 2;
    o.min_version = SA_PROTOCOL_VERSION - SA_PROTOCOL_OLDEST_DELTA;
    o.max_version = SA_PROTOCOL_VERSION;
    o.max_frame = 1u << 20;
    o.length_prefix = 1;
    o.slurmdbd = 0;
    memset(&first, 0, sizeof(first));

    for (;;) {
        rc = at(d, p, &o, max_head, &f);
        if (decided == 1) {
            FUZZ_ASSERT(rc == 0 || rc == 1 || (rc >= 60 && rc <= 99));
            if (rc != 1) {
                decided = rc;
                first = f;
            }
        } else {
            FUZZ_ASSERT(rc == decided);
            if (rc == 0) {
                FUZZ_ASSERT(f.total_len == first.total_len && f.body_off == first.body_off);
                FUZZ_ASSERT(f.cred_off == first.cred_off && f.cred_len == first.cred_len);
                FUZZ_ASSERT(f.msg_type == first.msg_type && f.auth_plugin == first.auth_plugin);
            }
        }
        if (p == n)
            break;
        rng = rng * 1103515245u + 12345u;
        p += 1 + (rng >> 16) % 64;
        if (p > n)
            p = n;
    }

    if (n >= 4) {
        uint32_t total = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (total <= o.max_frame && 4 + (size_t)total <= n) {
            uint8_t *whole = fuzz_dup(d, 4 + (size_t)total);
            int full = sa_rpc_parse(whole, 4 + (size_t)total, &o, &f);
            if (decided == 0) {
                FUZZ_ASSERT(full == SA_OK);
                FUZZ_ASSERT(f.body_off == first.body_off && f.cred_off == first.cred_off &&
                            f.cred_len == first.cred_len && f.version == first.version &&
                            f.msg_type == first.msg_type && f.flags == first.flags);
                FUZZ_ASSERT(first.body_off <= 4 + (size_t)total);
                if (f.has_auth && f.auth_plugin == SA_AUTH_SLURM) {
                    sa_rpc_frame g;
                    int fused = sa_verify_frame_slurm(whole, 4 + (size_t)total, &o, &g, &ks, &pol,
                                                      NOW, 0, scratch, scratch_cap, NULL);
                    FUZZ_ASSERT(core_status(whole, &first, &o) == fused);
                }
            } else if (full == SA_OK) {
                FUZZ_ASSERT(decided == SA_E_SERVE_HEAD_LONG);
            } else {
                FUZZ_ASSERT(decided != 1);
            }
            free(whole);
        }
    }
    return 0;
}
