/* zkc-chaos: what the driver, the workers and the checker share. */
#include "chaos.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The inventory API, bound weakly: NULL while lib/reserve.c lacks it. */
extern __typeof__(zkc_inventory_create) zkc_inventory_create __attribute__((weak));

int ch_inventory_linked(void)
{
    return zkc_inventory_create != NULL;
}

const char *const ch_vnames[V_NKINDS] = {
    "fence_stale_accept", "fence_reject_undoubted", "token_order",   "overlap",
    "counter_sum",        "counter_chain",          "counter_bound", "replay_mismatch",
    "unknown_unjustified", "inventory_units",       "inventory_double_grant", "orphan_nodes",
    "callback_count",     "call_incomplete",        "worker_failed", "ensemble_recovery",
    "idgen_duplicate_or_order", "election_double_leader", "election_token_order",
    "guard_refused_undoubted", "ratelimit_window_bound", "ratelimit_instant_off", "unexpected_error",
};

void ch_shape_default(ch_shape *s)
{
    memset(s, 0, sizeof *s);
    s->mutex_paths = 6;
    s->rw_paths = 2;
    s->counters = 8;
    s->stocks = 4;
    s->skus = 4;
    s->mutex_threads = 2;
    s->rw_threads = 1;
    s->counter_threads = 1;
    s->stock_threads = 1;
    s->inv_threads = 3; /* sharing one inventory object (worker.c) */
    s->window = 64;
    s->session_ms = 4000;
    s->keyed_pct = 40;
    s->counter_rate = 150;
    s->stock_rate = 30;
    s->lock_think_ms = 20;
    s->queued = 1;
}

int ch_lock_count(const ch_shape *s)
{
    return s->mutex_paths + s->rw_paths;
}

int ch_counter_count(const ch_shape *s)
{
    return s->counters + s->stocks + 1; /* + /chaos/guarded, added to by lock holders */
}

int ch_counter_mode(const ch_shape *s, int i)
{
    int k;
    if (!s->queued || i < 0)
        return ZKC_COUNTER_QUEUED_OFF;
    if (i < s->counters)
        k = i;
    else if (i < s->counters + s->stocks)
        k = i - s->counters;
    else
        return ZKC_COUNTER_QUEUED_OFF;
    if (k % 2 == 0)
        return ZKC_COUNTER_QUEUED_OFF;
    return (k / 2) % 2 == 0 ? ZKC_COUNTER_QUEUED_ALWAYS : ZKC_COUNTER_QUEUED_AUTO;
}

int ch_counter_queued(const ch_shape *s, int i)
{
    return ch_counter_mode(s, i) == ZKC_COUNTER_QUEUED_ALWAYS;
}

void ch_lock_path(const ch_shape *s, int i, char *buf, size_t len)
{
    if (i < s->mutex_paths)
        snprintf(buf, len, CH_ROOT "/lock/m%d", i);
    else
        snprintf(buf, len, CH_ROOT "/lock/rw%d", i - s->mutex_paths);
}

void ch_counter_path(const ch_shape *s, int i, char *buf, size_t len)
{
    if (i < s->counters)
        snprintf(buf, len, CH_ROOT "/ctr/c%d", i);
    else if (i == s->counters + s->stocks)
        snprintf(buf, len, CH_ROOT "/guarded");
    else
        snprintf(buf, len, CH_ROOT "/stock/s%d", i - s->counters);
}

void ch_sku_name(int i, char *buf, size_t len)
{
    snprintf(buf, len, "sku%d", i);
}

uint64_t ch_mix(uint64_t a, uint64_t b)
{
    uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 0x1234567;
}

/* ---------------------------------------------------------------- shared memory */

static void robust_init(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
}

void ch_robust_lock(pthread_mutex_t *mu)
{
    int rc = pthread_mutex_lock(mu);
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(mu);
}

static ch_shm *shm_map(const char *dir, int create)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/shm", dir);
    int fd = open(p, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0600);
    if (fd < 0)
        return NULL;
    if (create && ftruncate(fd, (off_t)sizeof(ch_shm)) != 0) {
        close(fd);
        return NULL;
    }
    void *m = mmap(NULL, sizeof(ch_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return m == MAP_FAILED ? NULL : m;
}

ch_shm *ch_shm_create(const char *dir)
{
    ch_shm *m = shm_map(dir, 1);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    for (int i = 0; i < CH_MAX_LOCKS; i++)
        robust_init(&m->fence[i].mu);
    for (int i = 0; i < CH_MAX_WORKERS; i++)
        robust_init(&m->w[i].mu);
    return m;
}

ch_shm *ch_shm_attach(const char *dir)
{
    return shm_map(dir, 0);
}

void ch_shm_detach(ch_shm *m)
{
    if (m)
        munmap(m, sizeof *m);
}

/* ---------------------------------------------------------------- history */

struct ch_hist {
    int fd;
    int wid;
};

int64_t ch_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void ch_nap_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

ch_hist *ch_hist_open(const char *dir, int wid)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/hist-%d.log", dir, wid);
    ch_hist *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (h->fd < 0) {
        free(h);
        return NULL;
    }
    h->wid = wid;
    return h;
}

void ch_hist_close(ch_hist *h)
{
    if (!h)
        return;
    close(h->fd);
    free(h);
}

int64_t ch_log(ch_hist *h, const char *fmt, ...)
{
    char buf[1024];
    int64_t t = ch_now_ns();
    int n = snprintf(buf, sizeof buf, "%lld %d ", (long long)t, h->wid);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    /* O_APPEND: one write is one line, whoever else appends. */
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = write(h->fd, buf + off, (size_t)(n - off));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += w;
    }
    return t;
}
