#include "keccak.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SA_HAVE_AVX512_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SA_HAVE_AVX512_CODE 0
#endif

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
static void p1600_portable(uint64_t a[25], unsigned rounds)
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

/* ---- AVX-512VL: one lane per 128-bit register ----------------------------
 * Each lane lives in the low qword of its own xmm register (the high qword is
 * don't-care: every operation is lane-wise), so a round's 25 input lanes, its
 * 5 theta terms and the output lanes being produced nearly fit the 32 EVEX
 * registers (gcc 12 keeps about ten operands a round on the stack). A round is computed one output plane at a time (rho and pi
 * of the 5 lanes that land in plane y, then chi on them), so the inputs die
 * as the outputs are born; two variable sets A and E alternate between
 * rounds, which makes pi a pure renaming. vpternlogq does the three-input
 * steps in one instruction; its immediate is the truth table indexed by
 * (a << 2 | b << 1 | c):
 *   0x96 = a ^ b ^ c          (theta's column parities)
 *   0xD2 = a ^ (~b & c)       (chi)
 * and vprolq is the rotation. */
#if SA_HAVE_AVX512_CODE
#define TL_XOR3 0x96
#define TL_CHI 0xD2
#define X3(a, b, c) _mm_ternarylogic_epi64((a), (b), (c), TL_XOR3)
#define CHI(a, b, c) _mm_ternarylogic_epi64((a), (b), (c), TL_CHI)
#define XOR2(a, b) _mm_xor_si128((a), (b))
#define ROLV(x, n) _mm_rol_epi64((x), (n))

/* theta: column parities c[x] and d[x] = c[x-1] ^ rot(c[x+1], 1) */
#define THETA(A)                                                                            \
    do {                                                                                    \
        c0 = X3(X3(A##0, A##5, A##10), A##15, A##20);                                       \
        c1 = X3(X3(A##1, A##6, A##11), A##16, A##21);                                       \
        c2 = X3(X3(A##2, A##7, A##12), A##17, A##22);                                       \
        c3 = X3(X3(A##3, A##8, A##13), A##18, A##23);                                       \
        c4 = X3(X3(A##4, A##9, A##14), A##19, A##24);                                       \
        d0 = XOR2(c4, ROLV(c1, 1));                                                         \
        d1 = XOR2(c0, ROLV(c2, 1));                                                         \
        d2 = XOR2(c1, ROLV(c3, 1));                                                         \
        d3 = XOR2(c2, ROLV(c4, 1));                                                         \
        d4 = XOR2(c3, ROLV(c0, 1));                                                         \
    } while (0)

/* One round, A -> E, with round constant rc. Output plane y: its lane x is
 * b[x] = rot(A[i] ^ d[i mod 5], r[i]) for the lane i that pi moves there
 * (b[y, 2x'+3y'] = rot(a[x', y']): rho's offsets are FIPS 202 table 2, pi is
 * section 3.2.3), then chi
 * E[x + 5y] = b[x] ^ (~b[x+1] & b[x+2]), and iota on lane 0. */
#define ROUND(A, E, rc)                                                                 \
    do {                                                                                \
        THETA(A);                                                                       \
        b0 = XOR2(A##0, d0);                                                            \
        b1 = ROLV(XOR2(A##6, d1), 44);                                                  \
        b2 = ROLV(XOR2(A##12, d2), 43);                                                 \
        b3 = ROLV(XOR2(A##18, d3), 21);                                                 \
        b4 = ROLV(XOR2(A##24, d4), 14);                                                 \
        E##0 = XOR2(CHI(b0, b1, b2), (rc));                                             \
        E##1 = CHI(b1, b2, b3);                                                         \
        E##2 = CHI(b2, b3, b4);                                                         \
        E##3 = CHI(b3, b4, b0);                                                         \
        E##4 = CHI(b4, b0, b1);                                                         \
        b0 = ROLV(XOR2(A##3, d3), 28);                                                  \
        b1 = ROLV(XOR2(A##9, d4), 20);                                                  \
        b2 = ROLV(XOR2(A##10, d0), 3);                                                  \
        b3 = ROLV(XOR2(A##16, d1), 45);                                                 \
        b4 = ROLV(XOR2(A##22, d2), 61);                                                 \
        E##5 = CHI(b0, b1, b2);                                                         \
        E##6 = CHI(b1, b2, b3);                                                         \
        E##7 = CHI(b2, b3, b4);                                                         \
        E##8 = CHI(b3, b4, b0);                                                         \
        E##9 = CHI(b4, b0, b1);                                                         \
        b0 = ROLV(XOR2(A##1, d1), 1);                                                   \
        b1 = ROLV(XOR2(A##7, d2), 6);                                                   \
        b2 = ROLV(XOR2(A##13, d3), 25);                                                 \
        b3 = ROLV(XOR2(A##19, d4), 8);                                                  \
        b4 = ROLV(XOR2(A##20, d0), 18);                                                 \
        E##10 = CHI(b0, b1, b2);                                                        \
        E##11 = CHI(b1, b2, b3);                                                        \
        E##12 = CHI(b2, b3, b4);                                                        \
        E##13 = CHI(b3, b4, b0);                                                        \
        E##14 = CHI(b4, b0, b1);                                                        \
        b0 = ROLV(XOR2(A##4, d4), 27);                                                  \
        b1 = ROLV(XOR2(A##5, d0), 36);                                                  \
        b2 = ROLV(XOR2(A##11, d1), 10);                                                 \
        b3 = ROLV(XOR2(A##17, d2), 15);                                                 \
        b4 = ROLV(XOR2(A##23, d3), 56);                                                 \
        E##15 = CHI(b0, b1, b2);                                                        \
        E##16 = CHI(b1, b2, b3);                                                        \
        E##17 = CHI(b2, b3, b4);                                                        \
        E##18 = CHI(b3, b4, b0);                                                        \
        E##19 = CHI(b4, b0, b1);                                                        \
        b0 = ROLV(XOR2(A##2, d2), 62);                                                  \
        b1 = ROLV(XOR2(A##8, d3), 55);                                                  \
        b2 = ROLV(XOR2(A##14, d4), 39);                                                 \
        b3 = ROLV(XOR2(A##15, d0), 41);                                                 \
        b4 = ROLV(XOR2(A##21, d1), 2);                                                  \
        E##20 = CHI(b0, b1, b2);                                                        \
        E##21 = CHI(b1, b2, b3);                                                        \
        E##22 = CHI(b2, b3, b4);                                                        \
        E##23 = CHI(b3, b4, b0);                                                        \
        E##24 = CHI(b4, b0, b1);                                                        \
    } while (0)

#define LOAD(A)                                                                             \
    do {                                                                                    \
        A##0 = LANE(0); A##1 = LANE(1); A##2 = LANE(2); A##3 = LANE(3); A##4 = LANE(4);     \
        A##5 = LANE(5); A##6 = LANE(6); A##7 = LANE(7); A##8 = LANE(8); A##9 = LANE(9);     \
        A##10 = LANE(10); A##11 = LANE(11); A##12 = LANE(12); A##13 = LANE(13);             \
        A##14 = LANE(14); A##15 = LANE(15); A##16 = LANE(16); A##17 = LANE(17);             \
        A##18 = LANE(18); A##19 = LANE(19); A##20 = LANE(20); A##21 = LANE(21);             \
        A##22 = LANE(22); A##23 = LANE(23); A##24 = LANE(24);                               \
    } while (0)
#define LANE(i) _mm_loadl_epi64((const __m128i *)&st[i])
#define RCV(i) _mm_loadl_epi64((const __m128i *)&RC[i])
#define STORE(i) _mm_storel_epi64((__m128i *)&st[i], a##i)

__attribute__((target("avx512f,avx512vl")))
static void p1600_avx512(uint64_t st[25], unsigned rounds)
{
    __m128i a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17,
        a18, a19, a20, a21, a22, a23, a24;
    __m128i e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15, e16, e17,
        e18, e19, e20, e21, e22, e23, e24;
    __m128i b0, b1, b2, b3, b4, c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
    unsigned r;

    if (rounds > 24)
        rounds = 24;
    r = 24 - rounds;
    /* Rounds go in pairs A -> E -> A; an odd count starts with one E -> A. */
    if (rounds & 1) {
        LOAD(e);
        ROUND(e, a, RCV(r));
        r++;
    } else {
        LOAD(a);
    }
    for (; r < 24; r += 2) {
        ROUND(a, e, RCV(r));
        ROUND(e, a, RCV(r + 1));
    }
    STORE(0); STORE(1); STORE(2); STORE(3); STORE(4); STORE(5); STORE(6); STORE(7);
    STORE(8); STORE(9); STORE(10); STORE(11); STORE(12); STORE(13); STORE(14); STORE(15);
    STORE(16); STORE(17); STORE(18); STORE(19); STORE(20); STORE(21); STORE(22); STORE(23);
    STORE(24);
}

#undef TL_XOR3
#undef TL_CHI
#undef X3
#undef CHI
#undef XOR2
#undef ROLV
#undef THETA
#undef ROUND
#undef LOAD
#undef LANE
#undef RCV
#undef STORE

/* AVX-512F and AVX-512VL, and the OS saving the SSE, AVX, opmask and ZMM
 * state (XCR0 bits 1, 2, 5, 6, 7): the EVEX code touches xmm16-31. */
static int cpu_has_avx512(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 27)))                        /* OSXSAVE */
        return 0;
    {
        unsigned int lo, hi;
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        if ((lo & 0xE6u) != 0xE6u)
            return 0;
    }
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 16)) && (b & (1u << 31)); /* AVX512F, AVX512VL */
}
#else
static int cpu_has_avx512(void) { return 0; }
#endif

typedef void (*p1600_fn)(uint64_t *, unsigned);
static void p1600_resolve(uint64_t st[25], unsigned rounds);
static p1600_fn active_p1600 = p1600_resolve;
static int active_impl = SA_KECCAK_AUTO;

int sa_keccak_select(int impl)
{
    if (impl == SA_KECCAK_AUTO)
        impl = cpu_has_avx512() ? SA_KECCAK_AVX512 : SA_KECCAK_PORTABLE;
    if (impl == SA_KECCAK_PORTABLE) {
        active_p1600 = p1600_portable;
    }
#if SA_HAVE_AVX512_CODE
    else if (impl == SA_KECCAK_AVX512 && cpu_has_avx512()) {
        active_p1600 = p1600_avx512;
    }
#endif
    else {
        return -1;
    }
    active_impl = impl;
    return impl;
}

int sa_keccak_active(void)
{
    if (active_impl == SA_KECCAK_AUTO)
        sa_keccak_select(SA_KECCAK_AUTO);
    return active_impl;
}

static void p1600_resolve(uint64_t st[25], unsigned rounds)
{
    sa_keccak_select(SA_KECCAK_AUTO);
    active_p1600(st, rounds);
}

void sa_keccak_p1600(uint64_t st[25], unsigned rounds)
{
    active_p1600(st, rounds);
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
