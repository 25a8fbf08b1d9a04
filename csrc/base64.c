#include "base64.h"

#include "sa_status.h"

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

/* Decode n characters that contain no padding. */
static int decode(const uint8_t *rev, const char *in, size_t n,
                  uint8_t *out, size_t cap, size_t *outlen)
{
    size_t rem = n % 4, full = n - rem, i, o = 0;
    size_t need = (full / 4) * 3 + (rem ? rem - 1 : 0);
    const unsigned char *s = (const unsigned char *)in;

    if (rem == 1)
        return SA_E_BASE64;
    if (need > cap)
        return SA_E_BUFFER;
    for (i = 0; i < full; i += 4) {
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
