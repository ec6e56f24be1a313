/* Lock scenarios: lock_uncontended, lock_contended (with memory and server
 * watches per waiter), lock_many. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

/* ---- locks ---- */

static zkc_lock *next_lock(worker *w)
{
    zkc_lock *l = worker_next_obj(w);
    return l ? l : w->obj;
}

int op_lock_cycle(worker *w)
{
    zkc_lock *l = next_lock(w);
    double c0 = w->count_wakeups ? thread_voluntary_switches() : 0;
    int rc = zkc_lock_acquire(l, LOCK_TIMEOUT_MS, NULL);
    if (w->count_wakeups)
        w->wakeups += thread_voluntary_switches() - c0;
    if (rc)
        return lib_err(w, rc, "zkc_lock_acquire");
    rc = zkc_lock_release(l);
    if (rc)
        return lib_err(w, rc, "zkc_lock_release");
    return OP_OK;
}

/* The parents libp and rawp, a library client and a raw session: 0, or -1
 * with the reason in rep. */
int lock_sides_open(report *rep, const char *libp, const char *rawp, zkc_client **c, raw_conn **rc)
{
    raw_conn *setup = setup_raw(rep);
    if (!setup)
        return -1;
    int z = raw_mkpath(setup->zh, libp) || raw_mkpath(setup->zh, rawp);
    raw_close(setup);
    if (z) {
        rep_fail(rep, "cannot create %s", libp);
        return -1;
    }
    if (!(*c = setup_client(rep)) || !(*rc = setup_raw(rep)))
        return -1;
    return 0;
}

/* Frees what lock_sides_open opened and the nl lock objects and nt worker
 * pairs of a many-threads scenario (arrays included; any may be NULL). */
void lock_sides_close(zkc_client *c, raw_conn *rc, zkc_lock **locks, int nl, worker *wl, worker *wf, int nt)
{
    if (locks)
        for (int i = 0; i < nl; i++)
            zkc_lock_destroy(locks[i]);
    zkc_client_destroy(c);
    raw_close(rc);
    if (wl && wf)
        for (int t = 0; t < nt; t++) {
            worker_fini(&wl[t]);
            worker_fini(&wf[t]);
        }
    free(wl);
    free(wf);
    free(locks);
}

/* ---- lock_uncontended ---- */

void sc_lock_uncontended(report *rep)
{
    char libp[160], rawp[160];
    snprintf(libp, sizeof libp, "%s/lu/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/lu/raw", g_root);
    params_common(rep, 1, 1);
    rep->floor_what = "raw create(ephemeral-sequential) + getChildren + delete";
    raw_conn *rc = NULL;
    zkc_client *c = NULL;
    zkc_lock *l = NULL;
    worker wl, wf;
    worker_init(&wl, 0, op_lock_cycle, NULL, NULL);
    worker_init(&wf, 0, op_raw_lock_cycle, NULL, NULL);
    if (lock_sides_open(rep, libp, rawp, &c, &rc))
        goto out;
    int e = zkc_lock_create(c, libp, &l);
    if (e) {
        rep_fail(rep, "zkc_lock_create: %s", zkc_errmsg());
        goto out;
    }
    wl.obj = l;
    wf.obj = rc;
    snprintf(wf.path, sizeof wf.path, "%s", rawp);
    warm(rep, &wl, "library");
    warm(rep, &wf, "floor");
    if (opt.peers)
        rep->peers = peers_start("mutex", 1, peer_dir("lu"), NULL, "InterProcessMutex acquire + release",
                                 "Lock acquire + release");
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, &wl, 1, opt.seconds, &c, 1) || run_side(rep, &rep->fl, &wf, 1, opt.seconds, NULL, 0))
            break;
        peers_round(rep->peers, opt.seconds);
    }
out:
    zkc_lock_destroy(l);
    zkc_client_destroy(c);
    raw_close(rc);
    worker_fini(&wl);
    worker_fini(&wf);
}

/* ---- lock_contended (+ memory and watches per waiter) ---- */

static void waiter_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    (void)status;
    (void)token;
    (void)ud;
}

/* Polls the queue at path until it has want entries or the clock reaches
 * until (ms); returns the last length seen. */
int lock_queue_wait(zkc_client *c, const char *path, int want, double until)
{
    int count = 0;
    while (now_ms() < until) {
        zkc_lock_contender *en = NULL;
        if (zkc_lock_contenders(c, path, &en, &count) == 0)
            zkc_lock_contenders_free(en, count);
        if (count >= want)
            break;
        sleep_ms(50);
    }
    return count;
}

static void measure_waiters(report *rep, zkc_client *c, const char *path, int nw)
{
    zkc_lock *holder = NULL;
    zkc_lock **ws = calloc((size_t)nw, sizeof *ws);
    if (!ws)
        return;
    if (zkc_lock_create(c, path, &holder) || zkc_lock_acquire(holder, LOCK_TIMEOUT_MS, NULL)) {
        sb_printf(&rep->notes, "waiter memory not measured: %s. ", zkc_errmsg());
        zkc_lock_destroy(holder);
        free(ws);
        return;
    }
    sleep_ms(200);
    long w0 = server_watches();
    long long m0 = mem_inuse();
    long r0 = rss_kb();
    int made = 0;
    for (int i = 0; i < nw; i++, made++)
        if (zkc_lock_create(c, path, &ws[i]))
            break;
    long long m1 = mem_inuse();
    int queued = 0;
    for (int i = 0; i < made; i++)
        if (zkc_lock_acquire_async(ws[i], ZKC_FOREVER, waiter_cb, NULL) == 0)
            queued++;
    /* Until every waiter is in the queue and the client is quiet. */
    double until = now_ms() + 60000;
    lock_queue_wait(c, path, queued + 1, until);
    zkc_stats a, b;
    do {
        zkc_client_stats(c, &a);
        sleep_ms(300);
        zkc_client_stats(c, &b);
    } while (a.requests_total != b.requests_total && now_ms() < until);
    long long m2 = mem_inuse();
    long r2 = rss_kb();
    long w2 = server_watches();
    if (queued > 0) {
        kv_num(&rep->extra, "waiters_measured", queued);
        kv_num(&rep->extra, "mem_per_lock_object_bytes", (double)(m1 - m0) / made);
        kv_num(&rep->extra, "mem_per_waiter_bytes", (double)(m2 - m0) / queued);
        kv_num(&rep->extra, "mem_per_waiter_wait_state_bytes", (double)(m2 - m1) / queued);
        kv_num(&rep->extra, "rss_per_waiter_bytes", (double)(r2 - r0) * 1024.0 / queued);
        kv_num(&rep->extra, "server_watches_per_waiter", (w0 >= 0 && w2 >= 0) ? (double)(w2 - w0) / queued : NAN);
    }
    for (int i = made - 1; i >= 0; i--)
        zkc_lock_destroy(ws[i]);
    zkc_lock_release(holder);
    zkc_lock_destroy(holder);
    free(ws);
}

void sc_lock_contended(report *rep)
{
    const int sessions = 8;
    const int waiters_full = 1000, waiters_quick = 40;
    char libp[160], rawp[160], memp[160];
    snprintf(libp, sizeof libp, "%s/lc/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/lc/raw", g_root);
    snprintf(memp, sizeof memp, "%s/lc/mem", g_root);
    params_common(rep, sessions, sessions);
    kv_num(&rep->params, "waiters_for_memory", SCN(waiters));
    rep->floor_what = "8 raw sessions: create, getChildren, get+watch predecessor, wait, delete";
    raw_conn *setup = NULL, *rcs[8] = {0};
    zkc_client *cs[8] = {0};
    zkc_lock *ls[8] = {0};
    worker wl[8], wf[8];
    for (int i = 0; i < sessions; i++) {
        worker_init(&wl[i], i, op_lock_cycle, NULL, NULL);
        worker_init(&wf[i], i, op_raw_lock_handoff, NULL, NULL);
    }
    if (!(setup = setup_raw(rep)))
        goto out;
    if (raw_mkpath(setup->zh, libp) || raw_mkpath(setup->zh, rawp) || raw_mkpath(setup->zh, memp)) {
        rep_fail(rep, "cannot create %s", libp);
        goto out;
    }
    for (int i = 0; i < sessions; i++) {
        if (!(cs[i] = setup_client(rep)) || !(rcs[i] = setup_raw(rep)))
            goto out;
        if (zkc_lock_create(cs[i], libp, &ls[i])) {
            rep_fail(rep, "zkc_lock_create: %s", zkc_errmsg());
            goto out;
        }
        wl[i].obj = ls[i];
        wf[i].obj = rcs[i];
        snprintf(wf[i].path, sizeof wf[i].path, "%s", rawp);
    }
    warm(rep, &wl[0], "library");
    warm(rep, &wf[0], "floor");
    if (opt.peers)
        rep->peers = peers_start("mutex", sessions, peer_dir("lc"), NULL, "InterProcessMutex acquire + release",
                                 "Lock acquire + release");
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, wl, sessions, opt.seconds, cs, sessions) ||
            run_side(rep, &rep->fl, wf, sessions, opt.seconds, NULL, 0))
            break;
        peers_round(rep->peers, opt.seconds);
    }
    if (rep_ok(rep))
        measure_waiters(rep, cs[0], memp, SCN(waiters));
out:
    for (int i = 0; i < sessions; i++) {
        zkc_lock_destroy(ls[i]);
        zkc_client_destroy(cs[i]);
        raw_close(rcs[i]);
        worker_fini(&wl[i]);
        worker_fini(&wf[i]);
    }
    raw_close(setup);
}

/* ---- lock_many ---- */

/* base/lib and base/raw, and the np lock parents under each. */
static int make_parents(zhandle_t *zh, const char *base, char **lpaths, char **rpaths, int np)
{
    char d1[200], d2[200];
    snprintf(d1, sizeof d1, "%s/lib", base);
    snprintf(d2, sizeof d2, "%s/raw", base);
    int z = raw_mkpath(zh, d1);
    if (!z)
        z = raw_mkpath(zh, d2);
    if (!z)
        z = raw_create_bulk(zh, lpaths, np);
    if (!z)
        z = raw_create_bulk(zh, rpaths, np);
    return z;
}

/* Thread t of nt cycles over objects t, t + nt, t + 2 nt, ... */
static int deal_paths(worker *ws, int nt, void **objs, int np)
{
    for (int t = 0; t < nt; t++) {
        int k = 0;
        ws[t].objs = calloc((size_t)(np / nt + 1), sizeof(void *));
        if (!ws[t].objs)
            return -1;
        for (int i = t; i < np; i += nt)
            ws[t].objs[k++] = objs[i];
        ws[t].nobjs = k;
    }
    return 0;
}

void sc_lock_many(report *rep)
{
    const int paths_full = 1000, paths_quick = 40;
    const int threads_full = 64, threads_quick = 8;
    int np = SCN(paths), nt = SCN(threads);
    params_common(rep, 1, nt);
    kv_num(&rep->params, "paths", np);
    rep->floor_what = "raw create + getChildren + delete on 1000 paths, 64 cycles outstanding, one session";
    raw_conn *setup = NULL, *rc = NULL;
    zkc_client *c = NULL;
    zkc_lock **locks = calloc((size_t)np, sizeof *locks);
    char **lpaths = calloc((size_t)np, sizeof *lpaths), **rpaths = calloc((size_t)np, sizeof *rpaths);
    worker *wl = calloc((size_t)nt, sizeof *wl), *wf = calloc((size_t)nt, sizeof *wf);
    if (!locks || !lpaths || !rpaths || !wl || !wf) {
        rep_fail(rep, "out of memory");
        goto out;
    }
    for (int t = 0; t < nt; t++) {
        worker_init(&wl[t], t, op_lock_cycle, NULL, NULL);
        worker_init(&wf[t], t, op_raw_lock_cycle, NULL, NULL);
    }
    char base[160];
    snprintf(base, sizeof base, "%s/lm", g_root);
    for (int i = 0; i < np; i++) {
        if (asprintf(&lpaths[i], "%s/lib/p%04d", base, i) < 0 || asprintf(&rpaths[i], "%s/raw/p%04d", base, i) < 0) {
            rep_fail(rep, "out of memory");
            goto out;
        }
    }
    if (!(setup = setup_raw(rep)))
        goto out;
    int z = make_parents(setup->zh, base, lpaths, rpaths, np);
    if (z) {
        rep_fail(rep, "creating the %d lock parents: %s", np, zerror(z));
        goto out;
    }
    if (!(c = setup_client(rep)) || !(rc = setup_raw(rep)))
        goto out;
    sleep_ms(100);
    long long base_lat = (long long)((rep->lib.lat.cap + rep->fl.lat.cap) * sizeof(double));
    long long m0 = mem_inuse();
    for (int i = 0; i < np; i++)
        if (zkc_lock_create(c, lpaths[i], &locks[i])) {
            rep_fail(rep, "zkc_lock_create: %s", zkc_errmsg());
            goto out;
        }
    long long m1 = mem_inuse();
    kv_num(&rep->extra, "mem_per_lock_object_bytes", (double)(m1 - m0) / np);
    if (deal_paths(wl, nt, (void **)locks, np) || deal_paths(wf, nt, (void **)rpaths, np)) {
        rep_fail(rep, "out of memory");
        goto out;
    }
    for (int t = 0; t < nt; t++)
        wf[t].obj = rc;
    warm(rep, &wl[0], "library");
    warm(rep, &wf[0], "floor");
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, wl, nt, opt.seconds, &c, 1) || run_side(rep, &rep->fl, wf, nt, opt.seconds, NULL, 0))
            break;
    }
    if (rep_ok(rep)) {
        /* Our own latency samples are not the library's memory. */
        for (int t = 0; t < nt; t++) {
            lat_free(&wl[t].lat);
            lat_free(&wf[t].lat);
        }
        long long ours = (long long)((rep->lib.lat.cap + rep->fl.lat.cap) * sizeof(double)) - base_lat;
        sleep_ms(300);
        long long m2 = mem_inuse();
        kv_num(&rep->extra, "mem_per_lock_object_after_use_bytes", (double)(m2 - m0 - ours) / np);
    }
out:
    lock_sides_close(c, rc, locks, np, wl, wf, nt);
    raw_close(setup);
    for (int i = 0; i < np && lpaths && rpaths; i++) {
        free(lpaths[i]);
        free(rpaths[i]);
    }
    free(lpaths);
    free(rpaths);
}
