/*
 * The member core's listing and waiting (member.c holds the node itself:
 * create, recovery, our own node's watch, leave): list the queue and hand it
 * to the owner sorted, a listing shared with the client's other members of
 * the same queue ("shared listings" below); wait on one node ahead, on the
 * children list, or on any of several nodes (a semaphore's candidates), and
 * tell the owner what changed.
 *
 * What may be decided without listing again (issue 21). Sequence numbers only
 * grow and the queue node cannot be reaped while our node is in it, so nobody
 * ever queues ahead of us later: the members ahead of us now are a subset of
 * those ahead in our last listing. The owner may therefore decide on that
 * listing with members removed that it has learnt are gone, and keep a
 * decision that stays true when members ahead leave ("acquired": a mutex at
 * the head, a reader with no writer ahead, a semaphore index below its
 * leases); any other decision (a wait, which node to watch) needs a fresh
 * listing (or, for a semaphore, the names an admitted member ahead wrote into
 * its node: semaphore.c; zkc__qm_wait_any watches those). What tells the owner
 * a member is gone: the watch on it fired as deleted (ZKC__QM_GONE: that
 * member only), or it fired as written (ZKC__QM_TOUCHED) on a member whose
 * owner writes it only in the multi that also deletes it when its hold ends
 * (zkc__qm_release: a mutex or writer, which held only at the head, so
 * everything ahead of it is gone too). A node found already written when the
 * watch is set is still there: plain ZKC__QM_CHANGED. The one thing a listing
 * checked besides the order, that our own node is still there, the own-node
 * watch (member.c) keeps: one session hears its watches in the order of the
 * changes, so a deletion of our node before the news that lets us in reaches
 * the owner first (ops->gone), and a node found gone when that watch is set
 * counts the same (a no_own_watch owner, the inventory, learns of it from its
 * own request record).
 */
#include "member.h"

#include <stdlib.h>
#include <string.h>

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
        zkc__log(m->c, ZKC_LOG_WARN, "%s %s: ignoring %d child node(s) %s", ZKC__QM_WHAT(m), m->dir, junk,
                 m->ops->accept ? "not named as its members" : "without a sequence suffix");
    }
}

/* Parse children into sorted members (v: n + 1 slots, the caller frees it),
 * counting only the names accept takes when there is one. 0, or ZKC_ENOMEM. */
static int parse_children(int (*accept)(const char *), char **children, int nchildren, zkc__member **vout, int *nout,
                          int *junk, int *styles)
{
    zkc__member *v = calloc((size_t)nchildren + 1, sizeof *v);
    if (!v)
        return ZKC_ENOMEM;
    int n;
    *junk = 0;
    *styles = 0;
    if (accept) {
        /* Only the recipe's own names count; the rest is junk to it. */
        char **ok = calloc((size_t)nchildren + 1, sizeof *ok);
        if (!ok) {
            free(v);
            return ZKC_ENOMEM;
        }
        int k = 0;
        for (int i = 0; i < nchildren; i++)
            if (accept(children[i]))
                ok[k++] = children[i];
        n = zkc__members_parse(ok, k, v, NULL, styles);
        *junk = nchildren - n;
        free(ok);
    } else {
        n = zkc__members_parse(children, nchildren, v, junk, styles);
    }
    *vout = v;
    *nout = n;
    return 0;
}

/* Parse a listing reply and find ourselves (*self: -1 if our node is not in
 * it). */
static int parse_listing(zkc__qm *m, const zkc__req *r, zkc__member **vout, int *nout, int *self, int *junk,
                         int *styles)
{
    int rc = parse_children(m->ops->accept, r->children, r->nchildren, vout, nout, junk, styles);
    if (rc)
        return rc;
    *self = m->node_name ? zkc__member_find(*vout, *nout, m->node_name) : -1;
    return 0;
}

/* Hand a parsed listing to a member that asked for it (self: its index, -1
 * if its node is not in it). */
static void deliver(zkc__qm *m, const zkc__member *v, int n, int self, int junk, int styles)
{
    m->listing = 0;
    warn_once(m, v, n, junk, styles);
    if (self < 0) {
        zkc__qm_forget_node(m);
        zkc__qm_failed(m, ZKC_ESESSIONLOST, "%s %s: our queue node disappeared (deleted, or its session ended)",
                       ZKC__QM_WHAT(m), m->dir);
    } else {
        m->listed_self = self;
        m->listed_children = n + junk;
        m->ops->listed(m, v, n, self);
    }
}

static void list_done(zkc__req *r)
{
    zkc__qm *m = r->ctx;
    if (zkc__qm_stale(m, r->tag) || !m->listing) {
        m->ops->unref(m);
        return;
    }
    if (r->rc != ZR_OK) {
        m->listing = 0;
        zkc__qm_fail_rc(m, r->rc, "listing the queue");
        m->ops->unref(m);
        return;
    }
    zkc__member *v;
    int n, self, junk, styles;
    if (parse_listing(m, r, &v, &n, &self, &junk, &styles)) {
        m->listing = 0;
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
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
 * the first listing sent after it. One exception: a member's first listing
 * after its create, answered as made, needs a listing sent after the create
 * only, not after its reply. One session's requests are applied in the order
 * they were handed to the client (zkc__req.seq counts them), so such a
 * listing shows our node, and nothing we learnt of since could be stale in
 * it: we knew of nothing in this queue before we had a node there (the
 * listing behind the create, below, rests on the same order). So a burst of
 * creates answered one by one, each reply after a listing went out, joins
 * the listing out when the create was sent before it, rather than waiting
 * for the next: two listings (the one behind the first create, the one after
 * its reply), not one per reply that outruns a listing. Members with their
 * own idea of who counts (ops->accept, the inventory's request lines) share
 * with members of the same idea only; watched listings are sent alone (the
 * watch is one member's). */
typedef struct qlister {
    zkc__list_node link; /* in c->listers */
    char *dir;
    int (*accept)(const char *name); /* the members' ops->accept */
    int inflight;        /* a listing is out: new requests wait for the next */
    int delivering;      /* its reply is being handed out */
    int early;           /* listings behind a create out (see below): the
                          * client's other members share, they send none */
    zkc__list cur;       /* qwant: answered by the listing out */
    zkc__list next;      /* qwant: answered by the next one */
    zkc__req *out;       /* the listing out (while inflight) */
    unsigned sends;      /* listings sent */
} qlister;

typedef struct qwant {
    zkc__list_node link;
    zkc__qm *m;
    uint64_t epoch; /* the attempt that asked: a later one ignores the answer */
} qwant;

static void shared_send(zkc_client *c, qlister *ql);

static void lister_maybe_free(qlister *ql)
{
    if (ql->inflight || ql->delivering || ql->early || !zkc__list_empty(&ql->cur) || !zkc__list_empty(&ql->next))
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
    ql->out = NULL;
    ql->delivering = 1;
    /* Those who asked meanwhile get the next listing, sent now. */
    if (!zkc__list_empty(&ql->next) && r->rc != ZR_CLOSING) {
        zkc__list_take(&ql->cur, &ql->next);
        shared_send(c, ql);
    }
    zkc__member *v = NULL;
    int n = 0, junk = 0, styles = 0, nomem = 0;
    if (r->rc == ZR_OK)
        nomem = parse_children(ql->accept, r->children, r->nchildren, &v, &n, &junk, &styles) != 0;
    while (!zkc__list_empty(&batch)) {
        qwant *w = ZKC__CONTAINER_OF(batch.head.next, qwant, link);
        zkc__list_remove(&w->link);
        zkc__qm *m = w->m;
        if (w->epoch == m->epoch && m->listing) {
            if (r->rc != ZR_OK) {
                m->listing = 0;
                zkc__qm_fail_rc(m, r->rc, "listing the queue");
            } else if (nomem) {
                m->listing = 0;
                zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
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
                zkc__qm_fail_rc(m, r->rc, "listing the queue");
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
    unsigned sends = ++ql->sends;
    ql->inflight = 1; /* ql->out is NULL: nothing was out */
    zkc__req *r = zkc__children(c, ql->dir, NULL, shared_done, ql);
    if (ql->sends == sends && ql->inflight)
        ql->out = r; /* not answered (and freed) while being sent */
}

static qlister *lister_find(zkc__qm *m)
{
    zkc_client *c = m->c;
    for (zkc__list_node *it = c->listers.head.next; it != &c->listers.head; it = it->next) {
        qlister *q = ZKC__CONTAINER_OF(it, qlister, link);
        if (q->accept == m->ops->accept && !strcmp(q->dir, m->dir))
            return q;
    }
    return NULL;
}

static qlister *lister_new(zkc__qm *m)
{
    qlister *ql = calloc(1, sizeof *ql);
    if (!ql || !(ql->dir = strdup(m->dir))) {
        free(ql);
        return NULL;
    }
    ql->accept = m->ops->accept;
    zkc__list_init(&ql->cur);
    zkc__list_init(&ql->next);
    zkc__list_push_back(&m->c->listers, &ql->link);
    return ql;
}

/* 1: the listing out answers a member whose create was request number
 * `after` (0: none does): it was sent after it, or has not been sent yet (a
 * parked request is sent later). A re-sent one is judged by its last
 * sending, never earlier than its first. */
static int out_answers(const qlister *ql, uint64_t after)
{
    const zkc__req *r = ql->out;
    return after && r && (!r->sent || r->seq > after);
}

/* 0, or -1 (out of memory: the caller lists alone). after: zkc__qm.list_after. */
static int shared_list(zkc__qm *m, uint64_t after)
{
    zkc_client *c = m->c;
    qlister *ql = lister_find(m);
    qwant *w = malloc(sizeof *w);
    if (!w)
        return -1;
    if (!ql && !(ql = lister_new(m))) {
        free(w);
        return -1;
    }
    w->m = m;
    w->epoch = m->epoch;
    m->ops->ref(m);
    if (ql->inflight && !out_answers(ql, after)) {
        zkc__list_push_back(&ql->next, &w->link);
    } else {
        zkc__list_push_back(&ql->cur, &w->link);
        if (!ql->inflight)
            shared_send(c, ql);
    }
    return 0;
}

void zkc__qm_list_ahead(zkc__qm *m)
{
    qlister *ql = lister_find(m);
    if (ql && (ql->inflight || ql->early))
        return; /* members of this queue ask later: they take that one or the next */
    if (!ql && !(ql = lister_new(m)))
        return;
    shared_send(m->c, ql);
}

/* ---------------------------------------------------------------- the listing behind the create
 *
 * A lone member's first listing is sent right behind its create, not after
 * the create's reply (issue 19: an uncontended acquire in one round trip, not
 * two; Curator and kazoo, and the raw floor, wait for the create). That is
 * sound because one session's requests are applied in the order sent: the
 * server answers the listing after the create, so the listing shows our node
 * when the create succeeded, and our replies arrive in that order, so the
 * create's reply (our node's name, ops->joined) is handled before the
 * listing's. The first listing needs nothing newer: nobody can queue ahead of
 * a node already made (sequence numbers only grow). The listing is used only
 * if the owner asks for a plain listing while it is out and the create was
 * answered as made (not decided by recovery, not sent again); in every other
 * case it is dropped and the owner's request is answered as before, so a
 * reply that arrives in another order costs a listing, never a decision.
 * A client sends one such listing per queue at a time: its other members of
 * that queue share listings (above), as a burst of waiters of one process
 * must (issue 21: one listing per member would grow with the queue squared). */
typedef struct early_ctx {
    zkc__qm *m;
    qlister *ql; /* holds ql->early: while it is out, no member of this client
                  * sends another for this queue, so it is m's only one */
} early_ctx;

static void early_done(zkc__req *r)
{
    early_ctx *ec = r->ctx;
    zkc__qm *m = ec->m;
    ec->ql->early--;
    lister_maybe_free(ec->ql);
    int wanted = m->early == ZKC__QM_EARLY_WANTED && !zkc__qm_stale(m, r->tag) && m->listing &&
                 m->phase == ZKC__QM_IN;
    m->early = ZKC__QM_EARLY_NONE;
    free(ec);
    if (wanted) {
        zkc__member *v = NULL;
        int n, self = -1, junk, styles;
        if (r->rc == ZR_OK && parse_listing(m, r, &v, &n, &self, &junk, &styles) == 0 && self >= 0) {
            deliver(m, v, n, self, junk, styles);
        } else {
            /* Not what the order of replies promised, or no answer: the
             * owner's listing is sent now, as it would have been. */
            m->listing = 0;
            zkc__qm_list(m);
        }
        free(v);
    }
    m->ops->unref(m);
}

void zkc__qm_list_early(zkc__qm *m)
{
    m->early = ZKC__QM_EARLY_NONE;
    if (m->ops->accept || m->in_multi || m->no_early)
        return;
    zkc_client *c = m->c;
    qlister *ql = lister_find(m);
    if (ql)
        return; /* another member of this client lists this queue: share that */
    early_ctx *ec = malloc(sizeof *ec);
    if (!ec || !(ql = lister_new(m))) {
        free(ec);
        return;
    }
    ql->early++;
    ec->m = m;
    ec->ql = ql;
    m->early = ZKC__QM_EARLY_OUT;
    m->ops->ref(m);
    zkc__children(c, m->dir, NULL, early_done, ec)->tag = m->epoch;
}

void zkc__qm_list(zkc__qm *m)
{
    uint64_t after = m->list_after;
    m->list_after = 0; /* our first listing only */
    m->listing = 1;
    if (m->early == ZKC__QM_EARLY_OUT && m->phase == ZKC__QM_IN) {
        m->early = ZKC__QM_EARLY_WANTED; /* answered by the listing behind our create */
        return;
    }
    m->early = ZKC__QM_EARLY_NONE;
    if (shared_list(m, after) == 0)
        return;
    ZKC__QM_SEND(m, zkc__children(m->c, m->dir, NULL, list_done, m));
}

static void pred_fired(zkc__watch *w, int ev);

void zkc__qm_list_watched(zkc__qm *m)
{
    m->early = ZKC__QM_EARLY_NONE; /* that one set no watch */
    m->list_after = 0;
    drop_pred(m);
    m->pred_w = zkc__watch_new(m->c, pred_fired, m);
    if (!m->pred_w) {
        zkc__qm_list(m);
        return;
    }
    m->list_armed = 1;
    m->listing = 1;
    ZKC__QM_SEND(m, zkc__children(m->c, m->dir, m->pred_w, list_done, m));
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
    if (!zkc__qm_stale(m, r->tag) && m->pred_w && r->watch == m->pred_w) {
        if (r->rc == ZR_NONODE) {
            /* Gone before we could watch it: no watch was set; look again. */
            drop_pred(m);
            m->pred_written = 0;
            m->ops->moved(m, r->kind == ZKC_REQ_GET ? ZKC__QM_GONE : ZKC__QM_CHANGED);
        } else if (r->rc != ZR_OK) {
            drop_pred(m);
            zkc__qm_fail_rc(m, r->rc, "watching the node ahead of us");
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
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    if (!name) {
        ZKC__QM_SEND(m, zkc__children(m->c, m->dir, m->pred_w, pred_get_done, m));
        return;
    }
    char *p = zkc__path_join(m->dir, name);
    if (!p) {
        drop_pred(m);
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    ZKC__QM_SEND(m, zkc__get(m->c, p, m->pred_w, pred_get_done, m));
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
    int i = zkc__qm_stale(m, r->tag) ? -1 : any_index(m, r->watch);
    if (i >= 0) {
        if (r->rc == ZR_NONODE) {
            zkc__watch_drop(m->any[i].w);
            m->any[i].w = NULL;
            any_gone(m, i); /* gone before we could watch it: no watch was set */
        } else if (r->rc != ZR_OK) {
            drop_pred(m);
            zkc__qm_fail_rc(m, r->rc, "watching the nodes ahead of us");
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
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    ZKC__QM_SEND(m, zkc__get(m->c, m->any[i].path, m->any[i].w, any_get_done, m));
}

void zkc__qm_wait_any(zkc__qm *m, char *const *names, int n)
{
    drop_pred(m);
    m->any = calloc((size_t)n, sizeof *m->any);
    if (!m->any) {
        zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (!(m->any[i].path = zkc__path_join(m->dir, names[i]))) {
            m->any_n = i;
            drop_pred(m);
            zkc__qm_failed(m, ZKC_ENOMEM, "out of memory");
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
