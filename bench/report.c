/* The end of a scenario: why the ratio is what it is (from this run's
 * numbers), its JSON object and its table row. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Data-driven explanation: round trips first (each write is an fsync'd
 * transaction), then conflicts, then client CPU. */
static void analyse(report *rep, double ratio)
{
    side *L = &rep->lib, *F = &rep->fl;
    sb *b = &rep->reason;
    if (rep->floor_is_limit || !L->ops_all)
        return;
    if (b->n)
        sb_printf(b, " ");
    sb_printf(b, "requests/op: library ");
    req_text(b, L);
    sb_printf(b, " (%.2f writes)", writes_per_op(L));
    if (F->ops_all) {
        sb_printf(b, " vs %s ", strncmp(rep->name, "reserve", 7) ? "floor" : "baseline");
        req_text(b, F);
        sb_printf(b, " (%.2f writes)", writes_per_op(F));
    }
    sb_printf(b, ".");
    if (!F->ops_all) {
        sb_printf(b, " Client CPU per op %.3f ms; context switches per op %.1f.", L->cpu_ms / (double)L->ops_all,
                  L->csw / (double)L->ops_all);
        if (isfinite(L->srv_cpu_ms))
            sb_printf(b, " ZooKeeper servers' CPU per op %.3f ms.", L->srv_cpu_ms / (double)L->ops_all);
        sb_printf(b, " Latency p50 %.2f ms, mean %.2f ms.", lat_pct(&L->lat, 50), lat_mean(&L->lat));
        return;
    }
    double lc = L->ops_all ? L->cpu_ms / (double)L->ops_all : NAN, fc = F->ops_all ? F->cpu_ms / (double)F->ops_all : NAN;
    sb_printf(b, " Client CPU per op: library %.3f ms vs %.3f ms; context switches per op %.1f vs %.1f.", lc, fc,
              L->ops_all ? L->csw / (double)L->ops_all : NAN, F->ops_all ? F->csw / (double)F->ops_all : NAN);
    if (isfinite(L->srv_cpu_ms) && isfinite(F->srv_cpu_ms) && F->ops_all)
        sb_printf(b, " ZooKeeper servers' CPU per op: library %.3f ms vs %.3f ms.", L->srv_cpu_ms / (double)L->ops_all,
                  F->srv_cpu_ms / (double)F->ops_all);
    if (L->conflicts)
        sb_printf(b, " BadVersion conflicts: library %.2f/op", (double)L->conflicts / (double)L->ops_all);
    if (F->conflicts)
        sb_printf(b, "%s floor %.2f/op", L->conflicts ? "," : " BadVersion conflicts:",
                  (double)F->conflicts / (double)F->ops_all);
    if (L->conflicts || F->conflicts)
        sb_printf(b, ".");
    if (L->fails)
        sb_printf(b, " %llu library ops failed with ZKC_ECONTENDED.", (unsigned long long)L->fails);
    double lp50 = lat_pct(&L->lat, 50), fp50 = lat_pct(&F->lat, 50);
    sb_printf(b, " Latency p50 %.2f vs %.2f ms, mean %.2f vs %.2f ms.", lp50, fp50, lat_mean(&L->lat), lat_mean(&F->lat));
    (void)ratio;
}

/* What we found when profiling (bench/README.md has the evidence), stated
 * only when this run's numbers show the same pattern again. */
static void known_causes(report *rep, double ratio)
{
    side *L = &rep->lib, *F = &rep->fl;
    sb *b = &rep->reason;
    if (!L->ops_all || !F->ops_all || rep->floor_is_limit)
        return;
    double extra_w = writes_per_op(L) - writes_per_op(F);
    double rw = per_op(L, ZKC_REQ_REMOVE_WATCH);
    double lget = per_op(L, ZKC_REQ_GET), fget = per_op(F, ZKC_REQ_GET);
    double lcpu = L->cpu_ms / (double)L->ops_all, fcpu = F->cpu_ms / (double)F->ops_all;
    double lsrv = L->srv_cpu_ms / (double)L->ops_all, fsrv = F->srv_cpu_ms / (double)F->ops_all;
    if (extra_w > 0.05 && strcmp(rep->name, "reserve_fifo") != 0)
        sb_printf(b, " Cause: %.2f more fsync'd writes per op than the floor.", extra_w);
    if (!strncmp(rep->name, "lock_", 5) && rw > 0.5)
        sb_printf(b,
                  " Cause: each hold adds two requests the floor does not make: a get+watch on the holder's own "
                  "node (lost-lock detection, lib/member.c watch_own) and, at release, removeWatches for it ahead of "
                  "the delete (release_start -> zkc__watch_drop) (%.2f get, %.2f removeWatches per cycle vs %.2f get "
                  "in the floor). The delete fires that watch anyway, so the removeWatches could be skipped.",
                  lget, rw, isfinite(fget) ? fget : 0.0);
    if (!strcmp(rep->name, "lock_many") && isfinite(lsrv) && isfinite(fsrv)) {
        double tl = lcpu + lsrv, tf = fcpu + fsrv;
        sb_printf(b,
                  " With 64 cycles outstanding the 2-CPU machine is CPU-bound (fsyncs are group-committed): "
                  "client+server CPU per cycle is %.3f ms for the library vs %.3f ms for the floor, a ratio of %.2f, "
                  "which is the throughput ratio. Client side, callgrind shows the ZooKeeper C client re-resolving the "
                  "host list on every I/O wakeup (getaddrinfo + srandom_r, about half of all client instructions, "
                  "for both sides; zoo_set_servers_resolution_delay() in lib/client.c would remove it for the "
                  "library), and the library makes more wakeups per cycle (5 requests, engine-thread hops).",
                  tl, tf, tl > 0 ? tf / tl : NAN);
    }
    if ((!strcmp(rep->name, "lock_uncontended") || !strcmp(rep->name, "lock_contended")) && L->csw > 0 && F->csw > 0)
        sb_printf(b,
                  " Latency path: %.1f context switches per cycle vs %.1f for the floor.%s",
                  L->csw / (double)L->ops_all, F->csw / (double)F->ops_all,
                  strcmp(rep->name, "lock_uncontended")
                      ? ""
                      : " The library's own threads are off this path (the engine runs in place on the ZooKeeper "
                        "completion thread and wakes the caller directly; per-thread figures in bench/README.md): "
                        "the extra switches are libzookeeper_mt's completion thread, which carries every "
                        "asynchronous reply and watch event, while the floor's synchronous calls are completed on "
                        "its I/O thread.");
    if (!strcmp(rep->name, "counter_uncontended")) {
        double f2 = side_median(&rep->fl2), lo = side_median(L), f1 = side_median(F);
        if (f2 > 0 && lo / f2 >= 0.9)
            sb_printf(b,
                      " Cause: exactly-once makes every add one multi {setData counter, setData this client's slot "
                      "record} (lib/counter.c txn_send): one round trip, like the floor, but a two-op transaction; "
                      "the raw multi {setData, create marker, delete marker} loop runs at %.1f ops/s (%.2f of "
                      "setData) and the library reaches %.2f of it: the gap is the transaction shape.",
                      f2, f1 > 0 ? f2 / f1 : NAN, lo / f2);
        else
            sb_printf(b,
                      " Cause: not the transaction shape (the raw multi {setData, create marker, delete marker} "
                      "loop runs at %.2f of setData here, the library at %.2f of that multi) nor round trips "
                      "(1 multi per add): it is the client side of a latency-bound loop: %.1f context switches per "
                      "add vs %.1f (caller -> engine -> ZooKeeper I/O -> completion -> engine -> caller), each a "
                      "wait for a CPU when the machine is loaded; the medians are close, the mean and tail are not.",
                      f1 > 0 ? f2 / f1 : NAN, f2 > 0 ? lo / f2 : NAN, L->csw / (double)L->ops_all,
                      F->csw / (double)F->ops_all);
    }
    if (!strcmp(rep->name, "counter_hot_threads")) {
        double m = (double)L->req[ZKC_REQ_MULTI];
        double apt = m > 0 ? (double)L->ops_all / m : NAN;
        sb_printf(b,
                  " Cause: %.1f adds per transaction with %d threads: a counter has one transaction in flight "
                  "(lib/counter.c core_kick); when it completes the engine wakes its callers and sends the next "
                  "batch at once, before those callers can queue again, so the batches alternate between two "
                  "halves of the threads. Pipelining the next transaction at version+1 (a session's requests are "
                  "ordered) or holding the next send until the woken callers re-queue would double the batch.",
                  apt, rep->threads);
    }
    if (!strcmp(rep->name, "counter_hot_sessions") && L->conflicts > 0) {
        if (rep->starved)
            sb_printf(b,
                      " Cause (fairness): a session that just wrote knows the new version and writes again at "
                      "once, while a loser must re-read; the losers' \"zkc-waiting-\" beacons (lib/counter.c, "
                      "FAIRNESS) make the winner yield, so starvation here means the beacon was not seen in time "
                      "(%.2f beacon creates, %.2f children listings per add).",
                      per_op(L, ZKC_REQ_CREATE), per_op(L, ZKC_REQ_CHILDREN));
        sb_printf(b,
                  " With one thread per session there is nothing to combine: a fair rotation costs every session "
                  "a re-read and a write per add, as the floor does (library %.2f get + %.2f multi per add, "
                  "floor %.2f get + %.2f set), plus the beacons (%.2f create + %.2f delete per add).",
                  lget, per_op(L, ZKC_REQ_MULTI), isfinite(fget) ? fget : 0.0, per_op(F, ZKC_REQ_SET),
                  per_op(L, ZKC_REQ_CREATE), per_op(L, ZKC_REQ_DELETE));
    }
    if (!strcmp(rep->name, "reserve_fifo")) {
        double orders = (double)L->ops_all, multis = (double)L->req[ZKC_REQ_MULTI];
        double tl = lcpu + lsrv, tf = fcpu + fsrv;
        double opm = multis > 0 ? orders / multis : NAN;
        sb_printf(b,
                  " %.2f writes per order (%.2f orders per multi: enqueues of one client combined, grants batched "
                  "by the head) plus %.2f reads, against %.2f writes for mutex + get + CAS + unlock.",
                  writes_per_op(L), opm, total_per_op(L) - writes_per_op(L), writes_per_op(F));
        if (isfinite(ratio) && ratio < 10)
            sb_printf(b,
                      " What each order still pays alone is the watches on its record and on the node ahead (a "
                      "process's orders share their listings and queue-length checks, and a granter of the same "
                      "process neither reads their entries nor makes them re-read their records; other processes' "
                      "orders are read), and its wait for the grant rounds, which are sequential (each head "
                      "lists, reads, writes, then wakes the next).");
        sb_printf(b, " Client+server CPU per order: %.3f ms vs %.3f ms for the baseline (ratio %.2f).", tl, tf,
                  tl > 0 ? tf / tl : NAN);
    }
    (void)lcpu;
    (void)fcpu;
}
int g_any_error;
FILE *g_json;
sb g_table;

static const char *fmt_num(char *buf, size_t n, double x, int prec)
{
    if (!isfinite(x))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.*f", prec, x);
    return buf;
}

/* The figures a scenario is judged by. */
typedef struct verdict {
    double lo, fo, ratio;   /* median ops/s of library and floor, their ratio */
    double smin, smax;      /* spread of the per-round ratios */
    double paired;          /* median of the per-round ratios */
    double p50, p99;        /* library latency */
    int has_target, met;
} verdict;

static void measure(report *rep, const scenario *sc, verdict *v)
{
    side *L = &rep->lib, *F = &rep->fl;
    v->lo = side_median(L);
    v->fo = side_median(F);
    v->ratio = (isfinite(v->lo) && isfinite(v->fo) && v->fo > 0) ? v->lo / v->fo : NAN;
    v->smin = v->smax = NAN;
    double pr[MAXR];
    int npr = 0, nr = L->n < F->n ? L->n : F->n;
    for (int i = 0; i < nr; i++) {
        if (F->ops[i] <= 0)
            continue;
        double r = L->ops[i] / F->ops[i];
        v->smin = isfinite(v->smin) ? fmin(v->smin, r) : r;
        v->smax = isfinite(v->smax) ? fmax(v->smax, r) : r;
        pr[npr++] = r;
    }
    v->paired = median(pr, npr);
    v->has_target = isfinite(sc->target);
    v->met = v->has_target && isfinite(v->ratio) && v->ratio >= sc->target && !rep->starved;
    v->p50 = lat_pct(&L->lat, 50);
    v->p99 = lat_pct(&L->lat, 99);
}

/* rep->reason: a missed target first (with the scenario's own findings after
 * it), then the measured explanation. */
static void judge(report *rep, const scenario *sc, const verdict *v)
{
    int judged = !strcmp(rep->status, "ok") && v->has_target && isfinite(v->ratio);
    if (judged && !v->met) {
        sb cause = {0};
        sb_printf(&cause, "%s", sb_str(&rep->reason));
        sb_reset(&rep->reason);
        if (rep->starved && v->ratio >= sc->target)
            sb_printf(&rep->reason, "MISSED: ratio %.2f meets %.2f but %s.%s%s", v->ratio, sc->target,
                      rep->starve_msg, cause.n ? " " : "", sb_str(&cause));
        else
            sb_printf(&rep->reason, "MISSED: ratio %.2f < %.2f%s%s.%s%s", v->ratio, sc->target,
                      rep->starved ? " and " : "", rep->starved ? rep->starve_msg : "", cause.n ? " " : "",
                      sb_str(&cause));
        sb_free(&cause);
    }
    analyse(rep, v->ratio);
    /* Throughput met in counter_hot_sessions: still say why it is less fair than the floor. */
    if (judged && (!v->met || !strcmp(rep->name, "counter_hot_sessions")))
        known_causes(rep, v->ratio);
}

static void json_rounds(sb *j, const report *rep)
{
    const side *L = &rep->lib, *F = &rep->fl;
    sb s = {0};
    sb_printf(&s, "[");
    int n = L->n > F->n ? L->n : F->n;
    for (int i = 0; i < n; i++) {
        sb_printf(&s, "%s{\"library\": ", i ? ", " : "");
        sb_jnum(&s, i < L->n ? L->ops[i] : NAN);
        sb_printf(&s, ", \"floor\": ");
        sb_jnum(&s, i < F->n ? F->ops[i] : NAN);
        if (rep->fl2.n) {
            sb_printf(&s, ", \"floor2\": ");
            sb_jnum(&s, i < rep->fl2.n ? rep->fl2.ops[i] : NAN);
        }
        sb_printf(&s, ", \"ratio\": ");
        sb_jnum(&s, i < L->n && i < F->n && F->ops[i] > 0 ? L->ops[i] / F->ops[i] : NAN);
        sb_printf(&s, "}");
    }
    sb_printf(&s, "]");
    kv_raw(j, "rounds", sb_str(&s));
    sb_free(&s);
}

static void json_requests(sb *j, const char *key, const side *s)
{
    sb o = {0};
    req_json(&o, s);
    kv_raw(j, key, sb_str(&o));
    sb_free(&o);
}

/* Requests, conflicts, CPU and context switches per operation. */
static void json_costs(sb *j, report *rep)
{
    side *L = &rep->lib, *F = &rep->fl;
    int fl = !rep->floor_is_limit;
    json_requests(j, "requests_per_op", L);
    if (fl)
        json_requests(j, "floor_requests_per_op", F);
    kv_num(j, "conflicts_per_op", side_per_op(L, (double)L->conflicts));
    kv_num(j, "failed_ops", (double)L->fails);
    kv_num(j, "cpu_ms_per_op", side_per_op(L, L->cpu_ms));
    if (fl)
        kv_num(j, "floor_cpu_ms_per_op", side_per_op(F, F->cpu_ms));
    kv_num(j, "server_cpu_ms_per_op", side_per_op(L, L->srv_cpu_ms));
    kv_num(j, "context_switches_per_op", side_per_op(L, L->csw));
    if (fl) {
        kv_num(j, "floor_context_switches_per_op", side_per_op(F, F->csw));
        kv_num(j, "floor_server_cpu_ms_per_op", side_per_op(F, F->srv_cpu_ms));
    }
    if (rep->fl2.n) {
        double f2 = side_median(&rep->fl2);
        kv_str(j, "floor2", rep->floor2_what);
        kv_num(j, "floor2_ops_per_s", f2);
        kv_num(j, "ratio_to_floor2", f2 > 0 ? side_median(L) / f2 : NAN);
        kv_num(j, "floor2_p50_ms", lat_pct(&rep->fl2.lat, 50));
        kv_num(j, "floor2_p99_ms", lat_pct(&rep->fl2.lat, 99));
        json_requests(j, "floor2_requests_per_op", &rep->fl2);
    }
}

/* Where and when: fsync latency, load, CPUs, ensemble, commit. */
static void json_context(sb *j, const report *rep)
{
    sb s = {0};
    fsync_json(&s, &rep->fs);
    kv_raw(j, "fsync", sb_str(&s));
    sb_reset(&s);
    sb_jnums(&s, rep->load, 3);
    kv_raw(j, "load_avg_at_start", sb_str(&s));
    sb_free(&s);
    kv_num(j, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    kv_str(j, "ensemble", g_ens_desc);
    kv_str(j, "commit", g_commit);
}

static void emit_json(report *rep, const scenario *sc, const verdict *v)
{
    side *F = &rep->fl;
    sb j = {0};
    kv_str(&j, "scenario", rep->name);
    kv_str(&j, "what", sc->desc);
    kv_str(&j, "status", rep->status);
    if (rep->message[0])
        kv_str(&j, "message", rep->message);
    kv_num(&j, "ops_per_s", v->lo);
    kv_num(&j, "p50_ms", v->p50);
    kv_num(&j, "p99_ms", v->p99);
    kv_str(&j, "floor", rep->floor_what ? rep->floor_what : "");
    kv_num(&j, "floor_ops_per_s", v->fo);
    if (!strcmp(rep->name, "reserve_fifo"))
        kv_num(&j, "baseline_ops_per_s", v->fo);
    kv_num(&j, "floor_p50_ms", lat_pct(&F->lat, 50));
    kv_num(&j, "floor_p99_ms", lat_pct(&F->lat, 99));
    kv_num(&j, "ratio", v->ratio);
    double spread[2] = {v->smin, v->smax};
    sb s = {0};
    sb_jnums(&s, spread, 2);
    kv_raw(&j, "spread", sb_str(&s));
    sb_free(&s);
    kv_num(&j, "ratio_median_of_rounds", v->paired);
    kv_num(&j, "target", v->has_target ? sc->target : NAN);
    kv_raw(&j, "target_met", !v->has_target || !isfinite(v->ratio) ? "null" : v->met ? "true" : "false");
    if (rep->reason.n)
        kv_str(&j, "reason", sb_str(&rep->reason));
    if (rep->notes.n)
        kv_str(&j, "notes", sb_str(&rep->notes));
    json_rounds(&j, rep);
    kv_obj(&j, "params", &rep->params);
    json_costs(&j, rep);
    if (rep->extra.n)
        sb_printf(&j, ", %s", sb_str(&rep->extra));
    if (opt.peers) {
        kv_num(&j, "server_requests_per_op", side_per_op(&rep->lib, rep->lib.srv_pkts));
        kv_num(&j, "server_writes_per_op", side_per_op(&rep->lib, rep->lib.srv_writes));
    }
    peers_json(&j, rep->peers, v->lo, sc->peer_target);
    limit_json(&j, &rep->lim, v->lo, writes_per_op(&rep->lib));
    json_context(&j, rep);
    if (g_json) {
        fprintf(g_json, "{%s}\n", sb_str(&j));
        fflush(g_json);
    }
    sb_free(&j);
}

/* "lib|floor" requests per operation. */
static void table_requests(char *out, size_t len, const report *rep)
{
    const side *L = &rep->lib, *F = &rep->fl;
    char lq[24], fq[24];
    if (!L->ops_all && !F->ops_all) {
        snprintf(out, len, "-");
        return;
    }
    fmt_num(lq, sizeof lq, L->ops_all ? total_per_op(L) : NAN, 2);
    fmt_num(fq, sizeof fq, rep->floor_is_limit || !F->ops_all ? NAN : total_per_op(F), 2);
    snprintf(out, len, "%s|%s", lq, fq);
}

static void emit_table(const report *rep, const scenario *sc, const verdict *v)
{
    char a[32], bq[32], c[32], d[32], e[32], f[48], g[32], h[32], rq[48];
    fmt_num(a, sizeof a, v->lo, 1);
    fmt_num(bq, sizeof bq, v->p50, 2);
    fmt_num(c, sizeof c, v->p99, 2);
    fmt_num(d, sizeof d, v->fo, 1);
    fmt_num(e, sizeof e, v->ratio, 2);
    if (isfinite(v->smin))
        snprintf(f, sizeof f, "%.2f..%.2f", v->smin, v->smax);
    else
        snprintf(f, sizeof f, "-");
    if (v->has_target)
        snprintf(g, sizeof g, ">=%.2g", sc->target);
    else
        snprintf(g, sizeof g, "report");
    snprintf(h, sizeof h, "%s",
             strcmp(rep->status, "ok")   ? rep->status
             : !v->has_target            ? "-"
             : !isfinite(v->ratio)       ? "?"
             : v->met                    ? "yes"
                                         : "NO");
    table_requests(rq, sizeof rq, rep);
    char row[400], vp[40] = "", wq[24];
    fmt_num(wq, sizeof wq, writes_per_op(&rep->lib), 2);
    snprintf(row, sizeof row, "%-21s %10s %8s %8s %11s %6s %11s %7s %7s %11s %6s", rep->name, a, bq, c, d, e, f, g, h,
             rq, wq);
    if (opt.peers) {
        const char *who;
        double best = peers_best(rep->peers, &who);
        char r[24];
        snprintf(vp, sizeof vp, " %10s", fmt_num(r, sizeof r, best > 0 ? v->lo / best : NAN, 2));
    }
    sb_printf(&g_table, "%s%s\n", row, vp);
    printf("%s%s\n", row, vp);
    if (rep->message[0])
        printf("    error: %s\n", rep->message);
    if (rep->reason.n)
        printf("    %s\n", sb_str(&rep->reason));
    if (rep->notes.n)
        printf("    notes: %s\n", sb_str(&rep->notes));
    if (rep->extra.n)
        printf("    extra: %s\n", sb_str(&rep->extra));
    if (rep->fl2.n) {
        double f2 = side_median(&rep->fl2);
        printf("    second floor (%s): %.1f ops/s, library/floor2 = %.2f\n", rep->floor2_what, f2,
               f2 > 0 ? v->lo / f2 : NAN);
    }
    peers_text(rep->peers, v->lo, sc->peer_target);
    if (rep->lib.ops_all)
        limit_text(&rep->lim, v->lo, writes_per_op(&rep->lib));
    fflush(stdout);
}

void emit(report *rep, const scenario *sc)
{
    verdict v;
    measure(rep, sc, &v);
    judge(rep, sc, &v);
    emit_json(rep, sc, &v);
    emit_table(rep, sc, &v);
}

const char *table_header(void)
{
    if (opt.peers)
        return "scenario               lib ops/s   p50 ms   p99 ms floor ops/s  ratio      spread  target     met "
               "req/op l|f  w/op   lib/peer\n";
    return "scenario               lib ops/s   p50 ms   p99 ms floor ops/s  ratio      spread  target     met "
           "req/op l|f  w/op\n";
}
