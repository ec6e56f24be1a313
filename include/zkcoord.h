/*
 * zkcoord - fair distributed locks and exact counters on Apache ZooKeeper.
 *
 * This is the whole public API. It does not include <zookeeper.h>.
 *
 * CONVENTIONS
 *   - Every function that can fail returns 0 (ZKC_OK) or a negative ZKC_E* code.
 *     zkc_strerror(code) names the code; zkc_errmsg() returns a sentence about the
 *     last failure on the calling thread (path, server state, what to do).
 *   - Objects are opaque handles created by zkc_<object>_create and freed by
 *     zkc_<object>_destroy.
 *   - Blocking calls (zkc_lock_acquire, zkc_counter_add, ...) are the asynchronous
 *     call plus a wait; they take a timeout in milliseconds: 0 means "try once, do
 *     not wait", ZKC_FOREVER means no deadline of its own (the client's
 *     operation_timeout_ms still bounds every round trip that waits for a server).
 *
 * THREADS AND CALLBACKS
 *   - A client and every object made from it may be used from any number of
 *     threads at once.
 *   - Each client owns two threads: an engine thread that talks to ZooKeeper and
 *     runs every recipe's state machine, and a dispatch thread that runs YOUR
 *     callbacks (async completions, connection and lock listeners), one at a time,
 *     in the order they were produced. A slow callback delays the other callbacks
 *     of that client, never the ZooKeeper traffic. (When the engine thread is
 *     idle, the library may run a step of its state machine on the thread that
 *     brought the event, such as ZooKeeper's completion thread or the caller of a
 *     blocking call, to save a thread hop; your callbacks still run only on the
 *     dispatch thread.)
 *   - An async call whose submission returns 0 calls its callback exactly once:
 *     with success, an error, ZKC_ETIMEDOUT, ZKC_ECANCELED, or ZKC_ESESSIONLOST.
 *     A submission that returns an error never calls it.
 *   - From inside a callback you may call any zkcoord function, including blocking
 *     ones (they wait for the engine thread, which is never blocked by callbacks),
 *     except zkc_client_destroy on the callback's own client, which returns
 *     ZKC_EDEADLK. The log function runs on internal threads (and, for the reason
 *     above, possibly on a thread inside a blocking zkcoord call) and must not
 *     call zkcoord at all.
 *   - Data passed to a callback (values, strings) is valid only during the call.
 *
 * CONNECTION STATES (see zkc_client_set_listener)
 *   CONNECTED     the first session is established.
 *   SUSPENDED     the connection dropped; the session may still be alive. Locks
 *                 are *possibly* lost: stop work that a fencing token cannot guard.
 *   RECONNECTED   the same session is back; locks and leases are still held.
 *   LOST          the session expired, or the library presumes it expired because
 *                 no packet has come from any server for (negotiated session
 *                 timeout - margin), timed on a monotonic clock from the last
 *                 packet received. LOST is reported no later than the servers
 *                 could expire the session (while this process runs). Every lock
 *                 hold is then lost; the client opens a fresh session by itself
 *                 and later calls use it.
 */
#ifndef ZKCOORD_H
#define ZKCOORD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define ZKC_EXTERN __attribute__((visibility("default")))
#else
#define ZKC_EXTERN
#endif

#define ZKC_VERSION_MAJOR 0
#define ZKC_VERSION_MINOR 1
#define ZKC_VERSION_PATCH 0
#define ZKC_VERSION_STRING "0.1.0"

/* "No deadline" for timeout arguments. */
#define ZKC_FOREVER (-1)

/* ---------------------------------------------------------------- errors */

#define ZKC_OK             0
#define ZKC_EINVAL        -1  /* invalid argument: path, option, NULL, format */
#define ZKC_ENOMEM        -2  /* out of memory (see README: Memory exhaustion) */
#define ZKC_ETIMEDOUT     -3  /* the call's own timeout passed first */
#define ZKC_ECANCELED     -4  /* cancelled by zkc_*_cancel or by destroying its object/client */
#define ZKC_ECONNLOSS     -5  /* no server reachable within the operation timeout (nothing was applied) */
#define ZKC_ESESSIONLOST  -6  /* the session ended (expired or presumed expired) */
#define ZKC_ENOTHELD      -7  /* release/token of a lock this object does not hold */
#define ZKC_ECONTENDED    -8  /* compare-and-swap lost every bounded attempt (nothing written) */
#define ZKC_EBOUND        -9  /* bounded add refused: would pass the floor/ceiling (nothing written) */
#define ZKC_EOVERFLOW    -10  /* the result does not fit the counter's format */
#define ZKC_EBADDATA     -11  /* node data is malformed for the expected format (nothing written) */
#define ZKC_EVERSIONWRAP -12  /* node version reached -1: conditional writes impossible; rebase */
#define ZKC_ENONODE      -13  /* the node does not exist */
#define ZKC_EEXISTS      -14  /* the node already exists */
#define ZKC_EAUTH        -15  /* authentication failed */
#define ZKC_ENOAUTH      -16  /* the ACL does not allow this operation */
#define ZKC_EDEADLK      -17  /* this call would deadlock from this thread */
#define ZKC_ECLOSED      -18  /* the client is being destroyed */
#define ZKC_EBUSY        -19  /* the object already has an operation of that kind running */
#define ZKC_EUNKNOWN     -20  /* outcome unknown (write sent, no server reachable since); look up by key */
#define ZKC_EMISMATCH    -21  /* compare-and-set: the current value differs */
#define ZKC_ECONFIG      -22  /* clients disagree about a recipe's configuration */
#define ZKC_ESERVER      -23  /* unexpected server error (see zkc_errmsg) */
#define ZKC_ELIMIT       -24  /* a size or count limit of ZooKeeper or of the recipe */
#define ZKC_EOUTOFSTOCK  -25  /* reservation refused: not enough stock (fail-fast mode) */
#define ZKC_EFENCED      -26  /* guarded write refused: the guard's lock hold has ended (nothing written) */

/* Short description of a ZKC_E* code ("invalid argument"). Never NULL. */
ZKC_EXTERN const char *zkc_strerror(int err);
/* What the last failing zkcoord call on this thread said: a sentence naming the
 * path and the cause. In a callback, describes that callback's error. */
ZKC_EXTERN const char *zkc_errmsg(void);
ZKC_EXTERN const char *zkc_version(void);

/* ---------------------------------------------------------------- client */

typedef struct zkc_client zkc_client;

typedef enum {
    ZKC_STATE_CONNECTED = 1,
    ZKC_STATE_SUSPENDED = 2,
    ZKC_STATE_RECONNECTED = 3,
    ZKC_STATE_LOST = 4
} zkc_state;

typedef enum {
    ZKC_ACL_OPEN = 0,        /* world:anyone may do everything (no credentials needed) */
    ZKC_ACL_CREATOR = 1,     /* only the creating identity (digest auth required) */
    ZKC_ACL_CREATOR_READ = 2 /* creator does everything, anyone may read */
} zkc_acl;

typedef enum { ZKC_LOG_ERROR = 0, ZKC_LOG_WARN = 1, ZKC_LOG_INFO = 2, ZKC_LOG_DEBUG = 3 } zkc_log_level;

typedef void (*zkc_log_fn)(zkc_log_level level, const char *msg, void *ud);
typedef void (*zkc_state_fn)(zkc_client *c, zkc_state state, void *ud);

typedef struct zkc_client_options {
    const char *hosts;           /* "host:port,host:port" (required; may end in /chroot) */
    const char *chroot;          /* extra namespace prefix for every path, or NULL */
    int session_timeout_ms;      /* requested; the servers clamp it (default 10000) */
    int connect_timeout_ms;      /* creation waits this long for the first session (default 15000) */
    int operation_timeout_ms;    /* bound on any wait for a server (default 2 * session timeout) */
    const char *auth_scheme;     /* "digest" or NULL */
    const char *auth_credential; /* "user:password"; re-applied to every new session */
    zkc_acl acl;                 /* ACL of nodes the library creates (default ZKC_ACL_OPEN) */
    int retry_max;               /* retries of a safe request after connection loss (default 10) */
    int retry_base_ms;           /* first backoff, doubled each time, with jitter (default 50) */
    int retry_cap_ms;            /* backoff ceiling (default 2000) */
    int lost_margin_ms;          /* LOST is presumed at last-packet + timeout - margin (default timeout/10, >= 100) */
    const char *meta_root;       /* where the library keeps its records (default "/zkcoord") */
    int marker_retention_s;      /* counter markers/keys kept this long (default 86400) */
    zkc_log_fn log_fn;           /* NULL: the library prints nothing */
    void *log_ud;
    zkc_log_level log_level;     /* default ZKC_LOG_WARN */
    void *reserved[8];           /* zero; keeps the struct size stable as options grow */
} zkc_client_options;

/* Fill with defaults (everything zero/NULL except the defaults above). */
ZKC_EXTERN void zkc_client_options_init(zkc_client_options *o);

/* Create a client and wait up to connect_timeout_ms for its first session.
 * Errors: ZKC_EINVAL (bad connect string or option), ZKC_ECONNLOSS (no server
 * answered in time, or a host name does not resolve), ZKC_EAUTH (credentials
 * refused), ZKC_ENOMEM. A session that replaces a lost one and cannot start
 * (a name that stopped resolving) is tried again every second. */
ZKC_EXTERN int zkc_client_create(zkc_client **out, const zkc_client_options *o);

/* Cancel every operation in flight (their callbacks run once, with
 * ZKC_ECANCELED), release every lock the client's objects hold, close the
 * session, join the threads and free the client. Objects made from the client
 * must be destroyed first or are left unusable (their calls return ZKC_ECLOSED).
 * Returns ZKC_EDEADLK, and does nothing, from one of this client's callbacks. */
ZKC_EXTERN int zkc_client_destroy(zkc_client *c);

/* Register the connection-state listener (one per client; NULL removes it).
 * Runs on the dispatch thread. */
ZKC_EXTERN void zkc_client_set_listener(zkc_client *c, zkc_state_fn fn, void *ud);

/* Current view: 1 if connected and heard from a server recently, else 0. */
ZKC_EXTERN int zkc_client_connected(zkc_client *c);

/* Replace the server list at run time (same format as hosts, no chroot). */
ZKC_EXTERN int zkc_client_set_hosts(zkc_client *c, const char *hosts);

/* Session id and password of the current session (for diagnostics and tests).
 * passwd must hold ZKC_PASSWD_MAX bytes; *passwd_len receives the length used. */
#define ZKC_PASSWD_MAX 16
ZKC_EXTERN int zkc_client_session(zkc_client *c, int64_t *session_id, char *passwd, int *passwd_len);

/* The negotiated session timeout, in ms (0 before the first session). */
ZKC_EXTERN int zkc_client_session_timeout(zkc_client *c);

typedef enum {
    ZKC_REQ_CREATE = 0, ZKC_REQ_DELETE, ZKC_REQ_EXISTS, ZKC_REQ_GET, ZKC_REQ_SET,
    ZKC_REQ_CHILDREN, ZKC_REQ_SYNC, ZKC_REQ_MULTI, ZKC_REQ_REMOVE_WATCH, ZKC_REQ_OTHER,
    ZKC_REQ_CHECK /* a version check: only inside a multi (zkc_metrics.writes) */
} zkc_req_kind;
/* Room for request kinds in zkc_stats (more than used, for later kinds). */
#define ZKC_REQ_KINDS_MAX 16

typedef struct zkc_stats {
    uint64_t requests[ZKC_REQ_KINDS_MAX]; /* ZooKeeper requests sent, indexed by zkc_req_kind */
    uint64_t requests_total;
    uint64_t retries;        /* safe requests re-sent after connection loss */
    uint64_t conflicts;      /* BadVersion / lost CAS rounds */
    uint64_t sessions;       /* sessions established (1 + re-creations after LOST) */
    uint64_t suspended;      /* times SUSPENDED was reported */
    uint64_t reconnected;
    uint64_t lost;
    uint64_t disconnected_ms;/* total time spent without a connection */
    uint64_t callbacks;      /* user callbacks run */
} zkc_stats;

ZKC_EXTERN void zkc_client_stats(zkc_client *c, zkc_stats *out);

/* ---------------------------------------------------------------- metrics
 *
 * Every client counts, in memory and at no cost to the servers (no request is
 * sent for them): operations by recipe kind and outcome, latency histograms,
 * conflicts and retries, combined batch sizes, the session's history, waiters
 * and holders now, and the requests and writes it sent. Counters are atomic
 * and monotonic for the client's life (they survive LOST and new sessions);
 * reading them takes no lock the engine waits on.
 *
 * WHAT AN OPERATION IS: one call of the recipe's API that goes to the engine
 * (blocking or _async), counted when submitted (not when refused at once, e.g.
 * ZKC_EINVAL) and once when it completes, with its status. (A multi-lock
 * acquire whose first lock refuses the submission counts, as failed.) Recipes built on
 * other recipes count both: an id generator's lease is also a counter add, a
 * rate limiter's write a counter operation, a multi-lock also one lock acquire
 * per lock. Local calls are not operations: zkc_lock_token, a blocking
 * zkc_idgen_next that finds an id at hand (its _async form is one), and the
 * objects' create and destroy.
 *
 * HISTOGRAMS (fixed buckets; cumulative, Prometheus "le" semantics):
 *   ZKC_HIST_LOCK_WAIT       successful acquires (lock, rwlock, semaphore,
 *                            multilock): call to grant
 *   ZKC_HIST_LOCK_HOLD       holds of lock, rwlock, semaphore: grant to release
 *                            or loss (recorded when the hold ends)
 *   ZKC_HIST_COUNTER_ADD     successful zkc_counter_add calls: call to reply
 *   ZKC_HIST_RESERVE         inventory reservations decided (reserved, or
 *                            ZKC_EOUTOFSTOCK): call to decision
 *   ZKC_HIST_ELECTION_WAIT   leader elections: call to leadership (reserved:
 *                            stays empty until the election recipe records it)
 *     time buckets, upper bounds in milliseconds: ZKC_METRICS_TIME_BOUNDS_MS;
 *     sums in microseconds (the exposition writes seconds)
 *   ZKC_HIST_COUNTER_BATCH   counter updates combined into one transaction
 *   ZKC_HIST_INVENTORY_BATCH reservations combined into one enqueue transaction
 *     size buckets: ZKC_METRICS_SIZE_BOUNDS; sums in updates
 *
 * PROMETHEUS EXPOSITION (zkc_client_metrics_format / _write), names:
 *   zkc_operations_started_total{kind}           counter
 *   zkc_operations_total{kind,result}            counter; result "ok" or the
 *                                                error's name ("timedout", "outofstock", ...)
 *   zkc_operations_in_flight{kind}               gauge
 *   zkc_lock_waiters{kind}, zkc_lock_holders{kind}  gauges (lock kinds)
 *   zkc_lock_wait_seconds, zkc_lock_hold_seconds,
 *   zkc_counter_add_seconds, zkc_reservation_decision_seconds,
 *   zkc_election_wait_seconds                    histograms
 *   zkc_batch_size{kind="counter"|"inventory"}   histogram
 *   zkc_requests_total{type}, zkc_writes_total{type}  counters (writes count the
 *                                                ops inside each multi: create, delete, set, check)
 *   zkc_cas_conflicts_total, zkc_retries_total, zkc_callbacks_total,
 *   zkc_sessions_total, zkc_suspended_total, zkc_reconnected_total,
 *   zkc_lost_total, zkc_disconnected_seconds_total  counters
 *   zkc_connected                                gauge (1 connected, else 0)
 * Operation and histogram series carry a label prefix="<label>" when the
 * operation's path is under a prefix registered with
 * zkc_client_metrics_label_prefix (unlabelled series: no registered prefix
 * matched). Labels from zkc_client_metrics_const_label go on every series. */
#define ZKC_METRICS_VERSION 1
#define ZKC_METRICS_KINDS_MAX 16   /* room in the arrays below; zkc_metric_kind uses fewer */
#define ZKC_METRICS_ERRORS_MAX 32  /* ops_failed[kind][-code], for codes -1 .. -31 */
#define ZKC_METRICS_HISTS_MAX 8
#define ZKC_METRICS_BUCKETS_MAX 24
/* Bucket upper bounds (the last bucket, +Inf, is implicit). */
#define ZKC_METRICS_TIME_BOUNDS_MS 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
#define ZKC_METRICS_TIME_NBOUNDS 15
#define ZKC_METRICS_SIZE_BOUNDS 1, 2, 4, 8, 16, 32, 64, 128, 256
#define ZKC_METRICS_SIZE_NBOUNDS 9
/* Prefixes and constant labels a client can register (each). */
#define ZKC_METRICS_PREFIXES_MAX 16
#define ZKC_METRICS_CONST_LABELS_MAX 4

typedef enum {
    ZKC_MK_LOCK = 0, ZKC_MK_RWLOCK, ZKC_MK_SEMAPHORE, ZKC_MK_MULTILOCK, ZKC_MK_COUNTER,
    ZKC_MK_INVENTORY, ZKC_MK_RATELIMIT, ZKC_MK_IDGEN, ZKC_MK_ADMIN,
    ZKC_MK_ELECTION, /* reserved for the election recipe: zero until it counts */
    ZKC_MK_COUNT /* kinds in use; later versions append */
} zkc_metric_kind;

typedef enum {
    ZKC_HIST_LOCK_WAIT = 0, ZKC_HIST_LOCK_HOLD, ZKC_HIST_COUNTER_ADD, ZKC_HIST_RESERVE,
    ZKC_HIST_ELECTION_WAIT, ZKC_HIST_COUNTER_BATCH, ZKC_HIST_INVENTORY_BATCH,
    ZKC_HIST_COUNT
} zkc_metric_hist;

typedef struct zkc_histogram {
    uint64_t count;                            /* observations */
    uint64_t sum;                              /* microseconds, or units for sizes */
    uint64_t bucket[ZKC_METRICS_BUCKETS_MAX];  /* bucket[i]: observations <= bound i;
                                                * bucket[nbounds] (+Inf) == count */
} zkc_histogram;

/* Grows only at its end, so a program built against an older header keeps
 * working: set `size` to sizeof(zkc_metrics) before the call; the library
 * fills only what fits in `size` bytes and sets `version` to its own
 * ZKC_METRICS_VERSION (a newer library's extra fields are then just absent;
 * an older library leaves fields it does not know zero). Totals over every
 * prefix. Gauges (in_flight, waiters, holders) are signed. */
typedef struct zkc_metrics {
    uint32_t size;     /* in: sizeof(zkc_metrics) as the caller knows it */
    uint32_t version;  /* out: the library's ZKC_METRICS_VERSION */
    uint64_t ops_started[ZKC_METRICS_KINDS_MAX];
    uint64_t ops_succeeded[ZKC_METRICS_KINDS_MAX];
    uint64_t ops_failed[ZKC_METRICS_KINDS_MAX][ZKC_METRICS_ERRORS_MAX]; /* [kind][-code] */
    int64_t ops_in_flight[ZKC_METRICS_KINDS_MAX];
    int64_t waiters[ZKC_METRICS_KINDS_MAX];  /* acquires waiting now (lock kinds) */
    int64_t holders[ZKC_METRICS_KINDS_MAX];  /* holds now (lock, rwlock, semaphore) */
    zkc_histogram hist[ZKC_METRICS_HISTS_MAX];
    uint64_t requests[ZKC_REQ_KINDS_MAX];    /* requests sent, by zkc_req_kind */
    uint64_t writes[ZKC_REQ_KINDS_MAX];      /* write ops sent (alone or in a multi), by zkc_req_kind */
    uint64_t conflicts, retries, callbacks;  /* as in zkc_stats */
    uint64_t sessions, suspended, reconnected, lost;
    uint64_t disconnected_ms;                /* time without a connection, ended disconnections */
    int32_t connected;                       /* 1 now connected */
    int32_t reserved0;
} zkc_metrics;

/* Fill *m (m->size set by the caller; at least offsetof(zkc_metrics,
 * ops_started), else ZKC_EINVAL). Any thread; no server involved. */
ZKC_EXTERN int zkc_client_metrics(zkc_client *c, zkc_metrics *m);
/* Label operations on paths under `prefix` (the path itself or below it) with
 * prefix="<label>" in the exposition: one series per registered prefix, never
 * one per path. The first matching registration wins. label: [a-zA-Z0-9_:./-],
 * 1..63 characters. Register before the operations to be labelled start (they
 * are matched when submitted). ZKC_ELIMIT past ZKC_METRICS_PREFIXES_MAX. */
ZKC_EXTERN int zkc_client_metrics_label_prefix(zkc_client *c, const char *prefix, const char *label);
/* A label added to every series of this client's exposition (e.g. worker="3",
 * so several processes' files can be merged). name: [a-zA-Z_][a-zA-Z0-9_]*,
 * value: printable, escaped as the format requires. ZKC_ELIMIT past
 * ZKC_METRICS_CONST_LABELS_MAX. */
ZKC_EXTERN int zkc_client_metrics_const_label(zkc_client *c, const char *name, const char *value);
/* The Prometheus text exposition format (version 0.0.4) of the client's metrics
 * into buf, like snprintf: writes at most len bytes including a terminating
 * NUL, returns the length the whole text needs (without the NUL), or a
 * negative ZKC_E* code. buf may be NULL when len is 0. */
ZKC_EXTERN long zkc_client_metrics_format(zkc_client *c, char *buf, size_t len);
/* The same text written to fd (all of it, retrying short writes and EINTR).
 * 0, ZKC_ENOMEM, or ZKC_ESERVER with zkc_errmsg naming errno. */
ZKC_EXTERN int zkc_client_metrics_write(zkc_client *c, int fd);

/* ------------------------------------------------------------------ locks */

/* A lock object is one contender in the queue at `path`: it holds or waits.
 * Two lock objects on one client and path exclude each other. A hold belongs to
 * the object, not to a thread: any thread may release it. Acquiring again
 * through an object that holds counts up; release counts down.
 *
 * Protocol (compatible with Curator's InterProcessMutex and, for READ/WRITE,
 * InterProcessReadWriteLock): each contender creates an EPHEMERAL_SEQUENTIAL
 * child "_c_<uuid>-lock-<seq>" (or "-__READ__" / "-__WRIT__"); the queue is
 * ordered by the sequence suffix only (serial-number arithmetic, so it survives
 * the 32-bit wrap), whatever the name's prefix; a waiter watches only the node
 * that blocks it.
 *
 * FENCING TOKEN: the czxid of the holder's node, a cluster-wide transaction id.
 * Successive exclusive holds of one path get strictly increasing tokens. A
 * protected resource should remember the largest token it has accepted and
 * reject writes carrying a smaller one: that is what keeps a paused or
 * partitioned former holder from doing harm, which no timer can promise.
 * Shared holds (readers, semaphore leases) get tokens larger than every
 * exclusive hold that ended before they were granted; concurrent shared holds
 * are not ordered among themselves. */
typedef struct zkc_lock zkc_lock;

typedef enum {
    ZKC_LOCK_MUTEX = 0,  /* exclusive */
    ZKC_LOCK_READ = 1,   /* shared with other readers; use zkc_rwlock_create */
    ZKC_LOCK_WRITE = 2,  /* exclusive against readers and writers */
    ZKC_LOCK_SEMAPHORE = 3 /* up to max_leases holders */
} zkc_lock_kind;

typedef enum {
    ZKC_LOCK_EVENT_SUSPENDED = 1,   /* the hold MAY be lost: connection dropped */
    ZKC_LOCK_EVENT_RECONNECTED = 2, /* same session back: still held */
    ZKC_LOCK_EVENT_LOST = 3         /* the hold IS lost: session ended or node deleted */
} zkc_lock_event;

typedef void (*zkc_lock_cb)(zkc_lock *l, int status, int64_t token, void *ud);
typedef void (*zkc_lock_event_fn)(zkc_lock *l, zkc_lock_event ev, void *ud);

/* Create a mutex at `path` (parent nodes are created on demand, the lock node
 * itself as a CONTAINER). Nothing is sent to the server until acquire. */
ZKC_EXTERN int zkc_lock_create(zkc_client *c, const char *path, zkc_lock **out);
/* Cancel a pending acquire (callback gets ZKC_ECANCELED), release every count
 * of a hold (the node is deleted), free the object. */
ZKC_EXTERN void zkc_lock_destroy(zkc_lock *l);

/* Blocking acquire. 0 on success (*token may be NULL). ZKC_ETIMEDOUT if the
 * timeout passed (timeout 0: the lock was not free at once), ZKC_ESESSIONLOST if
 * the session ended while waiting, ZKC_ECONNLOSS, ZKC_ECANCELED, ZKC_EBUSY if an
 * acquire of this object is already running. No node is left behind on failure. */
ZKC_EXTERN int zkc_lock_acquire(zkc_lock *l, int timeout_ms, int64_t *token);
/* Callback acquire; cb runs exactly once on the dispatch thread. */
ZKC_EXTERN int zkc_lock_acquire_async(zkc_lock *l, int timeout_ms, zkc_lock_cb cb, void *ud);
/* Cancel a pending acquire (blocks until the engine has processed it). Safe to
 * race with the grant: either the acquire reports success (and the object
 * holds), or ZKC_ECANCELED (and its node is deleted). Returns 0 whether or not
 * an acquire was pending. */
ZKC_EXTERN int zkc_lock_cancel(zkc_lock *l);
/* Count down one hold; the last one deletes the node (bounded by the operation
 * timeout). ZKC_ENOTHELD if the object holds nothing. If the hold had already
 * been lost (session ended, or the node deleted by someone else), the first
 * release says so with ZKC_ESESSIONLOST (your critical section was not
 * protected to its end) and resets the object. */
ZKC_EXTERN int zkc_lock_release(zkc_lock *l);
/* Callback form: cb runs exactly once on the dispatch thread with the status
 * zkc_lock_release would return (token 0): 0 when the count went down or the
 * node was deleted (or handed to the janitor after a silent server),
 * ZKC_ENOTHELD, ZKC_ESESSIONLOST as above. Destroying the lock or the client
 * completes a release in flight with 0 (the node goes either way); one the
 * engine had not started when the client's destroy began gets ZKC_ECLOSED
 * (its hold ends with the session the destroy closes). */
ZKC_EXTERN int zkc_lock_release_async(zkc_lock *l, zkc_lock_cb cb, void *ud);

/* Fencing token of the current hold, or ZKC_ENOTHELD. */
ZKC_EXTERN int zkc_lock_token(zkc_lock *l, int64_t *token);
/* 1 if the object holds the lock and the client is connected and has heard
 * from a server within the last third of the session timeout; 0 otherwise.
 * The answer can be stale the moment it returns: only fencing makes writes safe. */
ZKC_EXTERN int zkc_lock_is_held(zkc_lock *l);
/* Lock-lost listener for this object (NULL removes it). Dispatch thread. */
ZKC_EXTERN void zkc_lock_set_listener(zkc_lock *l, zkc_lock_event_fn fn, void *ud);
ZKC_EXTERN const char *zkc_lock_path(zkc_lock *l);

/* Read/write lock at `path` (Curator InterProcessReadWriteLock compatible): two
 * lock objects on one queue. Many readers or one writer; fair: a writer waits
 * for everyone queued before it, a reader only for the last writer before it.
 * The write lock's holder may also take the read lock (downgrade: take read,
 * then release write). Upgrading read to write is not supported: it would
 * deadlock against another upgrader; release the read lock first. */
typedef struct zkc_rwlock zkc_rwlock;
ZKC_EXTERN int zkc_rwlock_create(zkc_client *c, const char *path, zkc_rwlock **out);
ZKC_EXTERN zkc_lock *zkc_rwlock_read(zkc_rwlock *rw);   /* owned by rw */
ZKC_EXTERN zkc_lock *zkc_rwlock_write(zkc_rwlock *rw);  /* owned by rw */
ZKC_EXTERN void zkc_rwlock_destroy(zkc_rwlock *rw);

/* Counting semaphore: up to max_leases holders of `path` at once, FIFO among
 * waiters, a lease tied to its holder's session. The lease count is stored in
 * the semaphore node; a client configured with another count gets ZKC_ECONFIG
 * from acquire. Use the zkc_lock_* calls on the returned object. Watches: each
 * contender watches its own node (to learn if it is deleted); a waiter also
 * watches the waiter ahead of it, and only the first waiter watches the
 * children list (any release among the holders admits it). A holder that was
 * the first waiter touches its own node when admitted so the waiter behind it
 * moves up: at most 2 watches per contender plus 1. */
ZKC_EXTERN int zkc_semaphore_create(zkc_client *c, const char *path, int max_leases, zkc_lock **out);

/* Multi-lock: take several locks (mutexes, read or write sides, semaphores)
 * all or nothing. They are taken one at a time in one canonical order (by path,
 * then kind), so two multi-locks over overlapping sets cannot deadlock; on a
 * timeout or error every lock taken so far is released. The locks stay owned
 * by the caller; destroy the multilock before them. */
typedef struct zkc_multilock zkc_multilock;
typedef void (*zkc_multilock_cb)(zkc_multilock *m, int status, void *ud);
ZKC_EXTERN int zkc_multilock_create(zkc_lock *const *locks, int n, zkc_multilock **out);
ZKC_EXTERN int zkc_multilock_acquire(zkc_multilock *m, int timeout_ms);
ZKC_EXTERN int zkc_multilock_acquire_async(zkc_multilock *m, int timeout_ms, zkc_multilock_cb cb, void *ud);
/* Release every lock, in reverse canonical order; the first error among them
 * is returned (each lock is released anyway). ZKC_ENOTHELD if not held. */
ZKC_EXTERN int zkc_multilock_release(zkc_multilock *m);
/* Callback form: the locks are released one after another by their
 * zkc_lock_release_async; cb runs exactly once on the dispatch thread, after
 * the last, with the first error. A submission that fails (ZKC_ENOTHELD,
 * ZKC_EBUSY while acquiring or releasing, ZKC_EINVAL) never calls cb. */
ZKC_EXTERN int zkc_multilock_release_async(zkc_multilock *m, zkc_multilock_cb cb, void *ud);
ZKC_EXTERN void zkc_multilock_destroy(zkc_multilock *m);

/* Queue introspection: the contenders at `path` (holders and waiters, of any
 * lock kind, zkcoord's or a peer library's recognised names) in queue order. */
typedef struct zkc_lock_contender {
    char *name;          /* child node name */
    int64_t sequence;    /* parsed sequence suffix */
    int64_t czxid;       /* creation zxid (fencing token if it holds) */
    int64_t ctime_ms;    /* creation time, server clock, ms since the epoch */
    int64_t session_id;  /* owner session (ephemeralOwner) */
    int holds;           /* 1 if this entry holds (or would hold) the lock now */
    int kind;            /* zkc_lock_kind guessed from the name; -1 unknown */
} zkc_lock_contender;
ZKC_EXTERN int zkc_lock_contenders(zkc_client *c, const char *path, zkc_lock_contender **entries, int *count);
/* Callback form: cb gets the entries (NULL and 0 unless status is 0), which
 * are freed when it returns. */
typedef void (*zkc_lock_contenders_cb)(zkc_client *c, int status, const zkc_lock_contender *entries, int count,
                                       void *ud);
ZKC_EXTERN int zkc_lock_contenders_async(zkc_client *c, const char *path, zkc_lock_contenders_cb cb, void *ud);
ZKC_EXTERN void zkc_lock_contenders_free(zkc_lock_contender *entries, int count);

/* Change watches: be told when a lock's queue (zkc_lock_contenders_watch) or
 * a SKU's stock (zkc_inventory_stock_watch) may have changed, then read it
 * again with the plain calls (zkc_lock_contenders, zkc_inventory_stock). The
 * watch re-arms itself on every change; it reports, it does not carry data, so
 * a read made after a CHANGED call sees that change and any before it.
 *
 * fn runs on the dispatch thread, one call at a time, like every callback:
 *   ZKC_WATCH_CHANGED    (status 0) read again now. The first call comes once
 *                        the watch is armed; then one per change, several
 *                        changes close together may give one call, and a call
 *                        may come with nothing changed (after RECONNECTED,
 *                        where a change may have been missed, zkcoord says
 *                        "read again" rather than guess).
 *   ZKC_WATCH_SUSPENDED  (status 0) the connection dropped: what you read last
 *                        may be stale. A CHANGED follows once it is back.
 *   ZKC_WATCH_LOST       (ZKC_ESESSIONLOST) the session ended, every change
 *                        since may be missed; the watch re-arms on the next
 *                        session and a CHANGED follows.
 *   ZKC_WATCH_STOPPED    final, exactly once: status 0 after zkc_watch_stop,
 *                        ZKC_ECANCELED when the client is destroyed, or the
 *                        error that ended it (ZKC_ENOAUTH, ...). No call after.
 * Call zkc_watch_stop exactly once per watch, also after STOPPED came on its
 * own; it frees w. From any thread but the dispatch thread it returns after
 * STOPPED has returned, so no call of fn runs after it; from a callback it
 * returns at once and STOPPED is the next and last call of fn. */
typedef struct zkc_watch zkc_watch;
typedef enum {
    ZKC_WATCH_CHANGED = 1,
    ZKC_WATCH_SUSPENDED = 2,
    ZKC_WATCH_LOST = 3,
    ZKC_WATCH_STOPPED = 4
} zkc_watch_event;
typedef void (*zkc_watch_fn)(zkc_watch *w, zkc_watch_event event, int status, void *ud);
/* Watch the queue at `path` (its children, and its data: a semaphore's lease
 * count); a path with no node yet is fine (its creation is a change). Returns
 * 0 and *out, or an error (fn is never called then). */
ZKC_EXTERN int zkc_lock_contenders_watch(zkc_client *c, const char *path, zkc_watch_fn fn, void *ud,
                                         zkc_watch **out);
ZKC_EXTERN void zkc_watch_stop(zkc_watch *w);

/* ---------------------------------------------------------------- election */

/* Leader election: one leader at a time among the participants at `path`, for
 * singletons (one reaper, one importer). A participant is an EPHEMERAL_SEQUENTIAL
 * child "_c_<uuid>-latch-<seq>" of `path` holding its participant id (the node
 * names of Curator's LeaderLatch, which shares an election with zkcoord: see
 * README, Interoperability); the lowest sequence leads, each waiter watches only
 * the node ahead of it. Leadership is granted only after the leader's node was
 * read back with ephemeralOwner equal to the current session id, so a node left
 * by an earlier session of this client is never taken as ours.
 *
 * TERM TOKEN: the czxid of the leader's node. Every term is a new node, so
 * successive terms at one path get strictly increasing tokens; a resource the
 * leader writes to should refuse tokens smaller than the largest it has seen.
 *
 * Events go to the leader only: SUSPENDED (connection dropped: leadership MAY
 * be lost; another participant may lead once the servers expire the session),
 * RECONNECTED (same session: still leader), LOST (leadership IS over: session
 * ended or presumed ended, or the node was deleted). A LOST term is not taken
 * up again by itself: call zkc_election_lead again to stand for a new term. */
typedef struct zkc_election zkc_election;

typedef enum {
    ZKC_ELECTION_EVENT_SUSPENDED = 1,   /* leadership MAY be lost: connection dropped */
    ZKC_ELECTION_EVENT_RECONNECTED = 2, /* same session back: still leader */
    ZKC_ELECTION_EVENT_LOST = 3         /* leadership IS lost: stop acting as leader */
} zkc_election_event;

/* status 0: we lead, with `token`; else ZKC_ETIMEDOUT, ZKC_ECANCELED,
 * ZKC_ESESSIONLOST (the session ended while standing) or another error. */
typedef void (*zkc_election_cb)(zkc_election *e, int status, int64_t token, void *ud);
typedef void (*zkc_election_event_fn)(zkc_election *e, zkc_election_event ev, void *ud);

/* A participant at `path` (parents created on demand, the election node as a
 * CONTAINER). participant_id: a NUL-terminated name (1..1024 bytes) that others
 * read with zkc_election_leader; data (may be NULL, len up to 65536) is stored
 * after it, separated by a NUL byte. Nothing is sent until zkc_election_lead. */
ZKC_EXTERN int zkc_election_create(zkc_client *c, const char *path, const char *participant_id, const void *data,
                                   int len, zkc_election **out);
/* Resign if leading (the node goes now, or with the janitor), cancel a pending
 * lead (its callback runs with ZKC_ECANCELED), free. */
ZKC_EXTERN void zkc_election_destroy(zkc_election *e);
/* Stand and wait to lead. 0 on success (*token may be NULL); ZKC_ETIMEDOUT
 * when not leader within timeout_ms (0: lead at once or fail; ZKC_FOREVER),
 * ZKC_ECANCELED, ZKC_ESESSIONLOST, ZKC_EBUSY (a lead already running). On any
 * failure our node is deleted (or handed to the janitor): nobody is blocked by
 * it. Already leading: 0 at once with the current token. */
ZKC_EXTERN int zkc_election_lead(zkc_election *e, int timeout_ms, int64_t *token);
/* As zkc_election_lead; cb runs exactly once (led, error, timeout or cancel). */
ZKC_EXTERN int zkc_election_lead_async(zkc_election *e, int timeout_ms, zkc_election_cb cb, void *ud);
/* Cancel a pending lead (blocks until the engine has processed it; a lead that
 * already won stays won: resign then). Not from the engine thread. */
ZKC_EXTERN int zkc_election_cancel(zkc_election *e);
/* End our term: delete our node, so the next participant leads. ZKC_ENOTHELD
 * when not leading; ZKC_ESESSIONLOST when the term had already been LOST. */
ZKC_EXTERN int zkc_election_resign(zkc_election *e);
/* As zkc_election_resign; cb runs exactly once, after the node is gone (or
 * handed to the janitor when the delete got no answer). */
typedef void (*zkc_election_resign_cb)(zkc_election *e, int status, void *ud);
ZKC_EXTERN int zkc_election_resign_async(zkc_election *e, zkc_election_resign_cb cb, void *ud);
/* The current term's token (czxid of our node); ZKC_ENOTHELD when not leading. */
ZKC_EXTERN int zkc_election_token(zkc_election *e, int64_t *token);
/* Guard of the current term (section "writes guarded by the lock"): its node,
 * version -1, the term's token. Writes guarded by it apply only while the term
 * lasts, else ZKC_EFENCED. ZKC_ENOTHELD when not leading (or the term was
 * LOST); ZKC_EINVAL for NULL. Local: no server is asked. */
typedef struct zkc_guard zkc_guard;
ZKC_EXTERN int zkc_election_guard(zkc_election *e, zkc_guard *out);
/* 1 while leading, not LOST, and connected. */
ZKC_EXTERN int zkc_election_is_leader(zkc_election *e);
ZKC_EXTERN void zkc_election_set_listener(zkc_election *e, zkc_election_event_fn fn, void *ud);
ZKC_EXTERN const char *zkc_election_path(zkc_election *e);

/* Who leads at `path`, as any client sees it (no participant needed): the
 * lowest participant's id and data (a peer library's node: its whole data is
 * the id), its term token and session. ZKC_ENONODE: nobody stands. A snapshot:
 * the term may end as it is read; only the leader's own token fences. */
typedef struct zkc_election_leader_info {
    char *participant_id; /* NUL-terminated */
    void *data;           /* NULL when none; a NUL byte follows its len bytes */
    int len;
    int64_t token;        /* czxid of the leader's node */
    int64_t session_id;   /* ephemeralOwner of the leader's node */
    char *node;           /* the leader's node name */
} zkc_election_leader_info;
ZKC_EXTERN int zkc_election_leader(zkc_client *c, const char *path, zkc_election_leader_info *out);
/* info lives until the callback returns. */
typedef void (*zkc_election_leader_cb)(zkc_client *c, int status, const zkc_election_leader_info *info, void *ud);
ZKC_EXTERN int zkc_election_leader_async(zkc_client *c, const char *path, zkc_election_leader_cb cb, void *ud);
/* Frees what zkc_election_leader filled in (not the struct itself). */
ZKC_EXTERN void zkc_election_leader_free(zkc_election_leader_info *info);

/* ------------------------------------------------- writes guarded by the lock
 *
 * A fencing token protects a store only if that store checks it. For what a
 * holder writes to ZooKeeper itself (counters, reservations, its own nodes), a
 * guard makes the write conditional on the hold: the write goes in one
 * ZooKeeper transaction with a check that the holder's lock node still exists.
 * A holder paused past its session's expiry (GC pause, SIGSTOP, partition)
 * whose lock has passed on cannot write any more: its node is gone, so the
 * whole transaction fails on the server, whatever the paused process believes.
 *
 * A guard is a value (copy it freely): the path of a node that must exist and
 * the token of the hold it stands for. Guarded calls: zkc_counter_add and
 * zkc_counter_multi_add (a field of their options), the zkc_guarded_* writes
 * below, and the inventory's restock, confirm and return through an object
 * given zkc_inventory_set_guard. zkc_lock_guard takes one from a held
 * lock, zkc_election_guard from a leader's term; any node of your own can
 * make one. A lock's (or term's) node name carries a random id per acquire,
 * so a node of a later hold never has the path of an earlier one: "exists"
 * means "that hold has not ended". The guard does not keep a hold alive and needs no release.
 *
 * Failure semantics of every guarded write:
 *   ZKC_EFENCED   the guard's node was gone (or, with a version, changed) when
 *                 the write reached the leader: nothing was written. The hold
 *                 has ended (released, session expired, node deleted): stop
 *                 the critical section, take the lock again, re-read.
 *   other errors  as for the unguarded call. Where that call is exactly once
 *                 (counter adds), so is the guarded one: after a connection
 *                 loss the outcome is decided first, and a check that fails
 *                 then is a decided "not applied".
 * A guarded write succeeded only if the hold was intact at the moment the
 * servers applied it (the check and the write are one atomic transaction).
 * Nothing is promised about the moment after: a write made just before the
 * hold ended stands. SUSPENDED and LOST do not refuse a guarded write by
 * themselves: the server's check decides (a LOST presumed by the client while
 * the servers still keep the node lets the write through, rightly: the lock
 * has not passed on). Cost: one more op in the same transaction (no extra
 * round trip); the check needs READ permission on the lock node. */
#define ZKC_GUARD_PATH_MAX 1025
struct zkc_guard {
    char path[ZKC_GUARD_PATH_MAX]; /* node that must exist for the write to apply */
    int32_t version;               /* -1: any version; else the node's exact data version */
    int64_t token;                 /* the hold's fencing token (for your logs and stores) */
};

/* Guard of the object's current hold (its node, version -1, its token).
 * ZKC_ENOTHELD if the object holds nothing (or its hold was lost); ZKC_EINVAL
 * for NULL. Local: no server is asked (the guard is checked at write time). */
ZKC_EXTERN int zkc_lock_guard(zkc_lock *l, zkc_guard *out);

/* Raw writes guarded by g (not NULL), exactly once: each is a transaction of
 * the check, the write and this client's exactly-once marker (see counters),
 * so a lost reply is decided rather than repeated; ZKC_EUNKNOWN only if no
 * server answered within the operation timeout. ZKC_EFENCED: see above.
 *   create: a persistent node (its parent must exist: ZKC_ENONODE otherwise;
 *           ZKC_EEXISTS if it exists).
 *   set:    version -1 for any; ZKC_EMISMATCH if the node's version differs,
 *           ZKC_ENONODE if it is missing.
 *   delete: version -1 for any; as set.
 * The callback runs exactly once (status as above) on the dispatch thread. */
typedef void (*zkc_guarded_cb)(zkc_client *c, int status, void *ud);
ZKC_EXTERN int zkc_guarded_create(zkc_client *c, const zkc_guard *g, const char *path, const void *data, int len);
ZKC_EXTERN int zkc_guarded_create_async(zkc_client *c, const zkc_guard *g, const char *path, const void *data,
                                        int len, zkc_guarded_cb cb, void *ud);
ZKC_EXTERN int zkc_guarded_set(zkc_client *c, const zkc_guard *g, const char *path, const void *data, int len,
                               int version);
ZKC_EXTERN int zkc_guarded_set_async(zkc_client *c, const zkc_guard *g, const char *path, const void *data,
                                     int len, int version, zkc_guarded_cb cb, void *ud);
ZKC_EXTERN int zkc_guarded_delete(zkc_client *c, const zkc_guard *g, const char *path, int version);
ZKC_EXTERN int zkc_guarded_delete_async(zkc_client *c, const zkc_guard *g, const char *path, int version,
                                        zkc_guarded_cb cb, void *ud);

/* ---------------------------------------------------------------- counters */

/* A counter is one znode holding a number, updated by versioned setData in a
 * multi with a per-client marker (exactly once across connection loss, see
 * README). Concurrent adds of one client to one path are combined into one
 * transaction. Between clients it is optimistic CAS made fair: a client that
 * keeps losing leaves an ephemeral "zkc-waiting-<uuid>" child on the counter
 * node while it waits, and winners yield to it (README: Fairness). */
typedef struct zkc_counter zkc_counter;

typedef enum {
    ZKC_FMT_INT64 = 0,   /* 8-byte big-endian (Curator DistributedAtomicLong) */
    ZKC_FMT_INT32 = 1,   /* 4-byte big-endian (Curator SharedCount, kazoo support_curator) */
    ZKC_FMT_DECIMAL = 2  /* decimal text (kazoo Counter) */
} zkc_format;

/* zkc_counter_options.queued */
#define ZKC_COUNTER_QUEUED_OFF 0
#define ZKC_COUNTER_QUEUED_ALWAYS 1
#define ZKC_COUNTER_QUEUED_AUTO 2

typedef struct zkc_counter_options {
    zkc_format format;   /* default ZKC_FMT_INT64 */
    int64_t initial;     /* value of a missing node or empty data (default 0) */
    int max_attempts;    /* CAS rounds before ZKC_ECONTENDED (default 64) */
    int no_combine;      /* 1: never merge concurrent adds of this process */
    int queued;          /* ZKC_COUNTER_QUEUED_OFF (0, the default): every
                          * update is a compare-and-set of the counter node.
                          * ZKC_COUNTER_QUEUED_ALWAYS (1): plain adds (bounds
                          * allowed; no key, no guard) are queued and applied in
                          * batches, in queue order, by whichever client is at
                          * the head of the counter's queue (<meta_root>/cq/...):
                          * for a counter hot across processes, where
                          * compare-and-set rounds keep losing. Exact like the
                          * direct path; a caller that gives up while queued
                          * hears ZKC_EUNKNOWN; a batch still queued after the
                          * session timeout and 3/4 of the operation timeout
                          * (applies that kept losing) is withdrawn:
                          * ZKC_ECONTENDED, nothing written. ZKC_COUNTER_QUEUED_AUTO (2): each
                          * client starts direct (an uncontended add stays one
                          * write), switches its plain adds into the queue after
                          * measured contention (4 rounds lost, or other
                          * clients' fairness beacons seen, within 8 direct
                          * batches) and back once its own batch was the only
                          * one in the queue 8 batches in a row (twice as many
                          * after each quick return). Other values: ZKC_EINVAL.
                          * Objects of one client on one path share one mode:
                          * ALWAYS over AUTO over OFF. (README: Queued counters.)
                          * Takes the place of one reserved pointer: the
                          * struct's size is unchanged. */
    void *reserved[3];
} zkc_counter_options;
ZKC_EXTERN void zkc_counter_options_init(zkc_counter_options *o);

/* A bounded add's limits: refused with ZKC_EBOUND (nothing written) if the
 * result would leave [floor, ceiling]; each side counts only when its has_
 * flag is set (zero-initialised: unbounded). floor > ceiling, both set, is
 * ZKC_EINVAL. Used by zkc_update and zkc_counter_op alike. */
typedef struct zkc_bounds {
    int has_floor, has_ceiling;
    int64_t floor, ceiling;
} zkc_bounds;

/* An update's optional parameters. */
typedef struct zkc_update {
    const char *key;     /* idempotency key (e.g. an order id) or NULL */
    zkc_bounds bounds;   /* bounded add (zkc_counter_add only) */
    const zkc_guard *guard; /* or NULL: apply only while that hold lasts, else ZKC_EFENCED (copied at the call) */
} zkc_update;

/* On success the update's before/after. On ZKC_EBOUND, ZKC_EOVERFLOW and
 * ZKC_EMISMATCH (nothing written) before == after == the value it was judged
 * on; on any other error all zero. */
typedef struct zkc_counter_result {
    int64_t before, after;
    int replayed;        /* 1: the key had been applied before; these are that first outcome */
} zkc_counter_result;

typedef void (*zkc_counter_cb)(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud);

/* opts may be NULL (defaults). The node is created on first write if missing.
 * Objects of one client on one path share its state (queue, cache), which must
 * agree on format and initial value (else ZKC_ECONFIG); that state is freed
 * once no object is open on the path and no update of it is in flight. */
ZKC_EXTERN int zkc_counter_create(zkc_client *c, const char *path, const zkc_counter_options *opts,
                                  zkc_counter **out);
ZKC_EXTERN void zkc_counter_destroy(zkc_counter *ctr);
ZKC_EXTERN const char *zkc_counter_path(zkc_counter *ctr);

/* Read the value from the server this client is connected to. Like any
 * ZooKeeper read it may lag the leader by a moment: a write another client
 * completed just before may not show yet (updates are never based on such a
 * read: a stale base fails its version check and is re-read). When that
 * matters, zkc_counter_get_fresh (section "fresh reads"). */
ZKC_EXTERN int zkc_counter_get(zkc_counter *ctr, int64_t *value);
ZKC_EXTERN int zkc_counter_set(zkc_counter *ctr, int64_t value);
/* Add `delta` exactly once. u may be NULL. */
ZKC_EXTERN int zkc_counter_add(zkc_counter *ctr, int64_t delta, const zkc_update *u, zkc_counter_result *r);
/* Set to `value` only if the current value is `expect`; ZKC_EMISMATCH (with the
 * current value in r->before) otherwise. */
ZKC_EXTERN int zkc_counter_cas(zkc_counter *ctr, int64_t expect, int64_t value, zkc_counter_result *r);

ZKC_EXTERN int zkc_counter_get_async(zkc_counter *ctr, zkc_counter_cb cb, void *ud);
ZKC_EXTERN int zkc_counter_set_async(zkc_counter *ctr, int64_t value, zkc_counter_cb cb, void *ud);
ZKC_EXTERN int zkc_counter_add_async(zkc_counter *ctr, int64_t delta, const zkc_update *u,
                                     zkc_counter_cb cb, void *ud);
ZKC_EXTERN int zkc_counter_cas_async(zkc_counter *ctr, int64_t expect, int64_t value,
                                     zkc_counter_cb cb, void *ud);

/* All-or-nothing update of several counters of one client in one ZooKeeper
 * transaction (e.g. reserve {A: -2, B: -1}), each with its own bounds. Results
 * go to results[i] (may be NULL). ZKC_EBOUND names the first refusing counter in
 * *failed_index (may be NULL). */
typedef struct zkc_counter_op {
    zkc_counter *counter;
    int64_t delta;
    zkc_bounds bounds;
    const zkc_guard *guard; /* or NULL; every distinct guard of the ops joins the one
                             * transaction: all apply only while every one holds */
} zkc_counter_op;
ZKC_EXTERN int zkc_counter_multi_add(zkc_client *c, const zkc_counter_op *ops, int n, const char *key,
                                     zkc_counter_result *results, int *failed_index);
/* Callback form: cb gets the n results (NULL unless status is 0) and the
 * refusing op's index (-1 unless ZKC_EBOUND or ZKC_EOVERFLOW). */
typedef void (*zkc_counter_multi_cb)(zkc_client *c, int status, const zkc_counter_result *results, int n,
                                     int failed_index, void *ud);
ZKC_EXTERN int zkc_counter_multi_add_async(zkc_client *c, const zkc_counter_op *ops, int n, const char *key,
                                           zkc_counter_multi_cb cb, void *ud);

/* Outcome of a keyed update from this or any earlier process, while the key is
 * retained: 0 and the first outcome, or ZKC_ENONODE if the key was never applied.
 * A plain read, like zkc_counter_get: a key that another live session applied a
 * moment ago may not show yet. A repeat of the update (zkc_counter_add with the
 * same key) is always decided correctly, since it writes. */
ZKC_EXTERN int zkc_counter_lookup(zkc_client *c, const char *key, zkc_counter_result *r);
/* Callback form: cb gets the key and the outcome (NULL unless status is 0). */
typedef void (*zkc_counter_lookup_cb)(zkc_client *c, int status, const char *key, const zkc_counter_result *r,
                                      void *ud);
ZKC_EXTERN int zkc_counter_lookup_async(zkc_client *c, const char *key, zkc_counter_lookup_cb cb, void *ud);

/* Admin: after 2^32-1 updates a node's version reaches -1 and no conditional
 * write is possible (ZKC_EVERSIONWRAP). Rebase recreates the node with its
 * current value and version 0. Run it while no non-zkcoord writer updates the
 * node. ZKC_EBUSY if the node has children (zkcoord writers waiting on it leave
 * an ephemeral "zkc-waiting-*" child there while they wait: see README). */
ZKC_EXTERN int zkc_counter_rebase(zkc_counter *ctr);
/* Callback form: cb gets the status (r is NULL). */
ZKC_EXTERN int zkc_counter_rebase_async(zkc_counter *ctr, zkc_counter_cb cb, void *ud);

/* ------------------------------------------------------------------ admin */

typedef struct zkc_cleanup_report {
    int64_t examined;        /* nodes looked at */
    int64_t markers;         /* exactly-once markers of client instances idle past retention */
    int64_t keys;            /* idempotency keys older than retention */
    int64_t empty_parents;   /* empty lock/queue parents under lock_root */
} zkc_cleanup_report;

/* Delete what the recipes leave behind and no longer need, judged by the
 * servers' clock (node mtime) against the client's marker_retention_s: markers
 * and keys under meta_root, and (if lock_root is not NULL) empty lock parents
 * below lock_root that have not changed for that long. dry_run: count, delete
 * nothing. Reservation records are reaped by zkc_inventory_reap. Safe to run
 * while the application runs: every delete is conditional on the version
 * examined, and a marker in use is recreated by its owner. The servers' clock
 * is read first, by an empty write of <meta_root>/clock: ZKC_EUNKNOWN when that
 * write got no answer within the operation timeout (it may have been applied;
 * nothing was deleted: run the cleanup again), ZKC_ECONNLOSS when it could not
 * be sent; a directory that cannot be listed (ZKC_ECONNLOSS, ...) ends the pass
 * with what was deleted before it in the report. */
ZKC_EXTERN int zkc_admin_cleanup(zkc_client *c, const char *lock_root, int dry_run, zkc_cleanup_report *out);
/* Callback form: cb gets the report (what was done before a failure, too). */
typedef void (*zkc_admin_cleanup_cb)(zkc_client *c, int status, const zkc_cleanup_report *report, void *ud);
ZKC_EXTERN int zkc_admin_cleanup_async(zkc_client *c, const char *lock_root, int dry_run, zkc_admin_cleanup_cb cb,
                                       void *ud);

/* ------------------------------------------------------ inventory reservation
 *
 * Queue-managed stock for SKUs under a root path. Requests for one SKU are
 * served in arrival order (strict FIFO: a request that does not fit and waits
 * for restock blocks the ones behind it until stock arrives or it times out).
 * Every request carries an id (an order id, say): repeating it never reserves
 * twice, and its outcome can be looked up after a restart or a session loss.
 * A multi-line request reserves all its lines or none, and is queued in all its
 * SKUs' queues in one transaction, so every queue sees one arrival order and
 * two multi-line orders cannot wait on each other in a cycle. Requests one
 * client has in flight together may be queued by one shared transaction; they
 * keep the order in which that client became ready to queue them. A reservation
 * holds units until confirmed (sold) or returned (zkc_inventory_return); one not confirmed
 * within hold_ms (server clock) is returned by zkc_inventory_reap, which any
 * client may run. Units are conserved: available + reserved + sold == total. */
typedef struct zkc_inventory zkc_inventory;

typedef enum {
    ZKC_INVENTORY_PENDING = 0,      /* queued, not decided yet */
    ZKC_INVENTORY_RESERVED = 1,     /* units held for the order */
    ZKC_INVENTORY_SOLD = 2,         /* confirmed */
    ZKC_INVENTORY_RETURNED = 3,    /* units given back by zkc_inventory_return */
    ZKC_INVENTORY_OUT_OF_STOCK = 4, /* refused (fail-fast) */
    ZKC_INVENTORY_TIMED_OUT = 5,    /* left the queue at its timeout */
    ZKC_INVENTORY_EXPIRED = 6,      /* reserved, not confirmed in time; units returned */
    ZKC_INVENTORY_ABANDONED = 7     /* its requester's session ended before a decision */
} zkc_inventory_state;
/* "PENDING", "RESERVED", ... (the words the records and the CLI use); "?"
 * for a value outside the enum. */
ZKC_EXTERN const char *zkc_inventory_state_name(zkc_inventory_state state);

/* Room for a request id, its terminating NUL included (id_out below). */
#define ZKC_INVENTORY_ID_MAX 64

typedef struct zkc_inventory_line {
    const char *sku;  /* node name: no '/', as for paths */
    int64_t qty;      /* > 0 */
} zkc_inventory_line;

typedef struct zkc_inventory_reserve_options {
    int wait_for_restock; /* 0 (default): ZKC_EOUTOFSTOCK at once when short */
    int hold_ms;          /* reservation lifetime until confirm (default 600000) */
    void *reserved[4];
} zkc_inventory_reserve_options;

typedef struct zkc_inventory_stock_info {
    int64_t available, reserved, sold, total;
    int queue_length;
} zkc_inventory_stock_info;

typedef void (*zkc_inventory_reserve_cb)(zkc_inventory *inv, int status, const char *id, zkc_inventory_state state, void *ud);
/* Callbacks of the other calls' async forms (each runs exactly once on the
 * dispatch thread, as above): restock, confirm and return get the status;
 * stock gets the counts (NULL unless status is 0); reap gets how many
 * reservations it returned (also those returned before a failure). */
typedef void (*zkc_inventory_cb)(zkc_inventory *inv, int status, void *ud);
typedef void (*zkc_inventory_stock_cb)(zkc_inventory *inv, int status, const zkc_inventory_stock_info *info,
                                       void *ud);
typedef void (*zkc_inventory_reap_cb)(zkc_inventory *inv, int status, int64_t returned, void *ud);

ZKC_EXTERN int zkc_inventory_create(zkc_client *c, const char *root, zkc_inventory **out);
/* Async calls still in flight call back once, after or during destroy. */
ZKC_EXTERN void zkc_inventory_destroy(zkc_inventory *inv);
/* Add qty units (creates the SKU at first restock). Exactly once, also after a
 * connection loss; ZKC_EUNKNOWN only if no server answered within the
 * operation timeout. */
ZKC_EXTERN int zkc_inventory_restock(zkc_inventory *inv, const char *sku, int64_t qty);
ZKC_EXTERN int zkc_inventory_restock_async(zkc_inventory *inv, const char *sku, int64_t qty, zkc_inventory_cb cb,
                                           void *ud);
/* Syncs, then reads: up to date but for the gaps named in "fresh reads";
 * zkc_inventory_stock_fresh has none of them. */
ZKC_EXTERN int zkc_inventory_stock(zkc_inventory *inv, const char *sku, zkc_inventory_stock_info *out);
ZKC_EXTERN int zkc_inventory_stock_async(zkc_inventory *inv, const char *sku, zkc_inventory_stock_cb cb, void *ud);
/* A change watch (see zkc_lock_contenders_watch) on a SKU's counts and queue
 * length: CHANGED means read zkc_inventory_stock again. A SKU not restocked yet
 * is fine (its first restock is a change). The watch belongs to the client,
 * not to inv: it may outlive zkc_inventory_destroy. */
ZKC_EXTERN int zkc_inventory_stock_watch(zkc_inventory *inv, const char *sku, zkc_watch_fn fn, void *ud,
                                         zkc_watch **out);
/* Reserve lines all or nothing. id: caller's request id, or NULL to have one
 * generated (written to id_out, which must hold ZKC_INVENTORY_ID_MAX bytes; may be NULL if id is
 * given). 0 when reserved (or already reserved/sold under this id: *state says
 * which); ZKC_EOUTOFSTOCK, ZKC_ETIMEDOUT, ZKC_ECANCELED, ZKC_ESESSIONLOST (look
 * it up by id). */
ZKC_EXTERN int zkc_inventory_reserve(zkc_inventory *inv, const char *id, const zkc_inventory_line *lines, int n,
                                     const zkc_inventory_reserve_options *o, int timeout_ms, char *id_out,
                                     zkc_inventory_state *state);
ZKC_EXTERN int zkc_inventory_reserve_async(zkc_inventory *inv, const char *id, const zkc_inventory_line *lines, int n,
                                           const zkc_inventory_reserve_options *o, int timeout_ms, zkc_inventory_reserve_cb cb,
                                           void *ud);
/* Reserved -> sold; idempotent (0 if already sold). ZKC_EINVAL if not reserved. */
ZKC_EXTERN int zkc_inventory_confirm(zkc_inventory *inv, const char *id);
ZKC_EXTERN int zkc_inventory_confirm_async(zkc_inventory *inv, const char *id, zkc_inventory_cb cb, void *ud);
/* Reserved -> returned: the units go back to available; idempotent (0 if
 * already returned). A distinct verb from "cancel", which elsewhere aborts a
 * pending call. ZKC_EINVAL if the request is not reserved. */
ZKC_EXTERN int zkc_inventory_return(zkc_inventory *inv, const char *id);
ZKC_EXTERN int zkc_inventory_return_async(zkc_inventory *inv, const char *id, zkc_inventory_cb cb, void *ud);
ZKC_EXTERN int zkc_inventory_lookup(zkc_inventory *inv, const char *id, zkc_inventory_state *state);
/* cb gets the id and, on status 0, its state. */
ZKC_EXTERN int zkc_inventory_lookup_async(zkc_inventory *inv, const char *id, zkc_inventory_reserve_cb cb, void *ud);
/* Return the units of reservations past their hold time; *returned counts them. */
ZKC_EXTERN int zkc_inventory_reap(zkc_inventory *inv, int64_t *returned);
/* Guard (section "writes guarded by the lock") the restock, confirm and
 * return calls made through this object from now on: each is written only
 * while g's hold lasts, else it fails with ZKC_EFENCED and writes nothing.
 * g is copied; NULL removes the guard. A call already made keeps the guard it
 * was made with. Reserve, lookup, stock and reap are not guarded. Local: 0,
 * or ZKC_EINVAL for a bad guard. After a connection loss the outcome is
 * decided first: an attempt that had landed before the hold ended counts as
 * done (0), as for the unguarded calls. */
ZKC_EXTERN int zkc_inventory_set_guard(zkc_inventory *inv, const zkc_guard *g);
ZKC_EXTERN int zkc_inventory_reap_async(zkc_inventory *inv, zkc_inventory_reap_cb cb, void *ud);

/* ------------------------------------------------------------ fresh reads
 *
 * A plain read is answered by the server this client is connected to, which
 * may lag the leader: it can miss a write that another session was already
 * told had succeeded. A fresh read first sends a no-op transaction through the
 * quorum (a multi of one version check, any version, on the node it reads) and
 * reads after its reply, on the same session.
 *
 * Guarantee: the read sees every write acknowledged to any session before the
 * fresh read was called. The check is ordered by the leader after every write
 * it had committed, and a server answers it only once it has applied them.
 * This holds across leader changes: an acknowledged write was logged by a
 * quorum, a new leader is elected only with it, and a check (like any write)
 * needs a quorum, so an old leader cut off from the others cannot answer it
 * with stale data; the call waits, retries elsewhere, or fails
 * (ZKC_ECONNLOSS, ZKC_ETIMEDOUT: nothing read) within the operation timeout.
 * A reconnection before the read does not weaken it: a server takes a session
 * over only if it has seen everything that session has seen.
 *
 * Why not ZooKeeper's sync: sync then read (what zkc_inventory_stock does) is
 * weaker. Seen in tests/test_counter_faults (case "fresh"), right after leader
 * kills: a sync-then-read by a session on the new leader missed writes that a
 * follower had already acknowledged (2 failed runs of 3). Our reading of the
 * 3.8 server: the leader serves a sync from its own clients like a read, not
 * waiting for writes it has committed but not yet applied. And a sync needs
 * no quorum, so a partitioned old leader that has not yet noticed its loss
 * (up to about syncLimit ticks) can answer it with stale data.
 *
 * Not guaranteed: the value can change the moment the read returns; writes
 * acknowledged while the fresh read is in flight may or may not show.
 *
 * Cost: one quorum transaction (a log write on a majority of servers, like any
 * write) plus the read; it needs READ permission on the node only. Use it where
 * a decision needs it, not to poll. */
ZKC_EXTERN int zkc_counter_get_fresh(zkc_counter *ctr, int64_t *value);
ZKC_EXTERN int zkc_counter_get_fresh_async(zkc_counter *ctr, zkc_counter_cb cb, void *ud);
/* As zkc_lock_contenders; free with zkc_lock_contenders_free. */
ZKC_EXTERN int zkc_lock_contenders_fresh(zkc_client *c, const char *path, zkc_lock_contender **entries,
                                         int *count);
ZKC_EXTERN int zkc_lock_contenders_fresh_async(zkc_client *c, const char *path, zkc_lock_contenders_cb cb,
                                               void *ud);
ZKC_EXTERN int zkc_inventory_stock_fresh(zkc_inventory *inv, const char *sku, zkc_inventory_stock_info *out);
ZKC_EXTERN int zkc_inventory_stock_fresh_async(zkc_inventory *inv, const char *sku, zkc_inventory_stock_cb cb,
                                               void *ud);

/* ------------------------------------------------------------ rate limiter
 *
 * At most `permits` permits per fixed window of window_ms (server clock),
 * across every process. Each process takes permits from the shared window
 * counter `batch` at a time and hands them out locally, so ZooKeeper sees one
 * write per batch, not per permit. Bound: per window never more than `permits`,
 * where windows are counted on the servers' clock as each process estimates it
 * (the mtime of a node it writes, give or take half a round trip); against a
 * wall clock, any interval of window_ms may see up to 2 x permits (a burst at
 * the end of one window and the start of the next, or clock estimates that
 * differ). Unused local permits lapse at the window's end. One node holds the
 * window and its count, so nothing piles up. */
typedef struct zkc_ratelimit zkc_ratelimit;
typedef void (*zkc_ratelimit_cb)(zkc_ratelimit *rl, int status, void *ud);
ZKC_EXTERN int zkc_ratelimit_create(zkc_client *c, const char *path, int64_t permits, int window_ms, int batch,
                                    zkc_ratelimit **out);
ZKC_EXTERN void zkc_ratelimit_destroy(zkc_ratelimit *rl);
/* Take n permits, waiting for the next window up to timeout_ms (0: try). */
ZKC_EXTERN int zkc_ratelimit_acquire(zkc_ratelimit *rl, int64_t n, int timeout_ms);
ZKC_EXTERN int zkc_ratelimit_acquire_async(zkc_ratelimit *rl, int64_t n, int timeout_ms, zkc_ratelimit_cb cb,
                                           void *ud);

/* Hard rate limit (no boundary burst): a generic cell rate algorithm. Every
 * permit owns one slot of T = window_ms / permits (rounded up to a
 * microsecond) of the servers' clock; one counter node holds the end of the
 * last slot anyone took (the "theoretical arrival time", TAT, in microseconds
 * since the epoch). A process reserves `batch` consecutive slots with one
 * compare-and-set and grants them locally: n permits at time t take the next
 * n of its slots not yet passed, only if they end no later than t + burst x T
 * (otherwise it waits); slots that pass unused lapse. Bound: ANY interval of
 * length L on the servers' clock (as the processes estimate it: the mtime of a
 * node each writes, give or take half a round trip) sees at most
 *     permits x L / window_ms + burst
 * grants across every process. Measured on one other clock, widen L by the
 * processes' estimate errors. batch 1 is one write per permit and the fairest;
 * a larger batch reserves future slots for one process (others queue behind
 * them) for one write per batch. A reservation starts about one round trip
 * ahead (so its first slot has not passed when the reply comes): an idle
 * limiter grants about half a round trip after the write's reply.
 * A path serves one mode only: a hard-mode client that finds a value a day
 * ahead of the servers' clock (a fixed-window record) gets ZKC_ECONFIG. */
typedef enum {
    ZKC_RL_FIXED_WINDOW = 0, /* zkc_ratelimit_create: up to 2 x permits around a window boundary */
    ZKC_RL_HARD = 1          /* GCRA: any interval of L ms sees at most permits x L / window_ms + burst */
} zkc_ratelimit_mode;

typedef struct zkc_ratelimit_options {
    zkc_ratelimit_mode mode; /* default ZKC_RL_HARD */
    int64_t permits;         /* per window (required, >= 1) */
    int window_ms;           /* required, >= 10 */
    int batch;               /* permits (slots) taken per write (default 1) */
    int64_t burst;           /* HARD: permits that may be granted at once, >= 1 (default 1);
                              * a call may ask for at most burst permits */
    void *reserved[4];
} zkc_ratelimit_options;
ZKC_EXTERN void zkc_ratelimit_options_init(zkc_ratelimit_options *o);
/* Create a limiter of either mode. ZKC_EINVAL names a bad option. Nothing is
 * written until the first acquire. The acquire calls above serve both modes:
 * they fail with ZKC_EINVAL for n > burst (HARD) or n > permits (fixed window);
 * ZKC_ETIMEDOUT when the permits cannot be granted before the timeout (0: at
 * once); ZKC_ECONNLOSS / ZKC_EUNKNOWN when no server could be reached (no
 * permit was granted; a write whose outcome is unknown leaves its slots
 * unused, never used twice); ZKC_ECANCELED by destroy. Permits are not holds:
 * SUSPENDED and LOST only delay further grants. */
ZKC_EXTERN int zkc_ratelimit_create_opts(zkc_client *c, const char *path, const zkc_ratelimit_options *o,
                                         zkc_ratelimit **out);
/* The acquire calls again, telling where the permits count: *at_us (callback:
 * at_us, 0 unless status is 0) is an instant of the servers' clock in
 * microseconds since the epoch, in the coordinates the bound is stated in.
 * HARD: the start of the first of the n slots the permits own, which are
 * [at_us, at_us + n x T); slots are never shared, so for any instant a, the
 * permits of every process whose slots start in [a, a + window_ms) number at
 * most `permits`. The grant came at most (burst - n) x T before at_us and not
 * after it, as the granting process estimated the servers' clock. Fixed
 * window: the start of the window the permits were counted in. For logs and
 * audits; at_us may be NULL. */
typedef void (*zkc_ratelimit_at_cb)(zkc_ratelimit *rl, int status, int64_t at_us, void *ud);
ZKC_EXTERN int zkc_ratelimit_acquire_at(zkc_ratelimit *rl, int64_t n, int timeout_ms, int64_t *at_us);
ZKC_EXTERN int zkc_ratelimit_acquire_at_async(zkc_ratelimit *rl, int64_t n, int timeout_ms, zkc_ratelimit_at_cb cb,
                                              void *ud);

/* ---------------------------------------------------------- id generator
 *
 * Order numbers: 64-bit ids, unique across every process that uses `path`,
 * handed out from blocks leased with one exactly-once bounded counter add per
 * block (the node at `path` is an INT64 counter holding the highest id
 * leased; ids start at 1). A call that finds an id left in its generator's
 * block returns it without a round trip.
 *   - Never twice: not across processes, crashes, restarts, session loss or
 *     lost replies (the counter only moves up, and a lease's range is that of
 *     the one update that was applied).
 *   - Holes: ids of a block its process did not hand out before it exited or
 *     destroyed the generator are never used; nor is a block whose lease
 *     outcome stayed unknown. Ids are unique, not gap-free.
 *   - Order: strictly increasing within one generator (in hand-out order). A
 *     block leased after another block's lease was applied holds only larger
 *     ids; two processes' current blocks interleave in time.
 *   - A lease is not a hold: SUSPENDED or LOST does not invalidate leased ids,
 *     and no listener is needed. While no server is reachable, ids left in the
 *     block keep flowing; then calls wait for the next lease.
 *   - Growth: a block used up within grow_ms of its arrival doubles the next
 *     lease (up to max_block); one that lasted 8 x grow_ms halves it (down to
 *     block). Holes after a crash are at most one block.
 *
 * Gap-free mode (gap_free = 1; invoice numbers): no blocks. Every id is one
 * exactly-once add of 1 (one write, combined with this process's concurrent
 * takes; the first key in each of meta_root's 256 key buckets also creates
 * it, once ever), carrying an idempotency key, so the counter's value N means ids
 * 1..N were each taken by exactly one applied update. What is promised:
 *   - Never twice, as above. Ids follow the order the takes were applied
 *     (across processes too), except an id handed out late by a re-sent key.
 *   - Every id 1..N reaches a caller, or is accounted for:
 *     . a lost reply is decided by the counter's marker (the id is yours);
 *     . ZKC_EUNKNOWN (no server reachable to decide): the message names the
 *       stored key; an unkeyed take's key is re-sent by the next call of this
 *       generator, so an id that was taken is handed out then (until the
 *       generator is destroyed or the process ends: then the key, which the
 *       message named, answers zkc_counter_lookup for marker_retention_s);
 *       a keyed take is settled by repeating it with its key;
 *     . a crash between taking and using an id: repeat the take with the
 *       same key (zkc_idgen_next_keyed, e.g. the order id) and the same id
 *       comes back (for marker_retention_s, default 24 h); an unkeyed take
 *       cannot be found again, so invoices should take keyed;
 *     . an id that will not be used is voided (zkc_idgen_void): the
 *       persistent node <path>-voided/<id as 19 digits>.
 *     So an auditor finds every id up to N in the books, or voided, or (after
 *     a crash of an unkeyed taker) in that process's own log.
 *   - timeout_ms is not used: a take once sent is seen through to its
 *     outcome (bounded by the client's operation timeout); it cannot be
 *     abandoned half-way without leaving an id unaccounted for.
 *     zkc_idgen_cancel and destroy do not end takes in flight.
 *   - Not a hold: SUSPENDED and LOST change nothing for ids already taken. */
typedef struct zkc_idgen zkc_idgen;
typedef struct zkc_idgen_options {
    int64_t block;      /* first lease size and the floor of shrinking (default 100) */
    int64_t max_block;  /* ceiling of growth (default 100000) */
    int grow_ms;        /* see above (default 1000; 0: never grow) */
    int64_t max_id;     /* highest id ever handed out (default INT64_MAX) */
    int gap_free;       /* 1: one exactly-once write per id, no blocks (see above) */
    void *reserved[3];
} zkc_idgen_options;
typedef void (*zkc_idgen_cb)(zkc_idgen *g, int status, int64_t id, void *ud);
ZKC_EXTERN void zkc_idgen_options_init(zkc_idgen_options *o);
/* opts may be NULL (defaults). Nothing is sent until the first id is needed. */
ZKC_EXTERN int zkc_idgen_create(zkc_client *c, const char *path, const zkc_idgen_options *opts, zkc_idgen **out);
/* Pending calls end with ZKC_ECANCELED; unused leased ids become a hole. */
ZKC_EXTERN void zkc_idgen_destroy(zkc_idgen *g);
ZKC_EXTERN const char *zkc_idgen_path(zkc_idgen *g);
/* Next id into *id. Waits for a lease up to timeout_ms (0: only an id already
 * leased; otherwise ZKC_ETIMEDOUT, and a lease is started for later calls).
 * Errors: ZKC_ETIMEDOUT; ZKC_ECONNLOSS when no server could be reached within
 * the operation timeout (no id handed out; a lease whose outcome is unknown is
 * skipped, never reused); ZKC_ELIMIT when every id up to max_id is leased;
 * ZKC_ECANCELED (zkc_idgen_cancel, destroy); ZKC_EINVAL for bad arguments.
 * A failed lease fails every call waiting for it. */
ZKC_EXTERN int zkc_idgen_next(zkc_idgen *g, int timeout_ms, int64_t *id);
/* Callback form: cb runs exactly once on the dispatch thread (also when an id
 * was at hand), with the id on status 0. */
ZKC_EXTERN int zkc_idgen_next_async(zkc_idgen *g, int timeout_ms, zkc_idgen_cb cb, void *ud);
/* Every call waiting for a lease ends with ZKC_ECANCELED (blocks until the
 * engine has done it). A lease in flight goes on; its ids serve later calls. */
ZKC_EXTERN int zkc_idgen_cancel(zkc_idgen *g);
/* Gap-free mode only (ZKC_EINVAL otherwise): take an id under `key` (at most
 * 179 bytes, no '/'; e.g. the order the invoice is for). The first take of a
 * key writes; a repeat, from any process while the key is retained
 * (marker_retention_s), returns the same id without writing. Keys are per
 * generator path: the same key under another path is another take. Errors as
 * zkc_idgen_next; ZKC_EUNKNOWN: repeat the call with the same key. */
ZKC_EXTERN int zkc_idgen_next_keyed(zkc_idgen *g, const char *key, int timeout_ms, int64_t *id);
ZKC_EXTERN int zkc_idgen_next_keyed_async(zkc_idgen *g, const char *key, int timeout_ms, zkc_idgen_cb cb,
                                          void *ud);
/* Record that a taken id will never be used: creates the persistent node
 * <path>-voided/<id as 19 digits> (parents as needed), one write. Idempotent:
 * voiding a voided id (or a repeat after a lost reply) returns 0. Refused with
 * ZKC_EINVAL when id is above the highest id taken (read behind a quorum
 * fence), so a void never precedes the take of its id. It does not check that
 * nobody uses the id: void only ids you took and will not use. Any mode; in
 * block mode it records holes you choose to report. Errors: ZKC_ECONNLOSS /
 * ZKC_EUNKNOWN (repeat it), ZKC_ENOAUTH, ZKC_ECANCELED (client destroyed).
 * cb gets the id. */
ZKC_EXTERN int zkc_idgen_void(zkc_idgen *g, int64_t id);
ZKC_EXTERN int zkc_idgen_void_async(zkc_idgen *g, int64_t id, zkc_idgen_cb cb, void *ud);

#ifdef __cplusplus
}
#endif
#endif /* ZKCOORD_H */
