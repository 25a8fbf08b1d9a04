/* (Named to sort after rpc.h and slurmcred.h: the cffi cdef concatenates the
 * headers in name order and this one uses their types.)
 *
 * One call for what a controller does with every auth/slurm RPC: parse the
 * frame (sa_rpc_parse), verify its credential with Slurm's rules (sc_verify)
 * and check that the credential's payload binds this body and msg_type
 * (sa_body_hash_check). It only chains those three, so it accepts exactly
 * what they accept in that order; Python (rpc.verify_rpc) uses it as the
 * fast path and, when it returns non-zero, redoes the steps one by one to
 * raise the precise error. No allocation; no status codes of its own.
 */
#ifndef SA_VERIFY_FRAME_H
#define SA_VERIFY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "slurmcred.h"

/* cffi:begin */
/* Parse data[0..len) into *f, verify the auth/slurm token it carries into
 * scratch (an sc_result first, as sc_verify), then check the body hash with
 * bh_flags (SA_BH_*). Returns SA_OK only when all of it passed; otherwise the
 * first failing status (SA_E_ARG when the frame has no auth/slurm token). */
int sa_verify_frame_slurm(const uint8_t *data, size_t len, const sa_rpc_opts *o, sa_rpc_frame *f,
                        const sc_keyset *ks, const sc_policy *pol, int64_t now,
                        unsigned bh_flags, uint8_t *scratch, size_t cap);
/* cffi:end */

#endif
