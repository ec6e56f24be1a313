/* Multi-lock: several locks all or nothing, taken in one canonical order so two
 * multi-locks over overlapping sets cannot wait on each other in a cycle. Built
 * on the public async acquire: each grant's callback (dispatch thread) asks for
 * the next lock; a failure releases what was taken, in reverse order. */
#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zkc_multilock {
    zkc_lock **locks; /* canonical order */
    int n;
    int taken;
    int busy;
    int held;
    int64_t deadline; /* 0: no deadline; -1: try */
    zkc_multilock_cb cb;
    void *ud;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    char msg[300];
    /* zkc_multilock_release_async: the next lock to release is locks[rel_i - 1] */
    int rel_i;
    int rel_status;
    char rel_msg[300];
    zkc_multilock_cb rel_cb;
    void *rel_ud;
    zkc__mstamp ms; /* metrics: the acquire, from call to outcome */
};


static int canon_cmp(const void *a, const void *b)
{
    zkc_lock *x = *(zkc_lock *const *)a, *y = *(zkc_lock *const *)b;
    int c = strcmp(zkc_lock_path(x), zkc_lock_path(y));
    if (c)
        return c;
    /* Same path: writers before readers, then by address (stable per process). */
    int kx = zkc__lock_kind_of(x), ky = zkc__lock_kind_of(y);
    if (kx != ky)
        return kx == ZKC_LOCK_WRITE ? -1 : ky == ZKC_LOCK_WRITE ? 1 : kx - ky;
    return x < y ? -1 : x > y;
}

int zkc_multilock_create(zkc_lock *const *locks, int n, zkc_multilock **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_multilock_create: out is NULL");
    *out = NULL;
    if (!locks || n <= 0)
        return zkc__err(ZKC_EINVAL, "zkc_multilock_create: needs at least one lock");
    for (int i = 0; i < n; i++) {
        if (!locks[i])
            return zkc__err(ZKC_EINVAL, "zkc_multilock_create: lock %d is NULL", i);
        for (int j = 0; j < i; j++)
            if (locks[j] == locks[i])
                return zkc__err(ZKC_EINVAL, "zkc_multilock_create: lock %d appears twice", i);
    }
    zkc_multilock *m = calloc(1, sizeof *m);
    if (!m || !(m->locks = malloc((size_t)n * sizeof *m->locks))) {
        free(m);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    memcpy(m->locks, locks, (size_t)n * sizeof *locks);
    qsort(m->locks, (size_t)n, sizeof *m->locks, canon_cmp);
    m->n = n;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    *out = m;
    return 0;
}

static void release_taken(zkc_multilock *m)
{
    for (int i = m->taken - 1; i >= 0; i--)
        zkc_lock_release(m->locks[i]);
    m->taken = 0;
}

static void finish(zkc_multilock *m, int status, const char *msg)
{
    if (status != 0)
        release_taken(m);
    pthread_mutex_lock(&m->mu);
    m->busy = 0;
    m->held = status == 0;
    zkc_multilock_cb cb = m->cb;
    void *ud = m->ud;
    pthread_mutex_unlock(&m->mu);
    zkc__metrics_end(zkc__lock_client(m->locks[0]), &m->ms, status);
    zkc__set_errmsg(msg);
    cb(m, status, ud);
}

static int remaining(zkc_multilock *m)
{
    if (m->deadline == 0)
        return ZKC_FOREVER;
    if (m->deadline < 0)
        return 0;
    int64_t left = m->deadline - zkc__now_ms();
    return left > 0 ? (int)left : 0;
}

static void step(zkc_multilock *m);

static void granted(zkc_lock *l, int status, int64_t token, void *ud)
{
    zkc_multilock *m = ud;
    ZKC__UNUSED(l);
    ZKC__UNUSED(token);
    if (status != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "multi-lock: %s (lock %d of %d, %s)", zkc_errmsg(), m->taken + 1, m->n,
                 zkc_lock_path(l));
        finish(m, status, msg);
        return;
    }
    m->taken++;
    step(m);
}

static void step(zkc_multilock *m)
{
    if (m->taken == m->n) {
        finish(m, 0, "");
        return;
    }
    int t = remaining(m);
    if (m->deadline > 0 && t == 0) {
        finish(m, ZKC_ETIMEDOUT, "multi-lock: timed out before every lock was taken");
        return;
    }
    int rc = zkc_lock_acquire_async(m->locks[m->taken], t, granted, m);
    if (rc) {
        char msg[300];
        snprintf(msg, sizeof msg, "multi-lock: %s", zkc_errmsg());
        finish(m, rc, msg);
    }
}

int zkc_multilock_acquire_async(zkc_multilock *m, int timeout_ms, zkc_multilock_cb cb, void *ud)
{
    if (!m || !cb)
        return zkc__err(ZKC_EINVAL, "zkc_multilock_acquire_async: NULL argument");
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "zkc_multilock_acquire_async: negative timeout");
    pthread_mutex_lock(&m->mu);
    if (m->busy || m->held) {
        pthread_mutex_unlock(&m->mu);
        return zkc__err(ZKC_EBUSY, "multi-lock is already acquiring or held");
    }
    m->busy = 1;
    m->cb = cb;
    m->ud = ud;
    m->taken = 0;
    m->deadline = timeout_ms == ZKC_FOREVER ? 0 : timeout_ms == 0 ? -1 : zkc__now_ms() + timeout_ms;
    pthread_mutex_unlock(&m->mu);
    zkc__metrics_tag(&m->ms, zkc__lock_client(m->locks[0]), ZKC_MK_MULTILOCK, ZKC_HIST_LOCK_WAIT, zkc_lock_path(m->locks[0]));
    zkc__metrics_begin(zkc__lock_client(m->locks[0]), &m->ms);
    /* The first submission decides whether the callback will run at all. */
    int rc = zkc_lock_acquire_async(m->locks[0], remaining(m), granted, m);
    if (rc) {
        zkc__metrics_end(zkc__lock_client(m->locks[0]), &m->ms, rc); /* counted begun: so it ends, failed */
        pthread_mutex_lock(&m->mu);
        m->busy = 0;
        pthread_mutex_unlock(&m->mu);
    }
    return rc;
}

static void wake(zkc_multilock *m, int status, void *ud)
{
    ZKC__UNUSED(ud);
    pthread_mutex_lock(&m->mu);
    snprintf(m->msg, sizeof m->msg, "%s", zkc_errmsg());
    m->status = status;
    m->done = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

int zkc_multilock_acquire(zkc_multilock *m, int timeout_ms)
{
    if (!m)
        return zkc__err(ZKC_EINVAL, "zkc_multilock_acquire: NULL argument");
    pthread_mutex_lock(&m->mu);
    m->done = 0;
    pthread_mutex_unlock(&m->mu);
    int rc = zkc_multilock_acquire_async(m, timeout_ms, wake, NULL);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->mu);
    while (!m->done)
        pthread_cond_wait(&m->cv, &m->mu);
    rc = m->status;
    if (rc)
        zkc__set_errmsg(m->msg);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int zkc_multilock_release(zkc_multilock *m)
{
    if (!m)
        return zkc__err(ZKC_EINVAL, "zkc_multilock_release: NULL argument");
    pthread_mutex_lock(&m->mu);
    int held = m->held;
    m->held = 0;
    pthread_mutex_unlock(&m->mu);
    if (!held)
        return zkc__err(ZKC_ENOTHELD, "multi-lock is not held");
    int first = 0;
    for (int i = m->n - 1; i >= 0; i--) {
        int rc = zkc_lock_release(m->locks[i]);
        if (rc && !first)
            first = rc;
    }
    m->taken = 0;
    return first;
}

static void release_one_done(zkc_lock *l, int status, int64_t token, void *ud);

/* Submit the next lock's release; a refused submission counts as that lock's
 * status. 1 if one is in flight (its callback goes on), 0 when none is left. */
static int release_next(zkc_multilock *m)
{
    while (m->rel_i > 0) {
        zkc_lock *l = m->locks[--m->rel_i];
        int rc = zkc_lock_release_async(l, release_one_done, m);
        if (rc == 0)
            return 1;
        if (!m->rel_status) {
            m->rel_status = rc;
            snprintf(m->rel_msg, sizeof m->rel_msg, "multi-lock release: %s", zkc_errmsg());
        }
    }
    return 0;
}

static void release_one_done(zkc_lock *l, int status, int64_t token, void *ud)
{
    zkc_multilock *m = ud;
    ZKC__UNUSED(token);
    if (status && !m->rel_status) {
        m->rel_status = status;
        snprintf(m->rel_msg, sizeof m->rel_msg, "multi-lock release: %s (%s)", zkc_errmsg(), zkc_lock_path(l));
    }
    if (release_next(m))
        return;
    /* The last one: on the dispatch thread, as every callback. */
    pthread_mutex_lock(&m->mu);
    m->busy = 0;
    m->taken = 0;
    zkc_multilock_cb cb = m->rel_cb;
    void *cud = m->rel_ud;
    int st = m->rel_status;
    pthread_mutex_unlock(&m->mu);
    zkc__set_errmsg(st ? m->rel_msg : "");
    cb(m, st, cud);
}

int zkc_multilock_release_async(zkc_multilock *m, zkc_multilock_cb cb, void *ud)
{
    if (!m || !cb)
        return zkc__err(ZKC_EINVAL, "zkc_multilock_release_async: NULL argument");
    pthread_mutex_lock(&m->mu);
    if (m->busy) {
        pthread_mutex_unlock(&m->mu);
        return zkc__err(ZKC_EBUSY, "multi-lock is acquiring or releasing");
    }
    if (!m->held) {
        pthread_mutex_unlock(&m->mu);
        return zkc__err(ZKC_ENOTHELD, "multi-lock is not held");
    }
    m->held = 0;
    m->busy = 1;
    m->rel_cb = cb;
    m->rel_ud = ud;
    m->rel_i = m->n;
    m->rel_status = 0;
    pthread_mutex_unlock(&m->mu);
    /* On the caller's thread the callback must not run: if no release can be
     * submitted at all, the call fails instead (the locks are as they were). */
    if (release_next(m))
        return 0;
    pthread_mutex_lock(&m->mu);
    m->busy = 0;
    m->held = 1;
    pthread_mutex_unlock(&m->mu);
    return zkc__err(m->rel_status, "%s", m->rel_msg);
}

void zkc_multilock_destroy(zkc_multilock *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    int held = m->held;
    pthread_mutex_unlock(&m->mu);
    if (held)
        zkc_multilock_release(m);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m->locks);
    free(m);
}
