/* SHA3-256 (FIPS 202): the 24-round Keccak sponge, rate 136, suffix 0x06. */
#ifndef SA_SHA3_H
#define SA_SHA3_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
/* out = SHA3-256(a[0..alen) || b[0..blen)); two parts so a body and its
 * trailing message type hash without a copy. Either part may be empty. */
void sa_sha3_256(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t out[32]);
/* cffi:end */

#endif
