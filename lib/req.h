/* Requests to ZooKeeper (req.c): what the recipes send, and what the session
 * tells the request layer. */
#ifndef ZKC_REQ_H
#define ZKC_REQ_H

#include "list.h"
#include "loop.h"
#include "watch.h"

#include <stdint.h>

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
    uint64_t seq;              /* the client's count of requests handed over, at
                                * this one's last hand-over: one session applies
                                * its requests in this order (member_wait.c) */
    int completed;             /* its completion ran (or was posted for it) */
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
    zkc__list_node issued;     /* in the client's issued requests, while inflight */
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
 * committed when it was sent, except on a session connected to the leader
 * itself, which can miss writes the leader committed but had not applied (see
 * zkc__fence_get). `done` gets the get's request. */
void zkc__sync_get(zkc_client *c, const char *path, zkc__req_done done, void *ctx);
/* A version check on `path` through the quorum, then get (no watch): a read
 * that sees every write acknowledged before it was sent, also on the leader
 * (where a sync does not wait for them). `done` gets the get's request, or the
 * check's if it failed (other than ZR_NONODE). The read behind the public
 * fresh reads. */
void zkc__fence_get(zkc_client *c, const char *path, zkc__req_done done, void *ctx);
/* The same fence, then a listing of path's children (no watch). */
void zkc__fence_children(zkc_client *c, const char *path, zkc__req_done done, void *ctx);
/* Engine: create `path` and whichever of its parents are missing, as
 * persistent nodes, deepest first, so a path whose parents exist costs one
 * create; when the parent is missing, making parents starts below the deepest
 * ancestor the client saw exist (pathcache.c), else one level up. A create with no answer is sent again (a persistent parent is safe
 * to repeat: NODEEXISTS counts as done), up to 10 times. done(arg, rc) runs
 * once on the engine with ZR_OK, the ZR_* that stopped it, or ZR_APIERROR when
 * out of memory. The one mkpath of the library. */
void zkc__mkpath(zkc_client *c, const char *path, void (*done)(void *arg, int rc), void *arg);
/* ops are copied (paths and data too). */
zkc__req *zkc__multi(zkc_client *c, const zkc__mop *ops, int n, zkc__req_done done, void *ctx);

/* What the request layer reports to the session (the one layer it serves):
 * set once by the session, so that req.c calls nothing above itself. */
typedef struct zkc__req_hooks {
    void (*drained)(zkc_client *c);                       /* engine: the last in-flight request is back */
    void (*session_expired)(zkc_client *c, uint64_t gen); /* engine: a reply said session gen is gone */
} zkc__req_hooks;
void zkc__req_set_hooks(zkc_client *c, const zkc__req_hooks *h);

/* The session, engine. */
void zkc__reqs_flush_parked(zkc_client *c);
void zkc__reqs_fail_parked(zkc_client *c, int rc);
void zkc__reqs_orphaned(zkc_client *c, uint64_t gen); /* after zookeeper_close of session gen */
zkc__req *zkc__ping(zkc_client *c, zkc__req_done done, void *ctx); /* heartbeat, never retried */

#endif
