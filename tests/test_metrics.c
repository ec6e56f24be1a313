/* Client metrics (lib/metrics.c), fast tier: a fresh client does a known set
 * of operations on a real ensemble; then its struct and its Prometheus
 * exposition must say exactly that. The exposition is checked by the real
 * text-format parser of python3-prometheus-client (tests/metrics_check.py),
 * run with /usr/bin/python3: counts, histogram counts, bucket monotonicity,
 * HELP/TYPE, the constant and prefix labels.
 *
 * Exact numbers need quiet: everything below is done by one client on fresh
 * paths, blocking, so each operation has completed when the next starts; the
 * recipes that use counters inside (id generator, rate limiter) work outside
 * the labelled prefix, and the exact counter checks are on that prefix. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ZKC_SRCDIR
#define ZKC_SRCDIR "."
#endif

#define PY "/usr/bin/python3"

static int python_ok(void)
{
    return system(PY " -c 'import prometheus_client.parser' >/dev/null 2>&1") == 0;
}

/* Run the checker on the exposition in `expo` with the expectations in `exp`. */
static int run_check(const char *expo, const char *exp)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, PY " %s/tests/metrics_check.py %s %s", ZKC_SRCDIR, expo, exp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static void expect(FILE *f, const char *name, const char *labels, const char *op, double v)
{
    fprintf(f, "%s %s %s %.17g\n", name, labels, op, v);
}

static void ops_expect(FILE *f, const char *kind, const char *prefix, uint64_t started, uint64_t ok,
                       const char *err, uint64_t nerr)
{
    char l[256];
    snprintf(l, sizeof l, "kind=%s%s%s", kind, prefix ? ",prefix=" : "", prefix ? prefix : "");
    expect(f, "zkc_operations_started_total", l, "==", (double)started);
    expect(f, "zkc_operations_in_flight", l, "==", 0);
    snprintf(l, sizeof l, "kind=%s,result=ok%s%s", kind, prefix ? ",prefix=" : "", prefix ? prefix : "");
    expect(f, "zkc_operations_total", l, "==", (double)ok);
    if (err) {
        snprintf(l, sizeof l, "kind=%s,result=%s%s%s", kind, err, prefix ? ",prefix=" : "", prefix ? prefix : "");
        expect(f, "zkc_operations_total", l, "==", (double)nerr);
    }
}

static int adds_left;
static pthread_mutex_t adds_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t adds_cv = PTHREAD_COND_INITIALIZER;

static void on_add(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    (void)r;
    (void)ud;
    ck_assert_int_eq(status, 0);
    pthread_mutex_lock(&adds_mu);
    if (--adds_left == 0)
        pthread_cond_signal(&adds_cv);
    pthread_mutex_unlock(&adds_mu);
}

START_TEST(t_known_operations)
{
    if (!python_ok()) {
        ck_assert_msg(!getenv("CI") || strcmp(getenv("CI"), "true") != 0,
                      "python3-prometheus-client is not installed (scripts/bootstrap.sh --with-test-deps)");
        fprintf(stderr, "test_metrics: SKIP: python3-prometheus-client is not installed\n");
        return;
    }
    zkc_client *c = tu_client(tu_hosts());
    char root[128], p[320], p2[320], sku[200];
    tu_unique_path(root, sizeof root, "metrics");
    snprintf(sku, sizeof sku, "%s/sku", root);
    ck_assert_int_eq(zkc_client_metrics_label_prefix(c, sku, "sku"), 0);
    ck_assert_int_eq(zkc_client_metrics_label_prefix(c, "relative", "x"), ZKC_EINVAL);
    ck_assert_int_eq(zkc_client_metrics_label_prefix(c, "/x", "bad label"), ZKC_EINVAL);
    ck_assert_int_eq(zkc_client_metrics_const_label(c, "test", "metrics \"q\""), 0);
    ck_assert_int_eq(zkc_client_metrics_const_label(c, "le", "x"), ZKC_EINVAL);

    /* Locks: 3 holds, then a try-lock that finds it held (one timedout). */
    zkc_lock *a, *b;
    snprintf(p, sizeof p, "%s/locks/a", root);
    ck_assert_int_eq(zkc_lock_create(c, p, &a), 0);
    ck_assert_int_eq(zkc_lock_create(c, p, &b), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(zkc_lock_acquire(a, tu_ms(10000), NULL), 0);
        if (i == 2) {
            ck_assert_int_eq(zkc_lock_acquire(b, 0, NULL), ZKC_ETIMEDOUT);
            zkc_metrics m = {.size = sizeof m};
            ck_assert_int_eq(zkc_client_metrics(c, &m), 0);
            ck_assert_int_eq(m.holders[ZKC_MK_LOCK], 1);
            ck_assert_int_eq(m.waiters[ZKC_MK_LOCK], 0);
        }
        ck_assert_int_eq(zkc_lock_release(a), 0);
    }
    /* A multi-lock of two more mutexes: one multilock op, two lock acquires. */
    zkc_lock *m1, *m2;
    snprintf(p, sizeof p, "%s/locks/m1", root);
    snprintf(p2, sizeof p2, "%s/locks/m2", root);
    ck_assert_int_eq(zkc_lock_create(c, p, &m1), 0);
    ck_assert_int_eq(zkc_lock_create(c, p2, &m2), 0);
    zkc_lock *ls[2] = {m1, m2};
    zkc_multilock *ml;
    ck_assert_int_eq(zkc_multilock_create(ls, 2, &ml), 0);
    ck_assert_int_eq(zkc_multilock_acquire(ml, tu_ms(10000)), 0);
    ck_assert_int_eq(zkc_multilock_release(ml), 0);
    /* A read lock and a semaphore lease. */
    zkc_rwlock *rw;
    snprintf(p, sizeof p, "%s/locks/rw", root);
    ck_assert_int_eq(zkc_rwlock_create(c, p, &rw), 0);
    ck_assert_int_eq(zkc_lock_acquire(zkc_rwlock_read(rw), tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(zkc_rwlock_read(rw)), 0);
    zkc_lock *sem;
    snprintf(p, sizeof p, "%s/locks/sem", root);
    ck_assert_int_eq(zkc_semaphore_create(c, p, 2, &sem), 0);
    ck_assert_int_eq(zkc_lock_acquire(sem, tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(sem), 0);

    /* Counter under the labelled prefix: set, 5 adds, a refused add, a get,
     * then 10 async adds at once (combined into few transactions). */
    zkc_counter *ctr;
    snprintf(p, sizeof p, "%s/c1", sku);
    ck_assert_int_eq(zkc_counter_create(c, p, NULL, &ctr), 0);
    ck_assert_int_eq(zkc_counter_set(ctr, 0), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, NULL), 0);
    zkc_update u = {0};
    u.bounds.has_floor = 1;
    u.bounds.floor = 0;
    ck_assert_int_eq(zkc_counter_add(ctr, -100, &u, NULL), ZKC_EBOUND);
    int64_t v;
    ck_assert_int_eq(zkc_counter_get(ctr, &v), 0);
    ck_assert_int_eq(v, 5);
    adds_left = 10;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(zkc_counter_add_async(ctr, 1, NULL, on_add, NULL), 0);
    pthread_mutex_lock(&adds_mu);
    while (adds_left > 0)
        pthread_cond_wait(&adds_cv, &adds_mu);
    pthread_mutex_unlock(&adds_mu);

    /* Inventory outside the prefix: restock, two reservations decided (one
     * reserved, one out of stock). */
    zkc_inventory *inv;
    snprintf(p, sizeof p, "%s/inv", root);
    ck_assert_int_eq(zkc_inventory_create(c, p, &inv), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv, "s1", 3), 0);
    zkc_inventory_line line = {"s1", 2};
    zkc_inventory_state st;
    ck_assert_int_eq(zkc_inventory_reserve(inv, "o1", &line, 1, NULL, tu_ms(10000), NULL, &st), 0);
    ck_assert_int_eq(zkc_inventory_reserve(inv, "o2", &line, 1, NULL, tu_ms(10000), NULL, &st), ZKC_EOUTOFSTOCK);

    /* One id (a lease), one permit, one dry-run cleanup. */
    zkc_idgen *g;
    snprintf(p, sizeof p, "%s/ids", root);
    ck_assert_int_eq(zkc_idgen_create(c, p, NULL, &g), 0);
    int64_t id;
    ck_assert_int_eq(zkc_idgen_next(g, tu_ms(10000), &id), 0);
    zkc_ratelimit *rl;
    snprintf(p, sizeof p, "%s/rl", root);
    ck_assert_int_eq(zkc_ratelimit_create(c, p, 100, 1000, 1, &rl), 0);
    ck_assert_int_eq(zkc_ratelimit_acquire(rl, 1, tu_ms(10000)), 0);
    zkc_cleanup_report rep;
    snprintf(p, sizeof p, "%s/locks", root);
    ck_assert_int_eq(zkc_admin_cleanup(c, p, 1, &rep), 0);

    /* The struct: what fits, and nothing past m->size. */
    zkc_metrics *m = malloc(sizeof *m);
    memset(m, 0xab, sizeof *m);
    m->size = 4;
    ck_assert_int_eq(zkc_client_metrics(c, m), ZKC_EINVAL);
    m->size = (uint32_t)offsetof(zkc_metrics, hist);
    ck_assert_int_eq(zkc_client_metrics(c, m), 0);
    ck_assert_int_eq(m->version, ZKC_METRICS_VERSION);
    ck_assert_uint_eq(m->ops_started[ZKC_MK_MULTILOCK], 1);
    ck_assert_uint_eq(((unsigned char *)m)[offsetof(zkc_metrics, hist)], 0xab);
    ck_assert_uint_eq(((unsigned char *)m)[sizeof *m - 1], 0xab);
    /* A caller built against a newer header: its fields past ours are zeroed. */
    unsigned char *big = malloc(sizeof *m + 64);
    memset(big, 0xab, sizeof *m + 64);
    ((zkc_metrics *)big)->size = (uint32_t)(sizeof *m + 64);
    ck_assert_int_eq(zkc_client_metrics(c, (zkc_metrics *)big), 0);
    ck_assert_uint_eq(((zkc_metrics *)big)->size, sizeof *m + 64);
    for (size_t i = sizeof *m; i < sizeof *m + 64; i++)
        ck_assert_uint_eq(big[i], 0);
    free(big);
    m->size = sizeof *m;
    ck_assert_int_eq(zkc_client_metrics(c, m), 0);
    ck_assert_uint_eq(m->ops_started[ZKC_MK_LOCK], 6);
    uint64_t other_counter_ops = m->ops_started[ZKC_MK_COUNTER] - 18;
    ck_assert_uint_le(other_counter_ops, 4); /* a lease, a rate limiter's read and write */
    ck_assert_uint_eq(m->ops_succeeded[ZKC_MK_LOCK], 5);
    ck_assert_uint_eq(m->ops_failed[ZKC_MK_LOCK][-ZKC_ETIMEDOUT], 1);
    ck_assert_uint_eq(m->ops_succeeded[ZKC_MK_RWLOCK], 1);
    ck_assert_uint_eq(m->ops_succeeded[ZKC_MK_SEMAPHORE], 1);
    ck_assert_uint_eq(m->ops_failed[ZKC_MK_INVENTORY][-ZKC_EOUTOFSTOCK], 1);
    ck_assert_uint_eq(m->hist[ZKC_HIST_LOCK_WAIT].count, 8); /* 5 lock + rw + sem + multilock */
    ck_assert_uint_eq(m->hist[ZKC_HIST_LOCK_HOLD].count, 7); /* 3 + 2 (multi) + rw + sem */
    ck_assert_uint_eq(m->hist[ZKC_HIST_LOCK_HOLD].bucket[ZKC_METRICS_TIME_NBOUNDS], 7);
    ck_assert_uint_eq(m->hist[ZKC_HIST_RESERVE].count, 2);
    ck_assert_uint_eq(m->hist[ZKC_HIST_ELECTION_WAIT].count, 0);
    ck_assert_int_eq(m->holders[ZKC_MK_LOCK], 0);
    ck_assert_uint_ge(m->writes[ZKC_REQ_CREATE], 1);
    ck_assert_uint_ge(m->writes[ZKC_REQ_CHECK] + m->writes[ZKC_REQ_SET], 1);
    ck_assert_uint_eq(m->sessions, 1);
    ck_assert_int_eq(m->connected, 1);
    free(m);

    /* snprintf semantics. */
    long need = zkc_client_metrics_format(c, NULL, 0);
    ck_assert_int_gt(need, 1000);
    char small[16];
    long n2 = zkc_client_metrics_format(c, small, sizeof small);
    ck_assert_int_ge(n2, need - 100); /* heartbeats may have added a digit or two, never much */
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert_int_eq(strncmp(small, "# HELP zkc_oper", 15), 0);

    /* The exposition, through a descriptor, to the real parser. */
    char dir[] = "/tmp/zkc-metrics-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char expo[300], exp[300];
    snprintf(expo, sizeof expo, "%s/metrics.prom", dir);
    snprintf(exp, sizeof exp, "%s/expect", dir);
    int fd = open(expo, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(zkc_client_metrics_write(c, fd), 0);
    close(fd);
    FILE *f = fopen(exp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "const test=metrics \"q\"\n");
    ops_expect(f, "lock", NULL, 6, 5, "timedout", 1);
    ops_expect(f, "multilock", NULL, 1, 1, NULL, 0);
    ops_expect(f, "rwlock", NULL, 1, 1, NULL, 0);
    ops_expect(f, "semaphore", NULL, 1, 1, NULL, 0);
    ops_expect(f, "counter", "sku", 18, 17, "bound", 1); /* set + 5 + refused + get + 10 */
    ops_expect(f, "inventory", NULL, 3, 2, "outofstock", 1);
    ops_expect(f, "idgen", NULL, 1, 1, NULL, 0);
    ops_expect(f, "ratelimit", NULL, 1, 1, NULL, 0);
    ops_expect(f, "admin", NULL, 1, 1, NULL, 0);
    expect(f, "zkc_lock_wait_seconds_count", "-", "==", 8);
    expect(f, "zkc_lock_hold_seconds_count", "-", "==", 7);
    expect(f, "zkc_lock_holders", "kind=lock", "==", 0);
    expect(f, "zkc_lock_waiters", "kind=lock", "==", 0);
    expect(f, "zkc_counter_add_seconds_count", "prefix=sku", "==", 15);
    expect(f, "zkc_counter_add_seconds_bucket", "prefix=sku,le=+Inf", "==", 15);
    expect(f, "zkc_reservation_decision_seconds_count", "-", "==", 2);
    expect(f, "zkc_election_wait_seconds_count", "-", "==", 0);
    /* The 17 updates of the labelled counter went out in batches (its get is
     * a read, not batched), plus what the id generator and the rate limiter
     * did through their own counters (unlabelled counter operations, at most
     * one batch slot each): each update in exactly one batch. */
    expect(f, "zkc_batch_size_sum", "kind=counter", ">=", 17);
    expect(f, "zkc_batch_size_sum", "kind=counter", "<=", 17 + (double)other_counter_ops);
    expect(f, "zkc_batch_size_count", "kind=counter", "<=", 17 + (double)other_counter_ops);
    expect(f, "zkc_batch_size_count", "kind=inventory", ">=", 1);
    expect(f, "zkc_sessions_total", "-", "==", 1);
    expect(f, "zkc_lost_total", "-", "==", 0);
    expect(f, "zkc_connected", "-", "==", 1);
    expect(f, "zkc_writes_total", "type=create", ">=", 1);
    expect(f, "zkc_requests_total", "type=multi", ">=", 1);
    fclose(f);
    int rc = run_check(expo, exp);
    if (rc != 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "cat %s >&2", expo);
        ck_assert_int_eq(system(cmd), 0);
    }
    ck_assert_int_eq(rc, 0);
    unlink(expo);
    unlink(exp);
    rmdir(dir);

    zkc_ratelimit_destroy(rl);
    zkc_idgen_destroy(g);
    zkc_inventory_destroy(inv);
    zkc_counter_destroy(ctr);
    zkc_lock_destroy(sem);
    zkc_rwlock_destroy(rw);
    zkc_multilock_destroy(ml);
    zkc_lock_destroy(m1);
    zkc_lock_destroy(m2);
    zkc_lock_destroy(a);
    zkc_lock_destroy(b);
    zkc_client_destroy(c);
}
END_TEST

/* The checker itself must fail on a broken exposition: a histogram whose
 * buckets decrease, a wrong count. */
START_TEST(t_checker_fails)
{
    if (!python_ok())
        return;
    char dir[] = "/tmp/zkc-metrics-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char expo[300], exp[300];
    snprintf(expo, sizeof expo, "%s/bad.prom", dir);
    snprintf(exp, sizeof exp, "%s/expect", dir);
    FILE *f = fopen(expo, "w");
    fprintf(f, "# HELP zkc_x_seconds x\n# TYPE zkc_x_seconds histogram\n"
               "zkc_x_seconds_bucket{le=\"1\"} 3\nzkc_x_seconds_bucket{le=\"+Inf\"} 2\n"
               "zkc_x_seconds_sum 1\nzkc_x_seconds_count 2\n");
    fclose(f);
    f = fopen(exp, "w");
    fclose(f);
    ck_assert_int_eq(run_check(expo, exp), 1);
    f = fopen(expo, "w");
    fprintf(f, "# HELP zkc_y_total y\n# TYPE zkc_y_total counter\nzkc_y_total 4\n");
    fclose(f);
    f = fopen(exp, "w");
    fprintf(f, "zkc_y_total - == 5\n");
    fclose(f);
    ck_assert_int_eq(run_check(expo, exp), 1);
    f = fopen(exp, "w");
    fprintf(f, "zkc_y_total - == 4\n");
    fclose(f);
    ck_assert_int_eq(run_check(expo, exp), 0);
    unlink(expo);
    unlink(exp);
    rmdir(dir);
}
END_TEST

#define CASE(s, fn) TU_CASE(s, fn, 120 * tu_scale())

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    CASE(s, t_checker_fails);
    CASE(s, t_known_operations);
    return s;
}

int main(void)
{
    return tu_main(metrics_suite(), TU_SHARED_ENSEMBLE);
}
