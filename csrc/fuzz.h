/* One entry point for fuzzers (libFuzzer's LLVMFuzzerTestOneInput can call
 * it directly): it drives the whole receive path on untrusted bytes. */
#ifndef SA_FUZZ_H
#define SA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
/* data[0] selects options (bit0 length prefix, bit1 slurmdbd framing,
 * bits 2-3 body-hash policy flags); data[1..len) is the frame. Parses the
 * frame; for a credential-carrying auth section it splits the token, checks
 * its HS256 tag against a fixed key and decodes its claims segment; then it
 * checks the credential bytes as a body-hash payload against the body.
 * Returns the first failing status (SA_OK when everything passed), never
 * crashes, reads nothing outside data[0..len). */
int sa_fuzz_rpc_frame(const uint8_t *data, size_t len);
/* cffi:end */

#endif
