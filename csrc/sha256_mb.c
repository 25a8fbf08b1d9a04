#include "sha256_mb.h"

#include <string.h>
#include <time.h>

#include "sa_status.h"
#include "sha256.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SA_HAVE_MB_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SA_HAVE_MB_CODE 0
#endif

#define L16 SA_MB_MAX_LANES

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* The lanes of a group, transposed: word i of lane l at [i][l]. */
typedef struct {
    uint32_t st[8][L16];
    uint32_t w[16][L16];
} lanes;

typedef void (*kernel_fn)(lanes *g);
/* One compression of every lane l with its block src[l]; lanes whose bit in
 * `active` is clear keep their state. */
typedef void (*blocks_fn)(lanes *g, const uint8_t *const *src, unsigned active);

static const uint8_t ZERO_BLOCK[64];

/* A group's messages as blocks: lane l has full[l] blocks in place, then
 * its padding in pad[l] (nb[l] blocks in all); most is the longest. */
typedef struct {
    uint8_t pad[L16][128];
    size_t full[L16], nb[L16], most;
} plan;

/* Plan the group and load the initial states: lane l starts from init[l]
 * with `prefix` bytes already absorbed (0 for SHA-256, 64 for an HMAC inner
 * hash). Lanes at or past m take no part (state 0, no blocks). */
static void plan_group(plan *p, int lanes_n, lanes *g, const uint32_t *const *init,
                       uint64_t prefix, const uint8_t *const *msgs, const size_t *lens, int m)
{
    int l, i;
    p->most = 0;
    for (l = 0; l < lanes_n; l++) {
        size_t len = l < m ? lens[l] : 0, tail = len % 64, np;
        uint64_t bits = (prefix + (uint64_t)len) * 8;
        if (l >= m) {
            p->full[l] = p->nb[l] = 0;
            for (i = 0; i < 8; i++)
                g->st[i][l] = 0;
            continue;
        }
        p->full[l] = len / 64;
        np = tail + 9 > 64 ? 2 : 1;
        p->nb[l] = p->full[l] + np;
        if (tail)
            memcpy(p->pad[l], msgs[l] + 64 * p->full[l], tail);
        memset(p->pad[l] + tail, 0, 64 * np - tail);
        p->pad[l][tail] = 0x80;
        for (i = 0; i < 8; i++)
            p->pad[l][64 * np - 1 - i] = (uint8_t)(bits >> (8 * i));
        if (p->nb[l] > p->most)
            p->most = p->nb[l];
        for (i = 0; i < 8; i++)
            g->st[i][l] = init[l][i];
    }
}

/* Block j of every lane (a zero block for a lane that has no block j) and
 * the mask of the lanes that have one. */
static unsigned plan_blocks(const plan *p, int lanes_n, const uint8_t *const *msgs, size_t j,
                            const uint8_t **src)
{
    unsigned active = 0;
    int l;
    for (l = 0; l < lanes_n; l++) {
        if (j < p->full[l])
            src[l] = msgs[l] + 64 * j;
        else if (j < p->nb[l])
            src[l] = p->pad[l] + 64 * (j - p->full[l]);
        else
            src[l] = ZERO_BLOCK;
        active |= (unsigned)(j < p->nb[l]) << l;
    }
    return active;
}

/* ---- the portable reference ------------------------------------------------ */

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* One compression of every lane, one lane after another (plain C: what the
 * constant-time check runs under valgrind). */
static void k_portable(lanes *g)
{
    int l, t;
    for (l = 0; l < L16; l++) {
        uint32_t w[64], a, b, c, d, e, f, h, gg, t1, t2;
        for (t = 0; t < 16; t++)
            w[t] = g->w[t][l];
        for (t = 16; t < 64; t++) {
            uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        a = g->st[0][l]; b = g->st[1][l]; c = g->st[2][l]; d = g->st[3][l];
        e = g->st[4][l]; f = g->st[5][l]; gg = g->st[6][l]; h = g->st[7][l];
        for (t = 0; t < 64; t++) {
            t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & gg)) + K[t] + w[t];
            t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = gg; gg = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        g->st[0][l] += a; g->st[1][l] += b; g->st[2][l] += c; g->st[3][l] += d;
        g->st[4][l] += e; g->st[5][l] += f; g->st[6][l] += gg; g->st[7][l] += h;
    }
}

/* ---- AVX2: 8 lanes ------------------------------------------------------------ */

#if SA_HAVE_MB_CODE
#define V8_ROR(x, n) _mm256_or_si256(_mm256_srli_epi32((x), (n)), _mm256_slli_epi32((x), 32 - (n)))
#define V8_XOR3(x, y, z) _mm256_xor_si256(_mm256_xor_si256((x), (y)), (z))
#define V8_ADD(x, y) _mm256_add_epi32((x), (y))

__attribute__((target("avx2")))
static void k_avx2_half(lanes *g, int off)
{
    __m256i s[8], w[16], a, b, c, d, e, f, gg, h, t1, t2;
    int i, t;
    for (i = 0; i < 8; i++)
        s[i] = _mm256_loadu_si256((const __m256i *)(const void *)&g->st[i][off]);
    a = s[0]; b = s[1]; c = s[2]; d = s[3]; e = s[4]; f = s[5]; gg = s[6]; h = s[7];
    for (t = 0; t < 64; t++) {
        __m256i wt;
        if (t < 16) {
            wt = _mm256_loadu_si256((const __m256i *)(const void *)&g->w[t][off]);
        } else {
            __m256i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            __m256i s0 = V8_XOR3(V8_ROR(w15, 7), V8_ROR(w15, 18), _mm256_srli_epi32(w15, 3));
            __m256i s1 = V8_XOR3(V8_ROR(w2, 17), V8_ROR(w2, 19), _mm256_srli_epi32(w2, 10));
            wt = V8_ADD(V8_ADD(w[t & 15], s0), V8_ADD(w[(t - 7) & 15], s1));
        }
        w[t & 15] = wt;
        t1 = V8_ADD(V8_ADD(h, V8_XOR3(V8_ROR(e, 6), V8_ROR(e, 11), V8_ROR(e, 25))),
                    V8_ADD(_mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, gg)),
                           V8_ADD(_mm256_set1_epi32((int)K[t]), wt)));
        t2 = V8_ADD(V8_XOR3(V8_ROR(a, 2), V8_ROR(a, 13), V8_ROR(a, 22)),
                    _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_or_si256(a, b))));
        h = gg; gg = f; f = e; e = V8_ADD(d, t1); d = c; c = b; b = a; a = V8_ADD(t1, t2);
    }
    s[0] = V8_ADD(s[0], a); s[1] = V8_ADD(s[1], b); s[2] = V8_ADD(s[2], c); s[3] = V8_ADD(s[3], d);
    s[4] = V8_ADD(s[4], e); s[5] = V8_ADD(s[5], f); s[6] = V8_ADD(s[6], gg); s[7] = V8_ADD(s[7], h);
    for (i = 0; i < 8; i++)
        _mm256_storeu_si256((__m256i *)(void *)&g->st[i][off], s[i]);
}

static void k_avx2(lanes *g)
{
    k_avx2_half(g, 0);
}

/* ---- AVX-512: 16 lanes ---------------------------------------------------------- */

#define V16_ADD(x, y) _mm512_add_epi32((x), (y))
#define V16_XOR3(x, y, z) _mm512_ternarylogic_epi32((x), (y), (z), 0x96)

/* 64 rounds on the 16 lanes' states s[] with the message words w[] (the
 * schedule is expanded in place); the lanes set in `active` get the result
 * added to their state, the others keep theirs. */
__attribute__((target("avx512f")))
static inline void rounds512(__m512i s[8], __m512i w[16], __mmask16 active)
{
    __m512i a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], gg = s[6], h = s[7];
    __m512i t1, t2;
    int t;
    for (t = 0; t < 64; t++) {
        __m512i wt;
        if (t < 16) {
            wt = w[t];
        } else {
            __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            __m512i s0 = V16_XOR3(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18),
                                  _mm512_srli_epi32(w15, 3));
            __m512i s1 = V16_XOR3(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19),
                                  _mm512_srli_epi32(w2, 10));
            wt = V16_ADD(V16_ADD(w[t & 15], s0), V16_ADD(w[(t - 7) & 15], s1));
            w[t & 15] = wt;
        }
        t1 = V16_ADD(V16_ADD(h, V16_XOR3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11),
                                         _mm512_ror_epi32(e, 25))),
                     V16_ADD(_mm512_ternarylogic_epi32(e, f, gg, 0xCA),
                             V16_ADD(_mm512_set1_epi32((int)K[t]), wt)));
        t2 = V16_ADD(V16_XOR3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13),
                              _mm512_ror_epi32(a, 22)),
                     _mm512_ternarylogic_epi32(a, b, c, 0xE8));
        h = gg; gg = f; f = e; e = V16_ADD(d, t1); d = c; c = b; b = a; a = V16_ADD(t1, t2);
    }
    s[0] = _mm512_mask_add_epi32(s[0], active, s[0], a);
    s[1] = _mm512_mask_add_epi32(s[1], active, s[1], b);
    s[2] = _mm512_mask_add_epi32(s[2], active, s[2], c);
    s[3] = _mm512_mask_add_epi32(s[3], active, s[3], d);
    s[4] = _mm512_mask_add_epi32(s[4], active, s[4], e);
    s[5] = _mm512_mask_add_epi32(s[5], active, s[5], f);
    s[6] = _mm512_mask_add_epi32(s[6], active, s[6], gg);
    s[7] = _mm512_mask_add_epi32(s[7], active, s[7], h);
}

/* One compression of all 16 lanes with the words in g->w. */
__attribute__((target("avx512f")))
static void k_avx512(lanes *g)
{
    __m512i s[8], w[16];
    int i;
    for (i = 0; i < 8; i++)
        s[i] = _mm512_loadu_si512((const void *)&g->st[i][0]);
    for (i = 0; i < 16; i++)
        w[i] = _mm512_loadu_si512((const void *)&g->w[i][0]);
    rounds512(s, w, 0xFFFF);
    for (i = 0; i < 8; i++)
        _mm512_storeu_si512((void *)&g->st[i][0], s[i]);
}

/* The 16 lanes' blocks src[l] as 16 vectors of big-endian words (word t
 * of lane l in element l of r[t]): loaded as rows, transposed (16 x 16,
 * 32-bit elements) and byte-swapped. */
__attribute__((target("avx512f")))
static inline void load_words512(__m512i r[16], const uint8_t *const *src)
{
    __m512i t[16], u[16];
    const __m512i m = _mm512_set1_epi32((int)0xFF00FF00u);
    int i, j;
    for (i = 0; i < 16; i++)
        r[i] = _mm512_loadu_si512((const void *)src[i]);
    for (i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (i = 0; i < 4; i++) {
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (j = 0; j < 4; j++) {
        __m512i x0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44);
        __m512i x1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xEE);
        __m512i y0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44);
        __m512i y1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xEE);
        r[j] = _mm512_shuffle_i32x4(x0, y0, 0x88);
        r[4 + j] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
        r[8 + j] = _mm512_shuffle_i32x4(x1, y1, 0x88);
        r[12 + j] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
    }
    for (i = 0; i < 16; i++)   /* big-endian words: bytes 3 and 1 from ror 8, 2 and 0 from ror 24 */
        r[i] = _mm512_ternarylogic_epi32(m, _mm512_ror_epi32(r[i], 8), _mm512_ror_epi32(r[i], 24),
                                         0xCA);
}

/* One compression of every lane l with its 64-byte block src[l]. */
__attribute__((target("avx512f")))
static void b_avx512(lanes *g, const uint8_t *const *src, unsigned active)
{
    __m512i s[8], r[16];
    int i;
    load_words512(r, src);
    for (i = 0; i < 8; i++)
        s[i] = _mm512_loadu_si512((const void *)&g->st[i][0]);
    rounds512(s, r, (__mmask16)active);
    for (i = 0; i < 8; i++)
        _mm512_storeu_si512((void *)&g->st[i][0], s[i]);
}

/* A whole HMAC group in registers: the inner hashes block after block
 * (the states stay in registers), then the outer block built from them
 * (inner digest, 0x80, the length 768 bits) without a trip through memory.
 * g->st holds the inner states on entry (plan_group) and the tags on exit. */
__attribute__((target("avx512f")))
static void hmac_avx512(lanes *g, const plan *p, const sa_hmac_key *const *keys, int m,
                        const uint8_t *const *msgs)
{
    __m512i s[8], o[8], r[16];
    const uint8_t *src[L16];
    size_t j;
    int i, l;
    for (i = 0; i < 8; i++)
        s[i] = _mm512_loadu_si512((const void *)&g->st[i][0]);
    for (j = 0; j < p->most; j++) {
        unsigned active = plan_blocks(p, L16, msgs, j, src);
        load_words512(r, src);
        rounds512(s, r, (__mmask16)active);
    }
    for (l = 0; l < L16; l++)
        for (i = 0; i < 8; i++)
            g->st[i][l] = l < m ? keys[l]->outer[i] : 0;
    for (i = 0; i < 8; i++) {
        o[i] = _mm512_loadu_si512((const void *)&g->st[i][0]);
        r[i] = s[i];
    }
    r[8] = _mm512_set1_epi32((int)0x80000000u);
    for (i = 9; i < 15; i++)
        r[i] = _mm512_setzero_si512();
    r[15] = _mm512_set1_epi32((64 + 32) * 8);
    rounds512(o, r, 0xFFFF);
    for (i = 0; i < 8; i++)
        _mm512_storeu_si512((void *)&g->st[i][0], o[i]);
}

static int cpu_xcr0(unsigned int want)
{
    unsigned int a, b, c, d, lo, hi;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28)))   /* OSXSAVE, AVX */
        return 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & want) == want;
}

static int cpu_leaf7_ebx(unsigned int bits)
{
    unsigned int a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bits) == bits;
}
#endif

/* ---- implementations and selection -------------------------------------------- */

static int cpu_has(int impl)
{
    switch (impl) {
    case SA_MB_PORTABLE:
    case SA_MB_NONE:
        return 1;
#if SA_HAVE_MB_CODE
    case SA_MB_AVX2:   /* YMM state saved by the OS; AVX2 */
        return cpu_xcr0(0x6u) && cpu_leaf7_ebx(1u << 5);
    case SA_MB_AVX512: /* + opmask and ZMM state; AVX512F */
        return cpu_xcr0(0xE6u) && cpu_leaf7_ebx(1u << 16);
#endif
    default:
        return 0;
    }
}

/* CPUID once per implementation: in a virtual machine each CPUID is a trip
 * to the hypervisor (microseconds). -1: not asked yet. */
static int g_avail[SA_MB_NONE + 1] = {-1, -1, -1, -1, -1};

int sa_mb_available(int impl)
{
    if (impl < SA_MB_PORTABLE || impl > SA_MB_NONE)
        return 0;
    if (g_avail[impl] < 0)
        g_avail[impl] = cpu_has(impl);
    return g_avail[impl];
}

int sa_mb_lanes(int impl)
{
    switch (impl) {
    case SA_MB_AVX2: return 8;
    case SA_MB_AVX512: return 16;
    case SA_MB_PORTABLE: return 16;
    default: return 2;
    }
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* blocks_fn for a kernel that takes its words from g->w: gather them one by
 * one, keep the states of the idle lanes. */
static void gather_blocks(kernel_fn kern, int lanes_n, lanes *g, const uint8_t *const *src,
                          unsigned active)
{
    uint32_t keep[8][L16];
    unsigned all = (1u << lanes_n) - 1;
    int l, t, i;
    for (l = 0; l < lanes_n; l++)
        for (t = 0; t < 16; t++)
            g->w[t][l] = be32(src[l] + 4 * t);
    if ((active & all) != all)
        memcpy(keep, g->st, sizeof(keep));
    kern(g);
    if ((active & all) != all)
        for (l = 0; l < lanes_n; l++)
            if (!(active & (1u << l)))
                for (i = 0; i < 8; i++)
                    g->st[i][l] = keep[i][l];
}

static void b_portable(lanes *g, const uint8_t *const *src, unsigned active)
{
    gather_blocks(k_portable, L16, g, src, active);
}

#if SA_HAVE_MB_CODE
static void b_avx2(lanes *g, const uint8_t *const *src, unsigned active)
{
    gather_blocks(k_avx2, 8, g, src, active);
}
#endif

static kernel_fn kernel_of(int impl)
{
    (void)impl;   /* only the portable kernel where no vector code is compiled in */
#if SA_HAVE_MB_CODE
    if (impl == SA_MB_AVX2)
        return k_avx2;
    if (impl == SA_MB_AVX512)
        return k_avx512;
#endif
    return k_portable;
}

static blocks_fn blocks_of(int impl)
{
    (void)impl;
#if SA_HAVE_MB_CODE
    if (impl == SA_MB_AVX2)
        return b_avx2;
    if (impl == SA_MB_AVX512)
        return b_avx512;
#endif
    return b_portable;
}


/* Hash up to `lanes` messages at once: lane l starts from init[l] with
 * `prefix` bytes already absorbed (0 for SHA-256, 64 for an HMAC inner hash)
 * and absorbs msgs[l][0..lens[l]) with the final padding; its state ends in
 * g->st[.][l]. Lanes at or past m take no part (their words are zero and
 * their state is not looked at). Block j of a lane shorter than the longest
 * is a zero block whose result is thrown away: the lanes' states advance
 * only through their own blocks. */
/* Hash up to `lanes_n` messages at once (see plan_group); lane l's state
 * ends in g->st[.][l]. A lane shorter than the longest sits out the blocks
 * it does not have (its state is kept). The padding holds message bytes
 * only (public): no wipe; the HMAC callers wipe the states. */
static void hash_group(blocks_fn blocks, int lanes_n, lanes *g, const uint32_t *const *init,
                       uint64_t prefix, const uint8_t *const *msgs, const size_t *lens, int m)
{
    plan p;
    const uint8_t *src[L16];
    size_t j;

    plan_group(&p, lanes_n, g, init, prefix, msgs, lens, m);
    for (j = 0; j < p.most; j++) {
        unsigned active = plan_blocks(&p, lanes_n, msgs, j, src);
        blocks(g, src, active);
    }
}

static void put_digests(const lanes *g, int m, uint8_t *out)
{
    int l, i;
    for (l = 0; l < m; l++)
        for (i = 0; i < 8; i++) {
            uint32_t v = g->st[i][l];
            out[32 * l + 4 * i] = (uint8_t)(v >> 24);
            out[32 * l + 4 * i + 1] = (uint8_t)(v >> 16);
            out[32 * l + 4 * i + 2] = (uint8_t)(v >> 8);
            out[32 * l + 4 * i + 3] = (uint8_t)v;
        }
}

static int g_active = -1;   /* -1: not chosen yet */

static int resolve(int impl, kernel_fn *kern, blocks_fn *blocks, int *lanes_n)
{
    if (impl == SA_MB_AUTO || impl == SA_MB_NONE) {
        impl = sa_mb_active();
        if (impl == SA_MB_NONE)
            impl = SA_MB_PORTABLE;
    }
    if (!sa_mb_available(impl))
        return -1;
    *kern = kernel_of(impl);
    *blocks = blocks_of(impl);
    *lanes_n = impl == SA_MB_AVX2 ? 8 : 16;
    return impl;
}

int sa_sha256_mb(int impl, const uint8_t *const *msgs, const size_t *lens, size_t n,
                 uint8_t *out)
{
    lanes g;
    kernel_fn kern;
    blocks_fn blocks;
    const uint32_t *init[L16];
    int lanes_n, l;
    size_t base;

    if (resolve(impl, &kern, &blocks, &lanes_n) < 0)
        return -1;
    for (l = 0; l < L16; l++)
        init[l] = sa_sha256_iv;
    memset(&g, 0, sizeof(g));
    for (base = 0; base < n; base += (size_t)lanes_n) {
        int m = n - base < (size_t)lanes_n ? (int)(n - base) : lanes_n;
        hash_group(blocks, lanes_n, &g, init, 0, msgs + base, lens + base, m);
        put_digests(&g, m, out + 32 * base);
    }
    return SA_OK;
}

/* HMACs of the group's m lanes: inner hashes from the keys' inner states,
 * then one outer block each (the inner digest, 0x80, the length 768 bits). */
static void hmac_group(kernel_fn kern, blocks_fn blocks, int lanes_n, lanes *g,
                       const sa_hmac_key *const *keys,
                       const uint8_t *const *msgs, const size_t *lens, int m, uint8_t *out)
{
    const uint32_t *init[L16];
    int l, i;
    for (l = 0; l < lanes_n; l++)
        init[l] = l < m ? keys[l]->inner : sa_sha256_iv;
#if SA_HAVE_MB_CODE
    if (blocks == b_avx512) {
        plan p;
        plan_group(&p, lanes_n, g, init, 64, msgs, lens, m);
        hmac_avx512(g, &p, keys, m, msgs);
        put_digests(g, m, out);
        return;
    }
#endif
    hash_group(blocks, lanes_n, g, init, 64, msgs, lens, m);
    for (l = 0; l < lanes_n; l++) {
        for (i = 0; i < 8; i++) {
            g->w[i][l] = g->st[i][l];
            g->st[i][l] = l < m ? keys[l]->outer[i] : 0;
        }
        g->w[8][l] = 0x80000000u;
        for (i = 9; i < 15; i++)
            g->w[i][l] = 0;
        g->w[15][l] = (64 + 32) * 8;
    }
    kern(g);
    put_digests(g, m, out);
}

static int hmac_mb(int impl, const sa_hmac_key *const *keys, const uint8_t *const *msgs,
                   const size_t *lens, size_t n, uint8_t *out)
{
    lanes g;
    kernel_fn kern;
    blocks_fn blocks;
    int lanes_n;
    size_t base;

    if (resolve(impl, &kern, &blocks, &lanes_n) < 0)
        return -1;
    memset(&g, 0, sizeof(g));
    for (base = 0; base < n; base += (size_t)lanes_n) {
        int m = n - base < (size_t)lanes_n ? (int)(n - base) : lanes_n;
        hmac_group(kern, blocks, lanes_n, &g, keys + base, msgs + base, lens + base, m, out + 32 * base);
    }
    sa_wipe(&g, sizeof(g));
    return SA_OK;
}

int sa_hmac_sha256_mb(int impl, const sa_hmac_key *const *keys, const uint8_t *const *msgs,
                      const size_t *lens, size_t n, uint8_t *out)
{
    size_t i;
    if ((n && (!keys || !msgs || !lens || !out)))
        return SA_E_ARG;
    for (i = 0; i < n; i++)
        if (!keys[i] || !keys[i]->ready || (!msgs[i] && lens[i]))
            return SA_E_ARG;
    return hmac_mb(impl, keys, msgs, lens, n, out);
}

/* ---- the measurement behind SA_MB_AUTO ------------------------------------------ */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define PROBE_N 32
#define PROBE_LEN 330   /* the signing input of a ~375-byte RPC credential */

/* The time of one run of the HMAC path impl over PROBE_N messages. */
static double probe(int impl, const sa_hmac_key *k, const uint8_t *const *msgs,
                    const size_t *lens, uint8_t *out)
{
    const sa_hmac_key *keys[PROBE_N];
    double t0;
    int i;
    for (i = 0; i < PROBE_N; i++)
        keys[i] = k;
    t0 = now_ns();
    if (impl == SA_MB_NONE) {
        for (i = 0; i + 1 < PROBE_N; i += 2)
            sa_hmac_sha256_x2(k, msgs[i], lens[i], out + 32 * i, k, msgs[i + 1], lens[i + 1],
                              out + 32 * (i + 1));
    } else {
        hmac_mb(impl, keys, msgs, lens, PROBE_N, out);
    }
    return now_ns() - t0;
}

/* A vector path is chosen only when its HMACs take less than this share of
 * the 2-way path's: sc_verify_many's pairs hide part of their MACs behind the
 * claims scan, which an HMAC-only probe cannot see (Zen 4, C harness: ~30 of
 * ~157 ns per token), and a close call would otherwise follow the noise (on
 * Zen 4 the AVX-512 path is ~5% slower than the 2-way one, and a load burst
 * during the 2-way probe used to hand verify_many to it: ~410 ns per token
 * instead of ~310). */
#define PROBE_MARGIN 0.75

static int measure(void)
{
    static uint8_t buf[PROBE_N][PROBE_LEN];
    const uint8_t *msgs[PROBE_N];
    size_t lens[PROBE_N];
    uint8_t out[32 * PROBE_N];
    sa_hmac_key k;
    const int cands[3] = {SA_MB_NONE, SA_MB_AVX2, SA_MB_AVX512};
    double best[3] = {1e300, 1e300, 1e300}, want;
    int i, r, pick = SA_MB_NONE;

    for (i = 0; i < PROBE_N; i++) {
        memset(buf[i], 'a' + i % 26, PROBE_LEN);
        msgs[i] = buf[i];
        lens[i] = PROBE_LEN;
    }
    sa_hmac_key_init(&k, (const uint8_t *)"probe", 5);
    /* the best of five rounds, the candidates taking turns within each, so a
     * burst of load from elsewhere hurts them alike */
    for (r = 0; r < 5; r++)
        for (i = 0; i < 3; i++) {
            double t;
            if (!sa_mb_available(cands[i]))
                continue;
            t = probe(cands[i], &k, msgs, lens, out);
            if (t < best[i])
                best[i] = t;
        }
    want = best[0] * PROBE_MARGIN;
    for (i = 1; i < 3; i++)
        if (best[i] < want) {
            want = best[i];
            pick = cands[i];
        }
    sa_hmac_key_wipe(&k);
    return pick;
}

int sa_mb_select(int impl)
{
    if (impl == SA_MB_AUTO)
        impl = measure();
    if (impl < SA_MB_PORTABLE || impl > SA_MB_NONE || !sa_mb_available(impl))
        return -1;
    g_active = impl;
    return impl;
}

int sa_mb_active(void)
{
    if (g_active < 0)
        sa_mb_select(SA_MB_AUTO);
    return g_active;
}
