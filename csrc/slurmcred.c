#include "slurmcred.h"

#include <string.h>
#include <time.h>

#include "base64.h"
#include "jws.h"
#include "sa_status.h"
#include "sha256_mb.h"

#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#define SC_HAVE_SSE2_CODE 1
#include <emmintrin.h>
#else
#define SC_HAVE_SSE2_CODE 0
#endif

/* AVX-512BW (in functions of their own, run only where CPUID says so) for a
 * separated batch's token ends and dots, 64 bytes at a time. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SC_HAVE_AVX512_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SC_HAVE_AVX512_CODE 0
#endif

/* The scanner's small steps, inlined into the two object walkers so that
 * each is one loop with direct calls (a hint only; no behaviour depends on it). */
#if defined(__GNUC__) || defined(__clang__)
#define SC_INLINE static inline __attribute__((always_inline))
#else
#define SC_INLINE static inline
#endif

#define UINT32_ANY 4294967295LL

/* ---- strict JSON scanning over an explicit-length buffer ---------------- */

typedef sc_jcur jcur;     /* the cursor and string span of slurmcred.h */
typedef sc_jstr jstr;

SC_INLINE void ws(jcur *j)
{
    while (j->i < j->n) {
        uint8_t c = j->p[j->i];
        /* one compare for the common exit: every whitespace byte is <= ' ' */
        if (c > ' ' || (c != ' ' && c != '\t' && c != '\n' && c != '\r'))
            return;
        j->i++;
    }
}

SC_INLINE int peek(const jcur *j)
{
    return j->i < j->n ? j->p[j->i] : -1;
}


/* Length of the valid UTF-8 sequence at p[0..n), or 0 if invalid (overlong,
 * surrogate, above U+10FFFF or truncated). p[0] >= 0x80. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0;                       /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0;                       /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0;                       /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0;                       /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* 1 for the bytes a string may hold as they are: 0x20-0x7F except '"' and '\\'. */
static const uint8_t PLAIN[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    1,1,0,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,0,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
};

/* ---- the run of plain bytes a string starts with ------------------------ */

#if SC_HAVE_AVX512_CODE
/* AVX-512F and BW, and the OS saving the opmask and ZMM registers. */
static int cpu_has_avx512bw(void)
{
    unsigned int a, b, c, d, lo, hi;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))   /* OSXSAVE */
        return 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & 0xE6u) != 0xE6u || __get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 16)) && (b & (1u << 30));
}
#else
static int cpu_has_avx512bw(void) { return 0; }
#endif

/* -1 until chosen (SC_SCAN_AUTO on a batch call's first use; strings and
 * integers take the SSE2 path meanwhile where it is compiled in: SSE2 is part
 * of x86-64 itself); sc_scan_select() changes it. */
static int scan_impl = -1;

int sc_scan_select(int impl)
{
    if (impl == SC_SCAN_AUTO)
        impl = cpu_has_avx512bw() ? SC_SCAN_AVX512 : SC_HAVE_SSE2_CODE ? SC_SCAN_SSE2
             : SC_SCAN_PORTABLE;
    if (impl == SC_SCAN_SSE2 && !SC_HAVE_SSE2_CODE)
        return -1;
    if (impl == SC_SCAN_AVX512 && !cpu_has_avx512bw())
        return -1;
    if (impl != SC_SCAN_SSE2 && impl != SC_SCAN_PORTABLE && impl != SC_SCAN_AVX512)
        return -1;
    scan_impl = impl;
    return impl;
}

#if SC_HAVE_SSE2_CODE
/* Bit k set when byte k of p[0..16) is not PLAIN: '"', '\\', or, compared as
 * signed bytes, below 0x20 (control characters and every byte >= 0x80). */
SC_INLINE unsigned special16(const uint8_t *p)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    const __m128i m = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
        _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    return (unsigned)_mm_movemask_epi8(m);
}

/* plain_run() 16 bytes at a time. Every load lies inside p[0..n): whole
 * blocks while 16 bytes remain, then (when n >= 16) the last 16 bytes of the
 * buffer with the bits before i shifted out; a buffer under 16 bytes goes
 * byte by byte. */
SC_INLINE size_t plain_run_sse2(const uint8_t *p, size_t i, size_t n)
{
    unsigned m;

    for (; i + 16 <= n; i += 16) {
        if ((m = special16(p + i)) != 0)
            return i + (size_t)__builtin_ctz(m);
    }
    if (i >= n)
        return n;
    if (n >= 16) {
        m = special16(p + n - 16) >> (16 - (n - i));
        return m ? i + (size_t)__builtin_ctz(m) : n;
    }
    while (i < n && PLAIN[p[i]])
        i++;
    return i;
}
#endif

/* The index of the first byte of p[i..n) that is not PLAIN, or n. */
SC_INLINE size_t plain_run(const uint8_t *p, size_t i, size_t n)
{
#if SC_HAVE_SSE2_CODE
    if (scan_impl != SC_SCAN_PORTABLE)
        return plain_run_sse2(p, i, n);
#endif
    while (i < n && PLAIN[p[i]])
        i++;
    return i;
}

/* Scan a string at the opening quote; validate everything, decode nothing. */
SC_INLINE int scan_string(jcur *j, jstr *s)
{
    const uint8_t *p = j->p;
    size_t i = j->i + 1, n = j->n;

    s->off = i;
    s->esc = 0;
    for (;;) {
        uint8_t c;
        i = plain_run(p, i, n);    /* printable ASCII other than '"' and '\\' */
        if (i >= n)
            return SC_E_UTF8;      /* unterminated */
        c = p[i];
        if (c == '"') {
            s->len = i - s->off;
            j->i = i + 1;
            return SA_OK;
        }
        if (c < 0x20)
            return SC_E_UTF8;
        if (c == '\\') {
            s->esc = 1;
            if (i + 1 >= n)
                return SC_E_UTF8;
            c = p[i + 1];
            if (c == 'u') {
                long v;
                if (i + 6 > n || (v = sa_hex4(p + i + 2)) < 0)
                    return SC_E_UTF8;
                if (v == 0)
                    return SC_E_UTF8;       /* jansson refuses \u0000 */
                if (v >= 0xDC00 && v <= 0xDFFF)
                    return SC_E_UTF8;       /* lone low surrogate */
                if (v >= 0xD800 && v <= 0xDBFF) {
                    long lo;
                    if (i + 12 > n || p[i + 6] != '\\' || p[i + 7] != 'u' ||
                        (lo = sa_hex4(p + i + 8)) < 0xDC00 || lo > 0xDFFF)
                        return SC_E_UTF8;   /* high surrogate without its low half */
                    i += 12;
                } else {
                    i += 6;
                }
                continue;
            }
            if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
                c != 'r' && c != 't')
                return SC_E_UTF8;
            i += 2;
            continue;
        }
        {                          /* c >= 0x80 */
            size_t k = utf8_seq(p + i, n - i);
            if (!k)
                return SC_E_UTF8;
            i += k;
        }
    }
}

static size_t put_utf8(uint8_t *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode a string scan_string() validated. The output is never longer than
 * the raw span, so cap >= s->len always suffices. */
static size_t unescape(const uint8_t *base, const jstr *s, uint8_t *out)
{
    const uint8_t *p = base + s->off;
    size_t i = 0, o = 0;

    while (i < s->len) {
        uint8_t c = p[i];
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        c = p[i + 1];
        switch (c) {
        case 'b': out[o++] = '\b'; i += 2; break;
        case 'f': out[o++] = '\f'; i += 2; break;
        case 'n': out[o++] = '\n'; i += 2; break;
        case 'r': out[o++] = '\r'; i += 2; break;
        case 't': out[o++] = '\t'; i += 2; break;
        case 'u': {
            unsigned long cp = (unsigned long)sa_hex4(p + i + 2);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned long lo = (unsigned long)sa_hex4(p + i + 8);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 12;
            } else {
                i += 6;
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = c; i += 2; break;   /* " \ / */
        }
    }
    return o;
}

#if SC_HAVE_SSE2_CODE
/* The number of leading ASCII digits in p[0..16) (16 when all are). */
SC_INLINE unsigned digit_run16(const uint8_t *p)
{
    const __m128i d = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), _mm_set1_epi8('0'));
    const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
    return (unsigned)__builtin_ctz(((unsigned)_mm_movemask_epi8(is_digit) ^ 0xFFFFu) | 0x10000u);
}

/* The value of the k <= 15 ASCII digits that end p[0..16) (the 16 - k bytes
 * before them are ignored): digit pairs, then groups of 4 and of 8, without
 * a loop or a branch. */
SC_INLINE uint64_t digits_value_sse2(const uint8_t *p, unsigned k)
{
    const __m128i iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i keep = _mm_cmpgt_epi8(iota, _mm_set1_epi8((char)(15 - (int)k)));
    __m128i d = _mm_and_si128(_mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)p),
                                           _mm_set1_epi8('0')), keep);
    /* 16-bit lane: the earlier (more significant) digit in its low byte */
    d = _mm_add_epi16(_mm_mullo_epi16(_mm_and_si128(d, _mm_set1_epi16(0xFF)), _mm_set1_epi16(10)),
                      _mm_srli_epi16(d, 8));                        /* 8 x 0..99 */
    d = _mm_madd_epi16(d, _mm_set1_epi32(0x00010064));              /* 4 x 0..9999 */
    d = _mm_packs_epi32(d, d);
    d = _mm_madd_epi16(d, _mm_set1_epi32(0x00012710));              /* 2 x 0..99999999 */
    return (uint64_t)(uint32_t)_mm_cvtsi128_si32(d) * 100000000u +
           (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(d, 4));
}
#endif

/* The 309 decimal digits of 2^1024 - 2^970, halfway between DBL_MAX and
 * 2^1024: strtod() rounds a value from there on to infinity and reports ERANGE,
 * which jansson (so libjwt, so Slurm) refuses as "real number overflow". */
static const char DBL_OVERFLOW_DIGITS[] =
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587"
    "207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711"
    "531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093"
    "042880177904174497792";

/* Whether the real number p[i..end) (its grammar already checked: '-'? int
 * ('.' digits)? ([eE] [+-]? digits)?) is beyond a double's range, exactly as
 * strtod() decides it. Underflow (1e-400) is not an error to jansson. */
static int real_overflows(const uint8_t *p, size_t i, size_t end)
{
    size_t sig = 0, k;
    int64_t pos10 = 0, e10 = 0;
    int have_sig = 0, eneg = 0;

    if (p[i] == '-')
        i++;
    /* value = 0.D1D2... x 10^pos10 with D1 the first non-zero digit at sig */
    for (; i < end && p[i] >= '0' && p[i] <= '9'; i++) {
        if (!have_sig && p[i] != '0') {
            have_sig = 1;
            sig = i;
        }
        if (have_sig)
            pos10++;
    }
    if (i < end && p[i] == '.') {
        for (i++; i < end && p[i] >= '0' && p[i] <= '9'; i++) {
            if (!have_sig && p[i] != '0') {
                have_sig = 1;
                sig = i;
            }
            if (!have_sig)
                pos10--;
        }
    }
    if (!have_sig)
        return 0;                           /* zero, whatever its exponent */
    if (i < end) {                          /* the exponent, saturated */
        i++;
        if (p[i] == '+' || p[i] == '-')
            eneg = p[i++] == '-';
        for (; i < end; i++)
            if (e10 < 1000000000)
                e10 = e10 * 10 + (p[i] - '0');
    }
    pos10 += eneg ? -e10 : e10;
    if (pos10 != 309)
        return pos10 > 309;
    for (k = 0, i = sig; k < sizeof(DBL_OVERFLOW_DIGITS) - 1; i++) {
        if (i >= end || p[i] == 'e' || p[i] == 'E')
            return 0;                       /* fewer digits: below (it ends in 2) */
        if (p[i] == '.')
            continue;
        if (p[i] != (uint8_t)DBL_OVERFLOW_DIGITS[k])
            return p[i] > (uint8_t)DBL_OVERFLOW_DIGITS[k];
        k++;
    }
    return 1;                               /* its first 309 digits equal the bound's */
}

/* Scan a number; *is_int when it has no fraction or exponent. For integers
 * *neg and *mag get the sign and magnitude (*big set when it exceeds 2^63).
 * A real number a double cannot hold is refused here (`bad`), as jansson
 * refuses it; integers beyond int64 are the caller's to refuse. */
SC_INLINE int scan_number(jcur *j, int *is_int, int *neg, uint64_t *mag, int *big, int bad)
{
    const uint8_t *p = j->p;
    size_t i = j->i, n = j->n;
    const size_t start = i;
    uint64_t v = 0;
#if SC_HAVE_SSE2_CODE
    unsigned k;
#endif

    *is_int = 1;
    *neg = 0;
    *big = 0;
    if (i < n && p[i] == '-') {
        *neg = 1;
        i++;
    }
    if (i >= n || p[i] < '0' || p[i] > '9')
        return bad;
    if (p[i] == '0') {
        i++;
#if SC_HAVE_SSE2_CODE
    } else if (scan_impl != SC_SCAN_PORTABLE && i + 16 <= n && i >= 15 &&
               (k = digit_run16(p + i)) < 16) {
        v = digits_value_sse2(p + i + k - 16, k);   /* at most 15 digits: exact */
        i += k;
#endif
    } else {
        size_t start = i;
        /* 18 digits cannot overflow (10^18 < 2^63); check only beyond them */
        while (i < n && p[i] >= '0' && p[i] <= '9' && i - start < 18)
            v = v * 10 + (unsigned)(p[i++] - '0');
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            unsigned d = (unsigned)(p[i] - '0');
            if (v > (UINT64_C(9223372036854775808) - d) / 10)
                *big = 1;
            else
                v = v * 10 + d;
            i++;
        }
    }
    if (i < n && p[i] == '.') {
        *is_int = 0;
        i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return bad;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        *is_int = 0;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return bad;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (!*is_int && real_overflows(p, start, i))
        return bad;
    *mag = v;
    j->i = i;
    return SA_OK;
}

/* Whether a scanned integer lies outside jansson's json_int_t (int64):
 * "too big integer" / "too big negative integer", a parse error to libjwt. */
SC_INLINE int int64_out(int neg, uint64_t mag, int big)
{
    return big || (!neg && mag > (uint64_t)INT64_MAX);
}

static int bytes_eq(const uint8_t *a, const char *b, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)
        if (a[k] != (uint8_t)b[k])
            return 0;
    return 1;
}

static int literal(jcur *j, const char *lit, size_t len)
{
    if (j->n - j->i < len || !bytes_eq(j->p + j->i, lit, len))
        return 0;
    j->i += len;
    return 1;
}

/* Skip any JSON value (validating it); depth counts enclosing containers. */
/* After a member or an element: ',' and the next one's first byte (1), the
 * closing byte (0), or anything else (-1, malformed). */
SC_INLINE int after_value(jcur *j, int close)
{
    ws(j);
    if (peek(j) == ',') {
        j->i++;
        ws(j);
        return 1;
    }
    if (peek(j) == close) {
        j->i++;
        return 0;
    }
    return -1;
}

static int skip_value(jcur *j, int depth, int bad)
{
    int c = peek(j), rc;
    jstr s;

    if (c == '"')
        return scan_string(j, &s);
    if (c == '-' || (c >= '0' && c <= '9')) {
        int is_int, neg, big, rc2;
        uint64_t mag = 0;
        if ((rc2 = scan_number(j, &is_int, &neg, &mag, &big, bad)) != SA_OK)
            return rc2;
        return is_int && int64_out(neg, mag, big) ? bad : SA_OK;
    }
    if (c == 't')
        return literal(j, "true", 4) ? SA_OK : bad;
    if (c == 'f')
        return literal(j, "false", 5) ? SA_OK : bad;
    if (c == 'n')
        return literal(j, "null", 4) ? SA_OK : bad;
    if (c != '{' && c != '[')
        return bad;
    if (depth >= SC_MAX_DEPTH)
        return SC_E_DEPTH;
    j->i++;
    ws(j);
    if (peek(j) == (c == '{' ? '}' : ']')) {
        j->i++;
        return SA_OK;
    }
    for (;;) {
        if (c == '{') {
            if (peek(j) != '"')
                return bad;
            if ((rc = scan_string(j, &s)) != SA_OK)
                return rc;
            ws(j);
            if (peek(j) != ':')
                return bad;
            j->i++;
            ws(j);
        }
        if ((rc = skip_value(j, depth + 1, bad)) != SA_OK)
            return rc;
        if ((rc = after_value(j, c == '{' ? '}' : ']')) <= 0)
            return rc == 0 ? SA_OK : bad;
    }
}

/* ---- the scanner's steps for other units (slurmcred.h) -------------------- */

void sc_json_ws(sc_jcur *j)
{
    ws(j);
}

int sc_json_string(sc_jcur *j, sc_jstr *s)
{
    return scan_string(j, s);
}

size_t sc_json_unescape(const uint8_t *base, const sc_jstr *s, uint8_t *out)
{
    return unescape(base, s, out);
}

int sc_json_number(sc_jcur *j, int *is_int, int *neg, uint64_t *mag, int *big, int bad)
{
    return scan_number(j, is_int, neg, mag, big, bad);
}

int sc_json_skip(sc_jcur *j, int bad)
{
    return skip_value(j, 1, bad);
}

int sc_json_after_value(sc_jcur *j, int close)
{
    return after_value(j, close);
}

/* ---- a flat object walker: known members dispatched, others skipped ----- */

typedef int (*member_fn)(void *ctx, int idx, jcur *j);

typedef struct {
    int (*lookup)(const uint8_t *name, size_t len);  /* index of a known member, or -1 */
    int bad;                 /* status for malformed JSON */
    int dup;                 /* status for a duplicate name */
    /* The index of the known member whose name, closing quote and ':' the
     * bytes q[0..avail) (just past a name's opening quote) start with, *adv
     * set to their length; -1 for anything else (the name then goes the
     * general way). May be NULL. */
    int (*fast)(const uint8_t *q, size_t avail, size_t *adv);
} walk_spec;

SC_INLINE int walk_object(jcur *j, const walk_spec *w, member_fn fn, void *ctx)
{
    uint8_t name[SC_MAX_NAME];
    uint8_t seen_store[SC_MAX_UNKNOWN * 24];
    size_t seen_off[SC_MAX_UNKNOWN], seen_len[SC_MAX_UNKNOWN];
    size_t nseen = 0, store_used = 0;
    uint32_t known = 0;
    int rc;

    ws(j);
    if (peek(j) != '{')
        return w->bad;
    j->i++;
    ws(j);
    if (peek(j) == '}') {
        j->i++;
        goto end;
    }
    for (;;) {
        jstr s;
        const uint8_t *nm;
        size_t nlen;
        int idx;

        if (peek(j) != '"')
            return w->bad;
        if (w->fast && (idx = w->fast(j->p + j->i + 1, j->n - j->i - 1, &nlen)) >= 0) {
            /* a known name without escapes, its ':' right behind it: what the
             * steps below find for it, without them */
            if (known & (1u << idx))
                return w->dup;
            known |= 1u << idx;
            j->i += 1 + nlen;
            ws(j);
            goto value;
        }
        if ((rc = scan_string(j, &s)) != SA_OK)
            return rc;
        if (s.len > SC_MAX_NAME)
            return SC_E_NAME_LONG;
        if (s.esc) {
            nlen = unescape(j->p, &s, name);
            nm = name;
        } else {
            nlen = s.len;
            nm = j->p + s.off;
        }
        idx = w->lookup(nm, nlen);
        if (idx >= 0) {
            if (known & (1u << idx))
                return w->dup;
            known |= 1u << idx;
        } else {
            size_t q;
            for (q = 0; q < nseen; q++)
                if (seen_len[q] == nlen && memcmp(seen_store + seen_off[q], nm, nlen) == 0)
                    return w->dup;
            if (nseen == SC_MAX_UNKNOWN || store_used + nlen > sizeof(seen_store))
                return SC_E_TOO_MANY;
            memcpy(seen_store + store_used, nm, nlen);
            seen_off[nseen] = store_used;
            seen_len[nseen++] = nlen;
            store_used += nlen;
        }
        ws(j);
        if (peek(j) != ':')
            return w->bad;
        j->i++;
        ws(j);
    value:
        rc = idx >= 0 ? fn(ctx, idx, j) : skip_value(j, 1, w->bad);
        if (rc != SA_OK)
            return rc;
        if ((rc = after_value(j, '}')) < 0)
            return w->bad;
        if (rc == 0)
            break;
    }
end:
    ws(j);
    return j->i == j->n ? SA_OK : w->bad;
}

/* ---- header ------------------------------------------------------------- */

SC_INLINE int header_index(const uint8_t *s, size_t n)
{
    if (n != 3)
        return -1;
    if (bytes_eq(s, "alg", 3))
        return 0;
    if (bytes_eq(s, "typ", 3))
        return 1;
    if (bytes_eq(s, "kid", 3))
        return 2;
    return -1;
}

typedef struct {
    jstr alg, typ, kid;
    int has_alg, has_typ, has_kid;
} hdr_ctx;

SC_INLINE int hdr_member(void *vctx, int idx, jcur *j)
{
    hdr_ctx *h = vctx;
    jstr *s = idx == 0 ? &h->alg : idx == 1 ? &h->typ : &h->kid;
    int rc;

    if (peek(j) != '"') {
        rc = skip_value(j, 1, SC_E_HEADER_JSON);
        if (rc != SA_OK)
            return rc;
        return idx == 0 ? SC_E_ALG_MISSING : idx == 1 ? SC_E_TYP : SC_E_KID_TYPE;
    }
    if ((rc = scan_string(j, s)) != SA_OK)
        return rc == SC_E_UTF8 ? SC_E_HEADER_JSON : rc;
    if (idx == 0)
        h->has_alg = 1;
    else if (idx == 1)
        h->has_typ = 1;
    else
        h->has_kid = 1;
    return SA_OK;
}

static const walk_spec HDR_SPEC = {header_index, SC_E_HEADER_JSON, SC_E_HEADER_DUP, NULL};

/* Compare a scanned string with a literal, unescaping into tmp if needed. */
static int str_equals(const uint8_t *base, const jstr *s, const char *lit, size_t litlen,
                      uint8_t *tmp, int ci)
{
    const uint8_t *v = base + s->off;
    size_t n = s->len, k;

    if (s->esc) {
        n = unescape(base, s, tmp);
        v = tmp;
    }
    if (n != litlen)
        return 0;
    if (!ci)
        return bytes_eq(v, lit, n);
    for (k = 0; k < n; k++) {
        uint8_t a = v[k], b = (uint8_t)lit[k];
        if (a >= 'a' && a <= 'z')
            a = (uint8_t)(a - 32);
        if (b >= 'a' && b <= 'z')
            b = (uint8_t)(b - 32);
        if (a != b)
            return 0;
    }
    return 1;
}

/* ---- claims ------------------------------------------------------------- */

/* The SC_CL_* index of a claim name, or -1 (dispatch on length, then bytes). */
SC_INLINE int claim_index(const uint8_t *s, size_t n)
{
    switch (n) {
    case 2:
        return bytes_eq(s, "id", 2) ? SC_CL_ID : -1;
    case 3:
        switch (s[0]) {
        case 'i': return bytes_eq(s, "iat", 3) ? SC_CL_IAT : -1;
        case 'e': return bytes_eq(s, "exp", 3) ? SC_CL_EXP : -1;
        case 'v': return bytes_eq(s, "ver", 3) ? SC_CL_VER : -1;
        case 'u': return bytes_eq(s, "uid", 3) ? SC_CL_UID : -1;
        case 'g': return bytes_eq(s, "gid", 3) ? SC_CL_GID : -1;
        case 'n': return bytes_eq(s, "net", 3) ? SC_CL_NET : -1;
        default: return -1;
        }
    case 4:
        if (bytes_eq(s, "ruid", 4))
            return SC_CL_RUID;
        return bytes_eq(s, "host", 4) ? SC_CL_HOST : -1;
    case 6:
        return bytes_eq(s, "sbcast", 6) ? SC_CL_SBCAST : -1;
    case 7:
        if (bytes_eq(s, "context", 7))
            return SC_CL_CONTEXT;
        if (bytes_eq(s, "cluster", 7))
            return SC_CL_CLUSTER;
        return bytes_eq(s, "payload", 7) ? SC_CL_PAYLOAD : -1;
    default:
        return -1;
    }
}

/* Eight bytes as a little-endian word, whatever the host's byte order (one
 * load where it is little-endian). */
SC_INLINE uint64_t le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* The little-endian word of up to eight characters (the rest zero). */
#define LE8(a, b, c, d, e, f, g, h)                                                      \
    ((uint64_t)(uint8_t)(a) | (uint64_t)(uint8_t)(b) << 8 | (uint64_t)(uint8_t)(c) << 16 | \
     (uint64_t)(uint8_t)(d) << 24 | (uint64_t)(uint8_t)(e) << 32 |                        \
     (uint64_t)(uint8_t)(f) << 40 | (uint64_t)(uint8_t)(g) << 48 | (uint64_t)(uint8_t)(h) << 56)
#define MASK_BYTES(n) ((n) >= 8 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * (n))) - 1)

/* CL_SPEC's fast name match: a claim name, '"' and ':' compared as one word
 * (the 7-letter names: their first eight bytes, then the ':'). */
SC_INLINE int claim_fast(const uint8_t *q, size_t avail, size_t *adv)
{
    uint64_t w;

    if (avail < 9)
        return -1;
    w = le64(q);
#define NAME_IS(n, word) ((w & MASK_BYTES(n)) == (word) && (*adv = (n), 1))
    switch (q[0]) {
    case 'c':
        if (q[8] != ':')
            return -1;
        if (w == LE8('c', 'o', 'n', 't', 'e', 'x', 't', '"'))
            return *adv = 9, SC_CL_CONTEXT;
        if (w == LE8('c', 'l', 'u', 's', 't', 'e', 'r', '"'))
            return *adv = 9, SC_CL_CLUSTER;
        return -1;
    case 'p':
        if (q[8] == ':' && w == LE8('p', 'a', 'y', 'l', 'o', 'a', 'd', '"'))
            return *adv = 9, SC_CL_PAYLOAD;
        return -1;
    case 'e':
        return NAME_IS(5, LE8('e', 'x', 'p', '"', ':', 0, 0, 0)) ? SC_CL_EXP : -1;
    case 'i':
        if (NAME_IS(5, LE8('i', 'a', 't', '"', ':', 0, 0, 0)))
            return SC_CL_IAT;
        return NAME_IS(4, LE8('i', 'd', '"', ':', 0, 0, 0, 0)) ? SC_CL_ID : -1;
    case 'u':
        return NAME_IS(5, LE8('u', 'i', 'd', '"', ':', 0, 0, 0)) ? SC_CL_UID : -1;
    case 'g':
        return NAME_IS(5, LE8('g', 'i', 'd', '"', ':', 0, 0, 0)) ? SC_CL_GID : -1;
    case 'v':
        return NAME_IS(5, LE8('v', 'e', 'r', '"', ':', 0, 0, 0)) ? SC_CL_VER : -1;
    case 'n':
        return NAME_IS(5, LE8('n', 'e', 't', '"', ':', 0, 0, 0)) ? SC_CL_NET : -1;
    case 'r':
        return NAME_IS(6, LE8('r', 'u', 'i', 'd', '"', ':', 0, 0)) ? SC_CL_RUID : -1;
    case 'h':
        return NAME_IS(6, LE8('h', 'o', 's', 't', '"', ':', 0, 0)) ? SC_CL_HOST : -1;
    case 's':
        return NAME_IS(8, LE8('s', 'b', 'c', 'a', 's', 't', '"', ':')) ? SC_CL_SBCAST : -1;
    default:
        return -1;
    }
#undef NAME_IS
}

static const walk_spec CL_SPEC = {claim_index, SC_E_CLAIMS_JSON, SC_E_CLAIM_DUP, claim_fast};

/* MAC steps per token's claims scan when two tokens' MACs are stepped
 * alternately (each MAC then gets about half of them while its own token is
 * scanned and half while the other one is): a few more than the single
 * path's 10, so that most of both MACs' 2 x 12 half-compressions (a ~350-byte
 * credential) run behind the two scans. */
#define SC_PAIR_STEPS 12

typedef struct {
    int64_t ival[6];          /* iat exp ver ruid uid gid */
    jstr sval[4];             /* context cluster host payload */
    size_t raw_off[3], raw_len[3];  /* id sbcast net */
    uint32_t present;
    int err_claim;
    int read_id;              /* SC_POL_CLIENT_IDS: "id" is read, else skipped as unknown */
    sa_hmac_job *mac;         /* stepped as the scan passes next_step, or NULL */
    sa_hmac_job *mac2;        /* a second token's MAC (sc_verify_many's pairs), or NULL:
                                 the steps then alternate between the two */
    int flip;
    size_t next_step, stride;
} cl_ctx;

/* An integer claim's value (sign, magnitude, *big beyond 2^63) into
 * c->ival[idx] when its type holds it: iat and exp any int64 (time_t), ver
 * a uint16, the ids a uint32. SC_E_INT_RANGE otherwise. */
SC_INLINE int store_int(cl_ctx *c, int idx, int neg, uint64_t mag, int big)
{
    if (idx <= SC_CL_EXP) {
        if (int64_out(neg, mag, big))
            return SC_E_INT_RANGE;
        c->ival[idx] = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    } else {
        uint64_t hi = idx == SC_CL_VER ? 65535u : 4294967295u;
        if (big || neg || mag > hi)
            return SC_E_INT_RANGE;    /* "-0" is refused too */
        c->ival[idx] = (int64_t)mag;
    }
    return SA_OK;
}

SC_INLINE int cl_value(cl_ctx *c, int idx, jcur *j)
{
    int rc, ch = peek(j);

    if (idx <= SC_CL_GID) {
        int is_int, neg, big;
        uint64_t mag;
        if (ch != '-' && (ch < '0' || ch > '9')) {
            rc = skip_value(j, 1, SC_E_CLAIMS_JSON);
            return rc != SA_OK ? rc : SC_E_INT_TYPE;
        }
        if ((rc = scan_number(j, &is_int, &neg, &mag, &big, SC_E_CLAIMS_JSON)) != SA_OK)
            return rc;
        if (!is_int)
            return SC_E_INT_TYPE;
        return store_int(c, idx, neg, mag, big);
    }
    if (idx <= SC_CL_PAYLOAD) {
        if (ch != '"') {
            rc = skip_value(j, 1, SC_E_CLAIMS_JSON);
            return rc != SA_OK ? rc : SC_E_STR_TYPE;
        }
        return scan_string(j, &c->sval[idx - SC_CL_CONTEXT]);
    }
    if (ch != '{') {
        rc = skip_value(j, 1, SC_E_CLAIMS_JSON);
        return rc != SA_OK ? rc : SC_E_OBJ_TYPE;
    }
    c->raw_off[idx - SC_CL_ID] = j->i;
    rc = skip_value(j, 1, SC_E_CLAIMS_JSON);
    c->raw_len[idx - SC_CL_ID] = j->i - c->raw_off[idx - SC_CL_ID];
    return rc;
}

/* A MAC step once the scan reaches next_step (SIZE_MAX without a MAC): its
 * compression runs while the scan goes on; with two MACs, two independent
 * chains are in flight. */
SC_INLINE void mac_step_at(cl_ctx *c, size_t at)
{
    if (at >= c->next_step) {
        sa_hmac_step(c->mac2 && (c->flip ^= 1) ? c->mac2 : c->mac);
        c->next_step += c->stride;
    }
}

SC_INLINE int cl_member(void *vctx, int idx, jcur *j)
{
    cl_ctx *c = vctx;
    int rc;

    mac_step_at(c, j->i);   /* its compression runs while this claim is scanned */
    if (idx == SC_CL_ID && !c->read_id)
        return skip_value(j, 1, SC_E_CLAIMS_JSON);
    c->present |= 1u << idx;
    rc = cl_value(c, idx, j);
    c->err_claim = rc == SA_OK ? -1 : idx;
    return rc;
}

/* ---- the claims' fast path (AVX-512BW) -----------------------------------------
 * Claims as libjwt writes them (compact, no escapes, every member a known
 * claim of its type) are read by positions found 64 bytes at a time: where
 * the quotes are and where digit runs end. Anything else -- whitespace, an
 * escape, a control or non-ASCII byte, an unknown or repeated name, a value
 * of another type or out of range, a malformed number -- makes the fast path
 * give up, and walk_object reads the claims from the start: every refusal
 * and every unusual input goes through the one general scanner, and what the
 * fast path accepts it reads exactly as walk_object would (tests: every
 * scanner gives the same status and scratch bytes; fuzz_slurmcred). */

#if SC_HAVE_AVX512_CODE

#define SC_FAST_MAX 1024                   /* longer claims take the general walk */
#define SC_FAST_WORDS (SC_FAST_MAX / 64 + 1)
#define SC_FAST_GIVE_UP 1                  /* not a status: "use walk_object" */

/* w[3 k]: bit b set when byte 64 k + b is '"'; w[3 k + 1]: when it is not an
 * ASCII digit; both set for every byte at or past n (so a search from any
 * i <= n stops by n). w[3 k + 2]: '\\', a control character or a byte >=
 * 0x80, at positions below n only. */
typedef struct {
    uint64_t w[3 * SC_FAST_WORDS];
} fast_marks;

__attribute__((target("avx512f,avx512bw")))
static uint64_t fast_marks_avx512(const uint8_t *p, size_t n, fast_marks *m)
{
    const __m512i quote = _mm512_set1_epi8('"'), bslash = _mm512_set1_epi8('\\');
    const __m512i space = _mm512_set1_epi8(0x20), zero = _mm512_set1_epi8('0');
    const __m512i nine = _mm512_set1_epi8(9);
    uint64_t odd = 0;
    size_t i, w;

    for (i = 0, w = 0; i <= n; i += 64, w++) {
        const __mmask64 lm = n - i >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - i)) - 1;
        const __m512i v = _mm512_maskz_loadu_epi8(lm, p + i);
        const __mmask64 digit = _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, zero), nine);
        const __mmask64 bad = _mm512_mask_cmpeq_epi8_mask(lm, v, bslash) |
                              _mm512_mask_cmplt_epi8_mask(lm, v, space);
        m->w[3 * w] = (uint64_t)(_mm512_cmpeq_epi8_mask(v, quote) | ~lm);
        m->w[3 * w + 1] = (uint64_t)(~digit | ~lm);
        m->w[3 * w + 2] = (uint64_t)bad;
        odd |= (uint64_t)bad;
    }
    return odd;
}

/* The marks of p[0..n): 1 when they were built and no byte needs the
 * general scanner's care (escape, control character, non-ASCII). */
static int fast_marks_build(const uint8_t *p, size_t n, fast_marks *m)
{
    return n <= SC_FAST_MAX && scan_impl == SC_SCAN_AVX512 && fast_marks_avx512(p, n, m) == 0;
}

/* The first position >= i whose bit is set in the marks of kind k (0 quote,
 * 1 not a digit): at most n. */
SC_INLINE size_t fast_next(const fast_marks *m, int k, size_t i)
{
    size_t w = i >> 6;
    uint64_t b = m->w[3 * w + (size_t)k] >> (i & 63);

    if (b)
        return i + (size_t)__builtin_ctzll(b);
    do
        b = m->w[3 * ++w + (size_t)k];
    while (!b);
    return 64 * w + (size_t)__builtin_ctzll(b);
}

/* An integer claim's value at p[i..): SA_OK with *end past its digits when
 * they are a JSON integer that its type holds (stored by store_int, as
 * cl_value stores it), else give up.
 * What follows them is the caller's to check (',' or the closing '}': a
 * fraction or an exponent is neither). */
SC_INLINE int fast_int(cl_ctx *c, int idx, const fast_marks *m, const uint8_t *p, size_t i,
                       size_t *end)
{
    const int neg = p[i] == '-';
    const size_t s = i + (size_t)neg, e = fast_next(m, 1, s), k = e - s;
    uint64_t v = 0;
    size_t q;

    /* 1 to 18 digits (no overflow), no leading zero */
    if (k == 0 || k > 18 || (p[s] == '0' && k > 1))
        return SC_FAST_GIVE_UP;
#if SC_HAVE_SSE2_CODE
    if (k < 16 && e >= 16)
        v = digits_value_sse2(p + e - 16, (unsigned)k);
    else
#endif
        for (q = s; q < e; q++)
            v = v * 10 + (unsigned)(p[q] - '0');
    if (store_int(c, idx, neg, v, 0) != SA_OK)
        return SC_FAST_GIVE_UP;
    *end = e;
    return SA_OK;
}

/* The claims object at j by the fast path: SA_OK with *c filled as
 * walk_object(CL_SPEC, cl_member) would fill it, or SC_FAST_GIVE_UP. */
static int claims_fast(cl_ctx *c, jcur *j)
{
    fast_marks m;
    const uint8_t *p = j->p;
    const size_t n = j->n;
    uint32_t known = 0;
    size_t i = 1, nlen, e;
    int idx;

    if (n < 3 || p[0] != '{' || p[n - 1] != '}' || !fast_marks_build(p, n, &m))
        return SC_FAST_GIVE_UP;
    for (;;) {
        /* at a name's opening quote */
        if (p[i] != '"' || (idx = claim_fast(p + i + 1, n - i - 1, &nlen)) < 0 ||
            (known & (1u << idx)))
            return SC_FAST_GIVE_UP;
        known |= 1u << idx;
        i += 1 + nlen;
        mac_step_at(c, i);                 /* where cl_member steps */
        if (idx <= SC_CL_GID) {
            if (fast_int(c, idx, &m, p, i, &e) != SA_OK)
                return SC_FAST_GIVE_UP;
        } else if (idx <= SC_CL_PAYLOAD) {
            jstr *s = &c->sval[idx - SC_CL_CONTEXT];
            if (p[i] != '"')
                return SC_FAST_GIVE_UP;
            e = fast_next(&m, 0, i + 1);   /* its closing quote: no escapes here */
            if (e >= n)
                return SC_FAST_GIVE_UP;
            s->off = i + 1;
            s->len = e - i - 1;
            s->esc = 0;
            e++;
        } else {                           /* id, sbcast, net: objects */
            if (p[i] != '{')
                return SC_FAST_GIVE_UP;
            j->i = i;
            if (skip_value(j, 1, SC_E_CLAIMS_JSON) != SA_OK)
                return SC_FAST_GIVE_UP;
            e = j->i;
            c->raw_off[idx - SC_CL_ID] = i;
            c->raw_len[idx - SC_CL_ID] = e - i;
        }
        if (idx != SC_CL_ID || c->read_id)   /* cl_member skips an unread "id" */
            c->present |= 1u << idx;
        if (p[e] == ',') {
            i = e + 1;
            continue;
        }
        if (e == n - 1)                    /* the closing '}' */
            break;
        return SC_FAST_GIVE_UP;
    }
    j->i = n;
    return SA_OK;
}
#endif   /* SC_HAVE_AVX512_CODE */

static const char *const CTX_NAMES[] = {"auth", "sack", "launch", "sbcast", "net"};
static const size_t CTX_LENS[] = {4, 4, 6, 6, 3};

/* ---- verification ------------------------------------------------------- */

#define RESULT_SPACE ((sizeof(sc_result) + 15) & ~(size_t)15)

size_t sc_result_space(void)
{
    return RESULT_SPACE;
}

size_t sc_scratch_need(size_t len)
{
    /* result, output strings, header, claims, unescape area. */
    return (RESULT_SPACE + 4 * sa_b64_decoded_max(len) + 16 + 15) & ~(size_t)15;
}

/* The unescaped bytes of a scanned string: in place when it has no escapes,
 * else decoded into *tmp. */
static const uint8_t *string_bytes(const uint8_t *base, const jstr *s, uint8_t *tmp, size_t *n)
{
    if (!s->esc) {
        *n = s->len;
        return base + s->off;
    }
    *n = unescape(base, s, tmp);
    return tmp;
}

static const sc_key *select_key(const sc_keyset *ks, const uint8_t *hbuf, const hdr_ctx *h,
                                uint8_t *tmp, size_t *index, int *rc)
{
    size_t k;

    if (!ks->by_kid || !h->has_kid) {
        if (ks->default_index >= ks->nkeys) {
            *rc = SC_E_NO_KEY;
            return NULL;
        }
        *index = ks->default_index;
        return &ks->keys[ks->default_index];
    }
    for (k = 0; k < ks->nkeys; k++) {
        const sc_key *key = &ks->keys[k];
        if (key->kid && str_equals(hbuf, &h->kid, (const char *)key->kid, key->kid_len, tmp, 0)) {
            *index = k;
            return key;
        }
    }
    *rc = SC_E_KID_UNKNOWN;
    return NULL;
}

/* What the steps before the MAC found, for the steps after it. */
typedef struct {
    sa_jws_parts parts;
    hdr_ctx h;
    const sc_key *key;
    size_t kindex, dmax, out, hdr_off, cl_off, tail;
    int canonical;
} vstate;

/* Steps 0-2: size limit and shape (split_rc: what sa_jws_split, or
 * split_found, said of it; v->parts filled), header, key and its expiry. */
static int verify_head(const sc_keyset *ks, const char *tok, size_t len,
                       int64_t now, uint8_t *scratch, size_t cap, vstate *v, int split_rc)
{
    sc_result *r = (sc_result *)(void *)scratch;
    jcur j;
    size_t k, hdr_len = 0;
    int rc = split_rc;

    r->err_claim = -1;
    if (rc != SA_OK)
        return rc;
    if (cap < sc_scratch_need(len))
        return SC_E_SCRATCH;
    v->dmax = sa_b64_decoded_max(len);
    v->out = RESULT_SPACE;
    v->hdr_off = v->out + v->dmax;
    v->cl_off = v->hdr_off + v->dmax;
    v->tail = v->cl_off + v->dmax;
    v->canonical = 0;

    /* 1. header: decoded and parsed before the MAC, as Slurm reads the kid
     * first; Slurm's own header for a loaded key selects that key directly */
    for (k = 0; k < ks->nkeys; k++) {
        const sc_key *kk = &ks->keys[k];
        if (kk->hdr && kk->hdr_len == v->parts.header_len &&
            memcmp(kk->hdr, tok, v->parts.header_len) == 0)
            break;
    }
    if (k < ks->nkeys) {
        v->canonical = 1;
        v->kindex = k;
        v->key = &ks->keys[k];
    } else {
        rc = sa_jws_decode_segment(tok, &v->parts, 0, scratch + v->hdr_off, v->dmax, &hdr_len);
        if (rc != SA_OK)
            return rc;
        memset(&v->h, 0, sizeof(v->h));
        j.p = scratch + v->hdr_off;
        j.n = hdr_len;
        j.i = 0;
        if ((rc = walk_object(&j, &HDR_SPEC, hdr_member, &v->h)) != SA_OK)
            return rc == SC_E_ALG_MISSING || rc == SC_E_TYP || rc == SC_E_KID_TYPE ||
                   rc == SC_E_HEADER_DUP ? rc : SC_E_HEADER_JSON;

        /* 2. key: by kid (slurm.jwks) or the default key */
        v->key = select_key(ks, scratch + v->hdr_off, &v->h, scratch + v->tail, &v->kindex, &rc);
        if (!v->key)
            return rc;
    }
    /* ... and its expiry */
    if (v->key->exp && v->key->exp < now)
        return SC_E_KEY_EXPIRED;
    return SA_OK;
}

/* Step 5's scan, which may run before the MAC is known: decode the claims
 * and walk them into *c, stepping `mac` (when not NULL) once before the decode
 * and then as the walk passes each tenth of the claims, so the MAC's latency
 * overlaps the scan. Nothing here is
 * acted on until the MAC has matched (verify_claims): a forged token gets
 * its MAC error whatever its claims say, as in Slurm, whose libjwt parses the
 * claims before checking the signature too. */
static int scan_claims(const sc_policy *pol, const char *tok, uint8_t *scratch,
                       const vstate *v, cl_ctx *c, sa_hmac_job *mac, sa_hmac_job *mac2)
{
    size_t cl_len = 0;
    jcur j;
    int rc;

    /* only what is read before it is written: a value (ival, sval, raw_*) is
     * read only once its claim's bit in present is set, and setting that bit
     * is followed by writing the value (a memset of the whole context was
     * ~7% of the scan) */
    c->present = 0;
    c->err_claim = -1;
    c->read_id = (pol->flags & SC_POL_CLIENT_IDS) != 0;
    c->flip = 0;
    c->mac = mac;
    c->mac2 = mac ? mac2 : NULL;
    if (mac)
        sa_hmac_step(mac);
    rc = sa_jws_decode_segment(tok, &v->parts, 1, scratch + v->cl_off, v->dmax, &cl_len);
    if (rc != SA_OK)
        return rc;
    j.p = scratch + v->cl_off;
    j.n = cl_len;
    j.i = 0;
    /* a MAC step (half a compression on SHA-NI) per tenth of the claims: each
     * gets about as much scan work behind it as the reorder window holds
     * (benchmarks/results/notes.md: how the stride was chosen) */
    c->stride = cl_len / (c->mac2 ? SC_PAIR_STEPS : 10) + 1;
    c->next_step = mac ? c->stride : SIZE_MAX;
#if SC_HAVE_AVX512_CODE
    if (claims_fast(c, &j) == SA_OK)
        return SA_OK;
    /* the general walk, from the start; nothing the fast path read counts
     * (the MAC steps it took are steps all the same) */
    c->present = 0;
    c->err_claim = -1;
    j.i = 0;
#endif
    return walk_object(&j, &CL_SPEC, cl_member, c);
}

/* Steps 4-6, after the MAC matched: alg, the claims scan's outcome (scan_rc),
 * Slurm's claim rules, and the result at the start of the scratch region. */
static int verify_claims(const sc_policy *pol, int64_t now, uint8_t *scratch, const vstate *v,
                         const cl_ctx *c, int scan_rc, sa_hmac_job *mac)
{
    sc_result *r = (sc_result *)(void *)scratch;
    const size_t hdr_off = v->hdr_off, cl_off = v->cl_off, tail = v->tail;
    size_t out = v->out, k, n;
    const uint8_t *p;
    int rc;

    /* 4. alg exactly HS256 (after the MAC, like Slurm's defence against "none");
     * a canonical header has alg HS256 and typ JWT */
    if (!v->canonical) {
        if (!v->h.has_alg)
            return SC_E_ALG_MISSING;
        if (!str_equals(scratch + hdr_off, &v->h.alg, "HS256", 5, scratch + tail, 0))
            return SC_E_ALG;
        if (v->h.has_typ && !str_equals(scratch + hdr_off, &v->h.typ, "JWT", 3, scratch + tail, 1))
            return SC_E_TYP;
    }

    /* 5. claims */
    if (scan_rc != SA_OK) {
        r->err_claim = c->err_claim;   /* the known claim at fault, or -1 */
        return scan_rc;
    }

    /* 6. exp, ruid, required claims, context: Slurm's order */
    if (!(c->present & (1u << SC_CL_EXP)))
        return SC_E_EXP_MISSING;
    if (c->ival[SC_CL_EXP] < now)
        return SC_E_EXPIRED;
    if (!(c->present & (1u << SC_CL_RUID)))
        return SC_E_RUID_MISSING;
    if (c->ival[SC_CL_RUID] != UINT32_ANY && c->ival[SC_CL_RUID] != (int64_t)pol->verifier_uid)
        return SC_E_RUID;
    if (!(c->present & (1u << SC_CL_IAT)))
        return SC_E_IAT_MISSING;
    if (!(c->present & (1u << SC_CL_UID)))
        return SC_E_UID_MISSING;
    if (!(c->present & (1u << SC_CL_GID)))
        return SC_E_GID_MISSING;
    if (!(c->present & (1u << SC_CL_HOST)))
        return SC_E_HOST_MISSING;
    if (!(c->present & (1u << SC_CL_CONTEXT)))
        return SC_E_CONTEXT_MISSING;

    r->iat = c->ival[SC_CL_IAT];
    r->exp = c->ival[SC_CL_EXP];
    r->ver = (c->present & (1u << SC_CL_VER)) ? c->ival[SC_CL_VER] : -1;
    r->ruid = c->ival[SC_CL_RUID];
    r->uid = c->ival[SC_CL_UID];
    r->gid = c->ival[SC_CL_GID];
    r->key_index = (int64_t)v->kindex;

    p = string_bytes(scratch + cl_off, &c->sval[0], scratch + tail, &n);
    r->context = -1;
    for (k = 0; k < sizeof(CTX_LENS) / sizeof(CTX_LENS[0]); k++)
        if (n == CTX_LENS[k] && bytes_eq(p, CTX_NAMES[k], n)) {
            r->context = (int64_t)k;   /* the names differ: no other one matches */
            break;
        }
    if (r->context < 0 || !(pol->contexts & (1u << r->context)))
        return SC_E_CONTEXT;

    /* host, cluster, payload back to back at scratch + out (total <= claims length) */
    p = string_bytes(scratch + cl_off, &c->sval[2], scratch + tail, &n);
    memcpy(scratch + out, p, n);
    r->host_len = (int64_t)n;
    out += n;
    r->cluster_len = -1;
    if (c->present & (1u << SC_CL_CLUSTER)) {
        p = string_bytes(scratch + cl_off, &c->sval[1], scratch + tail, &n);
        memcpy(scratch + out, p, n);
        r->cluster_len = (int64_t)n;
        out += n;
    }
    r->payload_len = -1;
    if (c->present & (1u << SC_CL_PAYLOAD)) {
        size_t plen = 0;
        p = string_bytes(scratch + cl_off, &c->sval[3], scratch + tail, &n);
        if (mac)
            sa_hmac_step(mac);
        if (n == 0) {          /* Slurm's xbase64_decode() fails on "" */
            r->err_claim = SC_CL_PAYLOAD;
            return SC_E_PAYLOAD_EMPTY;
        }
        rc = sa_b64_decode((const char *)p, n, scratch + out, hdr_off - out, &plen);
        if (rc != SA_OK) {
            r->err_claim = SC_CL_PAYLOAD;
            return SC_E_PAYLOAD;
        }
        r->payload_len = (int64_t)plen;
    }
    r->objects = (int64_t)((c->present >> SC_CL_ID) & 7u);
    r->shape = -1;
    if (!r->objects && r->host_len < SC_SHAPE_LIMIT && r->cluster_len < SC_SHAPE_LIMIT &&
        r->payload_len < SC_SHAPE_LIMIT)
        r->shape = r->host_len + ((r->cluster_len + 1) << 21) + ((r->payload_len + 1) << 42);
    r->id_len = r->sbcast_len = r->net_len = -1;
    if (c->present & (1u << SC_CL_ID)) {
        r->id_off = (int64_t)(cl_off + c->raw_off[0]);
        r->id_len = (int64_t)c->raw_len[0];
    }
    if (c->present & (1u << SC_CL_SBCAST)) {
        r->sbcast_off = (int64_t)(cl_off + c->raw_off[1]);
        r->sbcast_len = (int64_t)c->raw_len[1];
    }
    if (c->present & (1u << SC_CL_NET)) {
        r->net_off = (int64_t)(cl_off + c->raw_off[2]);
        r->net_len = (int64_t)c->raw_len[2];
    }
    return SA_OK;
}

/* Steps 5-6 for a token whose MAC has already matched. */
static int claims_after_mac(const sc_policy *pol, const char *tok, int64_t now, uint8_t *scratch,
                            const vstate *v)
{
    cl_ctx c;
    int scan_rc = scan_claims(pol, tok, scratch, v, &c, NULL, NULL);

    return verify_claims(pol, now, scratch, v, &c, scan_rc, NULL);
}

int sc_verify(const sc_keyset *ks, const sc_policy *pol, const char *tok, size_t len,
              int64_t now, uint8_t *scratch, size_t cap)
{
    vstate v;
    sa_hmac_job mac;
    uint8_t got[32];
    cl_ctx c;
    int rc, scan_rc, claims_rc;

    if (!ks || !pol || !scratch || cap < RESULT_SPACE || (!tok && len))
        return SA_E_ARG;
    if (now < 0)
        now = (int64_t)time(NULL);
    rc = verify_head(ks, tok, len, now, scratch, cap, &v,
                     sa_jws_split(tok, len, pol->max_len, &v.parts));
    if (rc != SA_OK)
        return rc;
    /* 3. HMAC, constant time. Its compressions are interleaved with steps
     * 4-6, whose outcome counts only once the MAC has matched: a forged token
     * gets its MAC error, and no result, whatever its claims say. */
    rc = sa_jws_hs256_begin(&mac, v.key->key, tok, &v.parts, got);
    if (rc != SA_OK)
        return rc;
    scan_rc = scan_claims(pol, tok, scratch, &v, &c, &mac, NULL);
    claims_rc = verify_claims(pol, now, scratch, &v, &c, scan_rc, &mac);
    rc = sa_jws_hs256_end(&mac, got);
    if (rc != SA_OK) {
        memset(scratch, 0, RESULT_SPACE);
        ((sc_result *)(void *)scratch)->err_claim = -1;
        return rc;
    }
    return claims_rc;
}

/* ---- many tokens in one call --------------------------------------------- */

#define COLS_SPACE(n) (((n) * 20 + 15) & ~(size_t)15)

size_t sc_batch_work_need(const sc_policy *pol, size_t total)
{
    size_t longest = pol && pol->max_len < total ? pol->max_len : total;
    /* two regions, each starting on a cache line when work does */
    return 2 * ((sc_scratch_need(longest) + 63) & ~(size_t)63);
}

size_t sc_batch_out_need(size_t n, size_t total)
{
    return COLS_SPACE(n) + n * (RESULT_SPACE + 8) + total;
}

#if SC_HAVE_AVX512_CODE || SC_HAVE_SSE2_CODE
/* One block of find_token's scan, at offset i: the '.' of mask md (bit k:
 * byte i + k) before the first SC_BATCH_SEP of mask mn are counted into *nd
 * (up to 3; the first two kept in dots[]). Returns 1, with *end the
 * separator's offset, when mn has one. */
SC_INLINE int scan_block(uint64_t md, uint64_t mn, size_t i, size_t dots[2], int *nd, size_t *end)
{
    if (mn)
        md &= (mn & (0 - mn)) - 1;      /* the dots before the separator */
    for (; md && *nd < 3; md &= md - 1) {
        if (*nd < 2)
            dots[*nd] = i + (size_t)__builtin_ctzll(md);
        (*nd)++;
    }
    if (!mn)
        return 0;
    *end = i + (size_t)__builtin_ctzll(mn);
    return 1;
}
#endif

#if SC_HAVE_AVX512_CODE
/* find_token 64 bytes at a time: whole blocks by plain loads, the last by a
 * masked one (nothing read past p[avail)). With seps 0 (a listed token, its
 * length known) no separator is looked for and the result is avail; the
 * dots alone take 7 ns for 347 bytes against 13 for sa_jws_split's three
 * memchr. */
__attribute__((target("avx512f,avx512bw")))
static size_t find_token_avx512(const uint8_t *p, size_t avail, int seps, size_t dots[2],
                                int *ndots)
{
    const __m512i dot = _mm512_set1_epi8('.'), sep = _mm512_set1_epi8(SC_BATCH_SEP);
    size_t i;
    int nd = 0;

    for (i = 0; i < avail; i += 64) {
        const __m512i v = avail - i >= 64
            ? _mm512_loadu_si512((const void *)(p + i))
            : _mm512_maskz_loadu_epi8(((__mmask64)1 << (avail - i)) - 1, p + i);
        size_t end;

        /* bytes past avail load as 0: neither '.' nor the separator */
        if (scan_block(_mm512_cmpeq_epi8_mask(v, dot), seps ? _mm512_cmpeq_epi8_mask(v, sep) : 0,
                       i, dots, &nd, &end)) {
            *ndots = nd;
            return end;
        }
    }
    *ndots = nd;
    return avail;
}
#endif

/* A separated batch's next token, at tok with avail bytes to the buffer's
 * end: its length (to the first SC_BATCH_SEP, or to the end), found in one
 * pass with the first two '.' in it (dots[], *ndots: how many, at most 3). */
static size_t find_token(const char *tok, size_t avail, size_t dots[2], int *ndots)
{
    const uint8_t *p = (const uint8_t *)tok;
    size_t i = 0;
    int nd = 0;

#if SC_HAVE_AVX512_CODE
    if (scan_impl == SC_SCAN_AVX512)
        return find_token_avx512(p, avail, 1, dots, ndots);
#endif
#if SC_HAVE_SSE2_CODE
    for (; scan_impl != SC_SCAN_PORTABLE && i + 16 <= avail; i += 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        size_t end;

        if (scan_block((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))),
                       (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(SC_BATCH_SEP))),
                       i, dots, &nd, &end)) {
            *ndots = nd;
            return end;
        }
    }
#endif
    for (; i < avail && p[i] != SC_BATCH_SEP; i++) {
        if (p[i] == '.' && nd < 3) {
            if (nd < 2)
                dots[nd] = i;
            nd++;
        }
    }
    *ndots = nd;
    return i;
}

/* sa_jws_split's outcome and parts for a token whose first two '.' (and
 * whether there are more) find_token found. */
static int split_found(size_t len, size_t max_len, const size_t dots[2], int ndots,
                       sa_jws_parts *p)
{
    int rc;

    if (len > max_len)
        return SA_E_TOO_LARGE;
    if (ndots != 2)
        return SA_E_SEGMENTS;
    rc = sa_jws_parts_at(len, dots[0], dots[1], p);
    return rc != SA_OK ? rc : sa_jws_hs256_tag_length(p);
}

/* sa_jws_split's outcome and parts for a listed token: one AVX-512 pass
 * where that scanner is selected. */
static int split_listed(const char *tok, size_t len, size_t max_len, sa_jws_parts *p)
{
#if SC_HAVE_AVX512_CODE
    if (scan_impl == SC_SCAN_AVX512 && len <= max_len) {
        size_t dots[2];
        int nd;
        (void)find_token_avx512((const uint8_t *)tok, len, 0, dots, &nd);
        return split_found(len, max_len, dots, nd, p);
    }
#endif
    return sa_jws_split(tok, len, max_len, p);
}

/* Where a batch's tokens are: one buffer, separated by SC_BATCH_SEP
 * (sc_verify_many: toks NULL), or token i at toks[i], lens[i] bytes long
 * (sc_verify_list). */
typedef struct {
    const char *packed;
    size_t packed_len;
    size_t at;                /* separated: where the next token starts */
    const char *const *toks;
    const size_t *lens;
} batch_in;

/* Token i of the batch (taken in order): *tok, *len and its split in *parts;
 * returns the split's status (sa_jws_split's). A separated buffer's pieces
 * are found as the tokens are verified: fewer than n shows in in_short(),
 * more than n in in_left_over() after the last (work done for a batch that
 * fails so is at most what verifying it once more costs); the pass that finds
 * the separator finds the token's dots too. */
static int take_token(batch_in *in, size_t i, size_t max_len, const char **tok, size_t *len,
                      sa_jws_parts *parts)
{
    size_t dots[2];
    int nd;

    if (in->toks) {
        *tok = in->toks[i];
        *len = in->lens[i];
        return split_listed(*tok, *len, max_len, parts);
    }
    *tok = in->packed_len ? in->packed + in->at : in->packed;
    *len = find_token(*tok, in->packed_len - in->at, dots, &nd);
    in->at += *len + 1;
    return split_found(*len, max_len, dots, nd, parts);
}

/* A separated buffer that ended before the next token. */
static int in_short(const batch_in *in)
{
    return !in->toks && in->at > in->packed_len;
}

/* A separated buffer holding more than the n tokens taken. */
static int in_left_over(const batch_in *in, size_t n)
{
    return !in->toks && n && in->at != in->packed_len + 1;
}

/* sc_verify_many's output: the columns, then the records. */
typedef struct {
    uint8_t *out;
    uint64_t *rec_off;
    int32_t *status;
    uint32_t *uid, *gid;
    size_t rec;               /* where the next record goes */
} batch_out;

/* Token t's status, uid/gid and record: the sc_result, host/cluster/payload,
 * then the raw "id"/"sbcast"/"net" objects with their offsets made relative
 * to the record (a failed token's record is its sc_result alone). */
static void put_token(batch_out *b, size_t t, uint8_t *region, int rc)
{
    sc_result *r = (sc_result *)(void *)region;
    uint8_t *dst = b->out + b->rec;
    int64_t *offs[3], *lens[3];
    size_t at = RESULT_SPACE, strings, k;

    b->status[t] = rc;
    b->rec_off[t] = b->rec;
    if (rc != SA_OK) {
        b->uid[t] = b->gid[t] = 0;
        memcpy(dst, region, RESULT_SPACE);
        b->rec += RESULT_SPACE;
        return;
    }
    b->uid[t] = (uint32_t)r->uid;
    b->gid[t] = (uint32_t)r->gid;
    strings = (size_t)r->host_len + (size_t)(r->cluster_len > 0 ? r->cluster_len : 0) +
              (size_t)(r->payload_len > 0 ? r->payload_len : 0);
    at += strings;
    offs[0] = &r->id_off;     lens[0] = &r->id_len;
    offs[1] = &r->sbcast_off; lens[1] = &r->sbcast_len;
    offs[2] = &r->net_off;    lens[2] = &r->net_len;
    for (k = 0; k < 3; k++) {
        if (*lens[k] < 0)
            continue;
        memcpy(dst + at, region + *offs[k], (size_t)*lens[k]);
        *offs[k] = (int64_t)at;
        at += (size_t)*lens[k];
    }
    memcpy(dst, region, RESULT_SPACE + strings);
    b->rec += (at + 7) & ~(size_t)7;
}

/* A token past its header and key, waiting for a second one to MAC with. */
typedef struct {
    vstate v;
    const char *tok;
    size_t t;
} held;

/* One or two held tokens (past their header and key), each in its own
 * region: their MACs begun together, each token's claims scanned and checked
 * while the MACs' compressions run (stepped alternately from both scans, so
 * two independent chains keep the SHA unit busy behind the scalar work), then
 * each tag compared in constant time. Every token gets sc_verify's status and
 * result: a bad tag is its MAC error with the result cleared, whatever the
 * claims said; only then do the claim checks count. */
static void verify_held(batch_out *b, const sc_policy *pol, int64_t now, const held *const *h,
                        uint8_t *const *reg, int cnt)
{
    sa_hmac_job mac[2];
    uint8_t got[2][32];
    cl_ctx c;
    int rc[2], claims_rc[2] = {SA_OK, SA_OK}, live[2] = {0, 0}, q;

    for (q = 0; q < cnt; q++) {
        rc[q] = sa_jws_hs256_begin(&mac[q], h[q]->v.key->key, h[q]->tok, &h[q]->v.parts, got[q]);
        live[q] = rc[q] == SA_OK;   /* a malformed tag: that error, no MAC (as sc_verify) */
    }
    for (q = 0; q < cnt; q++) {
        int other = cnt == 2 && live[1 - q] ? 1 - q : -1, scan_rc;
        if (!live[q])
            continue;
        scan_rc = scan_claims(pol, h[q]->tok, reg[q], &h[q]->v, &c, &mac[q],
                              other >= 0 ? &mac[other] : NULL);
        claims_rc[q] = verify_claims(pol, now, reg[q], &h[q]->v, &c, scan_rc, &mac[q]);
    }
    /* what the scans left of the two MACs: still two chains at once */
    if (live[0] && cnt == 2 && live[1])
        while (mac[0].phase != 2 || mac[1].phase != 2) {
            sa_hmac_step(&mac[0]);
            sa_hmac_step(&mac[1]);
        }
    for (q = 0; q < cnt; q++) {
        if (live[q]) {
            rc[q] = sa_jws_hs256_end(&mac[q], got[q]);
            if (rc[q] != SA_OK) {
                memset(reg[q], 0, RESULT_SPACE);
                ((sc_result *)(void *)reg[q])->err_claim = -1;
            } else {
                rc[q] = claims_rc[q];
            }
        }
        put_token(b, h[q]->t, reg[q], rc[q]);
    }
}

/* The tokens held for one multi-buffer MAC, each with its own region. */
typedef struct {
    held slot[SA_MB_MAX_LANES];
    uint8_t *region[SA_MB_MAX_LANES];
    int cnt;
    size_t used;              /* bytes of work taken by their regions */
} mb_group;

/* MAC the held tokens together (sa_jws_hs256_checkn), then each one's
 * remaining steps, as the 2-way path does for its pairs. */
static void mb_flush(batch_out *b, const sc_policy *pol, int64_t now, int impl, mb_group *g)
{
    const sa_hmac_key *keys[SA_MB_MAX_LANES];
    const char *toks[SA_MB_MAX_LANES];
    const sa_jws_parts *parts[SA_MB_MAX_LANES];
    int rc[SA_MB_MAX_LANES], q;

    for (q = 0; q < g->cnt; q++) {
        keys[q] = g->slot[q].v.key->key;
        toks[q] = g->slot[q].tok;
        parts[q] = &g->slot[q].v.parts;
    }
    sa_jws_hs256_checkn(impl, keys, toks, parts, (size_t)g->cnt, rc);
    for (q = 0; q < g->cnt; q++) {
        const held *h = &g->slot[q];
        put_token(b, h->t, g->region[q], rc[q] != SA_OK ? rc[q] :
                  claims_after_mac(pol, h->tok, now, g->region[q], &h->v));
    }
    g->cnt = 0;
    g->used = 0;
}

/* The batch loop with the multi-buffer HMAC: up to `lanes` tokens are held
 * (each past its header and key, in a region of its own carved from work)
 * and MACed in one go; the group is flushed early when the next token's
 * region would not fit. Same statuses and records as the 2-way loop. */
static int many_mb(const sc_keyset *ks, const sc_policy *pol, batch_in *in, size_t n, int64_t now,
                   uint8_t *work, size_t work_cap, batch_out *b, int impl)
{
    mb_group g;
    size_t i;
    int lanes = sa_mb_lanes(impl), rc;

    if (lanes > SA_MB_MAX_LANES)
        lanes = SA_MB_MAX_LANES;
    g.cnt = 0;
    g.used = 0;
    for (i = 0; i < n; i++) {
        const char *tok;
        size_t len, need;
        uint8_t *region;
        sa_jws_parts parts;
        int split_rc;

        if (in_short(in))
            return SC_E_BATCH_SPLIT;
        split_rc = take_token(in, i, pol->max_len, &tok, &len, &parts);
        need = sc_scratch_need(len < pol->max_len ? len : pol->max_len);
        if (g.cnt && g.used + need > work_cap)
            mb_flush(b, pol, now, impl, &g);
        g.slot[g.cnt].v.parts = parts;
        region = work + g.used;
        rc = verify_head(ks, tok, len, now, region, work_cap - g.used, &g.slot[g.cnt].v,
                         split_rc);
        if (rc != SA_OK) {
            put_token(b, i, region, rc);
            continue;
        }
        g.slot[g.cnt].tok = tok;
        g.slot[g.cnt].t = i;
        g.region[g.cnt++] = region;
        g.used += need;
        if (g.cnt == lanes)
            mb_flush(b, pol, now, impl, &g);
    }
    if (in_left_over(in, n))
        return SC_E_BATCH_SPLIT;
    if (g.cnt)
        mb_flush(b, pol, now, impl, &g);
    return SA_OK;
}

/* sc_verify_many and sc_verify_list past their argument checks: n tokens of
 * at most total bytes in all. */
static int verify_batch(const sc_keyset *ks, const sc_policy *pol, batch_in *in, size_t n,
                        size_t total, int64_t now, uint8_t *work, size_t work_cap, uint8_t *out,
                        size_t out_cap)
{
    batch_out b;
    held slot[2];
    size_t i, half;
    int pending = -1, s, rc;

    if (((uintptr_t)out & 7) || ((uintptr_t)work & 15))
        return SA_E_ARG;
    if (n > SIZE_MAX / 4 / (RESULT_SPACE + 28) || total > SIZE_MAX / 16)
        return SA_E_ARG;   /* more than memory holds: the sizes below would wrap */
    if (out_cap < sc_batch_out_need(n, total) || work_cap < sc_batch_work_need(pol, total))
        return SC_E_SCRATCH;
    if (scan_impl < 0)
        sc_scan_select(SC_SCAN_AUTO);
    if (now < 0)
        now = (int64_t)time(NULL);
    b.out = out;
    b.rec_off = (uint64_t *)(void *)out;
    b.status = (int32_t *)(void *)(out + 8 * n);
    b.uid = (uint32_t *)(void *)(out + 12 * n);
    b.gid = (uint32_t *)(void *)(out + 16 * n);
    b.rec = COLS_SPACE(n);
    if (n > 2) {
        int impl = sa_mb_active();
        if (impl != SA_MB_NONE)
            return many_mb(ks, pol, in, n, now, work, work_cap, &b, impl);
    }
    half = (work_cap / 2) & ~(size_t)63;

    for (i = 0; i < n; i++) {
        const char *tok;
        size_t len;
        uint8_t *region;
        int split_rc;

        if (in_short(in))
            return SC_E_BATCH_SPLIT;
        s = pending < 0 ? 0 : 1 - pending;
        split_rc = take_token(in, i, pol->max_len, &tok, &len, &slot[s].v.parts);
        region = work + (size_t)s * half;
        rc = verify_head(ks, tok, len, now, region, half, &slot[s].v, split_rc);
        if (rc != SA_OK) {
            put_token(&b, i, region, rc);
            continue;
        }
        slot[s].tok = tok;
        slot[s].t = i;
        if (pending < 0) {
            pending = s;
            continue;
        }
        /* 3-6. both MACs at once, behind both tokens' claims */
        {
            const held *hp[2];
            uint8_t *rp[2];
            hp[0] = &slot[pending];
            hp[1] = &slot[s];
            rp[0] = work + (size_t)pending * half;
            rp[1] = region;
            verify_held(&b, pol, now, hp, rp, 2);
        }
        pending = -1;
    }
    if (in_left_over(in, n))
        return SC_E_BATCH_SPLIT;
    if (pending >= 0) {   /* an odd one out: MAC alone, behind its claims */
        const held *hp[1];
        uint8_t *rp[1];
        hp[0] = &slot[pending];
        rp[0] = work + (size_t)pending * half;
        verify_held(&b, pol, now, hp, rp, 1);
    }
    return SA_OK;
}

int sc_verify_many(const sc_keyset *ks, const sc_policy *pol, const char *packed,
                   size_t packed_len, size_t n, int64_t now, uint8_t *work, size_t work_cap,
                   uint8_t *out, size_t out_cap)
{
    batch_in in;

    if (!ks || !pol || (!packed && packed_len) || (n && (!work || !out)))
        return SA_E_ARG;
    if (!n && packed_len)
        return SC_E_BATCH_SPLIT;
    in.packed = packed;
    in.packed_len = packed_len;
    in.at = 0;
    in.toks = NULL;
    in.lens = NULL;
    return verify_batch(ks, pol, &in, n, packed_len, now, work, work_cap, out, out_cap);
}

int sc_verify_list(const sc_keyset *ks, const sc_policy *pol, const char *const *toks,
                   const size_t *lens, size_t n, int64_t now, uint8_t *work, size_t work_cap,
                   uint8_t *out, size_t out_cap)
{
    batch_in in;
    size_t i, total = 0;

    if (!ks || !pol || (n && (!toks || !lens || !work || !out)))
        return SA_E_ARG;
    for (i = 0; i < n; i++) {
        if ((!toks[i] && lens[i]) || lens[i] > SIZE_MAX - total)
            return SA_E_ARG;
        total += lens[i];
    }
    in.packed = NULL;
    in.packed_len = 0;
    in.at = 0;
    in.toks = toks;
    in.lens = lens;
    return verify_batch(ks, pol, &in, n, total, now, work, work_cap, out, out_cap);
}
