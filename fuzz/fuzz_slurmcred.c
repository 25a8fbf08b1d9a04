/* libFuzzer: the auth/slurm credential verifier sc_verify() (header parse, key
 * selection by kid, key expiry, HMAC, strict claims scanner, claim rules).
 *
 * Input byte 0 picks the mode:
 *   even: the rest is a raw token;
 *   odd:  the rest is header/claims JSON that is SIGNED with the key the
 *         header will select (so the claims scanner behind the MAC is reached).
 *         Byte 1 says which header: the canonical one Slurm writes (fast path)
 *         or fuzzed header bytes (first byte of the rest = header length).
 * Invariants: no memory error with an exact-size scratch buffer; the status
 * is one the API documents; the fast header path and the full header parse
 * agree (same keyset without the precomputed headers); the batch calls agree
 * with sc_verify for the token twice (one MAC pair), listed (sc_verify_list)
 * and separated (sc_verify_many) under every scanner (SC_E_BATCH_SPLIT
 * exactly when the token holds the separator); on success every claim is
 * within its documented range and the host/cluster/payload and id/sbcast/net
 * spans lie inside the scratch;
 * every claims scanner that runs here (portable, SSE2, AVX-512BW with the
 * claims' fast path) gives the same status and the same scratch bytes. */
#include "fuzz_common.h"
#include "jws.h"
#include "sa_status.h"
#include "slurmcred.h"

#define NOW 1764000030
#define VERIFIER_UID 1000u
#define MAX_TOKEN 16384

static const char KID_CUR[] = "k-current", KID_OLD[] = "k-old";
/* base64url of {"alg":"HS256","kid":"k-current","typ":"JWT"} and the k-old one */
static const char HDR_CUR[] = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImstY3VycmVudCIsInR5cCI6IkpXVCJ9";
static const char HDR_OLD[] = "eyJhbGciOiJIUzI1NiIsImtpZCI6Imstb2xkIiwidHlwIjoiSldUIn0";

static sa_hmac_key key_old;
static sc_key keys_fast[2], keys_slow[2];
static sc_keyset ks_fast, ks_slow;
static sc_policy pol;

static void setup(void)
{
    static int done;
    size_t i;
    if (done)
        return;
    FUZZ_ASSERT(sa_hmac_key_init(&key_old, (const uint8_t *)"the old key, expired long ago!!", 31) == SA_OK);
    keys_fast[0].kid = (const uint8_t *)KID_OLD;
    keys_fast[0].kid_len = sizeof(KID_OLD) - 1;
    keys_fast[0].key = &key_old;
    keys_fast[0].exp = 1763000000;
    keys_fast[0].hdr = HDR_OLD;
    keys_fast[0].hdr_len = sizeof(HDR_OLD) - 1;
    keys_fast[1].kid = (const uint8_t *)KID_CUR;
    keys_fast[1].kid_len = sizeof(KID_CUR) - 1;
    keys_fast[1].key = fuzz_key();
    keys_fast[1].exp = 0;
    keys_fast[1].hdr = HDR_CUR;
    keys_fast[1].hdr_len = sizeof(HDR_CUR) - 1;
    for (i = 0; i < 2; i++) {
        keys_slow[i] = keys_fast[i];
        keys_slow[i].hdr = NULL;
        keys_slow[i].hdr_len = 0;
    }
    ks_fast.keys = keys_fast;
    ks_slow.keys = keys_slow;
    ks_fast.nkeys = ks_slow.nkeys = 2;
    ks_fast.default_index = ks_slow.default_index = 1;
    ks_fast.by_kid = ks_slow.by_kid = 1;
    pol.max_len = MAX_TOKEN;
    pol.verifier_uid = VERIFIER_UID;
    pol.contexts = (1u << SC_CTX_AUTH) | (1u << SC_CTX_SACK);
    pol.flags = SC_POL_CLIENT_IDS;
    done = 1;
}

static int known_status(int rc)
{
    return rc == SA_OK || (rc >= SA_E_TOO_LARGE && rc <= SA_E_SIG_LENGTH) || rc == SA_E_BAD_SIGNATURE ||
           (rc >= SC_E_HEADER_JSON && rc <= SC_E_OBJ_TYPE && rc != SC_E_SCRATCH && rc != SC_E_NO_KEY) ||
           rc == SC_E_PAYLOAD_EMPTY;
}

static void check_span(int64_t off, int64_t len, size_t cap)
{
    if (len < 0)
        return;
    FUZZ_ASSERT(off >= 0 && (uint64_t)off + (uint64_t)len <= cap);
}

/* sc_verify_list and sc_verify_many over the token twice: both statuses are
 * sc_verify's, and on success the columns and each record carry sc_verify's
 * result. */
static void many_agrees(const char *tok, size_t len, int rc1, const sc_result *want)
{
    const size_t plen = 2 * len + 1;
    char *packed = malloc(plen);
    size_t lens[2], wneed = sc_batch_work_need(&pol, plen), oneed = sc_batch_out_need(2, plen), pass;
    const char *toks[2];
    uint8_t *work = malloc(wneed), *out = malloc(oneed);

    FUZZ_ASSERT(packed && work && out && !((uintptr_t)work & 15) && !((uintptr_t)out & 7));
    lens[0] = lens[1] = len;
    memcpy(packed, tok, len);
    memcpy(packed + len, tok, len);
    packed[2 * len] = 'x';                       /* one byte beyond the pair */
    toks[0] = packed;
    toks[1] = packed + len;
    /* pass 0: listed (addresses and lengths); 1-3: separated, the token ends and dots found by
     * the widest scanner (AUTO), byte by byte, and 16 bytes at a time */
    for (pass = 0; pass < 4; pass++) {
        static const int scan[4] = {SC_SCAN_AUTO, SC_SCAN_AUTO, SC_SCAN_PORTABLE, SC_SCAN_SSE2};
        const uint64_t *rec_off = (const uint64_t *)(const void *)out;
        const int32_t *status = (const int32_t *)(const void *)(out + 16);
        const uint32_t *uid = (const uint32_t *)(const void *)(out + 24);
        int rc, q;
        if (pass == 0) {
            rc = sc_verify_list(&ks_fast, &pol, toks, lens, 2, NOW, work, wneed, out, oneed);
        } else {
            if (sc_scan_select(scan[pass]) < 0)
                continue;                        /* no SSE2 here */
            if (pass == 1) {
                memmove(packed + len + 1, packed + len, len);
                packed[len] = SC_BATCH_SEP;
            }
            rc = sc_verify_many(&ks_fast, &pol, packed, plen, 2, NOW, work, wneed, out, oneed);
            sc_scan_select(SC_SCAN_AUTO);
            if (memchr(tok, SC_BATCH_SEP, len)) {
                FUZZ_ASSERT(rc == SC_E_BATCH_SPLIT);
                continue;
            }
        }
        FUZZ_ASSERT(rc == SA_OK);
        for (q = 0; q < 2; q++) {
            const sc_result *r = (const sc_result *)(const void *)(out + rec_off[q]);
            FUZZ_ASSERT(status[q] == rc1);
            FUZZ_ASSERT(rec_off[q] + sc_result_space() <= oneed);
            if (rc1 == SA_OK) {
                FUZZ_ASSERT(uid[q] == (uint32_t)want->uid && r->uid == want->uid &&
                            r->gid == want->gid && r->exp == want->exp &&
                            r->host_len == want->host_len && r->objects == want->objects);
                check_span((int64_t)rec_off[q] + r->id_off, r->id_len, oneed);
                check_span((int64_t)rec_off[q] + r->net_off, r->net_len, oneed);
            }
        }
    }
    free(packed);
    free(work);
    free(out);
}

/* Every scanner (sc_scan_select: byte by byte, SSE2, and AVX-512BW with the
 * claims' fast path) where it runs: the same status and scratch bytes. */
static void scanners_agree(const char *tok, size_t len)
{
    static const int impl[3] = {SC_SCAN_PORTABLE, SC_SCAN_SSE2, SC_SCAN_AVX512};
    size_t cap = sc_scratch_need(len);
    uint8_t *s[3];
    int rc[3], k;

    for (k = 0; k < 3; k++) {
        s[k] = malloc(cap);
        FUZZ_ASSERT(s[k] != NULL);
        memset(s[k], 0xA5, cap);
        if (sc_scan_select(impl[k]) < 0) {   /* not compiled in or not this CPU's */
            rc[k] = rc[0];
            memcpy(s[k], s[0], cap);
            continue;
        }
        rc[k] = sc_verify(&ks_fast, &pol, tok, len, NOW, s[k], cap);
    }
    sc_scan_select(SC_SCAN_AUTO);
    for (k = 1; k < 3; k++)
        FUZZ_ASSERT(rc[0] == rc[k] && memcmp(s[0], s[k], cap) == 0);
    for (k = 0; k < 3; k++)
        free(s[k]);
}

static void verify_one(const char *tok, size_t len)
{
    size_t cap = sc_scratch_need(len);
    uint8_t *s1 = malloc(cap), *s2 = malloc(cap);
    int rc1, rc2;

    FUZZ_ASSERT(s1 && s2);
    rc1 = sc_verify(&ks_fast, &pol, tok, len, NOW, s1, cap);
    rc2 = sc_verify(&ks_slow, &pol, tok, len, NOW, s2, cap);
    FUZZ_ASSERT(known_status(rc1));
    FUZZ_ASSERT(rc1 == rc2);
    scanners_agree(tok, len);
    many_agrees(tok, len, rc1, (const sc_result *)(const void *)s1);
    if (rc1 == SA_OK) {
        const sc_result *r = (const sc_result *)(const void *)s1;
        const sc_result *q = (const sc_result *)(const void *)s2;
        size_t base = sc_result_space();
        FUZZ_ASSERT(r->uid >= 0 && r->uid <= 4294967295LL && r->gid >= 0 && r->gid <= 4294967295LL);
        FUZZ_ASSERT(r->exp >= NOW);
        FUZZ_ASSERT(r->ruid == 4294967295LL || r->ruid == VERIFIER_UID);
        FUZZ_ASSERT(r->context == SC_CTX_AUTH || r->context == SC_CTX_SACK);
        FUZZ_ASSERT(r->key_index == 1);   /* k-old has expired: it never verifies */
        FUZZ_ASSERT(r->host_len >= 0);
        FUZZ_ASSERT(base + (size_t)r->host_len + (size_t)(r->cluster_len > 0 ? r->cluster_len : 0) +
                    (size_t)(r->payload_len > 0 ? r->payload_len : 0) <= cap);
        check_span(r->id_off, r->id_len, cap);
        check_span(r->sbcast_off, r->sbcast_len, cap);
        check_span(r->net_off, r->net_len, cap);
        FUZZ_ASSERT(r->uid == q->uid && r->gid == q->gid && r->exp == q->exp && r->iat == q->iat &&
                    r->ruid == q->ruid && r->context == q->context && r->host_len == q->host_len &&
                    r->payload_len == q->payload_len && r->cluster_len == q->cluster_len);
    }
    free(s1);
    free(s2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 2)
        return 0;
    if ((data[0] & 1) == 0) {
        char *tok = (char *)fuzz_dup(data + 1, size - 1);
        verify_one(tok, size - 1);
        free(tok);
        return 0;
    } else {
        static const char canon[] = "{\"alg\":\"HS256\",\"kid\":\"k-current\",\"typ\":\"JWT\"}";
        const uint8_t *hdr, *claims;
        size_t hlen, clen, cap, olen = 0;
        const uint8_t *rest = data + 2;
        size_t rlen = size - 2;
        char *tok;

        if (data[1] & 1) {
            hdr = (const uint8_t *)canon;
            hlen = sizeof(canon) - 1;
            claims = rest;
            clen = rlen;
        } else {
            if (rlen < 2)
                return 0;
            hlen = 1 + (size_t)rest[0] % (rlen - 1);
            hdr = rest + 1;
            claims = rest + 1 + hlen;
            clen = rlen - 1 - hlen;
        }
        if (clen == 0 || hlen == 0)
            return 0;
        cap = sa_jws_hs256_signed_len(hlen, clen);
        tok = malloc(cap);
        FUZZ_ASSERT(tok != NULL);
        FUZZ_ASSERT(sa_jws_hs256_sign(fuzz_key(), hdr, hlen, claims, clen, tok, cap, &olen) == SA_OK);
        verify_one(tok, olen);
        free(tok);
    }
    return 0;
}
