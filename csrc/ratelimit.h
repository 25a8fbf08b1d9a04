/* slurmctld's RPC rate limit (SlurmctldParameters=rl_enable, slurmctld/rate_limit.c),
 * with the same table and arithmetic: a token bucket per uid in an open-addressed
 * table of table_size slots (slot uid % size, then the next free one; uid 0 marks a
 * free slot, root is never limited). A uid's first request takes a bucket of
 * bucket_size tokens and spends one; every refill_period seconds of the wall clock
 * (whole periods: now / refill_period) adds refill_rate tokens, up to bucket_size
 * (uint32 arithmetic, as in Slurm); a request without a token is over the limit.
 * Root, SlurmUser and the exempt message types are never limited; a uid that finds
 * the table full is let through (counted). log_freq: -1 never log, else at most one
 * "exceeded" line per uid every log_freq seconds.
 *
 * Thread-safe (one mutex): the serving core checks on its thread, the metrics read
 * the counts from another. */
#ifndef SA_RATELIMIT_H
#define SA_RATELIMIT_H

#include <stdint.h>

/* cffi:begin */
#define SA_RL_MAX_EXEMPT 64

typedef struct {
    uint32_t table_size;      /* rl_table_size */
    uint32_t bucket_size;     /* rl_bucket_size */
    uint32_t refill_rate;     /* rl_refill_rate */
    uint32_t refill_period;   /* rl_refill_period, seconds */
    int32_t log_freq;         /* rl_log_freq: -1, 0 or seconds */
    uint32_t slurm_user_uid;  /* SlurmUser: exempt, as root is */
} sa_rl_config;

typedef struct sa_rl sa_rl;

/* What sa_rl_check decided. */
#define SA_RL_PASS         0  /* within the limit (or exempt, or the table is full) */
#define SA_RL_EXCEEDED     1  /* over the limit: answer SLURMCTLD_COMMUNICATIONS_BACKOFF */
#define SA_RL_EXCEEDED_LOG 2  /* over the limit, and this one is to be logged (log_freq) */

/* NULL when a value is zero (log_freq < -1) or out of memory. exempt: message types
 * never limited (at most SA_RL_MAX_EXEMPT). */
sa_rl *sa_rl_new(const sa_rl_config *cfg, const uint16_t *exempt, uint32_t n_exempt);
void sa_rl_free(sa_rl *rl);
/* One request of uid with msg_type at wall-clock time now (seconds). */
int sa_rl_check(sa_rl *rl, uint32_t uid, uint16_t msg_type, int64_t now);
/* Requests let through because the table was full. */
uint64_t sa_rl_table_full(sa_rl *rl);
/* The uids refused most often, most first (ties: lower uid first): up to max
 * (uid, count) pairs; returns how many. */
uint32_t sa_rl_top(sa_rl *rl, uint32_t *uids, uint64_t *counts, uint32_t max);
/* cffi:end */

#endif
