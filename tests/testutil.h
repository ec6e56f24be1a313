/* Shared helpers of the zkcoord Check suites (tests/test_*.c): clocks and
 * scaled timeouts, clients, event recorders, queue and watch inspection, a raw
 * libzookeeper_mt handle for "foreign" nodes, and the common main().
 *
 * Env:
 *   ZKC_TEST_TIMEOUT_SCALE  multiplies session, connect, operation timeouts and
 *                           every wait deadline of the tests (valgrind: 5).
 *   CK_FORK                 Check's own switch (the suites work either way).
 *   CI=true                 a missing ZooKeeper fails instead of skipping.
 */
#ifndef ZKC_TESTUTIL_H
#define ZKC_TESTUTIL_H

#include <check.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "zkcoord.h"
#include "harness/ensemble.h"
#include "harness/proxy.h"

#include <zookeeper/zookeeper.h>

/* ------------------------------------------------------------ time */

long long tu_now_ms(void);
/* Pacing only (a holder "working", jitter between racing calls): never used
 * to wait for something that has an event. */
void tu_nap_ms(int ms);
int tu_scale(void);            /* ZKC_TEST_TIMEOUT_SCALE, >= 1 */
int tu_ms(int ms);             /* ms * scale */
/* An absolute CLOCK_MONOTONIC deadline timeout_ms from now, for a condition
 * variable made by tu_cond_init_mono. */
void tu_deadline_ts(struct timespec *dl, int timeout_ms);
void tu_cond_init_mono(pthread_cond_t *cv);
uint64_t tu_rng_next(uint64_t *s); /* xorshift64*; *s must not be 0 */
#define TU_SESSION_MS 4000     /* requested session timeout (before scaling) */
#define TU_TICK_MS 200         /* the harness's tickTime */

/* ------------------------------------------------------------ clients */

/* A unique absolute path "/zkct-<tag>-<pid>-<n>". */
void tu_unique_path(char *buf, size_t len, const char *tag);
/* Options with scaled test timeouts for `hosts`. */
void tu_client_opts(zkc_client_options *o, const char *hosts);
/* Create (asserting success) with tu_client_opts, or with o as given. */
zkc_client *tu_client(const char *hosts);
zkc_client *tu_client_o(const zkc_client_options *o);
/* tu_client with a session timeout of session_ms and an operation timeout of
 * op_ms where they are not 0 (as given: scale them with tu_ms). */
zkc_client *tu_client_t(const char *hosts, int session_ms, int op_ms);
/* A lock on path (asserting zkc_lock_create succeeds). */
zkc_lock *tu_lock(zkc_client *c, const char *path);
int64_t tu_session_id(zkc_client *c);

/* ------------------------------------------------------------ events */

/* Thread-safe recorder of integer events with their time, for listeners and
 * callbacks; waits are bounded. */
#define TU_MAX_EVENTS 1024
typedef struct tu_events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    int ev[TU_MAX_EVENTS];
    long long at[TU_MAX_EVENTS];
    int64_t val[TU_MAX_EVENTS];
} tu_events;

void tu_events_init(tu_events *e);
void tu_events_destroy(tu_events *e);
void tu_events_add(tu_events *e, int ev, int64_t val);
/* Index of the first event == ev at index >= from, waiting up to timeout_ms;
 * -1 if none came. */
int tu_events_wait(tu_events *e, int ev, int from, int timeout_ms);
int tu_events_count(tu_events *e, int ev);
int tu_events_total(tu_events *e);
/* Wait until at least n events in total; returns the count reached. */
int tu_events_wait_total(tu_events *e, int n, int timeout_ms);
/* Snapshot of event i (asserts i is valid). */
int tu_events_get(tu_events *e, int i, long long *at, int64_t *val);

/* Prints the events (label, index, ms since t0, event, value) to stderr. */
void tu_events_dump(tu_events *e, const char *label, long long t0);
/* tu_events_wait that asserts the event came (`what` names it); else the
 * events so far are dumped first, timed from t0. Returns its index. */
int tu_expect_event(tu_events *e, int ev, int from, int timeout_ms, const char *what, long long t0);

/* Listeners that record into a tu_events (ud). */
void tu_state_listener(zkc_client *c, zkc_state st, void *ud);
void tu_lock_listener(zkc_lock *l, zkc_lock_event ev, void *ud);

/* ------------------------------------------------------------ queues */

/* Queue length at path (asserting the listing succeeds). */
int tu_queue_count(zkc_client *c, const char *path);
/* Reads through another client may lag behind a write (ZooKeeper orders
 * each session's own reads after its own writes only): checks of what other
 * clients did poll with a deadline. */
/* Poll until the queue has `want` entries; 1 if reached within timeout_ms. */
int tu_wait_queue_count(zkc_client *c, const char *path, int want, int timeout_ms);

/* ------------------------------------------------------------ watches */

typedef struct tu_watch {
    char path[512];
    int64_t session;
} tu_watch;

/* Watches (from `wchp` on every running server) on `prefix` itself or any
 * path below it. Returns the count (<= max stored), asserts wchp works. */
int tu_watches_under(zkh_ensemble *e, const char *prefix, tu_watch *out, int max);
/* Poll until tu_watches_under(...) == want; returns the last count. */
int tu_wait_watches(zkh_ensemble *e, const char *prefix, int want, int timeout_ms);

/* ------------------------------------------------------------ raw client */

typedef struct tu_raw tu_raw;
tu_raw *tu_raw_open(const char *hosts, int session_ms);
zhandle_t *tu_raw_zh(tu_raw *r);
void tu_raw_close(tu_raw *r);
/* zoo_async(path) and wait: later reads on this handle see every write the
 * leader had committed before (other clients' writes included). */
void tu_raw_sync(tu_raw *r, const char *path);
/* The same for a bare handle, without Check asserts: ZOK, the sync's error,
 * or ZOPERATIONTIMEOUT if it did not complete within 20 s (scaled). */
int tu_zh_sync(zhandle_t *zh, const char *path);
/* Creates every missing component of path as a persistent node. */
void tu_raw_mkdirs(tu_raw *r, const char *path);
/* Deletes path and everything below it (ignores missing nodes). */
void tu_raw_rmr(tu_raw *r, const char *path);

/* ------------------------------------------------------------ mutual exclusion checker */

/* Lives in memory shared by every contender (threads, or processes through
 * mmap(MAP_SHARED)); only atomics, so it needs no lock of its own. */
typedef struct tu_checker {
    int inside;          /* contenders in the critical section now */
    int overlaps;        /* entries that found someone inside */
    int bad_tokens;      /* entries whose token was not above the last one */
    long long entries;
    int64_t last_token;
} tu_checker;

void tu_checker_enter(tu_checker *k, int64_t token);
void tu_checker_exit(tu_checker *k);

/* ------------------------------------------------------------ ensembles and main */

/* The suite's shared ensemble (started by tu_main); asserts it exists. */
zkh_ensemble *tu_shared(void);
const char *tu_hosts(void);
/* A fresh ensemble of `nodes` for one fault test (local backend), or the
 * shared one when it can be controlled (other backends); NULL means skip
 * (fails instead when CI=true). */
zkh_ensemble *tu_fault_ensemble(int nodes, int max_session_ms);
void tu_fault_ensemble_done(zkh_ensemble *e);

/* Runs the suite and returns the exit code. need_ensemble: 0 none;
 * TU_SHARED_ENSEMBLE starts the shared ensemble first; TU_OWN_ENSEMBLES (the
 * tests start their own) only checks that ZooKeeper is installed. A missing
 * ZooKeeper skips (77), or fails under CI=true. */
#define TU_SHARED_ENSEMBLE 1
#define TU_OWN_ENSEMBLES 2
int tu_main(Suite *s, int need_ensemble);

/* Adds a test case of its own for the test `fn`, named after it (so
 * CK_RUN_CASE=<function> runs it alone), with a timeout of `seconds` (scale
 * it with tu_scale() where the suite does). A suite defines its CASE with it:
 *   #define CASE(s, fn) TU_CASE(s, fn, 90 * tu_scale()) */
TCase *tu_add_case(Suite *s, const char *name, const TTest *test, int seconds);
#define TU_CASE(s, fn, seconds) tu_add_case((s), #fn, (fn), (seconds))

/* The heavy tier's Check tag. Multi-process exactness runs, many-session loads
 * and timing-sensitive measurements go in test cases tagged with it: `make
 * check` (the fast tier) leaves them out (CK_EXCLUDE_TAGS), `make check-heavy`
 * runs only them (CK_INCLUDE_TAGS), and running a binary by hand runs both
 * (Makefile.am, ZKC_TIER). tcase_set_tags(tc, TU_HEAVY) tags a case;
 * TU_HEAVY_CASE is TU_CASE tagged. */
#define TU_HEAVY "heavy"
#define TU_HEAVY_CASE(s, fn, seconds) tcase_set_tags(TU_CASE(s, fn, seconds), TU_HEAVY)

/* Runs fn(arg) on a thread and waits for it at most timeout_ms: 1 if it
 * finished, 0 if it is still running (the thread is then left behind). */
int tu_run_bounded(void *(*fn)(void *), void *arg, int timeout_ms);
/* zkc_client_destroy(c) through tu_run_bounded: 1 if it returned within
 * timeout_ms (its result in *rc), 0 if it hung. */
int tu_client_destroy_bounded(zkc_client *c, int timeout_ms, int *rc);

/* ------------------------------------------------------------ proxies */

/* Listings (getChildren and getChildren2 requests) a proxy passed on. */
long tu_proxy_listings(zkh_proxy *px);
/* How long a proxy may hold a reply to client c (zkh_proxy_delay_reply):
 * 3 s scaled, at most a third of the session timeout c was granted (held
 * past 2/3 of it, the ZooKeeper client gives the reply up with the
 * connection, and the request is decided by recovery instead; the docker
 * ensemble's tickTime of 200 ms caps sessions at 4 s). */
int tu_reply_hold_ms(zkc_client *c);
/* A client through a new proxy (*px) to the shared ensemble's first node,
 * 20 s session and operation timeouts (scaled). */
zkc_client *tu_proxied_client(zkh_proxy **px);
/* Wait until px has passed on more listings than `since`, at most until
 * tu_now_ms() reaches deadline_ms: 1 if it did. */
int tu_wait_proxy_listing(zkh_proxy *px, long since, long long deadline_ms);

#endif
