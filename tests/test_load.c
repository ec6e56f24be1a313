/* Load suite (issue 9): `make check-load` (also run by `make check-chaos`).
 *
 *   test_thousands_of_waiters  LOAD_WAITERS (2000) lock objects of ONE client
 *       on one path: async acquires, then each released in turn. All are
 *       granted, in arrival (FIFO) order; the memory each waiter costs while
 *       queued is measured (mallinfo2 in-use bytes and RSS) and bounded; no
 *       herd: each release wakes one waiter (bounded number of listings).
 *   test_hundreds_of_clients   LOAD_CLIENTS (300) clients in one process (the
 *       harness raises maxClientCnxns to 1000): every one queues on one lock
 *       and adds to one counter; all granted FIFO, the counter exact. After
 *       they are destroyed, no file descriptor and no thread is left over
 *       (/proc/self/fd and /proc/self/task counted before and after).
 * Both print their measurements. Env LOAD_WAITERS / LOAD_CLIENTS override the
 * sizes; every wait is bounded.
 */
#include "testutil.h"

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Generous ceilings: a waiter is a lock object, its queue node's name, two
 * watch cells and a few requests in flight; a few KB. */
#define MAX_HEAP_PER_WAITER 16384
#define MAX_RSS_PER_WAITER 65536

/* AddressSanitizer has its own allocator (mallinfo2 sees nothing) and shadow
 * memory (RSS balloons): measured and printed, not bounded, there. */
#if defined(__SANITIZE_ADDRESS__)
#define MEMORY_BOUNDED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEMORY_BOUNDED 0
#endif
#endif
#ifndef MEMORY_BOUNDED
#define MEMORY_BOUNDED 1
#endif

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    int v = s && *s ? atoi(s) : 0;
    return v > 0 ? v : dflt;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - (strcmp(path, "/proc/self/fd") == 0); /* the DIR's own fd */
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* Children of path through a raw handle: cheap, no stat per child. */
static int raw_children(zhandle_t *zh, const char *path)
{
    struct String_vector sv = {0, NULL};
    int rc = zoo_get_children(zh, path, 0, &sv);
    if (rc != ZOK)
        return rc == ZNONODE ? 0 : -1;
    int n = sv.count;
    deallocate_String_vector(&sv);
    return n;
}

static int wait_children(zhandle_t *zh, const char *path, int want, int timeout_ms)
{
    long long end = tu_now_ms() + timeout_ms;
    int n;
    while ((n = raw_children(zh, path)) != want && tu_now_ms() < end)
        tu_nap_ms(50); /* polling the server: queue length is no event */
    return n;
}

/* Grants in the order they came. */
typedef struct grants {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int *order;
    int n, errors, last_err;
} grants;

typedef struct slot {
    grants *g;
    int idx;
} slot;

static void on_grant(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    (void)token;
    slot *s = ud;
    grants *g = s->g;
    pthread_mutex_lock(&g->mu);
    if (status == 0) {
        g->order[g->n++] = s->idx;
    } else {
        g->errors++;
        g->last_err = status;
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Wait until at least n grants (or an error); bounded. */
static int wait_grants(grants *g, int n, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    while (g->n < n && !g->errors)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) != 0)
            break;
    int r = g->n;
    pthread_mutex_unlock(&g->mu);
    return r;
}

static void grants_init(grants *g, int n)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    g->order = calloc((size_t)n, sizeof *g->order);
    ck_assert_ptr_nonnull(g->order);
}

static void grants_destroy(grants *g)
{
    free(g->order);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

START_TEST(test_thousands_of_waiters)
{
    int n = env_int("LOAD_WAITERS", 2000);
    char path[256];
    tu_unique_path(path, sizeof path, "load-waiters");
    int fd0 = count_dir("/proc/self/fd"), th0 = count_dir("/proc/self/task");
    zkc_client *c = tu_client(tu_hosts());
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    zkc_lock **l = calloc((size_t)n, sizeof *l);
    slot *s = calloc((size_t)n, sizeof *s);
    grants g;
    grants_init(&g, n);
    /* The first holds; then memory is measured around the n - 1 waiters. */
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(zkc_lock_create(c, path, &l[i]), 0);
        s[i].g = &g;
        s[i].idx = i;
    }
    ck_assert_int_eq(zkc_lock_acquire_async(l[0], ZKC_FOREVER, on_grant, &s[0]), 0);
    ck_assert_int_eq(wait_grants(&g, 1, tu_ms(20000)), 1);
    malloc_trim(0);
    struct mallinfo2 m0 = mallinfo2();
    long rss0 = rss_bytes();
    long long t0 = tu_now_ms();
    /* One thread submits in order; one session's creates are applied in the
     * order sent, so the queue order is the submission order. */
    for (int i = 1; i < n; i++)
        ck_assert_int_eq(zkc_lock_acquire_async(l[i], ZKC_FOREVER, on_grant, &s[i]), 0);
    int queued = wait_children(tu_raw_zh(raw), path, n, tu_ms(120000));
    ck_assert_msg(queued == n, "%d of %d contenders queued", queued, n);
    long long t_queued = tu_now_ms();
    /* Settled: every waiter has listed the queue and watches its predecessor. */
    zkc_stats st0;
    zkc_client_stats(c, &st0);
    for (int k = 0; k < 200; k++) { /* until the listing count stops moving (bounded) */
        tu_nap_ms(100);
        zkc_stats st;
        zkc_client_stats(c, &st);
        if (st.requests[ZKC_REQ_CHILDREN] == st0.requests[ZKC_REQ_CHILDREN] &&
            st.requests[ZKC_REQ_GET] == st0.requests[ZKC_REQ_GET])
            break;
        st0 = st;
    }
    struct mallinfo2 m1 = mallinfo2();
    long rss1 = rss_bytes();
    double heap_per = ((double)m1.uordblks - (double)m0.uordblks) / (n - 1);
    double rss_per = ((double)rss1 - (double)rss0) / (n - 1);
    long fd_mid = count_dir("/proc/self/fd"), th_mid = count_dir("/proc/self/task");
    printf("load: %d waiters on one lock, one client: queued in %.1f s; heap %.0f B/waiter, RSS %.0f B/waiter; "
           "fds %d -> %ld, threads %d -> %ld while waiting\n",
           n, (t_queued - t0) / 1000.0, heap_per, rss_per, fd0, fd_mid, th0, th_mid);
    if (MEMORY_BOUNDED) {
        ck_assert_msg(heap_per < MAX_HEAP_PER_WAITER, "heap per waiter %.0f B >= %d", heap_per, MAX_HEAP_PER_WAITER);
        ck_assert_msg(rss_per < MAX_RSS_PER_WAITER, "RSS per waiter %.0f B >= %d", rss_per, MAX_RSS_PER_WAITER);
    } else {
        printf("load: memory per waiter not bounded under AddressSanitizer\n");
    }
    /* Waiting costs no threads or descriptors per waiter. */
    ck_assert_int_le(fd_mid, fd0 + 16);
    ck_assert_int_le(th_mid, th0 + 8);
    /* Release in turn: each release admits exactly the next one. */
    zkc_stats sb;
    zkc_client_stats(c, &sb);
    long long t1 = tu_now_ms();
    for (int i = 0; i < n; i++) {
        ck_assert_msg(wait_grants(&g, i + 1, tu_ms(30000)) >= i + 1, "grant %d never came (%d errors, last %s)", i,
                      g.errors, zkc_strerror(g.last_err));
        ck_assert_int_eq(g.order[i], i);
        ck_assert_int_eq(zkc_lock_release(l[i]), 0);
    }
    long long t2 = tu_now_ms();
    zkc_stats se;
    zkc_client_stats(c, &se);
    uint64_t lists = se.requests[ZKC_REQ_CHILDREN] - sb.requests[ZKC_REQ_CHILDREN];
    printf("load: %d grants FIFO in %.1f s (%.1f ms per hand-off), %llu queue listings during hand-offs\n", n,
           (t2 - t1) / 1000.0, (double)(t2 - t1) / n, (unsigned long long)lists);
    ck_assert_int_eq(g.errors, 0);
    /* No herd: a release wakes its successor only (one listing per hand-off,
     * a few more for retries), not every waiter. */
    ck_assert_msg(lists <= (uint64_t)n * 3, "%llu listings for %d hand-offs: a herd", (unsigned long long)lists, n);
    ck_assert_int_eq(wait_children(tu_raw_zh(raw), path, 0, tu_ms(20000)), 0);
    for (int i = 0; i < n; i++)
        zkc_lock_destroy(l[i]);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_rmr(raw, path);
    tu_raw_close(raw);
    grants_destroy(&g);
    free(l);
    free(s);
    int fd1 = count_dir("/proc/self/fd"), th1 = count_dir("/proc/self/task");
    printf("load: after: fds %d -> %d, threads %d -> %d\n", fd0, fd1, th0, th1);
    ck_assert_int_eq(fd1, fd0);
    ck_assert_int_eq(th1, th0);
}
END_TEST

typedef struct ctr_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ok, failed;
} ctr_done;

static void on_add(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    (void)r;
    ctr_done *d = ud;
    pthread_mutex_lock(&d->mu);
    if (status == 0)
        d->ok++;
    else
        d->failed++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

START_TEST(test_hundreds_of_clients)
{
    int n = env_int("LOAD_CLIENTS", 300);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(n * 6 + 256) && rl.rlim_max >= (rlim_t)(n * 6 + 256)) {
        rl.rlim_cur = (rlim_t)(n * 6 + 256);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char path[256], cpath[300];
    tu_unique_path(path, sizeof path, "load-clients");
    snprintf(cpath, sizeof cpath, "%s-ctr", path);
    int fd0 = count_dir("/proc/self/fd"), th0 = count_dir("/proc/self/task");
    long rss0 = rss_bytes();
    long long t0 = tu_now_ms();
    zkc_client **c = calloc((size_t)n, sizeof *c);
    zkc_lock **l = calloc((size_t)n, sizeof *l);
    zkc_counter **k = calloc((size_t)n, sizeof *k);
    slot *s = calloc((size_t)n, sizeof *s);
    for (int i = 0; i < n; i++) {
        c[i] = tu_client(tu_hosts());
        ck_assert_int_eq(zkc_lock_create(c[i], path, &l[i]), 0);
        ck_assert_int_eq(zkc_counter_create(c[i], cpath, NULL, &k[i]), 0);
    }
    long long t_conn = tu_now_ms();
    int fd_mid = count_dir("/proc/self/fd"), th_mid = count_dir("/proc/self/task");
    long rss_mid = rss_bytes();
    printf("load: %d clients connected in %.1f s: fds %d -> %d, threads %d -> %d, RSS +%.1f MB\n", n,
           (t_conn - t0) / 1000.0, fd0, fd_mid, th0, th_mid, (rss_mid - rss0) / 1048576.0);
    /* Every client adds once (async) and queues once on the shared lock,
     * each queued before the next asks: the grants must follow that order. */
    ctr_done d;
    memset(&d, 0, sizeof d);
    pthread_mutex_init(&d.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d.cv, &ca);
    pthread_condattr_destroy(&ca);
    grants g;
    grants_init(&g, n);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(zkc_counter_add_async(k[i], 1, NULL, on_add, &d), 0);
        s[i].g = &g;
        s[i].idx = i;
        ck_assert_int_eq(zkc_lock_acquire_async(l[i], ZKC_FOREVER, on_grant, &s[i]), 0);
        ck_assert_int_eq(wait_children(tu_raw_zh(raw), path, i + 1, tu_ms(20000)), i + 1);
    }
    for (int i = 0; i < n; i++) {
        ck_assert_msg(wait_grants(&g, i + 1, tu_ms(20000)) >= i + 1, "grant %d never came (%d errors, last %s)", i,
                      g.errors, zkc_strerror(g.last_err));
        ck_assert_int_eq(g.order[i], i);
        ck_assert_int_eq(zkc_lock_release(l[i]), 0);
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += tu_ms(30000) / 1000;
    pthread_mutex_lock(&d.mu);
    while (d.ok + d.failed < n)
        if (pthread_cond_timedwait(&d.cv, &d.mu, &dl) != 0)
            break;
    int ok = d.ok, failed = d.failed;
    pthread_mutex_unlock(&d.mu);
    ck_assert_int_eq(ok, n);
    ck_assert_int_eq(failed, 0);
    int64_t v = 0;
    /* the other clients' adds may end after c[0]'s last write: a fresh read */
    ck_assert_int_eq(zkc_counter_get_fresh(k[0], &v), 0);
    ck_assert_int_eq(v, n);
    long long t_work = tu_now_ms();
    for (int i = 0; i < n; i++) {
        zkc_lock_destroy(l[i]);
        zkc_counter_destroy(k[i]);
        ck_assert_int_eq(zkc_client_destroy(c[i]), 0);
    }
    long long t_done = tu_now_ms();
    ck_assert_int_eq(wait_children(tu_raw_zh(raw), path, 0, tu_ms(20000)), 0);
    tu_raw_rmr(raw, path);
    tu_raw_rmr(raw, cpath);
    tu_raw_close(raw);
    grants_destroy(&g);
    free(c);
    free(l);
    free(k);
    free(s);
    int fd1 = count_dir("/proc/self/fd"), th1 = count_dir("/proc/self/task");
    printf("load: %d clients: work %.1f s, destroyed in %.1f s; after: fds %d -> %d, threads %d -> %d\n", n,
           (t_work - t_conn) / 1000.0, (t_done - t_work) / 1000.0, fd0, fd1, th0, th1);
    ck_assert_msg(fd_mid >= fd0 + n, "only %d descriptors for %d clients: are they connected?", fd_mid - fd0, n);
    ck_assert_int_eq(fd1, fd0);
    ck_assert_int_eq(th1, th0);
}
END_TEST

static Suite *load_suite(void)
{
    Suite *s = suite_create("load");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 600 * tu_scale());
    tcase_add_test(tc, test_thousands_of_waiters);
    tcase_add_test(tc, test_hundreds_of_clients);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return tu_main(load_suite(), 1);
}
