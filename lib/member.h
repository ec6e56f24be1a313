/* The member core: our node in a sequential queue (lib/member.c: create,
 * recovery, our own node, leave; lib/member_wait.c: listing and waiting). */
#ifndef ZKC_MEMBER_H
#define ZKC_MEMBER_H

#include "internal.h"
#include "seqname.h"

typedef struct zkc__qm zkc__qm;

/* What the recipe that owns a member hears, on the engine, only about the
 * current attempt (replies of an abandoned one only clean up). */
typedef struct zkc__qm_ops {
    /* Every request out holds one reference on the owner. */
    void (*ref)(zkc__qm *m);
    void (*unref)(zkc__qm *m);
    /* Our node exists (m->node, m->czxid): created, or found by its tag. */
    void (*joined)(zkc__qm *m);
    /* The queue, sorted (RFC 1982 on the suffix); self is our index. The
     * array lives until the call returns. */
    void (*listed)(zkc__qm *m, const zkc__member *v, int n, int self);
    /* What zkc__qm_wait watched changed. how: ZKC__QM_GONE when the node
     * watched was deleted (or already gone when the watch was set);
     * ZKC__QM_TOUCHED when its data changed (the watch fired: its owner
     * wrote it, see zkc__qm_release); ZKC__QM_CHANGED for anything else (the
     * children list, or a node found already written when the watch was
     * set); ZKC__QM_ANY_GONE when one of the nodes of zkc__qm_wait_any was
     * deleted or found gone (m->any_gone: its index; every watch dropped). */
    void (*moved)(zkc__qm *m, int how);
    /* The attempt cannot go on (status ZKC_E*, msg says why). The member is
     * unchanged: the owner ends it with zkc__qm_leave. */
    void (*failed)(zkc__qm *m, int status, const char *msg);
    /* Our node was deleted by someone else (the member has forgotten it).
     * Not needed (may be NULL) with no_own_watch. */
    void (*gone)(zkc__qm *m);
    /* Optional (NULL: every child with a sequence suffix counts): does the
     * queue count this child? A recipe whose queue may hold names that are
     * not its members (fillers, other formats) keeps them out of the order. */
    int (*accept)(const char *name);
    /* Needed only with zkc__qm_create_op: the owner's multi is not in the
     * queue as ours (decided by the tag: it did not apply, or the node found
     * belongs to a session that ended). The member is idle; nothing is ever
     * created alone for such a create, since the multi's other ops would be
     * missing. */
    void (*absent)(zkc__qm *m);
} zkc__qm_ops;

enum { ZKC__QM_CHANGED = 0, ZKC__QM_GONE = 1, ZKC__QM_TOUCHED = 2, ZKC__QM_ANY_GONE = 3 };

enum { ZKC__QM_IDLE = 0, ZKC__QM_CREATING, ZKC__QM_RECOVERING, ZKC__QM_IN };

/* Embedded in its owner. The recipe sets the first block before zkc__qm_join;
 * the second is read-only outside the member core. */
struct zkc__qm {
    const zkc__qm_ops *ops;
    zkc_client *c;
    const char *dir;      /* the queue node (the owner's string) */
    const char *tag;      /* our names are "_c_<uuid>-<tag><sequence>" */
    const char *dir_data; /* data of the queue node when we create it, or NULL */
    int dir_len;
    const char *node_data; /* data of our node; NULL: "zkcoord <host> <pid>" */
    int node_len;
    const char *what;     /* what the queue is, in messages; NULL: "lock" */
    int no_own_watch;     /* 1: do not watch our own node (the owner learns of
                           * its deletion otherwise, as the inventory from its
                           * request record); ops->gone is then never called */
    int no_early;         /* 1: the owner reads something else before its
                           * first listing (a semaphore's lease count): no
                           * listing behind the create, it would come unasked */

    uint64_t epoch;       /* the current attempt: tag requests of it with this */
    int phase;            /* ZKC__QM_* */
    char uuid[37];        /* this attempt's tag: a uuid, or the owner's own
                           * unique string of up to 36 characters */
    char *node;           /* our node's path while we have one */
    const char *node_name;
    int64_t czxid;        /* of our node: the fencing token */
    uint64_t node_gen;    /* session generation it was created in */

    /* private */
    int creates;
    int in_multi;         /* this attempt's create travels in the owner's multi */
    int warned;
    int listing;
    int listed_self;      /* our index in the last listing handed to ops->listed */
    int listed_children;  /* the queue's children in that listing, junk too */
    int list_armed;       /* the listing out (or just handed over) set pred_w on
                           * the children list: zkc__qm_list_watched */
    int list_fired;       /* that watch fired before the listing was decided on */
    int early;            /* the listing sent behind our lone create: ZKC__QM_EARLY_* */
    uint64_t list_after;  /* our create, answered as made, was request number
                           * list_after: a listing sent after it answers our
                           * first zkc__qm_list (0: only one sent from then) */
    zkc__watch *pred_w, *own_w;
    struct zkc__qm_any *any; /* zkc__qm_wait_any: one watch per node */
    int any_n;
    int any_gone;         /* after ops->moved(ZKC__QM_ANY_GONE): which node went */
    int pred_written;     /* with ops->moved: the node zkc__qm_wait watched was
                           * written (its watch fired as changed, or a read
                           * found its data version above 0), not only "moved" */
};

/* Engine: a new attempt (new epoch) tagged `uuid` (up to 36 characters, no
 * '/'; NULL: a fresh uuid). Several members joining in one multi may share
 * one tag. */
void zkc__qm_begin(zkc__qm *m, const char *uuid);
/* Engine: this attempt's tagged create as an op of the caller's own multi
 * (the same flags, name and data zkc__qm_join uses). prefix receives the path
 * (room for ZKC__PATH_MAX + 64), data the node's data (room for 64); sets
 * *op. After the multi the caller reports its outcome with zkc__qm_created,
 * and cleans up a late reply of an attempt it gave up (zkc__qm_leave cannot
 * see that reply). If the tag finds nothing, ops->absent is called instead of
 * creating again. */
void zkc__qm_create_op(zkc__qm *m, zkc__mop *op, char *prefix, char *data);
/* Engine: the outcome of a create of ours (alone or from a multi): created
 * (rc ZR_OK, path and stat of the node), or any failure. An indeterminate
 * result (zkc__zrc_indeterminate) is decided by the tag before anything is
 * reported: sync, list, find our uuid; nothing is ever reported as "not
 * applied" while it may have been. seq: the request's zkc__req.seq (0:
 * unknown); the first listing may then be one already out that was sent
 * after it (member_wait.c, "shared listings"). */
void zkc__qm_created(zkc__qm *m, int rc, const char *path, const zkc__stat *st, uint64_t gen, uint64_t seq);
/* (st may be NULL, as after a create inside a multi on servers before
 * 3.7.2/3.8.2/3.9.0, ZOOKEEPER-4026: czxid is then 0, unknown.) */

/* Engine: zkc__qm_begin(m, NULL), then create our node (its parents as
 * containers when missing); ops->joined or ops->failed follows. */
void zkc__qm_join(zkc__qm *m);
/* Engine: list the queue, find ourselves: ops->listed (our node missing:
 * ops->failed with ZKC_ESESSIONLOST). The listing is shared with this
 * client's other members of the same queue and the same ops->accept: the
 * first one sent after this call answers it, or for the first listing after
 * our create the one out if it was sent after the create (member_wait.c,
 * "shared listings"). Logs once about junk names and about Curator and kazoo nodes
 * mixed on one path. */
void zkc__qm_list(zkc__qm *m);
/* Engine: right after the owner handed over a multi that creates m's node
 * (zkc__qm_create_op), a shared listing of m's queue, unasked: the first
 * zkc__qm_list of each member created by that multi takes it (a listing sent
 * after the create: "shared listings" in member_wait.c), so the owner's
 * members find their places one round trip after the multi, not two. Nothing
 * when this client has one of that queue out already (its members then ask
 * for the next one, as without this call). A multi that fails costs this
 * listing and nothing else. */
void zkc__qm_list_ahead(zkc__qm *m);
/* member.c only: right after a lone create was sent, send the listing behind
 * it (member_wait.c, "the listing behind the create"). */
void zkc__qm_list_early(zkc__qm *m);
#define ZKC__QM_EARLY_NONE 0
#define ZKC__QM_EARLY_OUT 1    /* sent, nobody asked yet */
#define ZKC__QM_EARLY_WANTED 2 /* zkc__qm_list was answered by it */
/* Engine: zkc__qm_list, with a watch on the children list set by the same
 * read: if the owner then waits on the children list (zkc__qm_wait with
 * NULL), that watch is kept, with no second read and nothing missed in
 * between; any other decision drops it (the server's copy fires once, and is
 * ignored). For an owner that expects to wait on the children list (a
 * semaphore's first waiter). */
void zkc__qm_list_watched(zkc__qm *m);
/* Engine: wait for `name` (a child of dir) to change or go, or with NULL for
 * the children list to change: one watch; ops->moved when it fires. */
void zkc__qm_wait(zkc__qm *m, const char *name);
/* Engine: wait for any of names[0..n) (children of dir) to be deleted: one
 * watch each, set again when a node's data changes (a holder's kick);
 * ops->moved(ZKC__QM_ANY_GONE) at the first deletion, or at the first one
 * found already gone. For a semaphore's first waiter, which knows every
 * member that can still be ahead of it (semaphore.c). */
void zkc__qm_wait_any(zkc__qm *m, char *const *names, int n);
/* Engine: stop waiting (the watch is dropped); the node stays ours. */
void zkc__qm_settle(zkc__qm *m);
/* Engine: the current request of the owner's own, tagged so the member's
 * epoch check applies to it: 1 if a reply carrying `tag` is stale. */
int zkc__qm_stale(zkc__qm *m, uint64_t tag);

/* Engine: end the attempt and give the node up. Every later reply of it only
 * cleans up. wait_ms < 0: delete now and call done(ctx) once the reply says
 * whether it went (maybe deleted: the janitor makes sure). wait_ms >= 0:
 * delete if a server is reachable and call done(ctx) when it is gone or after
 * wait_ms at most (a silent server must not stretch a caller's timeout);
 * otherwise hand the node to the janitor and call done(ctx) at once. A create
 * still out, or one being decided, is the janitor's too. done may be NULL. */
void zkc__qm_leave(zkc__qm *m, int wait_ms, void (*done)(void *ctx), void *ctx);
/* Engine: zkc__qm_leave(m, -1, done, ctx) for a member that holds, whose
 * holding tells the member behind it that nobody is left ahead: the node is
 * written and deleted in one multi, so that member's watch fires as
 * ZKC__QM_TOUCHED and means "held, and gone" (the rule at the top of
 * member_wait.c). Only an owner whose hold proves that (a mutex or writer at the
 * head) may call it. */
void zkc__qm_release(zkc__qm *m, void (*done)(void *ctx), void *ctx);
/* Engine: zkc__qm_leave(m, wait_ms, ...), then finish op with status and the
 * message: the caller hears a failure only once the node is gone (or after
 * wait_ms, or at once when no server is reachable: the janitor has it). */
void zkc__qm_leave_finish(zkc__qm *m, int wait_ms, zkc__op *op, int status, const char *fmt, ...)
    ZKC__PRINTF(5, 6);
/* Engine: the session that owned our node is gone (or presumed gone): the
 * janitor deletes the node from the next session, if still there. */
void zkc__qm_lost(zkc__qm *m);
/* Engine: forget the node and every watch: the client is shutting down (the
 * session's close removes the node), or the owner's own transaction deleted
 * it. */
void zkc__qm_forget(zkc__qm *m);

/* member.c and member_wait.c only: what the core's two files share. A
 * request of the current attempt: it holds a reference on the owner and
 * carries the epoch (zkc__qm_stale). */
#define ZKC__QM_SEND(m, call)                                                                                      \
    do {                                                                                                           \
        (m)->ops->ref(m);                                                                                          \
        zkc__req *r_ = (call);                                                                                     \
        r_->tag = (m)->epoch;                                                                                      \
    } while (0)
/* What the queue is, in messages: locks by default. */
#define ZKC__QM_WHAT(m) ((m)->what ? (m)->what : "lock")
/* ops->failed with a formatted message; with a ZooKeeper result of `doing`. */
void zkc__qm_failed(zkc__qm *m, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
void zkc__qm_fail_rc(zkc__qm *m, int rc, const char *doing);
/* Forget our node's path (the node itself is not touched). */
void zkc__qm_forget_node(zkc__qm *m);

#endif
