/* Counters, fault tier: exactly-once under connection loss, against a fresh
 * local 3-node ensemble per test.
 *   - a ZooKeeper-aware proxy in front of every server drops multi requests
 *     (not applied) and multi replies (applied) again and again during a run
 *     of adds, keyed adds and multi-counter updates from two clients;
 *   - the leader is killed with SIGKILL (and restarted) during a run of adds;
 *   - the session is expired while adds are in flight;
 *   - markers and keys are cleaned up after the retention period;
 *   - fresh reads see every acknowledged write while the leader is killed.
 * Invariant everywhere: the final value equals the initial one plus the sum of
 * the deltas reported applied; nothing is left undecided (ZKC_EUNKNOWN) while
 * a server is reachable; a key's lookup agrees with what its caller was told.
 *
 * Failures stop the ensemble and proxies before reporting (REQUIRE), so no
 * java process or temp dir outlives a failed test. Worker threads never call
 * ck_assert; the test's thread checks what they recorded. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "zkcoord.h"
#include "ensemble.h"
#include "testutil.h"
#include "proxy.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#define OP_MULTI 14 /* ZOO_MULTI_OP */

#define CONNECT_MS (30000 * tu_scale())
#define ELECT_MS (60000 * tu_scale())
#define WAIT_MS (60000 * tu_scale())


/* Pacing of polls that have no event to wait for (proxy counters, leader). */




static int64_t rand_delta(uint64_t *s, int span)
{
    int64_t d = (int64_t)(tu_rng_next(s) % (uint64_t)(2 * span)) - span;
    return d >= 0 ? d + 1 : d;
}

/* ------------------------------------------------------- ensemble, cleanup */

static zkh_ensemble *g_e;
static int g_e_own;
static zkh_proxy *g_px[3];

static int local_backend(void)
{
    const char *b = getenv("ZKH_BACKEND");
    return !b || !*b || !strcmp(b, "local");
}

static void cleanup(void)
{
    for (int i = 0; i < 3; i++) {
        zkh_proxy_stop(g_px[i]);
        g_px[i] = NULL;
    }
    if (g_e && g_e_own)
        zkh_ensemble_stop(g_e);
    g_e = NULL;
}

/* Stop what the test started, then fail. */
#define REQUIRE(cond, ...)                                                                                     \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            char req_msg_[1024];                                                                               \
            snprintf(req_msg_, sizeof req_msg_, __VA_ARGS__);                                                  \
            cleanup();                                                                                         \
            ck_abort_msg("%s (%s)", req_msg_, #cond);                                                          \
        }                                                                                                      \
    } while (0)

/* Local: a fresh ensemble to break. Other backends: the one ensemble they
 * manage, if it can be controlled; NULL means skip (a failure under CI). */
static zkh_ensemble *fault_ensemble(int need_control)
{
    if (!local_backend()) {
        zkh_ensemble *e = zkh_shared();
        ck_assert_msg(e != NULL, "no ensemble on backend %s", getenv("ZKH_BACKEND"));
        if ((need_control && !zkh_can_control(e)) || zkh_node_count(e) != 3) {
            ck_assert_msg(!zkh_ci(), "CI=true: this fault test cannot run on backend %s", getenv("ZKH_BACKEND"));
            fprintf(stderr, "SKIP: fault test needs a controllable 3-node ensemble\n");
            return NULL;
        }
        g_e = e;
        g_e_own = 0;
        return e;
    }
    zkh_options o;
    zkh_options_init(&o);
    o.nodes = 3;
    o.max_session_timeout_ms = 30000;
    zkh_ensemble *e = NULL;
    int rc = zkh_ensemble_start(&e, &o);
    if (rc != 0) {
        /* java or the ZooKeeper jar missing, or the machine too slow */
        ck_assert_msg(!zkh_ci(), "CI=true: cannot start a local 3-node ensemble: %s", strerror(-rc));
        fprintf(stderr, "SKIP: cannot start a local 3-node ensemble: %s\n", strerror(-rc));
        return NULL;
    }
    g_e = e;
    g_e_own = 1;
    return e;
}

/* ZKCT_DEBUG=1: the library's own log on stderr (and ZKC_ZK_LOG=1 for the C
 * client's). */
static void debug_log(zkc_log_level level, const char *msg, void *ud)
{
    (void)ud;
    fprintf(stderr, "%lld zkcoord[%d]: %s\n", tu_now_ms() % 1000000, (int)level, msg);
}

static void debug_opts(zkc_client_options *o)
{
    const char *d = getenv("ZKCT_DEBUG");
    if (d && *d && strcmp(d, "0") != 0) {
        o->log_fn = debug_log;
        o->log_level = ZKC_LOG_INFO;
    }
}

static zkc_client *client_on(const char *hosts_, int session_ms, zkc_state_fn fn, void *ud)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    debug_opts(&o);
    o.hosts = hosts_;
    o.session_timeout_ms = session_ms * tu_scale();
    o.connect_timeout_ms = CONNECT_MS;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    REQUIRE(rc == 0, "zkc_client_create(%s): %s: %s", hosts_, zkc_strerror(rc), zkc_errmsg());
    if (fn)
        zkc_client_set_listener(c, fn, ud);
    return c;
}

static zkc_counter *counter_on(zkc_client *c, const char *path)
{
    zkc_counter *ctr = NULL;
    int rc = zkc_counter_create(c, path, NULL, &ctr);
    REQUIRE(rc == 0, "zkc_counter_create(%s): %s", path, zkc_strerror(rc));
    return ctr;
}

static void unique_path(char *buf, size_t len, const char *what)
{
    static int seq;
    snprintf(buf, len, "/zkctf/%s-%d-%lld-%d", what, (int)getpid(), tu_now_ms(), ++seq);
}

/* Value read by a fresh client straight from the servers (not via proxies). */
static int64_t final_value(const char *path)
{
    zkc_client *c = client_on(zkh_ensemble_hosts(g_e), 10000, NULL, NULL);
    zkc_counter *ctr = counter_on(c, path);
    int64_t v = 0;
    int rc = zkc_counter_get(ctr, &v);
    REQUIRE(rc == 0, "get %s: %s", path, zkc_strerror(rc));
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    return v;
}

/* ------------------------------------------------------------- workers */

enum { W_BLOCKING = 0, W_ASYNC = 1, W_MULTI = 2 };
#define W_CAP 6000
#define W_WINDOW 8

typedef struct wrec {
    int64_t delta, before, after;
    int rc;
    int done;       /* completions seen (must end 1) */
    int keyed;
    int line2_ok;   /* multi: the second line moved by -delta */
    char key[80];
    char *msg;      /* zkc_errmsg() of a failure (malloc'd) */
} wrec;

typedef struct progress {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long done;
} progress;

static progress g_prog;
static long g_sesslost; /* updates answered ZKC_ESESSIONLOST (atomic) */

static void progress_add(void)
{
    pthread_mutex_lock(&g_prog.mu);
    g_prog.done++;
    pthread_cond_broadcast(&g_prog.cv);
    pthread_mutex_unlock(&g_prog.mu);
}

static long progress_now(void)
{
    pthread_mutex_lock(&g_prog.mu);
    long d = g_prog.done;
    pthread_mutex_unlock(&g_prog.mu);
    return d;
}

/* Wait until `more` operations completed after `from`; returns 1 if so. */
static int progress_wait(long from, long more, int timeout_ms)
{
    struct timespec dl;
    tu_deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&g_prog.mu);
    int e = 0;
    while (g_prog.done < from + more && e == 0)
        e = pthread_cond_timedwait(&g_prog.cv, &g_prog.mu, &dl);
    int ok = g_prog.done >= from + more;
    pthread_mutex_unlock(&g_prog.mu);
    return ok;
}

typedef struct worker {
    int id;
    int mode;
    zkc_client *c;
    zkc_counter *ctr, *mb; /* mb: the second counter of a multi */
    int keyed_every;       /* every k-th add carries a key (0: none) */
    int max_ops;           /* stop after this many (also on stop flag) */
    int *stop;
    wrec *rec;
    int n;
    uint64_t seed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;
    pthread_t th;
} worker;

typedef struct async_slot {
    worker *w;
    wrec *rec;
} async_slot;

static void w_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    async_slot *s = ud;
    s->rec->rc = status;
    if (status == ZKC_ESESSIONLOST)
        __atomic_add_fetch(&g_sesslost, 1, __ATOMIC_RELAXED);
    if (status)
        s->rec->msg = strdup(zkc_errmsg());
    if (r) {
        s->rec->before = r->before;
        s->rec->after = r->after;
    }
    pthread_mutex_lock(&s->w->mu);
    s->rec->done++;
    s->w->inflight--;
    pthread_cond_broadcast(&s->w->cv);
    pthread_mutex_unlock(&s->w->mu);
    free(s);
    progress_add();
}

static void *w_run(void *arg)
{
    worker *w = arg;
    while (w->n < w->max_ops && !__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
        int i = w->n++;
        wrec *rec = &w->rec[i];
        rec->delta = rand_delta(&w->seed, 1000);
        zkc_update u = {0};
        if (w->keyed_every && i % w->keyed_every == 0) {
            rec->keyed = 1;
            snprintf(rec->key, sizeof rec->key, "f-%d-%lld-%d-%d", (int)getpid(), tu_now_ms(), w->id, i);
            u.key = rec->key;
        }
        if (w->mode == W_BLOCKING) {
            zkc_counter_result r = {0, 0, 0};
            rec->rc = zkc_counter_add(w->ctr, rec->delta, &u, &r);
            if (rec->rc)
                rec->msg = strdup(zkc_errmsg());
            if (rec->rc == ZKC_ESESSIONLOST)
                __atomic_add_fetch(&g_sesslost, 1, __ATOMIC_RELAXED);
            rec->before = r.before;
            rec->after = r.after;
            rec->done++;
            progress_add();
        } else if (w->mode == W_MULTI) {
            zkc_counter_op ops[2];
            memset(ops, 0, sizeof ops);
            ops[0].counter = w->ctr;
            ops[0].delta = rec->delta;
            ops[1].counter = w->mb;
            ops[1].delta = -rec->delta;
            zkc_counter_result res[2];
            memset(res, 0, sizeof res);
            rec->rc = zkc_counter_multi_add(w->c, ops, 2, u.key, res, NULL);
            if (rec->rc)
                rec->msg = strdup(zkc_errmsg());
            rec->before = res[0].before;
            rec->after = res[0].after;
            rec->line2_ok = res[1].after - res[1].before == -rec->delta;
            rec->done++;
            progress_add();
        } else {
            struct timespec dl;
            tu_deadline_ts(&dl, WAIT_MS);
            pthread_mutex_lock(&w->mu);
            int e = 0;
            while (w->inflight >= W_WINDOW && e == 0)
                e = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
            int full = w->inflight >= W_WINDOW;
            if (!full)
                w->inflight++;
            pthread_mutex_unlock(&w->mu);
            if (full) {
                rec->rc = 9999; /* callbacks stopped coming: the checker reports it */
                rec->done = 1;
                break;
            }
            async_slot *s = malloc(sizeof *s);
            s->w = w;
            s->rec = rec;
            int rc = zkc_counter_add_async(w->ctr, rec->delta, &u, w_cb, s);
            if (rc != 0) {
                free(s);
                rec->rc = rc;
                rec->done = 1;
                pthread_mutex_lock(&w->mu);
                w->inflight--;
                pthread_mutex_unlock(&w->mu);
                progress_add();
            }
        }
    }
    /* every async add answered */
    struct timespec dl;
    tu_deadline_ts(&dl, 2 * WAIT_MS);
    pthread_mutex_lock(&w->mu);
    int e = 0;
    while (w->inflight > 0 && e == 0)
        e = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void worker_start(worker *w, int id, int mode, zkc_client *c, zkc_counter *ctr, zkc_counter *mb,
                         int keyed_every, int max_ops, int *stop)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->mode = mode;
    w->c = c;
    w->ctr = ctr;
    w->mb = mb;
    w->keyed_every = keyed_every;
    w->max_ops = max_ops < W_CAP ? max_ops : W_CAP;
    w->stop = stop;
    w->rec = calloc(W_CAP, sizeof *w->rec);
    w->seed = ((uint64_t)getpid() << 20) ^ (uint64_t)tu_now_ms() ^ ((uint64_t)id * 7919u) ^ 1;
    pthread_mutex_init(&w->mu, NULL);
    tu_cond_init_mono(&w->cv);
    REQUIRE(w->rec != NULL, "out of memory");
    REQUIRE(pthread_create(&w->th, NULL, w_run, w) == 0, "pthread_create");
}

typedef struct tally {
    int64_t sum_a; /* applied deltas on the main counter */
    int applied, refused, unknown, other, bad_pair, bad_done, bad_line2;
    int first_other_rc;
    char first_other_msg[300];
    int rcs[32]; /* histogram by -rc */
} tally;

static void tally_worker(tally *t, worker *w)
{
    for (int i = 0; i < w->n; i++) {
        wrec *r = &w->rec[i];
        if (r->done != 1) {
            t->bad_done++;
            continue;
        }
        if (r->rc <= 0 && -r->rc < 32)
            t->rcs[-r->rc]++;
        if (r->rc == 0) {
            t->applied++;
            t->sum_a += r->delta;
            if (r->after - r->before != r->delta)
                t->bad_pair++;
            if (w->mode == W_MULTI && !r->line2_ok)
                t->bad_line2++;
        } else if (r->rc == ZKC_EUNKNOWN) {
            t->unknown++;
        } else {
            if (!t->other) {
                t->first_other_rc = r->rc;
                snprintf(t->first_other_msg, sizeof t->first_other_msg, "%s", r->msg ? r->msg : "");
            }
            if (r->msg && t->other < 20)
                fprintf(stderr, "  failed update (%s%s): %s\n", r->keyed ? "keyed, " : "",
                        w->mode == W_MULTI ? "multi" : w->mode == W_ASYNC ? "async" : "blocking", r->msg);
            t->other++;
        }
    }
}

static void tally_print(const char *what, tally *t)
{
    fprintf(stderr, "%s: %d applied, %d unknown, %d other errors; by code:", what, t->applied, t->unknown, t->other);
    for (int i = 0; i < 32; i++)
        if (t->rcs[i])
            fprintf(stderr, " %s=%d", i ? zkc_strerror(-i) : "ok", t->rcs[i]);
    fprintf(stderr, "\n");
}

/* Every keyed add's outcome, looked up afterwards, agrees with its caller:
 * applied -> the same before/after; not applied -> ZKC_ENONODE. */
static void check_keys(zkc_client *c, worker *w, int *checked, char *fail, size_t faillen)
{
    for (int i = 0; i < w->n; i++) {
        wrec *r = &w->rec[i];
        if (!r->keyed || r->done != 1)
            continue;
        zkc_counter_result lr = {0, 0, 0};
        int rc = zkc_counter_lookup(c, r->key, &lr);
        (*checked)++;
        if (fail[0])
            continue;
        if (r->rc == 0) {
            if (rc != 0 || lr.before != r->before || lr.after != r->after)
                snprintf(fail, faillen,
                         "key %s: the caller was told applied %" PRId64 " -> %" PRId64 ", lookup says %s %" PRId64
                         " -> %" PRId64,
                         r->key, r->before, r->after, zkc_strerror(rc), lr.before, lr.after);
        } else if (rc != ZKC_ENONODE) {
            snprintf(fail, faillen,
                     "key %s: the caller was told %s (not applied), lookup says %s %" PRId64 " -> %" PRId64, r->key,
                     zkc_strerror(r->rc), zkc_strerror(rc), lr.before, lr.after);
        }
    }
}

static void workers_join(worker *w, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(w[i].th, NULL);
}

static void workers_free(worker *w, int n)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < w[i].n; k++)
            free(w[i].rec[k].msg);
        free(w[i].rec);
        pthread_mutex_destroy(&w[i].mu);
        pthread_cond_destroy(&w[i].cv);
    }
}

/* ------------------------------------------------------- state listener */

typedef struct states {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n[5];
} states;

static void states_fn(zkc_client *c, zkc_state st, void *ud)
{
    (void)c;
    states *s = ud;
    pthread_mutex_lock(&s->mu);
    if ((int)st >= 1 && (int)st <= 4)
        s->n[st]++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static int states_wait(states *s, zkc_state st, int above, int timeout_ms)
{
    struct timespec dl;
    tu_deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&s->mu);
    int e = 0;
    while (s->n[st] <= above && e == 0)
        e = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    int ok = s->n[st] > above;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static int states_get(states *s, zkc_state st)
{
    pthread_mutex_lock(&s->mu);
    int v = s->n[st];
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* ================================================================ proxy drops */

static int fired_total(void)
{
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += zkh_proxy_faults_fired(g_px[i]);
    return n;
}

static void arm_all(int reply, int count)
{
    for (int i = 0; i < 3; i++) {
        if (reply)
            zkh_proxy_drop_reply(g_px[i], OP_MULTI, count);
        else
            zkh_proxy_drop_request(g_px[i], OP_MULTI, count);
    }
}

#define PX_CLIENTS 2
#define PX_PER_CLIENT 4 /* blocking, async, blocking keyed, multi */
#define PX_ROUNDS 8
#define PX_OPS 250

START_TEST(t_proxy_drop_request_and_reply)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    char hosts[512] = "";
    for (int i = 0; i < 3; i++) {
        REQUIRE(zkh_proxy_start(&g_px[i], zkh_node_hostport(e, i)) == 0, "proxy for node %d", i);
        snprintf(hosts + strlen(hosts), sizeof hosts - strlen(hosts), "%s%s", i ? "," : "",
                 zkh_proxy_hostport(g_px[i]));
    }
    char pa[256], pb[256];
    unique_path(pa, sizeof pa, "px-a");
    unique_path(pb, sizeof pb, "px-b");
    long long t0 = tu_now_ms();

    zkc_client *c[PX_CLIENTS];
    zkc_counter *ca[PX_CLIENTS], *cb[PX_CLIENTS];
    static worker w[PX_CLIENTS * PX_PER_CLIENT];
    int stop = 0;
    for (int k = 0; k < PX_CLIENTS; k++) {
        c[k] = client_on(hosts, 10000, NULL, NULL);
        ca[k] = counter_on(c[k], pa);
        cb[k] = counter_on(c[k], pb);
    }
    for (int k = 0; k < PX_CLIENTS; k++) {
        worker *ww = &w[k * PX_PER_CLIENT];
        worker_start(&ww[0], k * 10 + 0, W_BLOCKING, c[k], ca[k], NULL, 0, PX_OPS, &stop);
        worker_start(&ww[1], k * 10 + 1, W_ASYNC, c[k], ca[k], NULL, 3, PX_OPS, &stop);
        worker_start(&ww[2], k * 10 + 2, W_BLOCKING, c[k], ca[k], NULL, 1, PX_OPS, &stop);
        worker_start(&ww[3], k * 10 + 3, W_MULTI, c[k], ca[k], cb[k], 4, PX_OPS / 2, &stop);
    }

    /* Alternate dropped requests and dropped replies, each round waiting
     * until the fault fired and the adds made progress again. */
    int fired_req = 0, fired_rep = 0;
    for (int round = 0; round < PX_ROUNDS; round++) {
        int reply = round % 2;
        int before = fired_total();
        arm_all(reply, 1);
        long long deadline = tu_now_ms() + WAIT_MS;
        while (fired_total() == before && tu_now_ms() < deadline && progress_now() < PX_CLIENTS * (3 * PX_OPS + PX_OPS / 2))
            tu_nap_ms(5);
        arm_all(reply, 0);
        int got = fired_total() - before;
        if (reply)
            fired_rep += got;
        else
            fired_req += got;
        long p0 = progress_now();
        if (!progress_wait(p0, 40, WAIT_MS))
            break; /* everything done (or stuck: the checks below tell) */
    }
    workers_join(w, PX_CLIENTS * PX_PER_CLIENT);

    tally t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < PX_CLIENTS * PX_PER_CLIENT; i++)
        tally_worker(&t, &w[i]);
    tally_print("proxy drops", &t);
    zkc_stats st[PX_CLIENTS];
    for (int k = 0; k < PX_CLIENTS; k++)
        zkc_client_stats(c[k], &st[k]);
    char keyfail[512] = "";
    int checked = 0;
    for (int i = 0; i < PX_CLIENTS * PX_PER_CLIENT; i++)
        check_keys(c[i / PX_PER_CLIENT], &w[i], &checked, keyfail, sizeof keyfail);
    for (int k = 0; k < PX_CLIENTS; k++) {
        zkc_counter_destroy(ca[k]);
        zkc_counter_destroy(cb[k]);
        zkc_client_destroy(c[k]);
    }
    int64_t fa = final_value(pa), fb = final_value(pb);
    fprintf(stderr, "proxy drops: %d request drops and %d reply drops fired, %d keys checked, %lld ms\n", fired_req,
            fired_rep, checked, tu_now_ms() - t0);

    for (int k = 0; k < PX_CLIENTS; k++)
        REQUIRE(st[k].lost == 0 && st[k].sessions == 1,
                "client %d lost its session (%llu lost): the test needs it alive", k, (unsigned long long)st[k].lost);
    REQUIRE(fired_req > 0, "no dropped request fired");
    REQUIRE(fired_rep > 0, "no dropped reply fired");
    REQUIRE(t.bad_done == 0, "%d updates completed other than exactly once", t.bad_done);
    REQUIRE(t.unknown == 0, "%d updates returned ZKC_EUNKNOWN while the session lived", t.unknown);
    REQUIRE(t.other == 0, "%d updates failed (first: %s: %s)", t.other, zkc_strerror(t.first_other_rc),
            t.first_other_msg);
    REQUIRE(t.bad_pair == 0, "%d results with after - before != delta", t.bad_pair);
    REQUIRE(t.bad_line2 == 0, "%d multi results with a wrong second line", t.bad_line2);
    REQUIRE(fa == t.sum_a, "counter A is %" PRId64 ", the applied deltas sum to %" PRId64 " (%s)", fa, t.sum_a,
            fa - t.sum_a ? "lost or doubled updates" : "");
    /* B moves only through the multis, by minus their deltas */
    int64_t sum_multi = 0;
    for (int i = 0; i < PX_CLIENTS * PX_PER_CLIENT; i++)
        if (w[i].mode == W_MULTI)
            for (int k = 0; k < w[i].n; k++)
                if (w[i].rec[k].rc == 0)
                    sum_multi += w[i].rec[k].delta;
    REQUIRE(fb == -sum_multi, "counter B is %" PRId64 ", expected %" PRId64, fb, -sum_multi);
    REQUIRE(!keyfail[0], "%s", keyfail);
    workers_free(w, PX_CLIENTS * PX_PER_CLIENT);
    cleanup();
}
END_TEST

/* The library creates missing directories itself: a counter's parents, the
 * key buckets under <meta_root>/keys, the marker directory. A connection loss
 * on one of those creates (the request dropped: nothing applied, the server
 * still reachable, the session alive) must be retried like any other, not
 * fail the update. After a warm-up update (the marker exists), the first k
 * creates are dropped in a row during
 *   A: an add to a counter whose parent directories do not exist yet,
 *   B: a keyed add whose key bucket does not exist yet,
 *   C: the very first update of a fresh client and meta root. */
START_TEST(t_dropped_creates_on_first_use)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    char fails[1024] = "";
    int nfail = 0;
    for (int variant = 0; variant < 3; variant++) {
        for (int k = 1; k <= 3; k++) {
            char meta[128], warm[160], path[256], key[128];
            snprintf(meta, sizeof meta, "/zkctf-first-%d-%lld-%d%d", (int)getpid(), tu_now_ms(), variant, k);
            snprintf(warm, sizeof warm, "%s-warm", meta);
            snprintf(path, sizeof path, "%s-ctr/a/b/c", meta);
            snprintf(key, sizeof key, "first-%d-%d", variant, k);
            zkc_client_options co;
            zkc_client_options_init(&co);
            debug_opts(&co);
            co.hosts = zkh_proxy_hostport(g_px[0]);
            co.connect_timeout_ms = CONNECT_MS;
            co.meta_root = meta;
            zkc_client *c = NULL;
            REQUIRE(zkc_client_create(&c, &co) == 0, "client: %s", zkc_errmsg());
            zkc_counter *cw = counter_on(c, warm);
            zkc_counter *cn = counter_on(c, path);
            zkc_counter_result r = {0, 0, 0};
            if (variant != 2)
                REQUIRE(zkc_counter_add(cw, 1, NULL, &r) == 0, "warm-up add: %s", zkc_errmsg());
            zkc_counter *target = variant == 1 ? cw : cn;
            int64_t base = variant == 1 ? 1 : 0;
            int fired0 = zkh_proxy_faults_fired(g_px[0]);
            zkh_proxy_drop_request(g_px[0], 15 /* ZOO_CREATE2_OP */, k);
            zkc_update u = {0};
            u.key = variant == 1 ? key : NULL;
            int rc = zkc_counter_add(target, 5, &u, &r);
            char msg[300];
            snprintf(msg, sizeof msg, "%s", zkc_errmsg());
            zkh_proxy_drop_request(g_px[0], 15, 0);
            int fired = zkh_proxy_faults_fired(g_px[0]) - fired0;
            int64_t v = -1;
            int grc = zkc_counter_get(target, &v);
            zkc_counter_result lr = {0, 0, 0};
            int lrc = variant == 1 ? zkc_counter_lookup(c, key, &lr) : 0;
            zkc_counter_destroy(cw);
            zkc_counter_destroy(cn);
            zkc_client_destroy(c);
            fprintf(stderr, "first use %c, %d creates dropped (%d fired): add %s%s%s, value %lld\n", 'A' + variant, k,
                    fired, zkc_strerror(rc), rc ? ": " : "", rc ? msg : "", (long long)v);
            REQUIRE(fired >= 1, "%c k=%d: no create was dropped", 'A' + variant, k);
            REQUIRE(grc == 0, "%c k=%d: get: %s", 'A' + variant, k, zkc_strerror(grc));
            /* whatever it said, it must be true */
            REQUIRE(v == base + (rc == 0 ? 5 : 0), "%c k=%d: add said %s but the counter is %lld", 'A' + variant, k,
                    zkc_strerror(rc), (long long)v);
            if (variant == 1)
                REQUIRE(rc == 0 ? (lrc == 0 && lr.after == base + 5) : lrc == ZKC_ENONODE,
                        "k=%d: lookup %s disagrees with %s", k, zkc_strerror(lrc), zkc_strerror(rc));
            if (rc != 0 && nfail++ == 0)
                snprintf(fails, sizeof fails, "case %c, %d creates dropped: %s: %s", 'A' + variant, k,
                         zkc_strerror(rc), msg);
        }
    }
    REQUIRE(!fails[0], "%d of 9 updates failed on a dropped create (the server reachable, the session alive); "
            "first: %s", nfail, fails);
    cleanup();
}
END_TEST

/* ================================================================ leader kill */

static int wait_new_leader(zkh_ensemble *e, int old, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        int l = zkh_leader(e);
        if (l >= 0 && l != old)
            return l;
        if (tu_now_ms() > deadline)
            return -1;
        tu_nap_ms(100);
    }
}

/* `rounds` times: kill -9 the leader once `more` operations progressed, wait
 * for a new one and `more` operations under it (the old one still down), then
 * restart the old one; finally `more` operations after the last restart.
 * Returns 1, or 0 with the reason in why. */
static int kill_leader_rounds(zkh_ensemble *e, int rounds, long more, const char *label, char *why, size_t len)
{
    for (int round = 0; round < rounds; round++) {
        if (!progress_wait(progress_now(), more, WAIT_MS)) {
            snprintf(why, len, "round %d: no progress before the kill", round);
            return 0;
        }
        int old = zkh_leader(e);
        if (old < 0 || zkh_node_kill9(e, old) != 0) {
            snprintf(why, len, "round %d: no leader to kill", round);
            return 0;
        }
        long p = progress_now();
        int nl = wait_new_leader(e, old, ELECT_MS);
        if (nl < 0) {
            snprintf(why, len, "round %d: no new leader after kill -9 of node %d", round, old);
            return 0;
        }
        if (!progress_wait(p, more, WAIT_MS)) {
            snprintf(why, len, "round %d: no progress after the failover", round);
            return 0;
        }
        if (zkh_node_start(e, old) != 0 || zkh_wait_quorum(e, ELECT_MS) != 0) {
            snprintf(why, len, "round %d: node %d did not rejoin", round, old);
            return 0;
        }
        fprintf(stderr, "%s: round %d: killed node %d, new leader %d, %ld done\n", label, round, old, nl,
                progress_now());
    }
    if (!progress_wait(progress_now(), more, WAIT_MS)) {
        snprintf(why, len, "no progress after the last restart");
        return 0;
    }
    return 1;
}

#define LK_CLIENTS 2
#define LK_PER_CLIENT 3
#define LK_ROUNDS 2

START_TEST(t_leader_kill)
{
    zkh_ensemble *e = fault_ensemble(1);
    if (!e)
        return;
    char pa[256];
    unique_path(pa, sizeof pa, "leader");
    long long t0 = tu_now_ms();
    zkc_client *c[LK_CLIENTS];
    zkc_counter *ca[LK_CLIENTS];
    static worker w[LK_CLIENTS * LK_PER_CLIENT];
    int stop = 0;
    for (int k = 0; k < LK_CLIENTS; k++) {
        c[k] = client_on(zkh_ensemble_hosts(e), 10000, NULL, NULL);
        ca[k] = counter_on(c[k], pa);
    }
    for (int k = 0; k < LK_CLIENTS; k++) {
        worker *ww = &w[k * LK_PER_CLIENT];
        worker_start(&ww[0], k * 10 + 0, W_BLOCKING, c[k], ca[k], NULL, 0, W_CAP, &stop);
        worker_start(&ww[1], k * 10 + 1, W_ASYNC, c[k], ca[k], NULL, 2, W_CAP, &stop);
        worker_start(&ww[2], k * 10 + 2, W_BLOCKING, c[k], ca[k], NULL, 1, W_CAP, &stop);
    }
    char why[256] = "";
    kill_leader_rounds(e, LK_ROUNDS, 100, "leader kill", why, sizeof why);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    workers_join(w, LK_CLIENTS * LK_PER_CLIENT);

    tally t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < LK_CLIENTS * LK_PER_CLIENT; i++)
        tally_worker(&t, &w[i]);
    tally_print("leader kill", &t);
    char keyfail[512] = "";
    int checked = 0;
    for (int i = 0; i < LK_CLIENTS * LK_PER_CLIENT; i++)
        check_keys(c[i / LK_PER_CLIENT], &w[i], &checked, keyfail, sizeof keyfail);
    for (int k = 0; k < LK_CLIENTS; k++) {
        zkc_counter_destroy(ca[k]);
        zkc_client_destroy(c[k]);
    }
    int64_t fa = final_value(pa);
    fprintf(stderr, "leader kill: %d keys checked, %lld ms\n", checked, tu_now_ms() - t0);
    REQUIRE(!why[0], "%s", why);
    REQUIRE(t.bad_done == 0, "%d updates completed other than exactly once", t.bad_done);
    REQUIRE(t.unknown == 0, "%d updates returned ZKC_EUNKNOWN although a quorum was up", t.unknown);
    REQUIRE(t.other == 0, "%d updates failed (first: %s: %s)", t.other, zkc_strerror(t.first_other_rc),
            t.first_other_msg);
    REQUIRE(t.bad_pair == 0, "%d results with after - before != delta", t.bad_pair);
    REQUIRE(fa == t.sum_a, "counter is %" PRId64 ", the applied deltas sum to %" PRId64 ": %s", fa, t.sum_a,
            "lost or doubled updates");
    REQUIRE(!keyfail[0], "%s", keyfail);
    workers_free(w, LK_CLIENTS * LK_PER_CLIENT);
    cleanup();
}
END_TEST

/* ================================================================ session expiry */

/* Every worker has used up its W_CAP records: no more progress can come from
 * them. On a fast machine that happens when an expiry attempt loses its race
 * and the test waits 15 s for a LOST that never comes. */
static int workers_spent(worker *w, int n)
{
    for (int i = 0; i < n; i++)
        if (__atomic_load_n(&w[i].n, __ATOMIC_ACQUIRE) < w[i].max_ops)
            return 0;
    return 1;
}

typedef struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, status;
} probe;

static void probe_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    (void)r;
    probe *p = ud;
    pthread_mutex_lock(&p->mu);
    p->status = status;
    p->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* 150 more updates from the workers, or, once they are spent, one add of +1
 * of our own that must apply (counted in *extra). 1 if so. */
static int progress_or_probe(worker *w, int n, zkc_counter *ctr, int64_t *extra)
{
    long from = progress_now();
    long long deadline = tu_now_ms() + WAIT_MS;
    while (tu_now_ms() < deadline) {
        if (progress_wait(from, 150, 500))
            return 1;
        if (!workers_spent(w, n))
            continue;
        probe *p = calloc(1, sizeof *p);
        REQUIRE(p != NULL, "out of memory");
        pthread_mutex_init(&p->mu, NULL);
        tu_cond_init_mono(&p->cv);
        if (zkc_counter_add_async(ctr, 1, NULL, probe_cb, p) != 0)
            return 0;
        struct timespec dl;
        tu_deadline_ts(&dl, WAIT_MS);
        pthread_mutex_lock(&p->mu);
        int e = 0;
        while (!p->done && e == 0)
            e = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
        int done = p->done, status = p->status;
        pthread_mutex_unlock(&p->mu);
        if (!done)
            return 0; /* p stays: its callback may still come (at destroy) */
        free(p);
        if (status != 0)
            return 0;
        (*extra)++;
        return 1;
    }
    return 0;
}

#define EX_WORKERS 4
#define EX_ROUNDS 3

START_TEST(t_session_expiry)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    char pa[256];
    unique_path(pa, sizeof pa, "expiry");
    long long t0 = tu_now_ms();
    states ss;
    memset(&ss, 0, sizeof ss);
    pthread_mutex_init(&ss.mu, NULL);
    tu_cond_init_mono(&ss.cv);
    zkc_client *c = client_on(zkh_ensemble_hosts(e), 10000, states_fn, &ss);
    zkc_counter *ctr = counter_on(c, pa);
    static worker w[EX_WORKERS];
    int stop = 0;
    /* async pumps keep updates in flight at any moment; every other add keyed */
    worker_start(&w[0], 0, W_ASYNC, c, ctr, NULL, 2, W_CAP, &stop);
    worker_start(&w[1], 1, W_ASYNC, c, ctr, NULL, 1, W_CAP, &stop);
    worker_start(&w[2], 2, W_BLOCKING, c, ctr, NULL, 1, W_CAP, &stop);
    worker_start(&w[3], 3, W_BLOCKING, c, ctr, NULL, 3, W_CAP, &stop);

    char why[256] = "";
    int64_t probed = 0; /* the test's own adds, when the workers are spent */
    for (int round = 0; round < EX_ROUNDS && !why[0]; round++) {
        if (!progress_or_probe(w, EX_WORKERS, ctr, &probed)) {
            snprintf(why, sizeof why, "round %d: no progress before the expiry", round);
            break;
        }
        /* zkh_expire_session can lose a race: if our client reconnects and
         * re-attaches to the session between the harness's second handle
         * attaching and closing it, the close is refused (session moved)
         * and the session lives on. Then try again, up to 3 times. */
        int lost0 = states_get(&ss, ZKC_STATE_LOST), conn0 = states_get(&ss, ZKC_STATE_CONNECTED);
        int expired = 0;
        for (int attempt = 0; attempt < 3 && !expired && !why[0]; attempt++) {
            int64_t sid = 0;
            char pw[16];
            int pwlen = 0;
            zkc_client_session(c, &sid, pw, &pwlen);
            long sl0 = __atomic_load_n(&g_sesslost, __ATOMIC_RELAXED);
            long p0 = progress_now();
            int rc = zkh_expire_session(zkh_ensemble_hosts(e), sid, pw, pwlen, CONNECT_MS);
            if (rc != 0 && rc != -ESTALE) {
                snprintf(why, sizeof why, "round %d: zkh_expire_session: %s", round, strerror(-rc));
                break;
            }
            expired = states_wait(&ss, ZKC_STATE_LOST, lost0, 15000 * tu_scale());
            if (expired)
                break;
            long sl = __atomic_load_n(&g_sesslost, __ATOMIC_RELAXED) - sl0;
            int64_t sid2 = 0;
            zkc_client_session(c, &sid2, NULL, NULL);
            fprintf(stderr, "session expiry: round %d attempt %d: no LOST within 15 s; session 0x%llx -> 0x%llx, "
                    "%ld updates since, %ld of them ZKC_ESESSIONLOST\n", round, attempt, (unsigned long long)sid,
                    (unsigned long long)sid2, progress_now() - p0, sl);
            if (sl > 0)
                snprintf(why, sizeof why,
                         "round %d: %ld updates failed with ZKC_ESESSIONLOST (session expired) within 15 s, yet the "
                         "client never reported LOST nor opened a new session: it is stuck on a dead session",
                         round, sl);
        }
        if (why[0])
            break;
        if (!expired) {
            snprintf(why, sizeof why, "round %d: could not expire the session in 3 attempts", round);
            break;
        }
        if (!states_wait(&ss, ZKC_STATE_CONNECTED, conn0, WAIT_MS)) {
            snprintf(why, sizeof why, "round %d: no new session after LOST", round);
            break;
        }
        if (!progress_or_probe(w, EX_WORKERS, ctr, &probed)) {
            snprintf(why, sizeof why, "round %d: no progress in the new session", round);
            break;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    workers_join(w, EX_WORKERS);

    tally t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < EX_WORKERS; i++)
        tally_worker(&t, &w[i]);
    tally_print("session expiry", &t);
    zkc_stats st;
    zkc_client_stats(c, &st);
    char keyfail[512] = "";
    int checked = 0;
    for (int i = 0; i < EX_WORKERS; i++)
        check_keys(c, &w[i], &checked, keyfail, sizeof keyfail);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    int64_t fa = final_value(pa);
    fprintf(stderr, "session expiry: %llu sessions, %d keys checked, counter %lld vs applied %lld, %lld ms\n",
            (unsigned long long)st.sessions, checked, (long long)fa, (long long)t.sum_a, tu_now_ms() - t0);
    REQUIRE(!why[0], "%s", why);
    REQUIRE(st.lost >= EX_ROUNDS && st.sessions >= EX_ROUNDS + 1, "%llu sessions lost, %llu established",
            (unsigned long long)st.lost, (unsigned long long)st.sessions);
    REQUIRE(t.bad_done == 0, "%d updates completed other than exactly once", t.bad_done);
    REQUIRE(t.unknown == 0, "%d updates returned ZKC_EUNKNOWN although the servers were reachable", t.unknown);
    REQUIRE(t.bad_pair == 0, "%d results with after - before != delta", t.bad_pair);
    REQUIRE(fa == t.sum_a + probed, "counter is %" PRId64 ", the deltas reported applied sum to %" PRId64
            " (%d updates reported failed: %s)", fa, t.sum_a + probed, t.other,
            t.other ? zkc_strerror(t.first_other_rc) : "none");
    REQUIRE(!keyfail[0], "%s", keyfail);
    workers_free(w, EX_WORKERS);
    pthread_mutex_destroy(&ss.mu);
    pthread_cond_destroy(&ss.cv);
    cleanup();
}
END_TEST

/* ================================================================ retention */

/* Children of path (raw client): count, or -1 on error. */
static int raw_children(zhandle_t *zh, const char *path)
{
    struct String_vector sv;
    int rc = zoo_get_children(zh, path, 0, &sv);
    if (rc == ZNONODE)
        return 0;
    if (rc != ZOK)
        return -1;
    int n = sv.count;
    deallocate_String_vector(&sv);
    return n;
}

static void raw_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)type;
    (void)state;
    (void)path;
    (void)ctx;
}

static zhandle_t *raw_open(const char *hosts_)
{
    zhandle_t *zh = zookeeper_init(hosts_, raw_watcher, 10000, NULL, NULL, 0);
    REQUIRE(zh != NULL, "raw client");
    long long deadline = tu_now_ms() + CONNECT_MS;
    while (zoo_state(zh) != ZOO_CONNECTED_STATE && tu_now_ms() < deadline)
        tu_nap_ms(20);
    REQUIRE(zoo_state(zh) == ZOO_CONNECTED_STATE, "raw client: no connection");
    return zh;
}

/* zoo_async(path) and wait: zh's later reads see what other sessions wrote
 * before the call, which its server may not have applied yet. */
static void raw_sync(zhandle_t *zh, const char *path)
{
    int rc = tu_zh_sync(zh, path);
    REQUIRE(rc == ZOK, "sync %s: %s", path, zerror(rc));
}

static zkc_client *client_meta(const char *hosts_, const char *meta, int retention_s, int session_ms, int op_ms,
                               int retry_max)
{
    zkc_client_options co;
    zkc_client_options_init(&co);
    debug_opts(&co);
    co.hosts = hosts_;
    co.session_timeout_ms = session_ms;
    co.connect_timeout_ms = CONNECT_MS;
    co.operation_timeout_ms = op_ms;
    co.meta_root = meta;
    co.marker_retention_s = retention_s;
    if (retry_max) {
        co.retry_max = retry_max;
        co.retry_cap_ms = 300;
    }
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &co);
    REQUIRE(rc == 0, "zkc_client_create(%s): %s: %s", hosts_, zkc_strerror(rc), zkc_errmsg());
    return c;
}

/* Markers and keys are kept for the retention period (never less than two
 * session timeouts: 4 s here) and zkc_admin_cleanup then removes them, also
 * those of a client that is gone; younger ones stay; a dry run deletes
 * nothing. */
START_TEST(t_marker_retention)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    char meta[128], path[256], txn[160], key[128];
    snprintf(meta, sizeof meta, "/zkctf-meta-%d-%lld", (int)getpid(), tu_now_ms());
    snprintf(txn, sizeof txn, "%s/txn", meta);
    unique_path(path, sizeof path, "retention");
    snprintf(key, sizeof key, "ret-%d-%lld", (int)getpid(), tu_now_ms());

    zkc_client *a = client_meta(zkh_ensemble_hosts(e), meta, 1, 2000, 0, 0);
    zkc_counter *ca = counter_on(a, path);
    zkc_update u = {0};
    u.key = key;
    zkc_counter_result r;
    REQUIRE(zkc_counter_add(ca, 3, &u, &r) == 0, "keyed add: %s", zkc_errmsg());
    zkc_counter_destroy(ca);
    zkc_client_destroy(a);
    long long t_written = tu_now_ms();

    zhandle_t *zh = raw_open(zkh_ensemble_hosts(e));
    int slots_a = raw_children(zh, txn);
    REQUIRE(slots_a == 1, "client a left %d markers under %s, expected 1", slots_a, txn);

    zkc_client *b = client_meta(zkh_ensemble_hosts(e), meta, 1, 2000, 0, 0);
    zkc_cleanup_report rep;
    /* young: nothing goes */
    REQUIRE(zkc_admin_cleanup(b, NULL, 0, &rep) == 0, "cleanup: %s", zkc_errmsg());
    REQUIRE(rep.markers == 0 && rep.keys == 0, "cleanup right after the update removed %lld markers, %lld keys",
            (long long)rep.markers, (long long)rep.keys);
    REQUIRE(zkc_counter_lookup(b, key, &r) == 0 && r.after == 3, "key lost before its retention");

    /* old enough: a dry run counts them and deletes nothing, then the real run */
    long long deadline = tu_now_ms() + 30000LL * tu_scale();
    int dry_seen = 0;
    while (tu_now_ms() < deadline) {
        REQUIRE(zkc_admin_cleanup(b, NULL, 1, &rep) == 0, "dry-run cleanup: %s", zkc_errmsg());
        if (rep.markers >= 1 && rep.keys >= 1) {
            dry_seen = 1;
            break;
        }
        tu_nap_ms(250);
    }
    long long waited = tu_now_ms() - t_written;
    REQUIRE(dry_seen, "after %lld ms the dry run still counts %lld markers, %lld keys", waited,
            (long long)rep.markers, (long long)rep.keys);
    REQUIRE(waited >= 4000 - 500, "markers counted as expired %lld ms after the write: before 2 session timeouts",
            waited);
    REQUIRE(raw_children(zh, txn) == 1 && zkc_counter_lookup(b, key, &r) == 0, "the dry run deleted something");
    REQUIRE(zkc_admin_cleanup(b, NULL, 0, &rep) == 0, "cleanup: %s", zkc_errmsg());
    REQUIRE(rep.markers == 1 && rep.keys == 1, "cleanup removed %lld markers, %lld keys; expected 1 and 1",
            (long long)rep.markers, (long long)rep.keys);
    raw_sync(zh, txn); /* b deleted them: zh's server may not have applied that yet */
    REQUIRE(raw_children(zh, txn) == 0, "markers left under %s", txn);
    int lrc = zkc_counter_lookup(b, key, &r);
    REQUIRE(lrc == ZKC_ENONODE, "lookup of the expired key: %s", zkc_strerror(lrc));

    /* the counter itself is untouched and keeps working (b's marker is created anew) */
    zkc_counter *cb = counter_on(b, path);
    REQUIRE(zkc_counter_add(cb, 1, NULL, &r) == 0 && r.before == 3 && r.after == 4, "add after cleanup");
    zkc_counter_destroy(cb);
    zkc_client_destroy(b);
    zookeeper_close(zh);
    cleanup();
}
END_TEST

/* A marker is the only evidence of whether an update whose reply was lost was
 * applied. Here the writer cannot make that decision for a while (every sync it
 * sends is dropped, its session stays alive), and meanwhile a cleaner with a
 * short retention removes the writer's marker. When the writer finally reads
 * it, the marker is missing: that must not count as "not applied". (The
 * decision reads behind a fence, a one-check multi: the multis after the add's
 * own are dropped, and the syncs, should a sync come back.) The update
 * was applied (its reply was dropped), so the counter must move by its delta
 * exactly once, and the caller must hear success or ZKC_EUNKNOWN. */
START_TEST(t_cleanup_while_undecided)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    char meta[128], path[256], txn[160];
    snprintf(meta, sizeof meta, "/zkctf-meta-%d-%lld", (int)getpid(), tu_now_ms());
    snprintf(txn, sizeof txn, "%s/txn", meta);
    unique_path(path, sizeof path, "undecided");
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    /* The writer waits up to 30 s for a server and retries its sync often. */
    zkc_client *w = client_meta(zkh_proxy_hostport(g_px[0]), meta, 1, 2000, 30000, 1000);
    zkc_counter *ctr = counter_on(w, path);
    zkc_counter_result r;
    REQUIRE(zkc_counter_add(ctr, 1, NULL, &r) == 0, "warm-up add: %s", zkc_errmsg());

    zkh_proxy_drop_request(g_px[0], 9 /* ZOO_SYNC_OP */, 1000000);
    zkh_proxy_drop_reply(g_px[0], OP_MULTI, 1);
    zkh_proxy_drop_request_after(g_px[0], OP_MULTI, 1, 1000000);
    static worker one; /* reuse the async completion plumbing for one add */
    int stop = 0;
    memset(&one, 0, sizeof one);
    worker_start(&one, 0, W_ASYNC, w, ctr, NULL, 0, 1, &stop);
    long long deadline = tu_now_ms() + WAIT_MS;
    while (zkh_proxy_faults_fired(g_px[0]) < 2 && tu_now_ms() < deadline)
        tu_nap_ms(10);
    int fired = zkh_proxy_faults_fired(g_px[0]);

    /* The cleaner: same meta root, 1 s retention, 2 s sessions -> 4 s. */
    zkc_client *cl = client_meta(zkh_ensemble_hosts(e), meta, 1, 2000, 0, 0);
    zhandle_t *zh = raw_open(zkh_ensemble_hosts(e));
    zkc_cleanup_report rep;
    int64_t removed = 0;
    deadline = tu_now_ms() + 20000LL * tu_scale();
    while (tu_now_ms() < deadline && raw_children(zh, txn) > 0) {
        if (zkc_admin_cleanup(cl, NULL, 0, &rep) == 0)
            removed += rep.markers;
        tu_nap_ms(250);
    }
    long undecided = progress_now() == 0;
    zkh_proxy_drop_request(g_px[0], 9, 0); /* the writer may decide now */
    zkh_proxy_drop_request(g_px[0], OP_MULTI, 0);
    workers_join(&one, 1);
    wrec *rec = &one.rec[0];
    zkc_counter_destroy(ctr);
    zkc_client_destroy(w);
    zkc_client_destroy(cl);
    zookeeper_close(zh);
    int64_t fv = final_value(path);
    fprintf(stderr, "cleanup while undecided: faults fired %d, markers removed %lld while undecided=%ld; add %+lld: "
            "%s, %lld -> %lld; counter 1 -> %lld\n",
            fired, (long long)removed, undecided, (long long)rec->delta, zkc_strerror(rec->rc),
            (long long)rec->before, (long long)rec->after, (long long)fv);
    REQUIRE(fired >= 2, "the dropped reply and a dropped decision did not both fire (%d)", fired);
    REQUIRE(removed >= 1 && undecided, "the setup did not remove the marker while the add was undecided");
    REQUIRE(rec->done == 1, "the add completed %d times", rec->done);
    REQUIRE(rec->rc == 0 || rec->rc == ZKC_EUNKNOWN, "the add was applied but reported %s", zkc_strerror(rec->rc));
    REQUIRE(fv == 1 + rec->delta, "counter is %lld, expected %lld: the update was applied %s",
            (long long)fv, (long long)(1 + rec->delta), fv == 1 + 2 * rec->delta ? "twice" : "a wrong number of times");
    free(one.rec);
    cleanup();
}
END_TEST

/* Issue 21.1 for admin cleanup: it reads the servers' clock with an empty
 * write of <meta_root>/clock first. When every reply to that write is lost
 * (applied, then the connection cut), the call must not say ZKC_ECONNLOSS
 * ("nothing was applied"): the write was applied (the node's version moved),
 * so ZKC_EUNKNOWN, with nothing deleted. */
START_TEST(t_cleanup_clock_unknown)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    char meta[128], clk[160];
    snprintf(meta, sizeof meta, "/zkctf-clk-%d-%lld", (int)getpid(), tu_now_ms());
    snprintf(clk, sizeof clk, "%s/clock", meta);
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    zkc_client *c = client_meta(zkh_proxy_hostport(g_px[0]), meta, 1, 4000, 3000, 3);
    zkc_cleanup_report rep;
    REQUIRE(zkc_admin_cleanup(c, NULL, 0, &rep) == 0, "first cleanup: %s", zkc_errmsg());
    zhandle_t *zh = raw_open(zkh_ensemble_hosts(e));
    struct Stat st0, st1;
    REQUIRE(zoo_exists(zh, clk, 0, &st0) == ZOK, "the first cleanup left no %s", clk);

    zkh_proxy_drop_reply(g_px[0], 5 /* ZOO_SETDATA_OP */, 1000000);
    int rc = zkc_admin_cleanup(c, NULL, 0, &rep);
    zkh_proxy_drop_reply(g_px[0], 5, 0);
    int fired = zkh_proxy_faults_fired(g_px[0]);
    raw_sync(zh, clk); /* c's clock write went through another server than zh's, perhaps */
    REQUIRE(zoo_exists(zh, clk, 0, &st1) == ZOK, "%s vanished", clk);
    fprintf(stderr, "cleanup clock unknown: faults fired %d, clock version %d -> %d, cleanup: %s (%s)\n", fired,
            st0.version, st1.version, zkc_strerror(rc), zkc_errmsg());
    zkc_client_destroy(c);
    zookeeper_close(zh);
    REQUIRE(fired >= 1, "no reply was dropped");
    REQUIRE(st1.version > st0.version, "the clock write was never applied (version %d)", st1.version);
    REQUIRE(rc == ZKC_EUNKNOWN, "the clock write was applied but cleanup reported %s", zkc_strerror(rc));
    REQUIRE(rep.markers == 0 && rep.keys == 0 && rep.empty_parents == 0, "something was deleted");
    cleanup();
}
END_TEST

/* ================================================================ main */

/* ================================================================ async contract */

/* libzookeeper_mt may never call the completion of a request that is pending
 * when its handle is closed: zookeeper_close queues one ZCLOSING completion per
 * pending request for its completion thread, which stops as soon as it sees
 * the close requested; what it has not dequeued by then is dropped (the mt
 * adaptor's process_async() is 0, so destroy() does not run them either).
 * In a chaos run that lost a counter batch, and with it every async add
 * queued behind it (seed 594047314989). The race is timing-bound, so this
 * test makes it certain: the test binary interposes zoo_amulti and
 * zookeeper_close. Armed, zoo_amulti keeps the next multi pending without
 * sending it (as a proxy dropping the request would), and zookeeper_close of
 * its handle then loses that completion, as the race does. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arm;            /* hold the next multi */
    zhandle_t *zh;      /* the held multi's handle, NULL when none is held */
    int lost;           /* held completions lost by a close */
} g_hold = {.mu = PTHREAD_MUTEX_INITIALIZER}; /* cv: tu_cond_init_mono */

/* Default visibility (the build hides symbols): the library's calls must bind here. */
#define INTERPOSE __attribute__((visibility("default")))

INTERPOSE int zoo_amulti(zhandle_t *zh, int count, const zoo_op_t *ops, zoo_op_result_t *results,
                         void_completion_t completion, const void *data)
{
    static int (*real)(zhandle_t *, int, const zoo_op_t *, zoo_op_result_t *, void_completion_t, const void *);
    pthread_mutex_lock(&g_hold.mu);
    if (g_hold.arm) {
        g_hold.arm = 0;
        g_hold.zh = zh;
        pthread_cond_broadcast(&g_hold.cv);
        pthread_mutex_unlock(&g_hold.mu);
        return ZOK; /* pending, never sent */
    }
    pthread_mutex_unlock(&g_hold.mu);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "zoo_amulti");
    return real(zh, count, ops, results, completion, data);
}

INTERPOSE int zookeeper_close(zhandle_t *zh)
{
    static int (*real)(zhandle_t *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "zookeeper_close");
    int rc = real(zh);
    pthread_mutex_lock(&g_hold.mu);
    if (zh && g_hold.zh == zh) {
        g_hold.zh = NULL; /* its completion is never called */
        g_hold.lost++;
        pthread_cond_broadcast(&g_hold.cv);
    }
    pthread_mutex_unlock(&g_hold.mu);
    return rc;
}

typedef struct contract {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls[64];
    int total, ok;
    int64_t applied;
} contract;

typedef struct contract_ud {
    contract *k;
    int idx;
} contract_ud;

static void contract_cb(zkc_counter *ctr, int rc, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    contract_ud *u = ud;
    contract *k = u->k;
    pthread_mutex_lock(&k->mu);
    k->calls[u->idx]++;
    k->total++;
    if (rc == 0) {
        k->ok++;
        k->applied += r->after - r->before;
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* A window of 64 async adds is queued and in flight (the first batch's multi
 * pending in the handle) when the harness expires the session; the handle
 * that held the multi is closed without calling its completion. Every add
 * must still call back exactly once, within the documented bound (operation
 * timeout + session timeout), with the value adding up. */
START_TEST(t_expiry_with_batch_in_flight)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    char pa[256];
    unique_path(pa, sizeof pa, "contract");
    states ss;
    memset(&ss, 0, sizeof ss);
    pthread_mutex_init(&ss.mu, NULL);
    tu_cond_init_mono(&ss.cv);
    const int session_ms = 10000, op_ms = 20000;
    zkc_client *c = client_meta(zkh_ensemble_hosts(e), NULL, 0, session_ms, op_ms, 0);
    zkc_client_set_listener(c, states_fn, &ss);
    int rc;
    zkc_counter *a = counter_on(c, pa);
    zkc_counter_result r0;
    REQUIRE(zkc_counter_add(a, 1, NULL, &r0) == 0, "warm-up add: %s", zkc_errmsg());

    static contract k;
    memset(&k, 0, sizeof k);
    pthread_mutex_init(&k.mu, NULL);
    tu_cond_init_mono(&k.cv);
    static contract_ud ud[64];
    tu_cond_init_mono(&g_hold.cv);
    pthread_mutex_lock(&g_hold.mu);
    g_hold.arm = 1;
    g_hold.lost = 0;
    pthread_mutex_unlock(&g_hold.mu);
    for (int i = 0; i < 64; i++) {
        ud[i].k = &k;
        ud[i].idx = i;
        rc = zkc_counter_add_async(a, 1, NULL, contract_cb, &ud[i]);
        REQUIRE(rc == 0, "add_async %d: %s", i, zkc_errmsg());
    }
    struct timespec dl;
    tu_deadline_ts(&dl, WAIT_MS);
    pthread_mutex_lock(&g_hold.mu);
    while (!g_hold.zh && pthread_cond_timedwait(&g_hold.cv, &g_hold.mu, &dl) == 0)
        ;
    int held = g_hold.zh != NULL;
    pthread_mutex_unlock(&g_hold.mu);
    REQUIRE(held, "the batch's multi was never submitted");

    /* Now, with the batch in flight and the rest queued behind it: expire. */
    int lost0 = states_get(&ss, ZKC_STATE_LOST), conn0 = states_get(&ss, ZKC_STATE_CONNECTED);
    int expired = 0;
    for (int attempt = 0; attempt < 3 && !expired; attempt++) {
        int64_t sid = 0;
        char pw[16];
        int pwlen = 0;
        zkc_client_session(c, &sid, pw, &pwlen);
        rc = zkh_expire_session(zkh_ensemble_hosts(e), sid, pw, pwlen, CONNECT_MS);
        REQUIRE(rc == 0 || rc == -ESTALE, "zkh_expire_session: %s", strerror(-rc));
        expired = states_wait(&ss, ZKC_STATE_LOST, lost0, 15000 * tu_scale());
    }
    REQUIRE(expired, "could not expire the session in 3 attempts");
    REQUIRE(states_wait(&ss, ZKC_STATE_CONNECTED, conn0, WAIT_MS), "no new session");
    pthread_mutex_lock(&g_hold.mu);
    int lost_completions = g_hold.lost;
    pthread_mutex_unlock(&g_hold.mu);

    /* Every callback within operation timeout + session timeout (+ slack for
     * a loaded machine) of the loss. */
    tu_deadline_ts(&dl, (op_ms + session_ms) * tu_scale() + 10000);
    pthread_mutex_lock(&k.mu);
    while (k.total < 64 && pthread_cond_timedwait(&k.cv, &k.mu, &dl) == 0)
        ;
    int total = k.total, ok = k.ok, twice = 0;
    int64_t applied = k.applied;
    for (int i = 0; i < 64; i++)
        twice += k.calls[i] > 1;
    pthread_mutex_unlock(&k.mu);
    fprintf(stderr, "async contract: %d completion(s) lost by the close, %d of 64 callbacks, %d ok\n",
            lost_completions, total, ok);
    REQUIRE(lost_completions == 1, "the expired session's handle closed with no multi pending");
    REQUIRE(total == 64, "%d of 64 async adds never called back (session expired with their batch in flight)",
            64 - total);
    REQUIRE(twice == 0, "%d callbacks ran twice", twice);
    zkc_counter_destroy(a);
    zkc_client_destroy(c);
    int64_t fa = final_value(pa);
    REQUIRE(fa == 1 + applied, "counter is %" PRId64 ", the adds reported applied sum to %" PRId64, fa,
            1 + applied);
    REQUIRE(ok == 64, "%d of 64 adds failed although a server was reachable (%d)", 64 - ok, ok);
    pthread_mutex_destroy(&ss.mu);
    pthread_cond_destroy(&ss.cv);
    cleanup();
}
END_TEST


/* ================================================================ late replies */

/* Issue 21.1: a write whose reply arrives after the client's operation
 * timeout (the C client then fails it with ZOPERATIONTIMEOUT) may have been
 * applied, exactly as after a connection loss. The proxy holds one reply of
 * the given kind for two session timeouts: the request reaches the leader and
 * is applied, the answer never arrives in time. */
#define LATE_SESSION_MS 4000

extern int zkc__counter_rebase_from; /* lib/counter_rebase.c: lowered to drive a real rebase */

static zkc_client *late_client(const char *meta)
{
    return client_meta(zkh_proxy_hostport(g_px[0]), meta, 0, tu_ms(LATE_SESSION_MS), 0, 0);
}

/* The first write of a client creates its persistent marker node; a late
 * reply to that create must be decided by reading the marker, not reported as
 * a failure ("nothing applied") while the marker exists untracked. */
START_TEST(t_late_marker_create_reply)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    char meta[128], path[160];
    snprintf(meta, sizeof meta, "/zkctf-latemark-%d-%lld", (int)getpid(), tu_now_ms());
    snprintf(path, sizeof path, "%s-ctr", meta);
    /* Another client makes the counter and the marker directory, so the first
     * create the proxy sees from the client under test is its marker's. */
    zkc_client *w = client_meta(zkh_node_hostport(e, 1), meta, 0, tu_ms(LATE_SESSION_MS), 0, 0);
    zkc_counter *cw = counter_on(w, path);
    zkc_counter_result r = {0, 0, 0};
    REQUIRE(zkc_counter_add(cw, 1, NULL, &r) == 0, "warm-up add: %s", zkc_errmsg());
    zkc_client *c = late_client(meta);
    int64_t sid = tu_session_id(c);
    zkc_counter *ctr = counter_on(c, path);
    long seen0 = zkh_proxy_requests_seen(g_px[0], ZOO_CREATE2_OP);
    zkh_proxy_delay_reply(g_px[0], ZOO_CREATE2_OP, 1, 2 * tu_ms(LATE_SESSION_MS));
    int rc = zkc_counter_add(ctr, 5, NULL, &r);
    fprintf(stderr, "late marker create reply: add -> %s (%s)\n", zkc_strerror(rc), rc ? zkc_errmsg() : "applied");
    REQUIRE(zkh_proxy_faults_fired(g_px[0]) == 1, "the marker create's reply was not delayed");
    /* The session lives and a server answers: the add must go through. */
    REQUIRE(rc == 0, "add after a late marker create reply: %s (%s)", zkc_strerror(rc), zkc_errmsg());
    REQUIRE(zkh_proxy_requests_seen(g_px[0], ZOO_CREATE2_OP) - seen0 == 1, "the marker was created %ld times",
            zkh_proxy_requests_seen(g_px[0], ZOO_CREATE2_OP) - seen0);
    REQUIRE(tu_session_id(c) == sid, "the session was lost: the test did not test the late reply");
    REQUIRE(final_value(path) == 6, "counter is %" PRId64 ", not 6", final_value(path));
    zkc_counter_destroy(ctr);
    zkc_counter_destroy(cw);
    zkc_client_destroy(c);
    zkc_client_destroy(w);
    cleanup();
}
END_TEST

/* A rebase is a multi of delete + create. When its reply comes late, it may
 * have been applied: the caller must hear ZKC_EUNKNOWN (or success), never an
 * error that says nothing was written while the node was in fact re-created. */
START_TEST(t_late_rebase_reply)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    char meta[128], path[160];
    snprintf(meta, sizeof meta, "/zkctf-laterebase-%d-%lld", (int)getpid(), tu_now_ms());
    snprintf(path, sizeof path, "%s-ctr", meta);
    zkc_client *c = late_client(meta);
    int64_t sid = tu_session_id(c);
    zkc_counter *ctr = counter_on(c, path);
    zkc_counter_result r = {0, 0, 0};
    REQUIRE(zkc_counter_add(ctr, 7, NULL, &r) == 0, "add: %s", zkc_errmsg());
    zhandle_t *zh = raw_open(zkh_node_hostport(e, 1));
    struct Stat before, after;
    REQUIRE(zoo_exists(zh, path, 0, &before) == ZOK, "stat %s", path);
    zkc__counter_rebase_from = 0; /* every version is "near the wrap" */
    zkh_proxy_delay_reply(g_px[0], ZOO_MULTI_OP, 1, 2 * tu_ms(LATE_SESSION_MS));
    int rc = zkc_counter_rebase(ctr);
    zkc__counter_rebase_from = 1 << 30;
    char msg[300];
    snprintf(msg, sizeof msg, "%s", rc ? zkc_errmsg() : "rebased");
    fprintf(stderr, "late rebase reply: rebase -> %s (%s)\n", zkc_strerror(rc), msg);
    REQUIRE(zkh_proxy_faults_fired(g_px[0]) == 1, "the rebase multi's reply was not delayed");
    REQUIRE(tu_session_id(c) == sid, "the session was lost: the test did not test the late reply");
    /* The raw client's server may lag the leader by a moment. */
    int recreated = 0;
    long long deadline = tu_now_ms() + tu_ms(5000);
    do {
        REQUIRE(zoo_exists(zh, path, 0, &after) == ZOK, "stat %s", path);
        recreated = after.czxid != before.czxid;
    } while (!recreated && tu_now_ms() < deadline && (tu_nap_ms(20), 1));
    /* Whatever it said must be true: the multi reached the leader, so the
     * node was re-created; "nothing was written" is a lie. */
    REQUIRE(rc == 0 || rc == ZKC_EUNKNOWN, "rebase said %s (%s) but the node was %s", zkc_strerror(rc), msg,
            recreated ? "re-created" : "left alone");
    REQUIRE(recreated, "the delayed rebase was not applied: the test did not test the late reply");
    int64_t v = -1;
    REQUIRE(zkc_counter_get(ctr, &v) == 0 && v == 7, "value after the rebase: %" PRId64 " (%s)", v, zkc_errmsg());
    zookeeper_close(zh);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    cleanup();
}
END_TEST

/* ================================================================ fresh reads */

/* One writer session and one reader session, both on the whole ensemble, in
 * lock step while the leader is killed: after each acknowledged add (and
 * restock) the reader's fresh read must see it. Plain reads of the same
 * moments are counted to show the fresh read is doing something, not asserted
 * (a follower usually has the commit by then). The two sessions list the
 * servers in different orders, taken in order, so that they mostly sit on
 * different servers: on the same one a plain read could not lag. */
#define FR_ROUNDS 3
#define FR_MAX_OPS 200000

typedef struct fresh_run {
    zkc_counter *aw, *br;       /* session A's and session B's view of one counter */
    zkc_inventory *iw, *ir;     /* the same for one inventory */
    int *stop;
    long checks, misses, plain_lag, read_fail, write_fail, stock_checks;
    char first_miss[256];
    pthread_t th;
} fresh_run;

static void *fresh_loop(void *arg)
{
    fresh_run *f = arg;
    int64_t restocked = 0;
    for (long i = 0; i < FR_MAX_OPS && !__atomic_load_n(f->stop, __ATOMIC_ACQUIRE); i++) {
        zkc_counter_result res;
        if (zkc_counter_add(f->aw, 1, NULL, &res) != 0) {
            f->write_fail++; /* decided or not, a later acknowledged add bounds it */
            continue;
        }
        /* Fresh read first on odd rounds, so a read right after the
         * acknowledgement is sometimes the fresh one. */
        int64_t plain = 0, fresh = 0;
        int prc = 1, frc;
        if (i & 1) {
            frc = zkc_counter_get_fresh(f->br, &fresh);
            prc = zkc_counter_get(f->br, &plain);
        } else {
            prc = zkc_counter_get(f->br, &plain);
            frc = zkc_counter_get_fresh(f->br, &fresh);
        }
        if (prc == 0 && plain < res.after)
            f->plain_lag++;
        if (frc != 0) {
            f->read_fail++; /* no server answered in time: nothing read, nothing to check */
        } else {
            f->checks++;
            if (fresh < res.after && f->misses++ == 0)
                snprintf(f->first_miss, sizeof f->first_miss,
                         "fresh counter read %" PRId64 " after an acknowledged %" PRId64 " (round %ld)", fresh,
                         res.after, i);
            progress_add();
        }
        if (i % 4)
            continue;
        if (zkc_inventory_restock(f->iw, "sku", 1) != 0) {
            f->write_fail++; /* may have applied: the bound below stays a lower one */
            continue;
        }
        restocked++;
        zkc_inventory_stock_info info;
        if (zkc_inventory_stock_fresh(f->ir, "sku", &info) != 0) {
            f->read_fail++;
            continue;
        }
        f->stock_checks++;
        if (info.total < restocked && f->misses++ == 0)
            snprintf(f->first_miss, sizeof f->first_miss,
                     "stock total %" PRId64 " after %" PRId64 " acknowledged restocks (round %ld)", info.total,
                     restocked, i);
    }
    return NULL;
}

START_TEST(t_fresh_reads_leader_kill)
{
    zkh_ensemble *e = fault_ensemble(1);
    if (!e)
        return;
    char pa[256], root[256];
    unique_path(pa, sizeof pa, "fresh");
    unique_path(root, sizeof root, "fresh-inv");
    long long t0 = tu_now_ms();
    char ha[512], hb[512];
    snprintf(ha, sizeof ha, "%s,%s,%s", zkh_node_hostport(e, 0), zkh_node_hostport(e, 1), zkh_node_hostport(e, 2));
    snprintf(hb, sizeof hb, "%s,%s,%s", zkh_node_hostport(e, 1), zkh_node_hostport(e, 2), zkh_node_hostport(e, 0));
    zoo_deterministic_conn_order(1);
    zkc_client *a = client_on(ha, 10000, NULL, NULL);
    zkc_client *b = client_on(hb, 10000, NULL, NULL);
    int stop = 0;
    fresh_run f;
    memset(&f, 0, sizeof f);
    f.stop = &stop;
    f.aw = counter_on(a, pa);
    f.br = counter_on(b, pa);
    REQUIRE(zkc_inventory_create(a, root, &f.iw) == 0, "zkc_inventory_create: %s", zkc_errmsg());
    REQUIRE(zkc_inventory_create(b, root, &f.ir) == 0, "zkc_inventory_create: %s", zkc_errmsg());
    REQUIRE(pthread_create(&f.th, NULL, fresh_loop, &f) == 0, "pthread_create");
    char why[256] = "";
    kill_leader_rounds(e, FR_ROUNDS, 20, "fresh reads", why, sizeof why);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(f.th, NULL);
    fprintf(stderr,
            "fresh reads: %ld counter checks, %ld stock checks, %ld misses; plain reads lagged %ld times; "
            "%ld reads and %ld writes failed; %lld ms\n",
            f.checks, f.stock_checks, f.misses, f.plain_lag, f.read_fail, f.write_fail, tu_now_ms() - t0);
    zkc_inventory_destroy(f.iw);
    zkc_inventory_destroy(f.ir);
    zkc_counter_destroy(f.aw);
    zkc_counter_destroy(f.br);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
    zoo_deterministic_conn_order(0);
    REQUIRE(!why[0], "%s", why);
    REQUIRE(f.misses == 0, "%ld fresh reads missed an acknowledged write; first: %s", f.misses, f.first_miss);
    REQUIRE(f.stock_checks > 0, "no stock read was checked");
    cleanup();
}
END_TEST

/* ================================================================ queued mode */

/* lib/counter_queue.c (linked in): where a counter's queue lives, and how
 * long a waiter waits for the head before applying itself. */
char *zkc__cq_dir(zkc_client *c, const char *path);
extern int zkc__cq_patience_ms;

static int g_qmode = ZKC_COUNTER_QUEUED_ALWAYS; /* queued_on's mode */

static zkc_counter *queued_on(zkc_client *c, const char *path)
{
    zkc_counter_options o;
    zkc_counter_options_init(&o);
    o.queued = g_qmode;
    zkc_counter *ctr = NULL;
    int rc = zkc_counter_create(c, path, &o, &ctr);
    REQUIRE(rc == 0, "zkc_counter_create(%s): %s", path, zkc_strerror(rc));
    return ctr;
}

/* Batches (q-) and outcome records (r-) in path's queue, read from the servers;
 * returns 0, or ZNONODE when the queue was never made. */
static int queue_count(zkc_client *c, const char *path, int *batches, int *results)
{
    char *dir = zkc__cq_dir(c, path);
    REQUIRE(dir != NULL, "out of memory");
    tu_raw *rw = tu_raw_open(zkh_ensemble_hosts(g_e), 10000);
    REQUIRE(rw != NULL, "raw client");
    tu_raw_sync(rw, dir);
    struct String_vector v = {0, NULL};
    int rc = zoo_get_children(tu_raw_zh(rw), dir, 0, &v);
    *batches = *results = 0;
    for (int i = 0; rc == ZOK && i < v.count; i++)
        (*(strncmp(v.data[i], "q-", 2) == 0 ? batches : results))++;
    if (rc == ZOK)
        deallocate_String_vector(&v);
    tu_raw_close(rw);
    free(dir);
    REQUIRE(rc == ZOK || rc == ZNONODE, "listing %s: %s", path, zerror(rc));
    return rc;
}

typedef struct qrec {
    int64_t delta, before, after;
    int rc;
} qrec;

#define QL_BG 400
typedef struct qbg {
    zkc_counter *ctr;
    qrec rec[QL_BG];
    int n;
    int stop; /* atomic */
} qbg;

static void *qbg_run(void *arg)
{
    qbg *b = arg;
    uint64_t seed = 77;
    while (b->n < QL_BG && !__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
        qrec *r = &b->rec[b->n];
        zkc_counter_result res = {0, 0, 0};
        r->delta = 1 + (int64_t)(tu_rng_next(&seed) % 1000);
        r->rc = zkc_counter_add(b->ctr, r->delta, NULL, &res);
        r->before = res.before;
        r->after = res.after;
        b->n++;
    }
    return NULL;
}

static int cmp_qrec(const void *a, const void *b)
{
    const qrec *x = *(qrec *const *)a, *y = *(qrec *const *)b;
    return x->before < y->before ? -1 : x->before > y->before;
}

/* Lost replies in the queued mode. Client P reaches the ensemble through a
 * proxy; before each of its adds the proxy is armed to drop the next k multi
 * replies (applied, the client sees a connection loss) or requests (not
 * applied), k = 1..3: the first is P's enqueue, the second the apply multi P
 * sends as head (which carries B's batches too when they are queued), the
 * third a later one. Client B adds without faults in queued mode all along,
 * so P is sometimes the applier of B's batches and sometimes waits behind
 * them. Every add must succeed (a server is reachable), and all adds of both
 * chain exactly from 0 to the final value: none lost, none applied twice.
 * queued-lost-auto: both in ZKC_COUNTER_QUEUED_AUTO, so the faults meet P's
 * direct adds first (B's adds keep P's cached version stale) and its queued
 * ones once that contention has switched it in. */
static void queued_lost_replies(void)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    char path[256];
    unique_path(path, sizeof path, "qlost");
    zkc_client *p = client_on(zkh_proxy_hostport(g_px[0]), 10000, NULL, NULL);
    zkc_client *b = client_on(zkh_ensemble_hosts(e), 10000, NULL, NULL);
    zkc_counter *pc = queued_on(p, path);
    static qbg bg;
    memset(&bg, 0, sizeof bg);
    bg.ctr = queued_on(b, path);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, qbg_run, &bg) == 0, "pthread_create");
    enum { ROUNDS = 4 };
    static qrec mine[2 * 3 * ROUNDS];
    int nm = 0, fired = 0;
    char fail[512] = "";
    for (int round = 0; round < ROUNDS; round++)
        for (int reply = 0; reply < 2; reply++)
            for (int k = 1; k <= 3; k++) {
                int f0 = zkh_proxy_faults_fired(g_px[0]);
                if (reply)
                    zkh_proxy_drop_reply(g_px[0], OP_MULTI, k);
                else
                    zkh_proxy_drop_request(g_px[0], OP_MULTI, k);
                qrec *r = &mine[nm++];
                zkc_counter_result res = {0, 0, 0};
                r->delta = 1000 + round * 10 + k;
                r->rc = zkc_counter_add(pc, r->delta, NULL, &res);
                r->before = res.before;
                r->after = res.after;
                if (r->rc && !fail[0])
                    snprintf(fail, sizeof fail, "%s k=%d: %s: %s", reply ? "reply" : "request", k,
                             zkc_strerror(r->rc), zkc_errmsg());
                zkh_proxy_drop_reply(g_px[0], OP_MULTI, 0);
                zkh_proxy_drop_request(g_px[0], OP_MULTI, 0);
                fired += zkh_proxy_faults_fired(g_px[0]) - f0;
            }
    __atomic_store_n(&bg.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    REQUIRE(!fail[0], "an add failed with a server reachable: %s", fail);
    static qrec *all[2 * 3 * ROUNDS + QL_BG];
    int n = 0;
    int64_t sum = 0;
    for (int i = 0; i < nm; i++)
        all[n++] = &mine[i];
    for (int i = 0; i < bg.n; i++) {
        REQUIRE(bg.rec[i].rc == 0, "background add %d: %s", i, zkc_strerror(bg.rec[i].rc));
        all[n++] = &bg.rec[i];
    }
    for (int i = 0; i < n; i++) {
        REQUIRE(all[i]->after - all[i]->before == all[i]->delta, "add %d: %lld -> %lld for %+lld", i,
                (long long)all[i]->before, (long long)all[i]->after, (long long)all[i]->delta);
        sum += all[i]->delta;
    }
    qsort(all, (size_t)n, sizeof all[0], cmp_qrec);
    int64_t expect = 0;
    for (int i = 0; i < n; i++) {
        REQUIRE(all[i]->before == expect, "chain: add %d starts at %lld, expected %lld (lost or doubled update)", i,
                (long long)all[i]->before, (long long)expect);
        expect = all[i]->after;
    }
    int64_t v = final_value(path);
    fprintf(stderr, "queued lost replies: %d faults fired, %d adds of ours, %d in the background, final %lld\n",
            fired, nm, bg.n, (long long)v);
    REQUIRE(v == sum && expect == sum, "final %lld, sum of adds %lld, chain end %lld", (long long)v, (long long)sum,
            (long long)expect);
    REQUIRE(fired >= 2 * 3 * ROUNDS, "only %d faults fired", fired);
    int qb = 0, qr = 0;
    int qrc = queue_count(b, path, &qb, &qr);
    REQUIRE(qb == 0, "%d batches left queued", qb);
    if (g_qmode == ZKC_COUNTER_QUEUED_AUTO)
        fprintf(stderr, "queued lost replies (auto): the queue was %s\n", qrc == ZOK ? "used" : "never made");
    zkc_counter_destroy(pc);
    zkc_counter_destroy(bg.ctr);
    zkc_client_destroy(p);
    zkc_client_destroy(b);
    cleanup();
}

START_TEST(t_queued_lost_replies)
{
    g_qmode = ZKC_COUNTER_QUEUED_ALWAYS;
    queued_lost_replies();
}
END_TEST

START_TEST(t_auto_lost_replies)
{
    g_qmode = ZKC_COUNTER_QUEUED_AUTO;
    queued_lost_replies();
    g_qmode = ZKC_COUNTER_QUEUED_ALWAYS;
}
END_TEST

typedef struct qbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, status;
    zkc_counter_result r;
} qbox;

static void qbox_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    qbox *q = ud;
    pthread_mutex_lock(&q->mu);
    q->calls++;
    q->status = status;
    if (r)
        q->r = *r;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static int qbox_wait(qbox *q, int ms)
{
    struct timespec dl;
    tu_deadline_ts(&dl, ms);
    pthread_mutex_lock(&q->mu);
    while (q->calls == 0 && pthread_cond_timedwait(&q->cv, &q->mu, &dl) == 0)
        ;
    int n = q->calls;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* The head goes away before applying. Client A (through a proxy) enqueues
 * +7 and becomes the head, but every multi it sends after the enqueue is
 * dropped, so it never applies. Variant "close": A is destroyed then; its
 * caller hears ZKC_EUNKNOWN (queued, outcome not known), and its batch,
 * persistent, is applied by B, whose own add +10 comes after it in queue
 * order: B sees before = 7. Variant "expire": A's session is expired instead;
 * A carries on in its next session, finds that B applied its batch (its
 * outcome record) or applies it itself, and reports +7 from 0. In both, the counter ends at 17
 * and no batch is left queued. */
static void applier_gone(int expire)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    char path[256];
    unique_path(path, sizeof path, expire ? "qexpire" : "qclose");
    states ss;
    memset(&ss, 0, sizeof ss);
    pthread_mutex_init(&ss.mu, NULL);
    tu_cond_init_mono(&ss.cv);
    zkc_client *a = client_on(zkh_proxy_hostport(g_px[0]), 10000, states_fn, &ss);
    zkc_client *b = client_on(zkh_ensemble_hosts(e), 10000, NULL, NULL);
    zkc_counter *ac = queued_on(a, path);
    zkc_counter *bc = queued_on(b, path);
    zkc_counter_result r = {0, 0, 0};
    /* The marker of A and the queue directory exist before the faults. */
    REQUIRE(zkc_counter_add(ac, 0, NULL, &r) == 0, "warm-up add: %s", zkc_errmsg());
    zkh_proxy_drop_request_after(g_px[0], OP_MULTI, 1, 1000000);
    qbox qa;
    memset(&qa, 0, sizeof qa);
    pthread_mutex_init(&qa.mu, NULL);
    tu_cond_init_mono(&qa.cv);
    REQUIRE(zkc_counter_add_async(ac, 7, NULL, qbox_cb, &qa) == 0, "add_async: %s", zkc_errmsg());
    long long dl = tu_now_ms() + WAIT_MS;
    while (zkh_proxy_faults_fired(g_px[0]) < 1 && tu_now_ms() < dl)
        tu_nap_ms(5);
    REQUIRE(zkh_proxy_faults_fired(g_px[0]) >= 1, "A's apply was never sent");
    int qb = 0, qr = 0;
    queue_count(b, path, &qb, &qr);
    REQUIRE(qb == 1, "%d batches queued, expected A's one", qb);
    if (!expire) {
        zkc_counter_destroy(ac);
        zkc_client_destroy(a);
        REQUIRE(qbox_wait(&qa, 1) == 1, "A's add never completed");
        REQUIRE(qa.status == ZKC_EUNKNOWN, "A's add: %s (expected ZKC_EUNKNOWN: it is queued)",
                zkc_strerror(qa.status));
        zkc_counter_result rb = {0, 0, 0};
        int rc = zkc_counter_add(bc, 10, NULL, &rb);
        REQUIRE(rc == 0, "B's add: %s: %s", zkc_strerror(rc), zkc_errmsg());
        REQUIRE(rb.before == 7 && rb.after == 17, "B's add went %lld -> %lld: A's batch not applied first, once",
                (long long)rb.before, (long long)rb.after);
        queue_count(b, path, &qb, &qr);
        REQUIRE(qb == 0 && qr == 1, "%d batches and %d outcomes left (expected A's outcome only)", qb, qr);
    } else {
        int lost0 = states_get(&ss, ZKC_STATE_LOST);
        int expired = 0;
        for (int attempt = 0; attempt < 3 && !expired; attempt++) {
            int64_t sid = 0;
            char pw[16];
            int pwlen = 0;
            zkc_client_session(a, &sid, pw, &pwlen);
            int rc = zkh_expire_session(zkh_ensemble_hosts(e), sid, pw, pwlen, CONNECT_MS);
            REQUIRE(rc == 0 || rc == -ESTALE, "zkh_expire_session: %s", strerror(-rc));
            expired = states_wait(&ss, ZKC_STATE_LOST, lost0, 15000 * tu_scale());
        }
        REQUIRE(expired, "could not expire A's session in 3 attempts");
        /* A may apply in its next session, or B may first: either way A's
         * batch is ahead of B's in the queue. */
        zkh_proxy_drop_request(g_px[0], OP_MULTI, 0);
        zkc_counter_result rb = {0, 0, 0};
        int rc = zkc_counter_add(bc, 10, NULL, &rb);
        REQUIRE(rc == 0, "B's add: %s: %s", zkc_strerror(rc), zkc_errmsg());
        REQUIRE(rb.before == 7 && rb.after == 17, "B's add went %lld -> %lld: A's batch not applied first, once",
                (long long)rb.before, (long long)rb.after);
        REQUIRE(qbox_wait(&qa, WAIT_MS) == 1, "A's add never completed");
        REQUIRE(qa.status == 0 && qa.r.before == 0 && qa.r.after == 7, "A's add: %s, %lld -> %lld",
                zkc_strerror(qa.status), (long long)qa.r.before, (long long)qa.r.after);
        zkh_proxy_drop_request(g_px[0], OP_MULTI, 0);
        queue_count(b, path, &qb, &qr);
        REQUIRE(qb == 0, "%d batches left queued", qb);
        zkc_counter_destroy(ac);
        zkc_client_destroy(a);
    }
    REQUIRE(final_value(path) == 17, "final value %lld, expected 17", (long long)final_value(path));
    zkc_counter_destroy(bc);
    zkc_client_destroy(b);
    cleanup();
}

/* BOUND (lib/counter_queue.c): an apply that loses every round. Client A
 * (through a proxy) adds +5 in queued mode; every counter read it makes is
 * answered by the server at once but held 300 ms on the way back, and a raw
 * client keeps rewriting the counter with the same bytes, so the version A
 * read is always stale by the time its apply arrives and every apply fails
 * whole. Before the bound, A looped list, read, apply, BADVERSION for as long
 * as the writer ran (the CI's 78 s). Now, once the operation and session
 * timeouts have nearly passed, A withdraws its batch: the caller hears
 * ZKC_ECONTENDED, the counter is unchanged, no batch is left queued, and the
 * next add, without the fault, applies +5 from 0. */
#define OP_GETDATA 4

typedef struct bumper {
    zhandle_t *zh;
    const char *path;
    char data[64];
    int len;
    long sets;
    int stop; /* atomic */
} bumper;

static void *bumper_run(void *arg)
{
    bumper *bp = arg;
    while (!__atomic_load_n(&bp->stop, __ATOMIC_ACQUIRE))
        if (zoo_set(bp->zh, bp->path, bp->data, bp->len, -1) == ZOK)
            bp->sets++;
    return NULL;
}

START_TEST(t_queued_withdrawn_at_bound)
{
    zkh_ensemble *e = fault_ensemble(0);
    if (!e)
        return;
    REQUIRE(zkh_proxy_start(&g_px[0], zkh_node_hostport(e, 0)) == 0, "proxy");
    char path[256];
    unique_path(path, sizeof path, "qbound");
    zkc_client *a = client_on(zkh_proxy_hostport(g_px[0]), 4000, NULL, NULL);
    zkc_counter *ac = queued_on(a, path);
    zkc_counter_result r = {0, 0, 0};
    REQUIRE(zkc_counter_add(ac, 0, NULL, &r) == 0, "warm-up add: %s", zkc_errmsg());
    bumper bp;
    memset(&bp, 0, sizeof bp);
    tu_raw *rw = tu_raw_open(zkh_ensemble_hosts(e), 10000);
    REQUIRE(rw != NULL, "raw client");
    bp.zh = tu_raw_zh(rw);
    bp.path = path;
    bp.len = (int)sizeof bp.data;
    REQUIRE(zoo_get(bp.zh, path, 0, bp.data, &bp.len, NULL) == ZOK, "reading %s", path);
    zkh_proxy_delay_reply(g_px[0], OP_GETDATA, 1000000, 300);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bumper_run, &bp) == 0, "bumper thread");
    long long t0 = tu_now_ms();
    qbox qa;
    memset(&qa, 0, sizeof qa);
    pthread_mutex_init(&qa.mu, NULL);
    tu_cond_init_mono(&qa.cv);
    REQUIRE(zkc_counter_add_async(ac, 5, NULL, qbox_cb, &qa) == 0, "add_async: %s", zkc_errmsg());
    /* The add's bound is the session + the operation timeout (2 x session);
     * the withdraw starts at the session + 3/4 of the operation timeout. */
    int bound = (4000 + 8000) * tu_scale(), withdraw_at = (4000 + 6000) * tu_scale();
    int calls = qbox_wait(&qa, bound + 20000 * tu_scale());
    long long took = tu_now_ms() - t0;
    __atomic_store_n(&bp.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    zkh_proxy_delay_reply(g_px[0], OP_GETDATA, 0, 0);
    fprintf(stderr, "queued bound: %d call(s) after %lld ms (bound %d ms): %s; %ld rewrites of the counter\n", calls,
            took, bound, calls ? zkc_strerror(qa.status) : "none", bp.sets);
    REQUIRE(calls == 1, "the add never completed (%lld ms, bound %d ms)", took, bound);
    REQUIRE(qa.status == ZKC_ECONTENDED, "the add: %s (expected ZKC_ECONTENDED: withdrawn, nothing written)",
            zkc_strerror(qa.status));
    REQUIRE(took >= withdraw_at && took <= bound, "completed after %lld ms, outside [%d, %d] ms", took, withdraw_at,
            bound);
    int qb = 0, qr = 0;
    queue_count(a, path, &qb, &qr);
    REQUIRE(qb == 0, "%d batches left queued", qb);
    REQUIRE(final_value(path) == 0, "final value %lld, expected 0 (nothing written)", (long long)final_value(path));
    REQUIRE(zkc_counter_add(ac, 5, NULL, &r) == 0, "the next add: %s", zkc_errmsg());
    REQUIRE(r.before == 0 && r.after == 5, "the next add went %lld -> %lld", (long long)r.before,
            (long long)r.after);
    tu_raw_close(rw);
    zkc_counter_destroy(ac);
    zkc_client_destroy(a);
    cleanup();
}
END_TEST

START_TEST(t_queued_applier_closed)
{
    applier_gone(0);
}
END_TEST

START_TEST(t_queued_applier_expired)
{
    applier_gone(1);
}
END_TEST

static void reset_progress(void)
{
    pthread_mutex_lock(&g_prog.mu);
    g_prog.done = 0;
    pthread_mutex_unlock(&g_prog.mu);
    __atomic_store_n(&g_sesslost, 0, __ATOMIC_RELAXED);
}

static Suite *faults_suite(void)
{
    /* One test case each, so CK_RUN_CASE=<name> runs one alone. */
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"proxy", t_proxy_drop_request_and_reply},
        {"first-use", t_dropped_creates_on_first_use},
        {"leader", t_leader_kill},
        {"expiry", t_session_expiry},
        {"retention", t_marker_retention},
        {"cleanup-undecided", t_cleanup_while_undecided},
        {"cleanup-clock-unknown", t_cleanup_clock_unknown},
        {"async-contract", t_expiry_with_batch_in_flight},
        {"late-marker-create", t_late_marker_create_reply},
        {"late-rebase", t_late_rebase_reply},
        {"fresh", t_fresh_reads_leader_kill},
        {"queued-lost", t_queued_lost_replies},
        {"queued-lost-auto", t_auto_lost_replies},
        {"queued-closed", t_queued_applier_closed},
        {"queued-expired", t_queued_applier_expired},
        {"queued-bound", t_queued_withdrawn_at_bound},
    };
    Suite *s = suite_create("counter-faults");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 420 * tu_scale());
        tcase_add_checked_fixture(tc, reset_progress, NULL);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    zoo_set_debug_level(0);
    pthread_mutex_init(&g_prog.mu, NULL);
    tu_cond_init_mono(&g_prog.cv);
    long long t0 = tu_now_ms();
    SRunner *sr = srunner_create(faults_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fprintf(stderr, "test_counter_faults: %lld ms in all\n", tu_now_ms() - t0);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
