/* slurmctld's RPC rate limit (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t uid;             /* 0: a free slot */
    uint32_t tokens;
    int64_t last_update;      /* in refill periods */
    int64_t last_logged;      /* seconds */
    uint64_t refused;
} bucket_t;

struct sa_rl {
    sa_rl_config cfg;
    uint16_t exempt[SA_RL_MAX_EXEMPT];
    uint32_t n_exempt;
    uint64_t table_full;
    pthread_mutex_t lock;
    bucket_t *table;
};

sa_rl *sa_rl_new(const sa_rl_config *cfg, const uint16_t *exempt, uint32_t n_exempt)
{
    sa_rl *rl;

    if (!cfg || !cfg->table_size || !cfg->bucket_size || !cfg->refill_rate ||
        !cfg->refill_period || cfg->log_freq < -1 || n_exempt > SA_RL_MAX_EXEMPT ||
        (n_exempt && !exempt))
        return NULL;
    rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    rl->table = calloc(cfg->table_size, sizeof(*rl->table));
    if (!rl->table || pthread_mutex_init(&rl->lock, NULL) != 0) {
        free(rl->table);
        free(rl);
        return NULL;
    }
    rl->cfg = *cfg;
    if (n_exempt)
        memcpy(rl->exempt, exempt, n_exempt * sizeof(*exempt));
    rl->n_exempt = n_exempt;
    return rl;
}

void sa_rl_free(sa_rl *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->table);
    free(rl);
}

static int exempt(const sa_rl *rl, uint32_t uid, uint16_t msg_type)
{
    uint32_t k;
    if (uid == 0 || uid == rl->cfg.slurm_user_uid)
        return 1;
    for (k = 0; k < rl->n_exempt; k++)
        if (rl->exempt[k] == msg_type)
            return 1;
    return 0;
}

int sa_rl_check(sa_rl *rl, uint32_t uid, uint16_t msg_type, int64_t now)
{
    const sa_rl_config *cfg;
    uint32_t size, pos, start;
    bucket_t *b;
    int64_t periods, delta;
    int rc = SA_RL_PASS;

    if (!rl || exempt(rl, uid, msg_type))
        return SA_RL_PASS;
    cfg = &rl->cfg;
    size = cfg->table_size;
    pthread_mutex_lock(&rl->lock);
    start = pos = uid % size;
    while (rl->table[pos].uid && rl->table[pos].uid != uid) {
        if (++pos == size)
            pos = 0;
        if (pos == start) {
            rl->table_full++;
            pthread_mutex_unlock(&rl->lock);
            return SA_RL_PASS;
        }
    }
    b = &rl->table[pos];
    periods = now / (int64_t)cfg->refill_period;
    if (!b->uid) {
        b->uid = uid;
        b->last_update = periods;
        b->tokens = cfg->bucket_size - 1;
    } else {
        delta = periods - b->last_update;
        b->last_update = periods;
        if (delta) {
            /* as in Slurm: uint32 tokens, the sum wrapping (a clock stepping back too) */
            b->tokens = (uint32_t)((int64_t)b->tokens + delta * (int64_t)cfg->refill_rate);
            if (b->tokens > cfg->bucket_size)
                b->tokens = cfg->bucket_size;
        }
        if (b->tokens) {
            b->tokens--;
        } else {
            b->refused++;
            rc = SA_RL_EXCEEDED;
            if (cfg->log_freq != -1 && b->last_logged + cfg->log_freq <= now) {
                b->last_logged = now;
                rc = SA_RL_EXCEEDED_LOG;
            }
        }
    }
    pthread_mutex_unlock(&rl->lock);
    return rc;
}

uint64_t sa_rl_table_full(sa_rl *rl)
{
    uint64_t n;
    if (!rl)
        return 0;
    pthread_mutex_lock(&rl->lock);
    n = rl->table_full;
    pthread_mutex_unlock(&rl->lock);
    return n;
}

static int before(const bucket_t *b, uint32_t uid, uint64_t count)
{
    return b->refused > count || (b->refused == count && b->uid < uid);
}

uint32_t sa_rl_top(sa_rl *rl, uint32_t *uids, uint64_t *counts, uint32_t max)
{
    uint32_t n = 0, pos, k;

    if (!rl || !uids || !counts || !max)
        return 0;
    pthread_mutex_lock(&rl->lock);
    for (pos = 0; pos < rl->cfg.table_size; pos++) {
        const bucket_t *b = &rl->table[pos];
        if (!b->uid || !b->refused)
            continue;
        /* insertion into the sorted prefix: most refused first, then lower uid */
        if (n == max && !before(b, uids[n - 1], counts[n - 1]))
            continue;
        k = n < max ? n++ : n - 1;
        while (k > 0 && before(b, uids[k - 1], counts[k - 1])) {
            uids[k] = uids[k - 1];
            counts[k] = counts[k - 1];
            k--;
        }
        uids[k] = b->uid;
        counts[k] = b->refused;
    }
    pthread_mutex_unlock(&rl->lock);
    return n;
}
