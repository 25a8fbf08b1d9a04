/* The serving core's relay: a verified frame sent byte for byte to an
 * upstream server on a new connection, its reply back to the client, and the
 * upstream-time buckets; the configured upstream, whose address it sees, and the
 * auto-forward of verified frames after the rate limit.
 * Internal to the core (see serve_int.h): no cffi declarations. */
#ifndef SA_SERVE_UPSTREAM_H
#define SA_SERVE_UPSTREAM_H

#include "serve_int.h"

void sv_fwd_fail(sa_serve *s, int32_t i, int status, int err);
void sv_up_write(sa_serve *s, int32_t i, int try_read);
void sv_up_event(sa_serve *s, int32_t i, uint32_t ev);
/* Auto-forward (sa_serve_set_auto_forward) of the verified frame of connection i: 1 when
 * the core took it (forwarded, or answered over the rate limit), 0 to hand it up. */
int sv_auto_forward(sa_serve *s, int32_t i);

#endif
