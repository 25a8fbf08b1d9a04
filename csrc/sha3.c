#include "sha3.h"

#include "keccak.h"

void sa_sha3_256(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t out[32])
{
    sa_sponge s;

    sa_sponge_init(&s, 136, 24);
    if (alen)
        sa_sponge_absorb(&s, a, alen);
    if (blen)
        sa_sponge_absorb(&s, b, blen);
    sa_sponge_finish(&s, 0x06);
    sa_sponge_squeeze(&s, out, 32);
}
