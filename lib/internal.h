/*
 * What the files of lib/ share, and nothing else.
 *
 * Threading model (the one fact every file relies on):
 *   - libzookeeper_mt has an I/O thread and a completion thread. Our ZooKeeper
 *     completions and watchers (req.c, watch.c, client.c) only copy what they got and post it
 *     to the ENGINE thread.
 *   - The engine thread (loop.c) owns every recipe's state: lock queues, counter
 *     caches, timers, the session state machine. Code marked "engine" below runs
 *     only there, so it needs no locks of its own and must never block.
 *   - User callbacks run on the DISPATCH thread, in order. Blocking API calls wait
 *     on a condition variable that the engine signals directly, so a blocking call
 *     from a callback cannot deadlock.
 * Recipes (lock, queue, counter, ...) never include <zookeeper.h>; they talk to
 * ZooKeeper through the request layer below (req.c, watch.c).
 */
#ifndef ZKC_INTERNAL_H
#define ZKC_INTERNAL_H

#include "zkcoord.h"
#include "list.h"
#include "object.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>

#define ZKC__CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ZKC__UNUSED(x) ((void)(x))

#if defined(__GNUC__)
#define ZKC__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ZKC__PRINTF(a, b)
#endif

/* ------------------------------------------------------------ error.c */

/* Thread-local message for zkc_errmsg(). Returns err, so: return zkc__err(ZKC_EINVAL, "..."). */
int zkc__err(int err, const char *fmt, ...) ZKC__PRINTF(2, 3);
void zkc__set_errmsg(const char *msg);
/* ZooKeeper result code (raw, see ZR_* below) to a ZKC_E* code. */
int zkc__map_zrc(int zrc);
const char *zkc__zrc_name(int zrc);

/* ------------------------------------------------------------- path.c */

#define ZKC__PATH_MAX 1024
/* 0 or ZKC_EINVAL with a message naming `what` ("lock path", ...). */
int zkc__path_check(const char *path, const char *what);
/* Validate a single node name (no '/'). */
int zkc__name_check(const char *name, const char *what);
/* Parent of path into buf ("/" for a top-level node). */
void zkc__path_parent(const char *path, char *buf, size_t len);
/* malloc'd "a/b" with exactly one slash. */
char *zkc__path_join(const char *dir, const char *name);
char *zkc__strdup(const char *s);
void *zkc__calloc(size_t n, size_t sz);
/* Random RFC 4122 version 4 uuid text (36 chars + NUL). */
void zkc__uuid(char out[37]);
uint64_t zkc__random64(void);

/* ----------------------------------------------------------- loop.c */

int64_t zkc__now_ms(void); /* monotonic */

typedef struct zkc__task zkc__task;
struct zkc__task {
    void (*fn)(zkc__task *t); /* runs on the engine thread */
    zkc__task *next;
};

typedef struct zkc__timer zkc__timer;
struct zkc__timer {
    void (*fn)(zkc__timer *t); /* engine */
    int64_t due;
    int index;                 /* heap slot, -1 when not armed */
};

typedef struct zkc__job zkc__job;
struct zkc__job {
    void (*fn)(zkc__job *j);   /* runs on the dispatch thread */
    zkc__job *next;
};

/* Any thread: queue t for the engine. */
void zkc__post(zkc_client *c, zkc__task *t);
/* Any thread: allocate a task that calls fn(arg) on the engine. ZKC_ENOMEM/ZKC_ECLOSED. */
int zkc__post_call(zkc_client *c, void (*fn)(void *arg), void *arg);
/* Engine: arm/disarm timers (re-arming moves it). */
void zkc__timer_init(zkc__timer *t, void (*fn)(zkc__timer *t));
void zkc__timer_arm(zkc_client *c, zkc__timer *t, int64_t due_ms);
void zkc__timer_disarm(zkc_client *c, zkc__timer *t);
/* Engine: queue a job for the dispatch thread. */
void zkc__dispatch(zkc_client *c, zkc__job *j);
int zkc__on_engine(zkc_client *c);
int zkc__on_dispatch(zkc_client *c);
/* Threads: start both, stop both (after the engine drained its shutdown). */
int zkc__loop_start(zkc_client *c);
void zkc__loop_stop(zkc_client *c);

/* ------------------------------------------------------------ op.c */

/* A blocking call's rendezvous; lives on the caller's stack. */
typedef struct zkc__waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} zkc__waiter;

/* One user-visible operation: completes exactly once. Embedded in the recipe's
 * own operation struct. */
typedef struct zkc__op zkc__op;
struct zkc__op {
    zkc_client *c;
    zkc__task task;                      /* carries start() to the engine */
    void (*start)(zkc__op *op);          /* engine: begin the work */
    zkc__job job;
    int status;
    int finished;
    zkc__waiter *waiter;                 /* blocking call, or NULL */
    void (*invoke)(zkc__op *op);         /* dispatch: call the user's callback */
    void (*release)(zkc__op *op);        /* free the containing struct */
    char msg[256];
};

/* Engine: complete op once (later calls are ignored, returns 0 then). msg may
 * be NULL (then zkc_strerror(status) is used). */
int zkc__op_finish(zkc__op *op, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
int zkc__op_vfinish(zkc__op *op, int status, const char *fmt, va_list ap) ZKC__PRINTF(3, 0);
/* Submit `start(op)` to the engine and, for a blocking call, wait for the op.
 * Async: returns 0 or a refusal; either way the op is no longer the caller's
 * (a refused one is released here, its callback never runs). Blocking: returns
 * the op status (zkc_errmsg set), and the caller always frees the op with
 * op->release after reading its results, refused or not. */
int zkc__op_run(zkc__op *op, void (*start)(zkc__op *op), int blocking);
/* Any thread: refuse blocking calls where they would deadlock. */
int zkc__check_blocking(zkc_client *c);

/* ------------------------------------------------------------ req.c */

/* ZooKeeper result codes used by the recipes (the protocol's values), and two
 * of our own. */
#define ZR_OK 0
#define ZR_CONNLOSS (-4)        /* outcome of a write unknown */
#define ZR_OPTIMEOUT (-7)
#define ZR_BADARGS (-8)
#define ZR_INVALIDSTATE (-9)
#define ZR_APIERROR (-100)
#define ZR_NONODE (-101)
#define ZR_NOAUTH (-102)
#define ZR_BADVERSION (-103)
#define ZR_NOCHILDRENFOREPHEMERALS (-108)
#define ZR_NODEEXISTS (-110)
#define ZR_NOTEMPTY (-111)
#define ZR_SESSIONEXPIRED (-112)
#define ZR_AUTHFAILED (-115)
#define ZR_CLOSING (-116)
#define ZR_SESSIONMOVED (-118)
#define ZR_NOWATCHER (-121)
#define ZR_RUNTIMEINCONSISTENCY (-2)
#define ZR_SESSIONLOST (-1001)  /* ours: not sent, its session is gone (nothing applied) */
#define ZR_NOTSENT (-1002)      /* ours: parked past the operation timeout (nothing applied) */

typedef struct zkc__stat {
    int64_t czxid, mzxid, ctime, mtime, ephemeral_owner, pzxid;
    int32_t version, cversion, data_length, num_children;
} zkc__stat;

/* create flags */
#define ZC_EPHEMERAL 1
#define ZC_SEQUENTIAL 2
#define ZC_CONTAINER 4

typedef struct zkc__watch zkc__watch;
/* A one-shot ZooKeeper watch. Owned by the client; the owner only detaches. */
struct zkc__watch {
    void (*fn)(zkc__watch *w, int event); /* engine; event: ZW_* */
    void *ctx;
    /* private to watch.c */
    zkc_client *c;
    uint64_t gen;
    int state;
    char *path;
    zkc__list_node node;       /* in the client's watches */
};
#define ZW_CREATED 1
#define ZW_DELETED 2
#define ZW_CHANGED 3
#define ZW_CHILD 4

/* Multi sub-operation. */
typedef struct zkc__mop {
    int type;                  /* ZKC_REQ_CREATE / DELETE / SET / (check: ZKC_REQ_EXISTS) */
    const char *path;
    const char *data;
    int len;
    int version;
    int flags;                 /* create flags */
    int rc;                    /* result */
    char *created;             /* create: created path (malloc'd, freed with the req) */
    zkc__stat stat;            /* set: new stat */
} zkc__mop;

typedef struct zkc__req zkc__req;
typedef void (*zkc__req_done)(zkc__req *r);
struct zkc__req {
    zkc__task task;
    zkc_client *c;
    zkc__req_done done;        /* engine, exactly once */
    void *ctx;
    uint64_t tag;              /* the caller's: set it right after submitting */
    int kind;                  /* zkc_req_kind */
    int rc;                    /* ZR_* */
    int safe;                  /* may be re-sent after connection loss */
    int attempts;
    uint64_t gen;              /* session it was sent on */
    int64_t deadline;          /* parked past this: ZR_NOTSENT; retried past this: last error */
    int sent;                  /* handed to the ZooKeeper client at least once */
    int inflight;              /* handed over and not yet delivered back */
    /* inputs */
    char *path;
    char *data;
    int len;
    int version;
    int flags;
    zkc__watch *watch;
    int nops;
    zkc__mop *ops;
    /* outputs */
    char *value;               /* get: data (NUL-terminated copy), valuelen */
    int valuelen;
    zkc__stat stat;            /* get/exists/set/create */
    char *created;             /* create: the created path */
    char **children;           /* children: names */
    int nchildren;
    /* private */
    zkc__timer backoff;
    zkc__list_node parked;     /* in the client's parked requests */
    void *zops;                /* req.c: zoo_op_t array */
    void *zres;                /* req.c: zoo_op_result_t array */
};

/* Engine. Each builds a request; `done` runs exactly once on the engine, even at
 * shutdown (rc ZR_CLOSING). Reads are marked safe and retried transparently on
 * connection loss within the client's retry policy. The req is freed after done
 * returns: copy what you need (you may steal r->value / r->children by setting
 * them to NULL). The returned pointer may be used only to set r->tag before
 * the calling engine task returns. */
zkc__req *zkc__get(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx);
zkc__req *zkc__exists(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx);
zkc__req *zkc__children(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx);
zkc__req *zkc__create(zkc_client *c, const char *path, const char *data, int len, int flags,
                      zkc__req_done done, void *ctx);
zkc__req *zkc__delete(zkc_client *c, const char *path, int version, zkc__req_done done, void *ctx);
zkc__req *zkc__set(zkc_client *c, const char *path, const char *data, int len, int version,
                   zkc__req_done done, void *ctx);
zkc__req *zkc__sync(zkc_client *c, const char *path, zkc__req_done done, void *ctx);
/* sync, then get (no watch): a read that sees every write the leader had
 * committed when it was sent. `done` gets the get's request. */
void zkc__sync_get(zkc_client *c, const char *path, zkc__req_done done, void *ctx);
/* ops are copied (paths and data too). */
zkc__req *zkc__multi(zkc_client *c, const zkc__mop *ops, int n, zkc__req_done done, void *ctx);

/* ------------------------------------------------------------ watch.c */

/* Engine: a new watch owned by the client; fn(w, event) runs once on the engine
 * when it fires, and the cell is freed when fn returns: the owner forgets it
 * there. Until then the owner must zkc__watch_drop it when it loses interest.
 * Pass it to at most one read at a time. */
zkc__watch *zkc__watch_new(zkc_client *c, void (*fn)(zkc__watch *, int), void *ctx);
/* Engine: the owner no longer wants it: it will not be called, the server-side
 * watch is removed, and the memory is reclaimed by the client. NULL is fine. */
void zkc__watch_drop(zkc__watch *w);
/* Engine: drop without a removal request, for a watch on a node we are about
 * to delete ourselves (the delete fires it). */
void zkc__watch_forget(zkc__watch *w);
/* req.c, engine: a read carrying w was submitted (parked or sent). */
void zkc__watch_pending(zkc__watch *w);
/* req.c, engine: a read carrying w is handed to the session on path. */
void zkc__watch_sending(zkc__watch *w, const char *path, int children);
/* req.c, engine: the read carrying w settled (not to be retried); armed: the
 * reply registered the watch. Returns w, or NULL when the owner had dropped it
 * (then it is no longer the read's to report). */
zkc__watch *zkc__watch_settle(zkc__watch *w, int armed, uint64_t gen);

/* What the request layer reports to the session (the one layer it serves):
 * set once by the session, so that req.c calls nothing above itself. */
typedef struct zkc__req_hooks {
    void (*drained)(zkc_client *c);                       /* engine: the last in-flight request is back */
    void (*session_expired)(zkc_client *c, uint64_t gen); /* engine: a reply said session gen is gone */
} zkc__req_hooks;
void zkc__req_set_hooks(zkc_client *c, const zkc__req_hooks *h);

/* ------------------------------------------------------------- session.c */

/* Internal session listener: recipes register to hear SUSPENDED / RECONNECTED /
 * LOST on the engine thread, before users hear them. */
typedef struct zkc__sess_listener zkc__sess_listener;
struct zkc__sess_listener {
    void (*fn)(zkc__sess_listener *l, zkc_state st, uint64_t gen);
    zkc__list_node node;
};
void zkc__sess_listen(zkc_client *c, zkc__sess_listener *l);   /* engine */
void zkc__sess_unlisten(zkc_client *c, zkc__sess_listener *l); /* engine */

/* Engine: the state of the session as the engine knows it. */
enum { ZKC__S_CONNECTING = 0, ZKC__S_CONNECTED, ZKC__S_SUSPENDED, ZKC__S_CLOSED };

typedef struct zkc__stats_atomic {
    uint64_t requests[16];
    uint64_t retries, conflicts, sessions, suspended, reconnected, lost, disconnected_ms, callbacks;
} zkc__stats_atomic;



struct zkc_client {
    zkc_client_options opt;      /* strings below are our copies */
    char *hosts;                 /* with chroot appended */
    char *auth_scheme, *auth_cred;
    char *meta_root;
    char uuid[37];               /* this client instance, for protected node names */

    /* loop.c */
    pthread_t engine_thread, dispatch_thread;
    int threads_started;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    zkc__task *qhead, *qtail;
    int engine_stop;
    zkc__timer **heap;
    int nheap, capheap;
    pthread_mutex_t dmu;
    pthread_cond_t dcv;
    zkc__job *dhead, *dtail;
    int dispatch_stop;
    int dispatch_busy;

    /* session.c: session (engine) */
    void *zh;                    /* zhandle_t of the current session */
    uint64_t gen;
    int state;
    int ever_connected;
    int auth_failed;             /* credentials refused: final, every request fails */
    int auth_pending;            /* the current session's auth reply has not come */
    int64_t last_heard;
    int64_t disconnected_at;
    int timeout_ms;              /* negotiated */
    int heartbeat_out;
    zkc__timer tick;
    zkc__list parked;            /* req.c: requests waiting for a usable session */
    zkc__list listeners;         /* zkc__sess_listener */
    zkc__list watches;           /* watch.c: every live watch cell */
    int closing;                 /* engine: shutdown has begun */
    int inflight;                /* engine: requests handed to libzookeeper, not yet delivered */
    zkc__timer drain;            /* engine: bound on waiting for them at shutdown */
    const zkc__req_hooks *req_hooks; /* req.c reports through these (session.c sets them) */
    int shutdown_done;           /* guarded by smu: the session is closed */
    int api_closing;             /* atomic: zkc_client_destroy was called; refuse new work */

    /* readable from any thread */
    pthread_mutex_t smu;         /* guards the fields below */
    pthread_cond_t scv;
    int pub_connected;           /* 1 while CONNECTED/RECONNECTED */
    int64_t pub_last_heard;
    int pub_timeout_ms;
    int64_t pub_session_id;
    char pub_passwd[16];
    int pub_passwd_len;
    int first_result;            /* 0 waiting, 1 connected, <0 error code */
    char first_msg[256];         /* why, when first_result < 0 */
    zkc_state_fn state_fn;
    void *state_ud;

    zkc__stats_atomic st;        /* updated with __atomic builtins */

    int refs;                    /* user + one per lock/counter object (atomic) */
    int64_t session_id;          /* engine: id of the current session (0 before) */
    void *janitor;               /* queue.c: nodes to delete once reachable (to become a singleton) */
    int destroyed;               /* zkc_client_destroy has run */
    zkc__list objects;           /* object.c, engine: live recipe objects, for shutdown */
    zkc__list singletons;        /* object.c: per-client recipe state (zkc__singleton) */
};

#define ZKC__CLOSING_STATE 100 /* internal listeners: the client is shutting down */

#define ZKC__STAT_INC(c, field) __atomic_add_fetch(&(c)->st.field, 1, __ATOMIC_RELAXED)
#define ZKC__STAT_ADD(c, field, n) __atomic_add_fetch(&(c)->st.field, (n), __ATOMIC_RELAXED)

void zkc__log(zkc_client *c, zkc_log_level lvl, const char *fmt, ...) ZKC__PRINTF(3, 4);
/* Engine: is the session usable now; the heartbeat freshness view for is_held. */
int zkc__session_fresh(zkc_client *c);
/* client.c: the session's life. */
void zkc__session_init(zkc_client *c);  /* at create, before the threads */
int zkc__session_start(zkc_client *c);  /* any thread: open the first session on the engine */
void zkc__session_close(zkc_client *c); /* engine, at shutdown after the objects: drain, close */
void zkc__session_abandon(zkc_client *c); /* the engine is gone: close a handle it left */
int zkc__session_set_hosts(zkc_client *c, const char *hosts); /* any thread; hosts checked */

/* The session calls these in req.c and watch.c */
void zkc__reqs_flush_parked(zkc_client *c);
void zkc__reqs_fail_parked(zkc_client *c, int rc);
void zkc__watches_close_gen(zkc_client *c, uint64_t gen);
void zkc__watches_resume(zkc_client *c); /* reconnected: remove watches dropped meanwhile */
void zkc__watches_free_all(zkc_client *c); /* client_free: the engine is gone; reclaim what is left */

zkc__req *zkc__ping(zkc_client *c, zkc__req_done done, void *ctx); /* req.c: heartbeat, never retried */

#endif
