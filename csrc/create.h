/* auth/slurm credential creation in one call: the claims object written
 * byte for byte as Slurm's create_internal() gets it from libjwt 1.x and
 * jansson (JSON_COMPACT | JSON_SORT_KEYS: no whitespace, keys in byte order,
 * integers bare, '"' '\\' \b \f \n \r \t escaped short, other control
 * characters as \u00XX with upper-case hex, everything else -- '/', DEL,
 * non-ASCII UTF-8 -- as is), the key's precomputed base64url header, the
 * HMAC from the keyed context, the signature. */
#ifndef SA_CREATE_H
#define SA_CREATE_H

#include <stddef.h>
#include <stdint.h>

#include "slurmcred.h"

/* cffi:begin */
/* Token length limit of the stack path: claims up to this size are written
 * on the stack; longer ones (identities with many groups) use the heap. */
#define SA_CREATE_STACK 2048

/* keyset is an sc_keyset * (slurmcred.h; void here because the cffi
 * declarations of create.h come before slurmcred.h's).
 *
 * Write one credential signed with the keyset's default key into out[0..cap):
 *   header segment: keys[default_index].hdr (base64url, precomputed per key)
 *   claims: {"cluster":..,"context":..,"exp":..,"gid":..,"host":..,"iat":..,
 *            "payload":..,"ruid":..,"uid":..,"ver":..} merged, in byte order
 *            of the names, with the extra members.
 * iat is the issue time, or with clock != 0 the current time (time(NULL),
 * what int(time.time()) gives); exp is iat + ttl. uid, gid and ruid must be
 * uint32 values, ver a uint16, ttl > 0 and iat + ttl must not overflow.
 * Strings (context, cluster, host) are UTF-8 without NUL; they are escaped
 * as jansson escapes them. cluster NULL: no "cluster" member (or it is one
 * of the extra members); host NULL: "host" is one of the extra members.
 * payload (payload_len > 0) is written as padded standard base64; 0: none.
 * members: extra members already serialised, members_len bytes holding
 * records "NAME\0JSON\0" in strictly ascending byte order of NAME (NAME raw
 * UTF-8, escaped here; JSON written as is); none of them may share a name
 * with a claim written from the arguments.
 * Returns the token length n: written when n <= cap; when n > cap nothing is
 * written and n is the room needed. Or -SA_E_ARG for an argument out of
 * range, a NUL or invalid UTF-8 in a string or name, members out of order
 * or malformed, a key set without a usable default key. Writes nothing past
 * out[cap). */
int64_t sa_create_credential(const void *keyset, int64_t iat, int clock, int64_t ttl,
                             int64_t ver, int64_t ruid, int64_t uid, int64_t gid,
                             const char *context, size_t context_len,
                             const char *cluster, size_t cluster_len,
                             const char *host, size_t host_len,
                             const char *payload, size_t payload_len,
                             const char *members, size_t members_len,
                             char *out, size_t cap);

/* n credentials in one call (kiosks, load tools): item i's fields as
 * sa_create_credential's arguments, its strings at offsets into strings
 * (an offset of -1: NULL). The tokens are written back to back into out;
 * ends[i] is the end of token i. Returns SA_OK; SA_E_BUFFER with *need the
 * bytes the whole batch needs; another status with *failed the item at
 * fault. Item i's token is byte for byte what sa_create_credential writes. */
typedef struct {
    int64_t iat, clock, ttl, ver, ruid, uid, gid;
    int64_t context_off, context_len;
    int64_t cluster_off, cluster_len;
    int64_t host_off, host_len;
    int64_t payload_off, payload_len;
    int64_t members_off, members_len;
} sa_create_item;

int sa_create_many(const void *keyset, const sa_create_item *items, size_t n,
                   const char *strings, size_t strings_len,
                   char *out, size_t cap, size_t *ends, size_t *need, size_t *failed);

/* The claims JSON alone (for tests): what sa_create_credential signs. */
int sa_create_claims(int64_t iat, int64_t exp, int64_t ver, int64_t ruid, int64_t uid,
                     int64_t gid, const char *context, size_t context_len,
                     const char *cluster, size_t cluster_len, const char *host,
                     size_t host_len, const char *payload, size_t payload_len,
                     const char *members, size_t members_len,
                     char *out, size_t cap, size_t *outlen);
/* The claims of one deployment that stay the same from call to call
 * (context, cluster, host, ruid, ver, ttl), written once as the JSON
 * between the claims that change (exp, gid, iat, payload, uid):
 *   text[0..a_len)               {"cluster":..,"context":..,"exp":
 *   text[c_off..c_off + c_len)   ,"host":..,"iat":
 *   text[d_off..d_off + d_len)   ,"ruid":N,"uid":
 *   text[e_off..e_off + e_len)   ,"ver":N}
 * Filled by sa_create_fixed_init and only read afterwards, so threads may
 * share one. ready is 1 once it is filled. */
#define SA_CREATE_FIXED_TEXT 1024

typedef struct {
    int64_t ttl;
    int ready;
    size_t a_len, c_off, c_len, d_off, d_len, e_off, e_len;
    char text[SA_CREATE_FIXED_TEXT];
} sa_create_fixed;

/* Fill t from the constant claims (sa_create_credential's ranges and string
 * rules; host must be given, cluster NULL: no "cluster" claim). Returns
 * SA_OK; SA_E_ARG for what sa_create_credential refuses; SA_E_BUFFER when
 * the escaped strings do not fit in text (the caller creates such
 * credentials with sa_create_credential). */
int sa_create_fixed_init(sa_create_fixed *t, int64_t ttl, int64_t ver, int64_t ruid,
                         const char *context, size_t context_len,
                         const char *cluster, size_t cluster_len,
                         const char *host, size_t host_len);

/* One credential from a filled t: byte for byte what sa_create_credential
 * writes for t's constant claims, these uid, gid and payload (payload_len
 * 0: none), no extra members, and the issue time from the clock
 * (sa_create_fixed_now) or iat (sa_create_fixed_at). Returns as
 * sa_create_credential does. */
int64_t sa_create_fixed_now(const void *keyset, const sa_create_fixed *t, int64_t uid,
                            int64_t gid, const char *payload, size_t payload_len,
                            char *out, size_t cap);
int64_t sa_create_fixed_at(const void *keyset, const sa_create_fixed *t, int64_t iat,
                           int64_t uid, int64_t gid, const char *payload, size_t payload_len,
                           char *out, size_t cap);

/* n credentials from one filled t in one call: item i's iat (or, with
 * clock != 0, the clock's time, read once for the call), uid and gid, and its
 * payload at an offset into payloads (payload_len 0: none). The tokens are
 * written back to back into out, each byte for byte what sa_create_fixed_at
 * writes for it; ends[i] is the end of token i. Returns SA_OK; SA_E_BUFFER
 * with *need the bytes the whole batch needs; another status with *failed
 * the item at fault. */
typedef struct {
    int64_t iat, clock, uid, gid;
    int64_t payload_off, payload_len;
} sa_create_fixed_item;

int sa_create_fixed_many(const void *keyset, const sa_create_fixed *t,
                         const sa_create_fixed_item *items, size_t n,
                         const char *payloads, size_t payloads_len,
                         char *out, size_t cap, size_t *ends, size_t *need, size_t *failed);
/* cffi:end */

#endif
