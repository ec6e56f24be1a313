/*
 * The member core: our node in a sequential queue, and everything it takes to
 * keep exactly one of them there. Locks, read/write locks, semaphores and
 * elections run on it (lock.c and election.c decide from the sorted queue;
 * this file never decides).
 *
 * One attempt, all on the engine thread:
 *   create "<dir>/_c_<uuid>-<tag>" EPHEMERAL_SEQUENTIAL (on NONODE, the missing
 *   parents as containers, from below the deepest this client saw exist:
 *   pathcache.c), holding the owner's data (an election's participant id) or
 *   "zkcoord <host> <pid>"
 *     -> no answer (connection loss, operation timeout: zkc__zrc_indeterminate):
 *        sync, list, find our uuid (owned by this session), else create again;
 *        nothing is reported until that is decided, so no caller ever hears
 *        "not queued" about a node that may be blocking the queue
 *   (and, once it is answered, watch our own node: deleted by someone else =
 *   the hold or the place is gone)
 *   list (the first listing of a lone create is sent right behind it, not
 *   after its reply: member_wait.c, "the listing behind the create"), sort by
 *   suffix (RFC 1982, seqname.c), find ourselves -> the owner
 *   decides -> wait: one watch (a node ahead, or the children list) -> list
 *   again, unless what the watch said lets the owner in (what may be decided
 *   without listing again: member_wait.c, which lists and waits)
 * An attempt is named by an epoch; replies of an abandoned epoch only clean up.
 * Nodes we stop wanting go to the janitor (janitor.c), which deletes them once
 * it can.
 *
 * The create can also travel inside the owner's own multi (zkc__qm_create_op,
 * then zkc__qm_created with the outcome), so one transaction can join several
 * queues and still be decided by tag after a lost reply. Such a member is
 * never created alone: when the tag finds nothing of ours (or only a node of a
 * session that ended), the owner hears ops->absent and decides, since the
 * multi's other ops are missing too. The inventory enqueues that way: one
 * multi creates a request record and one member per SKU queue, all sharing the
 * request's nonce as their tag, and lists only its own names (ops->accept).
 */
#include "member.h"

#include "janitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int stale(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    return r->tag != m->epoch;
}

int zkc__qm_stale(zkc__qm *m, uint64_t tag)
{
    return tag != m->epoch;
}

static void do_create(zkc__qm *m);

void zkc__qm_failed(zkc__qm *m, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->ops->failed(m, status, msg);
}

void zkc__qm_fail_rc(zkc__qm *m, int rc, const char *doing)
{
    int e = zkc__map_zrc(rc);
    if (rc == ZR_NOTSENT)
        e = ZKC_ECONNLOSS;
    if (rc == ZR_SESSIONLOST)
        e = ZKC_ESESSIONLOST;
    zkc__qm_failed(m, e, "%s %s: %s failed: %s", ZKC__QM_WHAT(m), m->dir, doing, zkc__zrc_name(rc));
}

void zkc__qm_forget_node(zkc__qm *m)
{
    free(m->node);
    m->node = NULL;
    m->node_name = NULL;
}

/* ---------------------------------------------------------------- parents */

/* Make the missing directories of m->dir, after our create found it missing:
 * start below the deepest ancestor this client has seen (pathcache.c), or at
 * m->dir itself when it has seen none; on NONODE go up a level, on OK or
 * NODEEXISTS come down one, until m->dir is made. A new path whose parents
 * mostly exist costs the creates it must, not one per level from the root.
 * The cache is only where to start: a NONODE forgets what it wrongly claimed. */
typedef struct parent_walk {
    zkc__qm *m;
    uint64_t epoch;
    char *target;
    size_t cur; /* length of the prefix being created */
    int tries;  /* creates sent again after no answer */
    int ups;    /* levels gone up on NONODE */
} parent_walk;

static void parent_send(parent_walk *pw);

/* The length of the parent of the prefix of length len (0: top level). */
static size_t up_of(const char *t, size_t len)
{
    while (len > 0 && t[--len] != '/')
        ;
    return len;
}

static int depth(const char *t)
{
    int d = 0;
    for (; *t; t++)
        d += *t == '/';
    return d;
}

static void parent_done(zkc__req *r)
{
    parent_walk *pw = r->ctx;
    zkc__qm *m = pw->m;
    const char *t = pw->target;
    size_t n = strlen(t);
    if (pw->epoch != m->epoch) {
        free(pw->target);
        free(pw);
    } else if (zkc__zrc_indeterminate(r->rc) && ++pw->tries < 10) {
        /* Creating a parent again is harmless: NODEEXISTS counts as done. */
        parent_send(pw);
    } else if (r->rc == ZR_OK || r->rc == ZR_NODEEXISTS) {
        zkc__pathcache_add(m->c, t, pw->cur);
        if (pw->cur >= n) {
            free(pw->target);
            free(pw);
            do_create(m);
        } else {
            const char *slash = strchr(t + pw->cur + 1, '/');
            pw->cur = slash ? (size_t)(slash - t) : n;
            parent_send(pw);
        }
    } else if (r->rc == ZR_NONODE && up_of(t, pw->cur) > 0 && ++pw->ups <= 2 * depth(t)) {
        /* Bounded: only parents deleted as fast as we make them go on past
         * twice the depth. A top-level node found missing its parent: the
         * chroot is missing, which no walk makes. */
        pw->cur = up_of(t, pw->cur);
        zkc__pathcache_forget(m->c, t, pw->cur);
        parent_send(pw);
    } else {
        free(pw->target);
        free(pw);
        zkc__qm_fail_rc(m, r->rc, "creating parent nodes");
    }
    m->ops->unref(m);
}

static void parent_send(parent_walk *pw)
{
    zkc__qm *m = pw->m;
    char *prefix = strndup(pw->target, pw->cur);
    if (!prefix) {
        free(pw->target);
        free(pw);
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    m->ops->ref(m);
    /* Containers, as Curator does: the server reaps them once empty, so queue
     * paths used once (per order, say) do not pile up. */
    int last = pw->cur == strlen(pw->target);
    zkc__create(m->c, prefix, last ? m->dir_data : NULL, last ? m->dir_len : 0, ZC_CONTAINER, parent_done, pw);
    free(prefix);
}

static void create_parents(zkc__qm *m)
{
    parent_walk *pw = calloc(1, sizeof *pw);
    if (!pw || !(pw->target = strdup(m->dir))) {
        free(pw);
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    pw->m = m;
    pw->epoch = m->epoch;
    size_t n = strlen(pw->target);
    zkc__pathcache_forget(m->c, pw->target, n);
    size_t known = zkc__pathcache_deepest(m->c, pw->target, n);
    if (known) {
        const char *slash = strchr(pw->target + known + 1, '/');
        pw->cur = slash ? (size_t)(slash - pw->target) : n;
    } else {
        pw->cur = n;
    }
    parent_send(pw);
}

/* ---------------------------------------------------------------- own node */

static void watch_own(zkc__qm *m);

static void own_deleted(zkc__qm *m)
{
    if (!m->node || m->phase != ZKC__QM_IN)
        return;
    zkc__log(m->c, ZKC_LOG_WARN, "lock %s: our node %s was deleted by another client", m->dir, m->node);
    zkc__qm_forget_node(m);
    zkc__qm_settle(m);
    m->listing = 0;
    m->phase = ZKC__QM_IDLE;
    m->ops->gone(m);
}

/* Deletion by someone else means the hold (or the place) is gone. */
static void own_fired(zkc__watch *w, int ev)
{
    zkc__qm *m = w->ctx;
    m->own_w = NULL;
    if (ev != ZW_DELETED) {
        if (m->node && m->phase == ZKC__QM_IN)
            watch_own(m); /* data changed (a semaphore kick): keep watching */
        return;
    }
    own_deleted(m);
}

static void own_get_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (!stale(r) && r->rc != ZR_OK && m->own_w && r->watch == m->own_w) {
        zkc__watch_drop(m->own_w);
        m->own_w = NULL;
        /* Deleted before the watch was set (first set, or set again after a
         * semaphore kick): the same news as the watch firing. A waiter may be
         * let in without a listing (the rule at the top of member_wait.c), so
         * this is what keeps one whose node is gone from believing it holds. */
        if (r->rc == ZR_NONODE)
            own_deleted(m);
    }
    m->ops->unref(m);
}

static void watch_own(zkc__qm *m)
{
    if (m->own_w)
        return;
    m->own_w = zkc__watch_new(m->c, own_fired, m);
    if (!m->own_w)
        return;
    /* get, not exists: on a node already gone, exists would leave a creation
     * watch on the server for the rest of the session. */
    ZKC__QM_SEND(m, zkc__get(m->c, m->node, m->own_w, own_get_done, m));
}

static void have_node(zkc__qm *m, const char *path, const zkc__stat *st, uint64_t gen)
{
    free(m->node);
    m->node = strdup(path);
    if (!m->node) {
        /* The node exists: keep the attempt's tag so leaving looks for it. */
        m->phase = ZKC__QM_RECOVERING;
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    const char *slash = strrchr(m->node, '/');
    m->node_name = slash ? slash + 1 : m->node;
    m->czxid = st ? st->czxid : 0;
    m->node_gen = gen;
    /* Our node exists, so do the queue node and its ancestors: where a walk
     * for a new path below them starts (create_parents). */
    zkc__pathcache_add_tree(m->c, m->dir);
    m->phase = ZKC__QM_IN;
    if (!m->no_own_watch)
        watch_own(m);
    m->ops->joined(m);
}

/* ---------------------------------------------------------------- recovery */

static void recover_list_done(zkc__req *r);
static void recover_sync_done(zkc__req *r);

/* The tag found no node of ours: a lone create makes one, unless the create
 * travelled in the owner's multi, whose other ops did not apply either. */
static void not_there(zkc__qm *m)
{
    if (!m->in_multi) {
        do_create(m);
        return;
    }
    m->phase = ZKC__QM_IDLE;
    m->ops->absent(m);
}

/* Did our create land? Sync (a lagging follower may not show it yet), list,
 * look for our uuid. */
static void recover(zkc__qm *m)
{
    m->phase = ZKC__QM_RECOVERING;
    m->early = ZKC__QM_EARLY_NONE; /* its create was not answered: not a listing to decide on */
    ZKC__QM_SEND(m, zkc__sync(m->c, m->dir, recover_sync_done, m));
}

/* A step of recovery that itself got no answer starts recovery over; the
 * owner's timeout or the session's end bounds it, and zkc__qm_leave hands the
 * question to the janitor. */
static int recover_again(zkc__qm *m, int rc)
{
    if (!zkc__zrc_indeterminate(rc) && rc != ZR_NOTSENT)
        return 0;
    recover(m);
    return 1;
}

static void recover_sync_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (!stale(r)) {
        if (r->rc == ZR_OK || r->rc == ZR_NONODE)
            ZKC__QM_SEND(m, zkc__children(m->c, m->dir, NULL, recover_list_done, m));
        else if (!recover_again(m, r->rc))
            zkc__qm_fail_rc(m, r->rc, "sync after an unanswered create");
    }
    m->ops->unref(m);
}

static void recover_stat_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (!stale(r)) {
        if (r->rc == ZR_OK && r->stat.ephemeral_owner == m->c->session_id)
            have_node(m, r->path, &r->stat, m->c->gen);
        else if (r->rc == ZR_OK || r->rc == ZR_NONODE)
            not_there(m); /* gone, or a dead session's: not ours */
        else if (!recover_again(m, r->rc))
            zkc__qm_fail_rc(m, r->rc, "reading our node after an unanswered create");
    }
    m->ops->unref(m);
}

static void recover_list_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (!stale(r)) {
        if (r->rc == ZR_NONODE) {
            not_there(m);
        } else if (r->rc != ZR_OK) {
            if (!recover_again(m, r->rc))
                zkc__qm_fail_rc(m, r->rc, "listing the queue after an unanswered create");
        } else {
            const char *mine = NULL;
            for (int i = 0; i < r->nchildren; i++)
                if (strstr(r->children[i], m->uuid))
                    mine = r->children[i];
            if (!mine) {
                not_there(m); /* the create never happened */
            } else {
                char *p = zkc__path_join(m->dir, mine);
                if (p)
                    ZKC__QM_SEND(m, zkc__exists(m->c, p, NULL, recover_stat_done, m));
                else
                    zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
                free(p);
            }
        }
    }
    m->ops->unref(m);
}

/* ---------------------------------------------------------------- create */

void zkc__qm_created(zkc__qm *m, int rc, const char *path, const zkc__stat *st, uint64_t gen, uint64_t seq)
{
    m->list_after = 0;
    if (rc == ZR_OK && path) {
        m->list_after = seq; /* before have_node: ops->joined may list */
        have_node(m, path, st, gen);
    } else if (rc == ZR_OK || zkc__zrc_indeterminate(rc)) {
        recover(m); /* applied or not (or its name was not kept): find out by the tag, or we queue twice */
    } else {
        zkc__qm_fail_rc(m, rc, "creating the queue node");
    }
}

static void create_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (stale(r)) {
        /* Abandoned attempt: its node must not survive it. */
        if (r->rc == ZR_OK && r->created) {
            zkc__janitor_delete(r->c, r->created);
        } else if (zkc__zrc_indeterminate(r->rc)) {
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(r->path, dir, sizeof dir);
            const char *u = strstr(r->path, "/_c_");
            if (u) {
                char uuid[37];
                snprintf(uuid, sizeof uuid, "%.36s", u + 4);
                zkc__janitor_find(r->c, dir, uuid);
            }
        }
    } else if (r->rc == ZR_NONODE) {
        /* Parent missing, or a container reaped between our check and create. */
        if (++m->creates > 5)
            zkc__qm_fail_rc(m, r->rc, "creating the queue node (the parent keeps vanishing)");
        else
            create_parents(m);
    } else if (r->rc == ZR_SESSIONLOST) {
        do_create(m); /* never sent; the new session gets it */
    } else if (r->rc == ZR_NOCHILDRENFOREPHEMERALS) {
        zkc__qm_failed(m, ZKC_EINVAL, "%s %s: the %s path is an ephemeral node", ZKC__QM_WHAT(m), m->dir,
                       ZKC__QM_WHAT(m));
    } else {
        zkc__qm_created(m, r->rc, r->created, &r->stat, r->gen, r->seq);
    }
    m->ops->unref(m);
}

static void fill_create_op(zkc__qm *m, zkc__mop *op, char *prefix, char *data)
{
    snprintf(prefix, ZKC__PATH_MAX + 64, "%s/_c_%s-%s", m->dir, m->uuid, m->tag);
    memset(op, 0, sizeof *op);
    op->type = ZKC_REQ_CREATE;
    op->path = prefix;
    if (m->node_data) {
        op->data = m->node_data;
        op->len = m->node_len;
    } else {
        char host[40] = "";
        gethostname(host, sizeof host - 1);
        op->data = data;
        op->len = snprintf(data, 64, "zkcoord %s %ld", host, (long)getpid());
    }
    op->flags = ZC_EPHEMERAL | ZC_SEQUENTIAL;
    m->phase = ZKC__QM_CREATING;
}

void zkc__qm_create_op(zkc__qm *m, zkc__mop *op, char *prefix, char *data)
{
    m->in_multi = 1;
    fill_create_op(m, op, prefix, data);
}

static void do_create(zkc__qm *m)
{
    char prefix[ZKC__PATH_MAX + 64];
    char data[64];
    zkc__mop op;
    m->in_multi = 0;
    fill_create_op(m, &op, prefix, data);
    ZKC__QM_SEND(m, zkc__create(m->c, op.path, op.data, op.len, op.flags, create_done, m));
    zkc__qm_list_early(m);
}

void zkc__qm_begin(zkc__qm *m, const char *uuid)
{
    m->epoch++;
    m->creates = 0;
    m->in_multi = 0;
    m->listing = 0;
    m->early = ZKC__QM_EARLY_NONE;
    m->list_after = 0;
    if (uuid)
        snprintf(m->uuid, sizeof m->uuid, "%s", uuid);
    else
        zkc__uuid(m->uuid);
}

void zkc__qm_join(zkc__qm *m)
{
    zkc__qm_begin(m, NULL);
    do_create(m);
}

/* ---------------------------------------------------------------- leave */

typedef struct leave_ctx {
    zkc__qm *m;
    char *path;
    void (*done)(void *ctx);
    void *ctx;
    int reported;
    zkc__timer guard;
} leave_ctx;

static void leave_report(leave_ctx *lc)
{
    if (!lc->reported) {
        lc->reported = 1;
        lc->done(lc->ctx);
    }
}

static void leave_guard_fired(zkc__timer *t)
{
    leave_report(ZKC__CONTAINER_OF(t, leave_ctx, guard));
}

static void leave_delete_done(zkc__req *r)
{
    leave_ctx *lc = r->ctx;
    if (zkc__zrc_indeterminate(r->rc) || r->rc == ZR_NOTSENT || r->rc == ZR_SESSIONLOST)
        zkc__janitor_delete(r->c, lc->path); /* maybe deleted, maybe not: make sure once we can */
    zkc__timer_disarm(r->c, &lc->guard);
    leave_report(lc);
    zkc__qm *m = lc->m;
    free(lc->path);
    free(lc);
    m->ops->unref(m);
}

static void leave(zkc__qm *m, int wait_ms, void (*done)(void *ctx), void *ctx, int held)
{
    zkc_client *c = m->c;
    zkc__qm_settle(m);
    if (m->node)
        zkc__watch_forget(m->own_w); /* the node is deleted below (or by the janitor) */
    else
        zkc__watch_drop(m->own_w);
    m->own_w = NULL;
    m->epoch++;
    m->listing = 0;
    if (m->phase == ZKC__QM_RECOVERING)
        zkc__janitor_find(c, m->dir, m->uuid);
    /* A create still out (ZKC__QM_CREATING) cleans up after itself when its
     * stale reply arrives. */
    m->phase = ZKC__QM_IDLE;
    if (m->node && done && (wait_ms < 0 || (c->state == ZKC__S_CONNECTED && !c->closing))) {
        leave_ctx *lc = calloc(1, sizeof *lc);
        if (lc && !(lc->path = strdup(m->node))) {
            free(lc);
            lc = NULL;
        }
        if (lc) {
            lc->m = m;
            lc->done = done;
            lc->ctx = ctx;
            zkc__timer_init(&lc->guard, leave_guard_fired);
            if (wait_ms >= 0)
                zkc__timer_arm(c, &lc->guard, zkc__now_ms() + wait_ms);
            m->ops->ref(m);
            if (held) {
                /* Written and deleted in one transaction: the member behind
                 * us hears "held, and gone" (TOUCHED) and needs no listing. */
                zkc__mop ops[2];
                memset(ops, 0, sizeof ops);
                ops[0].type = ZKC_REQ_SET;
                ops[0].path = m->node;
                ops[0].data = "";
                ops[0].version = -1;
                ops[1].type = ZKC_REQ_DELETE;
                ops[1].path = m->node;
                ops[1].version = -1;
                zkc__multi(c, ops, 2, leave_delete_done, lc);
            } else {
                zkc__delete(c, m->node, -1, leave_delete_done, lc);
            }
            zkc__qm_forget_node(m);
            return;
        }
    }
    if (m->node) {
        zkc__janitor_delete(c, m->node);
        zkc__qm_forget_node(m);
    }
    if (done)
        done(ctx);
}

void zkc__qm_leave(zkc__qm *m, int wait_ms, void (*done)(void *ctx), void *ctx)
{
    leave(m, wait_ms, done, ctx, 0);
}

void zkc__qm_release(zkc__qm *m, void (*done)(void *ctx), void *ctx)
{
    leave(m, -1, done, ctx, 1);
}

typedef struct finish_report {
    zkc__op *op;
    int status;
    char msg[256];
} finish_report;

static void finish_reported(void *ctx)
{
    finish_report *lr = ctx;
    zkc__op_finish(lr->op, lr->status, "%s", lr->msg);
    free(lr);
}

void zkc__qm_leave_finish(zkc__qm *m, int wait_ms, zkc__op *op, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    finish_report *lr = calloc(1, sizeof *lr);
    if (!lr) {
        zkc__qm_leave(m, 0, NULL, NULL); /* the node goes to the janitor */
        zkc__op_finish(op, status, "%s", msg);
        return;
    }
    lr->op = op;
    lr->status = status;
    memcpy(lr->msg, msg, sizeof msg);
    zkc__qm_leave(m, wait_ms, finish_reported, lr);
}

void zkc__qm_lost(zkc__qm *m)
{
    if (m->node)
        zkc__janitor_delete(m->c, m->node);
    zkc__qm_forget(m);
}

void zkc__qm_forget(zkc__qm *m)
{
    zkc__qm_settle(m);
    zkc__watch_drop(m->own_w);
    m->own_w = NULL;
    m->epoch++;
    m->listing = 0;
    m->phase = ZKC__QM_IDLE;
    zkc__qm_forget_node(m);
}
