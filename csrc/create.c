#include "create.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmac.h"
#include "jws.h"
#include "sa_status.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SA_HAVE_SSSE3_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SA_HAVE_SSSE3_CODE 0
#endif

/* One credential's claims, as the entry points receive them. */
typedef struct {
    int64_t iat, exp, ver, ruid, uid, gid;
    const uint8_t *context, *cluster, *host, *payload, *members;
    size_t context_len, cluster_len, host_len, payload_len, members_len;
} claims_in;

static const char B64STD[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char HEX[16] = "0123456789ABCDEF";

/* 1 for the bytes jansson escapes: '"', '\\' and the control characters. */
static const uint8_t ESC[256] = {
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
};

#if SA_HAVE_SSSE3_CODE
/* 12 bytes to 16 characters at a time while 16 bytes can be read (the
 * reshuffle/translate method of Wojciech Mula's SIMD base64 encoding);
 * returns the bytes consumed, a multiple of 3. Same characters as the
 * scalar loop. */
__attribute__((target("ssse3")))
static size_t b64_ssse3(char *o, const uint8_t *in, size_t n, int url)
{
    const __m128i lut = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                      '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                      (char)((url ? '-' : '+') - 62), (char)((url ? '_' : '/') - 63),
                                      'A', 0, 0);
    size_t i = 0;
    for (; i + 16 <= n; i += 12, o += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
        __m128i t0, t1, t2, t3, idx, r;
        v = _mm_shuffle_epi8(v, _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1));
        t0 = _mm_and_si128(v, _mm_set1_epi32(0x0FC0FC00));
        t1 = _mm_mulhi_epu16(t0, _mm_set1_epi32(0x04000040));
        t2 = _mm_and_si128(v, _mm_set1_epi32(0x003F03F0));
        t3 = _mm_mullo_epi16(t2, _mm_set1_epi32(0x01000010));
        idx = _mm_or_si128(t1, t3);                       /* sixteen 6-bit values */
        r = _mm_subs_epu8(idx, _mm_set1_epi8(51));
        r = _mm_or_si128(r, _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), idx),
                                          _mm_set1_epi8(13)));
        r = _mm_add_epi8(_mm_shuffle_epi8(lut, r), idx);
        _mm_storeu_si128((__m128i *)(void *)o, r);
    }
    return i;
}

static int g_ssse3 = -1;   /* -1: not asked yet */

static int have_ssse3(void)
{
    if (g_ssse3 < 0) {
        unsigned int a, b, c, d;
        g_ssse3 = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)) ? 1 : 0;
    }
    return g_ssse3;
}
#endif

/* base64 of n bytes into o (padded standard alphabet, or base64url without
 * padding); returns the end. */
static char *b64(char *o, const uint8_t *in, size_t n, const char *alpha, int pad)
{
    size_t i = 0;
#if SA_HAVE_SSSE3_CODE
    if (n >= 16 && have_ssse3()) {
        i = b64_ssse3(o, in, n, alpha == B64URL);
        o += i / 3 * 4;
    }
#endif
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        o[0] = alpha[v >> 18];
        o[1] = alpha[(v >> 12) & 63];
        o[2] = alpha[(v >> 6) & 63];
        o[3] = alpha[v & 63];
        o += 4;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = alpha[v >> 18];
        *o++ = alpha[(v >> 12) & 63];
        if (pad) {
            *o++ = '=';
            *o++ = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        *o++ = alpha[v >> 18];
        *o++ = alpha[(v >> 12) & 63];
        *o++ = alpha[(v >> 6) & 63];
        if (pad)
            *o++ = '=';
    }
    return o;
}

static size_t b64url_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80),
 * or 0 when it is not one (jansson refuses such strings): overlong forms,
 * surrogates and code points above U+10FFFF included. */
static size_t utf8_seq(const uint8_t *s, size_t left)
{
    uint32_t c = s[0], cp;
    size_t n, i;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

/* A JSON string as jansson's dump_string() writes it without flags. o has
 * room for 6 * n + 2 bytes. Returns the end, or NULL for a NUL byte or
 * invalid UTF-8 (jansson takes C strings and refuses invalid UTF-8). */
static char *put_str(char *o, const uint8_t *s, size_t n)
{
    size_t i = 0;
    *o++ = '"';
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (!ESC[c]) {
                *o++ = (char)c;
                i++;
                continue;
            }
            if (c == 0)
                return NULL;
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                o[0] = 'u';
                o[1] = '0';
                o[2] = '0';
                o[3] = HEX[c >> 4];
                o[4] = HEX[c & 15];
                o += 5;
            }
            i++;
        } else {
            size_t k = utf8_seq(s + i, n - i);
            if (!k)
                return NULL;
            memcpy(o, s + i, k);
            o += k;
            i += k;
        }
    }
    *o++ = '"';
    return o;
}

static const char DIGITS2[201] =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
    "5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/* A JSON integer as jansson writes a json_int_t ("%" PRId64): the digits
 * counted first, then written from the last, two at a time. */
static char *put_int(char *o, int64_t v)
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, t = u;
    size_t nd = 1;
    char *p;
    if (v < 0)
        *o++ = '-';
    while (t >= 10) {
        t /= 10;
        nd++;
    }
    p = o + nd;
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        p -= 2;
        p[0] = DIGITS2[2 * r];
        p[1] = DIGITS2[2 * r + 1];
    }
    if (u >= 10) {
        p[-2] = DIGITS2[2 * u];
        p[-1] = DIGITS2[2 * u + 1];
    } else {
        p[-1] = (char)('0' + u);
    }
    return o + nd;
}

/* The claims a credential writes from arguments, in byte order of the names. */
enum { F_CLUSTER, F_CONTEXT, F_EXP, F_GID, F_HOST, F_IAT, F_PAYLOAD, F_RUID, F_UID, F_VER, F_N };
static const char *const FNAME[F_N] = {"cluster", "context", "exp", "gid", "host",
                                       "iat", "payload", "ruid", "uid", "ver"};
static const uint8_t FLEN[F_N] = {7, 7, 3, 3, 4, 3, 7, 4, 3, 3};
/* '"' NAME '"' ':' of each (FLEN + 3 bytes), in 16 bytes: copied whole, the
 * bytes past the key are overwritten by what follows (claims_max leaves room) */
static const char FKEY[F_N][16] = {"\"cluster\":", "\"context\":", "\"exp\":", "\"gid\":",
                                   "\"host\":", "\"iat\":", "\"payload\":", "\"ruid\":",
                                   "\"uid\":", "\"ver\":"};

/* strcmp order of two names without NUL (what jansson's JSON_SORT_KEYS uses). */
static int name_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static char *put_fixed(char *o, const claims_in *c, int f)
{
    memcpy(o, FKEY[f], 16);
    o += FLEN[f] + 3;
    switch (f) {
    case F_CLUSTER: return put_str(o, c->cluster, c->cluster_len);
    case F_CONTEXT: return put_str(o, c->context, c->context_len);
    case F_HOST: return put_str(o, c->host, c->host_len);
    case F_EXP: return put_int(o, c->exp);
    case F_GID: return put_int(o, c->gid);
    case F_IAT: return put_int(o, c->iat);
    case F_RUID: return put_int(o, c->ruid);
    case F_UID: return put_int(o, c->uid);
    case F_VER: return put_int(o, c->ver);
    default:
        *o++ = '"';
        o = b64(o, c->payload, c->payload_len, B64STD, 1);
        *o++ = '"';
        return o;
    }
}

#define LEN_LIMIT (((size_t)-1) / 64)

/* An upper bound of the claims JSON length (0: a length is absurd). */
static size_t claims_max(const claims_in *c)
{
    if (c->context_len > LEN_LIMIT || c->cluster_len > LEN_LIMIT || c->host_len > LEN_LIMIT ||
        c->payload_len > LEN_LIMIT || c->members_len > LEN_LIMIT)
        return 0;
    /* names, punctuation and six integers of at most 20 characters: < 256;
     * a string byte takes at most 6; a member record of r >= 2 bytes at most
     * 8 r (its name escaped, quotes, ':' and ','). */
    return 256 + 6 * (c->context_len + c->cluster_len + c->host_len) +
           4 * (c->payload_len / 3 + 1) + 8 * c->members_len;
}

/* Write the claims object into o (room for claims_max bytes); NULL on bad input. */
static char *put_claims(char *o, const claims_in *c)
{
    const uint8_t *m = c->members, *mend = c->members + c->members_len;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    int f = 0, first = 1, prev_member = 0;
    uint32_t present = (1u << F_CONTEXT) | (1u << F_EXP) | (1u << F_GID) | (1u << F_IAT) |
                       (1u << F_RUID) | (1u << F_UID) | (1u << F_VER);

    if (!c->context || (!c->payload && c->payload_len) || (!m && c->members_len))
        return NULL;
    if (c->cluster)
        present |= 1u << F_CLUSTER;
    if (c->host)
        present |= 1u << F_HOST;
    if (c->payload_len)
        present |= 1u << F_PAYLOAD;
    *o++ = '{';
    for (;;) {
        const uint8_t *name, *json = NULL;
        size_t nlen, jlen = 0;
        int take_member;
        while (f < F_N && !(present & (1u << f)))
            f++;
        if (m && m < mend) {
            const uint8_t *z = memchr(m, 0, (size_t)(mend - m));
            const uint8_t *z2;
            if (!z)
                return NULL;
            z2 = memchr(z + 1, 0, (size_t)(mend - z - 1));
            if (!z2)
                return NULL;
            name = m;
            nlen = (size_t)(z - m);
            json = z + 1;
            jlen = (size_t)(z2 - json);
            take_member = f >= F_N ||
                          name_cmp(name, nlen, (const uint8_t *)FNAME[f], FLEN[f]) < 0;
            if (!take_member) {
                name = (const uint8_t *)FNAME[f];
                nlen = FLEN[f];
            }
        } else if (f < F_N) {
            take_member = 0;
            name = (const uint8_t *)FNAME[f];
            nlen = FLEN[f];
        } else {
            break;
        }
        /* strictly ascending overall: catches members out of order and a
         * member named like a claim written from the arguments (the claims
         * from the arguments are in order among themselves) */
        if (prev && (take_member || prev_member) && name_cmp(prev, prev_len, name, nlen) >= 0)
            return NULL;
        prev = name;
        prev_len = nlen;
        prev_member = take_member;
        if (!first)
            *o++ = ',';
        first = 0;
        if (take_member) {
            o = put_str(o, name, nlen);
            if (!o)
                return NULL;
            *o++ = ':';
            memcpy(o, json, jlen);
            o += jlen;
            m = json + jlen + 1;
        } else {
            o = put_fixed(o, c, f);
            if (!o)
                return NULL;
            f++;
        }
    }
    *o++ = '}';
    return o;
}

/* The signing input of one token (header "." claims) into out[0..cap);
 * *outlen: the whole token's length (with "." and the tag to come), or the
 * length needed; *signing: the signing input's length. */
static int write_unsigned(const sc_key *key, const claims_in *c, char *out, size_t cap,
                          size_t *outlen, size_t *signing)
{
    char stack[SA_CREATE_STACK];
    char *json = stack, *end;
    size_t max = claims_max(c), jlen, need, o;
    int rc = SA_OK;

    if (!max)
        return SA_E_ARG;
    if (max > sizeof(stack)) {
        json = malloc(max);
        if (!json)
            return SA_E_BUFFER;
    }
    end = put_claims(json, c);
    if (!end) {
        rc = SA_E_ARG;
        goto done;
    }
    jlen = (size_t)(end - json);
    need = key->hdr_len + 1 + b64url_len(jlen) + 1 + SA_JWS_SIG_B64_LEN;
    *outlen = need;
    if (need > cap) {
        rc = SA_E_BUFFER;
        goto done;
    }
    memcpy(out, key->hdr, key->hdr_len);
    o = key->hdr_len;
    out[o++] = '.';
    o = (size_t)(b64(out + o, (const uint8_t *)json, jlen, B64URL, 0) - out);
    *signing = o;
done:
    if (json != stack)
        free(json);
    return rc;
}

/* "." and the base64url tag after a signing input of n bytes; wipes tag. */
static void put_tag(char *out, size_t n, uint8_t tag[32])
{
    out[n] = '.';
    b64(out + n + 1, tag, 32, B64URL, 0);
    sa_wipe(tag, 32);
}

/* One token into out[0..cap); *outlen: its length, or the length needed. */
static int create_one(const sc_key *key, const claims_in *c, char *out, size_t cap,
                      size_t *outlen)
{
    uint8_t tag[32];
    size_t n = 0;
    int rc = write_unsigned(key, c, out, cap, outlen, &n);
    if (rc != SA_OK)
        return rc;
    sa_hmac_sha256(key->key, (const uint8_t *)out, n, tag);
    put_tag(out, n, tag);
    return SA_OK;
}

/* iat (or the clock), exp = iat + ttl and the integer ranges; 0 when one is out of range. */
static int set_times(claims_in *c, int64_t iat, int64_t clock, int64_t ttl)
{
    if (clock)
        iat = (int64_t)time(NULL);
    if (ttl <= 0 || iat > INT64_MAX - ttl)
        return 0;
    if (c->uid < 0 || c->uid > 0xFFFFFFFFLL || c->gid < 0 || c->gid > 0xFFFFFFFFLL ||
        c->ruid < 0 || c->ruid > 0xFFFFFFFFLL || c->ver < 0 || c->ver > 0xFFFF)
        return 0;
    c->iat = iat;
    c->exp = iat + ttl;
    return 1;
}

static const sc_key *signing_key(const sc_keyset *ks)
{
    const sc_key *k;
    if (!ks || !ks->keys || ks->default_index >= ks->nkeys)
        return NULL;
    k = &ks->keys[ks->default_index];
    if (!k->key || !k->key->ready || !k->hdr || !k->hdr_len)
        return NULL;
    return k;
}

int64_t sa_create_credential(const void *keyset, int64_t iat, int clock, int64_t ttl,
                             int64_t ver, int64_t ruid, int64_t uid, int64_t gid,
                             const char *context, size_t context_len,
                             const char *cluster, size_t cluster_len,
                             const char *host, size_t host_len,
                             const char *payload, size_t payload_len,
                             const char *members, size_t members_len,
                             char *out, size_t cap)
{
    const sc_key *key = signing_key((const sc_keyset *)keyset);
    claims_in c;
    size_t len = 0;
    int rc;
    if (!key || (!out && cap))
        return -SA_E_ARG;
    c.ver = ver;
    c.ruid = ruid;
    c.uid = uid;
    c.gid = gid;
    if (!set_times(&c, iat, clock, ttl))
        return -SA_E_ARG;
    c.context = (const uint8_t *)context;
    c.context_len = context_len;
    c.cluster = (const uint8_t *)cluster;
    c.cluster_len = cluster ? cluster_len : 0;
    c.host = (const uint8_t *)host;
    c.host_len = host ? host_len : 0;
    c.payload = (const uint8_t *)payload;
    c.payload_len = payload_len;
    c.members = (const uint8_t *)members;
    c.members_len = members ? members_len : 0;
    rc = create_one(key, &c, out, cap, &len);
    if (rc == SA_OK || (rc == SA_E_BUFFER && len > cap))
        return (int64_t)len;
    return -(int64_t)rc;
}

/* A string of an item: offset -1 is NULL; otherwise inside strings. */
static int item_str(const char *strings, size_t slen, int64_t off, int64_t len,
                    const uint8_t **p, size_t *n)
{
    if (off == -1) {
        *p = NULL;
        *n = 0;
        return 1;
    }
    if (off < 0 || len < 0 || (uint64_t)off > slen || (uint64_t)len > slen - (uint64_t)off)
        return 0;
    *p = (const uint8_t *)strings + off;
    *n = (size_t)len;
    return 1;
}

/* A batch's item i written unsigned into out[0..cap) (header, '.', claims):
 * *len the signed token's length, *sig the signing input's; SA_E_BUFFER with
 * *len set when cap < *len, another status for an item refused. */
typedef int (*item_writer)(void *ctx, const sc_key *key, size_t i, char *out, size_t cap,
                           size_t *len, size_t *sig);

/* The batch calls' common part: the n items written back to back (ends[i]
 * the end of token i), their tags two at a time (the 2-way HMAC, two SHA-NI
 * streams). Out of room, the remaining items are only measured: SA_E_BUFFER
 * with *need the bytes the whole batch needs. An item refused: its status,
 * *failed the item, *need 0. */
static int create_batch(const sc_key *key, size_t n, item_writer write, void *ctx,
                        char *out, size_t cap, size_t *ends, size_t *need, size_t *failed)
{
    size_t i, o = 0, len, total = 0, sig = 0;
    size_t held_at = 0, held_sig = 0;   /* a token waiting for its tag */
    int rc, short_of_room = 0, held = 0;

    for (i = 0; i < n; i++) {
        *failed = i;
        len = 0;
        rc = write(ctx, key, i, short_of_room ? NULL : out + o, short_of_room ? 0 : cap - o,
                   &len, &sig);
        if (rc == SA_E_BUFFER && len) {   /* from here on only the lengths are wanted */
            short_of_room = 1;
            total += len;
            continue;
        }
        if (rc != SA_OK || short_of_room) {
            *need = 0;   /* not a matter of room (a value, or no memory for long claims) */
            return rc == SA_OK ? SA_E_BUFFER : rc;
        }
        if (held) {
            uint8_t ta[32], tb[32];
            sa_hmac_sha256_x2(key->key, (const uint8_t *)out + held_at, held_sig, ta,
                              key->key, (const uint8_t *)out + o, sig, tb);
            put_tag(out + held_at, held_sig, ta);
            put_tag(out + o, sig, tb);
            held = 0;
        } else {
            held = 1;
            held_at = o;
            held_sig = sig;
        }
        total += len;
        o += len;
        ends[i] = o;
    }
    if (held) {
        uint8_t t[32];
        sa_hmac_sha256(key->key, (const uint8_t *)out + held_at, held_sig, t);
        put_tag(out + held_at, held_sig, t);
    }
    *need = total;
    return short_of_room ? SA_E_BUFFER : SA_OK;
}

typedef struct {
    const sa_create_item *items;
    const char *strings;
    size_t strings_len;
} many_in;

static int many_item(void *ctx, const sc_key *key, size_t i, char *out, size_t cap,
                     size_t *len, size_t *sig)
{
    const many_in *m = ctx;
    const sa_create_item *it = &m->items[i];
    claims_in c;

    c.ver = it->ver;
    c.ruid = it->ruid;
    c.uid = it->uid;
    c.gid = it->gid;
    if (!set_times(&c, it->iat, it->clock, it->ttl))
        return SA_E_ARG;
    if (!item_str(m->strings, m->strings_len, it->context_off, it->context_len, &c.context,
                  &c.context_len) ||
        !item_str(m->strings, m->strings_len, it->cluster_off, it->cluster_len, &c.cluster,
                  &c.cluster_len) ||
        !item_str(m->strings, m->strings_len, it->host_off, it->host_len, &c.host, &c.host_len) ||
        !item_str(m->strings, m->strings_len, it->payload_off, it->payload_len, &c.payload,
                  &c.payload_len) ||
        !item_str(m->strings, m->strings_len, it->members_off, it->members_len, &c.members,
                  &c.members_len))
        return SA_E_ARG;
    return write_unsigned(key, &c, out, cap, len, sig);
}

int sa_create_many(const void *keyset, const sa_create_item *items, size_t n,
                   const char *strings, size_t strings_len,
                   char *out, size_t cap, size_t *ends, size_t *need, size_t *failed)
{
    const sc_key *key = signing_key((const sc_keyset *)keyset);
    many_in m;

    if (!key || (!items && n) || !ends || !need || !failed || (!out && cap) ||
        (!strings && strings_len))
        return SA_E_ARG;
    m.items = items;
    m.strings = strings;
    m.strings_len = strings_len;
    return create_batch(key, n, many_item, &m, out, cap, ends, need, failed);
}

int sa_create_claims(int64_t iat, int64_t exp, int64_t ver, int64_t ruid, int64_t uid,
                     int64_t gid, const char *context, size_t context_len,
                     const char *cluster, size_t cluster_len, const char *host,
                     size_t host_len, const char *payload, size_t payload_len,
                     const char *members, size_t members_len,
                     char *out, size_t cap, size_t *outlen)
{
    claims_in c;
    char *buf, *end;
    size_t max;
    int rc = SA_OK;
    if (!outlen || (!out && cap))
        return SA_E_ARG;
    c.iat = iat;
    c.exp = exp;
    c.ver = ver;
    c.ruid = ruid;
    c.uid = uid;
    c.gid = gid;
    c.context = (const uint8_t *)context;
    c.context_len = context_len;
    c.cluster = (const uint8_t *)cluster;
    c.cluster_len = cluster ? cluster_len : 0;
    c.host = (const uint8_t *)host;
    c.host_len = host ? host_len : 0;
    c.payload = (const uint8_t *)payload;
    c.payload_len = payload_len;
    c.members = (const uint8_t *)members;
    c.members_len = members ? members_len : 0;
    max = claims_max(&c);
    if (!max)
        return SA_E_ARG;
    buf = malloc(max);
    if (!buf)
        return SA_E_BUFFER;
    end = put_claims(buf, &c);
    if (!end) {
        rc = SA_E_ARG;
    } else {
        *outlen = (size_t)(end - buf);
        if (*outlen > cap)
            rc = SA_E_BUFFER;
        else
            memcpy(out, buf, *outlen);
    }
    free(buf);
    return rc;
}

/* ---- constant claims written once (sa_create_fixed) ---------------------- */

static char *put_lit(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

int sa_create_fixed_init(sa_create_fixed *t, int64_t ttl, int64_t ver, int64_t ruid,
                         const char *context, size_t context_len,
                         const char *cluster, size_t cluster_len,
                         const char *host, size_t host_len)
{
    char *buf, *o, *a_end, *c_end, *d_end;
    size_t max, total;
    int rc = SA_OK;

    if (!t)
        return SA_E_ARG;
    t->ready = 0;
    if (!context || !host || ttl <= 0 || ver < 0 || ver > 0xFFFF || ruid < 0 ||
        ruid > 0xFFFFFFFFLL || context_len > LEN_LIMIT || host_len > LEN_LIMIT ||
        (cluster && cluster_len > LEN_LIMIT))
        return SA_E_ARG;
    if (!cluster)
        cluster_len = 0;
    /* punctuation, names and two integers: < 128; a string byte at most 6 */
    max = 128 + 6 * (context_len + cluster_len + host_len);
    buf = malloc(max);
    if (!buf)
        return SA_E_BUFFER;
    o = put_lit(buf, "{", 1);
    if (cluster) {
        o = put_lit(o, "\"cluster\":", 10);
        o = put_str(o, (const uint8_t *)cluster, cluster_len);
        if (!o)
            goto refused;
        *o++ = ',';
    }
    o = put_lit(o, "\"context\":", 10);
    o = put_str(o, (const uint8_t *)context, context_len);
    if (!o)
        goto refused;
    o = put_lit(o, ",\"exp\":", 7);
    a_end = o;
    o = put_lit(o, ",\"host\":", 8);
    o = put_str(o, (const uint8_t *)host, host_len);
    if (!o)
        goto refused;
    o = put_lit(o, ",\"iat\":", 7);
    c_end = o;
    o = put_lit(o, ",\"ruid\":", 8);
    o = put_int(o, ruid);
    o = put_lit(o, ",\"uid\":", 7);
    d_end = o;
    o = put_lit(o, ",\"ver\":", 7);
    o = put_int(o, ver);
    *o++ = '}';
    total = (size_t)(o - buf);
    if (total > sizeof(t->text)) {
        rc = SA_E_BUFFER;
        goto done;
    }
    memcpy(t->text, buf, total);
    t->ttl = ttl;
    t->a_len = (size_t)(a_end - buf);
    t->c_off = t->a_len;
    t->c_len = (size_t)(c_end - a_end);
    t->d_off = t->c_off + t->c_len;
    t->d_len = (size_t)(d_end - c_end);
    t->e_off = t->d_off + t->d_len;
    t->e_len = (size_t)(o - d_end);
    t->ready = 1;
    goto done;
refused:
    rc = SA_E_ARG;
done:
    free(buf);
    return rc;
}

/* The claims of t with the values of one call, in byte order of the names
 * (as put_claims writes them); o has room for fixed_claims_max bytes. */
static char *put_fixed_claims(char *o, const sa_create_fixed *t, int64_t iat, int64_t uid,
                              int64_t gid, const uint8_t *payload, size_t payload_len)
{
    o = put_lit(o, t->text, t->a_len);
    o = put_int(o, iat + t->ttl);
    o = put_lit(o, ",\"gid\":", 7);
    o = put_int(o, gid);
    o = put_lit(o, t->text + t->c_off, t->c_len);
    o = put_int(o, iat);
    if (payload_len) {
        o = put_lit(o, ",\"payload\":\"", 12);
        o = b64(o, payload, payload_len, B64STD, 1);
        *o++ = '"';
    }
    o = put_lit(o, t->text + t->d_off, t->d_len);
    o = put_int(o, uid);
    return put_lit(o, t->text + t->e_off, t->e_len);
}

static size_t fixed_claims_max(const sa_create_fixed *t, size_t payload_len)
{
    /* four integers of at most 20 characters, ",\"gid\":", the payload
     * member's name, quotes and padded base64 */
    return t->a_len + t->c_len + t->d_len + t->e_len + 4 * 20 + 7 + 13 + 4 * (payload_len / 3 + 1);
}

/* The unsigned token of t's claims with these values (header, '.', claims)
 * into out[0..cap): *len the signed token's length, *sig the signing
 * input's. SA_E_BUFFER with *len set (nothing written) when cap < *len;
 * SA_E_ARG for a value out of range. */
static int fixed_unsigned(const sc_key *key, const sa_create_fixed *t, int64_t iat, int64_t uid,
                          int64_t gid, const char *payload, size_t payload_len,
                          char *out, size_t cap, size_t *len, size_t *sig)
{
    char stack[SA_CREATE_STACK];
    char *json = stack, *end;
    size_t max;

    *len = 0;
    if (!t || !t->ready || (!payload && payload_len) || payload_len > LEN_LIMIT || uid < 0 ||
        uid > 0xFFFFFFFFLL || gid < 0 || gid > 0xFFFFFFFFLL || iat > INT64_MAX - t->ttl)
        return SA_E_ARG;
    max = fixed_claims_max(t, payload_len);
    if (max > sizeof(stack)) {
        json = malloc(max);
        if (!json)
            return SA_E_BUFFER;
    }
    end = put_fixed_claims(json, t, iat, uid, gid, (const uint8_t *)payload, payload_len);
    *len = key->hdr_len + 1 + b64url_len((size_t)(end - json)) + 1 + SA_JWS_SIG_B64_LEN;
    if (*len <= cap) {
        memcpy(out, key->hdr, key->hdr_len);
        *sig = key->hdr_len;
        out[(*sig)++] = '.';
        *sig = (size_t)(b64(out + *sig, (const uint8_t *)json, (size_t)(end - json), B64URL, 0) - out);
    }
    if (json != stack)
        free(json);
    return *len <= cap ? SA_OK : SA_E_BUFFER;
}

static int64_t create_fixed(const void *keyset, const sa_create_fixed *t, int64_t iat,
                            int64_t uid, int64_t gid, const char *payload, size_t payload_len,
                            char *out, size_t cap)
{
    const sc_key *key = signing_key((const sc_keyset *)keyset);
    size_t len, sig = 0;
    uint8_t tag[32];
    int rc;

    if (!key || (!out && cap))
        return -SA_E_ARG;
    rc = fixed_unsigned(key, t, iat, uid, gid, payload, payload_len, out, cap, &len, &sig);
    if (rc == SA_OK) {
        sa_hmac_sha256(key->key, (const uint8_t *)out, sig, tag);
        put_tag(out, sig, tag);
    } else if (rc != SA_E_BUFFER || !len) {
        return -rc;
    }
    return (int64_t)len;
}

int64_t sa_create_fixed_now(const void *keyset, const sa_create_fixed *t, int64_t uid,
                            int64_t gid, const char *payload, size_t payload_len,
                            char *out, size_t cap)
{
    return create_fixed(keyset, t, (int64_t)time(NULL), uid, gid, payload, payload_len, out, cap);
}

int64_t sa_create_fixed_at(const void *keyset, const sa_create_fixed *t, int64_t iat,
                           int64_t uid, int64_t gid, const char *payload, size_t payload_len,
                           char *out, size_t cap)
{
    return create_fixed(keyset, t, iat, uid, gid, payload, payload_len, out, cap);
}

typedef struct {
    const sa_create_fixed *t;
    const sa_create_fixed_item *items;
    const char *payloads;
    size_t payloads_len;
    int64_t clock_now;        /* the clock, read once for the call, when an item asks */
    int clock_read;
} fixed_many_in;

static int fixed_many_item(void *ctx, const sc_key *key, size_t i, char *out, size_t cap,
                           size_t *len, size_t *sig)
{
    fixed_many_in *m = ctx;
    const sa_create_fixed_item *it = &m->items[i];
    const uint8_t *pl = NULL;
    size_t pl_len = 0;
    int64_t iat = it->iat;

    if (it->clock) {
        if (!m->clock_read) {
            m->clock_now = (int64_t)time(NULL);
            m->clock_read = 1;
        }
        iat = m->clock_now;
    }
    if (it->payload_len && (it->payload_off < 0 ||   /* item_str would take -1 as none */
                            !item_str(m->payloads, m->payloads_len, it->payload_off,
                                      it->payload_len, &pl, &pl_len)))
        return SA_E_ARG;
    return fixed_unsigned(key, m->t, iat, it->uid, it->gid, (const char *)pl, pl_len, out, cap,
                          len, sig);
}

int sa_create_fixed_many(const void *keyset, const sa_create_fixed *t,
                         const sa_create_fixed_item *items, size_t n,
                         const char *payloads, size_t payloads_len,
                         char *out, size_t cap, size_t *ends, size_t *need, size_t *failed)
{
    const sc_key *key = signing_key((const sc_keyset *)keyset);
    fixed_many_in m;

    if (!key || !t || !t->ready || (!items && n) || !ends || !need || !failed ||
        (!out && cap) || (!payloads && payloads_len))
        return SA_E_ARG;
    m.t = t;
    m.items = items;
    m.payloads = payloads;
    m.payloads_len = payloads_len;
    m.clock_now = 0;
    m.clock_read = 0;
    return create_batch(key, n, fixed_many_item, &m, out, cap, ends, need, failed);
}
