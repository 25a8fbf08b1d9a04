/* KangarooTwelve (RFC 9861 section 3): TurboSHAKE128 (12-round Keccak,
 * rate 168) over S = M || C || length_encode(|C|); inputs S longer than
 * 8192 bytes use the tree mode (8192-byte chunks, 32-byte chaining values). */
#ifndef SA_K12_H
#define SA_K12_H

#include <stddef.h>
#include <stdint.h>

#include "keccak.h"

typedef struct {
    sa_sponge final_node;   /* S_0, then the chaining values */
    sa_sponge leaf;         /* the chunk being absorbed, when leaf_open */
    uint64_t total;         /* bytes of S absorbed so far */
    uint64_t leaves;        /* chaining values already absorbed into final_node */
    int leaf_open;
} sa_k12_ctx;

void sa_k12_init(sa_k12_ctx *k);
/* Absorb more of M (any number of calls). */
void sa_k12_update(sa_k12_ctx *k, const uint8_t *in, size_t len);
/* Absorb C and its length encoding, then squeeze outlen bytes. */
void sa_k12_final(sa_k12_ctx *k, const uint8_t *custom, size_t clen, uint8_t *out, size_t outlen);
/* cffi:begin */
/* One shot: out = K12(M = msg, C = custom, L = outlen). */
void sa_k12(const uint8_t *msg, size_t mlen, const uint8_t *custom, size_t clen,
            uint8_t *out, size_t outlen);
/* cffi:end */

#endif
