/* The serving core's frame reader: the incremental header and auth-section
 * parse, early verification of auth/slurm credentials, the body and its hash.
 * Internal to the core (see serve_int.h): no cffi declarations. */
#ifndef SA_SERVE_FRAME_H
#define SA_SERVE_FRAME_H

#include "serve_int.h"

void sv_conn_read(sa_serve *s, int32_t i);

#endif
