#include "k12.h"

#include <string.h>

#define K12_RATE 168
#define K12_ROUNDS 12
#define K12_CHUNK 8192
#define K12_CV 32

void sa_k12_init(sa_k12_ctx *k)
{
    sa_sponge_init(&k->final_node, K12_RATE, K12_ROUNDS);
    k->total = 0;
    k->leaves = 0;
    k->leaf_open = 0;
}

/* Close the open leaf: CV = TurboSHAKE128(S_i, D = 0x0B, 32), into the final node. */
static void close_leaf(sa_k12_ctx *k)
{
    uint8_t cv[K12_CV];

    sa_sponge_finish(&k->leaf, 0x0B);
    sa_sponge_squeeze(&k->leaf, cv, sizeof(cv));
    sa_sponge_absorb(&k->final_node, cv, sizeof(cv));
    k->leaves++;
    k->leaf_open = 0;
}

void sa_k12_update(sa_k12_ctx *k, const uint8_t *in, size_t len)
{
    static const uint8_t tree_marker[8] = {0x03, 0, 0, 0, 0, 0, 0, 0};
    size_t n;

    while (len) {
        if (k->total < K12_CHUNK) {
            n = K12_CHUNK - (size_t)k->total;
            if (n > len)
                n = len;
            sa_sponge_absorb(&k->final_node, in, n);
        } else {
            size_t used = (size_t)((k->total - K12_CHUNK) % K12_CHUNK);
            /* A new leaf starts only when its first byte arrives, so an S of
             * exactly 8192 bytes stays in single-node mode. */
            if (used == 0) {
                if (k->leaf_open)
                    close_leaf(k);
                else if (k->leaves == 0)
                    sa_sponge_absorb(&k->final_node, tree_marker, sizeof(tree_marker));
                sa_sponge_init(&k->leaf, K12_RATE, K12_ROUNDS);
                k->leaf_open = 1;
            }
            n = K12_CHUNK - used;
            if (n > len)
                n = len;
            sa_sponge_absorb(&k->leaf, in, n);
        }
        k->total += n;
        in += n;
        len -= n;
    }
}

/* length_encode(x) (RFC 9861 section 3.3): big-endian bytes of x without
 * leading zeros, then the number of those bytes. Returns its length. */
static size_t length_encode(uint64_t x, uint8_t out[9])
{
    size_t n = 0, i;
    uint64_t t;

    for (t = x; t; t >>= 8)
        n++;
    for (i = 0; i < n; i++)
        out[i] = (uint8_t)(x >> (8 * (n - 1 - i)));
    out[n] = (uint8_t)n;
    return n + 1;
}

void sa_k12_final(sa_k12_ctx *k, const uint8_t *custom, size_t clen, uint8_t *out, size_t outlen)
{
    static const uint8_t ffff[2] = {0xFF, 0xFF};
    uint8_t enc[9];
    size_t n;

    if (clen)
        sa_k12_update(k, custom, clen);
    n = length_encode((uint64_t)clen, enc);
    sa_k12_update(k, enc, n);

    if (k->total <= K12_CHUNK) {
        sa_sponge_finish(&k->final_node, 0x07);
    } else {
        close_leaf(k);
        n = length_encode(k->leaves, enc);
        sa_sponge_absorb(&k->final_node, enc, n);
        sa_sponge_absorb(&k->final_node, ffff, sizeof(ffff));
        sa_sponge_finish(&k->final_node, 0x06);
    }
    sa_sponge_squeeze(&k->final_node, out, outlen);
}

void sa_k12(const uint8_t *msg, size_t mlen, const uint8_t *custom, size_t clen,
            uint8_t *out, size_t outlen)
{
    sa_k12_ctx k;

    sa_k12_init(&k);
    if (mlen)
        sa_k12_update(&k, msg, mlen);
    sa_k12_final(&k, custom, clen, out, outlen);
}
