/* flash_sale: the hot spot shaped like the real thing (issue 19).
 *
 * PROCS worker processes (zkcoord-bench --flash-worker, flash_worker.c), one
 * session each, THREADS threads each, sell a book of ORDERS orders (1-3 lines
 * of 1-2 units; one hot SKU in 60% of them, 50 cold SKUs; flash_order.c)
 * through zkc_inventory_reserve in fail-fast mode. The hot SKU is stocked
 * with half its demand, the cold ones with all of theirs. Each round is one
 * whole sale on fresh SKUs; orders/s is the book over the time from the first
 * order's start to the last one's end, across the processes.
 *
 * Checked after every round, from the SKU records (zkc_inventory_stock):
 *   oversold units   reserved + sold above the units stocked, per SKU; also
 *                    available + reserved + sold == total and, on the hot SKU,
 *                    reserved + sold == the hot units the workers were granted.
 *   FIFO violations  strict FIFO with stock that only goes down means: once an
 *                    order asking q hot units has been refused, no order that
 *                    arrives later and asks q or more may be granted. "Later"
 *                    is what the processes can prove without the library's
 *                    internals: the order started (called reserve) after the
 *                    refused one had returned (CLOCK_MONOTONIC, one machine).
 *                    A violation is a granted order asking q' hot units that
 *                    started after the end of a refused one asking q <= q'.
 *                    Every hot order after the sell-out is covered; orders
 *                    that overlap the refusal in time are not judged.
 * A failed check makes the scenario an error.
 *
 * With --peers, Curator runs the same book in as many JVMs of as many threads
 * (bench/peers/CuratorPeer.java "flash": an InterProcessMutex per SKU of the
 * order, taken in name order, DistributedAtomicLong get + check + add(-qty)
 * per line, release), for as long as zkcoord's sale took (at least --seconds);
 * the same stock; its oversold units are read back from its counters. */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct flash_ctx {
    int procs, threads, orders;
    int64_t hot, cold[FLASH_COLD];
    char base[160];
    zkc_client *c;
    peer_proc *w;
    int nw;
    uint64_t granted, refused, refused_cold, fifo_violations, fifo_after_refusal;
    int64_t oversold;
    int conservation_ok;
} flash_ctx;

static int flash_start_workers(report *rep, flash_ctx *x)
{
    char np[16], nt[16], no[16], self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        rep_fail(rep, "cannot find this program (/proc/self/exe)");
        return -1;
    }
    self[n] = 0;
    snprintf(np, sizeof np, "%d", x->procs);
    snprintf(nt, sizeof nt, "%d", x->threads);
    snprintf(no, sizeof no, "%d", x->orders);
    char *argv[] = {self, (char *)"--flash-worker", (char *)g_hosts, g_meta, x->base, np, nt, no, NULL};
    for (int i = 0; i < x->procs; i++) {
        if (proc_spawn(&x->w[i], argv, i)) {
            rep_fail(rep, "cannot start flash worker %d", i);
            return -1;
        }
        x->nw++;
    }
    for (int i = 0; i < x->procs; i++) {
        char *line = proc_read_line(&x->w[i], 60000);
        if (!line || strcmp(line, "ready")) {
            char tail[300];
            proc_err_tail(&x->w[i], tail, sizeof tail);
            rep_fail(rep, "flash worker %d did not start: %s %s", i, line ? line : "(no answer)", tail);
            return -1;
        }
    }
    return 0;
}

/* Stock of sale r: every SKU at its number. */
static int flash_restock(report *rep, flash_ctx *x, zkc_inventory *inv)
{
    char name[8];
    for (int s = -1; s < FLASH_COLD; s++) {
        flash_sku_name(s, name, sizeof name);
        int e = zkc_inventory_restock(inv, name, s < 0 ? x->hot : x->cold[s]);
        if (e) {
            rep_fail(rep, "zkc_inventory_restock %s: %s (%s)", name, zkc_strerror(e), zkc_errmsg());
            return -1;
        }
    }
    return 0;
}

/* The SKU records after sale r, against what the workers were granted. */
static void flash_check_stock(report *rep, flash_ctx *x, zkc_inventory *inv, int64_t hot_units, int r)
{
    char name[8];
    for (int s = -1; s < FLASH_COLD; s++) {
        flash_sku_name(s, name, sizeof name);
        zkc_inventory_stock_info si;
        int64_t stocked = s < 0 ? x->hot : x->cold[s];
        if (zkc_inventory_stock(inv, name, &si)) {
            rep_fail(rep, "zkc_inventory_stock %s: %s", name, zkc_errmsg());
            return;
        }
        int64_t out = si.reserved + si.sold;
        if (out > stocked)
            x->oversold += out - stocked;
        if (si.available + si.reserved + si.sold != si.total || si.total != stocked || si.available < 0 ||
            (s < 0 && out != hot_units)) {
            x->conservation_ok = 0;
            sb_printf(&rep->notes,
                      "round %d %s: available %" PRId64 " + reserved %" PRId64 " + sold %" PRId64 ", total %" PRId64
                      ", stocked %" PRId64 "%s. ",
                      r + 1, name, si.available, si.reserved, si.sold, si.total, stocked,
                      s < 0 ? ", against the hot units granted" : "");
        }
    }
}

/* One sale: every worker runs its share; returns the sale's length in s. */
static double flash_round(report *rep, flash_ctx *x, int r)
{
    char root[200], cmd[32];
    snprintf(root, sizeof root, "%s/r%d", x->base, r);
    zkc_inventory *inv = NULL;
    int e = zkc_inventory_create(x->c, root, &inv);
    if (e) {
        rep_fail(rep, "zkc_inventory_create %s: %s", root, zkc_strerror(e));
        return NAN;
    }
    double len_s = NAN;
    if (flash_restock(rep, x, inv))
        goto out;
    int n = snprintf(cmd, sizeof cmd, "run %d\n", r);
    double sc0 = server_cpu_ms(), p0 = opt.peers ? server_packets() : NAN, z0 = opt.peers ? server_zxid() : NAN;
    for (int i = 0; i < x->nw; i++)
        if (write(x->w[i].in, cmd, (size_t)n) != n) {
            rep_fail(rep, "cannot write to flash worker %d", i);
            goto out;
        }
    double t0 = INFINITY, t1 = -INFINITY, rh[3] = {0, 1e300, 1e300}, done = 0, units = 0;
    lat_t gh[3] = {{0}, {0}, {0}};
    side *L = &rep->lib;
    for (int i = 0; i < x->nw; i++) {
        char *line = proc_read_line(&x->w[i], (double)x->orders * 1000.0 + LOCK_TIMEOUT_MS);
        if (!line || !isfinite(jnum(line, "ops_all"))) {
            char tail[300];
            proc_err_tail(&x->w[i], tail, sizeof tail);
            rep_fail(rep, "flash worker %d: %s %s", i, line ? line : "(no answer)", tail);
            goto free_gh;
        }
        done += jnum(line, "ops_all");
        x->granted += (uint64_t)jnum(line, "granted");
        x->refused += (uint64_t)jnum(line, "refused");
        x->refused_cold += (uint64_t)jnum(line, "refused_cold_only");
        units += jnum(line, "units");
        t0 = fmin(t0, jnum(line, "t0"));
        t1 = fmax(t1, jnum(line, "t1"));
        L->cpu_ms += jnum(line, "cpu_ms");
        L->csw += jnum(line, "csw");
        rh[1] = fmin(rh[1], jnum(line, "rh1"));
        rh[2] = fmin(rh[2], jnum(line, "rh2"));
        lat_t req = {0};
        jlats(line, "req", &req);
        for (size_t k = 0; k < req.n && k < 16; k++)
            L->req[k] += (uint64_t)req.v[k];
        lat_free(&req);
        jlats(line, "gh1", &gh[1]);
        jlats(line, "gh2", &gh[2]);
        jlats(line, "lat_ms", &L->lat);
    }
    L->srv_cpu_ms += server_cpu_ms() - sc0;
    if (opt.peers) {
        L->srv_pkts += server_packets() - p0;
        L->srv_writes += server_zxid() - z0;
    }
    /* A grant asking q hot units after a refusal asking q' <= q had returned. */
    for (int q = 1; q <= 2; q++) {
        double first_refusal = q == 1 ? rh[1] : fmin(rh[1], rh[2]);
        for (size_t k = 0; k < gh[q].n; k++) {
            if (gh[q].v[k] > first_refusal)
                x->fifo_violations++;
            if (gh[q].v[k] > fmin(rh[1], rh[2]))
                x->fifo_after_refusal++;
        }
    }
    len_s = (t1 - t0) / 1000.0;
    L->ops_all += (uint64_t)done;
    if (L->n < MAXR && len_s > 0)
        L->ops[L->n++] = done / len_s;
    if (done != x->orders)
        rep_fail(rep, "round %d: %.0f of %d orders done", r + 1, done, x->orders);
    flash_check_stock(rep, x, inv, (int64_t)units, r);
    if (opt.verbose)
        fprintf(stderr, "  flash_sale round %d: %.0f orders in %.2f s = %.1f orders/s\n", r + 1, done, len_s,
                done / len_s);
free_gh:
    for (int q = 0; q < 3; q++)
        lat_free(&gh[q]);
out:
    zkc_inventory_destroy(inv);
    return len_s;
}

static void flash_results(report *rep, const flash_ctx *x)
{
    sb *e = &rep->extra;
    kv_num(e, "orders_granted", (double)x->granted);
    kv_num(e, "out_of_stock_refusals", (double)x->refused);
    kv_num(e, "refusals_without_hot_line", (double)x->refused_cold);
    kv_num(e, "oversold_units", (double)x->oversold);
    kv_raw(e, "units_conserved", x->conservation_ok ? "true" : "false");
    kv_num(e, "fifo_violations", (double)x->fifo_violations);
    /* Grants that started after some refusal had returned: legal only when
     * they ask fewer hot units than every such refusal (how much the check saw). */
    kv_num(e, "fifo_hot_grants_after_a_refusal", (double)x->fifo_after_refusal);
    kv_str(e, "fifo_method",
           "a grant asking q hot units that started after a refusal asking <= q hot units had returned "
           "(CLOCK_MONOTONIC across the worker processes; stock only goes down during a sale)");
    if (x->oversold)
        rep_fail(rep, "OVERSOLD: %" PRId64 " units beyond the stock", x->oversold);
    if (x->fifo_violations)
        rep_fail(rep, "FIFO: %" PRIu64 " grants after an earlier refusal of no more units", x->fifo_violations);
    if (!x->conservation_ok)
        rep_fail(rep, "units not conserved (see notes)");
    if (x->refused_cold)
        rep_fail(rep, "%" PRIu64 " orders without the hot SKU were refused (cold SKUs are stocked for all)",
                 x->refused_cold);
}

void sc_flash_sale(report *rep)
{
    const int procs_full = 16, procs_quick = 2;
    const int threads_full = 8, threads_quick = 4;
    const int orders_full = 20000, orders_quick = 200;
    flash_ctx x;
    memset(&x, 0, sizeof x);
    x.procs = opt.flash_procs > 0 ? opt.flash_procs : SCN(procs);
    x.threads = opt.flash_threads > 0 ? opt.flash_threads : SCN(threads);
    x.orders = opt.flash_orders > 0 ? opt.flash_orders : SCN(orders);
    x.conservation_ok = 1;
    flash_stock(x.orders, &x.hot, x.cold);
    snprintf(x.base, sizeof x.base, "%s/flash/zkc", g_root);
    params_common(rep, x.procs, x.procs * x.threads);
    kv_num(&rep->params, "processes", x.procs);
    kv_num(&rep->params, "threads_per_process", x.threads);
    kv_num(&rep->params, "orders", x.orders);
    kv_num(&rep->params, "hot_skus", 1);
    kv_num(&rep->params, "cold_skus", FLASH_COLD);
    kv_num(&rep->params, "hot_order_pct", FLASH_HOT_PCT);
    kv_num(&rep->params, "hot_stock", (double)x.hot);
    kv_str(&rep->params, "lines", "1-3 per order, 1-2 units each, fail-fast");
    rep->floor_what = "none (no raw floor for this mix; --peers runs Curator on it)";
    x.w = calloc((size_t)x.procs, sizeof *x.w);
    if (!x.w) {
        rep_fail(rep, "out of memory");
        return;
    }
    if (!(x.c = setup_client(rep)) || flash_start_workers(rep, &x))
        goto out;
    if (opt.peers) {
        char arg[64];
        snprintf(arg, sizeof arg, "%d:%d:%d:%" PRId64, x.procs, x.threads, x.orders, x.hot);
        rep->peers = peers_start("flash", x.procs, peer_dir("flash"), arg,
                                 "per order: InterProcessMutex per SKU (name order) + DistributedAtomicLong get, "
                                 "check, add(-qty) per line + release; same book and stock",
                                 NULL);
    }
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        double len_s = flash_round(rep, &x, r);
        if (!rep_ok(rep))
            break;
        peers_round(rep->peers, fmax(opt.seconds, len_s));
    }
    flash_results(rep, &x);
out:
    for (int i = 0; i < x.nw; i++)
        proc_stop(&x.w[i]);
    free(x.w);
    zkc_client_destroy(x.c);
}
