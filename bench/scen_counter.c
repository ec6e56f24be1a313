/* Counter scenarios: counter_uncontended, counter_hot_sessions (fairness per
 * session), counter_hot_threads (combining), each checked for exactness. */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- counters ---- */

int op_counter_add(worker *w)
{
    int rc = zkc_counter_add(w->obj, 1, NULL, NULL);
    if (rc == ZKC_ECONTENDED) {
        if (!w->err[0])
            snprintf(w->err, sizeof w->err, "%s", zkc_errmsg());
        return OP_FAIL;
    }
    if (rc)
        return lib_err(w, rc, "zkc_counter_add");
    return OP_OK;
}

/* A guarded add (issue 18): w->sc is a zkc_guard of a lock the scenario holds. */
static int op_counter_add_guarded(worker *w)
{
    zkc_update u;
    memset(&u, 0, sizeof u);
    u.guard = w->sc;
    int rc = zkc_counter_add(w->obj, 1, &u, NULL);
    if (rc)
        return lib_err(w, rc, "zkc_counter_add (guarded)");
    return OP_OK;
}

/* ---- counters ---- */

static int raw_counter_node(report *rep, zhandle_t *zh, const char *path, worker *w)
{
    char buf[8];
    be64(buf, 0);
    int z = raw_create_data(zh, path, buf, 8);
    struct Stat st;
    char out[16];
    int len = sizeof out;
    if (!z)
        z = zoo_get(zh, path, 0, out, &len, &st);
    if (z) {
        rep_fail(rep, "creating counter %s: %s", path, zerror(z));
        return -1;
    }
    if (w) {
        w->ver = st.version;
        w->val = unbe64(out, len);
        snprintf(w->path, sizeof w->path, "%s", path);
    }
    return 0;
}

static void check_exact(report *rep, zkc_counter *ctr, int64_t before, uint64_t applied)
{
    int64_t after = 0;
    if (zkc_counter_get(ctr, &after) == 0) {
        int exact = after - before == (int64_t)applied;
        kv_raw(&rep->extra, "exact", exact ? "true" : "false");
        if (!exact)
            sb_printf(&rep->notes, "NOT EXACT: counter moved by %" PRId64 ", %" PRIu64 " adds succeeded. ",
                      after - before, applied);
    }
}

void sc_counter_uncontended(report *rep)
{
    params_common(rep, 1, 1);
    rep->floor_what = "raw versioned setData loop";
    rep->floor2_what = "raw multi{setData, create marker, delete old marker} loop";
    char libp[160], rawp[160], rawm[160], mk[200], gp[170], lockp[170];
    snprintf(libp, sizeof libp, "%s/cu/lib", g_root);
    snprintf(gp, sizeof gp, "%s/cu/guarded", g_root);
    snprintf(lockp, sizeof lockp, "%s/cu/lock", g_root);
    snprintf(rawp, sizeof rawp, "%s/cu/raw", g_root);
    snprintf(rawm, sizeof rawm, "%s/cu/rawm", g_root);
    snprintf(mk, sizeof mk, "%s-m", rawm);
    raw_conn *setup = NULL, *rc = NULL;
    zkc_client *c = NULL;
    zkc_counter *ctr = NULL, *gctr = NULL;
    zkc_lock *lock = NULL;
    zkc_guard guard;
    side gs;
    memset(&gs, 0, sizeof gs);
    worker wl, wf, wm, wg;
    worker_init(&wl, 0, op_counter_add, NULL, NULL);
    worker_init(&wf, 0, op_raw_set, NULL, NULL);
    worker_init(&wm, 0, op_raw_multi, NULL, NULL);
    worker_init(&wg, 0, op_counter_add_guarded, NULL, &guard);
    if (!(setup = setup_raw(rep)))
        goto out;
    if (raw_mkpath(setup->zh, mk)) {
        rep_fail(rep, "cannot create %s", mk);
        goto out;
    }
    char m0[220];
    snprintf(m0, sizeof m0, "%s/m0", mk);
    if (raw_counter_node(rep, setup->zh, rawp, &wf) || raw_counter_node(rep, setup->zh, rawm, &wm) ||
        raw_create_data(setup->zh, m0, "r", 1))
        goto out;
    if (!(c = setup_client(rep)) || !(rc = setup_raw(rep)))
        goto out;
    wf.obj = wm.obj = rc;
    if (zkc_counter_create(c, libp, NULL, &ctr)) {
        rep_fail(rep, "zkc_counter_create: %s", zkc_errmsg());
        goto out;
    }
    wl.obj = ctr;
    /* The guarded side: the same add with a guard of a lock this client
     * holds, i.e. one more op (a check) in the same transaction. */
    if (zkc_counter_create(c, gp, NULL, &gctr) || zkc_lock_create(c, lockp, &lock) ||
        zkc_lock_acquire(lock, 10000, NULL) || zkc_lock_guard(lock, &guard)) {
        rep_fail(rep, "guarded side setup: %s", zkc_errmsg());
        goto out;
    }
    wg.obj = gctr;
    warm(rep, &wl, "library");
    warm(rep, &wf, "floor");
    warm(rep, &wm, "floor2");
    warm(rep, &wg, "guarded");
    int64_t before = 0, gbefore = 0;
    zkc_counter_get(ctr, &before);
    zkc_counter_get(gctr, &gbefore);
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, &wl, 1, opt.seconds, &c, 1) || run_side(rep, &rep->fl, &wf, 1, opt.seconds, NULL, 0) ||
            run_side(rep, &rep->fl2, &wm, 1, opt.seconds, NULL, 0) || run_side(rep, &gs, &wg, 1, opt.seconds, &c, 1))
            break;
    }
    if (rep_ok(rep)) {
        check_exact(rep, ctr, before, rep->lib.ops_all);
        int64_t gafter = 0;
        int gexact = zkc_counter_get(gctr, &gafter) == 0 && gafter - gbefore == (int64_t)gs.ops_all;
        double g = side_median(&gs), l = side_median(&rep->lib);
        sb_printf(&rep->notes,
                  "guarded add (zkc_update.guard of a held lock: a check op in the same multi): %.1f ops/s, "
                  "%.2f requests/op, %.2f writes/op, guarded/unguarded %.2f%s. ",
                  g, total_per_op(&gs), writes_per_op(&gs), l > 0 ? g / l : NAN, gexact ? "" : ", NOT EXACT");
        kv_num(&rep->extra, "guarded_ops_per_s", g);
        kv_num(&rep->extra, "guarded_over_unguarded", l > 0 ? g / l : NAN);
        kv_raw(&rep->extra, "guarded_exact", gexact ? "true" : "false");
    }
out:
    zkc_lock_destroy(lock);
    zkc_counter_destroy(gctr);
    lat_free(&gs.lat);
    worker_fini(&wg);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    raw_close(rc);
    raw_close(setup);
    worker_fini(&wl);
    worker_fini(&wf);
    worker_fini(&wm);
}

/* [n0, n1, ...] */
static void u64_list(sb *b, const uint64_t *v, int n)
{
    sb_printf(b, "[");
    for (int i = 0; i < n; i++)
        sb_printf(b, "%s%" PRIu64, i ? ", " : "", v[i]);
    sb_printf(b, "]");
}

/* min/max over sessions (NAN when the best got nothing). */
static double min_over_max(const uint64_t *v, int n)
{
    uint64_t mn = UINT64_MAX, mx = 0;
    for (int i = 0; i < n; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
    }
    return mx ? (double)mn / (double)mx : NAN;
}

/* Per-session p99s into p99[], the worst into *worst. */
static void session_p99s(lat_t *lat, int n, double *p99, double *worst)
{
    *worst = 0;
    for (int i = 0; i < n; i++) {
        p99[i] = lat_pct(&lat[i], 99);
        *worst = isfinite(p99[i]) ? fmax(*worst, p99[i]) : *worst;
    }
}

/* counter_hot_sessions: who got how many adds, per session, on both sides. A
 * session is starved under a quarter of the fair share, or when one of its adds
 * gave up (ZKC_ECONTENDED after max_attempts lost CAS rounds). */
static void fairness(report *rep, int n, const uint64_t *sess_ops, const uint64_t *sess_fails, lat_t *sess_lat,
                     const uint64_t *raw_ops, lat_t *raw_lat)
{
    double p99[64], rp99[64], worst, rworst;
    session_p99s(sess_lat, n, p99, &worst);
    session_p99s(raw_lat, n, rp99, &rworst);
    sb a = {0}, p = {0}, f = {0}, ro = {0}, rp = {0};
    u64_list(&a, sess_ops, n);
    u64_list(&f, sess_fails, n);
    u64_list(&ro, raw_ops, n);
    sb_jnums(&p, p99, n);
    sb_jnums(&rp, rp99, n);
    double mm = min_over_max(sess_ops, n), rmm = min_over_max(raw_ops, n);
    kv_raw(&rep->extra, "per_session_successes", sb_str(&a));
    kv_raw(&rep->extra, "per_session_p99_ms", sb_str(&p));
    kv_raw(&rep->extra, "per_session_econtended", sb_str(&f));
    kv_raw(&rep->extra, "floor_per_session_successes", sb_str(&ro));
    kv_raw(&rep->extra, "floor_per_session_p99_ms", sb_str(&rp));
    kv_num(&rep->extra, "floor_min_over_max_session_successes", rmm);
    kv_num(&rep->extra, "min_over_max_session_successes", mm);
    uint64_t tot = 0;
    for (int i = 0; i < n; i++)
        tot += sess_ops[i];
    int gave_up = 0;
    for (int i = 0; i < n; i++) {
        if ((double)sess_ops[i] < 0.25 * (double)tot / n || sess_fails[i])
            rep->starved++;
        gave_up += sess_fails[i] > 0;
    }
    kv_num(&rep->extra, "starved_sessions", rep->starved);
    if (rep->starved)
        snprintf(rep->starve_msg, sizeof rep->starve_msg,
                 "%d of %d sessions starved (under 1/4 of the fair share of %" PRIu64
                 " adds, or an add failed with ZKC_ECONTENDED: %d sessions)",
                 rep->starved, n, tot / (uint64_t)n, gave_up);
    sb_printf(&rep->notes, "per-session successes %s (min/max %.2f), per-session p99 ms %s; floor per-session %s. ",
              sb_str(&a), isfinite(mm) ? mm : 0.0, sb_str(&p), sb_str(&ro));
    sb_printf(&rep->reason,
              "Fairness: library sessions' successes min/max %.2f, worst session p99 %.0f ms; floor min/max %.2f, "
              "worst session p99 %.0f ms%s.",
              isfinite(mm) ? mm : 0.0, worst, isfinite(rmm) ? rmm : 0.0, rworst,
              rep->starved ? "" : " (no session under 1/4 of its fair share, no add gave up)");
    sb_free(&a);
    sb_free(&p);
    sb_free(&f);
    sb_free(&ro);
    sb_free(&rp);
}

void sc_counter_hot_sessions(report *rep)
{
    enum { S = 8 };
    params_common(rep, S, S);
    rep->floor_what = "8 raw sessions: get + versioned setData, re-read on BadVersion";
    kv_num(&rep->extra, "queued_mode", opt.counter_queued);
    char libp[160], rawp[160];
    snprintf(libp, sizeof libp, "%s/chs/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/chs/raw", g_root);
    raw_conn *setup = NULL, *rcs[S] = {0};
    zkc_client *cs[S] = {0};
    zkc_counter *ctrs[S] = {0};
    worker wl[S], wf[S];
    lat_t sess_lat[S], raw_lat[S];
    uint64_t sess_ops[S] = {0}, sess_fails[S] = {0}, raw_ops[S] = {0};
    memset(sess_lat, 0, sizeof sess_lat);
    memset(raw_lat, 0, sizeof raw_lat);
    for (int i = 0; i < S; i++) {
        worker_init(&wl[i], i, op_counter_add, NULL, NULL);
        worker_init(&wf[i], i, op_raw_get_set, NULL, NULL);
    }
    if (!(setup = setup_raw(rep)))
        goto out;
    char d[200];
    snprintf(d, sizeof d, "%s/chs", g_root);
    if (raw_mkpath(setup->zh, d) || raw_counter_node(rep, setup->zh, rawp, NULL))
        goto out;
    for (int i = 0; i < S; i++) {
        if (!(cs[i] = setup_client(rep)) || !(rcs[i] = setup_raw(rep)))
            goto out;
        zkc_counter_options co;
        zkc_counter_options_init(&co);
        co.queued = opt.counter_queued;
        if (zkc_counter_create(cs[i], libp, &co, &ctrs[i])) {
            rep_fail(rep, "zkc_counter_create: %s", zkc_errmsg());
            goto out;
        }
        wl[i].obj = ctrs[i];
        wf[i].obj = rcs[i];
        snprintf(wf[i].path, sizeof wf[i].path, "%s", rawp);
    }
    for (int i = 0; i < S; i++)
        warm(rep, &wl[i], "library");
    warm(rep, &wf[0], "floor");
    int64_t before = 0;
    zkc_counter_get(ctrs[0], &before);
    if (opt.peers)
        rep->peers = peers_start("counter", S, peer_dir("chs"), NULL, "DistributedAtomicLong increment (until it succeeds)",
                                 "Counter += 1");
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, wl, S, opt.seconds, cs, S))
            break;
        for (int i = 0; i < S; i++) {
            sess_ops[i] += wl[i].ops;
            sess_fails[i] += wl[i].fails;
            lat_append(&sess_lat[i], &wl[i].lat);
        }
        if (run_side(rep, &rep->fl, wf, S, opt.seconds, NULL, 0))
            break;
        for (int i = 0; i < S; i++) {
            raw_ops[i] += wf[i].ops;
            lat_append(&raw_lat[i], &wf[i].lat);
        }
        peers_round(rep->peers, opt.seconds);
    }
    if (rep_ok(rep)) {
        check_exact(rep, ctrs[0], before, rep->lib.ops_all);
        fairness(rep, S, sess_ops, sess_fails, sess_lat, raw_ops, raw_lat);
    }
out:
    for (int i = 0; i < S; i++) {
        zkc_counter_destroy(ctrs[i]);
        zkc_client_destroy(cs[i]);
        raw_close(rcs[i]);
        worker_fini(&wl[i]);
        worker_fini(&wf[i]);
        lat_free(&sess_lat[i]);
        lat_free(&raw_lat[i]);
    }
    raw_close(setup);
}

void sc_counter_hot_threads(report *rep)
{
    const int threads_full = 64, threads_quick = 16;
    int nt = SCN(threads);
    params_common(rep, 1, nt);
    rep->floor_what = "one raw session's versioned setData loop (one thread)";
    char libp[160], rawp[160];
    snprintf(libp, sizeof libp, "%s/cht/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/cht/raw", g_root);
    raw_conn *setup = NULL, *rc = NULL;
    zkc_client *c = NULL;
    zkc_counter *ctr = NULL;
    worker *wl = calloc((size_t)nt, sizeof *wl), wf;
    worker_init(&wf, 0, op_raw_set, NULL, NULL);
    if (!wl) {
        rep_fail(rep, "out of memory");
        goto out;
    }
    for (int i = 0; i < nt; i++)
        worker_init(&wl[i], i, op_counter_add, NULL, NULL);
    if (!(setup = setup_raw(rep)))
        goto out;
    char d[200];
    snprintf(d, sizeof d, "%s/cht", g_root);
    if (raw_mkpath(setup->zh, d) || raw_counter_node(rep, setup->zh, rawp, &wf))
        goto out;
    if (!(c = setup_client(rep)) || !(rc = setup_raw(rep)))
        goto out;
    wf.obj = rc;
    if (zkc_counter_create(c, libp, NULL, &ctr)) {
        rep_fail(rep, "zkc_counter_create: %s", zkc_errmsg());
        goto out;
    }
    for (int i = 0; i < nt; i++)
        wl[i].obj = ctr;
    warm(rep, &wl[0], "library");
    warm(rep, &wf, "floor");
    int64_t before = 0;
    zkc_counter_get(ctr, &before);
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, wl, nt, opt.seconds, &c, 1) || run_side(rep, &rep->fl, &wf, 1, opt.seconds, NULL, 0))
            break;
    }
    if (rep_ok(rep)) {
        check_exact(rep, ctr, before, rep->lib.ops_all);
        double multis = (double)rep->lib.req[ZKC_REQ_MULTI];
        kv_num(&rep->extra, "adds_per_transaction", multis > 0 ? (double)rep->lib.ops_all / multis : NAN);
    }
out:
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    raw_close(rc);
    raw_close(setup);
    if (wl)
        for (int i = 0; i < nt; i++)
            worker_fini(&wl[i]);
    free(wl);
    worker_fini(&wf);
}
