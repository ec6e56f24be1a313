/*
 * Peers (--peers): the same workload through Apache Curator and kazoo, the
 * libraries a shop would otherwise use, in the same rounds as zkcoord and the
 * raw floor, on the same ensemble.
 *
 * Each peer worker is a process of its own with one session, as a user of that
 * library would write a worker: bench/peers/CuratorPeer.java (java) and
 * bench/peers/kazoo_peer.py (/usr/bin/python3), started once per scenario and
 * kept across rounds so that JVM start-up and JIT warm-up stay out of the
 * timed runs. bench/peers/prepare.sh finds the runtimes (the ones the interop
 * tier uses) and compiles the Java side.
 *
 * A round writes "run SECONDS" to every worker of a peer at once; each answers
 * with one JSON line (ops before the deadline, all ops, latencies). Requests
 * per operation cannot be counted inside those libraries, so they are counted
 * by the servers (mntr zk_packets_received, summed over the ensemble, over
 * the peer's timed run), and the same server count is kept for zkcoord's side
 * so the two compare like for like. A peer that cannot run is reported as
 * such with the reason; no figure is ever made up for it.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXPROCS 64
#define READY_TIMEOUT_MS 180000.0  /* 8 JVMs starting on a loaded 2-CPU machine */

enum { CURATOR, KAZOO, NPEERS };
static const char *const peer_names[NPEERS] = {"curator", "kazoo"};

/* What prepare.sh found, once per run. */
static struct {
    int prepared;
    int ok[NPEERS];
    char arg[NPEERS][4096];   /* class path / python interpreter, or the reason */
    char version[NPEERS][32];
} g_rt;

typedef struct peer_lib {
    char status[16];          /* ok, unavailable, not_applicable, error */
    char why[700];
    const char *what;         /* the recipe calls of one operation */
    peer_proc p[MAXPROCS];
    int n;
    side s;                   /* ops[] per round, latencies, ops_all, fails */
    uint64_t retries;
    double pkts;              /* server-counted requests over the timed runs */
    double writes;            /* write transactions (zxids) over the timed runs */
    char path[300];           /* its node (lock parent, counter, reservation dir) */
    int exact;                /* counter/stock moved by exactly its operations: 1, 0, -1 not known */
    double refused, units;    /* flash: orders refused, hot units sold */
    double oversold;          /* flash: units sold beyond the hot stock, read back */
} peer_lib;

struct peer_set {
    const char *workload;
    char arg[64];             /* the workload's argument ("" for none) */
    int procs;
    peer_lib lib[NPEERS];
};

static void prepare(void)
{
    if (g_rt.prepared++)
        return;
    for (int k = 0; k < NPEERS; k++)
        snprintf(g_rt.arg[k], sizeof g_rt.arg[k], "bench/peers/prepare.sh said nothing about it");
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "bash '%s/bench/peers/prepare.sh' '%s/bench/peers' '%s/bench/peers' 2>&1",
             ZKC_BENCH_SRCDIR, ZKC_BENCH_SRCDIR, ZKC_BENCH_BUILDDIR);
    FILE *p = popen(cmd, "r");
    char line[4200];
    while (p && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        for (int k = 0; k < NPEERS; k++) {
            size_t nl = strlen(peer_names[k]);
            if (strncmp(line, peer_names[k], nl))
                continue;
            const char *rest = line + nl;
            if (!strncmp(rest, "-version ", 9))
                snprintf(g_rt.version[k], sizeof g_rt.version[k], "%s", rest + 9);
            else if (!strncmp(rest, " ok ", 4)) {
                g_rt.ok[k] = 1;
                snprintf(g_rt.arg[k], sizeof g_rt.arg[k], "%s", rest + 4);
            } else if (!strncmp(rest, " unavailable ", 13))
                snprintf(g_rt.arg[k], sizeof g_rt.arg[k], "%s", rest + 13);
        }
    }
    if (p)
        pclose(p);
    for (int k = 0; k < NPEERS; k++)
        printf("peers: %s %s: %s\n", peer_names[k], g_rt.ok[k] ? g_rt.version[k] : "UNAVAILABLE",
               g_rt.ok[k] ? (k == CURATOR ? "java" : g_rt.arg[k]) : g_rt.arg[k]);
    fflush(stdout);
}

/* The tail of a worker's stderr, for a reason. */
void proc_err_tail(const peer_proc *pp, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen(pp->errf, "r");
    if (!f)
        return;
    char line[256], last[2][256] = {"", ""};
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (*line) {
            memcpy(last[0], last[1], sizeof last[0]);
            memcpy(last[1], line, sizeof last[1]);
        }
    }
    fclose(f);
    snprintf(out, len, "%s%s%s", last[0], *last[0] ? " / " : "", last[1]);
}

int proc_spawn(peer_proc *pp, char *const argv[], int index)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC))
        return -1;
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    snprintf(pp->errf, sizeof pp->errf, "/tmp/zkcoord-bench-peer-%d-%p.err", (int)getpid(), (void *)pp);
    pid_t pid = fork();
    if (pid == 0) {
        int e = open(pp->errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (e >= 0)
            dup2(e, 2);
        char ix[16];
        snprintf(ix, sizeof ix, "%d", index);
        setenv("ZKC_PEER_INDEX", ix, 1);
        /* Not our ZooKeeper sockets nor other workers' pipes. */
        long maxfd = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < (maxfd > 0 && maxfd < 65536 ? maxfd : 65536); fd++)
            close(fd);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    pp->pid = pid;
    pp->in = in[1];
    pp->out = out[0];
    return 0;
}

/* The worker's next output line (NUL-terminated, in pp->buf), or NULL on
 * end of output or after timeout_ms. */
char *proc_read_line(peer_proc *pp, double timeout_ms)
{
    double end = now_ms() + timeout_ms;
    pp->len = 0;
    for (;;) {
        if (pp->cap - pp->len < 4096) {
            size_t nc = pp->cap ? pp->cap * 2 : 65536;
            char *nb = realloc(pp->buf, nc);
            if (!nb)
                return NULL;
            pp->buf = nb;
            pp->cap = nc;
        }
        double left = end - now_ms();
        if (left <= 0 || g_interrupted)
            return NULL;
        struct pollfd pf = {pp->out, POLLIN, 0};
        int r = poll(&pf, 1, (int)fmin(left, 1000.0));
        if (r < 0 && errno != EINTR)
            return NULL;
        if (r <= 0)
            continue;
        ssize_t n = read(pp->out, pp->buf + pp->len, pp->cap - pp->len - 1);
        if (n <= 0)
            return NULL;
        pp->len += (size_t)n;
        pp->buf[pp->len] = 0;
        char *nl = strchr(pp->buf, '\n');
        if (nl) {
            *nl = 0;
            return pp->buf;
        }
    }
}

/* Ask it to quit (end of input), then kill it if it has not within 10 s. */
void proc_stop(peer_proc *pp)
{
    if (pp->pid > 0) {
        if (write(pp->in, "quit\n", 5) < 0) {
            /* gone already */
        }
        close(pp->in);
        double end = now_ms() + 10000;
        while (waitpid(pp->pid, NULL, WNOHANG) == 0) {
            if (now_ms() > end) {
                kill(pp->pid, SIGKILL);
                waitpid(pp->pid, NULL, 0);
                break;
            }
            sleep_ms(20);
        }
        close(pp->out);
        pp->pid = 0;
    }
    free(pp->buf);
    pp->buf = NULL;
    unlink(pp->errf);
}

static void lib_stop(peer_lib *pl)
{
    for (int i = 0; i < pl->n; i++)
        proc_stop(&pl->p[i]);
    pl->n = 0;
}

/* The peer failed: say why (its own words first), stop its workers. */
static void lib_fail(peer_lib *pl, peer_proc *pp, const char *line, const char *what)
{
    char tail[520] = "";
    if (pp)
        proc_err_tail(pp, tail, sizeof tail);
    snprintf(pl->status, sizeof pl->status, "error");
    snprintf(pl->why, sizeof pl->why, "%s%s%s%s%s", what, line && *line ? ": " : "", line ? line : "",
             *tail ? "; stderr: " : "", tail);
    lib_stop(pl);
}

static void lib_start(peer_lib *pl, int k, const char *workload, int procs, const char *path, const char *arg)
{
    char *sub = pl->path;
    snprintf(pl->path, sizeof pl->path, "%s/%s", path, peer_names[k]);
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/bench/peers/kazoo_peer.py", ZKC_BENCH_SRCDIR);
    char *jargv[20];
    int a = 0;
    jargv[a++] = (char *)"java";
    /* --quick: C1 only, for start-up; a full run keeps the JVM's default JIT. */
    if (opt.quick)
        jargv[a++] = (char *)"-XX:TieredStopAtLevel=1";
    jargv[a++] = (char *)"-Xms32m";
    jargv[a++] = (char *)"-Xmx160m";
    jargv[a++] = (char *)"-XX:+UseSerialGC";
    jargv[a++] = (char *)"-XX:-UsePerfData";
    jargv[a++] = (char *)"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn";
    jargv[a++] = (char *)"-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper=error";
    jargv[a++] = (char *)"-cp";
    jargv[a++] = g_rt.arg[CURATOR];
    jargv[a++] = (char *)"CuratorPeer";
    jargv[a++] = (char *)workload;
    jargv[a++] = (char *)g_hosts;
    jargv[a++] = sub;
    jargv[a++] = (char *)arg;
    jargv[a] = NULL;
    char *pargv[] = {g_rt.arg[KAZOO], script, (char *)workload, (char *)g_hosts, sub, (char *)arg, NULL};
    for (int i = 0; i < procs; i++) {
        if (proc_spawn(&pl->p[i], k == CURATOR ? jargv : pargv, i)) {
            lib_fail(pl, NULL, strerror(errno), "cannot start a worker process");
            return;
        }
        pl->n++;
    }
    for (int i = 0; i < procs; i++) {
        char *line = proc_read_line(&pl->p[i], READY_TIMEOUT_MS);
        if (!line || strcmp(line, "ready")) {
            lib_fail(pl, &pl->p[i], line, line ? "worker failed to start" : "worker did not say ready");
            return;
        }
    }
    snprintf(pl->status, sizeof pl->status, "ok");
}

peer_set *peers_start(const char *workload, int procs, const char *path, const char *arg, const char *curator_what,
                      const char *kazoo_what)
{
    const char *what[NPEERS] = {curator_what, kazoo_what};
    prepare();
    peer_set *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->procs = procs;
    ps->workload = workload;
    snprintf(ps->arg, sizeof ps->arg, "%s", arg ? arg : "");
    for (int k = 0; k < NPEERS; k++) {
        peer_lib *pl = &ps->lib[k];
        pl->what = what[k];
        if (!what[k]) {
            snprintf(pl->status, sizeof pl->status, "not_applicable");
            snprintf(pl->why, sizeof pl->why, "%s is not run on this workload (bench/README.md, Peers)",
                     peer_names[k]);
        } else if (!g_rt.ok[k]) {
            snprintf(pl->status, sizeof pl->status, "unavailable");
            snprintf(pl->why, sizeof pl->why, "%s", g_rt.arg[k]);
        } else {
            lib_start(pl, k, workload, procs, path, arg);
        }
    }
    return ps;
}

/* "key": number in a worker's JSON line, or NAN. */
double jnum(const char *line, const char *key)
{
    char k[40];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(line, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

/* The numbers of the array "key": [...] of a worker's JSON line. */
void jlats(const char *line, const char *key, lat_t *out)
{
    char k[40];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(line, k);
    if (!p || !(p = strchr(p, '[')))
        return;
    for (p++;;) {
        while (*p == ' ' || *p == ',')
            p++;
        char *end;
        double x = strtod(p, &end);
        if (end == p)
            break;
        lat_push(out, x);
        p = end;
    }
}

static void lib_round(peer_lib *pl, double seconds)
{
    char cmd[64];
    int n = snprintf(cmd, sizeof cmd, "run %.3f\n", seconds);
    double p0 = server_packets(), z0 = server_zxid();
    for (int i = 0; i < pl->n; i++)
        if (write(pl->p[i].in, cmd, (size_t)n) != n) {
            lib_fail(pl, &pl->p[i], strerror(errno), "cannot write to a worker");
            return;
        }
    double ops = 0, elapsed = 0;
    for (int i = 0; i < pl->n; i++) {
        char *line = proc_read_line(&pl->p[i], seconds * 1000.0 + LOCK_TIMEOUT_MS + 60000.0);
        if (!line || !isfinite(jnum(line, "ops"))) {
            lib_fail(pl, &pl->p[i], line, line ? "worker failed" : "worker did not answer");
            return;
        }
        ops += jnum(line, "ops");
        pl->s.ops_all += (uint64_t)jnum(line, "ops_all");
        pl->s.fails += (uint64_t)jnum(line, "fails");
        double r = jnum(line, "retries");
        pl->retries += isfinite(r) ? (uint64_t)r : 0;
        /* A worker whose work ran out before the deadline says when. */
        double e = jnum(line, "elapsed_s");
        elapsed = fmax(elapsed, isfinite(e) ? e : seconds);
        double f = jnum(line, "refused"), u = jnum(line, "units");
        pl->refused += isfinite(f) ? f : 0;
        pl->units += isfinite(u) ? u : 0;
        jlats(line, "lat_ms", &pl->s.lat);
    }
    double p1 = server_packets();
    pl->pkts += p1 - p0;  /* NAN from then on if the servers would not say */
    pl->writes += server_zxid() - z0;
    if (pl->s.n < MAXR && elapsed > 0)
        pl->s.ops[pl->s.n++] = ops / elapsed;
    if (opt.verbose)
        fprintf(stderr, "  peer %s round %d: %.0f ops in %.2f s = %.1f ops/s\n", pl->what, pl->s.n, ops, seconds,
                ops / seconds);
}

void peers_round(peer_set *ps, double seconds)
{
    if (!ps)
        return;
    for (int k = 0; k < NPEERS && !g_interrupted; k++)
        if (!strcmp(ps->lib[k].status, "ok"))
            lib_round(&ps->lib[k], seconds);
}

double peers_best(peer_set *ps, const char **who)
{
    double best = NAN;
    *who = NULL;
    for (int k = 0; ps && k < NPEERS; k++) {
        double m = side_median(&ps->lib[k].s);
        if (!strcmp(ps->lib[k].status, "ok") && isfinite(m) && (!isfinite(best) || m > best)) {
            best = m;
            *who = peer_names[k];
        }
    }
    return best;
}

/* The value a counter or stock node holds: Curator's DistributedAtomicLong
 * writes 8 bytes big-endian, kazoo's Counter and our reservation stock decimal
 * text. NAN when it cannot be read. */
static double node_value(const char *path, int binary)
{
    char err[300], buf[64];
    raw_conn *rc = raw_open(err, sizeof err);
    if (!rc)
        return NAN;
    int len = sizeof buf - 1;
    int z = zoo_get(rc->zh, path, 0, buf, &len, NULL);
    raw_close(rc);
    if (z != ZOK || len < 0)
        return NAN;
    buf[len] = 0;
    return binary ? (double)unbe64(buf, len) : strtod(buf, NULL);
}

/* Flash: every sale's hot counter (DistributedAtomicLong, PATH/rN/stock/hot)
 * moved by exactly the hot units its workers sold, and never below zero
 * (pl->oversold counts the units below). */
static int flash_exact(peer_set *ps, int k)
{
    peer_lib *pl = &ps->lib[k];
    long long hot = -1;
    const char *p = strrchr(ps->arg, ':');
    if (p)
        hot = atoll(p + 1);
    double sold = 0;
    pl->oversold = 0;
    for (int r = 0; r < pl->s.n; r++) {
        char node[360];
        snprintf(node, sizeof node, "%s/r%d/stock/hot", pl->path, r);
        double v = node_value(node, 1);
        if (!isfinite(v) || hot < 0)
            return -1;
        sold += (double)hot - v;
        if (v < 0)
            pl->oversold += -v;
    }
    return sold == pl->units && pl->oversold == 0;
}

/* Whether the peer's counter (or stock) moved by exactly the operations its
 * workers completed, warm-ups included; -1 when there is nothing to check. */
static int lib_exact(peer_set *ps, int k)
{
    const peer_lib *pl = &ps->lib[k];
    double done = (double)pl->s.ops_all + ps->procs, v = NAN;
    char node[320];
    if (!strcmp(ps->workload, "counter")) {
        v = node_value(pl->path, k == CURATOR);
    } else if (!strcmp(ps->workload, "flash")) {
        return flash_exact(ps, k);
    } else if (!strcmp(ps->workload, "reserve")) {
        snprintf(node, sizeof node, "%s/stock", pl->path);
        v = 1e12 - node_value(node, 0); /* CuratorPeer.java's initial stock */
    } else {
        return -1;
    }
    return isfinite(v) ? v == done : -1;
}

void peers_json(sb *j, peer_set *ps, double lib_ops, double target)
{
    if (!ps)
        return;
    for (int k = 0; k < NPEERS; k++)
        ps->lib[k].exact = !strcmp(ps->lib[k].status, "ok") ? lib_exact(ps, k) : -1;
    sb all = {0};
    for (int k = 0; k < NPEERS; k++) {
        peer_lib *pl = &ps->lib[k];
        sb o = {0};
        kv_str(&o, "status", pl->status);
        if (pl->what)
            kv_str(&o, "what", pl->what);
        kv_num(&o, "processes", ps->procs);
        if (*g_rt.version[k])
            kv_str(&o, "version", g_rt.version[k]);
        if (!strcmp(pl->status, "ok")) {
            kv_num(&o, "ops_per_s", side_median(&pl->s));
            kv_num(&o, "p50_ms", lat_pct(&pl->s.lat, 50));
            kv_num(&o, "p99_ms", lat_pct(&pl->s.lat, 99));
            sb r = {0};
            sb_jnums(&r, pl->s.ops, pl->s.n);
            kv_raw(&o, "rounds", sb_str(&r));
            sb_free(&r);
            kv_num(&o, "server_requests_per_op", side_per_op(&pl->s, pl->pkts));
            kv_num(&o, "server_writes_per_op", side_per_op(&pl->s, pl->writes));
            kv_num(&o, "retries_per_op", side_per_op(&pl->s, (double)pl->retries));
            kv_num(&o, "failed_ops", (double)pl->s.fails);
            if (pl->exact >= 0)
                kv_raw(&o, "exact", pl->exact ? "true" : "false");
            if (!strcmp(ps->workload, "flash")) {
                kv_num(&o, "out_of_stock_refusals", pl->refused);
                kv_num(&o, "hot_units_sold", pl->units);
                kv_num(&o, "oversold_units", pl->oversold);
            }
        } else {
            kv_str(&o, "reason", pl->why);
        }
        kv_obj(&all, peer_names[k], &o);
        sb_free(&o);
    }
    kv_obj(j, "peers", &all);
    sb_free(&all);
    const char *who;
    double best = peers_best(ps, &who);
    kv_str(j, "best_peer", who ? who : "");
    double ratio = isfinite(best) && best > 0 ? lib_ops / best : NAN;
    kv_num(j, "ratio_to_best_peer", ratio);
    if (target > 0) {
        kv_num(j, "peer_target", target);
        kv_raw(j, "peer_target_met", !isfinite(ratio) ? "null" : ratio >= target ? "true" : "false");
    }
}

void peers_text(peer_set *ps, double lib_ops, double target)
{
    if (!ps)
        return;
    printf("    peers (%d process%s, one session each):", ps->procs, ps->procs > 1 ? "es" : "");
    for (int k = 0; k < NPEERS; k++) {
        peer_lib *pl = &ps->lib[k];
        if (!strcmp(pl->status, "ok"))
            printf(" %s %s %.1f ops/s, p50 %.2f p99 %.2f ms, %.2f server-counted requests/op, %.2f writes/op%s;",
                   peer_names[k], pl->what, side_median(&pl->s), lat_pct(&pl->s.lat, 50), lat_pct(&pl->s.lat, 99),
                   side_per_op(&pl->s, pl->pkts), side_per_op(&pl->s, pl->writes),
                   pl->exact == 0 ? ", NOT EXACT" : "");
        else
            printf(" %s %s (%s);", peer_names[k], !strcmp(pl->status, "not_applicable") ? "n/a" : "DID NOT RUN",
                   pl->why);
    }
    const char *who;
    double best = peers_best(ps, &who);
    double ratio = best > 0 ? lib_ops / best : NAN;
    if (who && target > 0)
        printf(" zkcoord / best peer (%s) = %.2f, target >= %.2g: %s\n", who, ratio, target,
               ratio >= target ? "met" : "MISSED");
    else if (who)
        printf(" zkcoord / best peer (%s) = %.2f\n", who, ratio);
    else
        printf(" no peer ran: no ratio\n");
}

void peers_free(peer_set *ps)
{
    if (!ps)
        return;
    for (int k = 0; k < NPEERS; k++) {
        lib_stop(&ps->lib[k]);
        lat_free(&ps->lib[k].s.lat);
    }
    free(ps);
}
