#include "hmac.h"

#include <string.h>

#include "sa_status.h"
#include "sha256.h"

void sa_wipe(void *p, size_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    /* memset at full speed, then an empty asm that may read the memory: the
     * compiler cannot prove the stores dead, so it keeps them */
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
#endif
}

int sa_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t x, y, acc = 0;
    volatile uint64_t sink;
    size_t i = 0;

    /* eight bytes at a time, then the tail; the time depends on n only */
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        acc |= x ^ y;
    }
    for (; i < n; i++)
        acc |= (uint64_t)(a[i] ^ b[i]);
    sink = acc;
    acc = sink;
    /* 1 when acc == 0, without a data-dependent branch */
    acc |= acc >> 32;
    return (int)(1 & (((acc & 0xFFFFFFFFu) - 1u) >> 63));
}

static int has_prefix(const uint8_t *s, size_t n, const char *prefix)
{
    size_t plen = strlen(prefix);

    return n >= plen && memcmp(s, prefix, plen) == 0;
}

int sa_hmac_secret_check(const uint8_t *key, size_t keylen)
{
    static const char *const ssh[] = {"ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256",
                                      "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"};
    static const char pem[] = "-----BEGIN ";
    size_t i;

    if (keylen == 0)
        return SA_E_KEY_EMPTY;
    if (!key)
        return SA_E_ARG;
    for (i = 0; i < sizeof(ssh) / sizeof(ssh[0]); i++)
        if (has_prefix(key, keylen, ssh[i]))
            return SA_E_KEY_PUBLIC;
    for (i = 0; i + sizeof(pem) - 1 <= keylen; i++)
        if (key[i] == '-' && has_prefix(key + i, keylen - i, pem))
            return SA_E_KEY_PUBLIC;
    return SA_OK;
}

int sa_hmac_key_init(sa_hmac_key *k, const uint8_t *key, size_t keylen)
{
    uint8_t block[64];
    size_t i;

    if (!k || (!key && keylen))
        return SA_E_ARG;
    k->ready = 0;
    if (keylen == 0)
        return SA_E_KEY_EMPTY;
    memset(block, 0, sizeof(block));
    if (keylen > 64)
        sa_sha256(key, keylen, block);
    else
        memcpy(block, key, keylen);

    for (i = 0; i < 64; i++)
        block[i] ^= 0x36;
    memcpy(k->inner, sa_sha256_iv, sizeof(k->inner));
    sa_sha256_blocks(k->inner, block, 1);

    for (i = 0; i < 64; i++)
        block[i] ^= 0x36 ^ 0x5c;
    memcpy(k->outer, sa_sha256_iv, sizeof(k->outer));
    sa_sha256_blocks(k->outer, block, 1);

    sa_wipe(block, sizeof(block));
    k->ready = 1;
    return SA_OK;
}

void sa_hmac_key_wipe(sa_hmac_key *k)
{
    if (k)
        sa_wipe(k, sizeof(*k));
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The final padded block(s) of a hash that already absorbed `done` bytes,
 * with `tail` (fewer than 64 bytes) left over: written to blk, count returned. */
static size_t pad_tail(uint8_t blk[128], uint64_t done, const uint8_t *tail, size_t tlen)
{
    uint64_t bits = (done + tlen) * 8;
    size_t n = tlen, total;
    int i;

    memcpy(blk, tail, tlen);
    blk[n++] = 0x80;
    total = (n > 56) ? 128 : 64;
    memset(blk + n, 0, total - 8 - n);
    for (i = 0; i < 8; i++)
        blk[total - 8 + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    return total / 64;
}

static void put_digest(uint8_t out[32], const uint32_t st[8])
{
    int i;
    for (i = 0; i < 8; i++)
        put_be32(out + 4 * i, st[i]);
}

void sa_hmac_begin(sa_hmac_job *m, const sa_hmac_key *k, const uint8_t *msg, size_t len)
{
    size_t full = len & ~(size_t)63;

    m->k = k;
    m->msg = msg;
    m->full = full / 64;
    m->npad = pad_tail(m->pad, 64 + (uint64_t)full, msg + full, len - full);
    m->padded = 0;
    m->phase = 0;
    m->half = 0;
    m->ni = sa_sha256_halves();
    if (m->ni)
        sa_sha256_mid_load(m->mid, k->inner);
    else
        memcpy(m->st, k->inner, sizeof(m->st));
}

/* The inner hash's next block, or NULL when it has none left. */
static const uint8_t *inner_block(const sa_hmac_job *m)
{
    if (m->full)
        return m->msg;
    return m->padded < m->npad ? m->pad + 64 * m->padded : NULL;
}

static void inner_advance(sa_hmac_job *m)
{
    if (m->full) {
        m->msg += 64;
        m->full--;
    } else {
        m->padded++;
    }
}

/* SHA-NI, the inner hash done: its digest becomes the outer block's first
 * eight message words (then the padding of 96 bytes). */
static void start_outer(sa_hmac_job *m)
{
    sa_sha256_mid_store(m->mid, m->st);
    memcpy(m->ow, m->st, sizeof(m->st));
    m->ow[8] = 0x80000000u;
    memset(m->ow + 9, 0, 6 * sizeof(m->ow[0]));
    m->ow[15] = 96 * 8;
    sa_sha256_mid_load(m->mid, m->k->outer);
    m->phase = 1;
}

void sa_hmac_step(sa_hmac_job *m)
{
    if (m->phase == 2)
        return;
    if (!m->ni) {
        const uint8_t *b = inner_block(m);
        if (b) {
            sa_sha256_blocks(m->st, b, 1);
            inner_advance(m);
        } else {
            sa_sha256_hmac_outer(m->k->outer, m->st, m->st);
            m->phase = 2;
        }
        return;
    }
    if (m->phase == 0) {
        sa_sha256_half(m->mid, inner_block(m), NULL, m->half);
        if (m->half)
            inner_advance(m);
        m->half ^= 1;
        if (!m->half && !inner_block(m))
            start_outer(m);
    } else {
        sa_sha256_half(m->mid, NULL, m->ow, m->half);
        m->half ^= 1;
        if (!m->half) {
            sa_sha256_mid_store(m->mid, m->st);
            m->phase = 2;
        }
    }
}

void sa_hmac_end(sa_hmac_job *m, uint8_t out[32])
{
    if (m->ni) {
        if (m->half)
            sa_hmac_step(m);                      /* the current block's second half */
        if (m->phase == 0)
            sa_sha256_mid_store(m->mid, m->st);   /* the rest a block at a time, below */
        else if (m->phase == 1) {                 /* st is the inner digest */
            sa_sha256_hmac_outer(m->k->outer, m->st, m->st);
            m->phase = 2;
        }
    }
    if (m->phase == 0) {
        sa_sha256_blocks(m->st, m->msg, m->full);
        sa_sha256_blocks(m->st, m->pad + 64 * m->padded, m->npad - m->padded);
        sa_sha256_hmac_outer(m->k->outer, m->st, m->st);
    }
    put_digest(out, m->st);
    sa_wipe(m, sizeof(*m));
}

void sa_hmac_sha256(const sa_hmac_key *k, const uint8_t *msg, size_t len, uint8_t out[32])
{
    sa_hmac_job m;

    sa_hmac_begin(&m, k, msg, len);
    sa_hmac_end(&m, out);
}

void sa_hmac_sha256_x2(const sa_hmac_key *ka, const uint8_t *ma, size_t la, uint8_t outa[32],
                       const sa_hmac_key *kb, const uint8_t *mb, size_t lb, uint8_t outb[32])
{
    uint32_t sa[8], sb[8];
    uint8_t ba[128], bb[128];
    size_t fa = la & ~(size_t)63, fb = lb & ~(size_t)63, common = fa < fb ? fa : fb, na, nb;

    memcpy(sa, ka->inner, sizeof(sa));
    memcpy(sb, kb->inner, sizeof(sb));
    sa_sha256_blocks2(sa, ma, sb, mb, common / 64);
    sa_sha256_blocks(sa, ma + common, (fa - common) / 64);
    sa_sha256_blocks(sb, mb + common, (fb - common) / 64);
    na = pad_tail(ba, 64 + (uint64_t)fa, ma + fa, la - fa);
    nb = pad_tail(bb, 64 + (uint64_t)fb, mb + fb, lb - fb);
    if (na == nb) {
        sa_sha256_blocks2(sa, ba, sb, bb, na);
    } else {
        sa_sha256_blocks(sa, ba, na);
        sa_sha256_blocks(sb, bb, nb);
    }
    sa_sha256_hmac_outer2(ka->outer, sa, sa, kb->outer, sb, sb);
    put_digest(outa, sa);
    put_digest(outb, sb);
    sa_wipe(sa, sizeof(sa));
    sa_wipe(sb, sizeof(sb));
}
