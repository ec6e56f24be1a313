/* Recipes built on the lock queue, against the suite's real 3-node ensemble:
 * counting semaphore (bound on concurrent holders, configuration mismatch,
 * watch bound from the servers, a kill -9'd holder process), read/write lock
 * (shared readers, exclusive writers, writer not starved, downgrade),
 * multi-lock (no deadlock over overlapping random subsets, all or nothing on
 * timeout) and the rate limiter (fixed- and sliding-window bounds, try; the
 * hard mode's input checks and burst). The window bounds, a 4 s timed run, are
 * the heavy tier's (tag TU_HEAVY); the rest is the fast tier. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static zkc_lock *mklock(zkc_client *c, const char *path)
{
    zkc_lock *l = NULL;
    int rc = zkc_lock_create(c, path, &l);
    ck_assert_msg(rc == 0, "zkc_lock_create(%s): %s", path, zkc_errmsg());
    return l;
}

static zkc_lock *mksem(zkc_client *c, const char *path, int n)
{
    zkc_lock *l = NULL;
    int rc = zkc_semaphore_create(c, path, n, &l);
    ck_assert_msg(rc == 0, "zkc_semaphore_create(%s, %d): %s", path, n, zkc_errmsg());
    return l;
}

static zkc_rwlock *mkrw(zkc_client *c, const char *path)
{
    zkc_rwlock *rw = NULL;
    int rc = zkc_rwlock_create(c, path, &rw);
    ck_assert_msg(rc == 0, "zkc_rwlock_create(%s): %s", path, zkc_errmsg());
    return rw;
}

/* 1 if the object holds (by its own record; zkc_lock_is_held also needs a
 * recent server packet, which a loaded machine may delay). */
static int holds(zkc_lock *l)
{
    int64_t t;
    return zkc_lock_token(l, &t) == 0;
}

static long long realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int join_all(pthread_t *th, int n, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (int i = 0; i < n; i++) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long long left = deadline - tu_now_ms();
        if (left < 0)
            left = 0;
        dl.tv_sec += left / 1000;
        dl.tv_nsec += (left % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        if (pthread_timedjoin_np(th[i], NULL, &dl) != 0)
            return 0;
    }
    return 1;
}

/* Async acquire recorder: event = status, value = index passed as ud offset. */
typedef struct rec {
    tu_events *ev;
    int idx;
} rec;

static void rec_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    (void)token;
    rec *r = ud;
    tu_events_add(r->ev, status, r->idx);
}

/* Index-valued grants (status 0) recorded so far for idx. */
static int granted(tu_events *e, int idx)
{
    int n = tu_events_total(e), k = 0;
    for (int i = 0; i < n; i++) {
        long long at;
        int64_t v;
        int ev = tu_events_get(e, i, &at, &v);
        k += ev == 0 && v == idx;
    }
    return k;
}

/* Wait for a grant of idx; 1 if it came in time. */
static int wait_granted(tu_events *e, int idx, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    int from = 0;
    for (;;) {
        if (granted(e, idx))
            return 1;
        long long left = deadline - tu_now_ms();
        if (left <= 0)
            return 0;
        int i = tu_events_wait(e, 0, from, (int)left);
        if (i < 0)
            return granted(e, idx);
        from = i + 1;
    }
}

static int queue_holds(zkc_client *c, const char *path, int64_t session, int *holds_out)
{
    zkc_lock_contender *q = NULL;
    int n = 0;
    int rc = zkc_lock_contenders(c, path, &q, &n);
    ck_assert_msg(rc == 0, "zkc_lock_contenders(%s): %s", path, zkc_errmsg());
    int k = 0, h = 0;
    for (int i = 0; i < n; i++)
        if (session == 0 || q[i].session_id == session) {
            k++;
            h += q[i].holds;
        }
    zkc_lock_contenders_free(q, n);
    if (holds_out)
        *holds_out = h;
    return k;
}

/* ------------------------------------------------------------ semaphore: bound */

#define SEM_N 3
#define SEM_CLIENTS 3
#define SEM_THREADS 8
#define SEM_ITERS 6

typedef struct sem_shared {
    int cur, max, over, entries;
} sem_shared;

typedef struct sem_worker {
    zkc_client *c;
    const char *path;
    sem_shared *sh;
    int errors;
    char err[256];
} sem_worker;

static void *sem_thread(void *arg)
{
    sem_worker *w = arg;
    zkc_lock *l = NULL;
    if (zkc_semaphore_create(w->c, w->path, SEM_N, &l) != 0) {
        w->errors++;
        snprintf(w->err, sizeof w->err, "create: %s", zkc_errmsg());
        return NULL;
    }
    for (int i = 0; i < SEM_ITERS; i++) {
        int rc = zkc_lock_acquire(l, tu_ms(30000), NULL);
        if (rc) {
            w->errors++;
            snprintf(w->err, sizeof w->err, "acquire %d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
            break;
        }
        int now = __atomic_add_fetch(&w->sh->cur, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&w->sh->entries, 1, __ATOMIC_SEQ_CST);
        if (now > SEM_N)
            __atomic_add_fetch(&w->sh->over, 1, __ATOMIC_SEQ_CST);
        int m = __atomic_load_n(&w->sh->max, __ATOMIC_SEQ_CST);
        while (now > m && !__atomic_compare_exchange_n(&w->sh->max, &m, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            ;
        tu_nap_ms(20 + (i % 3) * 5);
        __atomic_sub_fetch(&w->sh->cur, 1, __ATOMIC_SEQ_CST);
        rc = zkc_lock_release(l);
        if (rc) {
            w->errors++;
            snprintf(w->err, sizeof w->err, "release %d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
            break;
        }
    }
    zkc_lock_destroy(l);
    return NULL;
}

START_TEST(t_semaphore_bound)
{
    char path[128];
    tu_unique_path(path, sizeof path, "sem");
    static sem_shared sh;
    memset(&sh, 0, sizeof sh);
    zkc_client *cs[SEM_CLIENTS];
    for (int i = 0; i < SEM_CLIENTS; i++)
        cs[i] = tu_client(tu_hosts());
    static sem_worker w[SEM_THREADS];
    pthread_t th[SEM_THREADS];
    for (int i = 0; i < SEM_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].c = cs[i % SEM_CLIENTS];
        w[i].path = path;
        w[i].sh = &sh;
        ck_assert_int_eq(pthread_create(&th[i], NULL, sem_thread, &w[i]), 0);
    }
    ck_assert_msg(join_all(th, SEM_THREADS, tu_ms(45000)), "semaphore contenders did not finish in time");
    for (int i = 0; i < SEM_THREADS; i++)
        ck_assert_msg(w[i].errors == 0, "worker %d: %s", i, w[i].err);
    ck_assert_int_eq(sh.entries, SEM_THREADS * SEM_ITERS);
    ck_assert_msg(sh.over == 0, "%d entries found more than %d holders", sh.over, SEM_N);
    ck_assert_int_le(sh.max, SEM_N);
    ck_assert_msg(sh.max == SEM_N, "concurrent holders peaked at %d, never reached %d", sh.max, SEM_N);
    ck_assert(tu_wait_queue_count(cs[0], path, 0, tu_ms(10000)));
    for (int i = 0; i < SEM_CLIENTS; i++)
        zkc_client_destroy(cs[i]);
}
END_TEST

/* ------------------------------------------------------------ semaphore: config, watches */

#define SW_HOLDERS 3
#define SW_WAITERS 5
#define SW_TOTAL (SW_HOLDERS + SW_WAITERS)

START_TEST(t_semaphore_config_and_watches)
{
    zkh_ensemble *e = tu_shared();
    char path[128];
    tu_unique_path(path, sizeof path, "semw");
    long base = zkh_watch_count(e);
    ck_assert_msg(base >= 0, "zkh_watch_count: %ld", base);
    zkc_client *cs[3];
    for (int i = 0; i < 3; i++)
        cs[i] = tu_client(tu_hosts());
    zkc_lock *l[SW_TOTAL];
    for (int i = 0; i < SW_TOTAL; i++)
        l[i] = mksem(cs[i % 3], path, SEM_N);
    for (int i = 0; i < SW_HOLDERS; i++) {
        int rc = zkc_lock_acquire(l[i], tu_ms(10000), NULL);
        ck_assert_msg(rc == 0, "holder %d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
    }
    /* A fourth contender is refused while three hold. */
    zkc_lock *extra = mksem(cs[1], path, SEM_N);
    ck_assert_int_eq(zkc_lock_acquire(extra, 0, NULL), ZKC_ETIMEDOUT);
    zkc_lock_destroy(extra);

    /* A client configured for another count is refused. */
    zkc_client *bad = tu_client(tu_hosts());
    zkc_lock *l4 = mksem(bad, path, SEM_N + 1);
    int rc = zkc_lock_acquire(l4, tu_ms(5000), NULL);
    ck_assert_msg(rc == ZKC_ECONFIG, "N=%d on a semaphore of %d: got %s (%s)", SEM_N + 1, SEM_N, zkc_strerror(rc),
                  zkc_errmsg());
    ck_assert_int_eq(zkc_lock_is_held(l4), 0);
    zkc_lock_destroy(l4);
    ck_assert_int_eq(queue_holds(bad, path, tu_session_id(bad), NULL), 0);
    zkc_client_destroy(bad);

    tu_events ev;
    tu_events_init(&ev);
    static rec r[SW_TOTAL];
    for (int i = SW_HOLDERS; i < SW_TOTAL; i++) {
        r[i].ev = &ev;
        r[i].idx = i;
        ck_assert_int_eq(zkc_lock_acquire_async(l[i], tu_ms(60000), rec_cb, &r[i]), 0);
    }
    ck_assert(tu_wait_queue_count(cs[0], path, SW_TOTAL, tu_ms(10000)));
    /* Every waiter watches something once it is queued: poll until the
     * waiters' watches are set (at least one per waiter), then sample. */
    long long deadline = tu_now_ms() + tu_ms(10000);
    int under = 0;
    while ((under = tu_watches_under(e, path, NULL, 0)) < SW_WAITERS && tu_now_ms() < deadline)
        tu_nap_ms(50);
    ck_assert_msg(under >= SW_WAITERS, "only %d watches under %s for %d waiters", under, path, SW_WAITERS);
    for (int s = 0; s < 5; s++) {
        long total = zkh_watch_count(e);
        under = tu_watches_under(e, path, NULL, 0);
        ck_assert_msg(total >= 0, "zkh_watch_count: %ld", total);
        ck_assert_msg(total - base <= 2 * SW_TOTAL + 1, "%ld watches (baseline %ld) for %d contenders", total, base,
                      SW_TOTAL);
        ck_assert_msg(under <= 2 * SW_TOTAL + 1, "%d watches under %s for %d contenders", under, path, SW_TOTAL);
        if (s < 4)
            tu_nap_ms(100);
    }
    fprintf(stderr, "semaphore: %ld watches over baseline %ld, %d under the path, for %d holders + %d waiters\n",
            zkh_watch_count(e) - base, base, tu_watches_under(e, path, NULL, 0), SW_HOLDERS, SW_WAITERS);
    if (getenv("ZKC_TEST_DUMP_WATCHES")) {
        char *t = NULL;
        zkh_watches_by_path(e, &t);
        zkc_lock_contender *q = NULL;
        int qn = 0;
        if (zkc_lock_contenders(cs[0], path, &q, &qn) == 0) {
            for (int i = 0; i < qn; i++)
                fprintf(stderr, "queue %d: %s holds=%d session=0x%llx\n", i, q[i].name, q[i].holds,
                        (unsigned long long)q[i].session_id);
            zkc_lock_contenders_free(q, qn);
        }
        fprintf(stderr, "wchp:\n%s\n", t ? t : "");
        free(t);
    }
    ck_assert_int_eq(tu_events_total(&ev), 0);
    /* Releasing the holders admits exactly the waiters, three at a time. */
    for (int i = 0; i < SW_HOLDERS; i++)
        ck_assert_int_eq(zkc_lock_release(l[i]), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, SW_HOLDERS, tu_ms(10000)), SW_HOLDERS);
    for (int i = SW_HOLDERS; i < SW_TOTAL; i++)
        if (granted(&ev, i)) {
            ck_assert_int_eq(zkc_lock_release(l[i]), 0);
        }
    ck_assert_int_eq(tu_events_wait_total(&ev, SW_WAITERS, tu_ms(10000)), SW_WAITERS);
    for (int i = SW_HOLDERS; i < SW_TOTAL; i++) {
        ck_assert_msg(granted(&ev, i) == 1, "waiter %d was not granted", i);
        if (holds(l[i]))
            ck_assert_int_eq(zkc_lock_release(l[i]), 0);
    }
    for (int i = 0; i < SW_TOTAL; i++)
        zkc_lock_destroy(l[i]);
    ck_assert(tu_wait_queue_count(cs[0], path, 0, tu_ms(10000)));
    for (int i = 0; i < 3; i++)
        zkc_client_destroy(cs[i]);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ semaphore: queue introspection */

/* The listing marks the first N lease holders (N from the semaphore node) as
 * holding, not only the first. */
START_TEST(t_semaphore_queue_holds)
{
    char path[128];
    tu_unique_path(path, sizeof path, "semq");
    zkc_client *c = tu_client(tu_hosts());
    zkc_lock *l[SEM_N + 1];
    for (int i = 0; i <= SEM_N; i++)
        l[i] = mksem(c, path, SEM_N);
    for (int i = 0; i < SEM_N; i++)
        ck_assert_int_eq(zkc_lock_acquire(l[i], tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_acquire(l[SEM_N], 0, NULL), ZKC_ETIMEDOUT);
    int nh = -1;
    ck_assert_int_eq(queue_holds(c, path, 0, &nh), SEM_N);
    ck_assert_msg(nh == SEM_N, "zkc_lock_contenders marks %d of %d lease holders as holding", nh, SEM_N);
    for (int i = 0; i <= SEM_N; i++)
        zkc_lock_destroy(l[i]);
    zkc_client_destroy(c);
}
END_TEST

/* ------------------------------------------------------------ semaphore: a release against the watch */

/* A waiter decides from one listing and sets its watch with a later read; a
 * release that lands in between fires no watch. A semaphore waiter at the head
 * watches the children list, so it missed that release and waited for a change
 * that never came, the queue behind it too (the scale smoke caught it: 5 of 200
 * acquired). Here the holder's release starts at offsets swept over the
 * waiter's first two milliseconds, so that some land between the waiter's
 * listing and its watch; every round must grant the waiter. The offsets are not
 * synchronization: each round waits for the waiter's callback. */
#define RACE_ROUNDS 200

static void race_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    (void)token;
    tu_events_add(ud, 1, status);
}

START_TEST(t_semaphore_release_races_watch)
{
    char path[128];
    tu_unique_path(path, sizeof path, "semrace");
    zkc_client *hc = tu_client(tu_hosts()), *wc = tu_client(tu_hosts());
    zkc_lock *h = mksem(hc, path, 1), *w = mksem(wc, path, 1);
    tu_events ev;
    tu_events_init(&ev);
    for (int i = 0; i < RACE_ROUNDS; i++) {
        ck_assert_int_eq(zkc_lock_acquire(h, tu_ms(10000), NULL), 0);
        int rc = zkc_lock_acquire_async(w, tu_ms(5000), race_cb, &ev);
        ck_assert_msg(rc == 0, "round %d: zkc_lock_acquire_async: %s", i, zkc_errmsg());
        usleep((useconds_t)((i % 40) * 50));
        ck_assert_int_eq(zkc_lock_release(h), 0);
        int at = tu_events_wait(&ev, 1, i, tu_ms(10000));
        ck_assert_msg(at == i, "round %d: the waiter's callback did not come", i);
        int64_t status;
        tu_events_get(&ev, at, NULL, &status);
        ck_assert_msg(status == 0, "round %d (release %d us after the waiter started): the waiter got %s", i,
                      (i % 40) * 50, zkc_strerror((int)status));
        ck_assert_int_eq(zkc_lock_release(w), 0);
    }
    tu_events_destroy(&ev);
    zkc_lock_destroy(h);
    zkc_lock_destroy(w);
    zkc_client_destroy(hc);
    zkc_client_destroy(wc);
}
END_TEST

/* The other half of the same race: a waiter further back watches the member
 * right before it, which touches its node once admitted. When that touch lands
 * between the waiter's listing and its watch, the waiter must still see it
 * (the node's data version is above 0), or it waits for its predecessor to
 * leave although a lease came free: here the predecessor holds until the
 * waiter is granted, so a missed touch is a timeout. Two leases: H1 and H2
 * hold, W1 waits at the head, W2 behind it; H1's release (swept against W2's
 * start) admits W1, which touches its node; H2's release must admit W2. */
START_TEST(t_semaphore_kick_races_watch)
{
    char path[128];
    tu_unique_path(path, sizeof path, "semkick");
    zkc_client *hc = tu_client(tu_hosts()), *wc = tu_client(tu_hosts()), *wc2 = tu_client(tu_hosts());
    zkc_lock *h1 = mksem(hc, path, 2), *h2 = mksem(hc, path, 2), *w1 = mksem(wc, path, 2), *w2 = mksem(wc2, path, 2);
    tu_events e1, e2;
    tu_events_init(&e1);
    tu_events_init(&e2);
    for (int i = 0; i < RACE_ROUNDS / 2; i++) {
        ck_assert_int_eq(zkc_lock_acquire(h1, tu_ms(10000), NULL), 0);
        ck_assert_int_eq(zkc_lock_acquire(h2, tu_ms(10000), NULL), 0);
        ck_assert_int_eq(zkc_lock_acquire_async(w1, tu_ms(10000), race_cb, &e1), 0);
        ck_assert(tu_wait_queue_count(hc, path, 3, tu_ms(10000)));
        ck_assert_int_eq(zkc_lock_acquire_async(w2, tu_ms(5000), race_cb, &e2), 0);
        usleep((useconds_t)((i % 40) * 50));
        ck_assert_int_eq(zkc_lock_release(h1), 0);
        int at = tu_events_wait(&e1, 1, i, tu_ms(10000));
        ck_assert_msg(at == i, "round %d: W1 was not granted", i);
        ck_assert_int_eq(zkc_lock_release(h2), 0);
        at = tu_events_wait(&e2, 1, i, tu_ms(10000));
        ck_assert_msg(at == i, "round %d: W2's callback did not come", i);
        int64_t status;
        tu_events_get(&e2, at, NULL, &status);
        ck_assert_msg(status == 0, "round %d (H1 released %d us after W2 started): W2 got %s while a lease was free", i,
                      (i % 40) * 50, zkc_strerror((int)status));
        ck_assert_int_eq(zkc_lock_release(w1), 0);
        ck_assert_int_eq(zkc_lock_release(w2), 0);
    }
    tu_events_destroy(&e1);
    tu_events_destroy(&e2);
    zkc_lock_destroy(h1);
    zkc_lock_destroy(h2);
    zkc_lock_destroy(w1);
    zkc_lock_destroy(w2);
    zkc_client_destroy(hc);
    zkc_client_destroy(wc);
    zkc_client_destroy(wc2);
}
END_TEST

/* ------------------------------------------------------------ semaphore: admissions without listing */

/* A semaphore drains with no listing (issue 21; the essay at the top of
 * lib/semaphore.c): an admitted member writes into its node the
 * names of the members that can still be ahead of it; the waiter behind it
 * reads them and watches those nodes (then at most max_leases of them), and
 * the first deletion lets it in. Before, every admission listed the whole
 * queue (the member ahead's write only said "at most max_leases - 1 ahead of
 * me"). The oldest holder leaves at each step, while the member just admitted
 * still holds, so every waiter reads names (none goes in by "written, then
 * gone", which tells no names). */
#define SD_LEASES 2
#define SD_N 8
START_TEST(t_semaphore_drain_without_listing)
{
    zkh_ensemble *e = tu_shared();
    char path[128];
    tu_unique_path(path, sizeof path, "semdrain");
    zkc_client *cs[3] = {tu_client(tu_hosts()), tu_client(tu_hosts()), tu_client(tu_hosts())};
    zkc_lock *q[SD_LEASES + SD_N]; /* queue order: the holders, then the waiters */
    for (int i = 0; i < SD_LEASES; i++) {
        q[i] = mksem(cs[0], path, SD_LEASES);
        ck_assert_int_eq(zkc_lock_acquire(q[i], tu_ms(10000), NULL), 0);
    }
    tu_events ev;
    tu_events_init(&ev);
    static rec r[SD_N];
    for (int i = 0; i < SD_N; i++) {
        q[SD_LEASES + i] = mksem(cs[1 + i % 2], path, SD_LEASES);
        r[i].ev = &ev;
        r[i].idx = i;
        ck_assert_int_eq(zkc_lock_acquire_async(q[SD_LEASES + i], tu_ms(60000), rec_cb, &r[i]), 0);
        /* One at a time, so that queue order is this order. */
        ck_assert(tu_wait_queue_count(cs[0], path, SD_LEASES + i + 1, tu_ms(10000)));
    }
    /* Every member watches its own node, every waiter but the first the one
     * before it (the first: each holder; before: the children list, which
     * tu_watches_under does not count). */
    int want = (SD_LEASES + SD_N) + (SD_N - 1), under = 0;
    long long deadline = tu_now_ms() + tu_ms(10000);
    while ((under = tu_watches_under(e, path, NULL, 0)) < want && tu_now_ms() < deadline)
        tu_nap_ms(50);
    ck_assert_msg(under >= want, "%d watches under %s, %d expected", under, path, want);
    zkc_stats s0, s1;
    long long until = tu_now_ms() + tu_ms(10000);
    uint64_t before = 0, lists0 = 0;
    do { /* until the last listing has come back */
        before = 0;
        for (int i = 0; i < 3; i++) {
            zkc_client_stats(cs[i], &s0);
            before += s0.requests_total;
        }
        tu_nap_ms(50);
        uint64_t now = 0;
        for (int i = 0; i < 3; i++) {
            zkc_client_stats(cs[i], &s1);
            now += s1.requests_total;
        }
        if (now == before)
            break;
    } while (tu_now_ms() < until);
    for (int i = 0; i < 3; i++) {
        zkc_client_stats(cs[i], &s0);
        lists0 += s0.requests[ZKC_REQ_CHILDREN];
    }
    ck_assert_int_eq(tu_events_total(&ev), 0);
    for (int k = 0; k < SD_N; k++) {
        ck_assert_int_eq(zkc_lock_release(q[k]), 0);
        ck_assert_msg(wait_granted(&ev, k, tu_ms(10000)), "waiter %d not granted after the oldest holder left", k);
        ck_assert_msg(tu_events_total(&ev) == k + 1, "%d waiters granted with %d leases come free",
                      tu_events_total(&ev), k + 1);
    }
    uint64_t lists1 = 0;
    for (int i = 0; i < 3; i++) {
        zkc_client_stats(cs[i], &s1);
        lists1 += s1.requests[ZKC_REQ_CHILDREN];
    }
    fprintf(stderr, "semaphore drain: %llu listings to admit %d waiters\n", (unsigned long long)(lists1 - lists0),
            SD_N);
    ck_assert_msg(lists1 == lists0, "%llu listings to admit %d waiters of a semaphore",
                  (unsigned long long)(lists1 - lists0), SD_N);
    for (int i = SD_N; i < SD_LEASES + SD_N; i++)
        ck_assert_int_eq(zkc_lock_release(q[i]), 0);
    for (int i = 0; i < SD_LEASES + SD_N; i++)
        zkc_lock_destroy(q[i]);
    ck_assert(tu_wait_queue_count(cs[0], path, 0, tu_ms(10000)));
    for (int i = 0; i < 3; i++)
        zkc_client_destroy(cs[i]);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ semaphore: holder killed */

static void sem_child(int fd, const char *path)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int msg[2] = {-1, 0};
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    zkc_client *c = NULL;
    if (zkc_client_create(&c, &o) == 0) {
        zkc_lock *l = NULL;
        if (zkc_semaphore_create(c, path, SEM_N, &l) == 0) {
            msg[0] = zkc_lock_acquire(l, tu_ms(10000), NULL);
            msg[1] = zkc_client_session_timeout(c);
        }
    }
    if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
        _exit(2);
    for (;;)
        pause(); /* holds until killed */
}

START_TEST(t_semaphore_holder_killed)
{
    char path[128];
    tu_unique_path(path, sizeof path, "semk");
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    /* The parent holds two leases first so that the child takes the last. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        sem_child(p[1], path);
    }
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int pr = poll(&pf, 1, tu_ms(30000));
    int msg[2] = {-1, 0};
    ssize_t got = pr == 1 ? read(p[0], msg, sizeof msg) : -1;
    close(p[0]);
    if (got != (ssize_t)sizeof msg || msg[0] != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        ck_abort_msg("child did not take a lease (poll %d, read %zd, rc %d)", pr, got, msg[0]);
    }
    int session_ms = msg[1];
    ck_assert_int_gt(session_ms, 0);

    zkc_client *c = tu_client(tu_hosts());
    zkc_client *c2 = tu_client(tu_hosts());
    zkc_lock *h[2] = {mksem(c, path, SEM_N), mksem(c2, path, SEM_N)};
    for (int i = 0; i < 2; i++) {
        int rc = zkc_lock_acquire(h[i], tu_ms(10000), NULL);
        ck_assert_msg(rc == 0, "parent holder %d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
    }
    tu_events ev;
    tu_events_init(&ev);
    rec r = {&ev, 7};
    zkc_lock *wt = mksem(c2, path, SEM_N);
    ck_assert_int_eq(zkc_lock_acquire_async(wt, tu_ms(60000), rec_cb, &r), 0);
    ck_assert(tu_wait_queue_count(c, path, 4, tu_ms(10000)));
    ck_assert_msg(tu_events_total(&ev) == 0, "the waiter was granted a 4th lease of a semaphore of %d", SEM_N);

    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    long long t0 = tu_now_ms();
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    int bound = session_ms + tu_ms(5000);
    int ok = wait_granted(&ev, 7, bound);
    long long dt = tu_now_ms() - t0;
    ck_assert_msg(ok, "waiter not granted within %d ms of kill -9 of the holder (session %d ms; events %d)", bound,
                  session_ms, tu_events_total(&ev));
    fprintf(stderr, "semaphore: waiter granted %lld ms after kill -9 of the holder (session %d ms)\n", dt,
            session_ms);
    ck_assert_int_eq(tu_events_total(&ev), 1);
    ck_assert_int_le(dt, bound);
    ck_assert_int_eq(holds(wt), 1);
    ck_assert_int_eq(zkc_lock_release(wt), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(zkc_lock_release(h[i]), 0);
        zkc_lock_destroy(h[i]);
    }
    zkc_lock_destroy(wt);
    ck_assert(tu_wait_queue_count(c, path, 0, tu_ms(10000)));
    zkc_client_destroy(c2);
    zkc_client_destroy(c);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ rwlock: basics */

START_TEST(t_rwlock_readers_share_downgrade)
{
    char path[128];
    tu_unique_path(path, sizeof path, "rw");
    zkc_client *a = tu_client(tu_hosts());
    zkc_client *b = tu_client(tu_hosts());
    zkc_rwlock *ra = mkrw(a, path), *rb = mkrw(b, path), *rc_ = mkrw(b, path);
    ck_assert_ptr_nonnull(zkc_rwlock_read(ra));
    ck_assert_ptr_nonnull(zkc_rwlock_write(ra));
    ck_assert_ptr_ne(zkc_rwlock_read(ra), zkc_rwlock_write(ra));

    /* Two readers at once. */
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_read(ra), tu_ms(10000), NULL), 0);
    int rc = zkc_lock_acquire(zkc_rwlock_read(rb), tu_ms(5000), NULL);
    ck_assert_msg(rc == 0, "second reader: %s: %s", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_eq(holds(zkc_rwlock_read(ra)), 1);
    ck_assert_int_eq(holds(zkc_rwlock_read(rb)), 1);
    /* A writer is excluded by readers. */
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_write(rc_), 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(ra)), 0);
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_write(rc_), 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(rb)), 0);

    /* Downgrade: hold write, take read, release write. */
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_write(ra), tu_ms(10000), NULL), 0);
    /* A writer excludes other readers and writers. */
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_read(rb), 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_write(rc_), 0, NULL), ZKC_ETIMEDOUT);
    rc = zkc_lock_acquire(zkc_rwlock_read(ra), tu_ms(5000), NULL);
    ck_assert_msg(rc == 0, "downgrade: read while holding write: %s: %s", zkc_strerror(rc), zkc_errmsg());
    /* Still exclusive against others while the write side is held. */
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_read(rb), 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_write(ra)), 0);
    ck_assert_int_eq(zkc_lock_is_held(zkc_rwlock_write(ra)), 0);
    ck_assert_int_eq(holds(zkc_rwlock_read(ra)), 1);
    int64_t tok = 0;
    ck_assert_int_eq(zkc_lock_token(zkc_rwlock_read(ra), &tok), 0);
    rc = zkc_lock_acquire(zkc_rwlock_read(rb), tu_ms(5000), NULL);
    ck_assert_msg(rc == 0, "reader after downgrade: %s: %s", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_eq(holds(zkc_rwlock_read(ra)), 1);
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_write(rc_), 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(ra)), 0);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(rb)), 0);
    rc = zkc_lock_acquire(zkc_rwlock_write(rc_), tu_ms(5000), NULL);
    ck_assert_msg(rc == 0, "writer once all left: %s: %s", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_write(rc_)), 0);

    zkc_rwlock_destroy(ra);
    zkc_rwlock_destroy(rb);
    zkc_rwlock_destroy(rc_);
    ck_assert(tu_wait_queue_count(a, path, 0, tu_ms(10000)));
    zkc_client_destroy(a);
    zkc_client_destroy(b);
}
END_TEST

/* ------------------------------------------------------------ rwlock: exclusion under load */

#define RW_THREADS 6
#define RW_ITERS 8

typedef struct rw_shared {
    int readers, writers, bad, max_readers, reads, writes;
} rw_shared;

typedef struct rw_worker {
    zkc_client *c;
    const char *path;
    rw_shared *sh;
    unsigned seed;
    int errors;
    char err[256];
} rw_worker;

static void *rw_thread(void *arg)
{
    rw_worker *w = arg;
    zkc_rwlock *rw = NULL;
    if (zkc_rwlock_create(w->c, w->path, &rw) != 0) {
        w->errors++;
        snprintf(w->err, sizeof w->err, "create: %s", zkc_errmsg());
        return NULL;
    }
    rw_shared *s = w->sh;
    for (int i = 0; i < RW_ITERS; i++) {
        int write = rand_r(&w->seed) % 3 == 0;
        zkc_lock *l = write ? zkc_rwlock_write(rw) : zkc_rwlock_read(rw);
        int rc = zkc_lock_acquire(l, tu_ms(30000), NULL);
        if (rc) {
            w->errors++;
            snprintf(w->err, sizeof w->err, "%s acquire %d: %s: %s", write ? "write" : "read", i, zkc_strerror(rc),
                     zkc_errmsg());
            break;
        }
        if (write) {
            __atomic_add_fetch(&s->writes, 1, __ATOMIC_SEQ_CST);
            if (__atomic_add_fetch(&s->writers, 1, __ATOMIC_SEQ_CST) != 1 ||
                __atomic_load_n(&s->readers, __ATOMIC_SEQ_CST) != 0)
                __atomic_add_fetch(&s->bad, 1, __ATOMIC_SEQ_CST);
            tu_nap_ms(10);
            if (__atomic_load_n(&s->readers, __ATOMIC_SEQ_CST) != 0)
                __atomic_add_fetch(&s->bad, 1, __ATOMIC_SEQ_CST);
            __atomic_sub_fetch(&s->writers, 1, __ATOMIC_SEQ_CST);
        } else {
            __atomic_add_fetch(&s->reads, 1, __ATOMIC_SEQ_CST);
            int now = __atomic_add_fetch(&s->readers, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&s->writers, __ATOMIC_SEQ_CST) != 0)
                __atomic_add_fetch(&s->bad, 1, __ATOMIC_SEQ_CST);
            int m = __atomic_load_n(&s->max_readers, __ATOMIC_SEQ_CST);
            while (now > m &&
                   !__atomic_compare_exchange_n(&s->max_readers, &m, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                ;
            tu_nap_ms(15);
            if (__atomic_load_n(&s->writers, __ATOMIC_SEQ_CST) != 0)
                __atomic_add_fetch(&s->bad, 1, __ATOMIC_SEQ_CST);
            __atomic_sub_fetch(&s->readers, 1, __ATOMIC_SEQ_CST);
        }
        rc = zkc_lock_release(l);
        if (rc) {
            w->errors++;
            snprintf(w->err, sizeof w->err, "release %d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
            break;
        }
    }
    zkc_rwlock_destroy(rw);
    return NULL;
}

START_TEST(t_rwlock_exclusion)
{
    char path[128];
    tu_unique_path(path, sizeof path, "rwx");
    static rw_shared sh;
    memset(&sh, 0, sizeof sh);
    zkc_client *cs[2] = {tu_client(tu_hosts()), tu_client(tu_hosts())};
    static rw_worker w[RW_THREADS];
    pthread_t th[RW_THREADS];
    for (int i = 0; i < RW_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].c = cs[i % 2];
        w[i].path = path;
        w[i].sh = &sh;
        w[i].seed = 1234u + (unsigned)i * 7919u;
        ck_assert_int_eq(pthread_create(&th[i], NULL, rw_thread, &w[i]), 0);
    }
    ck_assert_msg(join_all(th, RW_THREADS, tu_ms(45000)), "rwlock contenders did not finish in time");
    for (int i = 0; i < RW_THREADS; i++)
        ck_assert_msg(w[i].errors == 0, "worker %d: %s", i, w[i].err);
    ck_assert_int_eq(sh.reads + sh.writes, RW_THREADS * RW_ITERS);
    ck_assert_msg(sh.bad == 0, "%d exclusion violations (reads %d, writes %d)", sh.bad, sh.reads, sh.writes);
    ck_assert_int_gt(sh.writes, 0);
    ck_assert_int_gt(sh.reads, 0);
    ck_assert(tu_wait_queue_count(cs[0], path, 0, tu_ms(10000)));
    zkc_client_destroy(cs[0]);
    zkc_client_destroy(cs[1]);
}
END_TEST

/* ------------------------------------------------------------ rwlock: writer not starved */

#define WS_LATE 3

/* Readers queued behind a writer are let in by the writer's release alone,
 * with no listing (issue 21): its release writes and deletes its node in one
 * multi, which says "held, so nobody is ahead of it, and gone"; every reader
 * between it and the next writer watches it. The writer was not the head
 * when the readers listed (another writer held), so its deletion alone would
 * not have told them (before: a listing per reader). */
#define RW_READERS 4
START_TEST(t_rwlock_readers_in_without_listing)
{
    zkh_ensemble *e = tu_shared();
    char path[128];
    tu_unique_path(path, sizeof path, "rwnl");
    zkc_client *a = tu_client(tu_hosts());
    zkc_client *b = tu_client(tu_hosts());
    zkc_rwlock *w0 = mkrw(a, path), *w = mkrw(a, path);
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_write(w0), tu_ms(10000), NULL), 0);
    zkc_rwlock *rd[RW_READERS];
    tu_events ev;
    tu_events_init(&ev);
    static rec r[RW_READERS], rw1;
    rw1.ev = &ev;
    rw1.idx = 100;
    ck_assert_int_eq(zkc_lock_acquire_async(zkc_rwlock_write(w), tu_ms(30000), rec_cb, &rw1), 0);
    ck_assert(tu_wait_queue_count(a, path, 2, tu_ms(10000)));
    for (int i = 0; i < RW_READERS; i++) {
        rd[i] = mkrw(b, path);
        r[i].ev = &ev;
        r[i].idx = i;
        ck_assert_int_eq(zkc_lock_acquire_async(zkc_rwlock_read(rd[i]), tu_ms(30000), rec_cb, &r[i]), 0);
    }
    ck_assert(tu_wait_queue_count(a, path, 2 + RW_READERS, tu_ms(10000)));
    zkc_lock_contender *q = NULL;
    int n = 0;
    ck_assert_int_eq(zkc_lock_contenders(a, path, &q, &n), 0);
    ck_assert_int_eq(n, 2 + RW_READERS);
    char wnode[512];
    snprintf(wnode, sizeof wnode, "%s/%s", path, q[1].name);
    int64_t bsid = q[2].session_id;
    zkc_lock_contenders_free(q, n);
    /* Every reader has decided (the writer's node is watched by client b: one
     * server watch per session and path), and listed. */
    tu_watch wl[64];
    int nw = 0, seen = 0;
    long long deadline = tu_now_ms() + tu_ms(10000);
    do {
        nw = tu_watches_under(e, path, wl, 64);
        seen = 0;
        for (int i = 0; i < nw; i++)
            seen |= wl[i].session == bsid && !strcmp(wl[i].path, wnode);
        if (!seen)
            tu_nap_ms(50);
    } while (!seen && tu_now_ms() < deadline);
    ck_assert_msg(seen, "the readers do not watch the writer's node");
    zkc_stats s0, s1;
    long long until = tu_now_ms() + tu_ms(10000);
    /* Until every reader's listing has come back (one shared listing may
     * still be out when the watch shows). */
    do {
        zkc_client_stats(b, &s0);
        tu_nap_ms(50);
        zkc_client_stats(b, &s1);
    } while (s1.requests_total != s0.requests_total && tu_now_ms() < until);
    ck_assert_int_eq(tu_events_total(&ev), 0);
    /* The first writer leaves: the second holds, the readers still wait. */
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_write(w0)), 0);
    ck_assert_msg(wait_granted(&ev, 100, tu_ms(10000)), "the second writer was not granted");
    ck_assert_int_eq(tu_events_total(&ev), 1);
    zkc_client_stats(b, &s0);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_write(w)), 0);
    for (int i = 0; i < RW_READERS; i++)
        ck_assert_msg(wait_granted(&ev, i, tu_ms(10000)), "reader %d not granted after the writer left", i);
    zkc_client_stats(b, &s1);
    ck_assert_msg(s1.requests[ZKC_REQ_CHILDREN] == s0.requests[ZKC_REQ_CHILDREN],
                  "%llu listings to let %d readers in after the writer left",
                  (unsigned long long)(s1.requests[ZKC_REQ_CHILDREN] - s0.requests[ZKC_REQ_CHILDREN]), RW_READERS);
    for (int i = 0; i < RW_READERS; i++) {
        ck_assert(holds(zkc_rwlock_read(rd[i])));
        ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(rd[i])), 0);
        zkc_rwlock_destroy(rd[i]);
    }
    zkc_rwlock_destroy(w);
    zkc_rwlock_destroy(w0);
    zkc_client_destroy(b);
    zkc_client_destroy(a);
    tu_events_destroy(&ev);
}
END_TEST

START_TEST(t_rwlock_writer_not_starved)
{
    char path[128];
    tu_unique_path(path, sizeof path, "rws");
    zkc_client *a = tu_client(tu_hosts());
    zkc_client *b = tu_client(tu_hosts());
    zkc_rwlock *r1 = mkrw(a, path), *wr = mkrw(b, path);
    zkc_rwlock *late[WS_LATE];
    for (int i = 0; i < WS_LATE; i++)
        late[i] = mkrw(i % 2 ? a : b, path);
    tu_events ev;
    tu_events_init(&ev);
    static rec r[1 + WS_LATE];

    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_read(r1), tu_ms(10000), NULL), 0);
    r[0].ev = &ev;
    r[0].idx = 0; /* the writer */
    ck_assert_int_eq(zkc_lock_acquire_async(zkc_rwlock_write(wr), tu_ms(60000), rec_cb, &r[0]), 0);
    ck_assert(tu_wait_queue_count(a, path, 2, tu_ms(10000)));
    /* A stream of readers arriving after the writer: each waits for it. */
    for (int i = 0; i < WS_LATE; i++) {
        r[1 + i].ev = &ev;
        r[1 + i].idx = 1 + i;
        ck_assert_int_eq(zkc_lock_acquire_async(zkc_rwlock_read(late[i]), tu_ms(60000), rec_cb, &r[1 + i]), 0);
        ck_assert(tu_wait_queue_count(a, path, 3 + i, tu_ms(10000)));
    }
    /* The queue says only the first reader holds. */
    int nh = 0;
    ck_assert_int_eq(queue_holds(a, path, 0, &nh), 2 + WS_LATE);
    ck_assert_msg(nh == 1, "%d entries hold while one reader holds and a writer waits", nh);
    ck_assert_int_eq(tu_events_total(&ev), 0);
    /* A late reader also gets nothing with a try. */
    zkc_rwlock *tryr = mkrw(a, path);
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_read(tryr), 0, NULL), ZKC_ETIMEDOUT);
    zkc_rwlock_destroy(tryr);
    ck_assert_msg(tu_events_total(&ev) == 0, "a reader queued behind a writer was granted before it");

    /* The reader leaves: the writer goes first, the late readers still wait. */
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(r1)), 0);
    ck_assert_msg(wait_granted(&ev, 0, tu_ms(10000)), "writer not granted after the reader left");
    ck_assert_int_eq(granted(&ev, 0), 1);
    for (int i = 0; i < WS_LATE; i++)
        ck_assert_msg(granted(&ev, 1 + i) == 0, "late reader %d granted while the writer holds", i);
    long long at;
    int64_t v;
    ck_assert_int_eq(tu_events_get(&ev, 0, &at, &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_write(wr)), 0);
    for (int i = 0; i < WS_LATE; i++)
        ck_assert_msg(wait_granted(&ev, 1 + i, tu_ms(10000)), "late reader %d not granted after the writer", i);
    /* All late readers hold together. */
    for (int i = 0; i < WS_LATE; i++)
        ck_assert_int_eq(holds(zkc_rwlock_read(late[i])), 1);
    ck_assert_int_eq(tu_events_total(&ev), 1 + WS_LATE);
    for (int i = 0; i < WS_LATE; i++) {
        ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(late[i])), 0);
        zkc_rwlock_destroy(late[i]);
    }
    zkc_rwlock_destroy(r1);
    zkc_rwlock_destroy(wr);
    ck_assert(tu_wait_queue_count(a, path, 0, tu_ms(10000)));
    zkc_client_destroy(a);
    zkc_client_destroy(b);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ multilock */

#define ML_PATHS 5
#define ML_THREADS 6
#define ML_CLIENTS 3
#define ML_ITERS 8

typedef struct ml_shared {
    char paths[ML_PATHS][160];
    int holders[ML_PATHS];
    int overlaps, successes, timeouts;
} ml_shared;

typedef struct ml_worker {
    zkc_client *c;
    ml_shared *sh;
    unsigned seed;
    int errors;
    char err[256];
} ml_worker;

static void *ml_thread(void *arg)
{
    ml_worker *w = arg;
    ml_shared *s = w->sh;
    zkc_lock *mine[ML_PATHS] = {0};
    for (int p = 0; p < ML_PATHS; p++)
        if (zkc_lock_create(w->c, s->paths[p], &mine[p]) != 0) {
            w->errors++;
            snprintf(w->err, sizeof w->err, "create %d: %s", p, zkc_errmsg());
            goto out;
        }
    for (int i = 0; i < ML_ITERS; i++) {
        int k = 2 + rand_r(&w->seed) % 2, idx[3], n = 0;
        while (n < k) {
            int p = rand_r(&w->seed) % ML_PATHS, dup = 0;
            for (int j = 0; j < n; j++)
                dup |= idx[j] == p;
            if (!dup)
                idx[n++] = p;
        }
        zkc_lock *set[3];
        for (int j = 0; j < n; j++)
            set[j] = mine[idx[j]];
        zkc_multilock *m = NULL;
        if (zkc_multilock_create(set, n, &m) != 0) {
            w->errors++;
            snprintf(w->err, sizeof w->err, "multilock_create: %s", zkc_errmsg());
            break;
        }
        int rc = zkc_multilock_acquire(m, tu_ms(1500));
        if (rc == 0) {
            __atomic_add_fetch(&s->successes, 1, __ATOMIC_SEQ_CST);
            for (int j = 0; j < n; j++) {
                if (!holds(set[j])) {
                    w->errors++;
                    snprintf(w->err, sizeof w->err, "iteration %d: lock %d not held after acquire", i, idx[j]);
                }
                if (__atomic_add_fetch(&s->holders[idx[j]], 1, __ATOMIC_SEQ_CST) > 1)
                    __atomic_add_fetch(&s->overlaps, 1, __ATOMIC_SEQ_CST);
            }
            tu_nap_ms(5);
            for (int j = 0; j < n; j++)
                __atomic_sub_fetch(&s->holders[idx[j]], 1, __ATOMIC_SEQ_CST);
            rc = zkc_multilock_release(m);
            if (rc) {
                w->errors++;
                snprintf(w->err, sizeof w->err, "release %d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
            }
        } else if (rc == ZKC_ETIMEDOUT) {
            __atomic_add_fetch(&s->timeouts, 1, __ATOMIC_SEQ_CST);
        } else {
            w->errors++;
            snprintf(w->err, sizeof w->err, "acquire %d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
        }
        /* Either way nothing of this thread is held any more. */
        for (int p = 0; p < ML_PATHS; p++) {
            int64_t t;
            if (zkc_lock_token(mine[p], &t) != ZKC_ENOTHELD) {
                w->errors++;
                snprintf(w->err, sizeof w->err, "iteration %d (rc %s): lock %d still held", i, zkc_strerror(rc), p);
            }
        }
        zkc_multilock_destroy(m);
        if (w->errors)
            break;
    }
out:
    for (int p = 0; p < ML_PATHS; p++)
        if (mine[p])
            zkc_lock_destroy(mine[p]);
    return NULL;
}

START_TEST(t_multilock_no_deadlock)
{
    char base[128];
    tu_unique_path(base, sizeof base, "ml");
    static ml_shared sh;
    memset(&sh, 0, sizeof sh);
    for (int p = 0; p < ML_PATHS; p++)
        snprintf(sh.paths[p], sizeof sh.paths[p], "%s/m%d", base, p);
    zkc_client *cs[ML_CLIENTS];
    for (int i = 0; i < ML_CLIENTS; i++)
        cs[i] = tu_client(tu_hosts());
    static ml_worker w[ML_THREADS];
    pthread_t th[ML_THREADS];
    long long t0 = tu_now_ms();
    for (int i = 0; i < ML_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].c = cs[i % ML_CLIENTS];
        w[i].sh = &sh;
        w[i].seed = 42u + (unsigned)i * 104729u;
        ck_assert_int_eq(pthread_create(&th[i], NULL, ml_thread, &w[i]), 0);
    }
    ck_assert_msg(join_all(th, ML_THREADS, tu_ms(45000)), "multilock contenders did not finish in time (deadlock?)");
    fprintf(stderr, "multilock: %d successes, %d timeouts in %lld ms\n", sh.successes, sh.timeouts,
            tu_now_ms() - t0);
    for (int i = 0; i < ML_THREADS; i++)
        ck_assert_msg(w[i].errors == 0, "worker %d: %s", i, w[i].err);
    ck_assert_int_eq(sh.successes + sh.timeouts, ML_THREADS * ML_ITERS);
    ck_assert_msg(sh.overlaps == 0, "%d entries found a path already held", sh.overlaps);
    ck_assert_int_gt(sh.successes, ML_THREADS * ML_ITERS / 2);
    for (int p = 0; p < ML_PATHS; p++) {
        ck_assert_msg(tu_wait_queue_count(cs[0], sh.paths[p], 0, tu_ms(10000)), "queue %s not empty", sh.paths[p]);
        zkc_lock_contender *q = NULL;
        int n = -1;
        ck_assert_int_eq(zkc_lock_contenders(cs[0], sh.paths[p], &q, &n), 0);
        ck_assert_int_eq(n, 0);
        zkc_lock_contenders_free(q, n);
    }
    for (int i = 0; i < ML_CLIENTS; i++)
        zkc_client_destroy(cs[i]);
}
END_TEST

START_TEST(t_multilock_timeout_all_or_nothing)
{
    char base[128];
    tu_unique_path(base, sizeof base, "mlt");
    char paths[4][160];
    for (int p = 0; p < 4; p++)
        snprintf(paths[p], sizeof paths[p], "%s/m%d", base, p);
    zkc_client *a = tu_client(tu_hosts());
    zkc_client *b = tu_client(tu_hosts());
    /* Held elsewhere: m2, the third in canonical order (taken after m0, m1). */
    zkc_lock *other = mklock(a, paths[2]);
    ck_assert_int_eq(zkc_lock_acquire(other, tu_ms(10000), NULL), 0);
    zkc_lock *mine[4];
    /* Given out of order: the canonical order must not depend on it. */
    int order[4] = {3, 2, 0, 1};
    for (int i = 0; i < 4; i++)
        mine[i] = mklock(b, paths[order[i]]);
    zkc_multilock *m = NULL;
    ck_assert_int_eq(zkc_multilock_create(mine, 4, &m), 0);
    long long t0 = tu_now_ms();
    int rc = zkc_multilock_acquire(m, tu_ms(800));
    long long dt = tu_now_ms() - t0;
    ck_assert_msg(rc == ZKC_ETIMEDOUT, "multilock with m2 held elsewhere: %s (%s)", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_ge(dt, tu_ms(800) - 50);
    ck_assert_int_le(dt, tu_ms(800) + tu_ms(5000));
    for (int i = 0; i < 4; i++) {
        int64_t t;
        ck_assert_msg(zkc_lock_token(mine[i], &t) == ZKC_ENOTHELD, "%s still held after the timeout",
                      paths[order[i]]);
        ck_assert_int_eq(zkc_lock_is_held(mine[i]), 0);
    }
    /* The servers agree: only the other holder is queued anywhere. */
    for (int p = 0; p < 4; p++)
        ck_assert_msg(tu_wait_queue_count(a, paths[p], p == 2 ? 1 : 0, tu_ms(10000)), "queue %s: %d entries",
                      paths[p], tu_queue_count(a, paths[p]));
    ck_assert_int_eq(queue_holds(b, paths[2], tu_session_id(b), NULL), 0);
    /* A try fails at once too, and leaves nothing. */
    rc = zkc_multilock_acquire(m, 0);
    ck_assert_int_eq(rc, ZKC_ETIMEDOUT);
    for (int i = 0; i < 4; i++) {
        int64_t t;
        ck_assert_int_eq(zkc_lock_token(mine[i], &t), ZKC_ENOTHELD);
    }
    /* Once m2 is free the same multilock takes all four. */
    ck_assert_int_eq(zkc_lock_release(other), 0);
    rc = zkc_multilock_acquire(m, tu_ms(10000));
    ck_assert_msg(rc == 0, "multilock after release: %s (%s)", zkc_strerror(rc), zkc_errmsg());
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(holds(mine[i]), 1);
    ck_assert_int_eq(zkc_lock_acquire(other, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_multilock_release(m), 0);
    for (int i = 0; i < 4; i++) {
        int64_t t;
        ck_assert_int_eq(zkc_lock_token(mine[i], &t), ZKC_ENOTHELD);
    }
    zkc_multilock_destroy(m);
    for (int i = 0; i < 4; i++)
        zkc_lock_destroy(mine[i]);
    zkc_lock_destroy(other);
    for (int p = 0; p < 4; p++)
        ck_assert(tu_wait_queue_count(a, paths[p], 0, tu_ms(10000)));
    zkc_client_destroy(a);
    zkc_client_destroy(b);
}
END_TEST

/* ------------------------------------------------------------ rate limiter */

#define RL_R 20
#define RL_WINDOW 1000
#define RL_THREADS 6
#define RL_RUN_MS 4000
#define RL_MAX_GRANTS 4096

typedef struct rl_shared {
    long long start_ms;
    int n;
    long long at[RL_MAX_GRANTS];
    int errors, timeouts;
    char err[256];
    pthread_mutex_t mu;
} rl_shared;

typedef struct rl_worker {
    zkc_ratelimit *rl;
    rl_shared *sh;
} rl_worker;

static void *rl_thread(void *arg)
{
    rl_worker *w = arg;
    rl_shared *s = w->sh;
    while (tu_now_ms() < s->start_ms + RL_RUN_MS) {
        int rc = zkc_ratelimit_acquire(w->rl, 1, 1500);
        long long t = realtime_ms();
        pthread_mutex_lock(&s->mu);
        if (rc == 0) {
            if (s->n < RL_MAX_GRANTS)
                s->at[s->n] = t;
            s->n++;
        } else if (rc == ZKC_ETIMEDOUT) {
            s->timeouts++;
        } else {
            s->errors++;
            snprintf(s->err, sizeof s->err, "acquire: %s: %s", zkc_strerror(rc), zkc_errmsg());
        }
        pthread_mutex_unlock(&s->mu);
        if (rc != 0 && rc != ZKC_ETIMEDOUT)
            break;
    }
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

START_TEST(t_ratelimit_bounds)
{
    char path[128];
    tu_unique_path(path, sizeof path, "rl");
    static rl_shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.mu, NULL);
    zkc_client *cs[2] = {tu_client(tu_hosts()), tu_client(tu_hosts())};
    zkc_ratelimit *rl[2];
    for (int i = 0; i < 2; i++) {
        int rc = zkc_ratelimit_create(cs[i], path, RL_R, RL_WINDOW, 4, &rl[i]);
        ck_assert_msg(rc == 0, "zkc_ratelimit_create: %s", zkc_errmsg());
    }
    static rl_worker w[RL_THREADS];
    pthread_t th[RL_THREADS];
    long long rt0 = realtime_ms();
    sh.start_ms = tu_now_ms();
    for (int i = 0; i < RL_THREADS; i++) {
        w[i].rl = rl[i % 2];
        w[i].sh = &sh;
        ck_assert_int_eq(pthread_create(&th[i], NULL, rl_thread, &w[i]), 0);
    }
    ck_assert_msg(join_all(th, RL_THREADS, RL_RUN_MS + tu_ms(20000)), "rate limiter threads did not finish");
    long long rt1 = realtime_ms();
    ck_assert_msg(sh.errors == 0, "%d errors: %s", sh.errors, sh.err);
    ck_assert_int_le(sh.n, RL_MAX_GRANTS);
    int n = sh.n;
    qsort(sh.at, (size_t)n, sizeof sh.at[0], cmp_ll);
    long long windows = rt1 / RL_WINDOW - rt0 / RL_WINDOW + 1;
    int max_slide = 0;
    long long max_at = 0;
    for (int i = 0, j = 0; i < n; i++) {
        while (j < n && sh.at[j] < sh.at[i] + RL_WINDOW)
            j++;
        if (j - i > max_slide) {
            max_slide = j - i;
            max_at = sh.at[i];
        }
    }
    fprintf(stderr, "ratelimit: %d grants, %d timeouts over %lld ms (%lld windows), max %d per sliding %d ms\n", n,
            sh.timeouts, rt1 - rt0, windows, max_slide, RL_WINDOW);
    fprintf(stderr, "ratelimit: grants per fixed window:");
    for (long long wi = rt0 / RL_WINDOW; wi <= rt1 / RL_WINDOW; wi++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            k += sh.at[i] / RL_WINDOW == wi;
        fprintf(stderr, " %d", k);
    }
    fprintf(stderr, "\n");
    /* Diagnostics only: a fixed window of our clock over R means the
     * library's windows are not the servers' (our clock) windows. */
    for (long long wi = rt0 / RL_WINDOW; wi <= rt1 / RL_WINDOW; wi++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            k += sh.at[i] / RL_WINDOW == wi;
        if (k <= RL_R)
            continue;
        fprintf(stderr, "ratelimit: window %lld (+%lld ms) has %d grants at ms:", wi, wi * RL_WINDOW - rt0, k);
        for (int i = 0; i < n; i++)
            if (sh.at[i] / RL_WINDOW == wi)
                fprintf(stderr, " %lld", sh.at[i] % RL_WINDOW);
        fprintf(stderr, "\n");
    }
    ck_assert_msg(n <= RL_R * (windows + 1), "%d grants in %lld windows of %d permits", n, windows, RL_R);
    ck_assert_msg(max_slide <= 2 * RL_R, "%d grants within %d ms from %lld (bound %d)", max_slide, RL_WINDOW,
                  max_at - rt0, 2 * RL_R);
    ck_assert_msg(n >= RL_R, "only %d grants in %lld ms", n, rt1 - rt0);
    for (int i = 0; i < 2; i++)
        zkc_ratelimit_destroy(rl[i]);
    for (int i = 0; i < 2; i++)
        zkc_client_destroy(cs[i]);
    pthread_mutex_destroy(&sh.mu);
}
END_TEST

/* Try beyond the window's permits: a long window, so that the test runs in
 * one window; an attempt that straddled a boundary (by our clock, which is
 * the servers') is repeated on a fresh path. */
#define RLT_WINDOW 20000

START_TEST(t_ratelimit_try_exhausted)
{
    zkc_client *a = tu_client(tu_hosts());
    zkc_client *b = tu_client(tu_hosts());
    int done = 0;
    for (int attempt = 0; attempt < 3 && !done; attempt++) {
        char path[128];
        tu_unique_path(path, sizeof path, "rlt");
        zkc_ratelimit *ra = NULL, *rb = NULL;
        ck_assert_int_eq(zkc_ratelimit_create(a, path, RL_R, RLT_WINDOW, 5, &ra), 0);
        ck_assert_int_eq(zkc_ratelimit_create(b, path, RL_R, RLT_WINDOW, 5, &rb), 0);
        long long w0 = realtime_ms() / RLT_WINDOW;
        if (realtime_ms() % RLT_WINDOW > RLT_WINDOW - 5000) {
            /* Too close to a boundary: start in the next window. */
            zkc_ratelimit_destroy(ra);
            zkc_ratelimit_destroy(rb);
            tu_nap_ms((int)(RLT_WINDOW - realtime_ms() % RLT_WINDOW) + 200);
            continue;
        }
        int got = 0, rc = 0;
        for (int i = 0; i < RL_R && rc == 0; i++) {
            rc = zkc_ratelimit_acquire(i % 2 ? rb : ra, 1, tu_ms(5000));
            got += rc == 0;
        }
        long long t0 = tu_now_ms();
        int rca = zkc_ratelimit_acquire(ra, 1, 0);
        long long dta = tu_now_ms() - t0;
        t0 = tu_now_ms();
        int rcb = zkc_ratelimit_acquire(rb, 1, 0);
        long long dtb = tu_now_ms() - t0;
        long long w1 = realtime_ms() / RLT_WINDOW;
        zkc_ratelimit_destroy(ra);
        zkc_ratelimit_destroy(rb);
        if (w1 != w0)
            continue; /* straddled a window boundary */
        ck_assert_msg(rc == 0 && got == RL_R, "took %d of %d permits: %s (%s)", got, RL_R, zkc_strerror(rc),
                      zkc_errmsg());
        ck_assert_msg(rca == ZKC_ETIMEDOUT, "try beyond the window's permits (client a): %s", zkc_strerror(rca));
        ck_assert_msg(rcb == ZKC_ETIMEDOUT, "try beyond the window's permits (client b): %s", zkc_strerror(rcb));
        ck_assert_int_le(dta, tu_ms(1000));
        ck_assert_int_le(dtb, tu_ms(1000));
        done = 1;
    }
    ck_assert_msg(done, "no attempt fit in one window");
    zkc_client_destroy(a);
    zkc_client_destroy(b);
}
END_TEST

/* The hard (GCRA) mode's input checks, its burst, and its refusal of a
 * fixed-window record; its interval bound is measured in the slow tier
 * (tests/test_idgen_faults.c). */
START_TEST(t_ratelimit_hard_bad_input)
{
    zkc_client *c = tu_client(tu_hosts());
    char path[128];
    tu_unique_path(path, sizeof path, "rl-bad");
    zkc_ratelimit *rl = NULL;
    zkc_ratelimit_options o;
    zkc_ratelimit_options_init(&o);
    ck_assert_int_eq(zkc_ratelimit_create_opts(c, path, &o, &rl), ZKC_EINVAL); /* no permits */
    o.permits = 10;
    o.window_ms = 1000;
    o.burst = 0;
    ck_assert_int_eq(zkc_ratelimit_create_opts(c, path, &o, &rl), ZKC_EINVAL);
    ck_assert_msg(strstr(zkc_errmsg(), "burst") != NULL, "%s", zkc_errmsg());
    o.burst = 11;
    ck_assert_int_eq(zkc_ratelimit_create_opts(c, path, &o, &rl), ZKC_EINVAL);
    o.burst = 2;
    o.mode = (zkc_ratelimit_mode)7;
    ck_assert_int_eq(zkc_ratelimit_create_opts(c, path, &o, &rl), ZKC_EINVAL);
    o.mode = ZKC_RL_HARD;
    ck_assert_int_eq(zkc_ratelimit_create_opts(c, path, NULL, &rl), ZKC_EINVAL);
    ck_assert_int_eq(zkc_ratelimit_create_opts(c, path, &o, &rl), 0);
    ck_assert_int_eq(zkc_ratelimit_acquire(rl, 3, 0), ZKC_EINVAL); /* more than the burst */
    ck_assert_msg(strstr(zkc_errmsg(), "burst") != NULL, "%s", zkc_errmsg());
    /* burst 2: two at once, a third not within 0 ms */
    ck_assert_msg(zkc_ratelimit_acquire(rl, 2, tu_ms(5000)) == 0, "2 permits: %s", zkc_errmsg());
    ck_assert_int_eq(zkc_ratelimit_acquire(rl, 1, 0), ZKC_ETIMEDOUT);
    zkc_ratelimit_destroy(rl);
    /* A fixed-window record at the path is refused by a hard-mode client. */
    char fpath[128];
    tu_unique_path(fpath, sizeof fpath, "rl-mixed");
    zkc_ratelimit *fx = NULL, *hx = NULL;
    ck_assert_int_eq(zkc_ratelimit_create(c, fpath, 10, 1000, 1, &fx), 0);
    ck_assert_int_eq(zkc_ratelimit_acquire(fx, 1, tu_ms(5000)), 0);
    ck_assert_int_eq(zkc_ratelimit_create_opts(c, fpath, &o, &hx), 0);
    int rc = zkc_ratelimit_acquire(hx, 1, tu_ms(5000));
    ck_assert_msg(rc == ZKC_ECONFIG, "hard mode on a fixed-window node: %s", zkc_strerror(rc));
    zkc_ratelimit_destroy(hx);
    zkc_ratelimit_destroy(fx);
    zkc_client_destroy(c);
}
END_TEST

/* zkc_ratelimit_acquire_at and its async twin tell where permits count: in
 * hard mode the slots two clients were granted never overlap, in fixed-window
 * mode the start of the window; both near our own clock, which is the
 * servers' here (the ensemble runs on this machine). */
static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct at_grant {
    int64_t at, n;
} at_grant;

static int at_grant_cmp(const void *a, const void *b)
{
    const at_grant *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

static void at_cb(zkc_ratelimit *rl, int status, int64_t at_us, void *ud)
{
    (void)rl;
    tu_events_add(ud, status, at_us);
}

START_TEST(t_ratelimit_at_instants)
{
    enum { PERMITS = 20, WINDOW_MS = 1000, SLOT_US = WINDOW_MS * 1000 / PERMITS, NG = 10 };
    zkc_client *cs[2] = {tu_client(tu_hosts()), tu_client(tu_hosts())};
    char path[128];
    tu_unique_path(path, sizeof path, "rl-at");
    zkc_ratelimit_options o;
    zkc_ratelimit_options_init(&o);
    o.permits = PERMITS;
    o.window_ms = WINDOW_MS;
    o.burst = 2;
    zkc_ratelimit *rl[2];
    for (int i = 0; i < 2; i++) {
        o.batch = 1 + 2 * i; /* the other client reserves runs of 3 */
        ck_assert_int_eq(zkc_ratelimit_create_opts(cs[i], path, &o, &rl[i]), 0);
    }
    ck_assert_int_eq(zkc_ratelimit_acquire_at_async(rl[0], 1, 0, NULL, NULL), ZKC_EINVAL);
    at_grant g[NG];
    tu_events ev;
    tu_events_init(&ev);
    for (int k = 0; k < NG; k++) {
        g[k].n = 1 + k % 2;
        int64_t before = real_us();
        if (k % 3 == 2) {
            ck_assert_int_eq(zkc_ratelimit_acquire_at_async(rl[k % 2], g[k].n, tu_ms(5000), at_cb, &ev), 0);
            ck_assert_msg(tu_events_wait_total(&ev, k / 3 + 1, tu_ms(10000)) >= k / 3 + 1, "grant %d: no callback",
                          k);
            long long t;
            int64_t v;
            int st = tu_events_get(&ev, k / 3, &t, &v);
            ck_assert_msg(st == 0, "grant %d (async): %s", k, zkc_strerror(st));
            g[k].at = v;
        } else {
            int rc = zkc_ratelimit_acquire_at(rl[k % 2], g[k].n, tu_ms(5000), &g[k].at);
            ck_assert_msg(rc == 0, "grant %d: %s", k, zkc_errmsg());
        }
        int64_t after = real_us();
        /* The slots start no earlier than the grant and at most (burst - n)
         * slots after it, give or take the clock estimate (2 s is generous). */
        ck_assert_msg(g[k].at >= before - 2000000 && g[k].at <= after + (o.burst - g[k].n) * SLOT_US + 2000000,
                      "grant %d: at %lld, real clock %lld..%lld", k, (long long)g[k].at, (long long)before,
                      (long long)after);
    }
    qsort(g, NG, sizeof g[0], at_grant_cmp);
    for (int k = 1; k < NG; k++)
        ck_assert_msg(g[k].at >= g[k - 1].at + g[k - 1].n * SLOT_US,
                      "slots overlap: %lld (+%lld permits) then %lld", (long long)g[k - 1].at,
                      (long long)g[k - 1].n, (long long)g[k].at);
    ck_assert_int_eq(zkc_ratelimit_acquire_at(rl[0], 1, tu_ms(5000), NULL), 0); /* at_us may be NULL */
    for (int i = 0; i < 2; i++)
        zkc_ratelimit_destroy(rl[i]);
    tu_events_destroy(&ev);

    /* Fixed window: the window's start. */
    char fpath[128];
    tu_unique_path(fpath, sizeof fpath, "rl-at-fixed");
    zkc_ratelimit *fx = NULL;
    ck_assert_int_eq(zkc_ratelimit_create(cs[0], fpath, 10, WINDOW_MS, 2, &fx), 0);
    int64_t at = -1, before = real_us();
    ck_assert_int_eq(zkc_ratelimit_acquire_at(fx, 1, tu_ms(5000), &at), 0);
    ck_assert_msg(at % (WINDOW_MS * 1000) == 0 && at > before - WINDOW_MS * 1000 - 2000000 &&
                      at <= real_us() + 2000000,
                  "fixed window: at %lld, real clock %lld", (long long)at, (long long)before);
    zkc_ratelimit_destroy(fx);
    zkc_client_destroy(cs[0]);
    zkc_client_destroy(cs[1]);
}
END_TEST

/* ------------------------------------------------------------ suite */

#define CASE(s, fn) TU_CASE(s, fn, 90 * tu_scale())

static Suite *recipes_suite(void)
{
    Suite *s = suite_create("recipes");
    CASE(s, t_semaphore_bound);
    CASE(s, t_semaphore_config_and_watches);
    CASE(s, t_semaphore_holder_killed);
    CASE(s, t_rwlock_readers_share_downgrade);
    CASE(s, t_rwlock_exclusion);
    CASE(s, t_rwlock_writer_not_starved);
    CASE(s, t_rwlock_readers_in_without_listing);
    CASE(s, t_multilock_no_deadlock);
    CASE(s, t_multilock_timeout_all_or_nothing);
    /* Timing-sensitive (grants counted per window over a fixed run): heavy tier. */
    TU_HEAVY_CASE(s, t_ratelimit_bounds, 90 * tu_scale());
    CASE(s, t_ratelimit_try_exhausted);
    CASE(s, t_ratelimit_hard_bad_input);
    CASE(s, t_ratelimit_at_instants);
    CASE(s, t_semaphore_queue_holds);
    CASE(s, t_semaphore_release_races_watch);
    CASE(s, t_semaphore_kick_races_watch);
    CASE(s, t_semaphore_drain_without_listing);
    return s;
}

int main(void)
{
    return tu_main(recipes_suite(), TU_SHARED_ENSEMBLE);
}
