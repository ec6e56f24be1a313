/*
 * Client metrics: counted in memory by the library as things happen, read by
 * zkc_client_metrics (a versioned struct) or as Prometheus text.
 *
 * Design:
 *   - Nothing here talks to a server or takes a lock the engine waits on.
 *     Every count is a relaxed atomic add on a fixed array, because the engine
 *     thread (grants, completions, requests) and API threads (submissions)
 *     both count. A reader may see a count of one cell a moment before or
 *     after another's: each number is exact once quiet, and the exposition
 *     derives _count from the same snapshot of buckets as the buckets, so a
 *     histogram is always self-consistent.
 *   - Labels are bounded by construction: recipe kind (a fixed enum), result
 *     (the error table), and a path prefix the user registers (at most
 *     ZKC_METRICS_PREFIXES_MAX). An operation's path is matched once, when it
 *     is tagged, to a slot index; there is never a series per path or order.
 *   - Registrations (prefixes, constant labels) are append-only: written
 *     under a mutex, published by a release store of the count, read without
 *     the mutex. So matching in the hot path costs a few string compares.
 *   - Histogram buckets are fixed at compile time (the header's bounds), so
 *     expositions of different processes and versions aggregate.
 *   - The counters that existed before (zkc_stats: requests, retries,
 *     conflicts, session history) stay where they are counted (client->st)
 *     and are read from there; only what is new lives here.
 */
#include "metrics.h"
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS (ZKC_METRICS_PREFIXES_MAX + 1)
#define KINDS ZKC_MK_COUNT
#define ERRS ZKC_METRICS_ERRORS_MAX
#define HISTS ZKC_HIST_COUNT
#define BUCKETS ZKC_METRICS_BUCKETS_MAX

static const int64_t time_bounds_ms[] = {ZKC_METRICS_TIME_BOUNDS_MS};
static const int64_t size_bounds[] = {ZKC_METRICS_SIZE_BOUNDS};
_Static_assert(sizeof time_bounds_ms / sizeof time_bounds_ms[0] == ZKC_METRICS_TIME_NBOUNDS, "time bounds");
_Static_assert(sizeof size_bounds / sizeof size_bounds[0] == ZKC_METRICS_SIZE_NBOUNDS, "size bounds");
_Static_assert(ZKC_METRICS_TIME_NBOUNDS < BUCKETS && ZKC_METRICS_SIZE_NBOUNDS < BUCKETS, "bucket room");
_Static_assert(ZKC_MK_COUNT <= ZKC_METRICS_KINDS_MAX && ZKC_HIST_COUNT <= ZKC_METRICS_HISTS_MAX, "room");

static const char *const kind_name[KINDS] = {"lock", "rwlock", "semaphore", "multilock", "counter",
                                             "inventory", "ratelimit", "idgen", "admin", "election"};

static const struct {
    const char *name, *help;
    int sizes; /* size buckets, not time */
} hist_info[HISTS] = {
    {"zkc_lock_wait_seconds", "Successful lock acquires: time from the call to the grant.", 0},
    {"zkc_lock_hold_seconds", "Lock holds: time from the grant to the release or loss.", 0},
    {"zkc_counter_add_seconds", "Successful counter adds: time from the call to the reply.", 0},
    {"zkc_reservation_decision_seconds", "Inventory reservations: time from the call to reserved or out of stock.", 0},
    {"zkc_election_wait_seconds", "Leader elections: time from the call to leadership.", 0},
    {"zkc_batch_size", "Updates combined into one transaction.", 1},
    {"zkc_batch_size", NULL, 1}, /* the inventory half of the same family */
};

struct zkc__metrics {
    pthread_mutex_t mu; /* registrations only */
    int nprefix;        /* published with a release store */
    struct {
        char *path;
        size_t len;
        char label[64];
    } prefix[ZKC_METRICS_PREFIXES_MAX];
    int nconst;
    struct {
        char name[64];
        char value[256];
    } cl[ZKC_METRICS_CONST_LABELS_MAX];

    uint64_t started[SLOTS][KINDS];
    uint64_t ended[SLOTS][KINDS][ERRS]; /* [-status]; [0] success */
    int64_t waiters[SLOTS][KINDS];
    int64_t holders[SLOTS][KINDS];
    uint64_t hb[SLOTS][HISTS][BUCKETS]; /* per bucket, not cumulative */
    uint64_t hsum[SLOTS][HISTS];
    uint64_t writes[ZKC_REQ_KINDS_MAX];
};

#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct zkc__metrics *zkc__metrics_new(void)
{
    struct zkc__metrics *mx = calloc(1, sizeof *mx);
    if (mx)
        pthread_mutex_init(&mx->mu, NULL);
    return mx;
}

void zkc__metrics_free(struct zkc__metrics *mx)
{
    if (!mx)
        return;
    for (int i = 0; i < mx->nprefix; i++)
        free(mx->prefix[i].path);
    pthread_mutex_destroy(&mx->mu);
    free(mx);
}

/* ------------------------------------------------------------ counting */

static int slot_of(struct zkc__metrics *mx, const char *path)
{
    if (!path)
        return 0;
    int n = __atomic_load_n(&mx->nprefix, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        size_t l = mx->prefix[i].len;
        if (strncmp(path, mx->prefix[i].path, l) == 0 &&
            (path[l] == '\0' || path[l] == '/' || (l > 0 && mx->prefix[i].path[l - 1] == '/')))
            return i + 1;
    }
    return 0;
}

static void observe(struct zkc__metrics *mx, int slot, int h, int64_t v)
{
    if (v < 0)
        v = 0;
    int i = 0;
    if (hist_info[h].sizes) {
        while (i < ZKC_METRICS_SIZE_NBOUNDS && v > size_bounds[i])
            i++;
    } else {
        while (i < ZKC_METRICS_TIME_NBOUNDS && v > time_bounds_ms[i] * 1000)
            i++;
    }
    ADD(mx->hb[slot][h][i], 1);
    ADD(mx->hsum[slot][h], (uint64_t)v);
}

void zkc__metrics_tag(zkc__mstamp *s, zkc_client *c, int kind, int hist, const char *path)
{
    s->kind1 = (uint8_t)(kind + 1);
    s->hist = (int8_t)hist;
    s->slot = (uint8_t)slot_of(c->mx, path);
    s->active = 0;
}

void zkc__metrics_begin(zkc_client *c, zkc__mstamp *s)
{
    /* Ops are zeroed when made (calloc/memset): an untagged one has kind1 0. */
    if (!s->kind1 || s->kind1 > KINDS || s->slot >= SLOTS || s->active)
        return;
    struct zkc__metrics *mx = c->mx;
    s->active = 1;
    s->t0_us = now_us();
    ADD(mx->started[s->slot][s->kind1 - 1], 1);
    if (s->hist == ZKC_HIST_LOCK_WAIT)
        ADD(mx->waiters[s->slot][s->kind1 - 1], 1);
}

void zkc__metrics_end(zkc_client *c, zkc__mstamp *s, int status)
{
    if (!s->kind1 || !s->active)
        return;
    struct zkc__metrics *mx = c->mx;
    int k = s->kind1 - 1;
    s->active = 0;
    /* status > -ERRS first: -INT_MIN would overflow. */
    int e = status <= 0 && status > -ERRS ? -status : ERRS - 1;
    ADD(mx->ended[s->slot][k][e], 1);
    if (s->hist == ZKC_HIST_LOCK_WAIT)
        ADD(mx->waiters[s->slot][k], -1);
    if (s->hist >= 0 && (status == 0 || (s->hist == ZKC_HIST_RESERVE && status == ZKC_EOUTOFSTOCK)))
        observe(mx, s->slot, s->hist, now_us() - s->t0_us);
}

void zkc__metrics_hold(zkc_client *c, zkc__mstamp *s, int kind, const char *path)
{
    if (s->active)
        return;
    zkc__metrics_tag(s, c, kind, ZKC_HIST_LOCK_HOLD, path);
    s->active = 1;
    s->t0_us = now_us();
    ADD(c->mx->holders[s->slot][kind], 1);
}

void zkc__metrics_unhold(zkc_client *c, zkc__mstamp *s)
{
    if (!s->active || !s->kind1)
        return;
    s->active = 0;
    ADD(c->mx->holders[s->slot][s->kind1 - 1], -1);
    observe(c->mx, s->slot, ZKC_HIST_LOCK_HOLD, now_us() - s->t0_us);
}

void zkc__metrics_batch(zkc_client *c, int hist, int n)
{
    if (n > 0) /* a round of reads only is not a combined write */
        observe(c->mx, 0, hist, n);
}

void zkc__metrics_sent(zkc_client *c, int kind, int in_multi)
{
    if (kind == ZKC_REQ_CREATE || kind == ZKC_REQ_DELETE || kind == ZKC_REQ_SET)
        ADD(c->mx->writes[kind], 1);
    else if (in_multi)
        ADD(c->mx->writes[ZKC_REQ_CHECK], 1);
}

/* ------------------------------------------------------------ registrations */

static int label_ok(const char *s, size_t max, int name)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        int digit = ch >= '0' && ch <= '9';
        if (name ? !(alpha || (digit && i > 0)) : !(alpha || digit || strchr(":./-", ch)))
            return 0;
    }
    return 1;
}

int zkc_client_metrics_label_prefix(zkc_client *c, const char *prefix, const char *label)
{
    if (!c || !prefix || !label)
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_label_prefix: NULL argument");
    if (prefix[0] != '/')
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_label_prefix: prefix '%s' is not an absolute path", prefix);
    if (!label_ok(label, sizeof c->mx->prefix[0].label, 0))
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_label_prefix: label '%s': 1-63 of [a-zA-Z0-9_:./-]", label);
    struct zkc__metrics *mx = c->mx;
    pthread_mutex_lock(&mx->mu);
    int n = mx->nprefix;
    if (n == ZKC_METRICS_PREFIXES_MAX) {
        pthread_mutex_unlock(&mx->mu);
        return zkc__err(ZKC_ELIMIT, "zkc_client_metrics_label_prefix: %d prefixes registered already", n);
    }
    char *p = strdup(prefix);
    if (!p) {
        pthread_mutex_unlock(&mx->mu);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    mx->prefix[n].path = p;
    mx->prefix[n].len = strlen(p);
    snprintf(mx->prefix[n].label, sizeof mx->prefix[n].label, "%s", label);
    __atomic_store_n(&mx->nprefix, n + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mx->mu);
    return 0;
}

int zkc_client_metrics_const_label(zkc_client *c, const char *name, const char *value)
{
    if (!c || !name || !value)
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_const_label: NULL argument");
    struct zkc__metrics *mx = c->mx;
    if (!label_ok(name, sizeof mx->cl[0].name, 1) || strncmp(name, "__", 2) == 0 || !strcmp(name, "le") ||
        !strcmp(name, "kind") || !strcmp(name, "result") || !strcmp(name, "prefix") || !strcmp(name, "type"))
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_const_label: '%s' is not a label name of its own", name);
    if (strlen(value) >= sizeof mx->cl[0].value)
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_const_label: value longer than %zu bytes",
                        sizeof mx->cl[0].value - 1);
    pthread_mutex_lock(&mx->mu);
    int n = mx->nconst;
    if (n == ZKC_METRICS_CONST_LABELS_MAX) {
        pthread_mutex_unlock(&mx->mu);
        return zkc__err(ZKC_ELIMIT, "zkc_client_metrics_const_label: %d labels registered already", n);
    }
    snprintf(mx->cl[n].name, sizeof mx->cl[n].name, "%s", name);
    snprintf(mx->cl[n].value, sizeof mx->cl[n].value, "%s", value);
    __atomic_store_n(&mx->nconst, n + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mx->mu);
    return 0;
}

/* ------------------------------------------------------------ the struct */

int zkc_client_metrics(zkc_client *c, zkc_metrics *m)
{
    if (!c || !m)
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics: NULL argument");
    size_t want = m->size;
    if (want < offsetof(zkc_metrics, ops_started))
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics: m->size %zu: set it to sizeof(zkc_metrics)", want);
    zkc_metrics *all = calloc(1, sizeof *all);
    if (!all)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    struct zkc__metrics *mx = c->mx;
    for (int s = 0; s < SLOTS; s++) {
        for (int k = 0; k < KINDS; k++) {
            uint64_t st = LOAD(mx->started[s][k]), ended = 0;
            all->ops_started[k] += st;
            for (int e = 0; e < ERRS; e++) {
                uint64_t v = LOAD(mx->ended[s][k][e]);
                ended += v;
                if (e == 0)
                    all->ops_succeeded[k] += v;
                else
                    all->ops_failed[k][e] += v;
            }
            all->ops_in_flight[k] += (int64_t)(st - ended);
            all->waiters[k] += LOAD(mx->waiters[s][k]);
            all->holders[k] += LOAD(mx->holders[s][k]);
        }
        for (int h = 0; h < HISTS; h++) {
            int nb = hist_info[h].sizes ? ZKC_METRICS_SIZE_NBOUNDS : ZKC_METRICS_TIME_NBOUNDS;
            uint64_t cum = 0;
            for (int b = 0; b <= nb; b++) {
                cum += LOAD(mx->hb[s][h][b]);
                all->hist[h].bucket[b] += cum;
            }
            for (int b = nb + 1; b < BUCKETS; b++)
                all->hist[h].bucket[b] += cum;
            all->hist[h].count += cum;
            all->hist[h].sum += LOAD(mx->hsum[s][h]);
        }
    }
    zkc_stats st;
    zkc_client_stats(c, &st);
    memcpy(all->requests, st.requests, sizeof all->requests);
    for (int i = 0; i < ZKC_REQ_KINDS_MAX; i++)
        all->writes[i] = LOAD(mx->writes[i]);
    all->conflicts = st.conflicts;
    all->retries = st.retries;
    all->callbacks = st.callbacks;
    all->sessions = st.sessions;
    all->suspended = st.suspended;
    all->reconnected = st.reconnected;
    all->lost = st.lost;
    all->disconnected_ms = st.disconnected_ms;
    all->connected = zkc_client_connected(c);
    all->size = (uint32_t)want;
    all->version = ZKC_METRICS_VERSION;
    memcpy(m, all, want < sizeof *all ? want : sizeof *all);
    if (want > sizeof *all) /* a newer caller's fields this library does not know: zero */
        memset((char *)m + sizeof *all, 0, want - sizeof *all);
    free(all);
    return 0;
}

/* ------------------------------------------------------------ the exposition */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) ZKC__PRINTF(2, 3);
static void put(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 16384;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void put_escaped(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(b, "\\\\");
        else if (*s == '"')
            put(b, "\\\"");
        else if (*s == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *s);
    }
}

/* Everything a series line needs besides its own labels. */
typedef struct expo {
    sbuf b;
    struct zkc__metrics *mx;
    int nprefix, nconst;
} expo;

static void family(expo *x, const char *name, const char *type, const char *help)
{
    put(&x->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{const labels, own labels, prefix} value. own: "k=\"v\",..." or "". */
static void series_start(expo *x, const char *name, const char *own, int slot)
{
    put(&x->b, "%s", name);
    int any = 0;
    for (int i = 0; i < x->nconst; i++) {
        put(&x->b, "%s%s=\"", any++ ? "," : "{", x->mx->cl[i].name);
        put_escaped(&x->b, x->mx->cl[i].value);
        put(&x->b, "\"");
    }
    if (own && *own)
        put(&x->b, "%s%s", any++ ? "," : "{", own);
    if (slot > 0)
        put(&x->b, "%sprefix=\"%s\"", any++ ? "," : "{", x->mx->prefix[slot - 1].label);
    put(&x->b, "%s", any ? "} " : " ");
}

static void series_u(expo *x, const char *name, const char *own, int slot, uint64_t v)
{
    series_start(x, name, own, slot);
    put(&x->b, "%llu\n", (unsigned long long)v);
}

static void series_i(expo *x, const char *name, const char *own, int slot, int64_t v)
{
    series_start(x, name, own, slot);
    put(&x->b, "%lld\n", (long long)v);
}

static void histogram(expo *x, int h, int slot, const char *own)
{
    struct zkc__metrics *mx = x->mx;
    const char *name = hist_info[h].name;
    int sizes = hist_info[h].sizes;
    int nb = sizes ? ZKC_METRICS_SIZE_NBOUNDS : ZKC_METRICS_TIME_NBOUNDS;
    uint64_t snap[BUCKETS];
    uint64_t cnt = 0;
    for (int b = 0; b <= nb; b++)
        cnt += snap[b] = LOAD(mx->hb[slot][h][b]);
    if (slot > 0 && cnt == 0)
        return; /* a registered prefix shows the histograms it has used */
    char n[96], lbl[160];
    snprintf(n, sizeof n, "%s_bucket", name);
    uint64_t cum = 0;
    for (int b = 0; b <= nb; b++) {
        cum += snap[b];
        char le[32];
        if (b == nb)
            snprintf(le, sizeof le, "+Inf");
        else if (sizes)
            snprintf(le, sizeof le, "%lld", (long long)size_bounds[b]);
        else
            snprintf(le, sizeof le, "%g", (double)time_bounds_ms[b] / 1000.0);
        snprintf(lbl, sizeof lbl, "%s%sle=\"%s\"", own, *own ? "," : "", le);
        series_u(x, n, lbl, slot, cum);
    }
    snprintf(n, sizeof n, "%s_sum", name);
    series_start(x, n, own, slot);
    uint64_t sum = LOAD(mx->hsum[slot][h]);
    if (sizes)
        put(&x->b, "%llu\n", (unsigned long long)sum);
    else
        put(&x->b, "%llu.%06llu\n", (unsigned long long)(sum / 1000000), (unsigned long long)(sum % 1000000));
    snprintf(n, sizeof n, "%s_count", name);
    series_u(x, n, own, slot, cnt);
}

static const char *const req_name[ZKC_REQ_CHECK + 1] = {"create", "delete", "exists", "get", "set", "children",
                                                       "sync", "multi", "remove_watch", "other", "check"};

static void expose(zkc_client *c, expo *x)
{
    struct zkc__metrics *mx = c->mx;
    x->mx = mx;
    x->nprefix = __atomic_load_n(&mx->nprefix, __ATOMIC_ACQUIRE);
    x->nconst = __atomic_load_n(&mx->nconst, __ATOMIC_ACQUIRE);
    int nslots = x->nprefix + 1;
    char own[160];

    /* Operations: the unlabelled slot shows every kind (zeros included, so a
     * dashboard sees the series from the start); a prefix its kinds in use. */
    family(x, "zkc_operations_started_total", "counter", "Recipe operations submitted, by recipe kind.");
    for (int s = 0; s < nslots; s++)
        for (int k = 0; k < KINDS; k++) {
            uint64_t v = LOAD(mx->started[s][k]);
            if (s == 0 || v) {
                snprintf(own, sizeof own, "kind=\"%s\"", kind_name[k]);
                series_u(x, "zkc_operations_started_total", own, s, v);
            }
        }
    family(x, "zkc_operations_total", "counter",
           "Recipe operations completed, by recipe kind and result (ok, or the error's name).");
    for (int s = 0; s < nslots; s++)
        for (int k = 0; k < KINDS; k++)
            for (int e = 0; e < ERRS; e++) {
                uint64_t v = LOAD(mx->ended[s][k][e]);
                if (!v && !(s == 0 && e == 0))
                    continue;
                const char *en = zkc__errname(-e);
                char other[16];
                if (!en) {
                    snprintf(other, sizeof other, "e%d", e);
                    en = other;
                }
                snprintf(own, sizeof own, "kind=\"%s\",result=\"%s\"", kind_name[k], en);
                series_u(x, "zkc_operations_total", own, s, v);
            }
    family(x, "zkc_operations_in_flight", "gauge", "Recipe operations submitted and not yet completed.");
    for (int s = 0; s < nslots; s++)
        for (int k = 0; k < KINDS; k++) {
            uint64_t st = LOAD(mx->started[s][k]), ended = 0;
            for (int e = 0; e < ERRS; e++)
                ended += LOAD(mx->ended[s][k][e]);
            if (s == 0 || st) {
                snprintf(own, sizeof own, "kind=\"%s\"", kind_name[k]);
                series_i(x, "zkc_operations_in_flight", own, s, (int64_t)(st - ended));
            }
        }
    family(x, "zkc_lock_waiters", "gauge", "Lock acquires waiting now.");
    for (int s = 0; s < nslots; s++)
        for (int k = ZKC_MK_LOCK; k <= ZKC_MK_MULTILOCK; k++) {
            snprintf(own, sizeof own, "kind=\"%s\"", kind_name[k]);
            if (s == 0 || LOAD(mx->started[s][k]))
                series_i(x, "zkc_lock_waiters", own, s, LOAD(mx->waiters[s][k]));
        }
    family(x, "zkc_lock_holders", "gauge", "Lock holds now (lock, rwlock, semaphore).");
    for (int s = 0; s < nslots; s++)
        for (int k = ZKC_MK_LOCK; k <= ZKC_MK_SEMAPHORE; k++) {
            snprintf(own, sizeof own, "kind=\"%s\"", kind_name[k]);
            if (s == 0 || LOAD(mx->started[s][k]))
                series_i(x, "zkc_lock_holders", own, s, LOAD(mx->holders[s][k]));
        }

    for (int h = 0; h < ZKC_HIST_COUNTER_BATCH; h++) {
        family(x, hist_info[h].name, "histogram", hist_info[h].help);
        for (int s = 0; s < nslots; s++)
            histogram(x, h, s, "");
    }
    family(x, "zkc_batch_size", "histogram", hist_info[ZKC_HIST_COUNTER_BATCH].help);
    histogram(x, ZKC_HIST_COUNTER_BATCH, 0, "kind=\"counter\"");
    histogram(x, ZKC_HIST_INVENTORY_BATCH, 0, "kind=\"inventory\"");

    zkc_stats st;
    zkc_client_stats(c, &st);
    family(x, "zkc_requests_total", "counter", "ZooKeeper requests sent, by type (a multi counts once).");
    for (int i = 0; i <= ZKC_REQ_OTHER; i++) {
        snprintf(own, sizeof own, "type=\"%s\"", req_name[i]);
        series_u(x, "zkc_requests_total", own, 0, st.requests[i]);
    }
    family(x, "zkc_writes_total", "counter", "Write operations sent, alone or inside a multi, by type.");
    for (int i = 0; i <= ZKC_REQ_CHECK; i++) {
        if (i != ZKC_REQ_CREATE && i != ZKC_REQ_DELETE && i != ZKC_REQ_SET && i != ZKC_REQ_CHECK)
            continue;
        snprintf(own, sizeof own, "type=\"%s\"", req_name[i]);
        series_u(x, "zkc_writes_total", own, 0, LOAD(mx->writes[i]));
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } plain[] = {
        {"zkc_cas_conflicts_total", "Compare-and-swap rounds lost (BadVersion and the like).", offsetof(zkc_stats, conflicts)},
        {"zkc_retries_total", "Safe requests sent again after a connection loss.", offsetof(zkc_stats, retries)},
        {"zkc_callbacks_total", "User callbacks run.", offsetof(zkc_stats, callbacks)},
        {"zkc_sessions_total", "Sessions established (1 + new sessions after LOST).", offsetof(zkc_stats, sessions)},
        {"zkc_suspended_total", "Times the connection state became SUSPENDED.", offsetof(zkc_stats, suspended)},
        {"zkc_reconnected_total", "Times the same session came back (RECONNECTED).", offsetof(zkc_stats, reconnected)},
        {"zkc_lost_total", "Sessions LOST (expired or presumed expired).", offsetof(zkc_stats, lost)},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + plain[i].off, sizeof v);
        family(x, plain[i].name, "counter", plain[i].help);
        series_u(x, plain[i].name, "", 0, v);
    }
    family(x, "zkc_disconnected_seconds_total", "counter", "Time spent without a connection (ended disconnections).");
    series_start(x, "zkc_disconnected_seconds_total", "", 0);
    put(&x->b, "%llu.%03llu\n", (unsigned long long)(st.disconnected_ms / 1000),
        (unsigned long long)(st.disconnected_ms % 1000));
    family(x, "zkc_connected", "gauge", "1 while connected to a server, else 0.");
    series_i(x, "zkc_connected", "", 0, zkc_client_connected(c));
}

/* The whole text into x->b; 0 or ZKC_ENOMEM (x->b freed). */
static int render(zkc_client *c, expo *x)
{
    memset(x, 0, sizeof *x);
    expose(c, x);
    if (!x->b.oom)
        return 0;
    free(x->b.p);
    return zkc__err(ZKC_ENOMEM, "out of memory");
}

long zkc_client_metrics_format(zkc_client *c, char *buf, size_t len)
{
    if (!c || (!buf && len))
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_format: NULL argument");
    expo x;
    int rc = render(c, &x);
    if (rc)
        return rc;
    if (len) {
        size_t n = x.b.len < len ? x.b.len : len - 1;
        memcpy(buf, x.b.p, n);
        buf[n] = '\0';
    }
    free(x.b.p);
    return (long)x.b.len;
}

int zkc_client_metrics_write(zkc_client *c, int fd)
{
    if (!c || fd < 0)
        return zkc__err(ZKC_EINVAL, "zkc_client_metrics_write: NULL client or bad descriptor");
    expo x;
    int rc = render(c, &x);
    if (rc)
        return rc;
    size_t off = 0;
    while (off < x.b.len) {
        ssize_t w = write(fd, x.b.p + off, x.b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            free(x.b.p);
            return zkc__err(ZKC_ESERVER, "zkc_client_metrics_write: write: %s", strerror(e));
        }
        off += (size_t)w;
    }
    free(x.b.p);
    return 0;
}
