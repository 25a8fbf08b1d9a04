#include "keccak.h"

#include <string.h>

static const uint64_t RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
    0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
    0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
    0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
    0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
    0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
    0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

#define ROL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* One round per iteration, fully unrolled (FIPS 202 section 3.2: theta,
 * rho, pi, chi, iota); lane (x, y) is a[x + 5y]. The rotation offsets are
 * FIPS 202 table 2; a zero offset is written without ROL64. */
void sa_keccak_p1600(uint64_t a[25], unsigned rounds)
{
    uint64_t b[25], c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
    unsigned r;

    if (rounds > 24)
        rounds = 24;
    for (r = 24 - rounds; r < 24; r++) {
        /* theta */
        c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20];
        c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21];
        c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22];
        c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23];
        c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);
        /* rho and pi: b[y, 2x+3y] = rot(a[x, y] ^ d[x], r[x, y]) */
        b[0] = a[0] ^ d0;
        b[10] = ROL64(a[1] ^ d1, 1);
        b[20] = ROL64(a[2] ^ d2, 62);
        b[5] = ROL64(a[3] ^ d3, 28);
        b[15] = ROL64(a[4] ^ d4, 27);
        b[16] = ROL64(a[5] ^ d0, 36);
        b[1] = ROL64(a[6] ^ d1, 44);
        b[11] = ROL64(a[7] ^ d2, 6);
        b[21] = ROL64(a[8] ^ d3, 55);
        b[6] = ROL64(a[9] ^ d4, 20);
        b[7] = ROL64(a[10] ^ d0, 3);
        b[17] = ROL64(a[11] ^ d1, 10);
        b[2] = ROL64(a[12] ^ d2, 43);
        b[12] = ROL64(a[13] ^ d3, 25);
        b[22] = ROL64(a[14] ^ d4, 39);
        b[23] = ROL64(a[15] ^ d0, 41);
        b[8] = ROL64(a[16] ^ d1, 45);
        b[18] = ROL64(a[17] ^ d2, 15);
        b[3] = ROL64(a[18] ^ d3, 21);
        b[13] = ROL64(a[19] ^ d4, 8);
        b[14] = ROL64(a[20] ^ d0, 18);
        b[24] = ROL64(a[21] ^ d1, 2);
        b[9] = ROL64(a[22] ^ d2, 61);
        b[19] = ROL64(a[23] ^ d3, 56);
        b[4] = ROL64(a[24] ^ d4, 14);
        /* chi */
        a[0] = b[0] ^ (~b[1] & b[2]);
        a[1] = b[1] ^ (~b[2] & b[3]);
        a[2] = b[2] ^ (~b[3] & b[4]);
        a[3] = b[3] ^ (~b[4] & b[0]);
        a[4] = b[4] ^ (~b[0] & b[1]);
        a[5] = b[5] ^ (~b[6] & b[7]);
        a[6] = b[6] ^ (~b[7] & b[8]);
        a[7] = b[7] ^ (~b[8] & b[9]);
        a[8] = b[8] ^ (~b[9] & b[5]);
        a[9] = b[9] ^ (~b[5] & b[6]);
        a[10] = b[10] ^ (~b[11] & b[12]);
        a[11] = b[11] ^ (~b[12] & b[13]);
        a[12] = b[12] ^ (~b[13] & b[14]);
        a[13] = b[13] ^ (~b[14] & b[10]);
        a[14] = b[14] ^ (~b[10] & b[11]);
        a[15] = b[15] ^ (~b[16] & b[17]);
        a[16] = b[16] ^ (~b[17] & b[18]);
        a[17] = b[17] ^ (~b[18] & b[19]);
        a[18] = b[18] ^ (~b[19] & b[15]);
        a[19] = b[19] ^ (~b[15] & b[16]);
        a[20] = b[20] ^ (~b[21] & b[22]);
        a[21] = b[21] ^ (~b[22] & b[23]);
        a[22] = b[22] ^ (~b[23] & b[24]);
        a[23] = b[23] ^ (~b[24] & b[20]);
        a[24] = b[24] ^ (~b[20] & b[21]);
        /* iota */
        a[0] ^= RC[r];
    }
}

static uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

void sa_sponge_init(sa_sponge *s, size_t rate, unsigned rounds)
{
    memset(s->st, 0, sizeof(s->st));
    s->rate = rate;
    s->pos = 0;
    s->rounds = rounds;
}

static void xor_byte(sa_sponge *s, size_t i, uint8_t b)
{
    s->st[i / 8] ^= (uint64_t)b << (8 * (i % 8));
}

void sa_sponge_absorb(sa_sponge *s, const uint8_t *in, size_t len)
{
    size_t i;

    /* finish a partial block byte by byte */
    while (len && s->pos) {
        xor_byte(s, s->pos++, *in++);
        len--;
        if (s->pos == s->rate) {
            sa_keccak_p1600(s->st, s->rounds);
            s->pos = 0;
        }
    }
    /* whole blocks, a lane at a time (rates here are multiples of 8) */
    while (len >= s->rate) {
        for (i = 0; i < s->rate / 8; i++)
            s->st[i] ^= load_le64(in + 8 * i);
        sa_keccak_p1600(s->st, s->rounds);
        in += s->rate;
        len -= s->rate;
    }
    while (len--)
        xor_byte(s, s->pos++, *in++);
}

void sa_sponge_finish(sa_sponge *s, uint8_t ds)
{
    xor_byte(s, s->pos, ds);
    xor_byte(s, s->rate - 1, 0x80);
    sa_keccak_p1600(s->st, s->rounds);
    s->pos = 0;
}

void sa_sponge_squeeze(sa_sponge *s, uint8_t *out, size_t len)
{
    while (len--) {
        if (s->pos == s->rate) {
            sa_keccak_p1600(s->st, s->rounds);
            s->pos = 0;
        }
        *out++ = (uint8_t)(s->st[s->pos / 8] >> (8 * (s->pos % 8)));
        s->pos++;
    }
}
