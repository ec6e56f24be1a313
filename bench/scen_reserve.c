/* reserve_fifo: zkc_inventory_reserve against a zkcoord mutex + counter
 * get + CAS + unlock baseline. */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The reservation API may not be implemented in the library this program is
 * linked with yet (lib/reserve.c is being written). Weak references let the
 * program link either way; reserve_fifo then skips with a message, and starts
 * measuring as soon as the symbols exist. */
#pragma weak zkc_inventory_create
#pragma weak zkc_inventory_destroy
#pragma weak zkc_inventory_restock
#pragma weak zkc_inventory_stock
#pragma weak zkc_inventory_reserve

typedef struct reserve_ctx {
    zkc_inventory *inv;
    zkc_lock **locks;    /* baseline: one mutex object per worker */
    zkc_counter *ctr;    /* baseline stock counter */
    char sku[64];
    int orders;
    int round;
    int next;            /* atomic */
    int refused;         /* atomic */
} reserve_ctx;

static int op_reserve(worker *w)
{
    reserve_ctx *x = w->sc;
    int i = __atomic_fetch_add(&x->next, 1, __ATOMIC_ACQ_REL);
    if (i >= x->orders)
        return OP_DONE;
    char id[64];
    snprintf(id, sizeof id, "o%d-%d", x->round, i);
    zkc_line line = {x->sku, 1};
    zkc_reserve_options ro;
    memset(&ro, 0, sizeof ro);
    ro.wait_for_restock = 0;
    zkc_res_state st = ZKC_RES_PENDING;
    int rc = zkc_inventory_reserve(x->inv, id, &line, 1, &ro, LOCK_TIMEOUT_MS, NULL, &st);
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
    int i = __atomic_fetch_add(&x->next, 1, __ATOMIC_ACQ_REL);
    if (i >= x->orders)
        return OP_DONE;
    zkc_lock *l = x->locks[w->idx];
    int rc = zkc_lock_acquire(l, LOCK_TIMEOUT_MS, NULL);
    if (rc)
        return lib_err(w, rc, "baseline zkc_lock_acquire");
    int64_t v = 0;
    rc = zkc_counter_get(x->ctr, &v);
    if (rc == 0 && v < 1)
        rc = ZKC_EOUTOFSTOCK;
    if (rc == 0)
        rc = zkc_counter_cas(x->ctr, v, v - 1, NULL);
    int rr = zkc_lock_release(l);
    if (rc)
        return lib_err(w, rc, "baseline counter get/cas under the mutex");
    if (rr)
        return lib_err(w, rr, "baseline zkc_lock_release");
    return OP_OK;
}

void sc_reserve_fifo(report *rep)
{
    const int workers_full = 64, workers_quick = 8;
    const int orders_full = 5000, orders_quick = 40;
    int nw = SCN(workers), orders = SCN(orders);
    double cap = opt.quick ? fmax(opt.seconds * 4, 2.0) : fmax(opt.seconds * 3, 10.0);
    params_common(rep, 1, nw);
    kv_num(&rep->params, "orders", orders);
    kv_num(&rep->params, "units", orders);
    kv_num(&rep->params, "skus", 1);
    kv_num(&rep->params, "qty_per_order", 1);
    kv_num(&rep->params, "round_time_cap_s", cap);
    rep->floor_what = "baseline: zkcoord mutex + counter get + versioned set (CAS) + unlock per order";
    char root[160], broot[160], lockp[200];
    snprintf(root, sizeof root, "%s/inv", g_root);
    snprintf(broot, sizeof broot, "%s/invb", g_root);
    snprintf(lockp, sizeof lockp, "%s/lock", broot);
    raw_conn *setup = NULL;
    zkc_client *c = NULL;
    reserve_ctx x;
    memset(&x, 0, sizeof x);
    x.orders = orders;
    int lib_ok = 0;
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
    if (!(setup = setup_raw(rep)))
        goto out;
    if (raw_mkpath(setup->zh, lockp) || raw_mkpath(setup->zh, root)) {
        rep_fail(rep, "cannot create %s", lockp);
        goto out;
    }
    if (!(c = setup_client(rep)))
        goto out;
    for (int i = 0; i < nw; i++)
        if (zkc_lock_create(c, lockp, &x.locks[i])) {
            rep_fail(rep, "zkc_lock_create: %s", zkc_errmsg());
            goto out;
        }
    if (!zkc_inventory_create || !zkc_inventory_reserve || !zkc_inventory_restock || !zkc_inventory_destroy) {
        sb_printf(&rep->reason, "SKIPPED (library side): the zkc_inventory_* functions are not in the libzkcoord "
                                "this was linked with (lib/reserve.c not implemented yet); the baseline ran alone");
    } else {
        int e = zkc_inventory_create(c, root, &x.inv);
        if (e) {
            sb_printf(&rep->reason, "SKIPPED (library side): zkc_inventory_create(%s) returned %s: %s; the baseline "
                                    "ran alone",
                      root, zkc_strerror(e), zkc_errmsg());
            x.inv = NULL;
        } else {
            lib_ok = 1;
        }
    }
    sb done_l = {0}, done_b = {0};
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        x.round = r;
        if (lib_ok) {
            snprintf(x.sku, sizeof x.sku, "sku%d", r);
            int e = zkc_inventory_restock(x.inv, x.sku, orders);
            if (e) {
                lib_ok = 0;
                sb_printf(&rep->reason, "SKIPPED (library side): zkc_inventory_restock returned %s: %s",
                          zkc_strerror(e), zkc_errmsg());
            } else {
                x.next = 0;
                if (run_side(rep, &rep->lib, wl, nw, cap, &c, 1))
                    break;
                uint64_t done = 0;
                for (int i = 0; i < nw; i++)
                    done += wl[i].ops_all;
                sb_printf(&done_l, "%s%" PRIu64, done_l.n ? ", " : "", done);
                zkc_stock_info si;
                if (zkc_inventory_stock && zkc_inventory_stock(x.inv, x.sku, &si) == 0 &&
                    (si.reserved != (int64_t)done || si.available != orders - (int64_t)done))
                    sb_printf(&rep->notes,
                              "library round %d: stock says available %" PRId64 ", reserved %" PRId64
                              " after %" PRIu64 " reservations of %d. ",
                              r + 1, si.available, si.reserved, done, orders);
            }
        }
        /* baseline: a fresh stock counter per round */
        char cp[200];
        snprintf(cp, sizeof cp, "%s/stock%d", broot, r);
        if (x.ctr)
            zkc_counter_destroy(x.ctr);
        x.ctr = NULL;
        if (zkc_counter_create(c, cp, NULL, &x.ctr) || zkc_counter_set(x.ctr, orders)) {
            rep_fail(rep, "baseline counter %s: %s", cp, zkc_errmsg());
            break;
        }
        x.next = 0;
        if (run_side(rep, &rep->fl, wf, nw, cap, &c, 1))
            break;
        uint64_t done = 0;
        for (int i = 0; i < nw; i++)
            done += wf[i].ops_all;
        sb_printf(&done_b, "%s%" PRIu64, r ? ", " : "", done);
        int64_t left = -1;
        zkc_counter_get(x.ctr, &left);
        if (left != orders - (int64_t)done)
            sb_printf(&rep->notes, "baseline round %d: stock %" PRId64 " after %" PRIu64 " orders of %d. ", r + 1,
                      left, done, orders);
    }
    if (done_l.n) {
        sb t = {0};
        sb_printf(&t, "[%s]", sb_str(&done_l));
        kv_raw(&rep->extra, "orders_done_per_round", sb_str(&t));
        sb_free(&t);
    }
    if (done_b.n) {
        sb t = {0};
        sb_printf(&t, "[%s]", sb_str(&done_b));
        kv_raw(&rep->extra, "baseline_orders_done_per_round", sb_str(&t));
        sb_free(&t);
    }
    sb_free(&done_l);
    sb_free(&done_b);
    if (!lib_ok && rep->lib.n == 0 && rep_ok(rep))
        snprintf(rep->status, sizeof rep->status, "skipped");
out:
    zkc_counter_destroy(x.ctr);
    if (x.inv && zkc_inventory_destroy)
        zkc_inventory_destroy(x.inv);
    if (x.locks)
        for (int i = 0; i < nw; i++)
            zkc_lock_destroy(x.locks[i]);
    zkc_client_destroy(c);
    raw_close(setup);
    if (wl && wf)
        for (int i = 0; i < nw; i++) {
            worker_fini(&wl[i]);
            worker_fini(&wf[i]);
        }
    free(wl);
    free(wf);
    free(x.locks);
}
