#include "sha256.h"

#include <string.h>

#include "hmac.h"   /* sa_wipe */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SA_HAVE_SHANI_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SA_HAVE_SHANI_CODE 0
#endif

/* aarch64: the ARMv8 SHA-2 instructions (FEAT_SHA256), used when the kernel
 * reports HWCAP_SHA2 in the auxiliary vector. gcc compiles them in one
 * function with a target attribute; clang's arm_neon.h (before the versions
 * that honour the attribute) declares them only when the whole unit is built
 * for them, so clang gets them with -march=armv8-a+crypto (or +sha2) only. */
#if defined(__aarch64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__)) || defined(__ARM_FEATURE_SHA2) || \
     defined(__ARM_FEATURE_CRYPTO))
#define SA_HAVE_ARMV8_CODE 1
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1UL << 6)
#endif
#if defined(__clang__)
#define SA_TARGET_ARMV8_SHA2 __attribute__((target("sha2")))
#else
#define SA_TARGET_ARMV8_SHA2 __attribute__((target("+crypto")))
#endif
#else
#define SA_HAVE_ARMV8_CODE 0
#endif

const uint32_t sa_sha256_iv[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void blocks_portable(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    uint32_t w[64];
    while (nblocks--) {
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        int i;
        for (i = 0; i < 16; i++)
            w[i] = load_be32(data + 4 * i);
        for (i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        for (i = 0; i < 64; i++) {
            uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = h + S1 + ch + K[i] + w[i];
            uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
            uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = S0 + mj;
            h = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
        data += 64;
    }
}

#if SA_HAVE_SHANI_CODE
/* The state as SHA-NI holds it: ABEF and CDGH. */
__attribute__((target("sha,sse4.1,ssse3")))
static inline void shani_load(const uint32_t state[8], __m128i *abef, __m128i *cdgh)
{
    __m128i tmp = _mm_loadu_si128((const __m128i *)(const void *)&state[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)(const void *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);          /* EFGH */
    *abef = _mm_alignr_epi8(tmp, st1, 8);        /* ABEF */
    *cdgh = _mm_blend_epi16(st1, tmp, 0xF0);     /* CDGH */
}

__attribute__((target("sha,sse4.1,ssse3")))
static inline void shani_store(uint32_t state[8], __m128i abef, __m128i cdgh)
{
    __m128i tmp = _mm_shuffle_epi32(abef, 0x1B); /* FEBA */
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);        /* DCHG */
    _mm_storeu_si128((__m128i *)(void *)&state[0], _mm_blend_epi16(tmp, cdgh, 0xF0)); /* DCBA */
    _mm_storeu_si128((__m128i *)(void *)&state[4], _mm_alignr_epi8(cdgh, tmp, 8));    /* HGFE */
}

#define SHANI_LOAD_W(w, data, mask)                                                        \
    do {                                                                                   \
        int q_;                                                                            \
        for (q_ = 0; q_ < 4; q_++)                                                         \
            (w)[q_] = _mm_shuffle_epi8(                                                    \
                _mm_loadu_si128((const __m128i *)(const void *)((data) + 16 * q_)), (mask)); \
    } while (0)

/* Four rounds of group g (0..15) for one stream: Intel's published
 * instruction sequence (two sha256rnds2, the message schedule for later
 * groups by sha256msg1/msg2). */
#define SHANI_GROUP(g, st0, st1, w, k)                                                  \
    do {                                                                                \
        __m128i m_ = _mm_add_epi32((w)[(g) & 3], (k));                                  \
        (st1) = _mm_sha256rnds2_epu32((st1), (st0), m_);                                \
        if ((g) >= 3 && (g) <= 14) {                                                    \
            __m128i t_ = _mm_alignr_epi8((w)[(g) & 3], (w)[((g) + 3) & 3], 4);          \
            (w)[((g) + 1) & 3] = _mm_add_epi32((w)[((g) + 1) & 3], t_);                 \
            (w)[((g) + 1) & 3] = _mm_sha256msg2_epu32((w)[((g) + 1) & 3], (w)[(g) & 3]); \
        }                                                                               \
        m_ = _mm_shuffle_epi32(m_, 0x0E);                                               \
        (st0) = _mm_sha256rnds2_epu32((st0), (st1), m_);                                \
        if ((g) >= 1 && (g) <= 12)                                                      \
            (w)[((g) + 3) & 3] = _mm_sha256msg1_epu32((w)[((g) + 3) & 3], (w)[(g) & 3]); \
    } while (0)

static const uint8_t BSWAP_MASK[16] = {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12};

#if defined(__GNUC__) && !defined(__clang__)
#define SHANI_UNROLL _Pragma("GCC unroll 16")
#else
#define SHANI_UNROLL
#endif

/* One block's 64 rounds on the state (st0, st1) with message words w. */
__attribute__((target("sha,sse4.1,ssse3")))
static inline void shani_rounds(__m128i *st0, __m128i *st1, __m128i w[4])
{
    __m128i a0 = *st0, a1 = *st1;
    int g;

    SHANI_UNROLL
    for (g = 0; g < 16; g++)
        SHANI_GROUP(g, a0, a1, w, _mm_loadu_si128((const __m128i *)(const void *)&K[4 * g]));
    *st0 = _mm_add_epi32(*st0, a0);
    *st1 = _mm_add_epi32(*st1, a1);
}

/* The same for two independent states and blocks, their rounds interleaved:
 * sha256rnds2 has a latency of several cycles but issues more often, so one
 * dependent chain leaves the unit idle most of the time and a second chain
 * fills it. */
__attribute__((target("sha,sse4.1,ssse3")))
static inline void shani_rounds2(__m128i *sa0, __m128i *sa1, __m128i wa[4],
                                 __m128i *sb0, __m128i *sb1, __m128i wb[4])
{
    __m128i a0 = *sa0, a1 = *sa1, b0 = *sb0, b1 = *sb1;
    int g;

    SHANI_UNROLL
    for (g = 0; g < 16; g++) {
        const __m128i k = _mm_loadu_si128((const __m128i *)(const void *)&K[4 * g]);
        SHANI_GROUP(g, a0, a1, wa, k);
        SHANI_GROUP(g, b0, b1, wb, k);
    }
    *sa0 = _mm_add_epi32(*sa0, a0);
    *sa1 = _mm_add_epi32(*sa1, a1);
    *sb0 = _mm_add_epi32(*sb0, b0);
    *sb1 = _mm_add_epi32(*sb1, b1);
}

__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    const __m128i mask = _mm_loadu_si128((const __m128i *)(const void *)BSWAP_MASK);
    __m128i st0, st1, w[4];

    shani_load(state, &st0, &st1);
    for (; nblocks--; data += 64) {
        SHANI_LOAD_W(w, data, mask);
        shani_rounds(&st0, &st1, w);
    }
    shani_store(state, st0, st1);
}

__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani_x2(uint32_t sa[8], const uint8_t *da, uint32_t sb[8], const uint8_t *db,
                            size_t nblocks)
{
    const __m128i mask = _mm_loadu_si128((const __m128i *)(const void *)BSWAP_MASK);
    __m128i a0, a1, b0, b1, wa[4], wb[4];

    shani_load(sa, &a0, &a1);
    shani_load(sb, &b0, &b1);
    for (; nblocks--; da += 64, db += 64) {
        SHANI_LOAD_W(wa, da, mask);
        SHANI_LOAD_W(wb, db, mask);
        shani_rounds2(&a0, &a1, wa, &b0, &b1, wb);
    }
    shani_store(sa, a0, a1);
    shani_store(sb, b0, b1);
}

/* HMAC's outer hash: the block is the 32-byte inner digest, whose big-endian
 * words are the inner state's words, then the padding of a 96-byte message
 * (64 key bytes + 32): built in registers, never stored as bytes. */
__attribute__((target("sha,sse4.1,ssse3")))
static inline void shani_outer_block(__m128i w[4], const uint32_t inner[8])
{
    w[0] = _mm_loadu_si128((const __m128i *)(const void *)&inner[0]);
    w[1] = _mm_loadu_si128((const __m128i *)(const void *)&inner[4]);
    w[2] = _mm_set_epi32(0, 0, 0, (int)0x80000000u);
    w[3] = _mm_set_epi32(96 * 8, 0, 0, 0);
}

__attribute__((target("sha,sse4.1,ssse3")))
static void outer_shani(const uint32_t outer[8], const uint32_t inner[8], uint32_t out[8])
{
    __m128i st0, st1, w[4];

    shani_load(outer, &st0, &st1);
    shani_outer_block(w, inner);
    shani_rounds(&st0, &st1, w);
    shani_store(out, st0, st1);
}

__attribute__((target("sha,sse4.1,ssse3")))
static void outer_shani_x2(const uint32_t oa[8], const uint32_t ia[8], uint32_t outa[8],
                           const uint32_t ob[8], const uint32_t ib[8], uint32_t outb[8])
{
    __m128i a0, a1, b0, b1, wa[4], wb[4];

    shani_load(oa, &a0, &a1);
    shani_load(ob, &b0, &b1);
    shani_outer_block(wa, ia);
    shani_outer_block(wb, ib);
    shani_rounds2(&a0, &a1, wa, &b0, &b1, wb);
    shani_store(outa, a0, a1);
    shani_store(outb, b0, b1);
}

/* One compression in two halves, the state between them (and between blocks)
 * kept in mid[] in SHA-NI's layout: [0..7] ABEF CDGH, [8..15] their values at
 * the block's start, [16..31] the message schedule. Half 0 reads the block
 * (bytes, big-endian) or its 16 message words. */
__attribute__((target("sha,sse4.1,ssse3")))
static void half_shani(uint32_t mid[32], const uint8_t *block, const uint32_t *words, int half)
{
    __m128i st0 = _mm_loadu_si128((const __m128i *)(const void *)&mid[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)(const void *)&mid[4]);
    __m128i w[4];
    int g, q;

    if (!half) {
        _mm_storeu_si128((__m128i *)(void *)&mid[8], st0);
        _mm_storeu_si128((__m128i *)(void *)&mid[12], st1);
        if (block) {
            const __m128i mask = _mm_loadu_si128((const __m128i *)(const void *)BSWAP_MASK);
            SHANI_LOAD_W(w, block, mask);
        } else {
            for (q = 0; q < 4; q++)
                w[q] = _mm_loadu_si128((const __m128i *)(const void *)&words[4 * q]);
        }
        SHANI_UNROLL
        for (g = 0; g < 8; g++)
            SHANI_GROUP(g, st0, st1, w, _mm_loadu_si128((const __m128i *)(const void *)&K[4 * g]));
        for (q = 0; q < 4; q++)
            _mm_storeu_si128((__m128i *)(void *)&mid[16 + 4 * q], w[q]);
    } else {
        for (q = 0; q < 4; q++)
            w[q] = _mm_loadu_si128((const __m128i *)(const void *)&mid[16 + 4 * q]);
        SHANI_UNROLL
        for (g = 8; g < 16; g++)
            SHANI_GROUP(g, st0, st1, w, _mm_loadu_si128((const __m128i *)(const void *)&K[4 * g]));
        st0 = _mm_add_epi32(st0, _mm_loadu_si128((const __m128i *)(const void *)&mid[8]));
        st1 = _mm_add_epi32(st1, _mm_loadu_si128((const __m128i *)(const void *)&mid[12]));
    }
    _mm_storeu_si128((__m128i *)(void *)&mid[0], st0);
    _mm_storeu_si128((__m128i *)(void *)&mid[4], st1);
}

__attribute__((target("sha,sse4.1,ssse3")))
static void mid_load_shani(uint32_t mid[32], const uint32_t st[8])
{
    __m128i a, b;
    shani_load(st, &a, &b);
    _mm_storeu_si128((__m128i *)(void *)&mid[0], a);
    _mm_storeu_si128((__m128i *)(void *)&mid[4], b);
}

__attribute__((target("sha,sse4.1,ssse3")))
static void mid_store_shani(const uint32_t mid[32], uint32_t st[8])
{
    shani_store(st, _mm_loadu_si128((const __m128i *)(const void *)&mid[0]),
                _mm_loadu_si128((const __m128i *)(const void *)&mid[4]));
}

static int cpu_has_shani(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 19)) || !(c & (1u << 9)))   /* SSE4.1, SSSE3 */
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 29)) != 0;                /* SHA extensions */
}
#else
static int cpu_has_shani(void) { return 0; }
#endif

#if SA_HAVE_ARMV8_CODE
/* Four rounds of group g (0..15): the schedule for group g + 4 is computed
 * into w[g & 3] (sha256su0 + sha256su1) once group g's words are added to
 * the constants; sha256h / sha256h2 update ABCD and EFGH. */
#define ARMV8_GROUP(g, abcd, efgh, w)                                                  \
    do {                                                                               \
        uint32x4_t k_ = vaddq_u32((w)[(g) & 3], vld1q_u32(&K[4 * (g)]));               \
        uint32x4_t prev_ = (abcd);                                                     \
        if ((g) < 12)                                                                  \
            (w)[(g) & 3] = vsha256su1q_u32(vsha256su0q_u32((w)[(g) & 3], (w)[((g) + 1) & 3]), \
                                           (w)[((g) + 2) & 3], (w)[((g) + 3) & 3]);      \
        (abcd) = vsha256hq_u32((abcd), (efgh), k_);                                    \
        (efgh) = vsha256h2q_u32((efgh), prev_, k_);                                    \
    } while (0)

SA_TARGET_ARMV8_SHA2
static inline void armv8_load_w(uint32x4_t w[4], const uint8_t *data)
{
    int q;
    for (q = 0; q < 4; q++)
        w[q] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(data + 16 * q)));
}

SA_TARGET_ARMV8_SHA2
static void blocks_armv8(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    uint32x4_t abcd = vld1q_u32(&state[0]), efgh = vld1q_u32(&state[4]);
    uint32x4_t w[4];
    int g;

    for (; nblocks--; data += 64) {
        const uint32x4_t abcd0 = abcd, efgh0 = efgh;
        armv8_load_w(w, data);
        for (g = 0; g < 16; g++)
            ARMV8_GROUP(g, abcd, efgh, w);
        abcd = vaddq_u32(abcd, abcd0);
        efgh = vaddq_u32(efgh, efgh0);
    }
    vst1q_u32(&state[0], abcd);
    vst1q_u32(&state[4], efgh);
}

/* Two independent states and messages, their rounds interleaved (one chain
 * of dependent sha256h leaves the unit waiting on its latency, as on x86). */
SA_TARGET_ARMV8_SHA2
static void blocks_armv8_x2(uint32_t sa[8], const uint8_t *da, uint32_t sb[8], const uint8_t *db,
                            size_t nblocks)
{
    uint32x4_t a0 = vld1q_u32(&sa[0]), a1 = vld1q_u32(&sa[4]);
    uint32x4_t b0 = vld1q_u32(&sb[0]), b1 = vld1q_u32(&sb[4]);
    uint32x4_t wa[4], wb[4];
    int g;

    for (; nblocks--; da += 64, db += 64) {
        const uint32x4_t sa0 = a0, sa1 = a1, sb0 = b0, sb1 = b1;
        armv8_load_w(wa, da);
        armv8_load_w(wb, db);
        for (g = 0; g < 16; g++) {
            ARMV8_GROUP(g, a0, a1, wa);
            ARMV8_GROUP(g, b0, b1, wb);
        }
        a0 = vaddq_u32(a0, sa0);
        a1 = vaddq_u32(a1, sa1);
        b0 = vaddq_u32(b0, sb0);
        b1 = vaddq_u32(b1, sb1);
    }
    vst1q_u32(&sa[0], a0);
    vst1q_u32(&sa[4], a1);
    vst1q_u32(&sb[0], b0);
    vst1q_u32(&sb[4], b1);
}

static int cpu_has_armv8_sha2(void)
{
    return sa_sha256_pick_hwcap((unsigned long)getauxval(AT_HWCAP)) == SA_SHA256_ARMV8;
}
#else
static int cpu_has_armv8_sha2(void) { return 0; }
#endif

/* The aarch64 selection rule, on its own so a test can check it for any
 * HWCAP word: the SHA-2 instructions when the kernel reports them. */
int sa_sha256_pick_hwcap(unsigned long hwcap)
{
    return (hwcap & (1UL << 6)) ? SA_SHA256_ARMV8 : SA_SHA256_PORTABLE;   /* HWCAP_SHA2 */
}

typedef void (*blocks_fn)(uint32_t *, const uint8_t *, size_t);
static void blocks_resolve(uint32_t state[8], const uint8_t *data, size_t nblocks);
static blocks_fn active_blocks = blocks_resolve;
static int active_impl = SA_SHA256_AUTO;

int sa_sha256_shani_available(void)
{
    return cpu_has_shani();
}

int sa_sha256_armv8_available(void)
{
    return cpu_has_armv8_sha2();
}

int sa_sha256_select(int impl)
{
    if (impl == SA_SHA256_AUTO)
        impl = cpu_has_shani() ? SA_SHA256_SHANI
             : cpu_has_armv8_sha2() ? SA_SHA256_ARMV8 : SA_SHA256_PORTABLE;
    if (impl == SA_SHA256_PORTABLE) {
        active_blocks = blocks_portable;
    }
#if SA_HAVE_SHANI_CODE
    else if (impl == SA_SHA256_SHANI && cpu_has_shani()) {
        active_blocks = blocks_shani;
    }
#endif
#if SA_HAVE_ARMV8_CODE
    else if (impl == SA_SHA256_ARMV8 && cpu_has_armv8_sha2()) {
        active_blocks = blocks_armv8;
    }
#endif
    else {
        return -1;
    }
    active_impl = impl;
    return impl;
}

int sa_sha256_active(void)
{
    if (active_impl == SA_SHA256_AUTO)
        sa_sha256_select(SA_SHA256_AUTO);
    return active_impl;
}

static void blocks_resolve(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    sa_sha256_select(SA_SHA256_AUTO);
    active_blocks(state, data, nblocks);
}

void sa_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    if (nblocks)
        active_blocks(state, data, nblocks);
}

void sa_sha256_blocks2(uint32_t sa[8], const uint8_t *da, uint32_t sb[8], const uint8_t *db,
                       size_t nblocks)
{
    if (!nblocks)
        return;
#if SA_HAVE_SHANI_CODE
    if (active_blocks == blocks_shani) {
        blocks_shani_x2(sa, da, sb, db, nblocks);
        return;
    }
#endif
#if SA_HAVE_ARMV8_CODE
    if (active_blocks == blocks_armv8) {
        blocks_armv8_x2(sa, da, sb, db, nblocks);
        return;
    }
#endif
    sa_sha256_blocks(sa, da, nblocks);
    sa_sha256_blocks(sb, db, nblocks);
}

/* The outer hash's one block: the inner digest, then the padding of a
 * 96-byte message (64 key bytes + 32). */
static void outer_block_bytes(uint8_t blk[64], const uint32_t inner[8])
{
    int i;

    for (i = 0; i < 8; i++)
        store_be32(blk + 4 * i, inner[i]);
    memset(blk + 32, 0, 32);
    blk[32] = 0x80;
    blk[62] = (96 * 8) >> 8;
    blk[63] = (96 * 8) & 0xff;
}

static void outer_generic(const uint32_t outer[8], const uint32_t inner[8], uint32_t out[8])
{
    uint8_t blk[64];

    outer_block_bytes(blk, inner);
    memcpy(out, outer, 32);
    sa_sha256_blocks(out, blk, 1);
    sa_wipe(blk, 32);   /* the inner digest */
}

void sa_sha256_hmac_outer(const uint32_t outer[8], const uint32_t inner[8], uint32_t out[8])
{
#if SA_HAVE_SHANI_CODE
    if (active_blocks == blocks_shani) {
        outer_shani(outer, inner, out);
        return;
    }
#endif
    outer_generic(outer, inner, out);
}

void sa_sha256_hmac_outer2(const uint32_t oa[8], const uint32_t ia[8], uint32_t outa[8],
                           const uint32_t ob[8], const uint32_t ib[8], uint32_t outb[8])
{
#if SA_HAVE_SHANI_CODE
    if (active_blocks == blocks_shani) {
        outer_shani_x2(oa, ia, outa, ob, ib, outb);
        return;
    }
#endif
#if SA_HAVE_ARMV8_CODE
    if (active_blocks == blocks_armv8) {
        /* both outer blocks through the interleaved pair */
        uint8_t ba[64], bb[64];
        outer_block_bytes(ba, ia);
        outer_block_bytes(bb, ib);
        memcpy(outa, oa, 32);
        memcpy(outb, ob, 32);
        blocks_armv8_x2(outa, ba, outb, bb, 1);
        sa_wipe(ba, 32);
        sa_wipe(bb, 32);
        return;
    }
#endif
    outer_generic(oa, ia, outa);
    outer_generic(ob, ib, outb);
}

int sa_sha256_halves(void)
{
#if SA_HAVE_SHANI_CODE
    return sa_sha256_active() == SA_SHA256_SHANI;
#else
    return 0;
#endif
}

void sa_sha256_mid_load(uint32_t mid[32], const uint32_t st[8])
{
#if SA_HAVE_SHANI_CODE
    mid_load_shani(mid, st);
#else
    (void)mid;
    (void)st;
#endif
}

void sa_sha256_mid_store(const uint32_t mid[32], uint32_t st[8])
{
#if SA_HAVE_SHANI_CODE
    mid_store_shani(mid, st);
#else
    (void)mid;
    (void)st;
#endif
}

void sa_sha256_half(uint32_t mid[32], const uint8_t *block, const uint32_t *words, int half)
{
#if SA_HAVE_SHANI_CODE
    half_shani(mid, block, words, half);
#else
    (void)mid;
    (void)block;
    (void)words;
    (void)half;
#endif
}

void sa_sha256_init(sa_sha256_ctx *ctx)
{
    memcpy(ctx->h, sa_sha256_iv, sizeof(ctx->h));
    ctx->total = 0;
    ctx->buflen = 0;
}

void sa_sha256_update(sa_sha256_ctx *ctx, const uint8_t *data, size_t len)
{
    ctx->total += len;
    if (ctx->buflen) {
        size_t take = 64 - ctx->buflen;
        if (take > len)
            take = len;
        memcpy(ctx->buf + ctx->buflen, data, take);
        ctx->buflen += take;
        data += take;
        len -= take;
        if (ctx->buflen < 64)
            return;
        sa_sha256_blocks(ctx->h, ctx->buf, 1);
        ctx->buflen = 0;
    }
    if (len >= 64) {
        sa_sha256_blocks(ctx->h, data, len / 64);
        data += len & ~(size_t)63;
        len &= 63;
    }
    if (len) {
        memcpy(ctx->buf, data, len);
        ctx->buflen = len;
    }
}

void sa_sha256_final(sa_sha256_ctx *ctx, uint8_t out[32])
{
    uint64_t bits = ctx->total * 8;
    size_t n = ctx->buflen;
    int i;
    ctx->buf[n++] = 0x80;
    if (n > 56) {
        memset(ctx->buf + n, 0, 64 - n);
        sa_sha256_blocks(ctx->h, ctx->buf, 1);
        n = 0;
    }
    memset(ctx->buf + n, 0, 56 - n);
    for (i = 0; i < 8; i++)
        ctx->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sa_sha256_blocks(ctx->h, ctx->buf, 1);
    for (i = 0; i < 8; i++)
        store_be32(out + 4 * i, ctx->h[i]);
}

void sa_sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
    sa_sha256_ctx ctx;
    sa_sha256_init(&ctx);
    sa_sha256_update(&ctx, data, len);
    sa_sha256_final(&ctx, out);
}
