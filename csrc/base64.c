#include "base64.h"

#include <string.h>

#include "sa_status.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SA_HAVE_AVX2_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SA_HAVE_AVX2_CODE 0
#endif

/* aarch64: Advanced SIMD is part of the base architecture (every AArch64
 * Linux CPU has it), so there is nothing to detect. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#define SA_HAVE_NEON_CODE 1
#include <arm_neon.h>
#else
#define SA_HAVE_NEON_CODE 0
#endif

static const char STD[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Reverse tables: 0..63, or 0xFF for "not in the alphabet". */
#define X 0xFF
static const uint8_t REV_STD[256] = {
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,62,X,X,X,63, 52,53,54,55,56,57,58,59,60,61,X,X,X,X,X,X,
    X,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14, 15,16,17,18,19,20,21,22,23,24,25,X,X,X,X,X,
    X,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40, 41,42,43,44,45,46,47,48,49,50,51,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
};
static const uint8_t REV_URL[256] = {
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,62,X,X, 52,53,54,55,56,57,58,59,60,61,X,X,X,X,X,X,
    X,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14, 15,16,17,18,19,20,21,22,23,24,25,X,X,X,X,63,
    X,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40, 41,42,43,44,45,46,47,48,49,50,51,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
};
#undef X

size_t sa_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t sa_b64_encoded_len(size_t n)
{
    return ((n + 2) / 3) * 4;
}

size_t sa_b64_decoded_max(size_t n)
{
    return (n / 4) * 3 + 2;
}

static int encode(const char *alpha, int pad, const uint8_t *in, size_t n,
                  char *out, size_t cap, size_t *outlen)
{
    size_t need = pad ? sa_b64_encoded_len(n) : sa_b64url_encoded_len(n);
    size_t i = 0, o = 0;

    if ((!in && n) || !out || !outlen)
        return SA_E_ARG;
    if (need > cap)
        return SA_E_BUFFER;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    *outlen = o;
    return SA_OK;
}

/* ---- AVX2: 32 characters -> 24 bytes per step -------------------------- */

static int use_simd = -1;   /* SA_B64_*: the active one; -1: not chosen yet; set once, read-only after */

#if SA_HAVE_AVX2_CODE
static int cpu_has_avx2(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28)))   /* OSXSAVE, AVX */
        return 0;
    {   /* the OS saves the YMM registers (XCR0 bits 1 and 2) */
        unsigned int lo, hi;
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        if ((lo & 6u) != 6u)
            return 0;
    }
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 5)) != 0;                  /* AVX2 */
}

/* Decode in[0..n) (n a multiple of 4) in 32-character blocks while they are
 * all in the alphabet (url: '-' '_', else '+' '/'); returns the characters
 * consumed (n, or less when a block holds an invalid character or n < 32).
 * The caller's scalar loop does the rest and reports the invalid character.
 * It writes out[0 .. consumed / 4 * 3) and nothing else.
 *
 * Validation by nibbles: hi_bit[h] is one bit per high nibble 2..7 (0 for
 * the others, bytes >= 0x80 included) and lo[l] has bit hi_bit[h] set when
 * the byte h << 4 | l is in the alphabet, so a byte is valid exactly when
 * lo[l] & hi_bit[h] != 0. Its 6-bit value is the byte plus an offset that
 * depends on the high nibble only (off[h]), except for the 63rd character
 * ('_' shares nibble 5 with 'P'..'Z', '/' nibble 2 with '+'). */
__attribute__((target("avx2")))
static size_t decode_avx2(const unsigned char *in, size_t n, uint8_t *out, int url)
{
    const __m256i hi_bit = _mm256_setr_epi8(0, 0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0, 0, 0, 0, 0, 0, 0, 0);
    /* lo[l] for l = 0..15: bit of nibble 3/5/7 for l 0 ('0' 'P' 'p'), 3-7 for 1..9, 4-7 for 10
     * ('J' 'Z' 'j' 'z'), 4 and 6 for 11..15 ('K'..'O', 'k'..'o'); then '-' (2) at 13 and '_'
     * (5) at 15, or '+' (2) at 11 and '/' (2) at 15 */
    const __m256i lo = url
        ? _mm256_setr_epi8(0x2A, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3C, 0x14, 0x14, 0x15, 0x14, 0x1C,
                           0x2A, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3C, 0x14, 0x14, 0x15, 0x14, 0x1C)
        : _mm256_setr_epi8(0x2A, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3C, 0x15, 0x14, 0x14, 0x14, 0x15,
                           0x2A, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3C, 0x15, 0x14, 0x14, 0x14, 0x15);
    /* h 2: '-' or '+' -> 62; 3: digits -> 52..61; 4, 5: upper case -> 0..25; 6, 7: lower case -> 26..51 */
    const char o62 = (char)(url ? 62 - '-' : 62 - '+');
    const __m256i off = _mm256_setr_epi8(0, 0, o62, 52 - '0', -'A', -'A', 26 - 'a', 26 - 'a', 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, o62, 52 - '0', -'A', -'A', 26 - 'a', 26 - 'a', 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i s63 = _mm256_set1_epi8(url ? '_' : '/');
    const __m256i o63 = _mm256_set1_epi8((char)(url ? 63 - '_' : 63 - '/'));
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i merge1 = _mm256_set1_epi32(0x01400140), merge2 = _mm256_set1_epi32(0x00011000);
    const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                          2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    size_t i = 0;

    while (i < n && n >= 32) {
        /* a last partial block is done as the last 32 characters, overlapping
         * decoded ones, whose bytes it writes again unchanged */
        size_t at = i + 32 <= n ? i : n - 32;
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(in + at));
        __m256i h = _mm256_and_si256(_mm256_srli_epi16(c, 4), nib);
        __m256i hb = _mm256_shuffle_epi8(hi_bit, h);
        __m256i lb = _mm256_shuffle_epi8(lo, _mm256_and_si256(c, nib));
        __m256i bad = _mm256_cmpeq_epi8(_mm256_and_si256(hb, lb), _mm256_setzero_si256());
        __m256i v;
        if (_mm256_movemask_epi8(bad) != 0)
            break;                               /* the scalar loop reports it */
        v = _mm256_blendv_epi8(_mm256_shuffle_epi8(off, h), o63, _mm256_cmpeq_epi8(c, s63));
        v = _mm256_add_epi8(c, v);               /* 6-bit values */
        v = _mm256_maddubs_epi16(v, merge1);     /* pairs: a << 6 | b */
        v = _mm256_madd_epi16(v, merge2);        /* quads: 24 bits per 32-bit lane */
        v = _mm256_shuffle_epi8(v, pack);        /* big-endian 3 bytes per lane, 12 per half */
        v = _mm256_permutevar8x32_epi32(v, lanes);
        /* the 24 bytes straight from the register: 16 + 8, nothing past them */
        _mm_storeu_si128((__m128i *)(void *)(out + at / 4 * 3), _mm256_castsi256_si128(v));
        _mm_storel_epi64((__m128i *)(void *)(out + at / 4 * 3 + 16), _mm256_extracti128_si256(v, 1));
        i = at + 32;
    }
    return i;
}

/* AVX-512 with VBMI (vpermb/vpermt2b) and BW, and the OS saving the opmask
 * and ZMM registers (XCR0 bits 5-7 as well as 1-2). */
static int cpu_has_avx512vbmi(void)
{
    unsigned int a, b, c, d, lo, hi;
    if (!cpu_has_avx2())
        return 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & 0xE6u) != 0xE6u)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 16)) && (b & (1u << 30)) && (c & (1u << 1));   /* F, BW, VBMI */
}

/* decode_avx2's contract, 64 characters -> 48 bytes per step, the last
 * partial block by masked loads and stores (nothing read past in[n), nothing
 * written past out[n / 4 * 3)). One vpermt2b translates every character
 * through a 128-entry table (6-bit value, or 0x80 when not in the alphabet;
 * a byte >= 0x80 is caught by its own top bit); a block with either is left
 * to the caller's scalar loop, unwritten. Then the same multiply-adds as
 * decode_avx2 and one vpermb to the 48 output bytes. */
/* decode_avx512vbmi: each character 0..127's 6-bit value, 0x80 outside the alphabet (base64url) */
static const uint8_t VBMI_URL[128] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x3E, 0x80, 0x80,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x80, 0x80, 0x80, 0x80, 0x3F,
    0x80, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0x80, 0x80, 0x80, 0x80, 0x80,
};
/* the same for standard base64 */
static const uint8_t VBMI_STD[128] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x3E, 0x80, 0x80, 0x80, 0x3F,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0x80, 0x80, 0x80, 0x80, 0x80,
};
/* output byte 3q + r of a 64-character block is byte 2 - r of its 32-bit lane q */
static const uint8_t VBMI_PACK[64] = {
    2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, 18, 17, 16, 22, 21, 20, 26, 25, 24, 30, 29, 28, 34, 33, 32, 38, 37, 36, 42, 41,
    40, 46, 45, 44, 50, 49, 48, 54, 53, 52, 58, 57, 56, 62, 61, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static size_t decode_avx512vbmi(const unsigned char *in, size_t n, uint8_t *out, int url)
{
    const uint8_t *tbl = url ? VBMI_URL : VBMI_STD;
    const __m512i lo_t = _mm512_loadu_si512((const void *)tbl);
    const __m512i hi_t = _mm512_loadu_si512((const void *)(tbl + 64));
    const __m512i pack = _mm512_loadu_si512((const void *)VBMI_PACK);
    const __m512i merge1 = _mm512_set1_epi32(0x01400140), merge2 = _mm512_set1_epi32(0x00011000);
    const __m512i top = _mm512_set1_epi8((char)0x80);
    size_t i = 0;

    while (i < n) {
        const size_t m = n - i < 64 ? n - i : 64;     /* a multiple of 4 */
        const __mmask64 lm = m == 64 ? ~(__mmask64)0 : ((__mmask64)1 << m) - 1;
        const __mmask64 sm = ((__mmask64)1 << (m / 4 * 3)) - 1;
        __m512i c = _mm512_maskz_loadu_epi8(lm, in + i);
        __m512i v = _mm512_permutex2var_epi8(lo_t, c, hi_t);
        if (_mm512_mask_test_epi8_mask(lm, _mm512_or_si512(c, v), top))
            break;                               /* the scalar loop reports it */
        v = _mm512_maddubs_epi16(v, merge1);
        v = _mm512_madd_epi16(v, merge2);
        v = _mm512_permutexvar_epi8(pack, v);
        if (m == 64) {           /* 32 + 16 bytes: plain stores are cheaper than a masked one */
            _mm256_storeu_si256((__m256i *)(void *)(out + i / 4 * 3), _mm512_castsi512_si256(v));
            _mm_storeu_si128((__m128i *)(void *)(out + i / 4 * 3 + 32), _mm512_extracti32x4_epi32(v, 2));
        } else {
            _mm512_mask_storeu_epi8(out + i / 4 * 3, sm, v);
        }
        i += m;
    }
    return i;
}
#else
static int cpu_has_avx2(void) { return 0; }
static int cpu_has_avx512vbmi(void) { return 0; }
#endif

#if SA_HAVE_NEON_CODE
/* The same validation and translation as decode_avx2 (the tables are its
 * first 16 lanes), 64 characters -> 48 bytes per step: vld4q splits the
 * characters by their place in each quad, so the three output bytes of a quad
 * are shifts and ors of lanes, and vst3q interleaves them back. A block with
 * an invalid character is left to the caller's scalar loop (nothing of it is
 * written). Returns the characters consumed, a multiple of 64. */
static size_t decode_neon(const unsigned char *in, size_t n, uint8_t *out, int url)
{
    static const uint8_t hi_bit_t[16] = {0, 0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t lo_url[16] = {0x2A, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3C,
                                       0x14, 0x14, 0x15, 0x14, 0x1C};
    static const uint8_t lo_std[16] = {0x2A, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3E, 0x3C,
                                       0x15, 0x14, 0x14, 0x14, 0x15};
    uint8_t off_t[16] = {0, 0, 0, (uint8_t)(52 - '0'), (uint8_t)-'A', (uint8_t)-'A', (uint8_t)(26 - 'a'),
                         (uint8_t)(26 - 'a'), 0, 0, 0, 0, 0, 0, 0, 0};
    uint8x16_t hi_bit, lo, off, s63, o63, nib;
    size_t i = 0;

    off_t[2] = (uint8_t)(url ? 62 - '-' : 62 - '+');
    hi_bit = vld1q_u8(hi_bit_t);
    lo = vld1q_u8(url ? lo_url : lo_std);
    off = vld1q_u8(off_t);
    s63 = vdupq_n_u8((uint8_t)(url ? '_' : '/'));
    o63 = vdupq_n_u8((uint8_t)(url ? 63 - '_' : 63 - '/'));
    nib = vdupq_n_u8(0x0F);

    for (; i + 64 <= n; i += 64) {
        uint8x16x4_t c = vld4q_u8(in + i);
        uint8x16x3_t o;
        uint8x16_t ok = vdupq_n_u8(0xFF);
        int q;
        for (q = 0; q < 4; q++) {
            const uint8x16_t h = vshrq_n_u8(c.val[q], 4);
            ok = vandq_u8(ok, vtstq_u8(vqtbl1q_u8(hi_bit, h), vqtbl1q_u8(lo, vandq_u8(c.val[q], nib))));
            c.val[q] = vaddq_u8(c.val[q], vbslq_u8(vceqq_u8(c.val[q], s63), o63, vqtbl1q_u8(off, h)));
        }
        if (vminvq_u8(ok) == 0)
            break;                               /* the scalar loop reports it */
        o.val[0] = vorrq_u8(vshlq_n_u8(c.val[0], 2), vshrq_n_u8(c.val[1], 4));
        o.val[1] = vorrq_u8(vshlq_n_u8(c.val[1], 4), vshrq_n_u8(c.val[2], 2));
        o.val[2] = vorrq_u8(vshlq_n_u8(c.val[2], 6), c.val[3]);
        vst3q_u8(out + i / 4 * 3, o);
    }
    return i;
}
#endif

int sa_b64_select(int impl)
{
    if (impl == SA_B64_AUTO)
        impl = cpu_has_avx512vbmi() ? SA_B64_AVX512VBMI : cpu_has_avx2() ? SA_B64_AVX2
             : SA_HAVE_NEON_CODE ? SA_B64_NEON : SA_B64_PORTABLE;
    if (impl == SA_B64_AVX2 && !cpu_has_avx2())
        return -1;
    if (impl == SA_B64_AVX512VBMI && !cpu_has_avx512vbmi())
        return -1;
    if (impl == SA_B64_NEON && !SA_HAVE_NEON_CODE)
        return -1;
    if (impl != SA_B64_AVX2 && impl != SA_B64_AVX512VBMI && impl != SA_B64_NEON &&
        impl != SA_B64_PORTABLE)
        return -1;
    use_simd = impl;
    return impl;
}

/* Decode n characters that contain no padding. */
static int decode(const uint8_t *rev, const char *in, size_t n,
                  uint8_t *out, size_t cap, size_t *outlen)
{
    size_t rem = n % 4, full = n - rem, i = 0, o = 0;
    size_t need = (full / 4) * 3 + (rem ? rem - 1 : 0);
    const unsigned char *s = (const unsigned char *)in;

    if (rem == 1)
        return SA_E_BASE64;
    if (need > cap)
        return SA_E_BUFFER;
#if SA_HAVE_AVX2_CODE || SA_HAVE_NEON_CODE
    if (use_simd < 0)
        sa_b64_select(SA_B64_AUTO);
#endif
#if SA_HAVE_AVX2_CODE
    if (use_simd == SA_B64_AVX512VBMI && full) {
        i = decode_avx512vbmi(s, full, out, rev == REV_URL);
        o = i / 4 * 3;
    } else if (use_simd == SA_B64_AVX2 && full >= 32) {
        i = decode_avx2(s, full, out, rev == REV_URL);
        o = i / 4 * 3;
    }
#endif
#if SA_HAVE_NEON_CODE
    if (use_simd == SA_B64_NEON && full >= 64) {
        i = decode_neon(s, full, out, rev == REV_URL);
        o = i / 4 * 3;
    }
#endif
    for (; i < full; i += 4) {
        uint32_t a = rev[s[i]], b = rev[s[i + 1]], c = rev[s[i + 2]], d = rev[s[i + 3]];
        if ((a | b | c | d) & 0xC0)
            return SA_E_BASE64;
        uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem) {
        uint32_t a = rev[s[i]], b = rev[s[i + 1]], c = rem == 3 ? rev[s[i + 2]] : 0;
        if ((a | b | c) & 0xC0)
            return SA_E_BASE64;
        if (rem == 2 && (b & 0x0F))
            return SA_E_BASE64_NONCANON;
        if (rem == 3 && (c & 0x03))
            return SA_E_BASE64_NONCANON;
        out[o++] = (uint8_t)((a << 2) | (b >> 4));
        if (rem == 3)
            out[o++] = (uint8_t)((b << 4) | (c >> 2));
    }
    *outlen = o;
    return SA_OK;
}

int sa_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *outlen)
{
    return encode(URL, 0, in, n, out, cap, outlen);
}

int sa_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *outlen)
{
    return encode(STD, 1, in, n, out, cap, outlen);
}

int sa_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    if ((!in && n) || (!out && cap) || !outlen)
        return SA_E_ARG;
    return decode(REV_URL, in, n, out, cap, outlen);
}

int sa_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t pads = 0;

    if ((!in && n) || (!out && cap) || !outlen)
        return SA_E_ARG;
    if (n % 4)
        return SA_E_BASE64;
    if (n && in[n - 1] == '=') {
        pads = 1;
        if (in[n - 2] == '=')
            pads = 2;
    }
    /* The unpadded remainder must be 2 or 3 characters: "x===" is invalid
     * and '=' anywhere else is outside the alphabet for decode(). */
    return decode(REV_STD, in, n - pads, out, cap, outlen);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long sa_hex4(const uint8_t *p)
{
    long v = 0;
    int k;
    for (k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}
