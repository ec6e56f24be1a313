/*
 * order-worker: the main job. Several worker PROCESSES take generated orders
 * (several lines over a catalogue of SKUs with limited stock and a few hot
 * SKUs), reserve each order's lines all or nothing through the fair
 * reservation queue, confirm (the sale), and count. Uses only <zkcoord.h>.
 *
 * Exactly once, across worker crashes: an order's id is its reservation id.
 * Reserving again under the same id returns the existing reservation instead of
 * taking more stock, and confirm moves RESERVED -> SOLD in the same ZooKeeper
 * transaction that records the sale, so the record of completion and the sale
 * cannot disagree. A worker that dies mid-order leaves the order PENDING,
 * RESERVED or unclaimed; the sweep at the end finds every order that is not
 * final and drives it to completion. No lock per order is needed.
 *
 * One reaper at a time: every worker stands in the leader election at
 * <root>/reaper and, while leader, returns reservations past their hold time
 * between orders (zkc_inventory_reap). Each reap is logged with its term token
 * so the orchestrator can check that two workers never reaped at once and
 * that terms follow each other in token order. After each reap the leader
 * records it in <root>/reaper-status with a write guarded by its term
 * (zkc_election_guard): a former leader that still believes it leads cannot
 * overwrite the record of a newer term. The reap itself needs no guard: its
 * writes are exact under any number of reapers (versioned, per record); the
 * election only saves the duplicate work.
 *
 *   order-worker [--workers N] [--orders N] [--skus N] [--hot N] [--stock N]
 *                [--crash-rate P] [--seed S] [--hosts H] [--root PATH] [--quiet]
 *                [--metrics-file PATH] [--metrics-port N] [--metrics-linger-ms MS]
 *
 * Metrics: each worker process is one zkcoord client and exports its own
 * metrics (zkc_client_metrics_format), labelled worker="<index>": worker i
 * rewrites PATH with "-w<i>" before a ".prom" suffix (or after PATH) every
 * 2 s, atomically (temp file + rename, for node_exporter's textfile
 * collector), and answers GET /metrics on 127.0.0.1:N+i. After its work a
 * worker keeps exporting for --metrics-linger-ms (or until SIGUSR1), so the
 * final numbers can be scraped. The orchestrator's own client is not exported.
 */
#include <zkcoord.h>

#include "metrics_export.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINES 3
#define MAX_SKUS 1000
#define CRASH_STATUS 70

typedef struct cfg {
    int workers, orders, skus, hot;
    int64_t stock;
    double crash_rate;
    uint64_t seed;
    const char *hosts;
    char root[256];
    int quiet;
    const char *metrics_file;
    int metrics_port, metrics_linger_ms;
} cfg;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* splitmix64: orders are a pure function of (seed, order number), so every
 * process, including the checker, knows each order's lines. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

typedef struct order {
    int n;
    int sku[MAX_LINES];
    int64_t qty[MAX_LINES];
} order;

static void gen_order(const cfg *c, int i, order *o)
{
    uint64_t r = mix(c->seed * 1000003ULL + (uint64_t)i);
    o->n = 1 + (int)(r % MAX_LINES);
    for (int k = 0; k < o->n; k++) {
        r = mix(r);
        int sku;
        /* Half of all lines go to the few hot SKUs: that is where orders queue. */
        if (c->hot > 0 && (r & 1))
            sku = (int)((r >> 1) % (uint64_t)c->hot);
        else
            sku = (int)((r >> 1) % (uint64_t)c->skus);
        int dup = 0;
        for (int j = 0; j < k; j++)
            dup |= o->sku[j] == sku;
        if (dup) {
            o->n = k;
            break;
        }
        o->sku[k] = sku;
        o->qty[k] = 1 + (int64_t)((r >> 20) % 3);
    }
}

static void sku_name(int i, char *buf, size_t len)
{
    snprintf(buf, len, "sku-%04d", i);
}

static void order_id(int i, char *buf, size_t len)
{
    snprintf(buf, len, "order-%06d", i);
}

static zkc_client *connect_or_die(const cfg *c)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = c->hosts;
    o.session_timeout_ms = 10000;
    zkc_client *cl;
    int rc = zkc_client_create(&cl, &o);
    if (rc) {
        fprintf(stderr, "order-worker: cannot connect to %s: %s\n", c->hosts, zkc_errmsg());
        exit(1);
    }
    return cl;
}

/* ---------------------------------------------------------------- worker */

typedef struct wstats {
    int64_t processed, reserved, refused, retries;
    int64_t lat_us[65536];
    int nlat;
    FILE *events; /* "order outcome submit_us return_us" per decided attempt */
} wstats;

static wstats ws;

static void path_of(const cfg *c, const char *leaf, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", c->root, leaf);
}

/* Drive order i to a final state. Returns 0, or -1 when the order must be
 * retried later (e.g. connection trouble). */
static int process(const cfg *c, zkc_inventory *inv, zkc_counter *done, int i, int may_crash)
{
    order o;
    gen_order(c, i, &o);
    char id[64], names[MAX_LINES][32];
    zkc_inventory_line lines[MAX_LINES];
    order_id(i, id, sizeof id);
    for (int k = 0; k < o.n; k++) {
        sku_name(o.sku[k], names[k], sizeof names[k]);
        lines[k].sku = names[k];
        lines[k].qty = o.qty[k];
    }
    zkc_inventory_reserve_options ro = {0};
    ro.hold_ms = 60000;
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    int64_t t0 = now_us();
    int rc = zkc_inventory_reserve(inv, id, lines, o.n, &ro, 20000, NULL, &st);
    int64_t dt = now_us() - t0;
    if (ws.nlat < (int)(sizeof ws.lat_us / sizeof ws.lat_us[0]))
        ws.lat_us[ws.nlat++] = dt;
    if (ws.events && (rc == 0 || rc == ZKC_EOUTOFSTOCK))
        fprintf(ws.events, "%d %d %" PRId64 " %" PRId64 "\n", i, rc == 0 && st != ZKC_INVENTORY_OUT_OF_STOCK, t0,
                t0 + dt);
    if (rc == 0 && (st == ZKC_INVENTORY_RESERVED || st == ZKC_INVENTORY_SOLD)) {
        /* A crash here leaves a reservation without a sale: the sweep must
         * confirm it, exactly once. */
        if (may_crash && c->crash_rate > 0 && (double)(mix((uint64_t)i ^ (uint64_t)getpid()) % 1000000) / 1e6 < c->crash_rate)
            _exit(CRASH_STATUS);
        if ((rc = zkc_inventory_confirm(inv, id)) != 0) {
            fprintf(stderr, "worker %d: confirm %s: %s\n", getpid(), id, zkc_errmsg());
            return -1;
        }
        ws.reserved++;
    } else if (rc == ZKC_EOUTOFSTOCK || (rc == 0 && st == ZKC_INVENTORY_OUT_OF_STOCK)) {
        ws.refused++;
    } else {
        if (!c->quiet)
            fprintf(stderr, "worker %d: reserve %s: %s (%s)\n", getpid(), id, zkc_strerror(rc), zkc_errmsg());
        return -1;
    }
    /* Progress, once per order whoever finishes it (keyed: a redo counts once). */
    char key[80];
    snprintf(key, sizeof key, "done-%s-%s", c->root + 1, id);
    for (char *p = key; *p; p++)
        if (*p == '/')
            *p = '_';
    zkc_update u = {0};
    u.key = key;
    zkc_counter_add(done, 1, &u, NULL);
    ws.processed++;
    return 0;
}

/* The election's callback: the worker asks zkc_election_is_leader between
 * orders instead, so the grant itself needs no action. */
static void reaper_led(zkc_election *e, int status, int64_t token, void *ud)
{
    (void)e;
    (void)status;
    (void)token;
    (void)ud;
}

/* The reap's record, "<token> <returned>", written only while the term lasts:
 * set, or create on the first reap ever. 0, ZKC_EFENCED (the term had ended:
 * nothing written), or another error. */
static int reap_record(zkc_client *cl, const char *status_path, const zkc_guard *g, int64_t returned)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%" PRId64 " %" PRId64, g->token, returned);
    int rc = zkc_guarded_set(cl, g, status_path, buf, n, -1);
    if (rc == ZKC_ENONODE) {
        rc = zkc_guarded_create(cl, g, status_path, buf, n);
        if (rc == ZKC_EEXISTS) /* another term's first record came first */
            rc = zkc_guarded_set(cl, g, status_path, buf, n, -1);
    }
    return rc;
}

static void reap_if_leader(zkc_client *cl, const char *status_path, zkc_inventory *inv, zkc_election *el, FILE *log)
{
    int64_t returned = 0;
    zkc_guard g;
    if (!el || !zkc_election_is_leader(el) || zkc_election_guard(el, &g) != 0)
        return;
    int64_t t0 = now_us();
    int rc = zkc_inventory_reap(inv, &returned);
    int64_t t1 = now_us();
    int wrc = rc == 0 ? reap_record(cl, status_path, &g, returned) : 1;
    int64_t t2 = now_us();
    if (log)
        fprintf(log, "%" PRId64 " %" PRId64 " %" PRId64 " %d %" PRId64 " %d %" PRId64 "\n", g.token, t0, t1, rc,
                returned, wrc, t2);
}

static int final_state(zkc_inventory_state s)
{
    return s == ZKC_INVENTORY_SOLD || s == ZKC_INVENTORY_OUT_OF_STOCK;
}

/* Worker i's file: PATH with "-w<i>" before a ".prom" suffix, or after PATH. */
static void metrics_file_of(const char *path, int index, char *buf, size_t len)
{
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".prom") == 0)
        snprintf(buf, len, "%.*s-w%d.prom", (int)(n - 5), path, index);
    else
        snprintf(buf, len, "%s-w%d", path, index);
}

static void finished_lines(exporter *x, int index, int done)
{
    char lines[300];
    snprintf(lines, sizeof lines,
             "# HELP order_worker_finished 1 once this worker has finished its orders and its sweep.\n"
             "# TYPE order_worker_finished gauge\norder_worker_finished{worker=\"%d\"} %d\n",
             index, done);
    exporter_set_extra(x, lines);
}

static int worker_main(const cfg *c, int index)
{
    /* SIGUSR1 ends the metrics linger: blocked here, before the client's
     * threads exist, so only sigtimedwait below takes it. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    char evfn[320];
    snprintf(evfn, sizeof evfn, "%s/events-%d", getenv("ORDER_WORKER_DIR"), getpid());
    ws.events = fopen(evfn, "w");
    if (ws.events)
        setvbuf(ws.events, NULL, _IOLBF, 0); /* a crash keeps what was decided */
    zkc_client *cl = connect_or_die(c);
    char p[300];
    exporter *mx = NULL;
    if (c->metrics_file || c->metrics_port > 0) {
        char idx[16], mfile[4096];
        snprintf(idx, sizeof idx, "%d", index);
        zkc_client_metrics_const_label(cl, "worker", idx);
        path_of(c, "inventory", p, sizeof p);
        zkc_client_metrics_label_prefix(cl, p, "inventory");
        path_of(c, "orders", p, sizeof p);
        zkc_client_metrics_label_prefix(cl, p, "orders");
        if (c->metrics_file)
            metrics_file_of(c->metrics_file, index, mfile, sizeof mfile);
        mx = exporter_start(cl, c->metrics_file ? mfile : NULL, c->metrics_port > 0 ? c->metrics_port + index : 0,
                            2000);
        if (!mx)
            return 1;
        finished_lines(mx, index, 0);
    }
    zkc_inventory *inv;
    path_of(c, "inventory", p, sizeof p);
    if (zkc_inventory_create(cl, p, &inv) != 0) {
        fprintf(stderr, "worker: inventory: %s\n", zkc_errmsg());
        return 1;
    }
    zkc_election *el = NULL;
    char who[64], rfn[320];
    snprintf(who, sizeof who, "worker-%d-%d", index, getpid());
    snprintf(rfn, sizeof rfn, "%s/reaper-%d", getenv("ORDER_WORKER_DIR"), getpid());
    FILE *rlog = fopen(rfn, "w");
    if (rlog)
        setvbuf(rlog, NULL, _IOLBF, 0);
    char status_path[300];
    path_of(c, "reaper-status", status_path, sizeof status_path);
    path_of(c, "reaper", p, sizeof p);
    if (zkc_election_create(cl, p, who, NULL, 0, &el) != 0 ||
        zkc_election_lead_async(el, ZKC_FOREVER, reaper_led, NULL) != 0)
        fprintf(stderr, "worker: reaper election: %s\n", zkc_errmsg());
    zkc_counter *done;
    /* Order numbers from the id generator: never one twice, across crashes
     * and lost replies. Blocks of 1, so claims spread over the workers; a
     * number a crashed worker never used is finished by the sweep below. */
    zkc_idgen *next;
    zkc_idgen_options io;
    zkc_idgen_options_init(&io);
    io.block = io.max_block = 1;
    io.grow_ms = 0;
    path_of(c, "orders/next", p, sizeof p);
    if (zkc_idgen_create(cl, p, &io, &next) != 0) {
        fprintf(stderr, "worker: order numbers: %s\n", zkc_errmsg());
        return 1;
    }
    path_of(c, "orders/done", p, sizeof p);
    zkc_counter_create(cl, p, NULL, &done);
    for (;;) {
        int64_t num;
        int rc = zkc_idgen_next(next, ZKC_FOREVER, &num);
        if (rc) {
            fprintf(stderr, "worker: claim: %s\n", zkc_errmsg());
            continue;
        }
        if (num > c->orders)
            break;
        if (process(c, inv, done, (int)num, 1) != 0)
            ws.retries++; /* the sweep finishes it */
        if (num % 8 == 0)
            reap_if_leader(cl, status_path, inv, el, rlog);
    }
    /* Sweep: every order this worker is responsible for ends final, even those
     * claimed by a worker that crashed. */
    for (int i = 1 + index; i <= c->orders; i += c->workers) {
        char id[64];
        order_id(i, id, sizeof id);
        for (int attempt = 0; attempt < 20; attempt++) {
            zkc_inventory_state s = ZKC_INVENTORY_PENDING;
            int rc = zkc_inventory_lookup(inv, id, &s);
            if (rc == 0 && final_state(s))
                break;
            if (process(c, inv, done, i, 0) == 0)
                break;
        }
    }
    /* Report this worker's numbers to the orchestrator. */
    char fn[320];
    snprintf(fn, sizeof fn, "%s/worker-%d.stats", getenv("ORDER_WORKER_DIR"), getpid());
    FILE *f = fopen(fn, "w");
    if (f) {
        fprintf(f, "%" PRId64 " %" PRId64 " %" PRId64 " %d\n", ws.processed, ws.reserved, ws.refused, ws.nlat);
        for (int i = 0; i < ws.nlat; i++)
            fprintf(f, "%" PRId64 "\n", ws.lat_us[i]);
        fclose(f);
    }
    reap_if_leader(cl, status_path, inv, el, rlog);
    if (el) {
        zkc_election_resign(el); /* ZKC_ENOTHELD unless leading: fine either way */
        zkc_election_destroy(el);
    }
    if (rlog)
        fclose(rlog);
    if (mx) {
        finished_lines(mx, index, 1);
        exporter_write_file(mx);
        if (c->metrics_linger_ms > 0) {
            struct timespec lt = {c->metrics_linger_ms / 1000, (long)(c->metrics_linger_ms % 1000) * 1000000L};
            while (sigtimedwait(&usr1, NULL, &lt) < 0 && errno == EINTR)
                ;
        }
        exporter_stop(mx);
    }
    zkc_idgen_destroy(next);
    zkc_counter_destroy(done);
    zkc_inventory_destroy(inv);
    zkc_client_destroy(cl);
    return 0;
}

/* ---------------------------------------------------------------- orchestrator */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static pid_t spawn(const cfg *c, char **argv0, int index)
{
    pid_t pid = fork();
    if (pid == 0) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", index);
        setenv("ORDER_WORKER_INDEX", idx, 1);
        execv("/proc/self/exe", argv0);
        _exit(127);
    }
    (void)c;
    return pid;
}

static int run(cfg *c, char **argv)
{
    zkc_client *cl = connect_or_die(c);
    char p[300];
    zkc_inventory *inv;
    path_of(c, "inventory", p, sizeof p);
    if (zkc_inventory_create(cl, p, &inv) != 0) {
        fprintf(stderr, "order-worker: inventory: %s\n", zkc_errmsg());
        return 1;
    }
    /* Demand: about 2 units per line, ~2 lines per order, half on hot SKUs.
     * Unless told otherwise, stock covers ~70% of it, so hot SKUs sell out. */
    int64_t demand_per_sku = (int64_t)c->orders * 4 / (c->skus > 0 ? c->skus : 1);
    if (c->stock <= 0)
        c->stock = demand_per_sku * 7 / 10 + 1;
    for (int s = 0; s < c->skus; s++) {
        char name[32];
        sku_name(s, name, sizeof name);
        if (zkc_inventory_restock(inv, name, c->stock) != 0) {
            fprintf(stderr, "order-worker: restock %s: %s\n", name, zkc_errmsg());
            return 1;
        }
    }
    zkc_counter *done;
    path_of(c, "orders/done", p, sizeof p);
    zkc_counter_create(cl, p, NULL, &done);
    printf("order-worker: %d workers, %d orders, %d SKUs (%d hot), %" PRId64 " units each, crash rate %.3f, root %s\n",
           c->workers, c->orders, c->skus, c->hot, c->stock, c->crash_rate, c->root);
    fflush(stdout);

    char dir[] = "/tmp/order-worker.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("ORDER_WORKER_DIR", dir, 1);
    setenv("ORDER_WORKER_MODE", "worker", 1);
    pid_t *pids = calloc((size_t)c->workers, sizeof *pids);
    int64_t t0 = now_us();
    for (int w = 0; w < c->workers; w++)
        pids[w] = spawn(c, argv, w);
    int alive = c->workers, crashes = 0;
    int64_t last = 0;
    while (alive > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int w = 0; w < c->workers; w++) {
                if (pids[w] != pid)
                    continue;
                if (WIFEXITED(status) && WEXITSTATUS(status) == CRASH_STATUS) {
                    crashes++;
                    pids[w] = spawn(c, argv, w); /* a replacement takes over */
                } else {
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        fprintf(stderr, "order-worker: worker %d failed (status %d)\n", (int)pid, status);
                    pids[w] = 0;
                    alive--;
                }
            }
            continue;
        }
        int64_t t = now_us();
        if (t - last >= 500000) {
            int64_t v = 0;
            zkc_counter_get(done, &v);
            if (!c->quiet) {
                printf("\r  %6" PRId64 " / %d orders done, %d worker crash(es), %.1f s", v, c->orders, crashes,
                       (double)(t - t0) / 1e6);
                fflush(stdout);
            }
            last = t;
        }
        usleep(20000); /* the progress display's pace, not synchronisation: waitpid above is the event */
    }
    double secs = (double)(now_us() - t0) / 1e6;
    if (!c->quiet)
        printf("\n");

    /* ---- check the outcome against ZooKeeper ---- */
    int64_t sold_expected[MAX_SKUS] = {0};
    int processed = 0, refused = 0, not_final = 0;
    for (int i = 1; i <= c->orders; i++) {
        char id[64];
        order_id(i, id, sizeof id);
        zkc_inventory_state s = ZKC_INVENTORY_PENDING;
        int rc = zkc_inventory_lookup(inv, id, &s);
        if (rc != 0 || !final_state(s)) {
            not_final++;
            continue;
        }
        processed++;
        if (s == ZKC_INVENTORY_OUT_OF_STOCK) {
            refused++;
            continue;
        }
        order o;
        gen_order(c, i, &o);
        for (int k = 0; k < o.n; k++)
            sold_expected[o.sku[k]] += o.qty[k];
    }
    int64_t oversold = 0, twice = 0, units_sold = 0, conserve_bad = 0;
    printf("\nunits sold per SKU (hot SKUs first):\n");
    int unlisted = 0;
    int64_t unlisted_sold = 0;
    for (int s = 0; s < c->skus; s++) {
        char name[32];
        sku_name(s, name, sizeof name);
        zkc_inventory_stock_info si;
        if (zkc_inventory_stock(inv, name, &si) != 0) {
            fprintf(stderr, "order-worker: stock %s: %s\n", name, zkc_errmsg());
            conserve_bad++;
            continue;
        }
        units_sold += si.sold;
        if (si.available < 0)
            oversold += -si.available;
        if (si.available + si.reserved + si.sold != si.total || si.total != c->stock)
            conserve_bad++;
        /* A unit sold that no SOLD order accounts for is an order processed twice. */
        if (si.sold > sold_expected[s])
            twice += si.sold - sold_expected[s];
        if (si.sold < sold_expected[s])
            conserve_bad++;
        if (s < c->hot || s < 8) {
            printf("  %s%s sold %3" PRId64 " / %" PRId64 ", left %" PRId64 ", queue %d\n", name, s < c->hot ? "*" : " ",
                   si.sold, si.total, si.available, si.queue_length);
        } else {
            unlisted++;
            unlisted_sold += si.sold;
        }
    }
    /* The table is cut short to stay readable; say so, or a reader counts the
     * rows and wonders where the other SKUs went. */
    if (unlisted > 0)
        printf("  ... and %d more SKU%s (not listed: %" PRId64 " units sold); the summary checks all %d\n", unlisted,
               unlisted == 1 ? "" : "s", unlisted_sold, c->skus);
    int64_t lat[65536];
    int nlat = 0;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cat %s/worker-*.stats 2>/dev/null", dir);
    FILE *f = popen(cmd, "r");
    if (f) {
        int64_t a, b, d;
        int n;
        while (fscanf(f, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %d", &a, &b, &d, &n) == 4)
            for (int k = 0; k < n && fscanf(f, "%" SCNd64, &a) == 1; k++)
                if (nlat < 65536)
                    lat[nlat++] = a;
        pclose(f);
    }
    /* FIFO, as far as outcomes can show it: stock only goes down in this run
     * (no cancels, no restocks), so if a one-line order was refused before a
     * later one-line order for the same SKU and at least as many units was
     * even submitted, and that later one got its units, someone was served out
     * of turn. */
    int64_t fifo_bad = 0;
    {
        typedef struct ev { int order, ok; int64_t sub, ret; } ev;
        ev *evs = NULL;
        size_t nev = 0, cap = 0;
        snprintf(cmd, sizeof cmd, "cat %s/events-* 2>/dev/null", dir);
        FILE *ef = popen(cmd, "r");
        ev e;
        while (ef && fscanf(ef, "%d %d %" SCNd64 " %" SCNd64, &e.order, &e.ok, &e.sub, &e.ret) == 4) {
            if (nev == cap) {
                cap = cap ? cap * 2 : 1024;
                ev *n = realloc(evs, cap * sizeof *evs);
                if (!n)
                    break;
                evs = n;
            }
            evs[nev++] = e;
        }
        if (ef)
            pclose(ef);
        /* An order redone by the sweep after a crash reports the reservation it
         * already had: only each order's first decision tells when it was served. */
        for (size_t a = 0; a < nev; a++)
            for (size_t b = 0; b < nev; b++)
                if (a != b && evs[a].order == evs[b].order && evs[b].sub > evs[a].sub)
                    evs[b].order = -1;
        for (size_t a = 0; a < nev; a++) {
            if (evs[a].order < 0)
                continue;
            order oa;
            gen_order(c, evs[a].order, &oa);
            if (evs[a].ok || oa.n != 1)
                continue;
            for (size_t b = 0; b < nev; b++) {
                if (evs[b].order < 0)
                    continue;
                order ob;
                gen_order(c, evs[b].order, &ob);
                if (evs[b].ok && ob.n == 1 && ob.sku[0] == oa.sku[0] && ob.qty[0] >= oa.qty[0] &&
                    evs[b].sub > evs[a].ret) {
                    if (fifo_bad < 5)
                        fprintf(stderr, "FIFO: order %d (%" PRId64 " of sku %d) refused at %" PRId64
                                        ", order %d (%" PRId64 ") submitted at %" PRId64 " and served\n",
                                evs[a].order, oa.qty[0], oa.sku[0], evs[a].ret, evs[b].order, ob.qty[0], evs[b].sub);
                    fifo_bad++;
                }
            }
        }
        free(evs);
    }
    /* The reaper: reaps of different terms never overlap in time, and a later
     * reap never carries an older term's token. */
    int64_t reaps = 0, reaped = 0, terms = 0, reaper_bad = 0;
    int64_t records = 0, records_fenced = 0, records_bad = 0;
    {
        typedef struct rp { int64_t token, t0, t1, t2; int wrc; } rp;
        rp *v = NULL;
        size_t nv = 0, cap = 0;
        snprintf(cmd, sizeof cmd, "cat %s/reaper-* 2>/dev/null", dir);
        FILE *rf = popen(cmd, "r");
        rp e;
        int rc, wrc;
        int64_t ret;
        while (rf && fscanf(rf, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %d %" SCNd64 " %d %" SCNd64, &e.token, &e.t0,
                            &e.t1, &rc, &ret, &wrc, &e.t2) == 7) {
            e.wrc = wrc;
            records += wrc == 0;
            records_fenced += wrc == ZKC_EFENCED;
            if (nv == cap) {
                cap = cap ? cap * 2 : 256;
                rp *n = realloc(v, cap * sizeof *v);
                if (!n)
                    break;
                v = n;
            }
            v[nv++] = e;
            if (rc == 0)
                reaped += ret;
        }
        if (rf)
            pclose(rf);
        reaps = (int64_t)nv;
        for (size_t a = 0; a < nv; a++) {
            int first = 1;
            for (size_t b = 0; b < nv; b++) {
                if (v[b].token == v[a].token && b < a)
                    first = 0;
                if (v[b].token != v[a].token && v[b].t0 <= v[a].t1 && v[a].t0 <= v[b].t1)
                    reaper_bad++; /* two terms reaping at once (counted from both sides) */
                if (v[b].token < v[a].token && v[b].t0 > v[a].t1)
                    reaper_bad++; /* an older term after a newer one */
                /* An older term's record that began after a newer term's
                 * record had landed must have been refused: its term had
                 * ended before the newer one began. */
                if (v[b].token < v[a].token && v[a].wrc == 0 && v[b].wrc == 0 && v[b].t1 > v[a].t2)
                    records_bad++;
            }
            terms += first;
        }
        free(v);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "order-worker: could not remove %s\n", dir);
    qsort(lat, (size_t)nlat, sizeof lat[0], cmp64);
    double p50 = nlat ? (double)lat[nlat / 2] / 1000 : 0, p99 = nlat ? (double)lat[nlat * 99 / 100] / 1000 : 0;

    printf("\nsummary\n");
    printf("  orders processed        %d / %d\n", processed, c->orders);
    printf("  orders left unfinished  %d   (must be 0)\n", not_final);
    printf("  units sold              %" PRId64 "\n", units_sold);
    printf("  out-of-stock refusals   %d\n", refused);
    printf("  oversold units          %" PRId64 "   (must be 0)\n", oversold);
    printf("  orders processed twice  %" PRId64 "   (must be 0)\n", twice);
    printf("  conservation errors     %" PRId64 "   (must be 0: available+reserved+sold == total)\n", conserve_bad);
    printf("  FIFO violations         %" PRId64 "   (must be 0: refused, then a later equal or larger order served)\n", fifo_bad);
    printf("  worker crashes          %d (replaced; their orders finished by others)\n", crashes);
    printf("  reaper                  %" PRId64 " term(s), %" PRId64 " reap(s), %" PRId64 " reservation(s) returned\n",
           terms, reaps, reaped);
    printf("  reaper overlaps         %" PRId64 "   (must be 0: two leaders reaping at once, or an older term "
           "after a newer one)\n", reaper_bad);
    printf("  reap records            %" PRId64 " written under their term (guarded), %" PRId64
           " refused (ZKC_EFENCED), %" PRId64 " of an ended term accepted   (must be 0)\n",
           records, records_fenced, records_bad);
    printf("  throughput              %.1f orders/s over %.1f s\n", processed / (secs > 0 ? secs : 1), secs);
    printf("  reserve latency         p50 %.1f ms, p99 %.1f ms (%d samples)\n", p50, p99, nlat);
    int bad = not_final || oversold || twice || conserve_bad || fifo_bad || reaper_bad || records_bad;
    printf("\nresult: %s\n", bad ? "FAILED" : "ok");
    zkc_counter_destroy(done);
    zkc_inventory_destroy(inv);
    zkc_client_destroy(cl);
    free(pids);
    return bad ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: order-worker [--workers N] [--orders N] [--skus N] [--hot N] [--stock N]\n"
                    "                    [--crash-rate P] [--seed S] [--hosts H] [--root PATH] [--quiet]\n"
                    "                    [--metrics-file PATH] [--metrics-port N] [--metrics-linger-ms MS]\n"
                    "Metrics: worker i rewrites PATH-w<i>[.prom] every 2 s (atomically) and serves\n"
                    "GET /metrics on 127.0.0.1:N+i; after its work it keeps exporting for MS\n"
                    "(default 0) or until SIGUSR1.\n"
                    "ZKC_HOSTS is used when --hosts is not given.\n");
}

int main(int argc, char **argv)
{
    cfg c = {.workers = 4, .orders = 400, .skus = 20, .hot = 3, .crash_rate = 0.01, .seed = 42};
    c.hosts = getenv("ZKC_HOSTS");
    const char *root = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quiet")) {
            c.quiet = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "--workers"))
            c.workers = atoi(v);
        else if (!strcmp(a, "--orders"))
            c.orders = atoi(v);
        else if (!strcmp(a, "--skus"))
            c.skus = atoi(v);
        else if (!strcmp(a, "--hot"))
            c.hot = atoi(v);
        else if (!strcmp(a, "--stock"))
            c.stock = atoll(v);
        else if (!strcmp(a, "--crash-rate"))
            c.crash_rate = atof(v);
        else if (!strcmp(a, "--seed"))
            c.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--hosts"))
            c.hosts = v;
        else if (!strcmp(a, "--root"))
            root = v;
        else if (!strcmp(a, "--metrics-file"))
            c.metrics_file = v;
        else if (!strcmp(a, "--metrics-port"))
            c.metrics_port = atoi(v);
        else if (!strcmp(a, "--metrics-linger-ms"))
            c.metrics_linger_ms = atoi(v);
        else {
            usage();
            return 2;
        }
    }
    if (!c.hosts) {
        fprintf(stderr, "order-worker: no ensemble: give --hosts or set ZKC_HOSTS\n");
        return 2;
    }
    if (c.workers < 1 || c.orders < 1 || c.skus < 1 || c.skus > MAX_SKUS || c.hot < 0 || c.hot > c.skus) {
        fprintf(stderr, "order-worker: bad sizes (1 <= skus <= %d, 0 <= hot <= skus)\n", MAX_SKUS);
        return 2;
    }
    /* Workers inherit the orchestrator's arguments and root. */
    const char *env_root = getenv("ORDER_WORKER_ROOT");
    if (env_root)
        snprintf(c.root, sizeof c.root, "%s", env_root);
    else if (root)
        snprintf(c.root, sizeof c.root, "%s", root);
    else
        snprintf(c.root, sizeof c.root, "/shop/run-%ld-%d", (long)time(NULL), (int)getpid());
    setenv("ORDER_WORKER_ROOT", c.root, 1);
    const char *mode = getenv("ORDER_WORKER_MODE");
    if (mode && !strcmp(mode, "worker"))
        return worker_main(&c, atoi(getenv("ORDER_WORKER_INDEX") ? getenv("ORDER_WORKER_INDEX") : "0"));
    signal(SIGPIPE, SIG_IGN);
    return run(&c, argv);
}
