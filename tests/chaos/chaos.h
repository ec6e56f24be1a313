/* zkc-chaos: a Jepsen-style fault-schedule test of zkcoord (tests/chaos/).
 *
 * One binary, three roles:
 *   driver   (default)  starts a 3-node ensemble, one fault proxy per server,
 *                       N worker processes, injects a seeded schedule of faults,
 *                       settles, then checks the merged history (check.c);
 *   worker   (--worker) a client process: threads of mutexes, read/write locks
 *                       (one guarded counter add per hold), counters, bounded
 *                       counters, inventory reservations, order numbers, a
 *                       leader election and a hard rate limiter,
 *                       every invocation and completion appended to a history
 *                       file, fenced writes to a shared resource (fence below);
 *   checker             runs inside the driver after the run has settled.
 *
 * History: one file per process (<dir>/hist-<wid>.log; the driver is wid 0),
 * one line per event, each written with a single write(2) on an O_APPEND fd
 * (so it is on disk, not buffered, when a process is killed):
 *     <t_ns CLOCK_MONOTONIC> <wid> <EVENT> key=value ...
 * CLOCK_MONOTONIC is system-wide, so times compare across processes.
 */
#ifndef ZKC_CHAOS_H
#define ZKC_CHAOS_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "zkcoord.h"

#define CH_MAX_WORKERS 256   /* worker ids over a run, replacements included */
#define CH_MAX_LOCKS 32      /* lock paths (mutex + rw) */
#define CH_MAX_COUNTERS 32   /* plain + stock counters */
#define CH_MAX_SKUS 16

#define CH_AUTH "chaos:chaos-secret"
#define CH_ROOT "/chaos"

/* The hard rate limiter every worker shares (worker.c's ratelimit_thread,
 * check.c's check_ratelimit): one configuration for the path. */
#define CH_RL_PATH CH_ROOT "/rl"
#define CH_RL_PERMITS 25
#define CH_RL_WINDOW_MS 500
#define CH_RL_BURST 3
#define CH_RL_SLOT_US ((CH_RL_WINDOW_MS * 1000 + CH_RL_PERMITS - 1) / CH_RL_PERMITS)

/* Workload shape, the same in the driver and the workers (passed on argv). */
typedef struct ch_shape {
    int mutex_paths;     /* /chaos/lock/m<i>    fence index i */
    int rw_paths;        /* /chaos/lock/rw<i>   fence index mutex_paths + i */
    int counters;        /* /chaos/ctr/c<i>     counter index i */
    int stocks;          /* /chaos/stock/s<i>   counter index counters + i (floor 0) */
                         /* /chaos/guarded      counter index counters + stocks: one add per lock hold,
                          *                     guarded by the hold (zkc_lock_guard) */
    int skus;            /* /chaos/inv, sku<i> */
    int mutex_threads;   /* per worker */
    int rw_threads;
    int counter_threads;
    int stock_threads;
    int inv_threads;
    int window;          /* outstanding async adds per counter thread */
    int session_ms;      /* requested session timeout */
    int keyed_pct;       /* share of plain counter adds with an idempotency key */
    int counter_rate;    /* adds per second per plain counter thread (pacing; 0 = flat out) */
    int stock_rate;      /* operations per second per stock thread */
    int lock_think_ms;   /* a lock thread pauses 0..this between acquisitions */
    int queued;          /* 1: the odd-numbered plain and stock counters are opened in a queued
                          * mode (zkc_counter_options.queued) by every worker; ch_counter_mode */
} ch_shape;

void ch_shape_default(ch_shape *s);
int ch_lock_count(const ch_shape *s);
int ch_counter_count(const ch_shape *s);
/* The zkc_counter_options.queued value counter index i is opened with: with
 * s->queued, every second plain counter (c1, c3, ...) and every second stock
 * counter (s1, s3, ...) is queued, alternately ALWAYS (c1, c5, s1, ...) and
 * AUTO (c3, c7, s3, ...), so every mode of both kinds runs under every fault;
 * never /chaos/guarded (its adds are guarded: always direct). */
int ch_counter_mode(const ch_shape *s, int i);
/* 1 if counter index i is in ALWAYS mode: every plain add goes through its
 * queue (an AUTO counter's adds may go either way, so the checker's
 * "through a queue" figures and the self-test's queued variant use only
 * these). */
int ch_counter_queued(const ch_shape *s, int i);
/* Path names. */
void ch_lock_path(const ch_shape *s, int i, char *buf, size_t len);
void ch_counter_path(const ch_shape *s, int i, char *buf, size_t len);
void ch_sku_name(int i, char *buf, size_t len);
#define CH_INV_ROOT CH_ROOT "/inv"

/* ---------------------------------------------------------------- shared memory
 * <dir>/shm, mapped by the driver and every worker. The fenced resource lives
 * here: one record per lock path behind a robust process-shared mutex (a
 * worker killed inside it does not wedge the others). */
typedef struct ch_fence {
    pthread_mutex_t mu;
    int64_t max_all;    /* largest token of any accepted write */
    int64_t max_excl;   /* largest token of an accepted exclusive write */
    int64_t excl_hold;  /* hold id (wid << 32 | op id) that wrote max_excl */
    int64_t accepted, rejected;
} ch_fence;

typedef struct ch_wslot {
    pthread_mutex_t mu;   /* robust, guards the session fields */
    int pid;
    int held;             /* atomic: locks this worker holds now */
    int64_t session_id;
    char passwd[16];
    int passwd_len;
    int64_t acquisitions; /* atomic, for progress lines */
    int64_t updates;      /* atomic */
    int64_t sessions_lost;  /* atomic: LOST heard by the connection listener (soak sampler) */
    int64_t locks_lost;     /* atomic: lock LOST events for a hold inside its critical section */
} ch_wslot;

typedef struct ch_shm {
    int stop;             /* atomic: workers finish (also SIGTERM) */
    ch_fence fence[CH_MAX_LOCKS];
    ch_wslot w[CH_MAX_WORKERS];
} ch_shm;

ch_shm *ch_shm_create(const char *dir);  /* driver: create, initialise, map */
ch_shm *ch_shm_attach(const char *dir);  /* worker */
void ch_shm_detach(ch_shm *m);
/* Lock a robust mutex, recovering it if its owner died. */
void ch_robust_lock(pthread_mutex_t *mu);

/* ---------------------------------------------------------------- history */

typedef struct ch_hist ch_hist;
ch_hist *ch_hist_open(const char *dir, int wid);
void ch_hist_close(ch_hist *h);
/* One line: "<t_ns> <wid> " + fmt + "\n", one write(2). Thread-safe. Returns
 * the timestamp used. */
int64_t ch_log(ch_hist *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t ch_now_ns(void);
void ch_nap_ms(int ms); /* pacing only, never synchronisation */

/* xorshift64*; seeded, per thread. */
static inline uint64_t ch_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static inline int ch_randint(uint64_t *s, int lo, int hi) /* inclusive */
{
    return lo + (int)(ch_rand(s) % (uint64_t)(hi - lo + 1));
}
uint64_t ch_mix(uint64_t a, uint64_t b);

/* ---------------------------------------------------------------- inventory
 * lib/reserve.c is being written: the workload binds the inventory API weakly
 * and switches that part off (with a notice) when it is absent or fails. */
int ch_inventory_linked(void);

/* ---------------------------------------------------------------- roles */

int ch_worker_main(int argc, char **argv);
int ch_driver_main(int argc, char **argv);

/* Checker: parses every hist-*.log of dir; `c` is a client connected to the
 * ensemble (the leader) for the final reads and lookups. */
typedef struct ch_check_in {
    const char *dir;
    const ch_shape *shape;
    ch_shm *shm;
    zkc_client *c;
    int64_t initial[CH_MAX_COUNTERS];   /* counter values when the epoch started */
    int64_t inv_total0[CH_MAX_SKUS];    /* SKU totals when the epoch started */
    int64_t inv_sold0[CH_MAX_SKUS];
    int session_ms;
    int verbose;
    int quiet;                          /* do not print violations (self-test) */
    int no_side_effects;                /* do not release leftover reservations (self-test) */
    int first_wid, last_wid;            /* the workers of this epoch */
    int64_t t_start;                    /* the epoch's start (driver events before it are ignored) */
} ch_check_in;

enum {
    V_FENCE_STALE = 0,   /* the resource accepted a write below its largest token */
    V_FENCE_REJECT,      /* a write rejected although its holder had not been told of doubt */
    V_TOKEN_ORDER,       /* exclusive tokens not strictly increasing, or a read below the last exclusive */
    V_OVERLAP,           /* overlapping critical sections among undoubted holders */
    V_COUNTER_SUM,       /* final value != initial + applied updates */
    V_COUNTER_CHAIN,     /* applied (before, after) pairs do not form one chain */
    V_COUNTER_BOUND,     /* a bounded update landed below its floor */
    V_REPLAY,            /* a replayed key reported another outcome than its first */
    V_UNKNOWN,           /* ZKC_EUNKNOWN with no connection loss during the update */
    V_INV_UNITS,         /* available + reserved + sold != total, or units != reservations */
    V_INV_DOUBLE,        /* a request id granted twice */
    V_ORPHAN,            /* lock/queue nodes left after settling */
    V_CALLBACK,          /* a callback delivered zero or several times */
    V_INCOMPLETE,        /* a call of a live process never returned */
    V_WORKER,            /* a worker crashed or did not quiesce */
    V_HARNESS,           /* the ensemble did not recover (not the library's fault, still a failure) */
    V_IDGEN,             /* an id handed out twice, or not increasing within a generator */
    V_ELECT_DOUBLE,      /* two election terms un-notified at once */
    V_ELECT_TOKEN,       /* term tokens not strictly increasing in grant order */
    V_GUARD_REFUSED,     /* a guarded add refused (ZKC_EFENCED) while its hold was undoubted */
    V_RL_BOUND,          /* hard rate limit: more than CH_RL_PERMITS slot starts in some CH_RL_WINDOW_MS */
    V_RL_INSTANT,        /* a grant's servers' instant far (> operation timeout) from the real clock at the grant */
    V_UNEXPECTED,        /* a call failed with a code no fault explains (server error, credentials, misuse) */
    V_NKINDS
};
extern const char *const ch_vnames[V_NKINDS];

typedef struct ch_check_out {
    int64_t violations[V_NKINDS];
    int64_t operations, acquisitions, counter_updates, counter_ops, unknown_outcomes, lookups;
    int64_t fence_accepted, fence_rejected, doubts, replays, inv_ops, inv_reserved;
    int64_t keyed_resolved, unknown_unresolved;
    int64_t queued_updates;             /* applied unkeyed adds of queued counters (through the queue) */
    int64_t queued_counters, queued_chained; /* queued counters; of them, those whose chain was checked */
    int64_t election_terms;
    int64_t rl_grants, rl_permits, rl_busiest; /* hard rate limit: grants, permits, most in one window */
    int64_t rl_busiest_at;                     /* the busiest window's start (us, servers' clock) */
    uint64_t counter_viol;              /* bit i: counter i failed counter_sum/_chain/_bound (self-test) */
    uint64_t inexact_counters;          /* bit i: counter i had updates of unknown outcome (sum is a range) */
    uint64_t inexact_skus;              /* bit i: SKU i had restocks of unknown outcome */
    int inventory_on;
} ch_check_out;

int ch_check(const ch_check_in *in, ch_check_out *out);
/* Plants one inconsistency per checker in copies of the histories and checks
 * each is caught; returns how many were missed. */
int ch_selftest(const ch_check_in *in, const ch_check_out *pristine, int *tested, int *skipped);

#endif
