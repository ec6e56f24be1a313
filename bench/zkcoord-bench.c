/*
 * zkcoord-bench: every recipe measured against the raw ZooKeeper floor in the
 * same run, on the same ensemble, with the same C client (issue 10).
 *
 * The library side uses only the public API (zkcoord.h). The floors are plain
 * libzookeeper_mt sync calls doing the minimum ZooKeeper work of the scenario,
 * in the same process layout (same number of sessions and threads). Library
 * and floor alternate in rounds (A B A B ...), so drift on a shared machine
 * hits both; the result is the ratio of the medians and its range over rounds.
 *
 * Request counts come from zkc_client_stats (library) and from counting our
 * own calls (floors): a regression in round trips shows even when timings are
 * noise. Memory is malloc'd bytes in use (mallinfo2, with one malloc arena so
 * that every thread's allocations are counted) over N objects.
 *
 * See bench/README.md for how to run it and how to read the output.
 */
#include "zkcoord.h"
#include "ensemble.h"

#include <zookeeper/zookeeper.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#ifndef ZKC_BENCH_SRCDIR
#define ZKC_BENCH_SRCDIR "."
#endif

/* The reservation API may not be implemented in the library this program is
 * linked with yet (lib/reserve.c is being written). Weak references let the
 * program link either way; reserve_fifo then skips with a message, and starts
 * measuring as soon as the symbols exist. */
#pragma weak zkc_inventory_create
#pragma weak zkc_inventory_destroy
#pragma weak zkc_inventory_restock
#pragma weak zkc_inventory_stock
#pragma weak zkc_inventory_reserve

#define MAXR 64            /* rounds */
#define OP_OK 0
#define OP_FAIL 1          /* counted failure (e.g. ZKC_ECONTENDED), keep going */
#define OP_DONE 2          /* no more work for this worker */
#define LOCK_TIMEOUT_MS 60000

/* ================================================================ options */

static struct {
    int rounds;
    double seconds;
    int quick;
    const char *json;
    const char *png;
    const char *only[32];
    int nonly;
    int verbose;
    int rounds_set, seconds_set;
    int side;      /* 0 both, 1 library only, 2 floor only (profiling) */
} opt = {5, 3.0, 0, NULL, NULL, {0}, 0, 0, 0, 0, 0};

static const char *g_hosts;
static char g_root[96];        /* every node of this run lives under it */
static char g_meta[128];       /* meta_root of the library clients */
static zkh_ensemble *g_ens;
static char g_base[PATH_MAX];  /* our ensemble's data directory (removed at exit) */
static char g_ens_desc[PATH_MAX + 128];
static char g_commit[96];
static double g_load0[3];
static volatile sig_atomic_t g_interrupted;

static int g_stop;              /* atomic */
static int g_finished;          /* atomic */
static double g_t0, g_deadline; /* ms, monotonic */
static pthread_barrier_t g_bar;

/* ================================================================ small utilities */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    while (nanosleep(&ts, &ts) && errno == EINTR && !g_interrupted)
        ;
}

static void loadavg(double out[3])
{
    out[0] = out[1] = out[2] = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3)
            out[0] = out[1] = out[2] = NAN;
        fclose(f);
    }
}

/* malloc'd bytes in use (one arena: see main). */
static long long mem_inuse(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Our ensemble's server processes (found by their data directory). */
static int g_srv_pid[16];
static int g_nsrv;

static void find_servers(void)
{
    g_nsrv = 0;
    if (!g_base[0])
        return;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && g_nsrv < 16) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char p[64], buf[8192];
        snprintf(p, sizeof p, "/proc/%ld/cmdline", pid);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n] = 0;
        if (strstr(buf, "java") && strstr(buf, g_base))
            g_srv_pid[g_nsrv++] = (int)pid;
    }
    closedir(d);
}

/* CPU ms used so far by the ensemble's servers, or NAN. */
static double server_cpu_ms(void)
{
    if (!g_nsrv)
        return NAN;
    double total = 0;
    long hz = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < g_nsrv; i++) {
        char p[64], buf[2048];
        snprintf(p, sizeof p, "/proc/%d/stat", g_srv_pid[i]);
        FILE *f = fopen(p, "r");
        if (!f)
            return NAN;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *q = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            return NAN;
        total += (double)(ut + st) * 1000.0 / (double)hz;
    }
    return total;
}

/* Context switches of all our threads so far (voluntary + involuntary). */
static double ctx_switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_nvcsw + (double)ru.ru_nivcsw;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}

/* ---- latency samples ---- */

typedef struct lat_t {
    double *v;
    size_t n, cap;
} lat_t;

static void lat_push(lat_t *l, double x)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        double *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
}

static void lat_append(lat_t *dst, const lat_t *src)
{
    for (size_t i = 0; i < src->n; i++)
        lat_push(dst, src->v[i]);
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double lat_pct(lat_t *l, double p)
{
    if (!l->n)
        return NAN;
    qsort(l->v, l->n, sizeof *l->v, dcmp);
    size_t idx = (size_t)ceil(p / 100.0 * (double)l->n);
    if (idx < 1)
        idx = 1;
    if (idx > l->n)
        idx = l->n;
    return l->v[idx - 1];
}

static double lat_mean(const lat_t *l)
{
    double t = 0;
    for (size_t i = 0; i < l->n; i++)
        t += l->v[i];
    return l->n ? t / (double)l->n : NAN;
}

static void lat_free(lat_t *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

static double median(const double *v, int n)
{
    if (n <= 0)
        return NAN;
    double t[MAXR];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, dcmp);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ---- string builder / JSON ---- */

typedef struct sb {
    char *s;
    size_t n, cap;
} sb;

static void sb_vprintf(sb *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void sb_vprintf(sb *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int need = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (need < 0)
        return;
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t nc = (b->n + (size_t)need + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (!ns)
            return;
        b->s = ns;
        b->cap = nc;
    }
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    b->n += (size_t)need;
}

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

static const char *sb_str(const sb *b)
{
    return b->s ? b->s : "";
}

static void sb_free(sb *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

static void sb_jstr(sb *b, const char *s)
{
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sb_printf(b, "\\n");
        else if (*p < 0x20)
            sb_printf(b, "\\u%04x", *p);
        else
            sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

static void sb_jnum(sb *b, double x)
{
    if (!isfinite(x))
        sb_printf(b, "null");
    else if (fabs(x) >= 1e15 || x == floor(x))
        sb_printf(b, "%.0f", x);
    else
        sb_printf(b, "%.6g", x);
}

/* "key": number, */
static void kv_num(sb *b, const char *k, double x)
{
    sb_printf(b, "%s\"%s\": ", b->n ? ", " : "", k);
    sb_jnum(b, x);
}

static void kv_str(sb *b, const char *k, const char *s)
{
    sb_printf(b, "%s\"%s\": ", b->n ? ", " : "", k);
    sb_jstr(b, s);
}

static void kv_raw(sb *b, const char *k, const char *raw)
{
    sb_printf(b, "%s\"%s\": %s", b->n ? ", " : "", k, raw);
}

/* ================================================================ raw ZooKeeper */

typedef struct raw_conn {
    zhandle_t *zh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
} raw_conn;

static void raw_log(const char *msg)
{
    if (opt.verbose > 1)
        fprintf(stderr, "zookeeper: %s\n", msg);
}

static void raw_session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    raw_conn *rc = ctx;
    if (type != ZOO_SESSION_EVENT || !rc)
        return;
    pthread_mutex_lock(&rc->mu);
    rc->state = state;
    pthread_cond_broadcast(&rc->cv);
    pthread_mutex_unlock(&rc->mu);
}

static raw_conn *raw_open(char *err, size_t errlen)
{
    raw_conn *rc = calloc(1, sizeof *rc);
    if (!rc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&rc->mu, NULL);
    pthread_cond_init(&rc->cv, NULL);
    rc->zh = zookeeper_init2(g_hosts, raw_session_watcher, 10000, NULL, rc, 0, raw_log);
    if (!rc->zh) {
        snprintf(err, errlen, "zookeeper_init2(%s): %s", g_hosts, strerror(errno));
        free(rc);
        return NULL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&rc->mu);
    while (rc->state != ZOO_CONNECTED_STATE)
        if (pthread_cond_timedwait(&rc->cv, &rc->mu, &ts) == ETIMEDOUT)
            break;
    int ok = rc->state == ZOO_CONNECTED_STATE;
    pthread_mutex_unlock(&rc->mu);
    if (!ok) {
        snprintf(err, errlen, "raw session to %s not connected within 20 s", g_hosts);
        zookeeper_close(rc->zh);
        free(rc);
        return NULL;
    }
    return rc;
}

static void raw_close(raw_conn *rc)
{
    if (!rc)
        return;
    zookeeper_close(rc->zh);
    pthread_mutex_destroy(&rc->mu);
    pthread_cond_destroy(&rc->cv);
    free(rc);
}

/* Create every missing node of path (persistent, empty). */
static int raw_mkpath(zhandle_t *zh, const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char save = *p;
            *p = 0;
            int z = zoo_create(zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
            if (z != ZOK && z != ZNODEEXISTS)
                return z;
            *p = save;
            if (!save)
                break;
        }
    }
    return ZOK;
}

static int raw_create_data(zhandle_t *zh, const char *path, const char *data, int len)
{
    int z = zoo_create(zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    return z == ZNODEEXISTS ? ZOK : z;
}

static int raw_rmr(zhandle_t *zh, const char *path)
{
    struct String_vector sv = {0, NULL};
    int z = zoo_get_children(zh, path, 0, &sv);
    if (z == ZNONODE)
        return ZOK;
    if (z != ZOK)
        return z;
    for (int i = 0; i < sv.count; i++) {
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", sv.data[i]);
        raw_rmr(zh, child);
    }
    deallocate_String_vector(&sv);
    z = zoo_delete(zh, path, -1);
    return z == ZNONODE ? ZOK : z;
}

typedef struct bulk {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    int err;
} bulk;

static void bulk_done(int rc, const char *value, const void *data)
{
    (void)value;
    bulk *b = (bulk *)data;
    pthread_mutex_lock(&b->mu);
    if (rc != ZOK && rc != ZNODEEXISTS && !b->err)
        b->err = rc;
    b->pending--;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Create n persistent nodes, pipelined. */
static int raw_create_bulk(zhandle_t *zh, char **paths, int n)
{
    bulk b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&b.mu);
        b.pending++;
        pthread_mutex_unlock(&b.mu);
        int z = zoo_acreate(zh, paths[i], NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, bulk_done, &b);
        if (z != ZOK) {
            pthread_mutex_lock(&b.mu);
            b.pending--;
            if (!b.err)
                b.err = z;
            pthread_mutex_unlock(&b.mu);
            break;
        }
    }
    pthread_mutex_lock(&b.mu);
    while (b.pending > 0)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return b.err;
}

static void be64(char *out, int64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

static int64_t unbe64(const char *in, int len)
{
    if (len != 8)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)in[i];
    return (int64_t)v;
}

/* ---- four-letter words on every server of g_hosts ---- */

static int host_list(char hosts[][64], int cap)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", g_hosts);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = 0;
    int n = 0;
    char *save = NULL;
    for (char *h = strtok_r(buf, ",", &save); h && n < cap; h = strtok_r(NULL, ",", &save))
        snprintf(hosts[n++], 64, "%s", h);
    return n;
}

/* Sum of "Total watches:" over all servers, or -1. */
static long server_watches(void)
{
    char hosts[16][64];
    int n = host_list(hosts, 16);
    long total = 0;
    for (int i = 0; i < n; i++) {
        char out[4096];
        if (zkh_four_letter(hosts[i], "wchs", out, sizeof out, 3000) < 0)
            return -1;
        const char *p = strstr(out, "Total watches:");
        if (!p)
            return -1;
        total += strtol(p + 14, NULL, 10);
    }
    return total;
}

typedef struct fsync_info {
    double write_p50_ms, write_mean_ms;
    int writes;
    int nservers;
    char state[16][16];
    double avg[16], max[16];
    long cnt[16];
} fsync_info;

static void mntr_fsync(fsync_info *fi)
{
    char hosts[16][64];
    int n = host_list(hosts, 16);
    fi->nservers = 0;
    for (int i = 0; i < n; i++) {
        char out[16384];
        int k = fi->nservers;
        fi->avg[k] = fi->max[k] = NAN;
        fi->cnt[k] = -1;
        snprintf(fi->state[k], sizeof fi->state[k], "?");
        if (zkh_four_letter(hosts[i], "mntr", out, sizeof out, 3000) < 0)
            continue;
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char key[64], val[64];
            if (sscanf(line, "%63s %63s", key, val) != 2)
                continue;
            if (!strcmp(key, "zk_avg_fsynctime"))
                fi->avg[k] = atof(val);
            else if (!strcmp(key, "zk_max_fsynctime"))
                fi->max[k] = atof(val);
            else if (!strcmp(key, "zk_cnt_fsynctime"))
                fi->cnt[k] = atol(val);
            else if (!strcmp(key, "zk_server_state"))
                snprintf(fi->state[k], sizeof fi->state[k], "%.15s", val);
        }
        fi->nservers++;
    }
}

/* Persistent write latency as a client sees it: sequential create + delete of
 * a persistent node, one session (each is one transaction: leader fsync plus
 * a quorum of follower fsyncs). */
static void measure_fsync(fsync_info *fi, int n)
{
    memset(fi, 0, sizeof *fi);
    fi->write_p50_ms = fi->write_mean_ms = NAN;
    char err[256];
    raw_conn *rc = raw_open(err, sizeof err);
    if (rc) {
        char dir[160], p[200];
        snprintf(dir, sizeof dir, "%s/fsync", g_root);
        raw_mkpath(rc->zh, dir);
        lat_t l = {0};
        double sum = 0;
        for (int i = 0; i < n; i++) {
            snprintf(p, sizeof p, "%s/n%d", dir, i);
            double t0 = now_ms();
            if (zoo_create(rc->zh, p, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) != ZOK)
                break;
            double t1 = now_ms();
            if (zoo_delete(rc->zh, p, -1) != ZOK)
                break;
            double t2 = now_ms();
            lat_push(&l, t1 - t0);
            lat_push(&l, t2 - t1);
            sum += t2 - t0;
        }
        fi->writes = (int)l.n;
        if (l.n) {
            fi->write_mean_ms = sum / (double)l.n;
            fi->write_p50_ms = lat_pct(&l, 50);
        }
        lat_free(&l);
        raw_close(rc);
    }
    mntr_fsync(fi);
}

static void fsync_json(sb *b, const fsync_info *fi)
{
    sb o = {0};
    kv_str(&o, "method",
           "client-side: sequential create+delete of a persistent node, one raw session (each write = leader "
           "fsync + quorum); server-side: mntr zk_avg/max_fsynctime per server, cumulative since start");
    kv_num(&o, "write_p50_ms", fi->write_p50_ms);
    kv_num(&o, "write_mean_ms", fi->write_mean_ms);
    kv_num(&o, "writes", fi->writes);
    sb a = {0};
    sb_printf(&a, "[");
    for (int i = 0; i < fi->nservers; i++) {
        sb_printf(&a, "%s{\"state\": ", i ? ", " : "");
        sb_jstr(&a, fi->state[i]);
        sb_printf(&a, ", \"avg_ms\": ");
        sb_jnum(&a, fi->avg[i]);
        sb_printf(&a, ", \"max_ms\": ");
        sb_jnum(&a, fi->max[i]);
        sb_printf(&a, ", \"count\": %ld}", fi->cnt[i]);
    }
    sb_printf(&a, "]");
    kv_raw(&o, "mntr_fsynctime", sb_str(&a));
    sb_printf(b, "{%s}", sb_str(&o));
    sb_free(&a);
    sb_free(&o);
}

static void fsync_text(char *out, size_t len, const fsync_info *fi)
{
    int off = snprintf(out, len, "write p50 %.2f ms, mean %.2f ms (%d raw persistent writes)", fi->write_p50_ms,
                       fi->write_mean_ms, fi->writes);
    for (int i = 0; i < fi->nservers && off < (int)len; i++)
        off += snprintf(out + off, len - (size_t)off, "%s%s avg %.2f max %.0f ms", i ? ", " : "; mntr fsync: ",
                        fi->state[i], fi->avg[i], fi->max[i]);
}

/* ================================================================ library clients */

static zkc_client *lib_client(char *err, size_t errlen)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = g_hosts;
    o.meta_root = g_meta;
    o.session_timeout_ms = 10000;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    if (rc) {
        snprintf(err, errlen, "zkc_client_create: %s (%s)", zkc_strerror(rc), zkc_errmsg());
        return NULL;
    }
    return c;
}

static void stats_sum(zkc_client **cs, int n, zkc_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        zkc_stats s;
        zkc_client_stats(cs[i], &s);
        for (int k = 0; k < 16; k++)
            out->requests[k] += s.requests[k];
        out->requests_total += s.requests_total;
        out->retries += s.retries;
        out->conflicts += s.conflicts;
        out->sessions += s.sessions;
        out->lost += s.lost;
        out->suspended += s.suspended;
    }
}

static const char *req_names[10] = {"create", "delete", "exists", "get", "set",
                                    "children", "sync", "multi", "remove_watch", "other"};

/* ================================================================ workers */

typedef struct worker worker;
typedef int (*op_fn)(worker *w);
struct worker {
    int idx;
    void *sc;      /* scenario context */
    void *obj;     /* zkc_lock*, zkc_counter*, raw_conn*, ... */
    op_fn fn;
    pthread_t th;
    uint64_t ops, ops_all, fails;
    uint64_t req[16];
    uint64_t conflicts;
    lat_t lat;
    double finish;
    int fatal;
    char err[400];
    /* raw lock waiting */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fired;
    /* loop state */
    int32_t ver;
    int64_t val;
    int64_t seq;
    int cursor;
    char path[256];
    void **objs;
    int nobjs;
    /* ratelimit grant times (wall ms) */
    double *grants;
    size_t ngrants, capgrants;
};

static void worker_init(worker *w, int idx, op_fn fn, void *obj, void *sc)
{
    memset(w, 0, sizeof *w);
    w->idx = idx;
    w->fn = fn;
    w->obj = obj;
    w->sc = sc;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void worker_fini(worker *w)
{
    lat_free(&w->lat);
    free(w->grants);
    free(w->objs);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static int lib_err(worker *w, int rc, const char *what)
{
    snprintf(w->err, sizeof w->err, "%s: %s (%s)", what, zkc_strerror(rc), zkc_errmsg());
    return -1;
}

static int raw_err(worker *w, int z, const char *what)
{
    snprintf(w->err, sizeof w->err, "raw %s: %s", what, zerror(z));
    return -1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(&g_bar);
    while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
        double t0 = now_ms();
        int rc = w->fn(w);
        double t1 = now_ms();
        if (rc == OP_DONE)
            break;
        if (rc < 0) {
            w->fatal = rc;
            break;
        }
        if (rc == OP_FAIL) {
            w->fails++;
            continue;
        }
        w->ops_all++;
        if (t1 <= g_deadline) {
            w->ops++;
            lat_push(&w->lat, t1 - t0);
        }
    }
    w->finish = now_ms();
    __atomic_add_fetch(&g_finished, 1, __ATOMIC_ACQ_REL);
    return NULL;
}

/* One side of a scenario (library, floor, second floor), accumulated over rounds. */
typedef struct side {
    double ops[MAXR];
    int n;
    lat_t lat;
    uint64_t ops_all, fails, conflicts;
    uint64_t req[16];
    double cpu_ms;
    double srv_cpu_ms;
    double csw;
} side;

typedef struct report {
    const char *name;
    const char *floor_what;
    const char *floor2_what;
    double target;            /* NAN: none */
    char status[16];          /* ok, skipped, error */
    char message[600];
    side lib, fl, fl2;
    sb params, extra, notes;
    sb reason;
    fsync_info fs;
    double load[3];
    int floor_is_limit;       /* ratelimit: the "floor" is the configured limit */
    int threads;              /* worker threads of the library side */
    int starved;              /* sessions that got under 10% of the fair share */
    char starve_msg[200];
} report;

static void rep_fail(report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rep_fail(report *rep, const char *fmt, ...)
{
    if (strcmp(rep->status, "error") == 0)
        return;
    snprintf(rep->status, sizeof rep->status, "error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->message, sizeof rep->message, fmt, ap);
    va_end(ap);
}

static int rep_ok(const report *rep)
{
    return strcmp(rep->status, "ok") == 0 && !g_interrupted;
}

static void fatal_stuck(const char *what);

/* Run n workers for `seconds` (or until they all return OP_DONE), add the round
 * to sd. cs: the library clients whose stats to difference (NULL for floors). */
static int run_side(report *rep, side *sd, worker *ws, int n, double seconds, zkc_client **cs, int ncs)
{
    if (sd->n >= MAXR)
        return -1;
    /* --side: profile one side alone (callgrind); the other is skipped. */
    if ((opt.side == 1 && sd != &rep->lib) || (opt.side == 2 && sd == &rep->lib))
        return 0;
    zkc_stats s0, s1;
    if (ncs)
        stats_sum(cs, ncs, &s0);
    for (int i = 0; i < n; i++) {
        worker *w = &ws[i];
        w->ops = w->ops_all = w->fails = w->conflicts = 0;
        memset(w->req, 0, sizeof w->req);
        w->lat.n = 0;
        w->fatal = 0;
        w->err[0] = 0;
        w->ngrants = 0;
    }
    double c0 = cpu_ms(), sc0 = server_cpu_ms(), x0 = ctx_switches();
    __atomic_store_n(&g_stop, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_finished, 0, __ATOMIC_RELEASE);
    pthread_barrier_init(&g_bar, NULL, (unsigned)n + 1);
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            rep_fail(rep, "pthread_create failed");
            fatal_stuck("cannot start worker threads");
        }
        started++;
    }
    g_t0 = now_ms();
    g_deadline = g_t0 + seconds * 1000.0;
    pthread_barrier_wait(&g_bar);
    while (now_ms() < g_deadline && __atomic_load_n(&g_finished, __ATOMIC_ACQUIRE) < n && !g_interrupted)
        sleep_ms(fmin(5.0, g_deadline - now_ms()));
    int all_done_early = __atomic_load_n(&g_finished, __ATOMIC_ACQUIRE) == n;
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < started; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 120;
        if (pthread_timedjoin_np(ws[i].th, NULL, &ts) != 0)
            fatal_stuck("a worker did not finish its operation within 120 s of the end of the round");
    }
    pthread_barrier_destroy(&g_bar);
    double c1 = cpu_ms(), sc1 = server_cpu_ms(), x1 = ctx_switches();
    double elapsed = seconds * 1000.0;
    if (all_done_early) {
        double last = g_t0;
        for (int i = 0; i < n; i++)
            last = fmax(last, ws[i].finish);
        elapsed = fmax(1.0, last - g_t0);
    }
    uint64_t ops = 0, all = 0;
    for (int i = 0; i < n; i++) {
        worker *w = &ws[i];
        ops += w->ops;
        all += w->ops_all;
        sd->fails += w->fails;
        lat_append(&sd->lat, &w->lat);
        if (!ncs) {
            for (int k = 0; k < 16; k++)
                sd->req[k] += w->req[k];
            sd->conflicts += w->conflicts;
        }
        if (w->fatal && strcmp(rep->status, "error") != 0)
            rep_fail(rep, "worker %d: %s", i, w->err);
    }
    if (ncs) {
        stats_sum(cs, ncs, &s1);
        for (int k = 0; k < 16; k++)
            sd->req[k] += s1.requests[k] - s0.requests[k];
        sd->conflicts += s1.conflicts - s0.conflicts;
        if (s1.lost != s0.lost || s1.suspended != s0.suspended)
            sb_printf(&rep->notes, "round %d: %llu session loss(es), %llu suspension(s) during the library run. ",
                      sd->n + 1, (unsigned long long)(s1.lost - s0.lost),
                      (unsigned long long)(s1.suspended - s0.suspended));
    }
    sd->ops_all += all;
    sd->cpu_ms += c1 - c0;
    sd->srv_cpu_ms += sc1 - sc0;
    sd->csw += x1 - x0;
    sd->ops[sd->n++] = (double)ops / (elapsed / 1000.0);
    if (opt.verbose)
        fprintf(stderr, "  %s: %s round %d: %llu ops in %.2f s = %.1f ops/s\n", rep->name,
                sd == &rep->lib ? "library" : sd == &rep->fl ? "floor" : "floor2", sd->n,
                (unsigned long long)ops, elapsed / 1000.0, sd->ops[sd->n - 1]);
    return rep_ok(rep) ? 0 : -1;
}

/* ================================================================ operations */

/* ---- locks ---- */

static zkc_lock *next_lock(worker *w)
{
    if (w->nobjs) {
        zkc_lock *l = w->objs[w->cursor];
        w->cursor = (w->cursor + 1) % w->nobjs;
        return l;
    }
    return w->obj;
}

static int op_lock_cycle(worker *w)
{
    zkc_lock *l = next_lock(w);
    int rc = zkc_lock_acquire(l, LOCK_TIMEOUT_MS, NULL);
    if (rc)
        return lib_err(w, rc, "zkc_lock_acquire");
    rc = zkc_lock_release(l);
    if (rc)
        return lib_err(w, rc, "zkc_lock_release");
    return OP_OK;
}

static const char *raw_parent(worker *w)
{
    if (w->nobjs) {
        const char *p = w->objs[w->cursor];
        w->cursor = (w->cursor + 1) % w->nobjs;
        return p;
    }
    return w->path;
}

/* Floor of an uncontended lock cycle: create ephemeral-sequential, list, delete. */
static int op_raw_lock_cycle(worker *w)
{
    raw_conn *rc = w->obj;
    const char *parent = raw_parent(w);
    char prefix[300], node[400];
    snprintf(prefix, sizeof prefix, "%s/lock-", parent);
    int z = zoo_create(rc->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, node, sizeof node);
    w->req[ZKC_REQ_CREATE]++;
    if (z != ZOK)
        return raw_err(w, z, "create");
    struct String_vector sv = {0, NULL};
    z = zoo_get_children(rc->zh, parent, 0, &sv);
    w->req[ZKC_REQ_CHILDREN]++;
    if (z != ZOK)
        return raw_err(w, z, "getChildren");
    deallocate_String_vector(&sv);
    z = zoo_delete(rc->zh, node, -1);
    w->req[ZKC_REQ_DELETE]++;
    if (z != ZOK)
        return raw_err(w, z, "delete");
    return OP_OK;
}

static void raw_pred_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)type;
    (void)state;
    (void)path;
    worker *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->fired = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static long long seq_of(const char *name)
{
    size_t n = strlen(name);
    return n >= 10 ? atoll(name + n - 10) : -1;
}

/* Floor of a contended handoff: the predecessor-watch protocol. */
static int op_raw_lock_handoff(worker *w)
{
    raw_conn *rc = w->obj;
    char prefix[300], node[400];
    snprintf(prefix, sizeof prefix, "%s/lock-", w->path);
    int z = zoo_create(rc->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, node, sizeof node);
    w->req[ZKC_REQ_CREATE]++;
    if (z != ZOK)
        return raw_err(w, z, "create");
    long long mine = seq_of(node);
    for (;;) {
        struct String_vector sv = {0, NULL};
        z = zoo_get_children(rc->zh, w->path, 0, &sv);
        w->req[ZKC_REQ_CHILDREN]++;
        if (z != ZOK)
            return raw_err(w, z, "getChildren");
        long long best = -1;
        char pred[300] = "";
        for (int i = 0; i < sv.count; i++) {
            long long s = seq_of(sv.data[i]);
            if (s < mine && s > best) {
                best = s;
                snprintf(pred, sizeof pred, "%s/%s", w->path, sv.data[i]);
            }
        }
        deallocate_String_vector(&sv);
        if (best < 0)
            break; /* first: held */
        pthread_mutex_lock(&w->mu);
        w->fired = 0;
        pthread_mutex_unlock(&w->mu);
        char buf[64];
        int len = sizeof buf;
        z = zoo_wget(rc->zh, pred, raw_pred_watcher, w, buf, &len, NULL);
        w->req[ZKC_REQ_GET]++;
        if (z == ZNONODE)
            continue;
        if (z != ZOK)
            return raw_err(w, z, "get+watch predecessor");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += LOCK_TIMEOUT_MS / 1000;
        pthread_mutex_lock(&w->mu);
        int to = 0;
        while (!w->fired && !to)
            to = pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT;
        pthread_mutex_unlock(&w->mu);
        if (to) {
            snprintf(w->err, sizeof w->err, "raw handoff: predecessor watch did not fire in %d s",
                     LOCK_TIMEOUT_MS / 1000);
            return -1;
        }
    }
    z = zoo_delete(rc->zh, node, -1);
    w->req[ZKC_REQ_DELETE]++;
    if (z != ZOK)
        return raw_err(w, z, "delete");
    return OP_OK;
}

/* ---- counters ---- */

static int op_counter_add(worker *w)
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

/* Floor: versioned setData with a known version (one writer per node). */
static int op_raw_set(worker *w)
{
    raw_conn *rc = w->obj;
    char buf[8];
    be64(buf, w->val + 1);
    struct Stat st;
    int z = zoo_set2(rc->zh, w->path, buf, 8, w->ver, &st);
    w->req[ZKC_REQ_SET]++;
    if (z != ZOK)
        return raw_err(w, z, "setData");
    w->ver = st.version;
    w->val++;
    return OP_OK;
}

/* Floor 2: multi {setData(counter, version), create(new marker), delete(old marker)}. */
static int op_raw_multi(worker *w)
{
    raw_conn *rc = w->obj;
    char buf[8], newm[300], oldm[300], created[300];
    be64(buf, w->val + 1);
    snprintf(oldm, sizeof oldm, "%s-m/m%" PRId64, w->path, w->seq);
    snprintf(newm, sizeof newm, "%s-m/m%" PRId64, w->path, w->seq + 1);
    struct Stat st;
    zoo_op_t ops[3];
    zoo_op_result_t res[3];
    zoo_set_op_init(&ops[0], w->path, buf, 8, w->ver, &st);
    zoo_create_op_init(&ops[1], newm, "r", 1, &ZOO_OPEN_ACL_UNSAFE, 0, created, sizeof created);
    zoo_delete_op_init(&ops[2], oldm, -1);
    int z = zoo_multi(rc->zh, 3, ops, res);
    w->req[ZKC_REQ_MULTI]++;
    if (z != ZOK)
        return raw_err(w, z, "multi");
    w->ver = st.version;
    w->val++;
    w->seq++;
    return OP_OK;
}

/* Floor of hot sessions: get + versioned set, re-read on BadVersion. */
static int op_raw_get_set(worker *w)
{
    raw_conn *rc = w->obj;
    for (;;) {
        char buf[16];
        int len = sizeof buf;
        struct Stat st;
        int z = zoo_get(rc->zh, w->path, 0, buf, &len, &st);
        w->req[ZKC_REQ_GET]++;
        if (z != ZOK)
            return raw_err(w, z, "get");
        char out[8];
        be64(out, unbe64(buf, len) + 1);
        z = zoo_set(rc->zh, w->path, out, 8, st.version);
        w->req[ZKC_REQ_SET]++;
        if (z == ZOK)
            return OP_OK;
        if (z != ZBADVERSION)
            return raw_err(w, z, "setData");
        w->conflicts++;
    }
}

/* ---- reservation ---- */

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

/* ---- rate limiter ---- */

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

/* ================================================================ scenarios */

#define SCN(x) (opt.quick ? (x##_quick) : (x##_full))

static raw_conn *setup_raw(report *rep)
{
    char err[300];
    raw_conn *rc = raw_open(err, sizeof err);
    if (!rc)
        rep_fail(rep, "%s", err);
    return rc;
}

static zkc_client *setup_client(report *rep)
{
    char err[600];
    zkc_client *c = lib_client(err, sizeof err);
    if (!c)
        rep_fail(rep, "%s", err);
    return c;
}

static void params_common(report *rep, int sessions, int threads)
{
    rep->threads = threads;
    kv_num(&rep->params, "sessions", sessions);
    kv_num(&rep->params, "threads", threads);
    kv_num(&rep->params, "seconds_per_round", opt.seconds);
    kv_num(&rep->params, "rounds", opt.rounds);
}

static void warm(report *rep, worker *w, const char *what)
{
    int rc = w->fn(w);
    if (rc < 0)
        rep_fail(rep, "warm-up %s: %s", what, w->err);
}

/* ---- lock_uncontended ---- */

static void sc_lock_uncontended(report *rep)
{
    char libp[160], rawp[160];
    snprintf(libp, sizeof libp, "%s/lu/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/lu/raw", g_root);
    params_common(rep, 1, 1);
    rep->floor_what = "raw create(ephemeral-sequential) + getChildren + delete";
    raw_conn *setup = NULL, *rc = NULL;
    zkc_client *c = NULL;
    zkc_lock *l = NULL;
    worker wl, wf;
    worker_init(&wl, 0, op_lock_cycle, NULL, NULL);
    worker_init(&wf, 0, op_raw_lock_cycle, NULL, NULL);
    if (!(setup = setup_raw(rep)))
        goto out;
    if (raw_mkpath(setup->zh, libp) || raw_mkpath(setup->zh, rawp)) {
        rep_fail(rep, "cannot create %s", libp);
        goto out;
    }
    if (!(c = setup_client(rep)) || !(rc = setup_raw(rep)))
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
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, &wl, 1, opt.seconds, &c, 1) || run_side(rep, &rep->fl, &wf, 1, opt.seconds, NULL, 0))
            break;
    }
out:
    zkc_lock_destroy(l);
    zkc_client_destroy(c);
    raw_close(rc);
    raw_close(setup);
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
    int count = 0;
    while (now_ms() < until) {
        zkc_queue_entry *en = NULL;
        if (zkc_lock_queue(c, path, &en, &count) == 0)
            zkc_queue_free(en, count);
        if (count >= queued + 1)
            break;
        sleep_ms(50);
    }
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

static void sc_lock_contended(report *rep)
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
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, wl, sessions, opt.seconds, cs, sessions) ||
            run_side(rep, &rep->fl, wf, sessions, opt.seconds, NULL, 0))
            break;
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

static void sc_lock_many(report *rep)
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
    char d1[200], d2[200];
    snprintf(d1, sizeof d1, "%s/lib", base);
    snprintf(d2, sizeof d2, "%s/raw", base);
    int z = raw_mkpath(setup->zh, d1);
    if (!z)
        z = raw_mkpath(setup->zh, d2);
    if (!z)
        z = raw_create_bulk(setup->zh, lpaths, np);
    if (!z)
        z = raw_create_bulk(setup->zh, rpaths, np);
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
    for (int t = 0; t < nt; t++) {
        int k = 0;
        wl[t].objs = calloc((size_t)(np / nt + 1), sizeof(void *));
        wf[t].objs = calloc((size_t)(np / nt + 1), sizeof(void *));
        if (!wl[t].objs || !wf[t].objs) {
            rep_fail(rep, "out of memory");
            goto out;
        }
        for (int i = t; i < np; i += nt, k++) {
            wl[t].objs[k] = locks[i];
            wf[t].objs[k] = rpaths[i];
        }
        wl[t].nobjs = wf[t].nobjs = k;
        wf[t].obj = rc;
    }
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
    if (locks)
        for (int i = 0; i < np; i++)
            zkc_lock_destroy(locks[i]);
    zkc_client_destroy(c);
    raw_close(rc);
    raw_close(setup);
    for (int i = 0; i < np && lpaths && rpaths; i++) {
        free(lpaths[i]);
        free(rpaths[i]);
    }
    if (wl && wf)
        for (int t = 0; t < nt; t++) {
            worker_fini(&wl[t]);
            worker_fini(&wf[t]);
        }
    free(wl);
    free(wf);
    free(locks);
    free(lpaths);
    free(rpaths);
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

static void sc_counter_uncontended(report *rep)
{
    params_common(rep, 1, 1);
    rep->floor_what = "raw versioned setData loop";
    rep->floor2_what = "raw multi{setData, create marker, delete old marker} loop";
    char libp[160], rawp[160], rawm[160], mk[200];
    snprintf(libp, sizeof libp, "%s/cu/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/cu/raw", g_root);
    snprintf(rawm, sizeof rawm, "%s/cu/rawm", g_root);
    snprintf(mk, sizeof mk, "%s-m", rawm);
    raw_conn *setup = NULL, *rc = NULL;
    zkc_client *c = NULL;
    zkc_counter *ctr = NULL;
    worker wl, wf, wm;
    worker_init(&wl, 0, op_counter_add, NULL, NULL);
    worker_init(&wf, 0, op_raw_set, NULL, NULL);
    worker_init(&wm, 0, op_raw_multi, NULL, NULL);
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
    warm(rep, &wl, "library");
    warm(rep, &wf, "floor");
    warm(rep, &wm, "floor2");
    int64_t before = 0;
    zkc_counter_get(ctr, &before);
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++) {
        if (run_side(rep, &rep->lib, &wl, 1, opt.seconds, &c, 1) || run_side(rep, &rep->fl, &wf, 1, opt.seconds, NULL, 0) ||
            run_side(rep, &rep->fl2, &wm, 1, opt.seconds, NULL, 0))
            break;
    }
    if (rep_ok(rep))
        check_exact(rep, ctr, before, rep->lib.ops_all);
out:
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    raw_close(rc);
    raw_close(setup);
    worker_fini(&wl);
    worker_fini(&wf);
    worker_fini(&wm);
}

static void sc_counter_hot_sessions(report *rep)
{
    enum { S = 8 };
    params_common(rep, S, S);
    rep->floor_what = "8 raw sessions: get + versioned setData, re-read on BadVersion";
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
        if (zkc_counter_create(cs[i], libp, NULL, &ctrs[i])) {
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
    }
    if (rep_ok(rep)) {
        check_exact(rep, ctrs[0], before, rep->lib.ops_all);
        sb a = {0}, p = {0}, f = {0}, ro = {0}, rp = {0};
        sb_printf(&a, "[");
        sb_printf(&p, "[");
        sb_printf(&f, "[");
        sb_printf(&ro, "[");
        sb_printf(&rp, "[");
        uint64_t mn = UINT64_MAX, mx = 0, rmn = UINT64_MAX, rmx = 0;
        double worst = 0, rworst = 0;
        for (int i = 0; i < S; i++) {
            double q = lat_pct(&sess_lat[i], 99), rq = lat_pct(&raw_lat[i], 99);
            worst = isfinite(q) ? fmax(worst, q) : worst;
            rworst = isfinite(rq) ? fmax(rworst, rq) : rworst;
            sb_printf(&rp, "%s", i ? ", " : "");
            sb_jnum(&rp, rq);
            rmn = raw_ops[i] < rmn ? raw_ops[i] : rmn;
            rmx = raw_ops[i] > rmx ? raw_ops[i] : rmx;
            sb_printf(&a, "%s%" PRIu64, i ? ", " : "", sess_ops[i]);
            sb_printf(&f, "%s%" PRIu64, i ? ", " : "", sess_fails[i]);
            sb_printf(&ro, "%s%" PRIu64, i ? ", " : "", raw_ops[i]);
            sb_printf(&p, "%s", i ? ", " : "");
            sb_jnum(&p, lat_pct(&sess_lat[i], 99));
            mn = sess_ops[i] < mn ? sess_ops[i] : mn;
            mx = sess_ops[i] > mx ? sess_ops[i] : mx;
        }
        sb_printf(&a, "]");
        sb_printf(&p, "]");
        sb_printf(&f, "]");
        sb_printf(&ro, "]");
        sb_printf(&rp, "]");
        kv_raw(&rep->extra, "per_session_successes", sb_str(&a));
        kv_raw(&rep->extra, "per_session_p99_ms", sb_str(&p));
        kv_raw(&rep->extra, "per_session_econtended", sb_str(&f));
        kv_raw(&rep->extra, "floor_per_session_successes", sb_str(&ro));
        kv_raw(&rep->extra, "floor_per_session_p99_ms", sb_str(&rp));
        kv_num(&rep->extra, "floor_min_over_max_session_successes", rmx ? (double)rmn / (double)rmx : NAN);
        kv_num(&rep->extra, "min_over_max_session_successes", mx ? (double)mn / (double)mx : NAN);
        uint64_t tot = 0;
        for (int i = 0; i < S; i++)
            tot += sess_ops[i];
        /* Starved: under a quarter of the fair share, or an add that gave up
         * (ZKC_ECONTENDED after max_attempts lost CAS rounds). */
        int gave_up = 0;
        for (int i = 0; i < S; i++) {
            if ((double)sess_ops[i] < 0.25 * (double)tot / S || sess_fails[i])
                rep->starved++;
            gave_up += sess_fails[i] > 0;
        }
        kv_num(&rep->extra, "starved_sessions", rep->starved);
        if (rep->starved)
            snprintf(rep->starve_msg, sizeof rep->starve_msg,
                     "%d of %d sessions starved (under 1/4 of the fair share of %" PRIu64
                     " adds, or an add failed with ZKC_ECONTENDED: %d sessions)",
                     rep->starved, S, tot / S, gave_up);
        sb_printf(&rep->notes, "per-session successes %s (min/max %.2f), per-session p99 ms %s; floor per-session %s. ",
                  sb_str(&a), mx ? (double)mn / (double)mx : 0.0, sb_str(&p), sb_str(&ro));
        sb_printf(&rep->reason,
                  "Fairness: library sessions' successes min/max %.2f, worst session p99 %.0f ms; floor min/max %.2f, "
                  "worst session p99 %.0f ms%s.",
                  mx ? (double)mn / (double)mx : 0.0, worst, rmx ? (double)rmn / (double)rmx : 0.0, rworst,
                  rep->starved ? "" : " (no session under 1/4 of its fair share, no add gave up)");
        sb_free(&rp);
        sb_free(&a);
        sb_free(&p);
        sb_free(&f);
        sb_free(&ro);
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

static void sc_counter_hot_threads(report *rep)
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

/* ---- reserve_fifo ---- */

static void sc_reserve_fifo(report *rep)
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

/* ---- ratelimit ---- */

static void sc_ratelimit(report *rep)
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
        /* Windows of the servers' clock (the local ensemble shares ours); only
         * those wholly inside the round. */
        long long first = (long long)ceil(w0 / win), last = (long long)floor(w1 / win) - 1;
        if (last >= first) {
            size_t nwin = (size_t)(last - first + 1);
            uint64_t *cnt = calloc(nwin, sizeof *cnt);
            for (int i = 0; cnt && i < nt; i++)
                for (size_t k = 0; k < wl[i].ngrants; k++) {
                    long long wi = (long long)floor(wl[i].grants[k] / win);
                    if (wi >= first && wi <= last)
                        cnt[wi - first]++;
                }
            for (size_t k = 0; cnt && k < nwin; k++) {
                lat_push(&per_window, (double)cnt[k]);
                if (cnt[k] > (uint64_t)R)
                    over++;
            }
            free(cnt);
        }
        for (int i = 0; i < nt; i++)
            permits += wl[i].ngrants;
    }
    if (rep_ok(rep)) {
        double mn = per_window.n ? lat_pct(&per_window, 0) : NAN, mx = per_window.n ? lat_pct(&per_window, 100) : NAN;
        double sum = 0;
        for (size_t k = 0; k < per_window.n; k++)
            sum += per_window.v[k];
        kv_num(&rep->extra, "windows_observed", (double)per_window.n);
        kv_num(&rep->extra, "permits_per_window_min", mn);
        kv_num(&rep->extra, "permits_per_window_mean", per_window.n ? sum / (double)per_window.n : NAN);
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
                  win, mn, per_window.n ? sum / (double)per_window.n : NAN, mx, R, (unsigned long long)over,
                  per_window.n, permits ? (double)total / (double)permits : NAN,
                  permits ? (double)writes / (double)permits : NAN, batch);
    }
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

/* ================================================================ analysis and output */

typedef struct scenario {
    const char *name;
    void (*run)(report *rep);
    double target;
    const char *desc;
} scenario;

static const scenario scenarios[] = {
    {"lock_uncontended", sc_lock_uncontended, 0.95, "one client: acquire + release, repeated"},
    {"lock_contended", sc_lock_contended, 0.90, "8 sessions on one lock: handoffs per second"},
    {"lock_many", sc_lock_many, 0.80, "1000 lock paths, 64 threads, one session: cycles per second"},
    {"counter_uncontended", sc_counter_uncontended, 0.85, "one client: add, exactly-once"},
    {"counter_hot_sessions", sc_counter_hot_sessions, 1.0, "8 sessions adding to one counter"},
    {"counter_hot_threads", sc_counter_hot_threads, 20.0, "64 threads of one session adding to one counter"},
    {"reserve_fifo", sc_reserve_fifo, 10.0, "64 workers, 5000 orders of 1 unit on one SKU, FIFO"},
    {"ratelimit", sc_ratelimit, NAN, "demand above the limit R"},
};
#define NSCEN ((int)(sizeof scenarios / sizeof scenarios[0]))

static double side_median(const side *s)
{
    return median(s->ops, s->n);
}

static double per_op(const side *s, int k)
{
    return s->ops_all ? (double)s->req[k] / (double)s->ops_all : NAN;
}

static double total_per_op(const side *s)
{
    uint64_t t = 0;
    for (int k = 0; k < 16; k++)
        t += s->req[k];
    return s->ops_all ? (double)t / (double)s->ops_all : NAN;
}

static double writes_per_op(const side *s)
{
    return s->ops_all ? (double)(s->req[ZKC_REQ_CREATE] + s->req[ZKC_REQ_DELETE] + s->req[ZKC_REQ_SET] +
                                 s->req[ZKC_REQ_MULTI]) /
                            (double)s->ops_all
                      : NAN;
}

static void req_json(sb *b, const side *s)
{
    sb o = {0};
    kv_num(&o, "total", total_per_op(s));
    kv_num(&o, "writes", writes_per_op(s));
    for (int k = 0; k < 10; k++)
        if (s->req[k])
            kv_num(&o, req_names[k], per_op(s, k));
    sb_printf(b, "{%s}", sb_str(&o));
    sb_free(&o);
}

static void req_text(sb *b, const side *s)
{
    int first = 1;
    for (int k = 0; k < 10; k++)
        if (s->req[k] && per_op(s, k) >= 0.005) {
            sb_printf(b, "%s%.2f %s", first ? "" : " + ", per_op(s, k), req_names[k]);
            first = 0;
        }
    if (first)
        sb_printf(b, "none");
}

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
    sb_printf(b, " (%.2f writes) vs %s ", writes_per_op(L), strncmp(rep->name, "reserve", 7) ? "floor" : "baseline");
    if (F->ops_all) {
        req_text(b, F);
        sb_printf(b, " (%.2f writes)", writes_per_op(F));
    }
    sb_printf(b, ".");
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
                  "node (lost-lock detection, lib/queue.c watch_own) and, at release, removeWatches for it ahead of "
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
                  " Latency path: every library step crosses threads (caller -> engine -> ZooKeeper I/O -> "
                  "completion -> engine -> caller): %.1f context switches per cycle vs %.1f for the floor.",
                  L->csw / (double)L->ops_all, F->csw / (double)F->ops_all);
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
                      " What each order still pays alone is its reads: queue length check, listing, record and "
                      "predecessor watches, the granter's read of its entry, the re-read of its decided record; and "
                      "its wait for the grant rounds, which are sequential (each head lists, reads, writes, then "
                      "wakes the next).");
        sb_printf(b, " Client+server CPU per order: %.3f ms vs %.3f ms for the baseline (ratio %.2f).", tl, tf,
                  tl > 0 ? tf / tl : NAN);
    }
    (void)lcpu;
    (void)fcpu;
}

static int g_any_error;
static FILE *g_json;
static sb g_table;

static const char *fmt_num(char *buf, size_t n, double x, int prec)
{
    if (!isfinite(x))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.*f", prec, x);
    return buf;
}

static void emit(report *rep, const scenario *sc)
{
    side *L = &rep->lib, *F = &rep->fl;
    double lo = side_median(L), fo = side_median(F);
    double ratio = (isfinite(lo) && isfinite(fo) && fo > 0) ? lo / fo : NAN;
    double smin = NAN, smax = NAN;
    int nr = L->n < F->n ? L->n : F->n;
    for (int i = 0; i < nr; i++) {
        if (F->ops[i] <= 0)
            continue;
        double r = L->ops[i] / F->ops[i];
        smin = isfinite(smin) ? fmin(smin, r) : r;
        smax = isfinite(smax) ? fmax(smax, r) : r;
    }
    double pr[MAXR];
    int npr = 0;
    for (int i = 0; i < nr; i++)
        if (F->ops[i] > 0)
            pr[npr++] = L->ops[i] / F->ops[i];
    double paired = median(pr, npr);
    int has_target = isfinite(sc->target);
    int met = has_target && isfinite(ratio) && ratio >= sc->target && !rep->starved;
    if (!strcmp(rep->status, "ok") && has_target && isfinite(ratio)) {
        if (!met) {
            sb cause = {0};
            sb_printf(&cause, "%s", sb_str(&rep->reason));
            rep->reason.n = 0;
            if (rep->reason.s)
                rep->reason.s[0] = 0;
            if (rep->starved && ratio >= sc->target)
                sb_printf(&rep->reason, "MISSED: ratio %.2f meets %.2f but %s.%s%s", ratio, sc->target,
                          rep->starve_msg, cause.n ? " " : "", sb_str(&cause));
            else
                sb_printf(&rep->reason, "MISSED: ratio %.2f < %.2f%s%s.%s%s", ratio, sc->target,
                          rep->starved ? " and " : "", rep->starved ? rep->starve_msg : "", cause.n ? " " : "",
                          sb_str(&cause));
            sb_free(&cause);
            analyse(rep, ratio);
            known_causes(rep, ratio);
        } else {
            analyse(rep, ratio);
            if (!strcmp(rep->name, "counter_hot_sessions"))
                known_causes(rep, ratio); /* throughput met; say why it is less fair than the floor */
        }
    } else if (!strcmp(rep->status, "skipped") || !strcmp(rep->status, "error")) {
        analyse(rep, ratio);
    } else {
        analyse(rep, ratio);
    }
    double p50 = lat_pct(&L->lat, 50), p99 = lat_pct(&L->lat, 99);

    /* ---- JSON ---- */
    sb j = {0};
    kv_str(&j, "scenario", rep->name);
    kv_str(&j, "what", sc->desc);
    kv_str(&j, "status", rep->status);
    if (rep->message[0])
        kv_str(&j, "message", rep->message);
    kv_num(&j, "ops_per_s", lo);
    kv_num(&j, "p50_ms", p50);
    kv_num(&j, "p99_ms", p99);
    kv_str(&j, "floor", rep->floor_what ? rep->floor_what : "");
    kv_num(&j, "floor_ops_per_s", fo);
    if (!strcmp(rep->name, "reserve_fifo"))
        kv_num(&j, "baseline_ops_per_s", fo);
    kv_num(&j, "floor_p50_ms", lat_pct(&F->lat, 50));
    kv_num(&j, "floor_p99_ms", lat_pct(&F->lat, 99));
    kv_num(&j, "ratio", ratio);
    {
        sb s = {0};
        sb_printf(&s, "[");
        sb_jnum(&s, smin);
        sb_printf(&s, ", ");
        sb_jnum(&s, smax);
        sb_printf(&s, "]");
        kv_raw(&j, "spread", sb_str(&s));
        sb_free(&s);
    }
    kv_num(&j, "ratio_median_of_rounds", paired);
    kv_num(&j, "target", has_target ? sc->target : NAN);
    kv_raw(&j, "target_met", !has_target || !isfinite(ratio) ? "null" : met ? "true" : "false");
    if (rep->reason.n)
        kv_str(&j, "reason", sb_str(&rep->reason));
    if (rep->notes.n)
        kv_str(&j, "notes", sb_str(&rep->notes));
    {
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
        kv_raw(&j, "rounds", sb_str(&s));
        sb_free(&s);
    }
    {
        sb s = {0};
        sb_printf(&s, "{%s}", sb_str(&rep->params));
        kv_raw(&j, "params", sb_str(&s));
        sb_free(&s);
    }
    {
        sb s = {0};
        req_json(&s, L);
        kv_raw(&j, "requests_per_op", sb_str(&s));
        s.n = 0;
        if (!rep->floor_is_limit) {
            req_json(&s, F);
            kv_raw(&j, "floor_requests_per_op", sb_str(&s));
        }
        sb_free(&s);
    }
    kv_num(&j, "conflicts_per_op", L->ops_all ? (double)L->conflicts / (double)L->ops_all : NAN);
    kv_num(&j, "failed_ops", (double)L->fails);
    kv_num(&j, "cpu_ms_per_op", L->ops_all ? L->cpu_ms / (double)L->ops_all : NAN);
    if (!rep->floor_is_limit)
        kv_num(&j, "floor_cpu_ms_per_op", F->ops_all ? F->cpu_ms / (double)F->ops_all : NAN);
    kv_num(&j, "server_cpu_ms_per_op", L->ops_all ? L->srv_cpu_ms / (double)L->ops_all : NAN);
    kv_num(&j, "context_switches_per_op", L->ops_all ? L->csw / (double)L->ops_all : NAN);
    if (!rep->floor_is_limit)
        kv_num(&j, "floor_context_switches_per_op", F->ops_all ? F->csw / (double)F->ops_all : NAN);
    if (!rep->floor_is_limit)
        kv_num(&j, "floor_server_cpu_ms_per_op", F->ops_all ? F->srv_cpu_ms / (double)F->ops_all : NAN);
    if (rep->fl2.n) {
        double f2 = side_median(&rep->fl2);
        kv_str(&j, "floor2", rep->floor2_what);
        kv_num(&j, "floor2_ops_per_s", f2);
        kv_num(&j, "ratio_to_floor2", f2 > 0 ? lo / f2 : NAN);
        kv_num(&j, "floor2_p50_ms", lat_pct(&rep->fl2.lat, 50));
        kv_num(&j, "floor2_p99_ms", lat_pct(&rep->fl2.lat, 99));
        sb s = {0};
        req_json(&s, &rep->fl2);
        kv_raw(&j, "floor2_requests_per_op", sb_str(&s));
        sb_free(&s);
    }
    if (rep->extra.n)
        sb_printf(&j, ", %s", sb_str(&rep->extra));
    {
        sb s = {0};
        fsync_json(&s, &rep->fs);
        kv_raw(&j, "fsync", sb_str(&s));
        sb_free(&s);
    }
    {
        sb s = {0};
        sb_printf(&s, "[");
        for (int i = 0; i < 3; i++) {
            sb_printf(&s, "%s", i ? ", " : "");
            sb_jnum(&s, rep->load[i]);
        }
        sb_printf(&s, "]");
        kv_raw(&j, "load_avg_at_start", sb_str(&s));
        sb_free(&s);
    }
    kv_num(&j, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    kv_str(&j, "ensemble", g_ens_desc);
    kv_str(&j, "commit", g_commit);
    if (g_json) {
        fprintf(g_json, "{%s}\n", sb_str(&j));
        fflush(g_json);
    }
    sb_free(&j);

    /* ---- table ---- */
    char a[32], bq[32], c[32], d[32], e[32], f[48], g[32], h[32];
    fmt_num(a, sizeof a, lo, 1);
    fmt_num(bq, sizeof bq, p50, 2);
    fmt_num(c, sizeof c, p99, 2);
    fmt_num(d, sizeof d, fo, 1);
    fmt_num(e, sizeof e, ratio, 2);
    if (isfinite(smin))
        snprintf(f, sizeof f, "%.2f..%.2f", smin, smax);
    else
        snprintf(f, sizeof f, "-");
    if (has_target)
        snprintf(g, sizeof g, ">=%.2g", sc->target);
    else
        snprintf(g, sizeof g, "report");
    snprintf(h, sizeof h, "%s",
             strcmp(rep->status, "ok") ? rep->status : !has_target ? "-" : !isfinite(ratio) ? "?" : met ? "yes" : "NO");
    char rq[48], fq[24];
    if (rep->floor_is_limit || !F->ops_all)
        snprintf(fq, sizeof fq, "-");
    else
        snprintf(fq, sizeof fq, "%.2f", total_per_op(F));
    if (L->ops_all || F->ops_all) {
        char lq[24];
        if (L->ops_all)
            snprintf(lq, sizeof lq, "%.2f", total_per_op(L));
        else
            snprintf(lq, sizeof lq, "-");
        snprintf(rq, sizeof rq, "%s|%s", lq, fq);
    }
    else
        snprintf(rq, sizeof rq, "-");
    sb_printf(&g_table, "%-21s %10s %8s %8s %11s %6s %11s %7s %7s %11s\n", rep->name, a, bq, c, d, e, f, g, h, rq);
    printf("%-21s %10s %8s %8s %11s %6s %11s %7s %7s %11s\n", rep->name, a, bq, c, d, e, f, g, h, rq);
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
        printf("    second floor (%s): %.1f ops/s, library/floor2 = %.2f\n", rep->floor2_what, f2, f2 > 0 ? lo / f2 : NAN);
    }
    fflush(stdout);
}

static const char *table_header(void)
{
    return "scenario               lib ops/s   p50 ms   p99 ms floor ops/s  ratio      spread  target     met "
           "req/op l|f\n";
}

/* ================================================================ setup / teardown */

static int rm_cb(const char *p, const struct stat *sb_, int flag, struct FTW *ftw)
{
    (void)sb_;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    if (g_ens) {
        zkh_ensemble_stop(g_ens);
        g_ens = NULL;
    }
    if (g_base[0] && !getenv("ZKC_BENCH_KEEP")) {
        nftw(g_base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        g_base[0] = 0;
    }
}

static void fatal_stuck(const char *what)
{
    fprintf(stderr, "zkcoord-bench: %s; giving up\n", what);
    fflush(stdout);
    cleanup();
    _exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0x01021994: return "tmpfs";
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794c7630: return "overlayfs";
    case 0x6969: return "nfs";
    default: return "other";
    }
}

static void get_commit(void)
{
    const char *env = getenv("ZKC_BENCH_COMMIT");
    if (env && *env) {
        snprintf(g_commit, sizeof g_commit, "%s", env);
        return;
    }
    snprintf(g_commit, sizeof g_commit, "unknown");
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "git -C '%s' describe --always --dirty --abbrev=12 2>/dev/null", ZKC_BENCH_SRCDIR);
    FILE *p = popen(cmd, "r");
    if (p) {
        char buf[96];
        if (fgets(buf, sizeof buf, p)) {
            buf[strcspn(buf, "\n")] = 0;
            if (*buf)
                snprintf(g_commit, sizeof g_commit, "%s", buf);
        }
        pclose(p);
    }
}

static int start_ensemble(void)
{
    const char *ext = getenv("ZKC_HOSTS");
    if (ext && *ext) {
        g_hosts = ext;
        snprintf(g_ens_desc, sizeof g_ens_desc, "external (ZKC_HOSTS=%s)", ext);
        return 0;
    }
    const char *dir = getenv("ZKC_BENCH_DIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/zkcoord-bench.XXXXXX", dir && *dir ? dir : "/var/tmp");
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "zkcoord-bench: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return -1;
    }
    snprintf(g_base, sizeof g_base, "%s", tmpl);
    struct statfs sf;
    const char *fs = "unknown";
    if (statfs(g_base, &sf) == 0)
        fs = fs_name((long)sf.f_type);
    if (!strcmp(fs, "tmpfs"))
        fprintf(stderr,
                "zkcoord-bench: WARNING: %s is on tmpfs: fsync costs nothing there; set ZKC_BENCH_DIR to a disk "
                "directory\n",
                g_base);
    zkh_options o;
    zkh_options_init(&o);
    o.nodes = 3;
    o.fsync = 1;
    o.base_dir = g_base;
    o.max_session_timeout_ms = 30000;
    printf("starting a 3-node ZooKeeper ensemble (fsync on) in %s (%s) ...\n", g_base, fs);
    fflush(stdout);
    int rc = zkh_ensemble_start(&g_ens, &o);
    if (rc) {
        fprintf(stderr, "zkcoord-bench: cannot start the ensemble: %s\n", strerror(-rc));
        g_ens = NULL;
        return -1;
    }
    g_hosts = zkh_ensemble_hosts(g_ens);
    find_servers();
    snprintf(g_ens_desc, sizeof g_ens_desc, "local 3-node, forceSync=yes, data on %s (%s)", fs, g_base);
    return 0;
}

/* ================================================================ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: zkcoord-bench [--scenario NAME]... [--rounds N] [--seconds S] [--quick]\n"
            "                     [--json FILE] [--png FILE] [--verbose] [--list]\n"
            "  Runs each scenario as interleaved rounds (library, floor, library, floor, ...)\n"
            "  against ZKC_HOSTS, or a 3-node local ensemble with fsync on that it starts\n"
            "  (data under $ZKC_BENCH_DIR, default /var/tmp). Defaults: 5 rounds of 3 s.\n"
            "  --quick: tiny configuration (2 rounds of 0.4 s, few threads) to prove it works.\n"
            "  --json FILE: one JSON object per scenario (JSON lines).\n"
            "  --png FILE: ratio and throughput chart (python3 + matplotlib, bench/plot.py).\n"
            "  --side library|floor: run one side only (for profiling, e.g. under callgrind).\n");
}

static int wanted(const char *name)
{
    if (!opt.nonly)
        return 1;
    for (int i = 0; i < opt.nonly; i++)
        if (!strcmp(opt.only[i], name))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    /* One malloc arena: mallinfo2 then counts every thread's allocations. */
    mallopt(M_ARENA_MAX, 1);
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
        } else if (!strcmp(a, "--quick")) {
            opt.quick = 1;
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
    for (int i = 0; i < opt.nonly; i++) {
        int ok = 0;
        for (int k = 0; k < NSCEN; k++)
            ok |= !strcmp(opt.only[i], scenarios[k].name);
        if (!ok) {
            fprintf(stderr, "zkcoord-bench: unknown scenario '%s' (--list shows them)\n", opt.only[i]);
            return 2;
        }
    }
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

    get_commit();
    loadavg(g_load0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (start_ensemble()) {
        cleanup();
        return zkh_ci() ? 1 : 77;
    }
    snprintf(g_root, sizeof g_root, "/zkcbench-%d-%04x", (int)getpid(), (unsigned)(now_ms()) & 0xffff);
    snprintf(g_meta, sizeof g_meta, "%s/meta", g_root);
    {
        char err[300];
        raw_conn *rc = raw_open(err, sizeof err);
        if (!rc || raw_mkpath(rc->zh, g_root)) {
            fprintf(stderr, "zkcoord-bench: %s\n", rc ? "cannot create the root node" : err);
            raw_close(rc);
            cleanup();
            return zkh_ci() ? 1 : 77;
        }
        raw_close(rc);
    }
    printf("zkcoord-bench: commit %s, %ld CPUs, load %.2f %.2f %.2f%s\n", g_commit, ncpu, g_load0[0], g_load0[1],
           g_load0[2], g_load0[0] > (double)ncpu ? "  (MACHINE LOADED: absolute numbers are noise; read the ratios)" : "");
    printf("ensemble: %s\n", g_ens_desc);
    printf("rounds: %d x %.2f s per side, interleaved library/floor%s\n\n", opt.rounds, opt.seconds,
           opt.quick ? " (--quick: tiny configuration, numbers mean nothing)" : "");
    fflush(stdout);

    sb_printf(&g_table, "%s", table_header());
    int fs_n = opt.quick ? 10 : 50;
    for (int k = 0; k < NSCEN && !g_interrupted; k++) {
        const scenario *sc = &scenarios[k];
        if (!wanted(sc->name))
            continue;
        report rep;
        memset(&rep, 0, sizeof rep);
        rep.name = sc->name;
        rep.target = sc->target;
        snprintf(rep.status, sizeof rep.status, "ok");
        loadavg(rep.load);
        measure_fsync(&rep.fs, fs_n);
        char fst[512];
        fsync_text(fst, sizeof fst, &rep.fs);
        printf("== %s: %s\n   fsync: %s; load %.2f\n", sc->name, sc->desc, fst, rep.load[0]);
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
    }
    double load1[3];
    loadavg(load1);
    fsync_info fend;
    mntr_fsync(&fend);
    printf("==== summary (commit %s, load at start %.2f, at end %.2f, %ld CPUs)\n%s", g_commit, g_load0[0], load1[0],
           ncpu, sb_str(&g_table));
    printf("server fsync (mntr, cumulative):");
    for (int i = 0; i < fend.nservers; i++)
        printf(" %s avg %.2f ms max %.0f ms (%ld);", fend.state[i], fend.avg[i], fend.max[i], fend.cnt[i]);
    printf("\n");
    if (load1[0] > (double)ncpu || g_load0[0] > (double)ncpu)
        printf("NOTE: the machine was loaded (load average above the CPU count): absolute numbers are noise.\n");
    if (g_json) {
        fclose(g_json);
        g_json = NULL;
    }

    /* Leave nothing behind on an external ensemble. */
    if (!g_ens) {
        char err[300];
        raw_conn *rc = raw_open(err, sizeof err);
        if (rc) {
            raw_rmr(rc->zh, g_root);
            raw_close(rc);
        }
    }
    cleanup();

    if (opt.png) {
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
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", py, plot, opt.json ? opt.json : tmpjson, opt.png);
        int rc = system(cmd);
        if (rc != 0)
            fprintf(stderr, "zkcoord-bench: the chart was not drawn (%s exited %d; needs python3-matplotlib)\n", plot,
                    rc);
        else
            printf("chart: %s\n", opt.png);
    }
    if (tmpjson[0])
        unlink(tmpjson);
    sb_free(&g_table);
    return g_any_error ? 1 : 0;
}
