/*
 * Leader election (zkc_election): one leader at a time among the participants
 * at a path, on the member core (member.c) like the locks, plus who leads as
 * anyone reads it (zkc_election_leader).
 *
 * A term, on the engine thread:
 *   join (the member creates "_c_<uuid>-latch-<seq>" holding "<id>[\0<data>]",
 *   deciding an unanswered create by its tag) -> list -> lowest? -> read our own
 *   node back: ephemeralOwner must be this session and the node must have been
 *   created in the current session generation -> leader, token = its czxid
 *   | not lowest: watch the node just ahead -> it changed: list again (or, when
 *   it was the head and went, straight to the owner check: sequence numbers only
 *   grow, so nobody can queue ahead of us later).
 *
 * Why the owner check: the double leaders reported against other libraries'
 * latches came from a client that, after its session expired and a new one was
 * opened, still took the node of the dead session for its own (it listed
 * before the server had removed it) and declared itself leader while another
 * participant, seeing that node gone, did the same. A grant here needs a read
 * of the node on the current session saying it is owned by that session.
 *
 * Why LOST is always reported: the term ends when the session that owns the
 * node ends, and the session layer presumes that end (timed from the last
 * packet heard) before the servers can expire it; the own-node watch of the
 * member reports a deletion by anyone else. Either one ends the term and tells
 * the listener LOST; a new term takes a new zkc_election_lead, hence a new node
 * and a larger token.
 *
 * Giving up (timeout, cancel, error) deletes the node before the caller hears
 * the status when a server is reachable, else the janitor deletes it.
 */
#include "election.h"

#include "member.h"
#include "txn.h"
#include "seqname.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 1024
#define DATA_MAX 65536
/* A lost answer to "are we the head?" is asked again this often at most
 * before the lead fails: bounded, though the lead's own timeout usually ends
 * it first. */
#define OWNER_TRIES 3
/* See lock.c: how long a failed lead waits for its node's delete before the
 * caller hears about it. */
#define ABORT_REPORT_WAIT_MS 250

enum { E_IDLE = 0, E_STANDING, E_LEADING, E_RESIGNING };

/* Written by the engine, read from any thread (token, is_leader). */
#define PUT(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELEASE)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_ACQUIRE)

typedef struct lead_op {
    zkc__op op;
    zkc_election *e;
    int timeout_ms;
    zkc_election_cb cb;
    void *ud;
    int64_t token;
} lead_op;

struct zkc_election {
    zkc__object obj;
    zkc__sess_listener sl;
    zkc__qm m;
    zkc_client *c;
    char *path;
    char *node_data; /* "<id>" or "<id>\0<data>" */
    int refs;        /* atomic */
    int destroyed;   /* engine */
    int api_destroyed;

    int phase;       /* E_*, engine */
    lead_op *lead;
    int next_in;     /* standing: the node we watch is the head and all that keeps us out */
    int owner_tries;
    zkc__timer timer;
    zkc__op *resign_op;
    int64_t token;   /* PUT/GET */
    int leading;     /* PUT/GET */
    int lost;        /* PUT/GET: the term ended without a resign */
    pthread_mutex_t gmu;
    char *term_node; /* under gmu: the node of the current (or last) term, for
                      * zkc_election_guard on any thread */
    int64_t term_token; /* under gmu: that term's token */

    zkc__listener lis;
};

/* ---------------------------------------------------------------- refs */

static void el_ref(zkc_election *e)
{
    zkc__ref_get(&e->refs);
}

static void el_unref(zkc_election *e)
{
    if (!zkc__ref_put(&e->refs))
        return;
    zkc_client *c = e->c;
    free(e->m.node);
    free(e->node_data);
    free(e->path);
    free(e->term_node);
    pthread_mutex_destroy(&e->gmu);
    zkc__listener_destroy(&e->lis);
    free(e);
    zkc__client_unref(c);
}

/* ---------------------------------------------------------------- events */

static void ev_call(void (*fn)(void), void *obj, int ev, void *ud)
{
    ((zkc_election_event_fn)fn)(obj, (zkc_election_event)ev, ud);
}

static void ev_hold(void *obj)
{
    el_ref(obj);
}

static void ev_drop(void *obj)
{
    el_unref(obj);
}

static void tell(zkc_election *e, zkc_election_event ev)
{
    zkc__listener_post(e->c, &e->lis, (int)ev);
}

/* The term is over without a resign: say so once. */
static void term_lost(zkc_election *e)
{
    PUT(e->leading, 0);
    PUT(e->lost, 1);
    e->phase = E_IDLE;
    tell(e, ZKC_ELECTION_EVENT_LOST);
}

/* ---------------------------------------------------------------- ending a lead */

/* Leave the current attempt and report `status` once its node is gone (or the
 * janitor has it). */
static void lead_abort(zkc_election *e, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void lead_abort(zkc_election *e, int status, const char *fmt, ...)
{
    lead_op *a = e->lead;
    e->lead = NULL;
    e->phase = E_IDLE;
    zkc__timer_disarm(e->c, &e->timer);
    char msg[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (a)
        zkc__qm_leave_finish(&e->m, ABORT_REPORT_WAIT_MS, &a->op, status, "%s", msg);
    else
        zkc__qm_leave(&e->m, 0, NULL, NULL);
}

static void grant(zkc_election *e, int64_t czxid)
{
    lead_op *a = e->lead;
    e->lead = NULL;
    e->phase = E_LEADING;
    zkc__timer_disarm(e->c, &e->timer);
    zkc__qm_settle(&e->m);
    /* NULL (out of memory): zkc_election_guard says so; the term stands. */
    char *node = e->m.node ? strdup(e->m.node) : NULL;
    pthread_mutex_lock(&e->gmu);
    free(e->term_node);
    e->term_node = node;
    e->term_token = czxid;
    pthread_mutex_unlock(&e->gmu);
    PUT(e->token, czxid);
    PUT(e->lost, 0);
    PUT(e->leading, 1);
    a->token = czxid;
    zkc__op_finish(&a->op, 0, NULL);
}

/* ---------------------------------------------------------------- the owner check */

static zkc_election *of(zkc__qm *m)
{
    return ZKC__CONTAINER_OF(m, zkc_election, m);
}

static void owner_check(zkc_election *e);

static void owner_done(zkc__req *r)
{
    zkc_election *e = r->ctx;
    zkc_client *c = e->c;
    if (zkc__qm_stale(&e->m, r->tag) || !e->lead) {
        el_unref(e);
        return;
    }
    if (r->rc == ZR_OK && r->stat.ephemeral_owner == c->session_id && e->m.node_gen == c->gen &&
        r->gen == c->gen) {
        grant(e, r->stat.czxid);
    } else if (r->rc == ZR_OK || r->rc == ZR_NONODE) {
        /* A node of an earlier session (or gone): never ours to lead with.
         * The janitor deletes it if it is still there; stand again. */
        zkc__log(c, ZKC_LOG_WARN,
                 "election %s: node %s is not owned by the current session (owner 0x%llx, ours 0x%llx): "
                 "standing again",
                 e->path, e->m.node ? e->m.node : "?", (unsigned long long)r->stat.ephemeral_owner,
                 (unsigned long long)c->session_id);
        zkc__qm_lost(&e->m);
        if (++e->owner_tries > OWNER_TRIES)
            lead_abort(e, ZKC_ESESSIONLOST, "election %s: our node kept belonging to an ended session", e->path);
        else
            zkc__qm_join(&e->m);
    } else if ((zkc__zrc_indeterminate(r->rc) || r->rc == ZR_NOTSENT) && ++e->owner_tries <= OWNER_TRIES) {
        owner_check(e); /* a read: asking again is harmless */
    } else {
        int st = r->rc == ZR_NOTSENT ? ZKC_ECONNLOSS : zkc__map_zrc(r->rc);
        lead_abort(e, st, "election %s: reading our node back failed: %s", e->path, zkc__zrc_name(r->rc));
    }
    el_unref(e);
}

static void owner_check(zkc_election *e)
{
    el_ref(e);
    zkc__exists(e->c, e->m.node, NULL, owner_done, e)->tag = e->m.epoch;
}

/* ---------------------------------------------------------------- the member's events */

static void m_ref(zkc__qm *m)
{
    el_ref(of(m));
}

static void m_unref(zkc__qm *m)
{
    el_unref(of(m));
}

static void m_joined(zkc__qm *m)
{
    if (of(m)->lead)
        zkc__qm_list(m);
}

static void m_listed(zkc__qm *m, const zkc__member *v, int n, int self)
{
    zkc_election *e = of(m);
    ZKC__UNUSED(n);
    if (!e->lead)
        return;
    if (self == 0) {
        owner_check(e);
        return;
    }
    if (e->lead->timeout_ms == 0) {
        lead_abort(e, ZKC_ETIMEDOUT, "election %s: %s leads (timeout 0: not waiting)", e->path, v[0].name);
        return;
    }
    e->next_in = self == 1;
    zkc__qm_wait(m, v[self - 1].name);
}

static void m_moved(zkc__qm *m, int how)
{
    zkc_election *e = of(m);
    if (!e->lead)
        return;
    if (how == ZKC__QM_GONE && e->next_in)
        owner_check(e); /* the head went: we are it (see the top of the file) */
    else
        zkc__qm_list(m);
}

static void m_failed(zkc__qm *m, int status, const char *msg)
{
    zkc_election *e = of(m);
    if (e->lead)
        lead_abort(e, status, "%s", msg);
}

static void m_gone(zkc__qm *m)
{
    zkc_election *e = of(m);
    if (e->phase == E_LEADING) {
        zkc__log(e->c, ZKC_LOG_WARN, "election %s: our leader node was deleted by another client: leadership LOST",
                 e->path);
        term_lost(e);
    } else if (e->lead) {
        lead_abort(e, ZKC_ESESSIONLOST, "election %s: our node was deleted by another client while standing", e->path);
    }
}

static const zkc__qm_ops election_member_ops = {m_ref, m_unref, m_joined, m_listed, m_moved, m_failed, m_gone,
                                                NULL, NULL};

/* ---------------------------------------------------------------- session */

static void el_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    zkc_election *e = ZKC__CONTAINER_OF(sl, zkc_election, sl);
    int leading = e->phase == E_LEADING;
    switch ((int)st) {
    case ZKC_STATE_SUSPENDED:
        if (leading)
            tell(e, ZKC_ELECTION_EVENT_SUSPENDED);
        break;
    case ZKC_STATE_RECONNECTED:
        if (leading)
            tell(e, ZKC_ELECTION_EVENT_RECONNECTED);
        break;
    case ZKC_STATE_LOST:
        if (leading && e->m.node_gen == gen) {
            /* Presumed or confirmed: either way another participant may lead
             * soon; the janitor deletes the node from the next session, which
             * lets the next one in sooner than the servers' expiry would. */
            zkc__qm_lost(&e->m);
            term_lost(e);
        } else if (e->lead) {
            lead_abort(e, ZKC_ESESSIONLOST, "election %s: the ZooKeeper session ended while standing", e->path);
        }
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- lead */

static void timer_fired(zkc__timer *t)
{
    zkc_election *e = ZKC__CONTAINER_OF(t, zkc_election, timer);
    if (e->lead)
        lead_abort(e, ZKC_ETIMEDOUT, "election %s: not leader within %d ms", e->path, e->lead->timeout_ms);
}

static void lead_start(zkc__op *op)
{
    lead_op *a = ZKC__CONTAINER_OF(op, lead_op, op);
    zkc_election *e = a->e;
    if (e->destroyed) {
        zkc__op_finish(op, ZKC_ECLOSED, "election %s is being destroyed", e->path);
        return;
    }
    if (e->lead || e->phase == E_RESIGNING) {
        zkc__op_finish(op, ZKC_EBUSY, "election %s: a lead or resign of this object is already running", e->path);
        return;
    }
    if (e->phase == E_LEADING) {
        a->token = e->token;
        zkc__op_finish(op, 0, NULL);
        return;
    }
    e->lead = a;
    e->phase = E_STANDING;
    e->owner_tries = 0;
    e->next_in = 0;
    PUT(e->lost, 0);
    if (a->timeout_ms > 0)
        zkc__timer_arm(e->c, &e->timer, zkc__now_ms() + a->timeout_ms);
    zkc__qm_join(&e->m);
}

static void lead_invoke(zkc__op *op)
{
    lead_op *a = ZKC__CONTAINER_OF(op, lead_op, op);
    if (a->cb)
        a->cb(a->e, op->status, op->status ? 0 : a->token, a->ud);
}

static void lead_release(zkc__op *op)
{
    lead_op *a = ZKC__CONTAINER_OF(op, lead_op, op);
    zkc_election *e = a->e;
    free(a);
    el_unref(e);
}

static int check_el(zkc_election *e, int timeout_ms, const char *fn)
{
    if (!e)
        return zkc__err(ZKC_EINVAL, "%s: election is NULL", fn);
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "%s: timeout %d ms is negative (use ZKC_FOREVER)", fn, timeout_ms);
    if (GET(e->api_destroyed))
        return zkc__err(ZKC_EINVAL, "%s: election %s was destroyed", fn, e->path);
    return 0;
}

static lead_op *lead_new(zkc_election *e, int timeout_ms, zkc_election_cb cb, void *ud)
{
    lead_op *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->op.c = e->c;
    a->op.invoke = lead_invoke;
    a->op.release = lead_release;
    a->e = e;
    a->timeout_ms = timeout_ms;
    a->cb = cb;
    a->ud = ud;
    el_ref(e);
    return a;
}

int zkc_election_lead(zkc_election *e, int timeout_ms, int64_t *token)
{
    int rc = check_el(e, timeout_ms, "zkc_election_lead");
    if (rc || (rc = zkc__check_blocking(e->c)) != 0)
        return rc;
    lead_op *a = lead_new(e, timeout_ms, NULL, NULL);
    if (!a)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    rc = zkc__op_run(&a->op, lead_start, 1);
    if (rc == 0 && token)
        *token = a->token;
    a->op.release(&a->op);
    return rc;
}

int zkc_election_lead_async(zkc_election *e, int timeout_ms, zkc_election_cb cb, void *ud)
{
    int rc = check_el(e, timeout_ms, "zkc_election_lead_async");
    if (rc)
        return rc;
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_election_lead_async: callback is NULL");
    lead_op *a = lead_new(e, timeout_ms, cb, ud);
    if (!a)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    return zkc__op_run(&a->op, lead_start, 0);
}

/* ---------------------------------------------------------------- calls: cancel, resign, register, destroy */

static void cancel_start(zkc__op *op)
{
    zkc_election *e = zkc__call_ctx(op);
    if (e->lead)
        lead_abort(e, ZKC_ECANCELED, "election %s: lead cancelled", e->path);
    zkc__op_finish(op, 0, NULL);
}

int zkc_election_cancel(zkc_election *e)
{
    int rc = check_el(e, 0, "zkc_election_cancel");
    if (rc)
        return rc;
    if (zkc__on_engine(e->c))
        return zkc__err(ZKC_EDEADLK, "zkc_election_cancel from the engine thread");
    return zkc__call_run(e->c, cancel_start, e);
}

static void resigned(void *ctx)
{
    zkc_election *e = ctx;
    zkc__op *op = e->resign_op;
    e->resign_op = NULL;
    if (e->phase == E_RESIGNING)
        e->phase = E_IDLE;
    if (op)
        zkc__op_finish(op, 0, NULL);
}

typedef struct resign_op {
    zkc__op op;
    zkc_election *e;
    zkc_election_resign_cb cb;
    void *ud;
} resign_op;

static void resign_invoke(zkc__op *op)
{
    resign_op *r = ZKC__CONTAINER_OF(op, resign_op, op);
    if (r->cb)
        r->cb(r->e, op->status, r->ud);
}

static void resign_release(zkc__op *op)
{
    resign_op *r = ZKC__CONTAINER_OF(op, resign_op, op);
    zkc_election *e = r->e;
    free(r);
    el_unref(e);
}

static void resign_start(zkc__op *op)
{
    zkc_election *e = ZKC__CONTAINER_OF(op, resign_op, op)->e;
    if (e->destroyed) {
        zkc__op_finish(op, ZKC_ECLOSED, "election %s is being destroyed", e->path);
        return;
    }
    if (GET(e->lost)) {
        PUT(e->lost, 0);
        zkc__op_finish(op, ZKC_ESESSIONLOST,
                       "election %s: the term had already been LOST (session ended or node deleted)", e->path);
        return;
    }
    if (e->phase != E_LEADING) {
        zkc__op_finish(op, ZKC_ENOTHELD, "election %s: resign by a participant that does not lead", e->path);
        return;
    }
    /* Not leader from here on, before the delete is even sent. */
    PUT(e->leading, 0);
    e->phase = E_RESIGNING;
    e->resign_op = op;
    zkc__qm_leave(&e->m, -1, resigned, e);
}

static int resign_run(zkc_election *e, zkc_election_resign_cb cb, void *ud, int blocking)
{
    resign_op *r = calloc(1, sizeof *r);
    if (!r)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    r->op.c = e->c;
    r->op.invoke = resign_invoke;
    r->op.release = resign_release;
    r->e = e;
    r->cb = cb;
    r->ud = ud;
    el_ref(e);
    int rc = zkc__op_run(&r->op, resign_start, blocking);
    if (blocking)
        r->op.release(&r->op);
    return rc;
}

int zkc_election_resign(zkc_election *e)
{
    int rc = check_el(e, 0, "zkc_election_resign");
    if (rc || (rc = zkc__check_blocking(e->c)) != 0)
        return rc;
    return resign_run(e, NULL, NULL, 1);
}

int zkc_election_resign_async(zkc_election *e, zkc_election_resign_cb cb, void *ud)
{
    int rc = check_el(e, 0, "zkc_election_resign_async");
    if (rc)
        return rc;
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_election_resign_async: callback is NULL");
    return resign_run(e, cb, ud, 0);
}

static void el_shutdown(zkc__object *o)
{
    zkc_election *e = ZKC__CONTAINER_OF(o, zkc_election, obj);
    /* The term ends with the session, which the client closes next. */
    zkc__qm_forget(&e->m);
    zkc__timer_disarm(e->c, &e->timer);
    if (e->lead) {
        lead_op *a = e->lead;
        e->lead = NULL;
        zkc__op_finish(&a->op, ZKC_ECANCELED, "election %s: the client is being destroyed", e->path);
    }
    if (e->resign_op) {
        zkc__op_finish(e->resign_op, 0, NULL);
        e->resign_op = NULL;
    }
    PUT(e->leading, 0);
    e->phase = E_IDLE;
    zkc__sess_unlisten(e->c, &e->sl);
    zkc__object_unlink(e->c, &e->obj);
}

static void register_start(zkc__op *op)
{
    zkc_election *e = zkc__call_ctx(op);
    zkc__object_link(e->c, &e->obj);
    zkc__sess_listen(e->c, &e->sl);
    zkc__op_finish(op, 0, NULL);
}

static void destroy_start(zkc__op *op)
{
    zkc_election *e = zkc__call_ctx(op);
    if (e->lead)
        lead_abort(e, ZKC_ECANCELED, "election %s: destroyed while standing", e->path);
    /* Still leading: the node goes now, or with the janitor. */
    PUT(e->leading, 0);
    zkc__qm_leave(&e->m, 0, NULL, NULL);
    zkc__timer_disarm(e->c, &e->timer);
    e->destroyed = 1;
    if (e->obj.linked) {
        zkc__sess_unlisten(e->c, &e->sl);
        zkc__object_unlink(e->c, &e->obj);
    }
    zkc__op_finish(op, 0, NULL);
}

/* ---------------------------------------------------------------- lifecycle */

static zkc_election *el_new(zkc_client *c, const char *path, const char *id, const void *data, int len)
{
    size_t idl = strlen(id);
    zkc_election *e = calloc(1, sizeof *e);
    size_t nl = idl + (len > 0 ? 1 + (size_t)len : 0);
    if (!e || !(e->path = strdup(path)) || !(e->node_data = malloc(nl + 1))) {
        if (e)
            free(e->path);
        free(e);
        return NULL;
    }
    memcpy(e->node_data, id, idl);
    if (len > 0) {
        e->node_data[idl] = 0;
        memcpy(e->node_data + idl + 1, data, (size_t)len);
    }
    e->node_data[nl] = 0;
    e->c = c;
    e->refs = 1;
    e->obj.shutdown = el_shutdown;
    e->sl.fn = el_session;
    e->m.ops = &election_member_ops;
    e->m.c = c;
    e->m.dir = e->path;
    e->m.tag = "latch-";
    e->m.what = "election";
    e->m.node_data = e->node_data;
    e->m.node_len = (int)nl;
    zkc__timer_init(&e->timer, timer_fired);
    pthread_mutex_init(&e->gmu, NULL);
    zkc__listener_init(&e->lis, e, &e->api_destroyed, ev_call, ev_hold, ev_drop);
    zkc__client_ref(c);
    return e;
}

int zkc_election_create(zkc_client *c, const char *path, const char *participant_id, const void *data, int len,
                        zkc_election **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_election_create: output pointer is NULL");
    *out = NULL;
    if (!c || !participant_id)
        return zkc__err(ZKC_EINVAL, "zkc_election_create: NULL argument");
    int rc = zkc__path_check(path, "election path");
    if (rc)
        return rc;
    size_t idl = strlen(participant_id);
    if (idl == 0 || idl > ID_MAX)
        return zkc__err(ZKC_EINVAL, "election %s: participant id must be 1 to %d bytes (got %zu)", path, ID_MAX, idl);
    if (len < 0 || len > DATA_MAX || (len > 0 && !data))
        return zkc__err(ZKC_EINVAL, "election %s: data length %d (0 to %d, data not NULL when > 0)", path, len,
                        DATA_MAX);
    if (GET(c->api_closing))
        return zkc__err(ZKC_ECLOSED, "the client is being destroyed");
    zkc_election *e = el_new(c, path, participant_id, data, len);
    if (!e)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    /* Linked into its client on the engine, the only thread that walks those
     * lists. */
    if ((rc = zkc__call_run(c, register_start, e)) != 0) {
        zkc_election_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

void zkc_election_destroy(zkc_election *e)
{
    if (!e)
        return;
    if (__atomic_exchange_n(&e->api_destroyed, 1, __ATOMIC_ACQ_REL)) {
        zkc__set_errmsg("zkc_election_destroy called twice");
        return;
    }
    /* With the client gone or going, its shutdown already ended our work. */
    if (!GET(e->c->api_closing))
        zkc__call_run(e->c, destroy_start, e);
    el_unref(e);
}

int zkc_election_token(zkc_election *e, int64_t *token)
{
    if (!e || !token)
        return zkc__err(ZKC_EINVAL, "zkc_election_token: NULL argument");
    /* A snapshot: the engine publishes token and leading before it completes
     * the lead a caller waited for. */
    if (!GET(e->leading) || GET(e->lost))
        return zkc__err(ZKC_ENOTHELD, "election %s: this participant does not lead", e->path);
    *token = GET(e->token);
    return 0;
}

int zkc_election_guard(zkc_election *e, zkc_guard *out)
{
    if (!e || !out)
        return zkc__err(ZKC_EINVAL, "zkc_election_guard: NULL argument");
    if (!GET(e->leading) || GET(e->lost))
        return zkc__err(ZKC_ENOTHELD, "election %s: this participant does not lead", e->path);
    /* The node of a term that ends meanwhile only makes the guard refuse
     * writes, which is what it is for (as zkc_lock_guard). */
    char what[ZKC__PATH_MAX + 16];
    snprintf(what, sizeof what, "election %s", e->path);
    pthread_mutex_lock(&e->gmu);
    int rc = zkc__guard_of_hold(out, e->term_node, e->term_token, "zkc_election_guard", what);
    pthread_mutex_unlock(&e->gmu);
    return rc;
}

int zkc_election_is_leader(zkc_election *e)
{
    return e && GET(e->leading) && !GET(e->lost) && zkc_client_connected(e->c);
}

void zkc_election_set_listener(zkc_election *e, zkc_election_event_fn fn, void *ud)
{
    if (e)
        zkc__listener_set(&e->lis, (void (*)(void))fn, ud);
}

const char *zkc_election_path(zkc_election *e)
{
    return e ? e->path : NULL;
}

int zkc__election_term(zkc_election *e, const char **node, int64_t *czxid)
{
    if (e->phase != E_LEADING || !e->m.node || e->lost)
        return ZKC_ENOTHELD;
    *node = e->m.node;
    *czxid = e->token;
    return 0;
}

/* ---------------------------------------------------------------- who leads */

/* The head may leave between the listing and the read: list again, this often. */
#define LEADER_TRIES 5

typedef struct leader_op {
    zkc__op op;
    char *path;
    int tries;
    zkc_election_leader_info info;
    zkc_election_leader_cb cb;
    void *ud;
} leader_op;

static void leader_invoke(zkc__op *op)
{
    leader_op *lo = ZKC__CONTAINER_OF(op, leader_op, op);
    if (lo->cb)
        lo->cb(op->c, op->status, op->status ? NULL : &lo->info, lo->ud);
}

static void leader_release(zkc__op *op)
{
    leader_op *lo = ZKC__CONTAINER_OF(op, leader_op, op);
    zkc_election_leader_free(&lo->info);
    free(lo->path);
    free(lo);
}

static void leader_list(leader_op *lo);

static void leader_fail(leader_op *lo, int rc, const char *doing)
{
    int st = rc == ZR_NOTSENT ? ZKC_ECONNLOSS : zkc__map_zrc(rc);
    zkc__op_finish(&lo->op, st, "election %s: %s failed: %s", lo->path, doing, zkc__zrc_name(rc));
}

static void leader_got(zkc__req *r)
{
    leader_op *lo = r->ctx;
    if (r->rc == ZR_NONODE && ++lo->tries < LEADER_TRIES) {
        free(lo->info.node);
        lo->info.node = NULL;
        leader_list(lo); /* it left while we looked: who leads now */
        return;
    }
    if (r->rc != ZR_OK) {
        leader_fail(lo, r->rc, "reading the leader's node");
        return;
    }
    /* "<id>\0<data>" from zkcoord; a peer library's node is all id. */
    const char *v = r->value ? r->value : "";
    size_t vl = r->valuelen > 0 ? (size_t)r->valuelen : 0;
    size_t idl = strnlen(v, vl);
    zkc_election_leader_info *in = &lo->info;
    in->participant_id = strndup(v, idl);
    if (idl < vl) {
        in->len = (int)(vl - idl - 1);
        in->data = malloc((size_t)in->len + 1);
        if (in->data) {
            memcpy(in->data, v + idl + 1, (size_t)in->len);
            ((char *)in->data)[in->len] = 0;
        }
    }
    in->token = r->stat.czxid;
    in->session_id = r->stat.ephemeral_owner;
    if (!in->participant_id || (idl < vl && !in->data)) {
        zkc__op_finish(&lo->op, ZKC_ENOMEM, "out of memory");
        return;
    }
    zkc__op_finish(&lo->op, 0, NULL);
}

static void leader_listed(zkc__req *r)
{
    leader_op *lo = r->ctx;
    if (r->rc == ZR_NONODE) {
        zkc__op_finish(&lo->op, ZKC_ENONODE, "election %s: no such election node", lo->path);
        return;
    }
    if (r->rc != ZR_OK) {
        leader_fail(lo, r->rc, "listing the participants");
        return;
    }
    zkc__member *m = calloc((size_t)r->nchildren + 1, sizeof *m);
    if (!m) {
        zkc__op_finish(&lo->op, ZKC_ENOMEM, "out of memory");
        return;
    }
    int n = zkc__members_parse(r->children, r->nchildren, m, NULL, NULL);
    if (n == 0) {
        free(m);
        zkc__op_finish(&lo->op, ZKC_ENONODE, "election %s: nobody stands", lo->path);
        return;
    }
    lo->info.node = strdup(m[0].name);
    char *p = zkc__path_join(lo->path, m[0].name);
    free(m);
    if (!lo->info.node || !p) {
        free(p);
        zkc__op_finish(&lo->op, ZKC_ENOMEM, "out of memory");
        return;
    }
    zkc__get(r->c, p, NULL, leader_got, lo);
    free(p);
}

static void leader_list(leader_op *lo)
{
    zkc__children(lo->op.c, lo->path, NULL, leader_listed, lo);
}

static void leader_start(zkc__op *op)
{
    leader_list(ZKC__CONTAINER_OF(op, leader_op, op));
}

static leader_op *leader_new(zkc_client *c, const char *path, const char *fn, int *rc)
{
    if (!c) {
        *rc = zkc__err(ZKC_EINVAL, "%s: client is NULL", fn);
        return NULL;
    }
    if ((*rc = zkc__path_check(path, "election path")) != 0)
        return NULL;
    leader_op *lo = calloc(1, sizeof *lo);
    if (!lo || !(lo->path = strdup(path))) {
        free(lo);
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    lo->op.c = c;
    lo->op.invoke = leader_invoke;
    lo->op.release = leader_release;
    return lo;
}

int zkc_election_leader(zkc_client *c, const char *path, zkc_election_leader_info *out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_election_leader: output is NULL");
    memset(out, 0, sizeof *out);
    int rc;
    leader_op *lo = leader_new(c, path, "zkc_election_leader", &rc);
    if (!lo)
        return rc;
    if ((rc = zkc__check_blocking(c)) != 0) {
        lo->op.release(&lo->op);
        return rc;
    }
    rc = zkc__op_run(&lo->op, leader_start, 1);
    if (rc == 0) {
        *out = lo->info;
        memset(&lo->info, 0, sizeof lo->info);
    }
    lo->op.release(&lo->op);
    return rc;
}

int zkc_election_leader_async(zkc_client *c, const char *path, zkc_election_leader_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_election_leader_async: callback is NULL");
    int rc;
    leader_op *lo = leader_new(c, path, "zkc_election_leader_async", &rc);
    if (!lo)
        return rc;
    lo->cb = cb;
    lo->ud = ud;
    return zkc__op_run(&lo->op, leader_start, 0);
}

void zkc_election_leader_free(zkc_election_leader_info *info)
{
    if (!info)
        return;
    free(info->participant_id);
    free(info->data);
    free(info->node);
    memset(info, 0, sizeof *info);
}
