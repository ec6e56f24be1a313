/* zkcoord-bench's driver: options, the scenario table, and the run of each
 * scenario (fsync probe, rounds, report). bench.h says where the rest is. */
#include "bench.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ensemble.h"

bench_opts opt = {.rounds = 5, .seconds = 3.0};

/* The last number is issue 19's target against the best peer (--peers). */
static const scenario scenarios[] = {
    {"lock_uncontended", sc_lock_uncontended, 0.95, "one client: acquire + release, repeated", 1.3},
    {"lock_contended", sc_lock_contended, 0.90, "8 sessions on one lock: handoffs per second", 1.3},
    {"lock_many", sc_lock_many, 0.80, "1000 lock paths, 64 threads, one session: cycles per second", 0},
    {"election_handoffs", sc_election_handoffs, 0.85, "8 sessions taking terms of one election: terms per second", 0},
    {"lock_threads", sc_lock_threads, NAN, "1000 threads of one process on one lock: handoffs per second", 1.3},
    {"counter_uncontended", sc_counter_uncontended, 0.85, "one client: add, exactly-once", 0},
    {"counter_hot_sessions", sc_counter_hot_sessions, 1.0, "8 sessions adding to one counter", 2.0},
    {"counter_hot_threads", sc_counter_hot_threads, 20.0, "64 threads of one session adding to one counter", 0},
    {"reserve_fifo", sc_reserve_fifo, 10.0, "64 workers, 5000 orders of 1 unit on one SKU, FIFO", 0},
    {"reserve_sessions", sc_reserve_sessions, NAN, "8 sessions, one worker each, reserving 1 unit of one SKU", 5.0},
    {"ratelimit", sc_ratelimit, NAN, "demand above the limit R", 0},
    {"flash_sale", sc_flash_sale, NAN, "16 processes x 8 threads, 20000 orders of 1-3 lines, one hot SKU + 50 cold",
     5.0},
    {"idgen", sc_idgen, NAN, "64 threads of one session taking ids: zkc_idgen vs a counter add per id", 0},
};
#define NSCEN ((int)(sizeof scenarios / sizeof scenarios[0]))

static void usage(FILE *f)
{
    fprintf(f,
            "usage: zkcoord-bench [--scenario NAME]... [--rounds N] [--seconds S] [--quick]\n"
            "                     [--json FILE] [--png FILE] [--peers] [--verbose] [--list]\n"
            "  Runs each scenario as interleaved rounds (library, floor, library, floor, ...)\n"
            "  against ZKC_HOSTS, or a 3-node local ensemble with fsync on that it starts\n"
            "  (data under $ZKC_BENCH_DIR, default /var/tmp). Defaults: 5 rounds of 3 s.\n"
            "  --quick: tiny configuration (2 rounds of 0.4 s, few threads) to prove it works.\n"
            "  --json FILE: one JSON object per scenario (JSON lines).\n"
            "  --png FILE: ratio and throughput chart (python3 + matplotlib, bench/plot.py).\n"
            "  --side library|floor: run one side only (for profiling, e.g. under callgrind).\n"
            "  --peers: also run Apache Curator and kazoo on the workloads they have recipes for\n"
            "           (lock_uncontended, lock_contended, lock_threads, counter_hot_sessions,\n"
            "           reserve_sessions, flash_sale).\n"
            "  --scale-smoke: after the scenarios, --scale --smoke (N = 200 of each lock kind).\n"
            "  --scale [--help]: queues of 1,000 and 10,000 waiters instead (bench/scen_scale.c).\n"
            "  --lock-threads N: threads of lock_threads (default 1000, --quick 16).\n"
            "  --counter-queued: counter_hot_sessions in the counters' queued mode\n"
            "           (zkc_counter_options.queued) instead of compare-and-set.\n"
            "  --counter-auto: counter_hot_sessions with ZKC_COUNTER_QUEUED_AUTO: each\n"
            "           client switches into the queue by measured contention.\n"
            "  --flash-procs N, --flash-threads M, --flash-orders K: flash_sale's shape\n"
            "           (default 16 x 8, 20000 orders; --quick 2 x 4, 200 orders).\n");
}

static int g_scale_smoke;

static int wanted(const char *name)
{
    if (!opt.nonly)
        return 1;
    for (int i = 0; i < opt.nonly; i++)
        if (!strcmp(opt.only[i], name))
            return 1;
    return 0;
}

static int known_scenario(const char *name)
{
    for (int k = 0; k < NSCEN; k++)
        if (!strcmp(name, scenarios[k].name))
            return 1;
    return 0;
}

/* Fills opt. Returns -1 to go on, or the exit status (--list, --help, errors). */
static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--scenario") && v) {
            if (opt.nonly < 32)
                opt.only[opt.nonly++] = v;
            i++;
        } else if (!strcmp(a, "--rounds") && v) {
            opt.rounds = atoi(v);
            opt.rounds_set = 1;
            i++;
        } else if (!strcmp(a, "--seconds") && v) {
            opt.seconds = atof(v);
            opt.seconds_set = 1;
            i++;
        } else if (!strcmp(a, "--json") && v) {
            opt.json = v;
            i++;
        } else if (!strcmp(a, "--png") && v) {
            opt.png = v;
            i++;
        } else if (!strcmp(a, "--side") && v) {
            opt.side = !strcmp(v, "library") ? 1 : !strcmp(v, "floor") ? 2 : -1;
            if (opt.side < 0) {
                fprintf(stderr, "zkcoord-bench: --side library|floor\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--counter-queued")) {
            opt.counter_queued = ZKC_COUNTER_QUEUED_ALWAYS;
        } else if (!strcmp(a, "--counter-auto")) {
            opt.counter_queued = ZKC_COUNTER_QUEUED_AUTO;
        } else if (!strcmp(a, "--lock-threads") && v) {
            opt.lock_threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--flash-procs") && v) {
            opt.flash_procs = atoi(v);
            i++;
        } else if (!strcmp(a, "--flash-threads") && v) {
            opt.flash_threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--flash-orders") && v) {
            opt.flash_orders = atoi(v);
            i++;
        } else if (!strcmp(a, "--peers")) {
            opt.peers = 1;
        } else if (!strcmp(a, "--quick")) {
            opt.quick = 1;
        } else if (!strcmp(a, "--scale-smoke")) {
            g_scale_smoke = 1; /* after the scenarios: --scale --smoke on the same ensemble */
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            opt.verbose++;
        } else if (!strcmp(a, "--list")) {
            for (int k = 0; k < NSCEN; k++)
                printf("%-21s %s\n", scenarios[k].name, scenarios[k].desc);
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "zkcoord-bench: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (opt.quick) {
        if (!opt.rounds_set)
            opt.rounds = 2;
        if (!opt.seconds_set)
            opt.seconds = 0.4;
    }
    if (opt.rounds < 1 || opt.rounds > MAXR || !(opt.seconds > 0)) {
        fprintf(stderr, "zkcoord-bench: --rounds must be 1..%d and --seconds > 0\n", MAXR);
        return 2;
    }
    for (int i = 0; i < opt.nonly; i++)
        if (!known_scenario(opt.only[i])) {
            fprintf(stderr, "zkcoord-bench: unknown scenario '%s' (--list shows them)\n", opt.only[i]);
            return 2;
        }
    return -1;
}

/* The root node of this run, on the ensemble. */
static int make_root(void)
{
    snprintf(g_root, sizeof g_root, "/zkcbench-%d-%04x", (int)getpid(), (unsigned)(now_ms()) & 0xffff);
    snprintf(g_meta, sizeof g_meta, "%s/meta", g_root);
    char err[300];
    raw_conn *rc = raw_open(err, sizeof err);
    if (!rc || raw_mkpath(rc->zh, g_root)) {
        fprintf(stderr, "zkcoord-bench: %s\n", rc ? "cannot create the root node" : err);
        raw_close(rc);
        return -1;
    }
    raw_close(rc);
    return 0;
}

static void run_scenario(const scenario *sc)
{
    report rep;
    memset(&rep, 0, sizeof rep);
    rep.name = sc->name;
    rep.target = sc->target;
    snprintf(rep.status, sizeof rep.status, "ok");
    loadavg(rep.load);
    measure_fsync(&rep.fs, opt.quick ? 10 : 50);
    measure_limit(&rep.lim, opt.quick ? 10 : 50, opt.quick ? 0.2 : 1.0);
    char fst[512];
    fsync_text(fst, sizeof fst, &rep.fs);
    printf("== %s: %s\n   fsync: %s; load %.2f\n   limit: serial setData %.2f ms, group commit %.0f writes/s\n",
           sc->name, sc->desc, fst, rep.load[0], rep.lim.serial_p50_ms, rep.lim.group_writes_per_s);
    fflush(stdout);
    sc->run(&rep);
    if (g_interrupted && !strcmp(rep.status, "ok"))
        rep_fail(&rep, "interrupted");
    if (!strcmp(rep.status, "error"))
        g_any_error = 1;
    printf("%s", table_header());
    emit(&rep, sc);
    printf("\n");
    side *sides[3] = {&rep.lib, &rep.fl, &rep.fl2};
    for (int s = 0; s < 3; s++)
        lat_free(&sides[s]->lat);
    sb_free(&rep.params);
    sb_free(&rep.extra);
    sb_free(&rep.notes);
    sb_free(&rep.reason);
    peers_free(rep.peers);
}

static void summary(const double load0[3], long ncpu)
{
    double load1[3];
    loadavg(load1);
    fsync_info fend;
    mntr_fsync(&fend);
    printf("==== summary (commit %s, load at start %.2f, at end %.2f, %ld CPUs)\n%s", g_commit, load0[0], load1[0],
           ncpu, sb_str(&g_table));
    printf("server fsync (mntr, cumulative):");
    for (int i = 0; i < fend.nservers; i++)
        printf(" %s avg %.2f ms max %.0f ms (%ld);", fend.state[i], fend.avg[i], fend.max[i], fend.cnt[i]);
    printf("\n");
    if (load1[0] > (double)ncpu || load0[0] > (double)ncpu)
        printf("NOTE: the machine was loaded (load average above the CPU count): absolute numbers are noise.\n");
}

/* The chart, by bench/plot.py over the JSON lines. */
static void draw_chart(const char *json)
{
    const char *plot = getenv("ZKC_BENCH_PLOT");
    char def[PATH_MAX];
    snprintf(def, sizeof def, "%s/bench/plot.py", ZKC_BENCH_SRCDIR);
    if (!plot || !*plot)
        plot = def;
    /* Debian's python3-matplotlib lives in /usr/bin/python3's path, which
     * a python3 earlier in PATH (pyenv, venv) may not see. */
    const char *py = getenv("ZKC_BENCH_PYTHON");
    if (!py || !*py)
        py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char cmd[3 * PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", py, plot, json, opt.png);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "zkcoord-bench: the chart was not drawn (%s exited %d; needs python3-matplotlib)\n", plot, rc);
    else
        printf("chart: %s\n", opt.png);
}

/* Leave nothing behind on an external ensemble; stop ours. */
static void teardown(void)
{
    if (!ensemble_is_ours()) {
        char err[300];
        raw_conn *rc = raw_open(err, sizeof err);
        if (rc) {
            raw_rmr(rc->zh, g_root);
            raw_close(rc);
        }
    }
    cleanup();
}

int main(int argc, char **argv)
{
    /* One malloc arena: mallinfo2 then counts every thread's allocations. */
    mallopt(M_ARENA_MAX, 1);
    if (argc > 1 && !strcmp(argv[1], "--flash-worker"))
        return flash_worker_main(argc - 1, argv + 1);
    /* --scale (bench/scen_scale.c): queue sizes of a flash sale, its own
     * options and report, on the same ensemble set-up. */
    int scale = argc > 1 && !strcmp(argv[1], "--scale");
    int rc = scale ? scale_parse(argc - 1, argv + 1) : parse_args(argc, argv);
    if (rc >= 0)
        return rc;
    char tmpjson[PATH_MAX] = "";
    if (opt.json) {
        g_json = fopen(opt.json, "w");
        if (!g_json) {
            fprintf(stderr, "zkcoord-bench: %s: %s\n", opt.json, strerror(errno));
            return 2;
        }
    } else if (opt.png) {
        snprintf(tmpjson, sizeof tmpjson, "/tmp/zkcoord-bench-%d.json", (int)getpid());
        g_json = fopen(tmpjson, "w");
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);

    double load0[3];
    get_commit();
    loadavg(load0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (start_ensemble() || make_root()) {
        cleanup();
        return zkh_ci() ? 1 : 77;
    }
    printf("zkcoord-bench: commit %s, %ld CPUs, load %.2f %.2f %.2f%s\n", g_commit, ncpu, load0[0], load0[1],
           load0[2], load0[0] > (double)ncpu ? "  (MACHINE LOADED: absolute numbers are noise; read the ratios)" : "");
    printf("ensemble: %s\n", g_ens_desc);
    if (scale) {
        rc = scale_run(1);
        teardown();
        return rc ? 1 : 0;
    }
    printf("rounds: %d x %.2f s per side, interleaved library/floor%s%s\n\n", opt.rounds, opt.seconds,
           opt.peers ? "/peers" : "",
           opt.quick ? " (--quick: tiny configuration, numbers mean nothing)" : "");
    fflush(stdout);

    sb_printf(&g_table, "%s", table_header());
    for (int k = 0; k < NSCEN && !g_interrupted; k++)
        if (wanted(scenarios[k].name))
            run_scenario(&scenarios[k]);
    if (g_scale_smoke && !g_interrupted) {
        /* make check's short form of --scale (objects "scenario": "scale") */
        char *sargv[] = {"--scale", "--smoke", NULL};
        if (scale_parse(2, sargv) >= 0 || scale_run(0))
            g_any_error = 1;
    }
    summary(load0, ncpu);
    if (g_json) {
        fclose(g_json);
        g_json = NULL;
    }
    teardown();
    if (opt.png)
        draw_chart(opt.json ? opt.json : tmpjson);
    if (tmpjson[0])
        unlink(tmpjson);
    sb_free(&g_table);
    return g_any_error ? 1 : 0;
}
