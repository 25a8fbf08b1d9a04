#include "hmac.h"

#include <string.h>

#include "sa_status.h"
#include "sha256.h"

void sa_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
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

/* Finish a hash whose state already absorbed `done` bytes, with `tail`
 * (fewer than 64 bytes) left over. */
static void finish(uint32_t st[8], uint64_t done, const uint8_t *tail, size_t tlen, uint8_t out[32])
{
    uint8_t blk[128];
    uint64_t bits = (done + tlen) * 8;
    size_t n = tlen, total;
    int i;

    memcpy(blk, tail, tlen);
    blk[n++] = 0x80;
    total = (n > 56) ? 128 : 64;
    memset(blk + n, 0, total - 8 - n);
    for (i = 0; i < 8; i++)
        blk[total - 8 + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    sa_sha256_blocks(st, blk, total / 64);
    for (i = 0; i < 8; i++)
        put_be32(out + 4 * i, st[i]);
}

void sa_hmac_sha256(const sa_hmac_key *k, const uint8_t *msg, size_t len, uint8_t out[32])
{
    uint32_t st[8];
    uint8_t ih[32];
    size_t full = len & ~(size_t)63;

    memcpy(st, k->inner, sizeof(st));
    sa_sha256_blocks(st, msg, full / 64);
    finish(st, 64 + (uint64_t)full, msg + full, len - full, ih);

    memcpy(st, k->outer, sizeof(st));
    finish(st, 64, ih, sizeof(ih), out);
    sa_wipe(ih, sizeof(ih));
}
