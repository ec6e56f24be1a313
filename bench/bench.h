/*
 * zkcoord-bench: every recipe measured against the raw ZooKeeper floor in the
 * same run, on the same ensemble, with the same C client (issue 10), and, with
 * --peers, against Apache Curator and kazoo doing the same work (issue 19).
 *
 * The library side uses only the public API (zkcoord.h). The floors are plain
 * libzookeeper_mt sync calls doing the minimum ZooKeeper work of the scenario,
 * in the same process layout (same number of sessions and threads). Library
 * and floor alternate in rounds (A B A B ...), so drift on a shared machine
 * hits both; the result is the ratio of the medians and its range over rounds.
 * Peers, when asked for, run in the same rounds right after the floor.
 *
 * Request counts come from zkc_client_stats (library) and from counting our
 * own calls (floors): a regression in round trips shows even when timings are
 * noise. Memory is malloc'd bytes in use (mallinfo2, with one malloc arena so
 * that every thread's allocations are counted) over N objects.
 *
 * Where things are:
 *   main.c          options, the scenario table, the run of one scenario
 *   env.c           the ensemble (ours or ZKC_HOSTS), commit label, signals, cleanup
 *   machine.c       clocks, load, CPU, memory, context switches, server processes
 *   stats.c         latency samples, medians, the JSON string builder, per-op figures
 *   servers.c       four-letter words: watches, watch events, fsync latency, packets
 *   limit.c         the ensemble's serial write latency and group-commit rate
 *   floor.c         the raw ZooKeeper client: sessions, paths, the floor operations
 *   run.c           workers and one side's timed round
 *   scen_*.c        the scenarios
 *   flash_order.c   the flash sale's order book (mirrored in CuratorPeer.java)
 *   flash_worker.c  a flash-sale worker process (zkcoord-bench --flash-worker)
 *   peers.c         Curator and kazoo worker processes (bench/peers/)
 *   report.c        the analysis, the JSON object and the table row of a scenario
 *
 * See bench/README.md for how to run it and how to read the output.
 */
#ifndef ZKC_BENCH_H
#define ZKC_BENCH_H

#include "zkcoord.h"

#include <zookeeper/zookeeper.h>

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifndef ZKC_BENCH_SRCDIR
#define ZKC_BENCH_SRCDIR "."
#endif
#ifndef ZKC_BENCH_BUILDDIR
#define ZKC_BENCH_BUILDDIR "."
#endif

#define MAXR 64            /* rounds */
#define OP_OK 0
#define OP_FAIL 1          /* counted failure (e.g. ZKC_ECONTENDED), keep going */
#define OP_DONE 2          /* no more work for this worker */
#define LOCK_TIMEOUT_MS 60000

/* ---- options and run-wide state (main.c, env.c) ---- */

typedef struct bench_opts {
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
    int peers;     /* --peers: run Curator and kazoo too */
    int lock_threads;                              /* --lock-threads (0: default) */
    int counter_queued; /* counter_hot_sessions' zkc_counter_options.queued: --counter-queued 1, --counter-auto 2 */
    int flash_procs, flash_threads, flash_orders;  /* --flash-* (0: default) */
} bench_opts;

extern bench_opts opt;
extern const char *g_hosts;
extern char g_root[96];        /* every node of this run lives under it */
extern char g_meta[128];       /* meta_root of the library clients */
extern char g_base[];        /* our ensemble's data directory (removed at exit) */
extern char g_ens_desc[];
extern char g_commit[96];
extern volatile sig_atomic_t g_interrupted;
extern int g_stop;             /* atomic: workers stop after their current operation */

int start_ensemble(void);
int ensemble_is_ours(void);
void cleanup(void);
void fatal_stuck(const char *what) __attribute__((noreturn));
void on_signal(int sig);
void get_commit(void);

/* ---- machine.c ---- */

double now_ms(void);
double wall_ms(void);
void sleep_ms(double ms);
void loadavg(double out[3]);
double thread_voluntary_switches(void);
long long mem_inuse(void);
long rss_kb(void);
void find_servers(void);
double server_cpu_ms(void);
double ctx_switches(void);
double cpu_ms(void);

/* ---- stats.c: samples and JSON ---- */

typedef struct lat_t {
    double *v;
    size_t n, cap;
} lat_t;

void lat_push(lat_t *l, double x);
void lat_append(lat_t *dst, const lat_t *src);
double lat_pct(lat_t *l, double p);
double lat_mean(const lat_t *l);
void lat_free(lat_t *l);
double median(const double *v, int n);

typedef struct sb {
    char *s;
    size_t n, cap;
} sb;

void sb_vprintf(sb *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sb_str(const sb *b);
void sb_reset(sb *b);
void sb_free(sb *b);
void sb_jstr(sb *b, const char *s);
void sb_jnum(sb *b, double x);
void sb_jnums(sb *b, const double *v, int n);
void kv_num(sb *b, const char *k, double x);
void kv_str(sb *b, const char *k, const char *s);
void kv_raw(sb *b, const char *k, const char *raw);
void kv_obj(sb *b, const char *k, const sb *members);

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
    double srv_pkts;          /* --peers: requests as the servers counted them */
    double srv_writes;        /* --peers: write transactions (zxids) over the runs */
} side;

extern const char *req_names[10];
double side_median(const side *s);
double side_per_op(const side *s, double x);
double per_op(const side *s, int k);
double total_per_op(const side *s);
double writes_per_op(const side *s);
void req_json(sb *b, const side *s);
void req_text(sb *b, const side *s);

/* ---- floor.c: the raw ZooKeeper client ---- */

typedef struct raw_conn {
    zhandle_t *zh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
} raw_conn;

raw_conn *raw_open(char *err, size_t errlen);
void raw_close(raw_conn *rc);
int raw_mkpath(zhandle_t *zh, const char *path);
int raw_create_data(zhandle_t *zh, const char *path, const char *data, int len);
int raw_rmr(zhandle_t *zh, const char *path);
int raw_create_bulk(zhandle_t *zh, char **paths, int n);
void be64(char *out, int64_t v);
int64_t unbe64(const char *in, int len);

/* ---- servers.c: what the servers say ---- */

typedef struct fsync_info {
    double write_p50_ms, write_mean_ms;
    int writes;
    int nservers;
    char state[16][16];
    double avg[16], max[16];
    long cnt[16];
} fsync_info;

long server_watches(void);
double server_mntr_sum(const char *key);
int scale_parse(int argc, char **argv); /* scen_scale.c: zkcoord-bench --scale */
int scale_run(int close_json); /* close_json: g_json is --scale's own */
double server_watch_events(void);
double server_packets(void);
double server_zxid(void);
void mntr_fsync(fsync_info *fi);
void measure_fsync(fsync_info *fi, int n);
void fsync_json(sb *b, const fsync_info *fi);
void fsync_text(char *out, size_t len, const fsync_info *fi);

/* ---- limit.c: the physical limit ---- */

typedef struct limit_info {
    double serial_p50_ms, serial_mean_ms;  /* sequential setData round trips */
    int serial_writes;
    double group_writes_per_s;             /* async setData kept outstanding */
    int group_outstanding;
} limit_info;

void measure_limit(limit_info *li, int serial_writes, double group_seconds);
void limit_json(sb *j, const limit_info *li, double ops, double writes);
void limit_text(const limit_info *li, double ops, double writes);

/* ---- run.c: workers and rounds ---- */

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
    int count_wakeups;  /* op_lock_cycle: add the thread's waits inside acquire to wakeups */
    double wakeups;
    lat_t lat;
    double finish;
    int fatal;
    char err[400];
    /* raw lock waiting */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fired;
    int raw_lost;  /* raw floors: requests the C client gave up on (timeout, connection loss) */
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
    limit_info lim;
    double load[3];
    int floor_is_limit;       /* ratelimit: the "floor" is the configured limit */
    int threads;              /* worker threads of the library side */
    int starved;              /* sessions that got under 10% of the fair share */
    char starve_msg[200];
    struct peer_set *peers;   /* --peers: Curator and kazoo on this workload, or NULL */
} report;

void worker_init(worker *w, int idx, op_fn fn, void *obj, void *sc);
void worker_fini(worker *w);
void *worker_next_obj(worker *w);
const char *peer_dir(const char *rel);
int lib_err(worker *w, int rc, const char *what);
int raw_err(worker *w, int z, const char *what);
void rep_fail(report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rep_ok(const report *rep);
int run_side(report *rep, side *sd, worker *ws, int n, double seconds, zkc_client **cs, int ncs);
/* A library client on g_hosts with meta_root g_meta, or NULL (err says why). */
zkc_client *lib_client(char *err, size_t errlen);
raw_conn *setup_raw(report *rep);
zkc_client *setup_client(report *rep);
void params_common(report *rep, int sessions, int threads);
void warm(report *rep, worker *w, const char *what);

int op_lock_cycle(worker *w);  /* scen_lock.c: acquire + release of w->obj or its next lock */

/* ---- floor operations (floor.c) ---- */

int op_raw_lock_cycle(worker *w);
int op_raw_lock_handoff(worker *w);
int op_raw_set(worker *w);
int op_raw_multi(worker *w);
int op_raw_get_set(worker *w);

/* ---- scenarios ---- */

#define SCN(x) (opt.quick ? (x##_quick) : (x##_full))

typedef struct scenario {
    const char *name;
    void (*run)(report *rep);
    double target;
    const char *desc;
    double peer_target;  /* issue 19: zkcoord / best peer at least this (0: none) */
} scenario;

void sc_lock_uncontended(report *rep);
void sc_lock_contended(report *rep);
void sc_election_handoffs(report *rep);
void sc_lock_many(report *rep);
void sc_lock_threads(report *rep);
int lock_queue_wait(zkc_client *c, const char *path, int want, double until);
int lock_sides_open(report *rep, const char *libp, const char *rawp, zkc_client **c, raw_conn **rc);
void lock_sides_close(zkc_client *c, raw_conn *rc, zkc_lock **locks, int nl, worker *wl, worker *wf, int nt);
void sc_counter_uncontended(report *rep);
void sc_counter_hot_sessions(report *rep);
void sc_counter_hot_threads(report *rep);
void sc_reserve_fifo(report *rep);
void sc_reserve_sessions(report *rep);
void sc_ratelimit(report *rep);
void sc_flash_sale(report *rep);
void sc_idgen(report *rep);
/* scen_counter.c: one exactly-once add of 1 (obj: zkc_counter *) */
int op_counter_add(worker *w);

/* ---- flash sale (flash_order.c, flash_worker.c) ---- */

#define FLASH_COLD 50
#define FLASH_HOT_PCT 60
typedef struct flash_line {
    int sku;       /* -1: the hot SKU, else a cold one 0..FLASH_COLD-1 */
    int64_t qty;
} flash_line;
int flash_order(int i, flash_line out[3]);
void flash_sku_name(int sku, char *out, size_t len);
/* The stock of a sale of `orders` orders: half the hot demand, all the cold. */
void flash_stock(int orders, int64_t *hot, int64_t cold[FLASH_COLD]);
int flash_worker_main(int argc, char **argv);

/* ---- peers.c: Curator and kazoo (--peers), and worker processes ---- */

/* A worker process speaking lines on its stdin and stdout. */
typedef struct peer_proc {
    pid_t pid;
    int in, out;              /* its stdin (we write), its stdout (we read) */
    char *buf;
    size_t len, cap;
    char errf[PATH_MAX];      /* its stderr */
} peer_proc;

/* Start argv with ZKC_PEER_INDEX=index; its stderr goes to a file. */
int proc_spawn(peer_proc *pp, char *const argv[], int index);
/* Its next output line (in pp->buf), or NULL at end of output or timeout. */
char *proc_read_line(peer_proc *pp, double timeout_ms);
void proc_err_tail(const peer_proc *pp, char *out, size_t len);
void proc_stop(peer_proc *pp);
double jnum(const char *line, const char *key);
void jlats(const char *line, const char *key, lat_t *out);

typedef struct peer_set peer_set;
/* procs worker processes per peer on workload (mutex, counter, reserve,
 * mutex_threads, flash) under path, with arg (or NULL) as the workload's
 * argument; *_what: the recipe calls of one operation, NULL where that peer
 * has no recipe for it. Worker process i has ZKC_PEER_INDEX=i in its
 * environment. */
peer_set *peers_start(const char *workload, int procs, const char *path, const char *arg, const char *curator_what,
                      const char *kazoo_what);
void peers_round(peer_set *ps, double seconds);
double peers_best(peer_set *ps, const char **who);
/* target > 0: the ratio to the best peer that the scenario aims at. */
void peers_json(sb *j, peer_set *ps, double lib_ops, double target);
void peers_text(peer_set *ps, double lib_ops, double target);
void peers_free(peer_set *ps);

/* ---- report.c ---- */

extern int g_any_error;
extern FILE *g_json;
extern sb g_table;
const char *table_header(void);
void emit(report *rep, const scenario *sc);

#endif
