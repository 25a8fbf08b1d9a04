/* Message-body binding (Slurm's hash plugins): the sender puts
 * type_byte || digest into the credential's "payload"; the receiver
 * recomputes it over the body it received and the header's msg_type.
 *   1 NONE: 3 bytes, type byte then msg_type big-endian (no digest)
 *   2 K12:  KangarooTwelve(M = body, C = msg_type_be), 32 bytes
 *   4 SHA3: SHA3-256(body || msg_type_be), 32 bytes */
#ifndef SA_BODYHASH_H
#define SA_BODYHASH_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
#define SA_HASH_NONE 1
#define SA_HASH_K12  2
#define SA_HASH_SHA3 4
#define SA_BODYHASH_DIGEST_LEN 32
#define SA_BODYHASH_MAX_PAYLOAD 33   /* type byte + 32-byte digest */

/* Policy flags for sa_body_hash_check (Slurm's CommunicationParameters). */
#define SA_BH_BLOCK_NULL_HASH 1      /* refuse a credential with no payload */
#define SA_BH_BLOCK_ZERO_HASH 2      /* refuse the NONE form */
#define SA_BH_NO_SHA3         4      /* hash/sha3 is not loaded (Slurm's default HashPlugin,
                                        hash/k12): a SHA3 payload names no known hash */

/* Status codes 80-89 (wire range 60-99): body-hash binding. */
#define SA_E_HASH_MISSING     80   /* no payload and block_null_hash is set */
#define SA_E_HASH_NONE_BLOCKED 81  /* NONE payload and block_zero_hash is set */
#define SA_E_HASH_TYPE        82   /* type byte names no supported hash */
#define SA_E_HASH_LENGTH      83   /* payload length wrong for its type */
#define SA_E_HASH_MSG_TYPE    84   /* NONE payload names another msg_type */
#define SA_E_HASH_MISMATCH    85   /* digest differs: body or msg_type altered */

/* Write the payload for `body` and `msg_type` with hash `type` into out
 * (cap >= SA_BODYHASH_MAX_PAYLOAD is always enough). */
int sa_body_hash_payload(int type, const uint8_t *body, size_t blen, uint16_t msg_type,
                         uint8_t *out, size_t cap, size_t *outlen);

/* Check a received payload against the body and msg_type. payload == NULL
 * or plen == 0 means the credential carries no payload. flags: SA_BH_*. */
int sa_body_hash_check(const uint8_t *payload, size_t plen, const uint8_t *body, size_t blen,
                       uint16_t msg_type, unsigned flags);
/* cffi:end */

#endif
