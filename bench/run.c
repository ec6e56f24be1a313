/* Workers and rounds: one side of a scenario is n worker threads calling the
 * side's operation in a loop for a timed run; run_side adds one round to the
 * side (ops/s, latency samples, requests, CPU, context switches). */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_finished;          /* atomic */
static double g_t0, g_deadline; /* ms, monotonic */
static pthread_barrier_t g_bar;

zkc_client *lib_client(char *err, size_t errlen)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = g_hosts;
    o.meta_root = g_meta;
    o.session_timeout_ms = 10000;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    if (rc) {
        snprintf(err, errlen, "zkc_client_create: %s (%s)", zkc_strerror(rc), zkc_errmsg());
        return NULL;
    }
    return c;
}

static void stats_sum(zkc_client **cs, int n, zkc_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        zkc_stats s;
        zkc_client_stats(cs[i], &s);
        for (int k = 0; k < 16; k++)
            out->requests[k] += s.requests[k];
        out->requests_total += s.requests_total;
        out->retries += s.retries;
        out->conflicts += s.conflicts;
        out->sessions += s.sessions;
        out->lost += s.lost;
        out->suspended += s.suspended;
    }
}

void worker_init(worker *w, int idx, op_fn fn, void *obj, void *sc)
{
    memset(w, 0, sizeof *w);
    w->idx = idx;
    w->fn = fn;
    w->obj = obj;
    w->sc = sc;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

void worker_fini(worker *w)
{
    lat_free(&w->lat);
    free(w->grants);
    free(w->objs);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* Where the peers of a scenario keep their nodes: g_root/peers/rel. */
const char *peer_dir(const char *rel)
{
    static char buf[200];
    snprintf(buf, sizeof buf, "%s/peers/%s", g_root, rel);
    return buf;
}

/* Workers that cycle over several objects (lock_many): the next one, or NULL
 * for a worker of one object. */
void *worker_next_obj(worker *w)
{
    if (!w->nobjs)
        return NULL;
    void *o = w->objs[w->cursor];
    w->cursor = (w->cursor + 1) % w->nobjs;
    return o;
}

int lib_err(worker *w, int rc, const char *what)
{
    snprintf(w->err, sizeof w->err, "%s: %s (%s)", what, zkc_strerror(rc), zkc_errmsg());
    return -1;
}

int raw_err(worker *w, int z, const char *what)
{
    snprintf(w->err, sizeof w->err, "raw %s: %s", what, zerror(z));
    return -1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(&g_bar);
    while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
        double t0 = now_ms();
        int rc = w->fn(w);
        double t1 = now_ms();
        if (rc == OP_DONE)
            break;
        if (rc < 0) {
            w->fatal = rc;
            break;
        }
        if (rc == OP_FAIL) {
            w->fails++;
            continue;
        }
        w->ops_all++;
        if (t1 <= g_deadline) {
            w->ops++;
            lat_push(&w->lat, t1 - t0);
        }
    }
    w->finish = now_ms();
    __atomic_add_fetch(&g_finished, 1, __ATOMIC_ACQ_REL);
    return NULL;
}

void rep_fail(report *rep, const char *fmt, ...)
{
    if (strcmp(rep->status, "error") == 0)
        return;
    snprintf(rep->status, sizeof rep->status, "error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->message, sizeof rep->message, fmt, ap);
    va_end(ap);
}

int rep_ok(const report *rep)
{
    return strcmp(rep->status, "ok") == 0 && !g_interrupted;
}

/* Run n workers for `seconds` (or until they all return OP_DONE), add the round
 * to sd. cs: the library clients whose stats to difference (NULL for floors). */
int run_side(report *rep, side *sd, worker *ws, int n, double seconds, zkc_client **cs, int ncs)
{
    if (sd->n >= MAXR)
        return -1;
    /* --side: profile one side alone (callgrind); the other is skipped. */
    if ((opt.side == 1 && sd != &rep->lib) || (opt.side == 2 && sd == &rep->lib))
        return 0;
    zkc_stats s0, s1;
    if (ncs)
        stats_sum(cs, ncs, &s0);
    for (int i = 0; i < n; i++) {
        worker *w = &ws[i];
        w->ops = w->ops_all = w->fails = w->conflicts = 0;
        memset(w->req, 0, sizeof w->req);
        w->lat.n = 0;
        w->fatal = 0;
        w->err[0] = 0;
        w->ngrants = 0;
        w->raw_lost = 0;
    }
    double c0 = cpu_ms(), sc0 = server_cpu_ms(), x0 = ctx_switches();
    double p0 = opt.peers ? server_packets() : NAN, z0 = opt.peers ? server_zxid() : NAN;
    __atomic_store_n(&g_stop, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_finished, 0, __ATOMIC_RELEASE);
    pthread_barrier_init(&g_bar, NULL, (unsigned)n + 1);
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            rep_fail(rep, "pthread_create failed");
            fatal_stuck("cannot start worker threads");
        }
        started++;
    }
    g_t0 = now_ms();
    g_deadline = g_t0 + seconds * 1000.0;
    pthread_barrier_wait(&g_bar);
    while (now_ms() < g_deadline && __atomic_load_n(&g_finished, __ATOMIC_ACQUIRE) < n && !g_interrupted)
        sleep_ms(fmin(5.0, g_deadline - now_ms()));
    int all_done_early = __atomic_load_n(&g_finished, __ATOMIC_ACQUIRE) == n;
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < started; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 120;
        if (pthread_timedjoin_np(ws[i].th, NULL, &ts) != 0)
            fatal_stuck("a worker did not finish its operation within 120 s of the end of the round");
    }
    pthread_barrier_destroy(&g_bar);
    double c1 = cpu_ms(), sc1 = server_cpu_ms(), x1 = ctx_switches();
    if (opt.peers) {
        sd->srv_pkts += server_packets() - p0;
        sd->srv_writes += server_zxid() - z0;
    }
    double elapsed = seconds * 1000.0;
    if (all_done_early) {
        double last = g_t0;
        for (int i = 0; i < n; i++)
            last = fmax(last, ws[i].finish);
        elapsed = fmax(1.0, last - g_t0);
    }
    uint64_t ops = 0, all = 0;
    int lost = 0;
    for (int i = 0; i < n; i++) {
        worker *w = &ws[i];
        lost += w->raw_lost;
        ops += w->ops;
        all += w->ops_all;
        sd->fails += w->fails;
        lat_append(&sd->lat, &w->lat);
        if (!ncs) {
            for (int k = 0; k < 16; k++)
                sd->req[k] += w->req[k];
            sd->conflicts += w->conflicts;
        }
        if (w->fatal && strcmp(rep->status, "error") != 0)
            rep_fail(rep, "worker %d: %s", i, w->err);
    }
    if (ncs) {
        stats_sum(cs, ncs, &s1);
        for (int k = 0; k < 16; k++)
            sd->req[k] += s1.requests[k] - s0.requests[k];
        sd->conflicts += s1.conflicts - s0.conflicts;
        if (s1.lost != s0.lost || s1.suspended != s0.suspended)
            sb_printf(&rep->notes, "round %d: %llu session loss(es), %llu suspension(s) during the library run. ",
                      sd->n + 1, (unsigned long long)(s1.lost - s0.lost),
                      (unsigned long long)(s1.suspended - s0.suspended));
    }
    if (lost) {
        /* A raw floor that rode out a stalled server (op_raw_lock_handoff):
         * say so where a reader looks, the log and the report. */
        const char *why = "the C client gave up on a raw session's connection (ZOPERATIONTIMEOUT: nothing received "
                          "for 2/3 of the session timeout, a stalled server) or lost it; the floor repeated what "
                          "was lost once reconnected (a lock chain kept whole) and counts each operation that lost "
                          "a request as failed";
        fprintf(stderr, "  %s: floor round %d: %d raw request(s) lost: %s\n", rep->name, sd->n + 1, lost, why);
        sb_printf(&rep->notes, "floor round %d: %d raw request(s) lost: %s. ", sd->n + 1, lost, why);
    }
    sd->ops_all += all;
    sd->cpu_ms += c1 - c0;
    sd->srv_cpu_ms += sc1 - sc0;
    sd->csw += x1 - x0;
    sd->ops[sd->n++] = (double)ops / (elapsed / 1000.0);
    if (opt.verbose)
        fprintf(stderr, "  %s: %s round %d: %llu ops in %.2f s = %.1f ops/s\n", rep->name,
                sd == &rep->lib ? "library" : sd == &rep->fl ? "floor" : "floor2", sd->n,
                (unsigned long long)ops, elapsed / 1000.0, sd->ops[sd->n - 1]);
    return rep_ok(rep) ? 0 : -1;
}


raw_conn *setup_raw(report *rep)
{
    char err[300];
    raw_conn *rc = raw_open(err, sizeof err);
    if (!rc)
        rep_fail(rep, "%s", err);
    return rc;
}

zkc_client *setup_client(report *rep)
{
    char err[600];
    zkc_client *c = lib_client(err, sizeof err);
    if (!c)
        rep_fail(rep, "%s", err);
    return c;
}

void params_common(report *rep, int sessions, int threads)
{
    rep->threads = threads;
    kv_num(&rep->params, "sessions", sessions);
    kv_num(&rep->params, "threads", threads);
    kv_num(&rep->params, "seconds_per_round", opt.seconds);
    kv_num(&rep->params, "rounds", opt.rounds);
}

void warm(report *rep, worker *w, const char *what)
{
    int rc = w->fn(w);
    if (rc < 0)
        rep_fail(rep, "warm-up %s: %s", what, w->err);
}
