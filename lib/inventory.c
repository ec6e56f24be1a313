/*
 * Fair inventory reservation: one FIFO request queue per SKU, served in
 * batches by the requester at its head.
 *
 * LAYOUT under the inventory root R (formats in lib/inventory_codec.h):
 *   R                  data "zkci1"; reap's heartbeat writes it to read the
 *                      servers' clock
 *   R/sku/<sku>        the SKU record "zkcs1 <available> <reserved> <sold>
 *                      <total>". Every change of a SKU's units is ONE versioned
 *                      setData of this node, so one read is a consistent
 *                      snapshot and available + reserved + sold == total can be
 *                      checked on any read. Created by the first restock.
 *   R/sku/<sku>/q/     the SKU's queue: one EPHEMERAL_SEQUENTIAL node per
 *                      waiting request line, "_c_<nonce>-r-<seq>", data "zkcq1
 *                      ..." (quantity, flags, lines, hold time, nonce, request
 *                      id). Each is a member of the member core (lib/member.c,
 *                      as lock nodes "_c_<uuid>-lock-<seq>"): its attempt tag is
 *                      the nonce, its recipe tag "r-". Until 0.1.0 is released
 *                      this on-server format may change (it was
 *                      "r-<nonce>-<seq>" before the member core took over).
 *   R/req/<2 hex>/<id> the request record (persistent), "zkcr1 <STATE> ..." with
 *                      its lines, hold time, flags, owner session and the nonce
 *                      of its current enqueue. 256 buckets (FNV-1a of the id,
 *                      created by the first zkc_inventory_create) keep listings
 *                      small. Time fields are not stored: the record's ctime is
 *                      its creation, its mtime in state RESERVED its grant
 *                      (servers' clock).
 *   Parents are persistent nodes, never containers. Every record starts with a
 *   format version (zkcs1, zkcr1, zkcq1): a later release reads these and
 *   refuses unknown versions with a message.
 *
 * STOCK AND THE COUNTER RECIPE. The queue owns a SKU's units. They are not
 * zkc_counter nodes: the SKU record is a versioned four-field text record, and
 * it is updated on the counter recipe's transaction core (lib/txn.c: read,
 * versioned setData in a multi with the other effects of the same decision,
 * the core's backoff and retry on BadVersion, refuse a node whose version
 * wrapped to -1) rather than through the counter API, because a reservation must move units between fields and write request
 * records and queue nodes in the same transaction. A write that bypasses the
 * queue is refused or detected, never silently fixed: zkc_counter_* on a SKU
 * node refuses with ZKC_EBADDATA (the record is no counter format); a raw write
 * that breaks the format or the invariant makes every reservation operation on
 * that SKU fail with ZKC_EBADDATA and a message naming the node, and nothing
 * is written over it.
 *
 * ENQUEUE = one multi: create(R/req/<b>/<id>, PENDING) + create(q/_c_<nonce>-r-,
 * EPHEMERAL_SEQUENTIAL) for every line, the member core's tagged create
 * (zkc__qm_create_op) carried in our multi. NODEEXISTS on the record means the id
 * was seen before: we read it and return its outcome (RESERVED/SOLD: 0 and that
 * state; RETURNED/EXPIRED: ZKC_EEXISTS, the id is spent), follow it while it is
 * PENDING with a live queue node (a second process with the same id waits for
 * the first one's outcome), or enqueue it again, with a new nonce, in one multi
 * conditional on the record's version, when no unit was ever held under it
 * (OUT_OF_STOCK, TIMED_OUT, or PENDING without queue nodes = ABANDONED: a
 * restarted worker retrying its order). So an id reserves at most once.
 * Because all lines are created in one transaction, every SKU queue sees one
 * global arrival order (record czxid order, and within one transaction op
 * order, which is each queue's sequence order), so the oldest waiting request
 * is at the head of every queue it is in, and multi-line orders cannot wait on
 * each other in a cycle. COMBINING: fresh enqueues of one client that are
 * ready while its previous enqueue multi is out go together in the next one
 * (records and nodes request after request, in the order they became ready);
 * a request whose own op fails it is told as if alone, the others resend
 * ahead of later arrivals. One write per batch instead of per order; the
 * debug log names each request's queue node.
 * LOST REPLY of an enqueue multi: sync, read the record. It names the nonce
 * that won: ours and PENDING means the multi applied, and then each line's
 * member is decided by the member core's tag logic (zkc__qm_created: sync,
 * list, find the nonce, check the node belongs to this session); a node not
 * found, or of a session that ended, is reported (ops->absent), never created
 * alone, and the request ends ZKC_ESESSIONLOST (look it up). No record means
 * nothing applied (enqueue again); another nonce or state is the id seen
 * before (above). One decision path, the record, with the member core's
 * find; the record is written in the same multi, so it cannot disagree.
 * LIMIT: before enqueueing we stat each queue (numChildren, no listing) and
 * refuse with ZKC_ELIMIT when it already holds >= 10000 waiting requests. That
 * keeps one getChildren of a queue (names are 28 bytes: about 320 KB for 10000)
 * well below jute.maxbuffer (1 MB; a flat queue of longer names overflows it at
 * 15-20 thousand). Nobody lists a whole queue per grant: a new request lists
 * its queues once, a head once per batch, a lookup once. The check and the
 * create are not atomic: concurrent enqueuers can pass it together, so a queue
 * can exceed 10000 by at most their number. The requests of one object that
 * check a queue while a stat of it is out take its answer (one stat per queue
 * and round trip, not per order); that answer may predate them by a round
 * trip, which the bound above already allows for. And a queue the object saw
 * (by a stat or a listing) within the last second holding at most 5000 is
 * not looked at again: the bound then also allows for what is enqueued into
 * one queue within a second of such a look (lib/inventory_enqueue.c, "lengths
 * seen lately").
 *
 * GRANTING. After enqueueing, a request lists its queues to find its
 * position (a listing shared with the client's other requests that need one
 * of that queue meanwhile: lib/member_wait.c, "shared listings"): first its
 * lead line's, the queue its object saw longest lately, sent right behind
 * the enqueue multi (zkc__qm_list_ahead: answered one round trip after the
 * multi, not two), and its other lines' only once it heads that one
 * (lib/inventory_request.c, queued_step: a batch in a longer queue usually
 * decides it first, and nothing but its own round needs its places there). The
 * request whose node is at the head (lowest sequence, RFC 1982
 * order via zkc__members_parse) of a single-line queue is that queue's granter:
 * it lists the queue once per batch, reads the SKU record and the queued entries
 * of the batch (not those of requests of its own object: it knows them, and
 * tells those it decides their outcome when its multi applies, so they do not
 * re-read their records; lib/inventory_grant.c, "our own members"), walks the
 * queue in order and decides in ONE multi: versioned
 * setData of the SKU record (available -= granted, reserved += granted), and for
 * each decided request: setData of its record (RESERVED or OUT_OF_STOCK) and
 * delete of its queue node. At most 64 decisions per multi (about 20 KB, well
 * inside jute.maxbuffer). FAIRNESS POLICY, the only one offered: strict FIFO.
 * The walk stops at the first request that does not fit and waits for restock
 * (so a large request at the head blocks smaller ones behind it, including
 * fail-fast ones, until stock arrives or it leaves); a fail-fast request that
 * does not fit is decided OUT_OF_STOCK in the same multi and the walk goes on.
 * A multi-line request is decided in the walk only when every node ahead of it
 * in its other queues is decided earlier in the same walk, most often because
 * there is none (the granter reads its record for its lines, lists those
 * queues and reads their SKU records: lib/inventory_multiline.c); granted, the
 * multi also takes its units from each of those SKU records at the version
 * read and deletes its other nodes; refused (fail-fast, this SKU short), it
 * deletes them. Otherwise, or when it is short on another SKU, the walk stops
 * at it, and it grants itself once it is at the head of ALL its queues (reads
 * all SKU records; one multi with all SKU records, its record and the delete
 * of all its nodes: all or nothing), or, failing fast, decides itself
 * OUT_OF_STOCK. Either way a request's lines are decided together, in the
 * order of every queue it is in. With multi-line members the multi grows by
 * at most 64 ops (about 40 KB in all at worst).
 * A timeout of 0 means "do not wait": a request that is not at the head, or is
 * at the head but would have to wait for restock, leaves the queue at once
 * (ZKC_ETIMEDOUT) even if stock would come later.
 *
 * RESULTS of zkc_inventory_reserve (status, *state):
 *   0 RESERVED (or RESERVED/SOLD already, for a repeated id);
 *   ZKC_EOUTOFSTOCK OUT_OF_STOCK (fail-fast, not enough stock at its turn);
 *   ZKC_ETIMEDOUT TIMED_OUT (withdrawn at its timeout), or PENDING when the id
 *     belongs to another worker's request that is still queued (that one is not
 *     touched) or when no server could be reached to withdraw it;
 *   ZKC_ECANCELED TIMED_OUT (withdrawn by zkc_inventory_destroy, which returns
 *     once every request of the object has its answer), or PENDING when the
 *     client is destroyed (its nodes end with the session);
 *   ZKC_ESESSIONLOST PENDING: the session ended while queued; look it up;
 *   ZKC_EEXISTS: the id is spent (RETURNED/EXPIRED) or used for other lines;
 *   ZKC_ENONODE: a SKU never restocked; ZKC_ELIMIT; ZKC_EBADDATA (a record was
 *     written around the queue); ZKC_ECONNLOSS, ZKC_EUNKNOWN (enqueue outcome
 *     unknown and no server to ask: look it up by id).
 *
 * WATCHES. A waiting request watches (data watch via get, never exists) the
 * node right before its own in each of its queues (to take over as head when
 * that node goes, and to hear of its own decision: a batch decides a prefix of
 * the queue, so when we are decided the node ahead of us is gone too, and we
 * read our record, without a watch, before listing again): at most `lines`
 * watches. A head waiting for restock watches its record and the SKU node
 * (restock, return and expiry rewrite it, which wakes it). Nobody watches a
 * children list.
 * The member core does the queue side (zkc__qm_list lists a queue and finds our
 * place among our own names only, ops->accept; zkc__qm_wait watches the node
 * ahead); it does not watch our own node (no_own_watch): a decision deletes it
 * and rewrites our record, and the node ahead of ours went in the same or an
 * earlier transaction, which sends us to the record.
 *
 * CRASH SAFETY needs no extra machinery: a grant deletes the granted request's
 * queue node in the same transaction, so nothing is granted twice; a granter
 * that dies mid-batch either committed its multi or not, and its own ephemeral
 * node vanishes, so the next requester becomes head and continues. After a
 * connection loss on a grant multi the granter syncs and reads its own record
 * and node (the multi always contains both): decided, or still queued (not
 * applied: next round), or node gone without a decision (its session ended).
 * Every write that decides is conditional (SKU version; queue nodes that must
 * still exist), so a late landing of an old attempt cannot apply twice.
 *
 * TIMEOUT / CANCEL of a waiting request: multi{delete its queue nodes,
 * setData(record, TIMED_OUT, its version)}. If that fails because a granter got
 * there first, we read the record and tell the truth: RESERVED (0, even though
 * the timer fired) or OUT_OF_STOCK. If no server can be reached to withdraw it,
 * the caller gets its timeout with state PENDING (undecided: look it up), and
 * the nodes go to the janitor, which deletes them once a server answers.
 * Lines of one SKU in one request add up to one line (one queue node).
 *
 * CONNECTION STATES. SUSPENDED: nothing changes; waits go on, requests in flight
 * are retried or recovered as above. RECONNECTED (same session): every waiting
 * request re-reads its record and re-lists its queues, in case a notification
 * was missed. LOST: the session's ephemeral queue nodes are (or will be) gone;
 * each waiting request of that session ends with ZKC_ESESSIONLOST (state
 * PENDING: look it up by id) and its nodes go to the janitor. Its record stays
 * PENDING: zkc_inventory_lookup sees PENDING with no queue node left (it finds
 * the nodes by the record's nonce) and reports ABANDONED; this is decidable
 * because a decision always deletes the nodes and rewrites the record in one
 * transaction, so "PENDING, same version before and after finding no node"
 * can only mean the requester left. Reserving again with the same id then
 * enqueues it again.
 *
 * CONFIRM: multi{setData(record RESERVED->SOLD, version), setData(each SKU
 * record: reserved -= q, sold += q, version)}; idempotent (already SOLD: 0).
 * RETURN: RESERVED->RETURNED, reserved -= q, available += q; idempotent. Both
 * sync first (another process may have reserved it), retry on BadVersion after
 * the transaction core's backoff and give up with ZKC_ECONTENDED after 64
 * attempts.
 *
 * HOLD AND REAP (server clock only, never the worker's): a RESERVED record's
 * mtime is the moment it was granted (nothing rewrites a RESERVED record), so
 * it expires at mtime + hold_ms. zkc_inventory_reap takes "now" from the mtime
 * of a heartbeat setData on R, walks R/req (the key store, keystore.c), and
 * returns the units of every
 * expired reservation (as return, state EXPIRED). Records in final states whose
 * mtime is older than the client's marker_retention_s, and abandoned PENDING
 * records that old, are deleted (conditional on the version examined); after
 * that an id can be used again. Any client may run reap, as often as wanted;
 * *returned counts units. A malformed record is reported (ZKC_EBADDATA, after
 * the rest was reaped) and left as it is.
 *
 * RESTOCK: versioned update of the SKU record (available += n, total += n),
 * creating R/sku/<sku> with its queue on first use (n may be 0 to just create
 * it); the setData itself wakes a head waiting for restock. EXACTLY ONCE by the
 * transaction core's marker (lib/txn.c, as counters): the same multi writes
 * the client's marker node (<meta_root>/txn/<uuid>-<n>, conditional on its
 * version) with the restock's transaction id. After a connection loss the core
 * syncs and reads the marker: our id, applied; another, not applied, and we
 * read the record and try again. A late landing of an old attempt cannot add
 * twice: it fails on the marker's version once we moved on. Only with no
 * server reachable within the operation timeout is the answer ZKC_EUNKNOWN
 * (check the stock before restocking again).
 * CONFIRM, RETURN, EXPIRY and the GRANT rounds run on the same core without a
 * marker (its no-marker mode): their record write is the evidence (RESERVED ->
 * SOLD/RETURNED/EXPIRED conditional on its version; a grant rewrites the
 * granter's record and deletes its node), read back after a loss.
 * GUARDED (zkc_inventory_set_guard): restock, confirm and return join a check
 * of the guard's node (a lock holder's node) to their transactions
 * (zkc__txn_guard); a failed check is "nothing applied", ZKC_EFENCED.
 * ACCESS: every node is created with the client's ACL
 * option (req.c), so all workers of one application share one digest identity
 * and a granter may write into another worker's request record; other
 * identities cannot touch them.
 *
 * THREADS: all state below lives on the client's engine thread. A reservation
 * has one chain of requests in flight at a time ("busy", possibly several
 * independent reads at once); watches and timers only set flags and call
 * step() when the chain is idle.
 *
 * CODE: this file holds the object (its shared helpers, session events,
 * create/destroy and its guard); lib/inventory.h says which file holds the
 * rest.
 */
#include "inventory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void zkc__inv_ref(zkc_inventory *inv)
{
    __atomic_add_fetch(&inv->refs, 1, __ATOMIC_ACQ_REL);
}

void zkc__inv_unref(zkc_inventory *inv)
{
    if (__atomic_sub_fetch(&inv->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    zkc_client *c = inv->c;
    zkc__inv_qlens_free(inv);
    free(inv->root);
    free(inv->sku_dir);
    free(inv->req_dir);
    free(inv->guard);
    pthread_mutex_destroy(&inv->guard_mu);
    free(inv);
    zkc__client_unref(c);
}

/* ---------------------------------------------------------------- helpers */

char *zkc__inv_mprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        abort(); /* as op.c: a lost path would strand an operation */
    return s;
}

/* Several replies of one group may fail; the first failure is the one the
 * caller is told about, so later ones must not overwrite its message. */
void zkc__inv_first_error(int *slot, char *msg, size_t len, int status, const char *fmt, va_list ap)
{
    if (*slot)
        return;
    *slot = status;
    vsnprintf(msg, len, fmt, ap);
}

char *zkc__inv_rec_path(zkc_inventory *inv, const char *id)
{
    char *s = zkc__path_bucketed(inv->req_dir, id);
    if (!s)
        abort(); /* as zkc__inv_mprintf */
    return s;
}

char *zkc__inv_sku_path(zkc_inventory *inv, const char *sku)
{
    return zkc__inv_mprintf("%s/%s", inv->sku_dir, sku);
}

char *zkc__inv_queue_dir(zkc_inventory *inv, const char *sku)
{
    return zkc__inv_mprintf("%s/%s/q", inv->sku_dir, sku);
}

void zkc__inv_new_nonce(char out[ZKC__RES_NONCE_LEN + 1])
{
    uint64_t v = zkc__random64();
    snprintf(out, ZKC__RES_NONCE_LEN + 1, "%012" PRIx64, v & UINT64_C(0xffffffffffff));
}

/* A failed read, or a write known not to have applied, as the caller sees it. */
int zkc__inv_req_error(int rc)
{
    if (rc == ZR_NOTSENT)
        return ZKC_ECONNLOSS;
    if (rc == ZR_CLOSING)
        return ZKC_ECANCELED;
    if (rc == ZR_SESSIONLOST)
        return ZKC_ESESSIONLOST;
    return zkc__map_zrc(rc);
}

/* Index of the op that failed a multi, or -1. */
int zkc__inv_multi_failed(const zkc__req *r)
{
    for (int i = 0; i < r->nops; i++)
        if (r->ops[i].rc != ZR_OK && r->ops[i].rc != ZR_RUNTIMEINCONSISTENCY)
            return i;
    return -1;
}

/* A read of a SKU record, checked as every user needs it: 0 with *out set, or
 * the status to fail with and its sentence in msg. ver != NULL: the caller
 * writes the record next, so the version must be usable for a conditional
 * write, and is stored there. */
int zkc__inv_sku_reply(zkc_inventory *inv, const zkc__req *r, const char *sku, zkc__sku_rec *out, int32_t *ver,
                       char *msg, size_t len)
{
    const char *why = NULL;
    if (r->rc != ZR_OK) {
        snprintf(msg, len, "SKU %s: reading %s/%s: %s", sku, inv->sku_dir, sku,
                 r->rc == ZR_NONODE ? "deleted" : zkc__zrc_name(r->rc));
        return r->rc == ZR_NONODE ? ZKC_ENONODE : zkc__inv_req_error(r->rc);
    }
    if (zkc__sku_decode(r->value, r->valuelen, out, &why) != 0) {
        snprintf(msg, len, "SKU record %s/%s: %s; nothing was written", inv->sku_dir, sku, why);
        return ZKC_EBADDATA;
    }
    if (!ver)
        return 0;
    if (!zkc__version_usable(r->stat.version)) {
        snprintf(msg, len, "SKU record %s/%s: its version wrapped to -1; no conditional write is possible",
                 inv->sku_dir, sku);
        return ZKC_EVERSIONWRAP;
    }
    *ver = r->stat.version;
    return 0;
}

static void inv_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    zkc_inventory *inv = ZKC__CONTAINER_OF(sl, zkc_inventory, sl);
    rq *q = inv->rqs;
    while (q) {
        rq *next = q->next;
        if ((int)st == ZKC_STATE_LOST && q->queued && q->gen == gen) {
            /* Our ephemeral queue nodes went (or go) with that session. */
            zkc__inv_janitor_nodes(q);
            zkc__inv_rq_finish(q, ZKC_ESESSIONLOST, ZKC_INVENTORY_PENDING,
                               "request %s: the ZooKeeper session ended while it was queued; look it up by id", q->id);
        } else if ((int)st == ZKC_STATE_LOST && q->phase == P_FOLLOW) {
            /* Its watches went with the session: look again from the next. */
            q->follow_dirty = 1;
            zkc__inv_step(q);
        } else if ((int)st == ZKC_STATE_RECONNECTED) {
            /* Same session: watches survive, but look again in case. */
            if (q->phase == P_QUEUED || q->phase == P_WAITSTOCK) {
                q->dirty_rec = 1;
                q->recheck = 1;
                for (int i = 0; i < q->n; i++)
                    if (!q->ln[i].head)
                        q->ln[i].dirty = 1;
                zkc__inv_step(q);
            } else if (q->phase == P_FOLLOW) {
                q->follow_dirty = 1;
                zkc__inv_step(q);
            }
        }
        q = next;
    }
}

static void inv_shutdown(zkc__object *o)
{
    zkc_inventory *inv = ZKC__CONTAINER_OF(o, zkc_inventory, obj);
    while (inv->rqs)
        zkc__inv_rq_finish(inv->rqs, ZKC_ECANCELED, ZKC_INVENTORY_PENDING,
                           "request %s: the client is being destroyed (its queue nodes end with the session; look it "
                           "up by id)",
                           inv->rqs->id);
    zkc__sess_unlisten(inv->c, &inv->sl);
    zkc__object_unlink(inv->c, &inv->obj);
    inv->destroyed = 1;
}

/* ---------------------------------------------------------------- lifecycle */

static void open_finish(sop *s)
{
    zkc_inventory *inv = s->inv;
    if (s->attempts) {
        zkc__inv_sop_end(s, s->attempts, "inventory %s: creating the request buckets under %s: %s", inv->root,
                         inv->req_dir, zkc_strerror(s->attempts));
        return;
    }
    zkc__object_link(inv->c, &inv->obj);
    zkc__sess_listen(inv->c, &inv->sl);
    zkc__inv_sop_end(s, 0, NULL);
}

static void open_bucket_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NODEEXISTS && !s->attempts)
        s->attempts = zkc__inv_req_error(r->rc);
    if (--s->loops == 0)
        open_finish(s);
}

/* The 256 request buckets, created once (later clients find them): the first
 * request in a bucket then costs no extra round trip. */
static void open_buckets_done(zkc__req *r)
{
    sop *s = r->ctx;
    zkc_inventory *inv = s->inv;
    if (r->rc != ZR_OK) {
        zkc__inv_sop_end(s, zkc__inv_req_error(r->rc), "inventory %s: listing %s: %s", inv->root, inv->req_dir,
                         zkc__zrc_name(r->rc));
        return;
    }
    char have[256] = {0};
    for (int i = 0; i < r->nchildren; i++) {
        unsigned b;
        char extra;
        if (strlen(r->children[i]) == 2 && sscanf(r->children[i], "%2x%c", &b, &extra) == 1 && b < 256)
            have[b] = 1;
    }
    s->loops = 1;
    for (unsigned b = 0; b < 256; b++) {
        if (have[b])
            continue;
        char *p = zkc__inv_mprintf("%s/%02x", inv->req_dir, b);
        s->loops++;
        zkc__create(r->c, p, NULL, 0, 0, open_bucket_done, s);
        free(p);
    }
    if (--s->loops == 0)
        open_finish(s);
}

static void open_req_done(void *arg, int rc)
{
    sop *s = arg;
    if (rc != ZR_OK) {
        zkc__inv_sop_end(s, zkc__inv_req_error(rc), "inventory %s: creating %s: %s", s->inv->root, s->inv->req_dir,
                         zkc__zrc_name(rc));
        return;
    }
    zkc__children(s->op.c, s->inv->req_dir, NULL, open_buckets_done, s);
}

static void open_sku_done(void *arg, int rc)
{
    sop *s = arg;
    if (rc != ZR_OK) {
        zkc__inv_sop_end(s, zkc__inv_req_error(rc), "inventory %s: creating %s: %s", s->inv->root, s->inv->sku_dir,
                         zkc__zrc_name(rc));
        return;
    }
    zkc__mkpath(s->op.c, s->inv->req_dir, open_req_done, s);
}

static void open_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    zkc__mkpath(op->c, s->inv->sku_dir, open_sku_done, s);
}

int zkc_inventory_create(zkc_client *c, const char *root, zkc_inventory **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_inventory_create: out is NULL");
    *out = NULL;
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_inventory_create: client is NULL");
    int rc = zkc__path_check(root, "inventory root");
    if (rc)
        return rc;
    if (strlen(root) > ZKC__PATH_MAX - 16 - ZKC__RES_NAME_MAX - 32)
        return zkc__err(ZKC_EINVAL, "inventory root \"%s\" is too long to hold SKU and request paths", root);
    if (__atomic_load_n(&c->api_closing, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_ECLOSED, "the client is being destroyed");
    zkc_inventory *inv = calloc(1, sizeof *inv);
    if (!inv || !(inv->root = strdup(root))) {
        free(inv);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&inv->guard_mu, NULL);
    inv->sku_dir = zkc__inv_mprintf("%s/sku", root);
    inv->req_dir = zkc__inv_mprintf("%s/req", root);
    inv->c = c;
    inv->refs = 1;
    inv->obj.shutdown = inv_shutdown;
    inv->sl.fn = inv_session;
    zkc__client_ref(c);
    sop *s = zkc__inv_sop_new(inv, SOP_OPEN);
    if (!s) {
        zkc__inv_unref(inv);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    rc = zkc__inv_sop_run(s, open_start);
    s->op.release(&s->op);
    if (rc) {
        zkc__inv_unref(inv);
        return rc;
    }
    *out = inv;
    return 0;
}

void zkc__inv_destroy_done(zkc_inventory *inv)
{
    sop *s = inv->destroy_op;
    inv->destroy_op = NULL;
    zkc__sess_unlisten(inv->c, &inv->sl);
    zkc__object_unlink(inv->c, &inv->obj);
    inv->destroyed = 1;
    if (s)
        zkc__inv_sop_end(s, 0, NULL);
}

static void destroy_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    zkc_inventory *inv = s->inv;
    if (inv->destroyed || inv->destroy_op) {
        zkc__inv_sop_end(s, 0, NULL);
        return;
    }
    inv->destroy_op = s;
    if (!inv->rqs) {
        zkc__inv_destroy_done(inv);
        return;
    }
    /* Requests still in progress leave their queues first (withdrawn, so the
     * caller hears the truth if a granter was faster); we return when the
     * last one has its answer (each is bounded by the operation timeout). */
    for (rq *q = inv->rqs; q; q = q->next) {
        if (!q->leave) {
            q->leave = ZKC_ECANCELED;
            snprintf(q->leave_msg, sizeof q->leave_msg, "request %s: cancelled: the inventory was destroyed", q->id);
        }
    }
    rq *q = inv->rqs;
    while (q) {
        rq *next = q->next; /* q may finish (and unlink) right here */
        zkc__inv_step(q);
        q = next;
    }
}

void zkc_inventory_destroy(zkc_inventory *inv)
{
    if (!inv)
        return;
    if (__atomic_exchange_n(&inv->api_destroyed, 1, __ATOMIC_ACQ_REL)) {
        zkc__set_errmsg("zkc_inventory_destroy called twice");
        return;
    }
    /* With the client going, its shutdown already cancelled our requests. */
    if (!__atomic_load_n(&inv->c->api_closing, __ATOMIC_ACQUIRE) && !zkc__on_engine(inv->c)) {
        sop *s = zkc__inv_sop_new(inv, SOP_DESTROY);
        if (s) {
            zkc__inv_sop_run(s, destroy_start);
            s->op.release(&s->op);
        }
    }
    zkc__inv_unref(inv);
}

int zkc_inventory_set_guard(zkc_inventory *inv, const zkc_guard *g)
{
    int rc = zkc__inv_check_inv(inv, "zkc_inventory_set_guard");
    if (rc || (g && (rc = zkc__txn_guard_check(g, "zkc_inventory_set_guard")) != 0))
        return rc;
    zkc_guard *copy = NULL;
    if (g) {
        if (!(copy = malloc(sizeof *copy)))
            return zkc__err(ZKC_ENOMEM, "out of memory");
        *copy = *g;
    }
    pthread_mutex_lock(&inv->guard_mu);
    zkc_guard *old = inv->guard;
    inv->guard = copy;
    pthread_mutex_unlock(&inv->guard_mu);
    free(old);
    return 0;
}
