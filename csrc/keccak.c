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

/* rho offsets and pi destinations along the (1,0) -> ... lane cycle */
static const unsigned RHO[24] = {
    1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14,
    27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44,
};
static const unsigned PI[24] = {
    10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4,
    15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1,
};

#define ROL64(x, n) (((x) << (n)) | ((x) >> ((64 - (n)) & 63)))

void sa_keccak_p1600(uint64_t a[25], unsigned rounds)
{
    uint64_t c[5], d, t, u;
    unsigned r, i, j;

    if (rounds > 24)
        rounds = 24;
    for (r = 24 - rounds; r < 24; r++) {
        /* theta */
        for (i = 0; i < 5; i++)
            c[i] = a[i] ^ a[i + 5] ^ a[i + 10] ^ a[i + 15] ^ a[i + 20];
        for (i = 0; i < 5; i++) {
            d = c[(i + 4) % 5] ^ ROL64(c[(i + 1) % 5], 1);
            for (j = 0; j < 25; j += 5)
                a[j + i] ^= d;
        }
        /* rho and pi */
        t = a[1];
        for (i = 0; i < 24; i++) {
            u = a[PI[i]];
            a[PI[i]] = ROL64(t, RHO[i]);
            t = u;
        }
        /* chi */
        for (j = 0; j < 25; j += 5) {
            for (i = 0; i < 5; i++)
                c[i] = a[j + i];
            for (i = 0; i < 5; i++)
                a[j + i] = c[i] ^ (~c[(i + 1) % 5] & c[(i + 2) % 5]);
        }
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
