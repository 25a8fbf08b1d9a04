/* libFuzzer: a SACK kiosk request (slurmauth_fast/sack.py's wire format) read
 * with the C pieces the kiosk's work comes down to: the pack primitives and,
 * for SACK_VERIFY, the auth/slurm verifier sc_verify().
 *
 * Request: uint16 version, uint32 length (from the length field to the end),
 * uint32 rpc, body. SACK_CREATE (64001) body: uint32 r_uid, packmem data;
 * SACK_VERIFY (64002) body: packstr token (non-empty). The body must end
 * exactly at the declared length; the kiosk reads no further. The input is
 * the byte stream a client sends (trailing bytes past the declared length are
 * what a second request would be: never read).
 *
 * Invariants: every unpack stays inside the input (exact-size heap copy, so
 * ASan sees any overread) and a failed unpack leaves the reader's offset where
 * it was; a request that decodes re-packs (sa_pack16/32, sa_packmem,
 * sa_packstr) to exactly the bytes read; a SACK_VERIFY token goes through
 * sc_verify with an exact-size scratch buffer, returns a documented status,
 * and on success its claims are in range and its context is "sack" or "auth"
 * (the kiosk's verifier allows those two only). */
#include "fuzz_common.h"
#include "pack.h"
#include "sa_status.h"
#include "slurmcred.h"

#define SACK_CREATE 64001u
#define SACK_VERIFY 64002u
#define HEADER_LEN 10u
#define MIN_LENGTH 8u
#define MAX_REQUEST (1024u * 1024u)
#define NOW 1764000030
#define PEER_UID 1000u

static sc_key key;
static sc_keyset ks;
static sc_policy pol;

static void setup(void)
{
    static int done;
    if (done)
        return;
    key.key = fuzz_key();
    ks.keys = &key;
    ks.nkeys = 1;
    ks.default_index = 0;
    ks.by_kid = 0;
    pol.max_len = 16384;
    pol.verifier_uid = PEER_UID;
    pol.contexts = (1u << SC_CTX_AUTH) | (1u << SC_CTX_SACK);
    done = 1;
}

/* A failed unpack must leave the offset unchanged. */
#define UNPACK(call, r)                          \
    do {                                         \
        size_t before_ = (r)->off;               \
        if ((call) != SA_OK) {                   \
            FUZZ_ASSERT((r)->off == before_);    \
            goto done;                           \
        }                                        \
        FUZZ_ASSERT((r)->off <= (r)->len);       \
    } while (0)

static void check_verify(const uint8_t *tok, size_t n)
{
    size_t cap = sc_scratch_need(n);
    uint8_t *scratch = malloc(cap);
    char *copy = (char *)fuzz_dup(tok, n);
    int rc;

    FUZZ_ASSERT(scratch != NULL);
    rc = sc_verify(&ks, &pol, copy, n, NOW, scratch, cap);
    FUZZ_ASSERT(rc == SA_OK || (rc >= 1 && rc < 100));
    FUZZ_ASSERT(rc != SC_E_SCRATCH);
    if (rc == SA_OK) {
        const sc_result *r = (const sc_result *)(const void *)scratch;
        FUZZ_ASSERT(r->context == SC_CTX_AUTH || r->context == SC_CTX_SACK);
        FUZZ_ASSERT(r->uid >= 0 && r->uid <= 4294967295LL && r->gid >= 0 && r->gid <= 4294967295LL);
        FUZZ_ASSERT(r->ruid == 4294967295LL || r->ruid == PEER_UID);
        FUZZ_ASSERT(r->exp >= NOW);
        FUZZ_ASSERT(r->host_len >= 0 && (size_t)r->host_len <= n);
    }
    free(copy);
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = fuzz_dup(data, size);
    uint8_t *again = NULL;
    sa_reader r, body;
    sa_writer w;
    uint16_t version;
    uint32_t length, rpc, r_uid;
    size_t off = 0, n = 0, total;

    setup();
    sa_reader_init(&r, in, size);
    UNPACK(sa_unpack16(&r, &version), &r);
    UNPACK(sa_unpack32(&r, &length), &r);
    UNPACK(sa_unpack32(&r, &rpc), &r);
    /* the kiosk's header check, before it reads any body byte */
    if (length < MIN_LENGTH || length > MAX_REQUEST - 2 || (rpc != SACK_CREATE && rpc != SACK_VERIFY))
        goto done;
    total = 2 + (size_t)length;
    if (total > size)
        goto done;                       /* the client has not sent it all */
    /* the body: exactly the declared bytes, never what follows */
    sa_reader_init(&body, in + HEADER_LEN, total - HEADER_LEN);
    again = malloc(total);
    FUZZ_ASSERT(again != NULL);
    sa_writer_init(&w, again, total);
    FUZZ_ASSERT(sa_pack16(&w, version) == SA_OK && sa_pack32(&w, length) == SA_OK &&
                sa_pack32(&w, rpc) == SA_OK);
    if (rpc == SACK_CREATE) {
        UNPACK(sa_unpack32(&body, &r_uid), &body);
        UNPACK(sa_unpackmem_view(&body, &off, &n), &body);
        if (body.off != body.len)
            goto done;                   /* trailing bytes: refused */
        FUZZ_ASSERT(off + n <= body.len);
        FUZZ_ASSERT(sa_pack32(&w, r_uid) == SA_OK);
        FUZZ_ASSERT(sa_packmem(&w, body.data + off, n) == SA_OK);
    } else {
        UNPACK(sa_unpackstr_view(&body, &off, &n), &body);
        if (body.off != body.len || n == 0)
            goto done;                   /* trailing bytes, or no token: refused */
        FUZZ_ASSERT(off + n <= body.len && body.data[off + n - 1] == 0);
        FUZZ_ASSERT(memchr(body.data + off, 0, n - 1) == NULL);
        FUZZ_ASSERT(sa_packstr(&w, body.data + off, n - 1) == SA_OK);
        check_verify(body.data + off, n - 1);
    }
    FUZZ_ASSERT(w.off == total && memcmp(again, in, total) == 0);
done:
    free(again);
    free(in);
    return 0;
}
