/* ratelimit: demand above the limit R; the "floor" is R itself, and the
 * result is how exactly each window holds R. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rl_ctx {
    int window_ms;
} rl_ctx;

static int op_ratelimit(worker *w)
{
    rl_ctx *x = w->sc;
    int rc = zkc_ratelimit_acquire(w->obj, 1, 2 * x->window_ms);
    if (rc == ZKC_ETIMEDOUT)
        return OP_FAIL;
    if (rc)
        return lib_err(w, rc, "zkc_ratelimit_acquire");
    if (w->ngrants == w->capgrants) {
        size_t nc = w->capgrants ? w->capgrants * 2 : 1024;
        double *ng = realloc(w->grants, nc * sizeof *ng);
        if (!ng)
            return OP_OK;
        w->grants = ng;
        w->capgrants = nc;
    }
    w->grants[w->ngrants++] = wall_ms();
    return OP_OK;
}

/* Permits granted in each window wholly inside [w0, w1] (wall ms) into
 * per_window; returns how many windows went over R. Windows are of the servers'
 * clock (the local ensemble shares ours). */
static uint64_t count_windows(const worker *wl, int nt, double w0, double w1, int win, int R, lat_t *per_window)
{
    long long first = (long long)ceil(w0 / win), last = (long long)floor(w1 / win) - 1;
    if (last < first)
        return 0;
    size_t nwin = (size_t)(last - first + 1);
    uint64_t *cnt = calloc(nwin, sizeof *cnt), over = 0;
    for (int i = 0; cnt && i < nt; i++)
        for (size_t k = 0; k < wl[i].ngrants; k++) {
            long long wi = (long long)floor(wl[i].grants[k] / win);
            if (wi >= first && wi <= last)
                cnt[wi - first]++;
        }
    for (size_t k = 0; cnt && k < nwin; k++) {
        lat_push(per_window, (double)cnt[k]);
        if (cnt[k] > (uint64_t)R)
            over++;
    }
    free(cnt);
    return over;
}

static void window_report(report *rep, lat_t *per_window, uint64_t over, uint64_t permits, int win, int R, int batch)
{
    double mn = per_window->n ? lat_pct(per_window, 0) : NAN, mx = per_window->n ? lat_pct(per_window, 100) : NAN;
    double sum = 0;
    for (size_t k = 0; k < per_window->n; k++)
        sum += per_window->v[k];
    kv_num(&rep->extra, "windows_observed", (double)per_window->n);
    kv_num(&rep->extra, "permits_per_window_min", mn);
    kv_num(&rep->extra, "permits_per_window_mean", per_window->n ? sum / (double)per_window->n : NAN);
    kv_num(&rep->extra, "permits_per_window_max", mx);
    kv_num(&rep->extra, "windows_over_R", (double)over);
    uint64_t writes = rep->lib.req[ZKC_REQ_MULTI] + rep->lib.req[ZKC_REQ_SET] + rep->lib.req[ZKC_REQ_CREATE];
    uint64_t total = 0;
    for (int k = 0; k < 16; k++)
        total += rep->lib.req[k];
    kv_num(&rep->extra, "zk_requests_per_permit", permits ? (double)total / (double)permits : NAN);
    kv_num(&rep->extra, "zk_writes_per_permit", permits ? (double)writes / (double)permits : NAN);
    kv_num(&rep->extra, "permits_granted", (double)permits);
    sb_printf(&rep->notes,
              "permits per %d ms window: min %.0f mean %.1f max %.0f against R=%d (%llu of %zu windows over R); "
              "%.3f ZooKeeper requests (%.3f writes) per permit, batch %d. ",
              win, mn, per_window->n ? sum / (double)per_window->n : NAN, mx, R, (unsigned long long)over,
              per_window->n, permits ? (double)total / (double)permits : NAN,
              permits ? (double)writes / (double)permits : NAN, batch);
}

void sc_ratelimit(report *rep)
{
    const int R_full = 200, R_quick = 20;
    const int window_full = 1000, window_quick = 250;
    const int batch_full = 20, batch_quick = 5;
    const int sessions = 2;
    const int tps_full = 4, tps_quick = 2;
    int R = SCN(R), win = SCN(window), batch = SCN(batch), tps = SCN(tps);
    int nt = sessions * tps;
    double secs = fmax(opt.seconds, 4.0 * win / 1000.0);
    kv_num(&rep->params, "sessions", sessions);
    kv_num(&rep->params, "threads", nt);
    kv_num(&rep->params, "seconds_per_round", secs);
    kv_num(&rep->params, "rounds", opt.rounds);
    kv_num(&rep->params, "permits_R", R);
    kv_num(&rep->params, "window_ms", win);
    kv_num(&rep->params, "batch", batch);
    kv_str(&rep->params, "demand", "every thread asks for 1 permit in a loop (unbounded demand)");
    rep->floor_what = "the limit R per window (no raw floor: ratio = utilisation of R)";
    rep->floor_is_limit = 1;
    char path[160];
    snprintf(path, sizeof path, "%s/rl/limit", g_root);
    raw_conn *setup = NULL;
    zkc_client *cs[2] = {0};
    zkc_ratelimit *rls[2] = {0};
    rl_ctx x = {win};
    worker *wl = calloc((size_t)nt, sizeof *wl);
    lat_t per_window = {0};
    uint64_t over = 0;
    if (!wl) {
        rep_fail(rep, "out of memory");
        return;
    }
    for (int i = 0; i < nt; i++)
        worker_init(&wl[i], i, op_ratelimit, NULL, &x);
    if (!(setup = setup_raw(rep)))
        goto out;
    char d[200];
    snprintf(d, sizeof d, "%s/rl", g_root);
    if (raw_mkpath(setup->zh, d)) {
        rep_fail(rep, "cannot create %s", d);
        goto out;
    }
    for (int s = 0; s < sessions; s++) {
        if (!(cs[s] = setup_client(rep)))
            goto out;
        int e = zkc_ratelimit_create(cs[s], path, R, win, batch, &rls[s]);
        if (e) {
            rep_fail(rep, "zkc_ratelimit_create: %s", zkc_errmsg());
            goto out;
        }
    }
    /* Warm the limiters one at a time: two of them taking their very first
     * permit at once on a fresh path fail with ZKC_EEXISTS (lib/ratelimit.c,
     * clock_done: the create after NONODE treats NODEEXISTS as fatal). */
    for (int s = 0; s < sessions; s++) {
        int e = zkc_ratelimit_acquire(rls[s], 1, 10 * win);
        if (e && e != ZKC_ETIMEDOUT) {
            rep_fail(rep, "warm-up zkc_ratelimit_acquire: %s", zkc_errmsg());
            goto out;
        }
    }
    for (int i = 0; i < nt; i++)
        wl[i].obj = rls[i % sessions];
    uint64_t permits = 0;
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        double w0 = wall_ms();
        if (run_side(rep, &rep->lib, wl, nt, secs, cs, sessions))
            break;
        double w1 = wall_ms();
        over += count_windows(wl, nt, w0, w1, win, R, &per_window);
        for (int i = 0; i < nt; i++)
            permits += wl[i].ngrants;
    }
    if (rep_ok(rep))
        window_report(rep, &per_window, over, permits, win, R, batch);
out:
    for (int s = 0; s < sessions; s++) {
        zkc_ratelimit_destroy(rls[s]);
        zkc_client_destroy(cs[s]);
    }
    raw_close(setup);
    for (int i = 0; i < nt; i++)
        worker_fini(&wl[i]);
    free(wl);
    lat_free(&per_window);
    /* "floor": the configured limit per second, one entry per library round */
    for (int r = 0; r < rep->lib.n; r++)
        rep->fl.ops[rep->fl.n++] = R * 1000.0 / win;
}
