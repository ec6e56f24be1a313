/* Reservations: zkc_inventory_reserve against a baseline of a zkcoord mutex +
 * counter get + CAS + unlock per order, in two shapes: reserve_fifo (64 workers
 * of one client, a fixed book of orders per round) and reserve_sessions (8
 * sessions with one worker each, timed: the shape Curator and kazoo users
 * would write, one process per worker, so --peers runs Curator there). */
#include "bench.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The reservation API may not be implemented in the library this program is
 * linked with (an older libzkcoord). Weak references let the
 * program link either way; reserve_fifo then skips with a message, and starts
 * measuring as soon as the symbols exist. */
#pragma weak zkc_inventory_create
#pragma weak zkc_inventory_destroy
#pragma weak zkc_inventory_restock
#pragma weak zkc_inventory_stock
#pragma weak zkc_inventory_reserve

#define MAXSESS 8

/* The shape of a reservation scenario. */
typedef struct reserve_shape {
    int sessions, workers;
    int orders;          /* per round; INT_MAX: timed, until the round ends */
    int64_t units;       /* stock per round */
    double seconds;      /* round length (a cap when orders are bounded) */
    const char *dir;     /* under g_root */
    const char *curator; /* --peers: what Curator does per order, or NULL: no peers */
} reserve_shape;

typedef struct reserve_ctx {
    const reserve_shape *sh;
    zkc_client *cs[MAXSESS];
    zkc_inventory *inv[MAXSESS];
    zkc_counter *ctr[MAXSESS];   /* baseline stock counter, per session */
    zkc_lock **locks;            /* baseline: one mutex object per worker */
    char root[160], broot[160];
    char sku[64];
    int round;
    int next;            /* atomic */
    int refused;         /* atomic */
    sb done_l, done_b;   /* orders done per round */
} reserve_ctx;

static int session_of(const reserve_ctx *x, const worker *w)
{
    return w->idx % x->sh->sessions;
}

/* Takes the next order number, or says there is none left. */
static int take_order(reserve_ctx *x, int *i)
{
    *i = __atomic_fetch_add(&x->next, 1, __ATOMIC_ACQ_REL);
    return *i < x->sh->orders;
}

static int op_reserve(worker *w)
{
    reserve_ctx *x = w->sc;
    int i;
    if (!take_order(x, &i))
        return OP_DONE;
    char id[64];
    snprintf(id, sizeof id, "o%d-%d", x->round, i);
    zkc_inventory_line line = {x->sku, 1};
    zkc_inventory_reserve_options ro;
    memset(&ro, 0, sizeof ro);
    ro.wait_for_restock = 0;
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    int rc = zkc_inventory_reserve(x->inv[session_of(x, w)], id, &line, 1, &ro, LOCK_TIMEOUT_MS, NULL, &st);
    if (rc == ZKC_EOUTOFSTOCK) {
        __atomic_add_fetch(&x->refused, 1, __ATOMIC_RELAXED);
        return lib_err(w, rc, "zkc_inventory_reserve (the SKU was stocked for every order)");
    }
    if (rc)
        return lib_err(w, rc, "zkc_inventory_reserve");
    return OP_OK;
}

/* Baseline order: zkcoord mutex + counter get + versioned set (CAS) + unlock. */
static int op_baseline_order(worker *w)
{
    reserve_ctx *x = w->sc;
    int i;
    if (!take_order(x, &i))
        return OP_DONE;
    zkc_lock *l = x->locks[w->idx];
    zkc_counter *ctr = x->ctr[session_of(x, w)];
    int rc = zkc_lock_acquire(l, LOCK_TIMEOUT_MS, NULL);
    if (rc)
        return lib_err(w, rc, "baseline zkc_lock_acquire");
    int64_t v = 0;
    rc = zkc_counter_get(ctr, &v);
    if (rc == 0 && v < 1)
        rc = ZKC_EOUTOFSTOCK;
    if (rc == 0)
        rc = zkc_counter_cas(ctr, v, v - 1, NULL);
    int rr = zkc_lock_release(l);
    if (rc)
        return lib_err(w, rc, "baseline counter get/cas under the mutex");
    if (rr)
        return lib_err(w, rr, "baseline zkc_lock_release");
    return OP_OK;
}

static uint64_t orders_done(const worker *ws, int n)
{
    uint64_t done = 0;
    for (int i = 0; i < n; i++)
        done += ws[i].ops_all;
    return done;
}

/* Clients, baseline locks, inventories. Returns 1 when the library side can
 * run, 0 when only the baseline can (the reason is in rep->reason), -1 on error. */
static int reserve_setup(report *rep, reserve_ctx *x)
{
    const reserve_shape *sh = x->sh;
    char lockp[200];
    snprintf(x->root, sizeof x->root, "%s/%s", g_root, sh->dir);
    snprintf(x->broot, sizeof x->broot, "%s/%sb", g_root, sh->dir);
    snprintf(lockp, sizeof lockp, "%s/lock", x->broot);
    raw_conn *setup = setup_raw(rep);
    if (!setup)
        return -1;
    int z = raw_mkpath(setup->zh, lockp) || raw_mkpath(setup->zh, x->root);
    raw_close(setup);
    if (z) {
        rep_fail(rep, "cannot create %s", lockp);
        return -1;
    }
    for (int s = 0; s < sh->sessions; s++)
        if (!(x->cs[s] = setup_client(rep)))
            return -1;
    for (int i = 0; i < sh->workers; i++)
        if (zkc_lock_create(x->cs[i % sh->sessions], lockp, &x->locks[i])) {
            rep_fail(rep, "zkc_lock_create: %s", zkc_errmsg());
            return -1;
        }
    if (!zkc_inventory_create || !zkc_inventory_reserve || !zkc_inventory_restock || !zkc_inventory_destroy) {
        sb_printf(&rep->reason, "SKIPPED (library side): the zkc_inventory_* functions are not in the libzkcoord "
                                "this was linked with (an older library); the baseline ran alone");
        return 0;
    }
    for (int s = 0; s < sh->sessions; s++) {
        int e = zkc_inventory_create(x->cs[s], x->root, &x->inv[s]);
        if (e) {
            sb_printf(&rep->reason, "SKIPPED (library side): zkc_inventory_create(%s) returned %s: %s; the baseline "
                                    "ran alone",
                      x->root, zkc_strerror(e), zkc_errmsg());
            x->inv[s] = NULL;
            return 0;
        }
    }
    return 1;
}

/* One library round on a freshly stocked SKU. Returns -1 to stop the rounds,
 * 0 when the library side can go on, 1 when it cannot (restock failed). */
static int reserve_lib_round(report *rep, reserve_ctx *x, worker *wl, int r)
{
    const reserve_shape *sh = x->sh;
    snprintf(x->sku, sizeof x->sku, "sku%d", r);
    int e = zkc_inventory_restock(x->inv[0], x->sku, sh->units);
    if (e) {
        sb_printf(&rep->reason, "SKIPPED (library side): zkc_inventory_restock returned %s: %s", zkc_strerror(e),
                  zkc_errmsg());
        return 1;
    }
    x->next = 0;
    if (run_side(rep, &rep->lib, wl, sh->workers, sh->seconds, x->cs, sh->sessions))
        return -1;
    uint64_t done = orders_done(wl, sh->workers);
    sb_printf(&x->done_l, "%s%" PRIu64, x->done_l.n ? ", " : "", done);
    zkc_inventory_stock_info si;
    if (zkc_inventory_stock && zkc_inventory_stock(x->inv[0], x->sku, &si) == 0 &&
        (si.reserved != (int64_t)done || si.available != sh->units - (int64_t)done))
        sb_printf(&rep->notes,
                  "library round %d: stock says available %" PRId64 ", reserved %" PRId64 " after %" PRIu64
                  " reservations of %" PRId64 ". ",
                  r + 1, si.available, si.reserved, done, sh->units);
    return 0;
}

/* One baseline round on a fresh stock counter. */
static int reserve_baseline_round(report *rep, reserve_ctx *x, worker *wf, int r)
{
    const reserve_shape *sh = x->sh;
    char cp[200];
    snprintf(cp, sizeof cp, "%s/stock%d", x->broot, r);
    for (int s = 0; s < sh->sessions; s++) {
        zkc_counter_destroy(x->ctr[s]);
        x->ctr[s] = NULL;
        if (zkc_counter_create(x->cs[s], cp, NULL, &x->ctr[s]) || (s == 0 && zkc_counter_set(x->ctr[s], sh->units))) {
            rep_fail(rep, "baseline counter %s: %s", cp, zkc_errmsg());
            return -1;
        }
    }
    x->next = 0;
    if (run_side(rep, &rep->fl, wf, sh->workers, sh->seconds, x->cs, sh->sessions))
        return -1;
    uint64_t done = orders_done(wf, sh->workers);
    sb_printf(&x->done_b, "%s%" PRIu64, r ? ", " : "", done);
    int64_t left = -1;
    zkc_counter_get(x->ctr[0], &left);
    if (left != sh->units - (int64_t)done)
        sb_printf(&rep->notes, "baseline round %d: stock %" PRId64 " after %" PRIu64 " orders of %" PRId64 ". ",
                  r + 1, left, done, sh->units);
    return 0;
}

static void done_lists(report *rep, reserve_ctx *x)
{
    sb t = {0};
    if (x->done_l.n) {
        sb_printf(&t, "[%s]", sb_str(&x->done_l));
        kv_raw(&rep->extra, "orders_done_per_round", sb_str(&t));
    }
    if (x->done_b.n) {
        sb_reset(&t);
        sb_printf(&t, "[%s]", sb_str(&x->done_b));
        kv_raw(&rep->extra, "baseline_orders_done_per_round", sb_str(&t));
    }
    sb_free(&t);
    sb_free(&x->done_l);
    sb_free(&x->done_b);
}

static void reserve_run(report *rep, const reserve_shape *sh)
{
    reserve_ctx x;
    memset(&x, 0, sizeof x);
    x.sh = sh;
    int nw = sh->workers;
    worker *wl = calloc((size_t)nw, sizeof *wl), *wf = calloc((size_t)nw, sizeof *wf);
    x.locks = calloc((size_t)nw, sizeof *x.locks);
    if (!wl || !wf || !x.locks) {
        rep_fail(rep, "out of memory");
        goto out;
    }
    for (int i = 0; i < nw; i++) {
        worker_init(&wl[i], i, op_reserve, NULL, &x);
        worker_init(&wf[i], i, op_baseline_order, NULL, &x);
    }
    int lib_ok = reserve_setup(rep, &x);
    if (opt.peers && sh->curator && lib_ok >= 0)
        rep->peers = peers_start("reserve", sh->workers, peer_dir(sh->dir), NULL, sh->curator, NULL);
    for (int r = 0; r < opt.rounds && rep_ok(rep) && lib_ok >= 0; r++) {
        x.round = r;
        if (lib_ok) {
            int e = reserve_lib_round(rep, &x, wl, r);
            if (e < 0)
                break;
            lib_ok = !e;
        }
        if (reserve_baseline_round(rep, &x, wf, r))
            break;
        peers_round(rep->peers, sh->seconds);
    }
    done_lists(rep, &x);
    if (lib_ok <= 0 && rep->lib.n == 0 && rep_ok(rep))
        snprintf(rep->status, sizeof rep->status, "skipped");
out:
    for (int s = 0; s < MAXSESS; s++) {
        zkc_counter_destroy(x.ctr[s]);
        if (x.inv[s] && zkc_inventory_destroy)
            zkc_inventory_destroy(x.inv[s]);
    }
    if (x.locks)
        for (int i = 0; i < nw; i++)
            zkc_lock_destroy(x.locks[i]);
    for (int s = 0; s < MAXSESS; s++)
        zkc_client_destroy(x.cs[s]);
    if (wl && wf)
        for (int i = 0; i < nw; i++) {
            worker_fini(&wl[i]);
            worker_fini(&wf[i]);
        }
    free(wl);
    free(wf);
    free(x.locks);
}

void sc_reserve_fifo(report *rep)
{
    const int workers_full = 64, workers_quick = 8;
    const int orders_full = 5000, orders_quick = 40;
    reserve_shape sh = {1, SCN(workers), SCN(orders), SCN(orders), 0, "inv", NULL};
    sh.seconds = opt.quick ? fmax(opt.seconds * 4, 2.0) : fmax(opt.seconds * 3, 10.0);
    params_common(rep, 1, sh.workers);
    kv_num(&rep->params, "orders", sh.orders);
    kv_num(&rep->params, "units", (double)sh.units);
    kv_num(&rep->params, "skus", 1);
    kv_num(&rep->params, "qty_per_order", 1);
    kv_num(&rep->params, "round_time_cap_s", sh.seconds);
    rep->floor_what = "baseline: zkcoord mutex + counter get + versioned set (CAS) + unlock per order";
    reserve_run(rep, &sh);
}

void sc_reserve_sessions(report *rep)
{
    const int64_t units_full = 1000000, units_quick = 100000;
    reserve_shape sh = {MAXSESS, MAXSESS, INT_MAX, SCN(units), opt.seconds, "invs",
                        "InterProcessMutex acquire + getData + setData(version) + release"};
    params_common(rep, sh.sessions, sh.workers);
    kv_num(&rep->params, "units", (double)sh.units);
    kv_num(&rep->params, "skus", 1);
    kv_num(&rep->params, "qty_per_order", 1);
    rep->floor_what = "baseline: 8 sessions, zkcoord mutex + counter get + versioned set (CAS) + unlock per order";
    reserve_run(rep, &sh);
}
