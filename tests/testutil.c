/* Shared helpers of the zkcoord Check suites; see testutil.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ time */

long long tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tu_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int tu_scale(void)
{
    static int scale;
    if (!scale) {
        const char *s = getenv("ZKC_TEST_TIMEOUT_SCALE");
        int v = s && *s ? atoi(s) : 1;
        scale = v >= 1 ? v : 1;
    }
    return scale;
}

int tu_ms(int ms)
{
    return ms * tu_scale();
}

void tu_deadline_ts(struct timespec *dl, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, dl);
    dl->tv_sec += timeout_ms / 1000;
    dl->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl->tv_nsec >= 1000000000L) {
        dl->tv_sec++;
        dl->tv_nsec -= 1000000000L;
    }
}

void tu_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

uint64_t tu_rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

/* ------------------------------------------------------------ clients */

void tu_unique_path(char *buf, size_t len, const char *tag)
{
    static int counter;
    int n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    snprintf(buf, len, "/zkct-%s-%d-%d-%lld", tag, (int)getpid(), n, tu_now_ms() % 100000);
}

void tu_client_opts(zkc_client_options *o, const char *hosts)
{
    zkc_client_options_init(o);
    o->hosts = hosts;
    o->session_timeout_ms = tu_ms(TU_SESSION_MS);
    o->connect_timeout_ms = tu_ms(20000);
}

zkc_client *tu_client_o(const zkc_client_options *o)
{
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, o);
    ck_assert_msg(rc == 0, "zkc_client_create(%s): %s: %s", o->hosts, zkc_strerror(rc), zkc_errmsg());
    ck_assert_ptr_nonnull(c);
    return c;
}

zkc_client *tu_client(const char *hosts)
{
    zkc_client_options o;
    tu_client_opts(&o, hosts);
    return tu_client_o(&o);
}

zkc_client *tu_client_t(const char *hosts, int session_ms, int op_ms)
{
    zkc_client_options o;
    tu_client_opts(&o, hosts);
    if (session_ms)
        o.session_timeout_ms = session_ms;
    if (op_ms)
        o.operation_timeout_ms = op_ms;
    return tu_client_o(&o);
}

zkc_lock *tu_lock(zkc_client *c, const char *path)
{
    zkc_lock *l = NULL;
    int rc = zkc_lock_create(c, path, &l);
    ck_assert_msg(rc == 0, "zkc_lock_create(%s): %s", path, zkc_errmsg());
    return l;
}

int64_t tu_session_id(zkc_client *c)
{
    int64_t sid = 0;
    ck_assert_int_eq(zkc_client_session(c, &sid, NULL, NULL), 0);
    return sid;
}

/* ------------------------------------------------------------ events */

void tu_events_init(tu_events *e)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
    tu_cond_init_mono(&e->cv);
}

void tu_events_destroy(tu_events *e)
{
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
}

void tu_events_add(tu_events *e, int ev, int64_t val)
{
    long long now = tu_now_ms();
    pthread_mutex_lock(&e->mu);
    if (e->n < TU_MAX_EVENTS) {
        e->ev[e->n] = ev;
        e->at[e->n] = now;
        e->val[e->n] = val;
        e->n++;
    }
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

int tu_events_wait(tu_events *e, int ev, int from, int timeout_ms)
{
    struct timespec dl;
    tu_deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&e->mu);
    int found = -1;
    for (;;) {
        for (int i = from; i < e->n; i++)
            if (e->ev[i] == ev) {
                found = i;
                break;
            }
        if (found >= 0)
            break;
        if (pthread_cond_timedwait(&e->cv, &e->mu, &dl) == ETIMEDOUT) {
            for (int i = from; i < e->n; i++)
                if (e->ev[i] == ev) {
                    found = i;
                    break;
                }
            break;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return found;
}

int tu_events_wait_total(tu_events *e, int n, int timeout_ms)
{
    struct timespec dl;
    tu_deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&e->mu);
    while (e->n < n) {
        if (pthread_cond_timedwait(&e->cv, &e->mu, &dl) == ETIMEDOUT)
            break;
    }
    int got = e->n;
    pthread_mutex_unlock(&e->mu);
    return got;
}

int tu_events_count(tu_events *e, int ev)
{
    pthread_mutex_lock(&e->mu);
    int k = 0;
    for (int i = 0; i < e->n; i++)
        k += e->ev[i] == ev;
    pthread_mutex_unlock(&e->mu);
    return k;
}

int tu_events_total(tu_events *e)
{
    pthread_mutex_lock(&e->mu);
    int n = e->n;
    pthread_mutex_unlock(&e->mu);
    return n;
}

int tu_events_get(tu_events *e, int i, long long *at, int64_t *val)
{
    pthread_mutex_lock(&e->mu);
    ck_assert_int_lt(i, e->n);
    ck_assert_int_ge(i, 0);
    int ev = e->ev[i];
    if (at)
        *at = e->at[i];
    if (val)
        *val = e->val[i];
    pthread_mutex_unlock(&e->mu);
    return ev;
}

void tu_events_dump(tu_events *e, const char *label, long long t0)
{
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->n; i++)
        fprintf(stderr, "  %s[%d] +%lld ms: event %d value %lld\n", label, i, e->at[i] - t0, e->ev[i],
                (long long)e->val[i]);
    pthread_mutex_unlock(&e->mu);
}

int tu_expect_event(tu_events *e, int ev, int from, int timeout_ms, const char *what, long long t0)
{
    int i = tu_events_wait(e, ev, from, timeout_ms);
    if (i < 0) {
        fprintf(stderr, "no %s within %d ms; events so far:\n", what, timeout_ms);
        tu_events_dump(e, "ev", t0);
    }
    ck_assert_msg(i >= 0, "no %s within %d ms", what, timeout_ms);
    return i;
}

void tu_state_listener(zkc_client *c, zkc_state st, void *ud)
{
    (void)c;
    tu_events_add(ud, (int)st, 0);
}

void tu_lock_listener(zkc_lock *l, zkc_lock_event ev, void *ud)
{
    (void)l;
    tu_events_add(ud, (int)ev, 0);
}

/* ------------------------------------------------------------ queues */

int tu_queue_count(zkc_client *c, const char *path)
{
    zkc_lock_contender *q = NULL;
    int n = -1;
    int rc = zkc_lock_contenders(c, path, &q, &n);
    ck_assert_msg(rc == 0, "zkc_lock_contenders(%s): %s: %s", path, zkc_strerror(rc), zkc_errmsg());
    zkc_lock_contenders_free(q, n);
    return n;
}

int tu_wait_queue_count(zkc_client *c, const char *path, int want, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        if (tu_queue_count(c, path) == want)
            return 1;
        if (tu_now_ms() > deadline)
            return 0;
        tu_nap_ms(20);
    }
}

/* ------------------------------------------------------------ watches */

static int under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

int tu_watches_under(zkh_ensemble *e, const char *prefix, tu_watch *out, int max)
{
    char *text = NULL;
    int r = zkh_watches_by_path(e, &text);
    ck_assert_msg(r == 0, "wchp failed: %d", r);
    int count = 0;
    char cur[512] = "";
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '/') {
            snprintf(cur, sizeof cur, "%s", line);
            continue;
        }
        if (line[0] == '#') {
            cur[0] = 0;
            continue;
        }
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (s == line || strncmp(s, "0x", 2) != 0 || !cur[0])
            continue;
        if (!under(cur, prefix))
            continue;
        if (count < max && out) {
            snprintf(out[count].path, sizeof out[count].path, "%s", cur);
            out[count].session = (int64_t)strtoull(s, NULL, 16);
        }
        count++;
    }
    free(text);
    return count;
}

int tu_wait_watches(zkh_ensemble *e, const char *prefix, int want, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        int n = tu_watches_under(e, prefix, NULL, 0);
        if (n == want || tu_now_ms() > deadline)
            return n;
        tu_nap_ms(50);
    }
}

/* ------------------------------------------------------------ raw client */

struct tu_raw {
    zhandle_t *zh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connected;
};

static void raw_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    tu_raw *r = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&r->mu);
    r->connected = state == ZOO_CONNECTED_STATE;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

tu_raw *tu_raw_open(const char *hosts, int session_ms)
{
    tu_raw *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    pthread_mutex_init(&r->mu, NULL);
    tu_cond_init_mono(&r->cv);
    r->zh = zookeeper_init(hosts, raw_watcher, session_ms, NULL, r, 0);
    ck_assert_msg(r->zh != NULL, "zookeeper_init(%s) failed", hosts);
    struct timespec dl;
    tu_deadline_ts(&dl, tu_ms(20000));
    pthread_mutex_lock(&r->mu);
    while (!r->connected)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT)
            break;
    int ok = r->connected;
    pthread_mutex_unlock(&r->mu);
    ck_assert_msg(ok, "raw client: no session with %s", hosts);
    return r;
}

zhandle_t *tu_raw_zh(tu_raw *r)
{
    return r->zh;
}

void tu_raw_close(tu_raw *r)
{
    if (!r)
        return;
    zookeeper_close(r->zh);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

struct raw_sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, rc;
};

static void raw_sync_done(int rc, const char *value, const void *data)
{
    (void)value;
    struct raw_sync *s = (struct raw_sync *)data;
    pthread_mutex_lock(&s->mu);
    s->done = 1;
    s->rc = rc;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int tu_zh_sync(zhandle_t *zh, const char *path)
{
    static struct raw_sync s; /* completes before we return, or the test fails */
    pthread_mutex_init(&s.mu, NULL);
    tu_cond_init_mono(&s.cv);
    s.done = 0;
    s.rc = -1;
    int rc = zoo_async(zh, path, raw_sync_done, &s);
    if (rc != ZOK)
        return rc;
    struct timespec dl;
    tu_deadline_ts(&dl, tu_ms(20000));
    pthread_mutex_lock(&s.mu);
    while (!s.done)
        if (pthread_cond_timedwait(&s.cv, &s.mu, &dl) == ETIMEDOUT)
            break;
    rc = s.done ? s.rc : ZOPERATIONTIMEOUT;
    pthread_mutex_unlock(&s.mu);
    return rc;
}

void tu_raw_sync(tu_raw *r, const char *path)
{
    int rc = tu_zh_sync(r->zh, path);
    ck_assert_msg(rc == ZOK, "sync %s: %s", path, zerror(rc));
}

void tu_raw_mkdirs(tu_raw *r, const char *path)
{
    char buf[1024];
    size_t n = strlen(path);
    ck_assert_uint_lt(n, sizeof buf);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != 0)
            continue;
        memcpy(buf, path, i);
        buf[i] = 0;
        /* Set-up, not what a test checks: a connection lost or timed out
         * (a fault ensemble's server still slow after the last test's
         * faults; the fault tier saw "operation timeout" here once) is tried
         * again, a few times; NODEEXISTS covers a create that had applied. */
        int rc = ZOK;
        for (int attempt = 0; attempt < 5; attempt++) {
            rc = zoo_create(r->zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
            if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
                break;
            tu_nap_ms(200); /* the client reconnects by itself meanwhile */
        }
        ck_assert_msg(rc == ZOK || rc == ZNODEEXISTS, "create %s: %s", buf, zerror(rc));
    }
}

void tu_raw_rmr(tu_raw *r, const char *path)
{
    struct String_vector sv = {0, NULL};
    int rc = zoo_get_children(r->zh, path, 0, &sv);
    if (rc == ZOK) {
        for (int i = 0; i < sv.count; i++) {
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, sv.data[i]);
            tu_raw_rmr(r, child);
        }
        deallocate_String_vector(&sv);
    }
    zoo_delete(r->zh, path, -1);
}

/* ------------------------------------------------------------ checker */

void tu_checker_enter(tu_checker *k, int64_t token)
{
    if (__atomic_fetch_add(&k->inside, 1, __ATOMIC_SEQ_CST) != 0)
        __atomic_add_fetch(&k->overlaps, 1, __ATOMIC_SEQ_CST);
    int64_t old = __atomic_exchange_n(&k->last_token, token, __ATOMIC_SEQ_CST);
    if (token <= old)
        __atomic_add_fetch(&k->bad_tokens, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&k->entries, 1, __ATOMIC_SEQ_CST);
}

void tu_checker_exit(tu_checker *k)
{
    __atomic_sub_fetch(&k->inside, 1, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------ ensembles and main */

zkh_ensemble *tu_shared(void)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_msg(e != NULL, "no shared ZooKeeper ensemble");
    return e;
}

const char *tu_hosts(void)
{
    return zkh_ensemble_hosts(tu_shared());
}

static int local_backend(void)
{
    const char *b = getenv("ZKH_BACKEND");
    return !b || !*b || !strcmp(b, "local");
}

zkh_ensemble *tu_fault_ensemble(int nodes, int max_session_ms)
{
    zkh_ensemble *e = NULL;
    if (!local_backend()) {
        e = zkh_shared();
        ck_assert_ptr_nonnull(e);
        if (nodes != zkh_node_count(e) || !zkh_can_control(e)) {
            ck_assert_msg(!zkh_ci(), "CI=true: fault test cannot run on this backend");
            fprintf(stderr, "SKIP: fault test needs a controllable %d-node ensemble\n", nodes);
            return NULL;
        }
        return e;
    }
    zkh_options o;
    zkh_options_init(&o);
    o.nodes = nodes;
    o.max_session_timeout_ms = max_session_ms;
    int rc = zkh_ensemble_start(&e, &o);
    ck_assert_msg(rc == 0, "cannot start a %d-node ensemble: %s", nodes, strerror(-rc));
    return e;
}

void tu_fault_ensemble_done(zkh_ensemble *e)
{
    if (local_backend())
        zkh_ensemble_stop(e);
}

/* Is a ZooKeeper server installed at all (for the local backend)? */
static int zookeeper_installed(void)
{
    if (!local_backend())
        return 1; /* docker/external: their own failure is a failure */
    const char *home = getenv("ZK_HOME");
    char p[4096];
    if (home && *home) {
        snprintf(p, sizeof p, "%s/lib", home);
    } else {
        snprintf(p, sizeof p, "/usr/share/java/zookeeper.jar");
    }
    struct stat st;
    if (stat(p, &st) != 0)
        return 0;
    const char *java = getenv("ZKH_JAVA");
    if (java && *java)
        return access(java, X_OK) == 0;
    const char *jh = getenv("JAVA_HOME");
    if (jh && *jh) {
        snprintf(p, sizeof p, "%s/bin/java", jh);
        if (access(p, X_OK) == 0)
            return 1;
    }
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char *dup = strdup(path), *save = NULL;
    int found = 0;
    for (char *d = strtok_r(dup, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        snprintf(p, sizeof p, "%s/java", d);
        found = access(p, X_OK) == 0;
    }
    free(dup);
    return found;
}

TCase *tu_add_case(Suite *s, const char *name, const TTest *test, int seconds)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, seconds);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
    return tc;
}

int tu_main(Suite *s, int need_ensemble)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    /* Tests ask for 4 s sessions (times ZKC_TEST_TIMEOUT_SCALE); the
     * harness's default ceiling is 20 ticks = 4 s. */
    setenv("ZKH_MAX_SESSION_TIMEOUT_MS", "60000", 0);
    if (need_ensemble) {
        if (!zookeeper_installed()) {
            fprintf(stderr, "%s: ZooKeeper server or java not installed (apt-get install zookeeper)\n",
                    zkh_ci() ? "FAIL" : "SKIP");
            return zkh_ci() ? EXIT_FAILURE : 77;
        }
        /* Started here, in the parent, so the forked test children share it. */
        if (need_ensemble == TU_SHARED_ENSEMBLE && !zkh_shared()) {
            fprintf(stderr, "FAIL: the shared test ensemble did not start\n");
            return EXIT_FAILURE;
        }
    }
    SRunner *sr = srunner_create(s);
    long long t0 = tu_now_ms();
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fprintf(stderr, "suite done in %.1f s, %d failed\n", (tu_now_ms() - t0) / 1000.0, failed);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int tu_run_bounded(void *(*fn)(void *), void *arg, int timeout_ms)
{
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fn, arg), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(th, NULL, &dl) == 0)
        return 1;
    pthread_detach(th);
    return 0;
}

typedef struct destroy_arg {
    zkc_client *c;
    int rc;
} destroy_arg;

static void *destroy_thread(void *arg)
{
    destroy_arg *d = arg;
    d->rc = zkc_client_destroy(d->c);
    return NULL;
}

int tu_client_destroy_bounded(zkc_client *c, int timeout_ms, int *rc)
{
    /* Left to a thread that hangs: freed only once it has returned. */
    destroy_arg *d = calloc(1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    d->c = c;
    d->rc = -999;
    if (!tu_run_bounded(destroy_thread, d, timeout_ms))
        return 0;
    *rc = d->rc;
    free(d);
    return 1;
}

/* ------------------------------------------------------------ proxies */

#define TU_OP_GETCHILDREN 8   /* ZOO_GETCHILDREN_OP */
#define TU_OP_GETCHILDREN2 12 /* ZOO_GETCHILDREN2_OP */

long tu_proxy_listings(zkh_proxy *px)
{
    return zkh_proxy_requests_seen(px, TU_OP_GETCHILDREN) + zkh_proxy_requests_seen(px, TU_OP_GETCHILDREN2);
}

int tu_reply_hold_ms(zkc_client *c)
{
    int hold_ms = tu_ms(3000);
    if (hold_ms > zkc_client_session_timeout(c) / 3)
        hold_ms = zkc_client_session_timeout(c) / 3;
    return hold_ms;
}

zkc_client *tu_proxied_client(zkh_proxy **px)
{
    *px = NULL;
    ck_assert_int_eq(zkh_proxy_start(px, zkh_node_hostport(tu_shared(), 0)), 0);
    return tu_client_t(zkh_proxy_hostport(*px), tu_ms(20000), tu_ms(20000));
}

int tu_wait_proxy_listing(zkh_proxy *px, long since, long long deadline_ms)
{
    while (tu_proxy_listings(px) == since && tu_now_ms() < deadline_ms)
        tu_nap_ms(2); /* a proxy counter: no event tells us */
    return tu_proxy_listings(px) > since;
}
