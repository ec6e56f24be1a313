/* lock_threads: many threads of one process on one lock (issue 19; Curator
 * users report InterProcessMutex slow with about 1,000 waiting threads).
 *
 * Every thread has its own zkc_lock object on one path of one client and
 * cycles acquire + release; the figure is handoffs per second. The floor is
 * the predecessor-watch protocol on one raw session with as many threads;
 * with --peers, Curator's InterProcessMutex with as many threads in one JVM.
 *
 * Wake-ups per handoff: a lock that broadcasts (every waiter re-checks on every
 * release) wakes each waiting thread once per handoff ahead of it, so a thread
 * that waited behind k holders blocks and wakes about k times inside one
 * acquire; a lock that wakes only the next waiter wakes it once. We count it
 * where it happens, in the waiting thread: voluntary context switches of the
 * calling thread (getrusage RUSAGE_THREAD) across zkc_lock_acquire, per
 * acquisition. Its ideal is 1 (the one wait until granted; a wait for an
 * internal mutex adds to it). The floor's figure includes one wake per
 * synchronous request of its protocol (create, getChildren, get+watch, then
 * the watch), so about 4. The servers' watch notifications per handoff are
 * reported too (mntr; one session's watches on one node are one notification,
 * so this shows the session is told once, not how it wakes its threads).
 *
 * Memory per waiter: with one thread holding, the others blocked in
 * zkc_lock_acquire and the queue complete, RSS and malloc'd bytes over the
 * state before those threads started, divided by the waiters (RSS includes
 * each thread's touched stack). */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int op_raw_handoff_counted(worker *w)
{
    double c0 = thread_voluntary_switches();
    int rc = op_raw_lock_handoff(w);
    w->wakeups += thread_voluntary_switches() - c0;
    return rc;
}

/* One round of one side, with its wake-ups and the servers' watch events. */
static int timed_round(report *rep, side *sd, worker *ws, int nt, zkc_client **c, int nc, double *wake,
                       double *events)
{
    double e0 = server_watch_events();
    for (int t = 0; t < nt; t++)
        ws[t].wakeups = 0;
    int rc = run_side(rep, sd, ws, nt, opt.seconds, c, nc);
    *events += server_watch_events() - e0;
    for (int t = 0; t < nt; t++)
        *wake += ws[t].wakeups;
    return rc;
}

typedef struct blocked {
    zkc_lock *l;
    int rc;
} blocked;

static void *blocked_main(void *arg)
{
    blocked *b = arg;
    b->rc = zkc_lock_acquire(b->l, LOCK_TIMEOUT_MS * 5, NULL);
    if (b->rc == 0)
        b->rc = zkc_lock_release(b->l);
    return NULL;
}

/* locks[0] holds, locks[1..nt-1] wait in threads of their own. */
static void measure_thread_waiters(report *rep, zkc_client *c, const char *path, zkc_lock **locks, int nt)
{
    int nw = nt - 1;
    pthread_t *th = calloc((size_t)nw, sizeof *th);
    blocked *bs = calloc((size_t)nw, sizeof *bs);
    if (!th || !bs || zkc_lock_acquire(locks[0], LOCK_TIMEOUT_MS, NULL)) {
        sb_printf(&rep->notes, "waiter memory not measured: %s. ", th && bs ? zkc_errmsg() : "out of memory");
        free(th);
        free(bs);
        return;
    }
    sleep_ms(100);
    long long m0 = mem_inuse();
    long r0 = rss_kb();
    int started = 0;
    for (int i = 0; i < nw; i++, started++) {
        bs[i].l = locks[i + 1];
        if (pthread_create(&th[i], NULL, blocked_main, &bs[i]))
            break;
    }
    int count = lock_queue_wait(c, path, started + 1, now_ms() + 60000);
    long long m1 = mem_inuse();
    long r1 = rss_kb();
    if (count >= started + 1 && started > 0) {
        kv_num(&rep->extra, "waiting_threads_measured", started);
        kv_num(&rep->extra, "mem_per_waiting_thread_bytes", (double)(m1 - m0) / started);
        kv_num(&rep->extra, "rss_per_waiting_thread_bytes", (double)(r1 - r0) * 1024.0 / started);
    } else {
        sb_printf(&rep->notes, "waiter memory not measured: %d of %d waiters queued within 60 s. ", count - 1,
                  started);
    }
    zkc_lock_release(locks[0]);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (bs[i].rc && rep_ok(rep))
            rep_fail(rep, "waiting thread %d: %s", i, zkc_strerror(bs[i].rc));
    }
    free(th);
    free(bs);
}

void sc_lock_threads(report *rep)
{
    const int threads_full = 1000, threads_quick = 16;
    int nt = opt.lock_threads > 0 ? opt.lock_threads : SCN(threads);
    char libp[160], rawp[160];
    snprintf(libp, sizeof libp, "%s/lt/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/lt/raw", g_root);
    params_common(rep, 1, nt);
    rep->floor_what = "one raw session, as many threads: create, getChildren, get+watch predecessor, wait, delete";
    raw_conn *rc = NULL;
    zkc_client *c = NULL;
    zkc_lock **locks = calloc((size_t)nt, sizeof *locks);
    worker *wl = calloc((size_t)nt, sizeof *wl), *wf = calloc((size_t)nt, sizeof *wf);
    if (!locks || !wl || !wf) {
        rep_fail(rep, "out of memory");
        goto out;
    }
    for (int t = 0; t < nt; t++) {
        worker_init(&wl[t], t, op_lock_cycle, NULL, NULL);
        wl[t].count_wakeups = 1;
        worker_init(&wf[t], t, op_raw_handoff_counted, NULL, NULL);
    }
    if (lock_sides_open(rep, libp, rawp, &c, &rc))
        goto out;
    for (int t = 0; t < nt; t++) {
        if (zkc_lock_create(c, libp, &locks[t])) {
            rep_fail(rep, "zkc_lock_create: %s", zkc_errmsg());
            goto out;
        }
        wl[t].obj = locks[t];
        wf[t].obj = rc;
        snprintf(wf[t].path, sizeof wf[t].path, "%s", rawp);
    }
    warm(rep, &wl[0], "library");
    warm(rep, &wf[0], "floor");
    if (opt.peers) {
        char arg[32];
        snprintf(arg, sizeof arg, "%d", nt);
        rep->peers = peers_start("mutex_threads", 1, peer_dir("lt"), arg,
                                 "InterProcessMutex acquire + release, one instance per thread, all threads of one JVM",
                                 NULL);
    }
    double lwake = 0, fwake = 0, lev = 0, fev = 0;
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (timed_round(rep, &rep->lib, wl, nt, &c, 1, &lwake, &lev) ||
            timed_round(rep, &rep->fl, wf, nt, NULL, 0, &fwake, &fev))
            break;
        peers_round(rep->peers, opt.seconds);
    }
    kv_num(&rep->extra, "waiter_wakeups_per_handoff", side_per_op(&rep->lib, lwake));
    kv_num(&rep->extra, "floor_waiter_wakeups_per_handoff", side_per_op(&rep->fl, fwake));
    kv_str(&rep->extra, "wakeups_method",
           "voluntary context switches of the acquiring thread (getrusage RUSAGE_THREAD) across the acquire, per "
           "acquisition: 1 = woken once when granted; a broadcast wakes a waiter once per handoff ahead of it. The "
           "floor's includes one wake per synchronous request (create, getChildren, get+watch) besides the watch");
    kv_num(&rep->extra, "server_watch_events_per_handoff", side_per_op(&rep->lib, lev));
    kv_num(&rep->extra, "floor_server_watch_events_per_handoff", side_per_op(&rep->fl, fev));
    if (rep_ok(rep))
        measure_thread_waiters(rep, c, libp, locks, nt);
out:
    lock_sides_close(c, rc, locks, nt, wl, wf, nt);
}
