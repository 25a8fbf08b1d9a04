/*
 * Status codes returned by every slurmauth_fast C entry point.
 * 0 is success; every failure has its own code so the Python layer can raise
 * a specific exception (slurmauth_fast/errors.py maps them one to one).
 * Ranges: 1-19 foundation (base64, JWS), 20-59 credentials/claims,
 * 60-99 wire (pack, RPC, body hash), 100-119 reserved.
 */
#ifndef SA_STATUS_H
#define SA_STATUS_H

/* The C core reads and writes multi-byte values assuming a little-endian
 * host (x86-64, aarch64); refuse to build anything else rather than build
 * something that computes wrong digests. */
#if !defined(__BYTE_ORDER__) || !defined(__ORDER_LITTLE_ENDIAN__)
#error "slurmauth_fast: cannot tell the byte order (__BYTE_ORDER__ undefined): use gcc or clang"
#elif __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "slurmauth_fast: unsupported platform: big-endian host (the C core supports little-endian only)"
#endif

/* cffi:begin */
#define SA_OK                 0
#define SA_E_TOO_LARGE        1   /* input longer than the limit; rejected before any work */
#define SA_E_SEGMENTS         2   /* compact JWS must be exactly three '.'-separated segments */
#define SA_E_EMPTY_SEGMENT    3   /* header or payload segment is empty */
#define SA_E_BASE64           4   /* character outside the alphabet, bad length or padding */
#define SA_E_BASE64_NONCANON  5   /* non-zero trailing bits (non-canonical encoding) */
#define SA_E_SIG_LENGTH       6   /* signature is not exactly 32 bytes (43 base64url chars) */
#define SA_E_BAD_SIGNATURE    7   /* HMAC tag mismatch */
#define SA_E_BUFFER           8   /* caller's output buffer too small */
#define SA_E_ARG              9   /* NULL pointer or invalid argument */
#define SA_E_KEY_EMPTY       10   /* zero-length HMAC key */
#define SA_E_KEY_PUBLIC      11   /* an HMAC secret that is a public key or certificate (PEM, OpenSSH) */
/* cffi:end */

#endif
