/* Base64 (RFC 4648): base64url without padding as JWS uses it (section 5),
 * and standard base64 with padding as Slurm uses it for the credential
 * payload. Decoders are strict: any character outside the alphabet, a length
 * that cannot occur, misplaced padding or non-zero trailing bits is refused,
 * so every byte string has exactly one accepted encoding. */
#ifndef SA_BASE64_H
#define SA_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
/* Encoded lengths (no NUL is written or counted). */
size_t sa_b64url_encoded_len(size_t n);
size_t sa_b64_encoded_len(size_t n);
/* Upper bound of the decoded length of n characters. */
size_t sa_b64_decoded_max(size_t n);

int sa_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *outlen);
int sa_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);
int sa_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *outlen);
int sa_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* Decoder implementation: 64 characters at a time with AVX-512 VBMI, else 32
 * at a time with AVX2, when the CPU has it (chosen by CPUID on first use), 64
 * at a time with NEON on aarch64 (always there), else the portable table loop.
 * All give the same bytes and the same status for every input; tests compare
 * them. */
#define SA_B64_AUTO 0
#define SA_B64_PORTABLE 1
#define SA_B64_AVX2 2
#define SA_B64_NEON 3
#define SA_B64_AVX512VBMI 4
/* Select an implementation for the whole process (meant for tests and
 * benchmarks; call it before other threads decode). Returns the one now
 * active, or -1 when the requested one is not available on this CPU (the
 * active one is then unchanged). */
int sa_b64_select(int impl);
/* cffi:end */

/* The value of the 4 hex digits at p (either case), as in a JSON \uXXXX
 * escape, or -1 when one is not a hex digit. */
long sa_hex4(const uint8_t *p);

#endif
