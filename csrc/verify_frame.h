/* (Named to sort after jwtverify.h, rpc.h and slurmcred.h: the cffi cdef
 * concatenates the headers in name order and this one uses their types.)
 *
 * One call for what a controller does with every auth/slurm RPC: parse the
 * frame (sa_rpc_parse), verify its credential with Slurm's rules (sc_verify)
 * and check that the credential's payload binds this body and msg_type
 * (sa_body_hash_check). It chains those three, so it accepts exactly what
 * they accept in that order, and its verdict is complete: the status of the
 * first step that refused the frame, with the offset (parse) or the claim
 * (token) at fault, so the caller raises the precise error without redoing
 * any step. A frame without a usable auth/slurm token gets one of its own
 * three statuses (no auth section, a NULL token, another plugin's section):
 * a caller serving several plugins dispatches on the plugin in *f.
 * No allocation.
 */
#ifndef SA_VERIFY_FRAME_H
#define SA_VERIFY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "jwtverify.h"
#include "rpc.h"
#include "slurmcred.h"

/* cffi:begin */
/* Status codes 86-88 (wire range): the frame parsed, but carries no auth/slurm token. */
#define SA_E_FRAME_NO_AUTH    86  /* NO_AUTH_CRED: the frame has no auth section */
#define SA_E_FRAME_NULL_CRED  87  /* the auth/slurm section carries a NULL token */
#define SA_E_FRAME_PLUGIN     88  /* the auth section is another plugin's (f->auth_plugin) */

/* The step a verdict's status comes from. */
#define SA_STAGE_NONE      0      /* verified */
#define SA_STAGE_PARSE     1      /* sa_rpc_parse: offset is the field at fault */
#define SA_STAGE_AUTH      2      /* the auth section: SA_E_FRAME_* */
#define SA_STAGE_TOKEN     3      /* sc_verify: claim is the SC_CL_* at fault, or -1
                                   * (aj_verify for an auth/jwt frame: the AJ_CL_*) */
#define SA_STAGE_BODY_HASH 4      /* sa_body_hash_check */

typedef struct {
    int status;               /* SA_OK or the first failing status */
    int stage;                /* SA_STAGE_* */
    int64_t offset;           /* SA_STAGE_PARSE: offset of the field that failed (0: none) */
    int64_t claim;            /* SA_STAGE_TOKEN: the SC_CL_* at fault, else -1 */
} sa_frame_verdict;

/* Parse data[0..len) into *f, verify the auth/slurm token it carries into
 * scratch (an sc_result first, as sc_verify), then check the body hash with
 * bh_flags (SA_BH_*). Returns SA_OK only when all of it passed; otherwise the
 * first failing status, also written with its stage, offset and claim to *v
 * (which may be NULL). */
int sa_verify_frame_slurm(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f,
                          const sc_keyset *ks, const sc_policy *pol, int64_t now,
                          unsigned bh_flags, uint8_t *scratch, size_t cap, sa_frame_verdict *v);

/* The same for a controller serving auth/slurm and auth/jwt (either policy
 * may be NULL: that plugin is not served, and its frames get
 * SA_E_FRAME_PLUGIN like any other plugin's). An auth/jwt frame (plugin 102:
 * a token and a packed username) gets its token verified by aj_verify() into
 * scratch (16-byte aligned; an aj_result first), verdict SA_STAGE_TOKEN with
 * the AJ_CL_* at fault; it has no body hash. SA_OK for an RS256 token means
 * its header passed: the caller checks the signature (jwtverify.h). The
 * packed username (f->user_off, user_len) is the caller's to check.
 * now < 0 means the current time for both plugins. */
int sa_verify_frame(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f,
                    const sc_keyset *ks, const sc_policy *pol, const aj_policy *jpol, int64_t now,
                    unsigned bh_flags, uint8_t *scratch, size_t cap, sa_frame_verdict *v);
/* cffi:end */

#endif
