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
 *   (and, in the same flight, watch our own node: deleted by someone else =
 *   the hold or the place is gone)
 *   list, sort by suffix (RFC 1982, seqname.c), find ourselves -> the owner
 *   decides -> wait: one watch (a node ahead, or the children list) -> list
 *   again, unless what the watch said lets the owner in (below)
 * What may be decided without listing again (issue 21). Sequence numbers only
 * grow and the queue node cannot be reaped while our node is in it, so nobody
 * ever queues ahead of us later: the members ahead of us now are a subset of
 * those ahead in our last listing. The owner may therefore decide on that
 * listing with members removed that it has learnt are gone, and keep a
 * decision that stays true when members ahead leave ("acquired": a mutex at
 * the head, a reader with no writer ahead, a semaphore index below its
 * leases); any other decision (a wait, which node to watch) needs a fresh
 * listing (or, for a semaphore, the names an admitted member ahead wrote
 * into its node: semaphore.c; zkc__qm_wait_any watches those). What tells the
 * owner a member is gone: the watch on it fired as
 * deleted (ZKC__QM_GONE: that member only), or it fired as written
 * (ZKC__QM_TOUCHED) on a member whose owner writes it only in the multi that
 * also deletes it when its hold ends (zkc__qm_release: a mutex or writer,
 * which held only at the head, so everything ahead of it is gone too). A node
 * found already written when the watch is set is still there: plain
 * ZKC__QM_CHANGED. The one thing a listing checked besides the order, that our
 * own node is still there, the own-node watch keeps: one session hears its
 * watches in the order of the changes, so a deletion of our node before the
 * news that lets us in reaches the owner first (ops->gone), and a node found
 * gone when that watch is set counts the same (a no_own_watch owner, the
 * inventory, learns of it from its own request record).
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

#define SEND(m, call)                                                                                              \
    do {                                                                                                           \
        (m)->ops->ref(m);                                                                                          \
        zkc__req *r_ = (call);                                                                                     \
        r_->tag = (m)->epoch;                                                                                      \
    } while (0)

/* What the queue is, in messages: locks by default. */
#define WHAT(m) ((m)->what ? (m)->what : "lock")

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

static void failed(zkc__qm *m, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void failed(zkc__qm *m, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->ops->failed(m, status, msg);
}

static void fail_rc(zkc__qm *m, int rc, const char *doing)
{
    int e = zkc__map_zrc(rc);
    if (rc == ZR_NOTSENT)
        e = ZKC_ECONNLOSS;
    if (rc == ZR_SESSIONLOST)
        e = ZKC_ESESSIONLOST;
    failed(m, e, "%s %s: %s failed: %s", WHAT(m), m->dir, doing, zkc__zrc_name(rc));
}

static void forget_node(zkc__qm *m)
{
    free(m->node);
    m->node = NULL;
    m->node_name = NULL;
}

struct zkc__qm_any {
    zkc__watch *w;
    char *path;
};

static void drop_any(zkc__qm *m)
{
    for (int i = 0; i < m->any_n; i++) {
        zkc__watch_drop(m->any[i].w);
        free(m->any[i].path);
    }
    free(m->any);
    m->any = NULL;
    m->any_n = 0;
}

static void drop_pred(zkc__qm *m)
{
    drop_any(m);
    /* A watched listing's children watch needs no removal request: the next
     * change of the children fires it (our own node's deletion at the
     * latest), once, and it is ignored. */
    if (m->list_armed && m->pred_w)
        zkc__watch_forget(m->pred_w);
    else
        zkc__watch_drop(m->pred_w);
    m->pred_w = NULL;
    m->list_armed = 0;
    m->list_fired = 0;
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
        fail_rc(m, r->rc, "creating parent nodes");
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
        failed(m, ZKC_ENOMEM, "out of memory");
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
        failed(m, ZKC_ENOMEM, "out of memory");
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
    forget_node(m);
    drop_pred(m);
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
         * let in without a listing (the rule at the top), so this is what
         * keeps one whose node is gone from believing it holds. */
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
    SEND(m, zkc__get(m->c, m->node, m->own_w, own_get_done, m));
}

static void have_node(zkc__qm *m, const char *path, const zkc__stat *st, uint64_t gen)
{
    free(m->node);
    m->node = strdup(path);
    if (!m->node) {
        /* The node exists: keep the attempt's tag so leaving looks for it. */
        m->phase = ZKC__QM_RECOVERING;
        failed(m, ZKC_ENOMEM, "out of memory");
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
    SEND(m, zkc__sync(m->c, m->dir, recover_sync_done, m));
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
            SEND(m, zkc__children(m->c, m->dir, NULL, recover_list_done, m));
        else if (!recover_again(m, r->rc))
            fail_rc(m, r->rc, "sync after an unanswered create");
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
            fail_rc(m, r->rc, "reading our node after an unanswered create");
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
                fail_rc(m, r->rc, "listing the queue after an unanswered create");
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
                    SEND(m, zkc__exists(m->c, p, NULL, recover_stat_done, m));
                else
                    failed(m, ZKC_ENOMEM, "out of memory");
                free(p);
            }
        }
    }
    m->ops->unref(m);
}

/* ---------------------------------------------------------------- create */

void zkc__qm_created(zkc__qm *m, int rc, const char *path, const zkc__stat *st, uint64_t gen)
{
    if (rc == ZR_OK && path)
        have_node(m, path, st, gen);
    else if (rc == ZR_OK || zkc__zrc_indeterminate(rc))
        recover(m); /* applied or not (or its name was not kept): find out by the tag, or we queue twice */
    else
        fail_rc(m, rc, "creating the queue node");
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
            fail_rc(m, r->rc, "creating the queue node (the parent keeps vanishing)");
        else
            create_parents(m);
    } else if (r->rc == ZR_SESSIONLOST) {
        do_create(m); /* never sent; the new session gets it */
    } else if (r->rc == ZR_NOCHILDRENFOREPHEMERALS) {
        failed(m, ZKC_EINVAL, "%s %s: the %s path is an ephemeral node", WHAT(m), m->dir, WHAT(m));
    } else {
        zkc__qm_created(m, r->rc, r->created, &r->stat, r->gen);
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
    SEND(m, zkc__create(m->c, op.path, op.data, op.len, op.flags, create_done, m));
}

void zkc__qm_begin(zkc__qm *m, const char *uuid)
{
    m->epoch++;
    m->creates = 0;
    m->in_multi = 0;
    m->listing = 0;
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

/* ---------------------------------------------------------------- list */

static void mixed_check_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (r->rc == ZR_OK && !(m->warned & 4) && (r->valuelen < 8 || memcmp(r->value, "zkcoord ", 8) != 0)) {
        m->warned |= 4;
        zkc__log(r->c, ZKC_LOG_WARN,
                 "lock %s: both Curator (-lock-) and kazoo (__lock__) nodes are queued; those two libraries "
                 "misread each other's names and are not safe together on one path (zkcoord reads both)",
                 m->dir);
    }
    m->ops->unref(m);
}

static void warn_once(zkc__qm *m, const zkc__member *v, int n, int junk, int styles)
{
    if (!(m->warned & 1) && (styles & ZKC__STYLE_CURATOR) && (styles & ZKC__STYLE_KAZOO)) {
        /* zkcoord names its nodes as Curator does; only a "-lock-" node that
         * is not ours (our data starts "zkcoord ") makes the mix unsafe. */
        m->warned |= 1;
        for (int i = 0, asked = 0; i < n && asked < 16; i++) {
            int32_t seq;
            int kind, style;
            if (zkc__seq_parse(v[i].name, &seq, &kind, &style) && style == ZKC__STYLE_CURATOR) {
                char *p = zkc__path_join(m->dir, v[i].name);
                if (p) {
                    m->ops->ref(m);
                    zkc__get(m->c, p, NULL, mixed_check_done, m);
                    asked++;
                }
                free(p);
            }
        }
    }
    if (junk && !(m->warned & 2)) {
        m->warned |= 2;
        zkc__log(m->c, ZKC_LOG_WARN, "%s %s: ignoring %d child node(s) %s", WHAT(m), m->dir, junk,
                 m->ops->accept ? "not named as its members" : "without a sequence suffix");
    }
}

/* Parse a listing reply into sorted members (v: n + 1 slots, the caller
 * frees it) and find ourselves (*self: -1 if our node is not in it). 0, or
 * ZKC_ENOMEM. */
static int parse_listing(zkc__qm *m, const zkc__req *r, zkc__member **vout, int *nout, int *self, int *junk,
                         int *styles)
{
    zkc__member *v = calloc((size_t)r->nchildren + 1, sizeof *v);
    if (!v)
        return ZKC_ENOMEM;
    int n;
    *junk = 0;
    *styles = 0;
    if (m->ops->accept) {
        /* Only the recipe's own names count; the rest is junk to it. */
        char **ok = calloc((size_t)r->nchildren + 1, sizeof *ok);
        if (!ok) {
            free(v);
            return ZKC_ENOMEM;
        }
        int k = 0;
        for (int i = 0; i < r->nchildren; i++)
            if (m->ops->accept(r->children[i]))
                ok[k++] = r->children[i];
        n = zkc__members_parse(ok, k, v, NULL, styles);
        *junk = r->nchildren - n;
        free(ok);
    } else {
        n = zkc__members_parse(r->children, r->nchildren, v, junk, styles);
    }
    *vout = v;
    *nout = n;
    *self = m->node_name ? zkc__member_find(v, n, m->node_name) : -1;
    return 0;
}

/* Hand a parsed listing to a member that asked for it (self: its index, -1
 * if its node is not in it). */
static void deliver(zkc__qm *m, const zkc__member *v, int n, int self, int junk, int styles)
{
    m->listing = 0;
    warn_once(m, v, n, junk, styles);
    if (self < 0) {
        forget_node(m);
        failed(m, ZKC_ESESSIONLOST, "%s %s: our queue node disappeared (deleted, or its session ended)", WHAT(m),
               m->dir);
    } else {
        m->listed_self = self;
        m->ops->listed(m, v, n, self);
    }
}

static void list_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (stale(r) || !m->listing) {
        m->ops->unref(m);
        return;
    }
    if (r->rc != ZR_OK) {
        m->listing = 0;
        fail_rc(m, r->rc, "listing the queue");
        m->ops->unref(m);
        return;
    }
    zkc__member *v;
    int n, self, junk, styles;
    if (parse_listing(m, r, &v, &n, &self, &junk, &styles)) {
        m->listing = 0;
        failed(m, ZKC_ENOMEM, "out of memory");
        m->ops->unref(m);
        return;
    }
    deliver(m, v, n, self, junk, styles);
    free(v);
    m->ops->unref(m);
}

/* ---------------------------------------------------------------- shared listings
 *
 * One listing per client and queue at a time, shared (issue 21): the members
 * of one client that need a listing of one queue while one is out (a
 * process's waiters enqueued together, waiters woken together) all decide
 * from the next one, sent when the one out returns. Not from the one out: a
 * listing must be read after the need for it arose (after our create
 * completed, after the change we were told of), or it may miss our node or
 * show a member that has gone. So at most two listings answer any number of
 * requests that arrive within one round trip, and each request is answered by
 * the first listing sent after it. Members with their own idea of who counts
 * (ops->accept, the inventory) list alone, as do watched listings (the watch
 * is one member's). */
typedef struct qlister {
    zkc__list_node link; /* in c->listers */
    char *dir;
    int inflight;        /* a listing is out: new requests wait for the next */
    int delivering;      /* its reply is being handed out */
    zkc__list cur;       /* qwant: answered by the listing out */
    zkc__list next;      /* qwant: answered by the next one */
} qlister;

typedef struct qwant {
    zkc__list_node link;
    zkc__qm *m;
    uint64_t epoch; /* the attempt that asked: a later one ignores the answer */
} qwant;

static void shared_send(zkc_client *c, qlister *ql);

static void lister_maybe_free(qlister *ql)
{
    if (ql->inflight || ql->delivering || !zkc__list_empty(&ql->cur) || !zkc__list_empty(&ql->next))
        return;
    zkc__list_remove(&ql->link);
    free(ql->dir);
    free(ql);
}

static void shared_done(zkc__req *r)
{
    qlister *ql = r->ctx;
    zkc_client *c = r->c;
    zkc__list batch;
    zkc__list_take(&batch, &ql->cur);
    ql->inflight = 0;
    ql->delivering = 1;
    /* Those who asked meanwhile get the next listing, sent now. */
    if (!zkc__list_empty(&ql->next) && r->rc != ZR_CLOSING) {
        zkc__list_take(&ql->cur, &ql->next);
        shared_send(c, ql);
    }
    zkc__member *v = NULL;
    int n = 0, junk = 0, styles = 0, nomem = 0;
    if (r->rc == ZR_OK) {
        v = calloc((size_t)r->nchildren + 1, sizeof *v);
        if (v)
            n = zkc__members_parse(r->children, r->nchildren, v, &junk, &styles);
        else
            nomem = 1;
    }
    while (!zkc__list_empty(&batch)) {
        qwant *w = ZKC__CONTAINER_OF(batch.head.next, qwant, link);
        zkc__list_remove(&w->link);
        zkc__qm *m = w->m;
        if (w->epoch == m->epoch && m->listing) {
            if (r->rc != ZR_OK) {
                m->listing = 0;
                fail_rc(m, r->rc, "listing the queue");
            } else if (nomem) {
                m->listing = 0;
                failed(m, ZKC_ENOMEM, "out of memory");
            } else {
                deliver(m, v, n, m->node_name ? zkc__member_find(v, n, m->node_name) : -1, junk, styles);
            }
        }
        free(w);
        m->ops->unref(m);
    }
    free(v);
    /* Closing: nothing more is sent; those still waiting hear it. */
    if (r->rc == ZR_CLOSING) {
        zkc__list_take(&batch, &ql->next);
        while (!zkc__list_empty(&batch)) {
            qwant *w = ZKC__CONTAINER_OF(batch.head.next, qwant, link);
            zkc__list_remove(&w->link);
            zkc__qm *m = w->m;
            if (w->epoch == m->epoch && m->listing) {
                m->listing = 0;
                fail_rc(m, r->rc, "listing the queue");
            }
            free(w);
            m->ops->unref(m);
        }
    }
    ql->delivering = 0;
    lister_maybe_free(ql);
}

static void shared_send(zkc_client *c, qlister *ql)
{
    ql->inflight = 1;
    zkc__children(c, ql->dir, NULL, shared_done, ql);
}

/* 0, or -1 (out of memory: the caller lists alone). */
static int shared_list(zkc__qm *m)
{
    zkc_client *c = m->c;
    qlister *ql = NULL;
    for (zkc__list_node *it = c->listers.head.next; it != &c->listers.head; it = it->next) {
        qlister *q = ZKC__CONTAINER_OF(it, qlister, link);
        if (!strcmp(q->dir, m->dir)) {
            ql = q;
            break;
        }
    }
    qwant *w = malloc(sizeof *w);
    if (!w)
        return -1;
    if (!ql) {
        ql = calloc(1, sizeof *ql);
        if (!ql || !(ql->dir = strdup(m->dir))) {
            free(ql);
            free(w);
            return -1;
        }
        zkc__list_init(&ql->cur);
        zkc__list_init(&ql->next);
        zkc__list_push_back(&c->listers, &ql->link);
    }
    w->m = m;
    w->epoch = m->epoch;
    m->ops->ref(m);
    if (ql->inflight) {
        zkc__list_push_back(&ql->next, &w->link);
    } else {
        zkc__list_push_back(&ql->cur, &w->link);
        shared_send(c, ql);
    }
    return 0;
}

void zkc__qm_list(zkc__qm *m)
{
    m->listing = 1;
    if (!m->ops->accept && shared_list(m) == 0)
        return;
    SEND(m, zkc__children(m->c, m->dir, NULL, list_done, m));
}

static void pred_fired(zkc__watch *w, int ev);

void zkc__qm_list_watched(zkc__qm *m)
{
    drop_pred(m);
    m->pred_w = zkc__watch_new(m->c, pred_fired, m);
    if (!m->pred_w) {
        zkc__qm_list(m);
        return;
    }
    m->list_armed = 1;
    m->listing = 1;
    SEND(m, zkc__children(m->c, m->dir, m->pred_w, list_done, m));
}

/* ---------------------------------------------------------------- wait */

static void pred_fired(zkc__watch *w, int ev)
{
    zkc__qm *m = w->ctx;
    if (m->pred_w != w)
        return;
    m->pred_w = NULL;
    m->pred_written = ev == ZW_CHANGED;
    if (m->list_armed) {
        /* A watched listing's watch, before the owner decided on it (a
         * server sends the reply before the news of a later change; this
         * only guards the order of delivery): zkc__qm_wait hears of it. */
        m->list_fired = 1;
        return;
    }
    m->ops->moved(m, ev == ZW_DELETED ? ZKC__QM_GONE : ev == ZW_CHANGED ? ZKC__QM_TOUCHED : ZKC__QM_CHANGED);
}

/* Did what we are about to wait for already happen? The owner decided on a
 * listing; the watch is set by a later read, and a change in between fires no
 * watch. Members ahead of us can only leave (sequence numbers only grow), so
 * the children list has changed for us exactly when fewer members are ahead of
 * us than in that listing. A node ahead has changed once its data version is
 * above 0: nobody writes a member's node but its owner, touching it when it
 * was admitted (a semaphore's kick, semaphore.c) or in the multi that deletes it
 * (zkc__qm_release: then a read finds it gone). Without this check a semaphore
 * waiter whose holders all left between its listing and its watch waited for
 * a change that never came, and the whole queue behind it with it. */
static int moved_already(zkc__qm *m, const zkc__req *r)
{
    if (r->kind != ZKC_REQ_CHILDREN)
        return r->stat.version > 0;
    zkc__member *v;
    int n, self, junk, styles;
    if (parse_listing(m, r, &v, &n, &self, &junk, &styles))
        return 1; /* out of memory: list again rather than risk waiting forever */
    free(v);
    return self < 0 || self < m->listed_self;
}

static void pred_get_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (!stale(r) && m->pred_w && r->watch == m->pred_w) {
        if (r->rc == ZR_NONODE) {
            /* Gone before we could watch it: no watch was set; look again. */
            drop_pred(m);
            m->pred_written = 0;
            m->ops->moved(m, r->kind == ZKC_REQ_GET ? ZKC__QM_GONE : ZKC__QM_CHANGED);
        } else if (r->rc != ZR_OK) {
            drop_pred(m);
            fail_rc(m, r->rc, "watching the node ahead of us");
        } else if (moved_already(m, r)) {
            /* Not TOUCHED: the node is still there (written and deleted in
             * one multi, it would be gone). */
            drop_pred(m);
            m->pred_written = r->kind == ZKC_REQ_GET;
            m->ops->moved(m, ZKC__QM_CHANGED);
        }
        /* else: wait for the watch. */
    }
    m->ops->unref(m);
}

void zkc__qm_wait(zkc__qm *m, const char *name)
{
    if (!name && m->list_armed) {
        /* The listing decided on set this watch: keep it. */
        int fired = m->list_fired;
        m->list_armed = 0;
        m->list_fired = 0;
        m->pred_written = 0;
        if (fired)
            m->ops->moved(m, ZKC__QM_CHANGED);
        return;
    }
    drop_pred(m);
    m->pred_w = zkc__watch_new(m->c, pred_fired, m);
    if (!m->pred_w) {
        failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    if (!name) {
        SEND(m, zkc__children(m->c, m->dir, m->pred_w, pred_get_done, m));
        return;
    }
    char *p = zkc__path_join(m->dir, name);
    if (!p) {
        drop_pred(m);
        failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    SEND(m, zkc__get(m->c, p, m->pred_w, pred_get_done, m));
    free(p);
}

static void any_send(zkc__qm *m, int i);

static void any_gone(zkc__qm *m, int i)
{
    drop_pred(m);
    m->any_gone = i;
    m->ops->moved(m, ZKC__QM_ANY_GONE);
}

static int any_index(zkc__qm *m, const zkc__watch *w)
{
    for (int i = 0; w && i < m->any_n; i++)
        if (m->any[i].w == w)
            return i;
    return -1;
}

static void any_fired(zkc__watch *w, int ev)
{
    zkc__qm *m = w->ctx;
    int i = any_index(m, w);
    if (i < 0)
        return;
    m->any[i].w = NULL;
    if (ev == ZW_DELETED)
        any_gone(m, i);
    else
        any_send(m, i); /* its data changed (a kick): still there, watch again */
}

static void any_get_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    int i = stale(r) ? -1 : any_index(m, r->watch);
    if (i >= 0) {
        if (r->rc == ZR_NONODE) {
            zkc__watch_drop(m->any[i].w);
            m->any[i].w = NULL;
            any_gone(m, i); /* gone before we could watch it: no watch was set */
        } else if (r->rc != ZR_OK) {
            drop_pred(m);
            fail_rc(m, r->rc, "watching the nodes ahead of us");
        }
        /* else: wait for the watch. */
    }
    m->ops->unref(m);
}

static void any_send(zkc__qm *m, int i)
{
    m->any[i].w = zkc__watch_new(m->c, any_fired, m);
    if (!m->any[i].w) {
        drop_pred(m);
        failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    SEND(m, zkc__get(m->c, m->any[i].path, m->any[i].w, any_get_done, m));
}

void zkc__qm_wait_any(zkc__qm *m, char *const *names, int n)
{
    drop_pred(m);
    m->any = calloc((size_t)n, sizeof *m->any);
    if (!m->any) {
        failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (!(m->any[i].path = zkc__path_join(m->dir, names[i]))) {
            m->any_n = i;
            drop_pred(m);
            failed(m, ZKC_ENOMEM, "out of memory");
            return;
        }
    }
    m->any_n = n;
    /* Each send can end the wait (a node found gone drops them all). */
    for (int i = 0; i < m->any_n; i++)
        any_send(m, i);
}

void zkc__qm_settle(zkc__qm *m)
{
    drop_pred(m);
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
    drop_pred(m);
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
            forget_node(m);
            return;
        }
    }
    if (m->node) {
        zkc__janitor_delete(c, m->node);
        forget_node(m);
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
    drop_pred(m);
    zkc__watch_drop(m->own_w);
    m->own_w = NULL;
    m->epoch++;
    m->listing = 0;
    m->phase = ZKC__QM_IDLE;
    forget_node(m);
}
