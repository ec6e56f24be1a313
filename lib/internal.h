/*
 * What the files of lib/ share, and nothing else.
 *
 * Threading model (the one fact every file relies on):
 *   - libzookeeper_mt has an I/O thread and a completion thread. Our ZooKeeper
 *     completions and watchers (req.c, watch.c, session.c) only copy what they
 *     got and hand it to the ENGINE: posted to the engine thread, or run in
 *     place on the completion thread when the engine is idle (loop.c).
 *   - The engine thread (loop.c) owns every recipe's state: lock queues, counter
 *     caches, timers, the session state machine. Code marked "engine" in these
 *     headers runs only there, so it needs no locks of its own and must never
 *     block.
 *   - User callbacks run on the DISPATCH thread, in order. Blocking API calls wait
 *     on a condition variable that the engine signals directly, so a blocking call
 *     from a callback cannot deadlock.
 * Recipes (lock, queue, counter, ...) never include <zookeeper.h>; they talk to
 * ZooKeeper through the request layer below (req.c, watch.c).
 */
#ifndef ZKC_INTERNAL_H
#define ZKC_INTERNAL_H

#include "zkcoord.h"

/* The private headers of the lower layers, in layer order. Files of the upper
 * layers include this one; a lower-layer file may include only what it uses. */
#include "util.h"
#include "list.h"
#include "path.h"
#include "pathcache.h"
#include "loop.h"
#include "op.h"
#include "watch.h"
#include "req.h"
#include "session.h"
#include "object.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ error.c */

/* Thread-local message for zkc_errmsg(). Returns err, so: return zkc__err(ZKC_EINVAL, "..."). */
int zkc__err(int err, const char *fmt, ...) ZKC__PRINTF(2, 3);
void zkc__set_errmsg(const char *msg);
/* ZooKeeper result code (raw, see ZR_* below) to a ZKC_E* code. */
int zkc__map_zrc(int zrc);
/* 1 when a write that got this result may still have been applied (the
 * server may apply it, or already has): decide from evidence on the server
 * (a tagged name, a marker) before reporting or retrying; never report
 * "nothing applied" (ZKC_ECONNLOSS) on it. */
int zkc__zrc_indeterminate(int zrc);
const char *zkc__zrc_name(int zrc);
/* Tests only (session.c): the next this many zoo_add_auth calls act as if
 * libzookeeper refused them (ZINVALIDSTATE), a race too narrow to force. */
extern int zkc__refuse_auth_for_test;
/* "timedout" for ZKC_ETIMEDOUT, "ok" for 0; NULL for a code not in the table. */
const char *zkc__errname(int err);

/* ------------------------------------------------------------- the client */

/* The client object (client.c): one per zkc_client_create, shared by every
 * layer; each group of fields says which file owns it. */
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
    zkc__list tasks;             /* zkc__task, guarded by qmu */
    int engine_stop;
    int engine_busy;             /* guarded by qmu: a thread holds the engine role (loop.c) */
    int64_t engine_sleep_due;    /* guarded by qmu: when the idle engine thread wakes by itself */
    zkc__timer **heap;
    int nheap, capheap;
    pthread_mutex_t dmu;
    pthread_cond_t dcv;
    zkc__list jobs;              /* zkc__job, guarded by dmu */
    int dispatch_stop;
    int dispatch_busy;

    /* session.c: session (engine) */
    void *zh;                    /* zhandle_t of the current session */
    uint64_t gen;
    int state;
    int ever_connected;
    int auth_failed;             /* credentials refused: final, every request fails */
    int auth_pending;            /* the current session's auth reply has not come */
    int auth_on_handle;          /* the current handle took our credentials (session.c add_auth) */
    int64_t last_heard;
    int64_t disconnected_at;
    int64_t reopen_at;           /* engine: when to try again to open a session that failed to start (0: none) */
    int timeout_ms;              /* negotiated */
    int heartbeat_out;
    zkc__timer tick;
    zkc__list parked;            /* req.c: requests waiting for a usable session */
    zkc__list listeners;         /* zkc__sess_listener */
    zkc__list watches;           /* watch.c: every live watch cell */
    int closing;                 /* engine: shutdown has begun */
    int inflight;                /* engine: requests handed to libzookeeper, not yet delivered */
    uint64_t req_seq;            /* engine: requests handed to libzookeeper, ever (zkc__req.seq) */
    zkc__list issued;            /* req.c: those requests */
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
    char pub_passwd[ZKC_PASSWD_MAX];
    int pub_passwd_len;
    int first_result;            /* 0 waiting, 1 connected, <0 error code */
    char first_msg[256];         /* why, when first_result < 0 */
    zkc_state_fn state_fn;
    void *state_ud;

    zkc__stats_atomic st;        /* updated with __atomic builtins */
    struct zkc__metrics *mx;     /* metrics.c: counters and registrations (any thread) */

    int refs;                    /* user + one per lock/counter object (atomic) */
    int64_t session_id;          /* engine: id of the current session (0 before) */
    int destroyed;               /* zkc_client_destroy has run */
    zkc__list objects;           /* object.c, engine: live recipe objects, for shutdown */
    zkc__list singletons;        /* object.c: per-client recipe state (zkc__singleton) */
    struct zkc__pathcache *known; /* pathcache.c, engine: paths known to exist (NULL until the first) */
    zkc__list listers;           /* member_wait.c, engine: shared queue listings out */
};

#endif
