/* The serving core's connections: time, intrusive lists and timers, per-IP
 * counts, pooled buffers, the connection table and writing replies.
 * Internal to the core (see serve_int.h): no cffi declarations. */
#ifndef SA_SERVE_CONN_H
#define SA_SERVE_CONN_H

#include "serve_int.h"

int64_t sv_mono_ns(void);
int64_t sv_mono_ms(void);
void sv_list_unlink(sa_serve *s, list_t *l, int set, int32_t i);
void sv_timer_set(sa_serve *s, int32_t i, int tl);
void sv_kick(sa_serve *s, int32_t i);
int32_t sv_ip_acquire(sa_serve *s, const uint8_t a[16]);
void sv_ip_release(sa_serve *s, int32_t n);
uint8_t *sv_buf_get(sa_serve *s);
int sv_buf_grow(sa_serve *s, conn_t *c, size_t want, size_t keep);
uint64_t sv_conn_id(const sa_serve *s, int32_t i);
conn_t *sv_conn_lookup(sa_serve *s, uint64_t id, int32_t *slot);
void sv_conn_close(sa_serve *s, int32_t i);
sa_serve_event *sv_emit(sa_serve *s, int32_t i, int kind, int status);
void sv_conn_write(sa_serve *s, int32_t i);
int sv_queue_reply(sa_serve *s, int32_t i, const uint8_t *data, size_t len, int close_after);
void sv_rc_reply(uint8_t out[24], uint16_t version, uint32_t rc);

#endif
