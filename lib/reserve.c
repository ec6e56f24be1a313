/*
 * Fair inventory reservation: one FIFO request queue per SKU, served in
 * batches by the requester at its head.
 *
 * LAYOUT under the inventory root R (formats in lib/reserve.h):
 *   R                  data "zkci1"; reap's heartbeat writes it to read the
 *                      servers' clock
 *   R/sku/<sku>        the SKU record "zkcs1 <available> <reserved> <sold>
 *                      <total>". Every change of a SKU's units is ONE versioned
 *                      setData of this node, so one read is a consistent
 *                      snapshot and available + reserved + sold == total can be
 *                      checked on any read. Created by the first restock.
 *   R/sku/<sku>/q/     the SKU's queue: one EPHEMERAL_SEQUENTIAL node per
 *                      waiting request line, "r-<nonce>-<seq>", data "zkcq1 ..."
 *                      (quantity, flags, lines, hold time, nonce, request id).
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
 * it is updated with the counter recipe's discipline (read, versioned setData
 * in a multi with the other effects of the same decision, retry on BadVersion,
 * refuse a node whose version wrapped to -1) rather than through the counter
 * API, because a reservation must move units between fields and write request
 * records and queue nodes in the same transaction. A write that bypasses the
 * queue is refused or detected, never silently fixed: zkc_counter_* on a SKU
 * node refuses with ZKC_EBADDATA (the record is no counter format); a raw write
 * that breaks the format or the invariant makes every reservation operation on
 * that SKU fail with ZKC_EBADDATA and a message naming the node, and nothing
 * is written over it.
 *
 * ENQUEUE = one multi: create(R/req/<b>/<id>, PENDING) + create(q/r-<nonce>-,
 * EPHEMERAL_SEQUENTIAL) for every line. NODEEXISTS on the record means the id
 * was seen before: we read it and return its outcome (RESERVED/SOLD: 0 and that
 * state; CANCELLED/EXPIRED: ZKC_EEXISTS, the id is spent), follow it while it is
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
 * LIMIT: before enqueueing we stat each queue (numChildren, no listing) and
 * refuse with ZKC_ELIMIT when it already holds >= 10000 waiting requests. That
 * keeps one getChildren of a queue (names are 25 bytes: about 290 KB for 10000)
 * well below jute.maxbuffer (1 MB; a flat queue of longer names overflows it at
 * 15-20 thousand). Nobody lists a whole queue per grant: a new request lists
 * its queues once, a head once per batch, a lookup once. The check and the
 * create are not atomic: concurrent enqueuers can pass it together, so a queue
 * can exceed 10000 by at most their number.
 *
 * GRANTING. After enqueueing, a request lists each of its queues once to find
 * its position. The request whose node is at the head (lowest sequence, RFC 1982
 * order via zkc__members_parse) of a single-line queue is that queue's granter:
 * it lists the queue once per batch, reads the SKU record and the queued entries
 * of the batch, walks the queue in order and decides in ONE multi: versioned
 * setData of the SKU record (available -= granted, reserved += granted), and for
 * each decided request: setData of its record (RESERVED or OUT_OF_STOCK) and
 * delete of its queue node. At most 64 decisions per multi (about 20 KB, well
 * inside jute.maxbuffer). FAIRNESS POLICY, the only one offered: strict FIFO.
 * The walk stops at the first request that does not fit and waits for restock
 * (so a large request at the head blocks smaller ones behind it, including
 * fail-fast ones, until stock arrives or it leaves); a fail-fast request that
 * does not fit is decided OUT_OF_STOCK in the same multi and the walk goes on.
 * The walk also stops at any multi-line request: such a request grants itself
 * once it is at the head of ALL its queues (reads all SKU records; one multi
 * with all SKU records, its record and the delete of all its nodes: all or
 * nothing), or, failing fast, decides itself OUT_OF_STOCK.
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
 *   ZKC_EEXISTS: the id is spent (CANCELLED/EXPIRED) or used for other lines;
 *   ZKC_ENONODE: a SKU never restocked; ZKC_ELIMIT; ZKC_EBADDATA (a record was
 *     written around the queue); ZKC_ECONNLOSS, ZKC_EUNKNOWN (enqueue outcome
 *     unknown and no server to ask: look it up by id).
 *
 * WATCHES. A waiting request watches (data watch via get, never exists) its own
 * record (the granter writes its outcome there) and the node right before its
 * own in each of its queues (to take over as head when that node goes): at most
 * 1 + lines watches. A head waiting for restock watches the SKU node (restock,
 * cancel and expiry rewrite it, which wakes it). Nobody watches a children list.
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
 * CANCEL: RESERVED->CANCELLED, reserved -= q, available += q; idempotent. Both
 * sync first (another process may have reserved it), retry on BadVersion with
 * jittered backoff and give up with ZKC_ECONTENDED after 64 attempts.
 *
 * HOLD AND REAP (server clock only, never the worker's): a RESERVED record's
 * mtime is the moment it was granted (nothing rewrites a RESERVED record), so
 * it expires at mtime + hold_ms. zkc_inventory_reap takes "now" from the mtime
 * of a heartbeat setData on R, lists R/req, and returns the units of every
 * expired reservation (as cancel, state EXPIRED). Records in final states whose
 * mtime is older than the client's marker_retention_s, and abandoned PENDING
 * records that old, are deleted (conditional on the version examined); after
 * that an id can be used again. Any client may run reap, as often as wanted;
 * *returned counts units. A malformed record is reported (ZKC_EBADDATA, after
 * the rest was reaped) and left as it is.
 *
 * RESTOCK: versioned update of the SKU record (available += n, total += n),
 * creating R/sku/<sku> with its queue on first use (n may be 0 to just create
 * it); the setData itself wakes a head waiting for restock. After a connection
 * loss the write is recognised by the next version holding exactly our bytes;
 * when that cannot be told, ZKC_EUNKNOWN (check the stock before restocking
 * again) rather than a double add. ACCESS: every node is created with the client's ACL
 * option (op.c), so all workers of one application share one digest identity
 * and a granter may write into another worker's request record; other
 * identities cannot touch them.
 *
 * THREADS: all state below lives on the client's engine thread. A reservation
 * has one chain of requests in flight at a time ("busy", possibly several
 * independent reads at once); watches and timers only set flags and call
 * step() when the chain is idle.
 */
#include "internal.h"
#include "reserve.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ records (pure) */

#define RES_PARSE_BUF 16384

static const char *const state_names[] = {"PENDING",      "RESERVED",  "SOLD",    "CANCELLED",
                                          "OUT_OF_STOCK", "TIMED_OUT", "EXPIRED", "ABANDONED"};

const char *zkc__res_state_name(int state)
{
    if (state < 0 || state >= (int)(sizeof state_names / sizeof state_names[0]))
        return "?";
    return state_names[state];
}

typedef struct cur {
    const char *p, *e;
    const char *why;
} cur;

static int bad(cur *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return -1;
}

static int lit(cur *c, const char *s, const char *why)
{
    size_t n = strlen(s);
    if ((size_t)(c->e - c->p) < n || memcmp(c->p, s, n) != 0)
        return bad(c, why);
    c->p += n;
    return 0;
}

/* Canonical non-negative decimal: "0" or no leading zero, <= max. */
static int dec(cur *c, int64_t min, int64_t max, int64_t *out, const char *why)
{
    const char *s = c->p;
    int64_t v = 0;
    int n = 0;
    while (s < c->e && *s >= '0' && *s <= '9') {
        if (n == 19)
            return bad(c, why);
        if (n > 0 && v == 0)
            return bad(c, why); /* leading zero */
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return bad(c, why);
        v = v * 10 + d;
        n++;
        s++;
    }
    if (n == 0 || v < min || v > max)
        return bad(c, why);
    c->p = s;
    *out = v;
    return 0;
}

static int is_lhex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static int hexn(cur *c, int n, char *out, const char *why)
{
    if (c->e - c->p < n)
        return bad(c, why);
    for (int i = 0; i < n; i++)
        if (!is_lhex(c->p[i]))
            return bad(c, why);
    memcpy(out, c->p, (size_t)n);
    out[n] = 0;
    c->p += n;
    return 0;
}

/* A node name as zkc__name_check accepts it: 1..200 bytes, no '/', no control
 * characters, not "." or "..". */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > ZKC__RES_NAME_MAX)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/')
            return 0;
    }
    return 1;
}

static int name_to(cur *c, char stop, char *out, const char *why)
{
    const char *s = c->p;
    while (s < c->e && *s != stop && *s != '\n')
        s++;
    size_t n = (size_t)(s - c->p);
    if (!name_ok(c->p, n))
        return bad(c, why);
    memcpy(out, c->p, n);
    out[n] = 0;
    c->p = s;
    return 0;
}

static int at_end(cur *c, const char *why)
{
    return c->p == c->e ? 0 : bad(c, why);
}

static int sku_valid(const zkc__sku_rec *r, const char **why)
{
    int64_t s;
    if (r->available < 0 || r->reserved < 0 || r->sold < 0 || r->total < 0) {
        *why = "a unit count is negative";
        return 0;
    }
    if (__builtin_add_overflow(r->available, r->reserved, &s) || __builtin_add_overflow(s, r->sold, &s) ||
        s != r->total) {
        *why = "available + reserved + sold != total (units were written around the queue)";
        return 0;
    }
    return 1;
}

int zkc__sku_decode(const char *data, int len, zkc__sku_rec *out, const char **why)
{
    cur c = {data, data + (len > 0 ? len : 0), NULL};
    zkc__sku_rec r;
    const char *w = "not a SKU record (\"zkcs1 <available> <reserved> <sold> <total>\")";
    if (!data || len <= 0) {
        c.why = "empty data where a SKU record was expected";
    } else if (len >= 5 && memcmp(data, "zkcs", 4) == 0 && data[4] != '1') {
        c.why = "SKU record of an unknown format version (written by a newer release?)";
    } else if (lit(&c, "zkcs1 ", w) == 0 && dec(&c, 0, INT64_MAX, &r.available, w) == 0 && lit(&c, " ", w) == 0 &&
               dec(&c, 0, INT64_MAX, &r.reserved, w) == 0 && lit(&c, " ", w) == 0 &&
               dec(&c, 0, INT64_MAX, &r.sold, w) == 0 && lit(&c, " ", w) == 0 &&
               dec(&c, 0, INT64_MAX, &r.total, w) == 0 && at_end(&c, w) == 0) {
        const char *v = NULL;
        if (sku_valid(&r, &v)) {
            if (out)
                *out = r;
            return 0;
        }
        c.why = v;
    }
    if (why)
        *why = c.why ? c.why : w;
    return ZKC_EBADDATA;
}

int zkc__sku_encode(const zkc__sku_rec *r, char *buf, size_t len)
{
    const char *why;
    if (!sku_valid(r, &why))
        return -1;
    int n = snprintf(buf, len, "zkcs1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, r->available, r->reserved,
                     r->sold, r->total);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

static int state_word(cur *c, int *state)
{
    for (int i = 0; i < ZKC_RES_ABANDONED; i++) {
        size_t n = strlen(state_names[i]);
        if ((size_t)(c->e - c->p) > n && memcmp(c->p, state_names[i], n) == 0 && c->p[n] == ' ') {
            c->p += n;
            *state = i;
            return 0;
        }
    }
    return bad(c, "unknown request state");
}

static uint64_t owner_parse(const char *hex)
{
    uint64_t v = 0;
    for (int i = 0; hex[i]; i++)
        v = (v << 4) | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    return v;
}

int zkc__resrec_decode(const char *data, int len, zkc__res_rec *out, const char **why)
{
    cur c = {data, data + (len > 0 ? len : 0), NULL};
    const char *w = "not a request record (\"zkcr1 <STATE> <hold_ms> <flags> <nonce> <owner> <n>\")";
    zkc__res_rec *r = out;
    int64_t v;
    char hex[17];
    if (!data || len <= 0) {
        c.why = "empty data where a request record was expected";
        goto fail;
    }
    if (len >= 5 && memcmp(data, "zkcr", 4) == 0 && data[4] != '1') {
        c.why = "request record of an unknown format version (written by a newer release?)";
        goto fail;
    }
    if (lit(&c, "zkcr1 ", w) || state_word(&c, &r->state) || lit(&c, " ", w) ||
        dec(&c, 1, ZKC__RES_HOLD_MAX, &r->hold_ms, "bad hold time") || lit(&c, " ", w) ||
        dec(&c, 0, ZKC__RES_F_WAIT, &v, "unknown flags") || lit(&c, " ", w))
        goto fail;
    r->flags = (int)v;
    if (hexn(&c, ZKC__RES_NONCE_LEN, r->nonce, "bad nonce") || lit(&c, " ", w) ||
        hexn(&c, 16, hex, "bad owner session") || lit(&c, " ", w) ||
        dec(&c, 1, ZKC__RES_MAX_LINES, &v, "bad line count") || lit(&c, "\n", w))
        goto fail;
    r->owner = owner_parse(hex);
    r->n = (int)v;
    for (int i = 0; i < r->n; i++) {
        if (dec(&c, 1, ZKC__RES_QTY_MAX, &r->line[i].qty, "bad quantity") || lit(&c, " ", w) ||
            name_to(&c, '\n', r->line[i].sku, "bad SKU name") || lit(&c, "\n", "line not terminated"))
            goto fail;
        for (int j = 0; j < i; j++)
            if (strcmp(r->line[j].sku, r->line[i].sku) == 0) {
                bad(&c, "a SKU appears twice");
                goto fail;
            }
    }
    if (at_end(&c, "trailing data after the last line"))
        goto fail;
    return 0;
fail:
    if (why)
        *why = c.why ? c.why : w;
    return ZKC_EBADDATA;
}

int zkc__resrec_encode(const zkc__res_rec *r, char *buf, size_t len)
{
    if (r->state < 0 || r->state >= ZKC_RES_ABANDONED || r->n < 1 || r->n > ZKC__RES_MAX_LINES ||
        r->hold_ms < 1 || r->hold_ms > ZKC__RES_HOLD_MAX || (r->flags & ~ZKC__RES_F_WAIT) ||
        strlen(r->nonce) != ZKC__RES_NONCE_LEN)
        return -1;
    for (int i = 0; i < ZKC__RES_NONCE_LEN; i++)
        if (!is_lhex(r->nonce[i]))
            return -1;
    int n = snprintf(buf, len, "zkcr1 %s %" PRId64 " %d %s %016" PRIx64 " %d\n", state_names[r->state], r->hold_ms,
                     r->flags, r->nonce, r->owner, r->n);
    if (n < 0 || (size_t)n >= len)
        return -1;
    size_t pos = (size_t)n;
    for (int i = 0; i < r->n; i++) {
        const zkc__res_line *l = &r->line[i];
        if (l->qty < 1 || l->qty > ZKC__RES_QTY_MAX || !name_ok(l->sku, strlen(l->sku)))
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(r->line[j].sku, l->sku) == 0)
                return -1;
        n = snprintf(buf + pos, len - pos, "%" PRId64 " %s\n", l->qty, l->sku);
        if (n < 0 || (size_t)n >= len - pos)
            return -1;
        pos += (size_t)n;
    }
    return (int)pos;
}

int zkc__qent_decode(const char *data, int len, zkc__res_qent *out, const char **why)
{
    cur c = {data, data + (len > 0 ? len : 0), NULL};
    const char *w = "not a queue entry (\"zkcq1 <qty> <flags> <nlines> <hold_ms> <nonce> <id>\")";
    zkc__res_qent e;
    int64_t v;
    if (!data || len <= 0) {
        c.why = "empty data where a queue entry was expected";
        goto fail;
    }
    if (len >= 5 && memcmp(data, "zkcq", 4) == 0 && data[4] != '1') {
        c.why = "queue entry of an unknown format version (written by a newer release?)";
        goto fail;
    }
    if (lit(&c, "zkcq1 ", w) || dec(&c, 1, ZKC__RES_QTY_MAX, &e.qty, "bad quantity") || lit(&c, " ", w) ||
        dec(&c, 0, ZKC__RES_F_WAIT, &v, "unknown flags") || lit(&c, " ", w))
        goto fail;
    e.flags = (int)v;
    if (dec(&c, 1, ZKC__RES_MAX_LINES, &v, "bad line count") || lit(&c, " ", w))
        goto fail;
    e.nlines = (int)v;
    if (dec(&c, 1, ZKC__RES_HOLD_MAX, &e.hold_ms, "bad hold time") || lit(&c, " ", w) ||
        hexn(&c, ZKC__RES_NONCE_LEN, e.nonce, "bad nonce") || lit(&c, " ", w) ||
        name_to(&c, '\0', e.id, "bad request id") || at_end(&c, "bad request id"))
        goto fail;
    if (out)
        *out = e;
    return 0;
fail:
    if (why)
        *why = c.why ? c.why : w;
    return ZKC_EBADDATA;
}

int zkc__qent_encode(const zkc__res_qent *e, char *buf, size_t len)
{
    if (e->qty < 1 || e->qty > ZKC__RES_QTY_MAX || (e->flags & ~ZKC__RES_F_WAIT) || e->nlines < 1 ||
        e->nlines > ZKC__RES_MAX_LINES || e->hold_ms < 1 || e->hold_ms > ZKC__RES_HOLD_MAX ||
        strlen(e->nonce) != ZKC__RES_NONCE_LEN || !name_ok(e->id, strlen(e->id)))
        return -1;
    for (int i = 0; i < ZKC__RES_NONCE_LEN; i++)
        if (!is_lhex(e->nonce[i]))
            return -1;
    int n = snprintf(buf, len, "zkcq1 %" PRId64 " %d %d %" PRId64 " %s %s", e->qty, e->flags, e->nlines, e->hold_ms,
                     e->nonce, e->id);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int zkc__resname_parse(const char *name, char *nonce, int32_t *seq)
{
    if (!name || strncmp(name, "r-", 2) != 0)
        return 0;
    for (int i = 0; i < ZKC__RES_NONCE_LEN; i++)
        if (!is_lhex(name[2 + i]))
            return 0;
    const char *s = name + 2 + ZKC__RES_NONCE_LEN;
    if (*s != '-')
        return 0;
    s++;
    /* ZooKeeper's suffix: "%010d" of a signed 32-bit counter. */
    size_t n = strlen(s);
    int neg = s[0] == '-';
    if (!(n == 10 || (neg && n == 11)))
        return 0;
    int64_t v = 0;
    for (size_t i = neg ? 1 : 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (neg)
        v = -v;
    if (v > INT32_MAX || v < INT32_MIN || (neg && v == 0))
        return 0;
    if (nonce) {
        memcpy(nonce, name + 2, ZKC__RES_NONCE_LEN);
        nonce[ZKC__RES_NONCE_LEN] = 0;
    }
    if (seq)
        *seq = (int32_t)v;
    return 1;
}

int zkc__res_parse(const char *data, int len, const char **why)
{
    int n = -1, rc = 0;
    char *buf = malloc(RES_PARSE_BUF);
    zkc__res_rec *r = malloc(sizeof *r);
    if (!buf || !r) {
        free(buf);
        free(r);
        return ZKC_ENOMEM;
    }
    if (len >= 4 && memcmp(data, "zkcs", 4) == 0) {
        zkc__sku_rec s;
        if ((rc = zkc__sku_decode(data, len, &s, why)) == 0)
            n = zkc__sku_encode(&s, buf, RES_PARSE_BUF);
    } else if (len >= 4 && memcmp(data, "zkcr", 4) == 0) {
        if ((rc = zkc__resrec_decode(data, len, r, why)) == 0)
            n = zkc__resrec_encode(r, buf, RES_PARSE_BUF);
    } else if (len >= 4 && memcmp(data, "zkcq", 4) == 0) {
        zkc__res_qent e;
        if ((rc = zkc__qent_decode(data, len, &e, why)) == 0)
            n = zkc__qent_encode(&e, buf, RES_PARSE_BUF);
    } else {
        if (why)
            *why = "no zkcoord reservation record magic";
        rc = ZKC_EBADDATA;
    }
    if (rc == 0 && (n != len || memcmp(buf, data, (size_t)len) != 0))
        rc = -100;
    free(buf);
    free(r);
    return rc;
}

#ifndef ZKC_RESERVE_PURE
/* ================================================================ engine */
#include "codec.h"
#include "queue.h"

#define RES_ATTEMPTS 64              /* CAS rounds / re-enqueues before ZKC_ECONTENDED */
#define RES_WINDOW (ZKC__RES_BATCH + 1) /* members a granter reads per batch */
#define RES_DEFAULT_HOLD_MS 600000
#define RES_REC_BUF 8192             /* a request record: 32 lines of <= ~220 bytes */
#define RES_REAP_INFLIGHT 8

typedef struct rq rq;

struct zkc_inventory {
    zkc__object obj;
    zkc__sess_listener sl;
    zkc_client *c;
    char *root, *sku_dir, *req_dir;
    int refs;          /* atomic: API handle + every operation and request */
    int api_destroyed; /* atomic */
    int destroyed;     /* engine */
    rq *rqs;           /* engine: reservations in progress */
    rq *enq_first, *enq_last; /* engine: fresh enqueues waiting for the next combined multi */
    int enq_inflight;  /* engine: a combined enqueue multi is out */
    int enq_dispatching; /* engine: handing out its results; resends go first */
    rq *enq_front;     /* engine: the last resend put at the front meanwhile */
    struct sop *destroy_op; /* engine: zkc_inventory_destroy waiting for rqs to leave */
};

static void destroy_done(zkc_inventory *inv);

static void inv_ref(zkc_inventory *inv)
{
    __atomic_add_fetch(&inv->refs, 1, __ATOMIC_ACQ_REL);
}

static void inv_unref(zkc_inventory *inv)
{
    if (__atomic_sub_fetch(&inv->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    zkc_client *c = inv->c;
    free(inv->root);
    free(inv->sku_dir);
    free(inv->req_dir);
    free(inv);
    zkc__client_unref(c);
}

/* ---------------------------------------------------------------- helpers */

static char *mprintf(const char *fmt, ...) ZKC__PRINTF(1, 2);
static char *mprintf(const char *fmt, ...)
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
static void first_error(int *slot, char *msg, size_t len, int status, const char *fmt, va_list ap)
    ZKC__PRINTF(5, 0);
static void first_error(int *slot, char *msg, size_t len, int status, const char *fmt, va_list ap)
{
    if (*slot)
        return;
    *slot = status;
    vsnprintf(msg, len, fmt, ap);
}

static unsigned bucket_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h & 0xff;
}

static char *rec_path(zkc_inventory *inv, const char *id)
{
    return mprintf("%s/%02x/%s", inv->req_dir, bucket_of(id), id);
}

static char *sku_path(zkc_inventory *inv, const char *sku)
{
    return mprintf("%s/%s", inv->sku_dir, sku);
}

static char *queue_dir(zkc_inventory *inv, const char *sku)
{
    return mprintf("%s/%s/q", inv->sku_dir, sku);
}

static void new_nonce(char out[ZKC__RES_NONCE_LEN + 1])
{
    uint64_t v = zkc__random64();
    snprintf(out, ZKC__RES_NONCE_LEN + 1, "%012" PRIx64, v & UINT64_C(0xffffffffffff));
}

/* A failed read, or a write known not to have applied, as the caller sees it. */
static int req_error(int rc)
{
    if (rc == ZR_NOTSENT)
        return ZKC_ECONNLOSS;
    if (rc == ZR_CLOSING)
        return ZKC_ECANCELED;
    if (rc == ZR_SESSIONLOST)
        return ZKC_ESESSIONLOST;
    return zkc__map_zrc(rc);
}

static int unknown_outcome(int rc)
{
    return rc == ZR_CONNLOSS || rc == ZR_OPTIMEOUT;
}

/* Index of the op that failed a multi, or -1. */
static int multi_failed(const zkc__req *r)
{
    for (int i = 0; i < r->nops; i++)
        if (r->ops[i].rc != ZR_OK && r->ops[i].rc != ZR_RUNTIMEINCONSISTENCY)
            return i;
    return -1;
}

static int64_t backoff_ms(int attempt)
{
    int64_t d = (int64_t)10 << (attempt < 6 ? attempt : 6);
    if (d > 500)
        d = 500;
    return d / 2 + (int64_t)(zkc__random64() % (uint64_t)(d / 2 + 1));
}

/* ---- persistent parents ---- */

/* Create `path` and whichever of its parents are missing (persistent, never
 * containers), deepest first: an existing parent costs nothing. */
typedef struct mkpath {
    zkc_client *c;
    char *stack[64]; /* paths still to create; the last is tried next */
    int n;
    void (*done)(void *arg, int rc);
    void *arg;
} mkpath;

static void mkpath_end(mkpath *m, int rc)
{
    for (int i = 0; i < m->n; i++)
        free(m->stack[i]);
    m->done(m->arg, rc);
    free(m);
}

static void mkpath_done(zkc__req *r)
{
    mkpath *m = r->ctx;
    if (r->rc == ZR_NONODE && m->n < 64) {
        char parent[ZKC__PATH_MAX + 1];
        zkc__path_parent(m->stack[m->n - 1], parent, sizeof parent);
        if (strcmp(parent, "/") != 0) {
            if (!(m->stack[m->n++] = strdup(parent)))
                abort();
            zkc__create(m->c, parent, NULL, 0, 0, mkpath_done, m);
            return;
        }
    }
    if (r->rc != ZR_OK && r->rc != ZR_NODEEXISTS) {
        mkpath_end(m, r->rc);
        return;
    }
    free(m->stack[--m->n]);
    if (m->n == 0) {
        mkpath_end(m, ZR_OK);
        return;
    }
    zkc__create(m->c, m->stack[m->n - 1], NULL, 0, 0, mkpath_done, m);
}

static void mkpath_start(zkc_client *c, const char *path, void (*done)(void *, int), void *arg)
{
    mkpath *m = calloc(1, sizeof *m);
    if (!m || !(m->stack[0] = strdup(path)))
        abort();
    m->n = 1;
    m->c = c;
    m->done = done;
    m->arg = arg;
    zkc__create(c, path, NULL, 0, 0, mkpath_done, m);
}

/* ================================================================ reservations */

enum {
    P_START = 0, /* checking queue lengths */
    P_ENQ,       /* enqueue multi in flight */
    P_RECOVER,   /* enqueue outcome unknown: finding the evidence */
    P_EXISTING,  /* the id was used before: evaluating its record */
    P_FOLLOW,    /* waiting for another worker's request under our id */
    P_QUEUED,    /* our nodes are queued; waiting for our turn */
    P_GRANT,     /* single-line head: a batch round */
    P_SELF,      /* multi-line head of all its queues: a self-grant round */
    P_WAITSTOCK, /* head, waiting for restock */
    P_LEAVE      /* withdrawing */
};

enum { GM_UNREAD = 0, GM_OK, GM_GONE, GM_BAD };

typedef struct wslot {
    zkc__watch *w;
    int reading; /* a read carrying w is in flight: only its reply may drop it */
} wslot;

typedef struct gmem { /* the granter's view of one queue member */
    char *name;
    int st;
    zkc__res_qent e;
    uint64_t owner;
} gmem;

typedef struct rline {
    rq *q;
    int idx;
    zkc__res_line l;
    char *skupath, *qdir;
    char *node;  /* our queue node (full path) while queued */
    int head;
    char *pred;  /* the node ahead of ours */
    wslot pred_w, sku_w;
    int dirty;   /* list this queue again */
    zkc__sku_rec sku;
    int32_t sku_ver;
} rline;

typedef struct res_op {
    zkc__op op;
    zkc_inventory *inv;
    char id[ZKC__RES_NAME_MAX + 1];
    int n;
    zkc__res_line *lines;
    int flags;
    int64_t hold_ms;
    int timeout_ms;
    zkc_reserve_cb cb;
    void *ud;
    zkc_res_state state;
} res_op;

struct rq {
    rq *next, *prev;
    int linked;
    zkc_inventory *inv;
    zkc_client *c;
    res_op *op;        /* NULL once finished */
    int refs;          /* engine: 1 until finished + 1 per request/timer in flight */
    int finished;
    int busy;          /* requests of the current chain in flight */
    int phase;
    int leave;         /* status to leave the queue with, 0 none */
    char leave_msg[256];
    int try_mode;      /* timeout 0 */
    int timeout_ms;
    char id[ZKC__RES_NAME_MAX + 1];
    char *recpath;
    int flags;
    int64_t hold_ms;
    int n;
    rline *ln;
    /* our enqueue */
    int queued;        /* our nodes exist, as far as we know */
    int reenq;
    char nonce[ZKC__RES_NONCE_LEN + 1];
    uint64_t owner;
    uint64_t gen;      /* session our nodes belong to */
    uint64_t sent_gen;
    int32_t rec_ver;
    int32_t enq_ver;   /* record version a re-enqueue is conditional on */
    wslot rec_w;
    int dirty_rec;
    int check_rec;     /* read the record before listing */
    int missing;       /* our node is gone from a listing: ask the record */
    int recheck;       /* head waiting for restock: look again */
    int nodes_gone;
    zkc__timer timer;  /* the caller's deadline */
    zkc__timer backoff;
    int backoff_armed;
    int attempts;
    int withdraws;
    int mkpaths;
    rq *enq_next;      /* in the inventory's combining list */
    int limit_synced;  /* -1: a SKU looked missing, sync and look again; 1: done */
    /* a parallel group's first failure */
    int err;
    char err_msg[256];
    /* granter */
    char **glist;      /* a fresh listing of our (single) queue, in order */
    int nglist;
    gmem *gm;
    int ngm;
    int dec[ZKC__RES_BATCH]; /* decided members (index in gm) */
    int dstate[ZKC__RES_BATCH];
    int ndec;
    int64_t short_by;
    /* an existing record under our id */
    zkc__res_rec *ex;
    int32_t ex_ver;
    char *fnode;
    wslot fnode_w;
    int follow_dirty;
};

static void step(rq *q);
static void round_start(rq *q);
static void enq_send(rq *q);
static void existing_read(rq *q);
static void existing_eval(rq *q);

#define RQ_SEND(q, call)                                                                                      \
    do {                                                                                                       \
        (q)->refs++;                                                                                           \
        (q)->busy++;                                                                                           \
        (void)(call);                                                                                          \
    } while (0)
/* ... with r->tag = t (a line or member index). */
#define RQ_SEND_TAG(q, t, call)                                                                               \
    do {                                                                                                       \
        (q)->refs++;                                                                                           \
        (q)->busy++;                                                                                           \
        zkc__req *r_ = (call);                                                                                 \
        r_->tag = (uint64_t)(t);                                                                               \
    } while (0)

static void free_glist(rq *q)
{
    for (int i = 0; i < q->nglist; i++)
        free(q->glist[i]);
    free(q->glist);
    q->glist = NULL;
    q->nglist = 0;
}

static void free_gm(rq *q)
{
    for (int i = 0; i < q->ngm; i++)
        free(q->gm[i].name);
    free(q->gm);
    q->gm = NULL;
    q->ngm = 0;
}

static void rq_unref(rq *q)
{
    if (--q->refs > 0)
        return;
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        free(l->skupath);
        free(l->qdir);
        free(l->node);
        free(l->pred);
    }
    free(q->ln);
    free(q->recpath);
    free_glist(q);
    free_gm(q);
    free(q->ex);
    free(q->fnode);
    zkc_inventory *inv = q->inv;
    free(q);
    inv_unref(inv);
}

/* Lose interest in a watch. One whose read is still in flight is left to that
 * read's reply (rq_late, or the reply handler), which drops it. */
static void ws_release(wslot *s)
{
    if (s->w && !s->reading) {
        zkc__watch_drop(s->w);
        s->w = NULL;
    }
}

static void drop_watches(rq *q)
{
    ws_release(&q->rec_w);
    ws_release(&q->fnode_w);
    for (int i = 0; i < q->n; i++) {
        ws_release(&q->ln[i].pred_w);
        ws_release(&q->ln[i].sku_w);
    }
}

static void rq_unlink(rq *q)
{
    if (!q->linked)
        return;
    zkc_inventory *inv = q->inv;
    if (q->prev)
        q->prev->next = q->next;
    else
        inv->rqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->linked = 0;
    if (inv->destroy_op && !inv->rqs)
        destroy_done(inv);
}

/* Our nodes were deleted by a decision (grant, refusal, withdrawal). */
static void forget_nodes(rq *q)
{
    for (int i = 0; i < q->n; i++) {
        free(q->ln[i].node);
        q->ln[i].node = NULL;
    }
    q->queued = 0;
}

static void janitor_nodes(rq *q)
{
    for (int i = 0; i < q->n; i++) {
        if (q->ln[i].node && !q->c->closing)
            zkc__janitor_delete(q->c, q->ln[i].node);
        free(q->ln[i].node);
        q->ln[i].node = NULL;
    }
    q->queued = 0;
}

static void rq_finish(rq *q, int status, int state, const char *fmt, ...) ZKC__PRINTF(4, 5);
static void rq_finish(rq *q, int status, int state, const char *fmt, ...)
{
    if (q->finished)
        return;
    q->finished = 1;
    drop_watches(q);
    zkc__timer_disarm(q->c, &q->timer);
    if (q->backoff_armed) {
        zkc__timer_disarm(q->c, &q->backoff);
        q->backoff_armed = 0;
        q->busy--;
        q->refs--; /* the timer's; the main ref below keeps q alive */
    }
    res_op *op = q->op;
    q->op = NULL;
    if (op) {
        op->state = (zkc_res_state)state;
        if (fmt) {
            char msg[256];
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(msg, sizeof msg, fmt, ap);
            va_end(ap);
            zkc__op_finish(&op->op, status, "%s", msg);
        } else {
            zkc__op_finish(&op->op, status, NULL);
        }
    }
    rq_unlink(q); /* the last one out completes a waiting zkc_inventory_destroy */
    rq_unref(q);
}

/* A decided record: the caller hears exactly what it says. */
static void finish_decided(rq *q, int state)
{
    switch (state) {
    case ZKC_RES_RESERVED:
    case ZKC_RES_SOLD:
        rq_finish(q, 0, state, NULL);
        break;
    case ZKC_RES_OUT_OF_STOCK:
        rq_finish(q, ZKC_EOUTOFSTOCK, state, "request %s: not enough stock (fail-fast)", q->id);
        break;
    case ZKC_RES_TIMED_OUT:
        rq_finish(q, ZKC_ETIMEDOUT, state, "request %s: left the queue at its timeout", q->id);
        break;
    default:
        rq_finish(q, ZKC_EEXISTS, state, "request %s: its reservation already ended (%s); the id is spent", q->id,
                  zkc__res_state_name(state));
        break;
    }
}

/* Stop: leave the queue first if we are in it (step() does it). */
static void rq_fail(rq *q, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void rq_fail(rq *q, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    first_error(&q->leave, q->leave_msg, sizeof q->leave_msg, status, fmt, ap);
    va_end(ap);
    step(q);
}

static void group_err(rq *q, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void group_err(rq *q, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    first_error(&q->err, q->err_msg, sizeof q->err_msg, status, fmt, ap);
    va_end(ap);
}

/* A reply for a finished request: clean up what it carries. */
static void rq_late(rq *q, zkc__req *r)
{
    if (r->watch) {
        wslot *slots[2 + 2 * ZKC__RES_MAX_LINES];
        int ns = 0;
        slots[ns++] = &q->rec_w;
        slots[ns++] = &q->fnode_w;
        for (int i = 0; i < q->n; i++) {
            slots[ns++] = &q->ln[i].pred_w;
            slots[ns++] = &q->ln[i].sku_w;
        }
        for (int i = 0; i < ns; i++)
            if (slots[i]->w == r->watch) {
                slots[i]->w = NULL;
                slots[i]->reading = 0;
            }
        zkc__watch_drop(r->watch);
    }
    /* Queue nodes created for a request that is over must not linger. */
    if (r->kind == ZKC_REQ_MULTI && r->rc == ZR_OK && !q->c->closing)
        for (int i = 0; i < r->nops; i++)
            if (r->ops[i].type == ZKC_REQ_CREATE && (r->ops[i].flags & ZC_EPHEMERAL) && r->ops[i].created)
                zkc__janitor_delete(q->c, r->ops[i].created);
}

/* Reply wrapper: the chain count goes down; a finished request only cleans up. */
#define RQ_DONE(name)                                                                                         \
    static void name##_h(rq *q, zkc__req *r);                                                                  \
    static void name(zkc__req *r)                                                                              \
    {                                                                                                          \
        rq *q = r->ctx;                                                                                        \
        q->busy--;                                                                                             \
        if (q->finished)                                                                                       \
            rq_late(q, r);                                                                                     \
        else                                                                                                   \
            name##_h(q, r);                                                                                    \
        rq_unref(q);                                                                                           \
    }                                                                                                          \
    static void name##_h(rq *q, zkc__req *r)

/* ---------------------------------------------------------------- records */

static void own_record(rq *q, int state, zkc__res_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->state = state;
    rec->flags = q->flags;
    rec->hold_ms = q->hold_ms;
    memcpy(rec->nonce, q->nonce, sizeof rec->nonce);
    rec->owner = q->owner;
    rec->n = q->n;
    for (int i = 0; i < q->n; i++)
        rec->line[i] = q->ln[i].l;
}

static char *encode_rec(const zkc__res_rec *rec, int *len)
{
    char *buf = malloc(RES_REC_BUF);
    if (!buf)
        abort();
    *len = zkc__resrec_encode(rec, buf, RES_REC_BUF);
    if (*len < 0)
        abort(); /* validated at submission */
    return buf;
}

/* Do our lines equal the record's (as sets)? */
static int same_lines(rq *q, const zkc__res_rec *rec)
{
    if (rec->n != q->n)
        return 0;
    for (int i = 0; i < q->n; i++) {
        int found = 0;
        for (int j = 0; j < rec->n; j++)
            if (strcmp(rec->line[j].sku, q->ln[i].l.sku) == 0 && rec->line[j].qty == q->ln[i].l.qty)
                found = 1;
        if (!found)
            return 0;
    }
    return 1;
}

static int our_node_name(rline *l, const char *name)
{
    if (!l->node)
        return 0;
    const char *slash = strrchr(l->node, '/');
    return slash && strcmp(slash + 1, name) == 0;
}

/* Sorted queue members (only names of our own form), pointing into names. */
static int parse_queue(char **names, int n, zkc__member **out)
{
    char **ok = calloc((size_t)n + 1, sizeof *ok);
    zkc__member *m = calloc((size_t)n + 1, sizeof *m);
    if (!ok || !m)
        abort();
    int k = 0;
    for (int i = 0; i < n; i++)
        if (zkc__resname_parse(names[i], NULL, NULL))
            ok[k++] = names[i];
    int cnt = zkc__members_parse(ok, k, m, NULL, NULL);
    free(ok);
    *out = m;
    return cnt;
}

/* ---------------------------------------------------------------- start */

static void check_limits(rq *q);

RQ_DONE(limit_sync_done)
{
    ZKC__UNUSED(r);
    check_limits(q);
}

RQ_DONE(limit_done)
{
    rline *l = &q->ln[r->tag];
    if (r->rc == ZR_NONODE && !q->limit_synced) {
        q->limit_synced = -1; /* maybe our server lags the one that created it */
    } else if (r->rc == ZR_NONODE)
        group_err(q, ZKC_ENONODE, "SKU %s has no queue under %s (zkc_inventory_restock creates the SKU)", l->l.sku,
                  q->inv->sku_dir);
    else if (r->rc != ZR_OK)
        group_err(q, req_error(r->rc), "request %s: reading the queue of SKU %s: %s", q->id, l->l.sku,
                  zkc__zrc_name(r->rc));
    else if (r->stat.num_children >= ZKC__RES_QUEUE_MAX)
        group_err(q, ZKC_ELIMIT,
                  "SKU %s: its queue already holds %d waiting requests; the limit is %d (one listing must stay "
                  "within jute.maxbuffer)",
                  l->l.sku, r->stat.num_children, ZKC__RES_QUEUE_MAX);
    if (q->busy)
        return;
    if (q->err) {
        rq_finish(q, q->err, ZKC_RES_PENDING, "%s", q->err_msg);
        return;
    }
    if (q->limit_synced < 0) {
        /* A refusal must rest on what the servers say now: catch up, look again. */
        q->limit_synced = 1;
        RQ_SEND(q, zkc__sync(q->c, q->inv->sku_dir, limit_sync_done, q));
        return;
    }
    enq_send(q);
}

static void check_limits(rq *q)
{
    if (q->leave) {
        step(q);
        return;
    }
    q->err = 0;
    q->phase = P_START;
    for (int i = 0; i < q->n; i++)
        RQ_SEND_TAG(q, i, zkc__exists(q->c, q->ln[i].qdir, NULL, limit_done, q));
}

/* ---------------------------------------------------------------- enqueue */

static void enq_bucket_done(void *arg, int rc)
{
    rq *q = arg;
    q->busy--;
    if (!q->finished) {
        if (rc != ZR_OK)
            rq_finish(q, req_error(rc), ZKC_RES_PENDING, "request %s: cannot create %s: %s", q->id, q->inv->req_dir,
                      zkc__zrc_name(rc));
        else
            enq_send(q);
    }
    rq_unref(q);
}

static void enq_recover(rq *q);

/* The outcome of an enqueue multi for one request whose ops are
 * r->ops[off .. off + q->n]: the record's op first, then one per line. */
static void enq_result(rq *q, zkc__req *r, int off)
{
    if (r->rc == ZR_OK) {
        q->gen = r->gen;
        q->rec_ver = q->reenq ? r->ops[off].stat.version : 0;
        for (int i = 0; i < q->n; i++) {
            rline *l = &q->ln[i];
            free(l->node);
            l->node = strdup(r->ops[off + 1 + i].created);
            if (!l->node)
                abort();
            /* Its place in the FIFO: requests queued by one multi share a
             * record czxid, so only the node's sequence orders them. */
            zkc__log(q->c, ZKC_LOG_DEBUG, "inventory %s: request %s queued as %s", q->inv->root, q->id, l->node);
            l->head = 0;
            l->dirty = 1;
        }
        q->queued = 1;
        q->phase = P_QUEUED;
        step(q); /* lists its queues; the record watch only if it must wait */
        return;
    }
    if (unknown_outcome(r->rc)) {
        q->sent_gen = r->gen;
        enq_recover(q);
        return;
    }
    if (r->rc == ZR_SESSIONLOST) {
        /* Never sent: the next session gets it. */
        if (++q->attempts > RES_ATTEMPTS)
            rq_finish(q, ZKC_ESESSIONLOST, ZKC_RES_PENDING, "request %s: sessions keep ending", q->id);
        else
            enq_send(q);
        return;
    }
    if (r->rc == ZR_NOTSENT || r->rc == ZR_CLOSING) {
        rq_finish(q, req_error(r->rc), ZKC_RES_PENDING,
                  "request %s: not queued: %s", q->id,
                  r->rc == ZR_CLOSING ? "the client is closing" : "no server reachable within the operation timeout");
        return;
    }
    int kk = multi_failed(r);
    if (kk >= 0 && (kk < off || kk > off + q->n)) {
        /* Another request of the same combined multi failed it: ours was not
         * applied and says nothing about our id. */
        enq_send(q);
        return;
    }
    int k = kk >= 0 ? kk - off : -1;
    int rc = kk >= 0 ? r->ops[kk].rc : r->rc;
    if (k == 0) {
        if (!q->reenq && rc == ZR_NODEEXISTS) {
            existing_read(q); /* this id was seen before */
            return;
        }
        if (!q->reenq && rc == ZR_NONODE && q->mkpaths++ < 3) {
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(q->recpath, dir, sizeof dir);
            q->refs++;
            q->busy++;
            mkpath_start(q->c, dir, enq_bucket_done, q);
            return;
        }
        if (q->reenq && rc == ZR_BADVERSION) {
            existing_read(q); /* someone else moved it: look again */
            return;
        }
        if (q->reenq && rc == ZR_NONODE) {
            q->reenq = 0; /* reaped meanwhile: a fresh record */
            enq_send(q);
            return;
        }
    } else if (k > 0 && rc == ZR_NONODE) {
        rq_finish(q, ZKC_ENONODE, ZKC_RES_PENDING, "SKU %s has no queue under %s (zkc_inventory_restock creates it)",
                  q->ln[k - 1].l.sku, q->inv->sku_dir);
        return;
    }
    rq_finish(q, req_error(rc), ZKC_RES_PENDING, "request %s: enqueue failed on %s: %s", q->id,
              kk >= 0 ? r->ops[kk].path : "multi", zkc__zrc_name(rc));
}

RQ_DONE(enq_done)
{
    enq_result(q, r, 0);
}

/* The ops that enqueue q (record, then one queue node per line) into ops[];
 * what they point to is appended to keep[] for the caller to free after the
 * multi is built. Returns the number of ops. */
static int enq_ops(rq *q, zkc__mop *ops, char **keep, int *nkeep)
{
    q->owner = (uint64_t)q->c->session_id;
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    own_record(q, ZKC_RES_PENDING, rec);
    int len;
    char *data = encode_rec(rec, &len);
    free(rec);
    keep[(*nkeep)++] = data;
    memset(ops, 0, sizeof *ops * (size_t)(1 + q->n));
    ops[0].type = q->reenq ? ZKC_REQ_SET : ZKC_REQ_CREATE;
    ops[0].path = q->recpath;
    ops[0].data = data;
    ops[0].len = len;
    ops[0].version = q->enq_ver;
    for (int i = 0; i < q->n; i++) {
        zkc__res_qent e;
        memset(&e, 0, sizeof e);
        e.qty = q->ln[i].l.qty;
        e.flags = q->flags;
        e.nlines = q->n;
        e.hold_ms = q->hold_ms;
        memcpy(e.nonce, q->nonce, sizeof e.nonce);
        snprintf(e.id, sizeof e.id, "%s", q->id);
        char *ent = malloc(320);
        if (!ent)
            abort();
        int el = zkc__qent_encode(&e, ent, 320);
        if (el < 0)
            abort();
        keep[(*nkeep)++] = ent;
        char *prefix = mprintf("%s/r-%s-", q->ln[i].qdir, q->nonce);
        keep[(*nkeep)++] = prefix;
        ops[1 + i].type = ZKC_REQ_CREATE;
        ops[1 + i].path = prefix;
        ops[1 + i].data = ent;
        ops[1 + i].len = el;
        ops[1 + i].flags = ZC_EPHEMERAL | ZC_SEQUENTIAL;
    }
    return 1 + q->n;
}

/* ---- COMBINING. Orders of one client that are ready to enqueue together
 * share one multi: while one combined multi is out, fresh enqueues wait in
 * the inventory's list, and its reply sends the next one with all of them
 * (counter.c combines adds the same way). Arrival order is op order, so FIFO
 * is kept; the multi is all or nothing, so each request's recovery after a
 * connection loss (its record names its nonce) is unchanged; a request whose
 * own op failed the multi is told as if it had been alone, the others resend.
 * Re-enqueues (a setData conditional on an old record) stay alone. */

#define ENQ_COMBINE_MAX 64          /* requests per combined multi */
#define ENQ_COMBINE_OPS 256         /* ... and ops: a few hundred KB at most */

typedef struct enq_batch {
    zkc_inventory *inv;
    int n;
    rq *m[ENQ_COMBINE_MAX];
    int off[ENQ_COMBINE_MAX];
} enq_batch;

static void enq_flush(zkc_inventory *inv);

static void enq_batch_done(zkc__req *r)
{
    enq_batch *b = r->ctx;
    zkc_inventory *inv = b->inv;
    /* Still "in flight" while we hand out the results, so that the requests
     * that must resend gather for one multi at the end, ahead of those that
     * arrived while this one was out (they were queued later). */
    inv->enq_dispatching = 1;
    inv->enq_front = NULL;
    for (int i = 0; i < b->n; i++) {
        rq *q = b->m[i];
        q->busy--;
        if (q->finished) {
            /* Over while its multi was out: its nodes, if made, must go. */
            if (r->rc == ZR_OK && !q->c->closing)
                for (int j = 1; j <= q->n; j++)
                    if (r->ops[b->off[i] + j].created)
                        zkc__janitor_delete(q->c, r->ops[b->off[i] + j].created);
        } else {
            enq_result(q, r, b->off[i]);
        }
        rq_unref(q);
    }
    free(b);
    inv->enq_dispatching = 0;
    inv->enq_inflight = 0;
    enq_flush(inv); /* requests that arrived meanwhile, and any that must resend */
    inv_unref(inv);
}

static void enq_flush(zkc_inventory *inv)
{
    if (inv->enq_inflight || !inv->enq_first)
        return;
    enq_batch *b = calloc(1, sizeof *b);
    zkc__mop *ops = calloc(ENQ_COMBINE_OPS + 1 + ZKC__RES_MAX_LINES, sizeof *ops);
    char **keep = calloc(3 * (ENQ_COMBINE_OPS + 1 + ZKC__RES_MAX_LINES), sizeof *keep);
    if (!b || !ops || !keep)
        abort();
    int nops = 0, nkeep = 0;
    while (inv->enq_first && b->n < ENQ_COMBINE_MAX &&
           (b->n == 0 || nops + 1 + inv->enq_first->n <= ENQ_COMBINE_OPS)) {
        rq *q = inv->enq_first;
        inv->enq_first = q->enq_next;
        if (!inv->enq_first)
            inv->enq_last = NULL;
        q->enq_next = NULL;
        if (q->finished || q->leave) {
            /* A timeout, destroy or shutdown came while it waited: queue nothing. */
            q->busy--;
            step(q);
            rq_unref(q);
            continue;
        }
        b->m[b->n] = q;
        b->off[b->n] = nops;
        b->n++;
        nops += enq_ops(q, ops + nops, keep, &nkeep);
    }
    if (b->n > 0) {
        b->inv = inv;
        inv_ref(inv);
        inv->enq_inflight = 1;
        zkc__multi(inv->c, ops, nops, enq_batch_done, b);
    } else {
        free(b);
    }
    for (int i = 0; i < nkeep; i++)
        free(keep[i]);
    free(keep);
    free(ops);
}

static void enq_send(rq *q)
{
    if (q->leave) {
        step(q); /* a timeout or destroy came first: queue nothing */
        return;
    }
    if (++q->attempts > RES_ATTEMPTS) {
        rq_finish(q, ZKC_ECONTENDED, ZKC_RES_PENDING, "request %s: its record keeps changing under us", q->id);
        return;
    }
    q->phase = P_ENQ;
    new_nonce(q->nonce);
    if (q->reenq) {
        zkc__mop ops[1 + ZKC__RES_MAX_LINES];
        char *keep[1 + 2 * ZKC__RES_MAX_LINES];
        int nkeep = 0;
        int nops = enq_ops(q, ops, keep, &nkeep);
        RQ_SEND(q, zkc__multi(q->c, ops, nops, enq_done, q));
        for (int i = 0; i < nkeep; i++)
            free(keep[i]);
        return;
    }
    /* Counted as a request in flight from now: step() leaves it alone. */
    zkc_inventory *inv = q->inv;
    q->refs++;
    q->busy++;
    if (inv->enq_dispatching) {
        /* A resend from the multi just answered: before later arrivals. */
        rq **at = inv->enq_front ? &inv->enq_front->enq_next : &inv->enq_first;
        q->enq_next = *at;
        *at = q;
        if (!q->enq_next)
            inv->enq_last = q;
        inv->enq_front = q;
    } else {
        if (inv->enq_last)
            inv->enq_last->enq_next = q;
        else
            inv->enq_first = q;
        inv->enq_last = q;
    }
    enq_flush(inv);
}

/* ---- enqueue outcome unknown: the record names the nonce that won ---- */

RQ_DONE(recover_find_done)
{
    rline *l = &q->ln[r->tag];
    if (r->rc == ZR_OK) {
        for (int i = 0; i < r->nchildren; i++) {
            char nonce[ZKC__RES_NONCE_LEN + 1];
            if (zkc__resname_parse(r->children[i], nonce, NULL) && strcmp(nonce, q->nonce) == 0) {
                free(l->node);
                l->node = zkc__path_join(l->qdir, r->children[i]);
            }
        }
    } else if (r->rc != ZR_NONODE) {
        group_err(q, req_error(r->rc), "request %s: listing the queue of %s after a connection loss: %s", q->id,
                  l->l.sku, zkc__zrc_name(r->rc));
    }
    if (q->busy)
        return;
    int found = 0;
    for (int i = 0; i < q->n; i++)
        found += q->ln[i].node != NULL;
    if (q->err || found < q->n || q->sent_gen != q->c->gen) {
        /* Our nodes are gone, or belong to a session that ended. */
        janitor_nodes(q);
        if (q->err)
            rq_finish(q, q->err, ZKC_RES_PENDING, "%s", q->err_msg);
        else
            rq_finish(q, ZKC_ESESSIONLOST, ZKC_RES_PENDING,
                      "request %s: queued, but the session that queued it ended; look it up by id", q->id);
        return;
    }
    q->gen = q->sent_gen;
    q->queued = 1;
    q->phase = P_QUEUED;
    for (int i = 0; i < q->n; i++)
        q->ln[i].dirty = 1;
    step(q);
}

RQ_DONE(recover_get_done)
{
    if (r->rc == ZR_NONODE) {
        q->reenq = 0; /* never applied */
        enq_send(q);
        return;
    }
    if (r->rc != ZR_OK) {
        for (int i = 0; i < q->n; i++)
            if (!q->c->closing)
                zkc__janitor_find(q->c, q->ln[i].qdir, q->nonce);
        rq_finish(q, ZKC_EUNKNOWN, ZKC_RES_PENDING,
                  "request %s: enqueue outcome unknown (%s); its queue nodes will be removed once a server answers; "
                  "look it up by id",
                  q->id, zkc__zrc_name(r->rc));
        return;
    }
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    const char *why = NULL;
    if (zkc__resrec_decode(r->value, r->valuelen, rec, &why) != 0) {
        free(rec);
        rq_finish(q, ZKC_EBADDATA, ZKC_RES_PENDING, "request record %s: %s", q->recpath, why);
        return;
    }
    if (rec->state == ZKC_RES_PENDING && strcmp(rec->nonce, q->nonce) == 0) {
        free(rec);
        q->rec_ver = r->stat.version;
        q->err = 0;
        for (int i = 0; i < q->n; i++)
            RQ_SEND_TAG(q, i, zkc__children(q->c, q->ln[i].qdir, NULL, recover_find_done, q));
        return;
    }
    /* Not ours: another worker's request under our id, or ours never landed. */
    free(q->ex);
    q->ex = rec;
    q->ex_ver = r->stat.version;
    existing_eval(q);
}

RQ_DONE(recover_sync_done)
{
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, recover_get_done, q));
    (void)r;
}

static void enq_recover(rq *q)
{
    q->phase = P_RECOVER;
    RQ_SEND(q, zkc__sync(q->c, q->recpath, recover_sync_done, q));
}

/* ---------------------------------------------------------------- an id seen before */

static rline *line_of(rq *q, const char *sku)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->ln[i].l.sku, sku) == 0)
            return &q->ln[i];
    return &q->ln[0];
}

static void reenqueue(rq *q, int32_t version)
{
    q->reenq = 1;
    q->enq_ver = version;
    enq_send(q);
}

RQ_DONE(exconfirm_done)
{
    if (r->rc == ZR_NONODE) {
        q->reenq = 0;
        enq_send(q);
        return;
    }
    if (r->rc != ZR_OK) {
        rq_finish(q, req_error(r->rc), ZKC_RES_PENDING, "request %s: reading its record: %s", q->id,
                  zkc__zrc_name(r->rc));
        return;
    }
    if (r->stat.version == q->ex_ver) {
        /* PENDING, no queue node, and nothing changed meanwhile: the worker
         * that queued it is gone (ABANDONED). Queue it again, as ours. */
        reenqueue(q, q->ex_ver);
        return;
    }
    const char *why = NULL;
    if (zkc__resrec_decode(r->value, r->valuelen, q->ex, &why) != 0) {
        rq_finish(q, ZKC_EBADDATA, ZKC_RES_PENDING, "request record %s: %s", q->recpath, why);
        return;
    }
    q->ex_ver = r->stat.version;
    existing_eval(q);
}

static void follow_rec_fired(zkc__watch *w, int ev);
static void follow_node_fired(zkc__watch *w, int ev);

RQ_DONE(follow_rec_done)
{
    q->rec_w.reading = 0;
    if (r->rc != ZR_OK) {
        zkc__watch_drop(r->watch);
        if (q->rec_w.w == r->watch)
            q->rec_w.w = NULL;
        if (r->rc != ZR_NONODE) {
            rq_finish(q, req_error(r->rc), ZKC_RES_PENDING, "request %s: watching its record: %s", q->id,
                      zkc__zrc_name(r->rc));
            return;
        }
        q->follow_dirty = 1;
    } else if (r->stat.version != q->ex_ver) {
        q->follow_dirty = 1; /* it moved before the watch was set */
    }
    step(q);
}

RQ_DONE(follow_node_done)
{
    q->fnode_w.reading = 0;
    if (r->rc != ZR_OK) {
        zkc__watch_drop(r->watch);
        q->fnode_w.w = NULL;
        if (r->rc != ZR_NONODE) {
            rq_finish(q, req_error(r->rc), ZKC_RES_PENDING, "request %s: watching its queue node: %s", q->id,
                      zkc__zrc_name(r->rc));
            return;
        }
        q->follow_dirty = 1;
    }
    step(q);
}

static void follow(rq *q, const char *node)
{
    free(q->fnode);
    q->fnode = strdup(node);
    if (!q->fnode)
        abort();
    q->phase = P_FOLLOW;
    q->follow_dirty = 0;
    ws_release(&q->rec_w);
    ws_release(&q->fnode_w);
    q->rec_w.w = zkc__watch_new(q->c, follow_rec_fired, q);
    q->fnode_w.w = zkc__watch_new(q->c, follow_node_fired, q);
    if (!q->rec_w.w || !q->fnode_w.w)
        abort();
    q->rec_w.reading = q->fnode_w.reading = 1;
    RQ_SEND(q, zkc__get(q->c, q->recpath, q->rec_w.w, follow_rec_done, q));
    RQ_SEND(q, zkc__get(q->c, q->fnode, q->fnode_w.w, follow_node_done, q));
}

RQ_DONE(exfind_done)
{
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        rq_finish(q, req_error(r->rc), ZKC_RES_PENDING, "request %s: listing a queue: %s", q->id,
                  zkc__zrc_name(r->rc));
        return;
    }
    for (int i = 0; r->rc == ZR_OK && i < r->nchildren; i++) {
        char nonce[ZKC__RES_NONCE_LEN + 1];
        if (zkc__resname_parse(r->children[i], nonce, NULL) && strcmp(nonce, q->ex->nonce) == 0) {
            char *p = zkc__path_join(r->path, r->children[i]);
            if (!p)
                abort();
            follow(q, p); /* with timeout 0, step() ends it once the watches are set */
            free(p);
            return;
        }
    }
    /* No node: check that the record did not move while we looked. */
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, exconfirm_done, q));
}

static void existing_eval(rq *q)
{
    zkc__res_rec *ex = q->ex;
    q->phase = P_EXISTING;
    if (q->leave && ex->state == ZKC_RES_PENDING) {
        step(q);
        return;
    }
    if (!same_lines(q, ex)) {
        rq_finish(q, ZKC_EEXISTS, ex->state == ZKC_RES_PENDING ? ZKC_RES_PENDING : ex->state,
                  "request id %s is already used by a request for other lines (%d line(s), first %" PRId64
                  " of %s)",
                  q->id, ex->n, ex->line[0].qty, ex->line[0].sku);
        return;
    }
    switch (ex->state) {
    case ZKC_RES_RESERVED:
    case ZKC_RES_SOLD:
    case ZKC_RES_CANCELLED:
    case ZKC_RES_EXPIRED:
        finish_decided(q, ex->state);
        return;
    case ZKC_RES_OUT_OF_STOCK:
    case ZKC_RES_TIMED_OUT:
        /* No unit was ever held under this id: a new attempt. */
        reenqueue(q, q->ex_ver);
        return;
    default:
        break;
    }
    /* PENDING: alive if its queue node is; the nonce names it. */
    rline *l = line_of(q, ex->line[0].sku);
    RQ_SEND(q, zkc__children(q->c, l->qdir, NULL, exfind_done, q));
}

RQ_DONE(exget_done)
{
    if (r->rc == ZR_NONODE) {
        q->reenq = 0; /* deleted (reaped) since: a fresh one */
        enq_send(q);
        return;
    }
    if (r->rc != ZR_OK) {
        rq_finish(q, req_error(r->rc), ZKC_RES_PENDING, "request %s: reading its record: %s", q->id,
                  zkc__zrc_name(r->rc));
        return;
    }
    if (!q->ex && !(q->ex = malloc(sizeof *q->ex)))
        abort();
    const char *why = NULL;
    if (zkc__resrec_decode(r->value, r->valuelen, q->ex, &why) != 0) {
        rq_finish(q, ZKC_EBADDATA, ZKC_RES_PENDING, "request record %s: %s; nothing was written", q->recpath, why);
        return;
    }
    q->ex_ver = r->stat.version;
    existing_eval(q);
}

static void existing_read(rq *q)
{
    q->phase = P_EXISTING;
    if (q->leave) {
        step(q);
        return;
    }
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, exget_done, q));
}

static void follow_rec_fired(zkc__watch *w, int ev)
{
    rq *q = w->ctx;
    ZKC__UNUSED(ev);
    if (q->rec_w.w == w)
        q->rec_w.w = NULL;
    if (q->finished)
        return;
    if (q->phase == P_FOLLOW)
        q->follow_dirty = 1;
    else
        q->dirty_rec = 1;
    step(q);
}

static void follow_node_fired(zkc__watch *w, int ev)
{
    rq *q = w->ctx;
    ZKC__UNUSED(ev);
    if (q->fnode_w.w == w)
        q->fnode_w.w = NULL;
    if (q->finished)
        return;
    q->follow_dirty = 1;
    step(q);
}

/* ---------------------------------------------------------------- queued */

static void pred_fired(zkc__watch *w, int ev)
{
    rline *l = w->ctx;
    rq *q = l->q;
    if (l->pred_w.w == w)
        l->pred_w.w = NULL;
    if (q->finished)
        return;
    if (ev == ZW_DELETED) {
        /* Usually the batch that deleted it decided us too: the record says
         * so without a listing. */
        l->dirty = 1;
        q->check_rec = 1;
    }
    step(q);
}

static void sku_fired(zkc__watch *w, int ev)
{
    rline *l = w->ctx;
    rq *q = l->q;
    ZKC__UNUSED(ev);
    if (l->sku_w.w == w)
        l->sku_w.w = NULL;
    if (q->finished)
        return;
    if (q->phase == P_WAITSTOCK)
        q->recheck = 1;
    step(q);
}

RQ_DONE(missing_done)
{
    zkc__res_rec rec;
    const char *why = NULL;
    if (r->rc == ZR_OK && zkc__resrec_decode(r->value, r->valuelen, &rec, &why) == 0 &&
        rec.state != ZKC_RES_PENDING && strcmp(rec.nonce, q->nonce) == 0) {
        forget_nodes(q);
        finish_decided(q, rec.state);
        return;
    }
    /* Our node vanished and nobody decided: the session that owned it ended
     * (or someone deleted it). */
    janitor_nodes(q);
    rq_finish(q, ZKC_ESESSIONLOST, ZKC_RES_PENDING,
              "request %s: its queue node vanished without a decision (the session that queued it ended?); look it "
              "up by id",
              q->id);
}

RQ_DONE(rec_done)
{
    if (r->watch && r->watch == q->rec_w.w)
        q->rec_w.reading = 0; /* this read carried our record watch */
    if (r->rc != ZR_OK) {
        if (r->watch) {
            zkc__watch_drop(r->watch);
            if (q->rec_w.w == r->watch)
                q->rec_w.w = NULL;
        }
        rq_fail(q, r->rc == ZR_NONODE ? ZKC_EBADDATA : req_error(r->rc), "request %s: reading its record %s: %s",
                q->id, q->recpath, r->rc == ZR_NONODE ? "deleted while queued" : zkc__zrc_name(r->rc));
        return;
    }
    zkc__res_rec rec;
    const char *why = NULL;
    if (zkc__resrec_decode(r->value, r->valuelen, &rec, &why) != 0) {
        rq_fail(q, ZKC_EBADDATA, "request record %s: %s", q->recpath, why);
        return;
    }
    if (strcmp(rec.nonce, q->nonce) != 0) {
        /* Someone queued this id again: ours must be gone. */
        q->missing = 1;
        step(q);
        return;
    }
    if (rec.state != ZKC_RES_PENDING) {
        forget_nodes(q);
        finish_decided(q, rec.state);
        return;
    }
    q->rec_ver = r->stat.version;
    step(q);
}

RQ_DONE(pred_done)
{
    rline *l = &q->ln[r->tag];
    l->pred_w.reading = 0;
    if (r->rc != ZR_OK) {
        zkc__watch_drop(r->watch);
        if (l->pred_w.w == r->watch)
            l->pred_w.w = NULL;
        if (r->rc != ZR_NONODE) {
            rq_fail(q, req_error(r->rc), "request %s: watching the node ahead in the queue of %s: %s", q->id,
                    l->l.sku, zkc__zrc_name(r->rc));
            return;
        }
        l->dirty = 1; /* gone already: look again */
    }
    step(q);
}

RQ_DONE(list_done)
{
    rline *l = &q->ln[r->tag];
    if (r->rc != ZR_OK) {
        rq_fail(q, r->rc == ZR_NONODE ? ZKC_ENONODE : req_error(r->rc), "request %s: listing the queue of %s: %s",
                q->id, l->l.sku, r->rc == ZR_NONODE ? "the queue was deleted" : zkc__zrc_name(r->rc));
        return;
    }
    zkc__member *m;
    int n = parse_queue(r->children, r->nchildren, &m);
    int self = -1;
    for (int i = 0; i < n && self < 0; i++)
        if (our_node_name(l, m[i].name))
            self = i;
    if (self < 0) {
        q->missing = 1;
    } else if (self == 0) {
        l->head = 1;
        free(l->pred);
        l->pred = NULL;
        ws_release(&l->pred_w);
        if (q->n == 1) {
            /* The granter's first round uses this very listing. */
            free_glist(q);
            int w = n < RES_WINDOW ? n : RES_WINDOW;
            q->glist = calloc((size_t)w, sizeof *q->glist);
            if (!q->glist)
                abort();
            for (int i = 0; i < w; i++)
                if (!(q->glist[i] = strdup(m[i].name)))
                    abort();
            q->nglist = w;
        }
    } else {
        l->head = 0;
        char *p = zkc__path_join(l->qdir, m[self - 1].name);
        if (!p)
            abort();
        if (!l->pred || strcmp(l->pred, p) != 0) {
            ws_release(&l->pred_w);
            free(l->pred);
            l->pred = p;
        } else {
            free(p);
        }
    }
    free(m);
    step(q);
}

static void read_record_watched(rq *q)
{
    zkc__watch *w = NULL;
    if (!q->rec_w.w) {
        w = zkc__watch_new(q->c, follow_rec_fired, q);
        if (!w)
            abort();
        q->rec_w.w = w;
        q->rec_w.reading = 1;
    }
    RQ_SEND(q, zkc__get(q->c, q->recpath, w, rec_done, q));
}

/* What a queued request does next, when nothing is in flight. Independent
 * reads go out together: the record (with its watch) and the listings, then
 * the watches on the nodes ahead. */
static void queued_step(rq *q)
{
    if (q->missing) {
        RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, missing_done, q));
        return;
    }
    if (q->dirty_rec || q->check_rec) {
        /* Alone: if it says decided, nothing else is needed. */
        q->dirty_rec = q->check_rec = 0;
        read_record_watched(q);
        return;
    }
    int sent = 0;
    for (int i = 0; i < q->n; i++) {
        if (q->ln[i].dirty) {
            q->ln[i].dirty = 0;
            RQ_SEND_TAG(q, i, zkc__children(q->c, q->ln[i].qdir, NULL, list_done, q));
            sent++;
        }
    }
    if (sent)
        return;
    int heads = 0;
    for (int i = 0; i < q->n; i++)
        heads += q->ln[i].head;
    if (heads == q->n) {
        if (q->phase == P_WAITSTOCK && !q->recheck) {
            if (!q->rec_w.w)
                read_record_watched(q);
            return;
        }
        q->recheck = 0;
        round_start(q);
        return;
    }
    if (q->try_mode) {
        rq_fail(q, ZKC_ETIMEDOUT, "request %s: other requests are queued ahead (timeout 0: not waiting)", q->id);
        return;
    }
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        if (!l->head && l->pred && !l->pred_w.w) {
            l->pred_w.w = zkc__watch_new(q->c, pred_fired, l);
            if (!l->pred_w.w)
                abort();
            l->pred_w.reading = 1;
            RQ_SEND_TAG(q, i, zkc__get(q->c, l->pred, l->pred_w.w, pred_done, q));
        }
    }
    if (!q->rec_w.w)
        read_record_watched(q);
}

/* ---------------------------------------------------------------- grant rounds */

static void walk(rq *q);
static void walk_decide(rq *q);
static void self_decide(rq *q);
static void round_again(rq *q, int conflict);

/* The reads of a round are back: on to the next stage. */
static void round_progress(rq *q)
{
    if (q->phase != P_GRANT && q->phase != P_SELF) {
        step(q); /* the round was abandoned (not head any more) */
        return;
    }
    if (q->err) {
        free_glist(q);
        rq_fail(q, q->err, "%s", q->err_msg);
        return;
    }
    if (q->phase == P_SELF)
        self_decide(q);
    else if (q->glist)
        walk(q);
    else
        walk_decide(q);
}

static void round_again(rq *q, int conflict)
{
    free_glist(q);
    if (conflict) {
        ZKC__STAT_INC(q->c, conflicts);
        if (++q->attempts > RES_ATTEMPTS) {
            rq_fail(q, ZKC_ECONTENDED, "request %s: the SKU record kept changing during %d grant rounds", q->id,
                    RES_ATTEMPTS);
            return;
        }
        if (q->attempts > 2) {
            q->backoff_armed = 1;
            q->busy++;
            q->refs++;
            zkc__timer_arm(q->c, &q->backoff, zkc__now_ms() + backoff_ms(q->attempts));
            return;
        }
    }
    round_start(q);
}

static void backoff_fired(zkc__timer *t)
{
    rq *q = ZKC__CONTAINER_OF(t, rq, backoff);
    q->backoff_armed = 0;
    q->busy--;
    if (!q->finished) {
        if (q->leave || q->c->closing)
            step(q);
        else
            round_start(q);
    }
    rq_unref(q);
}

/* The SKU record moved under a batch (a confirm, cancel, expiry or restock:
 * none of them lowers `available`): read it again and decide again from the
 * entries already read. One round trip, no listing. */
static void regrant_sku_done(zkc__req *r);

static void regrant(rq *q)
{
    ZKC__STAT_INC(q->c, conflicts);
    if (++q->attempts > RES_ATTEMPTS) {
        rq_fail(q, ZKC_ECONTENDED, "request %s: the SKU record kept changing during %d grant attempts", q->id,
                RES_ATTEMPTS);
        return;
    }
    if (q->attempts > 8) {
        round_again(q, 1); /* persistent contention: back off, start over */
        return;
    }
    q->err = 0;
    RQ_SEND_TAG(q, 0, zkc__get(q->c, q->ln[0].skupath, NULL, regrant_sku_done, q));
}

/* Our node is no longer where we thought: back to waiting in the queue. */
static void back_to_queue(rq *q)
{
    free_glist(q);
    q->phase = P_QUEUED;
    for (int i = 0; i < q->n; i++) {
        q->ln[i].head = 0;
        q->ln[i].dirty = 1;
    }
    step(q);
}

RQ_DONE(gsku_done)
{
    rline *l = &q->ln[r->tag];
    const char *why = NULL;
    if (r->rc != ZR_OK)
        group_err(q, r->rc == ZR_NONODE ? ZKC_ENONODE : req_error(r->rc), "SKU %s: reading %s: %s", l->l.sku,
                  l->skupath, r->rc == ZR_NONODE ? "deleted" : zkc__zrc_name(r->rc));
    else if (zkc__sku_decode(r->value, r->valuelen, &l->sku, &why) != 0)
        group_err(q, ZKC_EBADDATA, "SKU record %s: %s; nothing was written", l->skupath, why);
    else if (!zkc__version_usable(r->stat.version))
        group_err(q, ZKC_EVERSIONWRAP, "SKU record %s: its version wrapped to -1; no conditional write is possible",
                  l->skupath);
    else
        l->sku_ver = r->stat.version;
    if (!q->busy)
        round_progress(q);
}

RQ_DONE(glist_done)
{
    if (r->rc != ZR_OK) {
        group_err(q, r->rc == ZR_NONODE ? ZKC_ENONODE : req_error(r->rc), "request %s: listing the queue of %s: %s",
                  q->id, q->ln[0].l.sku, zkc__zrc_name(r->rc));
    } else {
        zkc__member *m;
        int n = parse_queue(r->children, r->nchildren, &m);
        free_glist(q);
        int w = n < RES_WINDOW ? n : RES_WINDOW;
        q->glist = calloc((size_t)w + 1, sizeof *q->glist);
        if (!q->glist)
            abort();
        for (int i = 0; i < w; i++)
            if (!(q->glist[i] = strdup(m[i].name)))
                abort();
        q->nglist = w;
        free(m);
    }
    if (!q->busy)
        round_progress(q);
}

RQ_DONE(gmem_done)
{
    int k = (int)r->tag;
    if (k < q->ngm) {
        gmem *g = &q->gm[k];
        const char *why = NULL;
        if (r->rc == ZR_NONODE) {
            g->st = GM_GONE;
        } else if (r->rc != ZR_OK) {
            group_err(q, req_error(r->rc), "request %s: reading queue entry %s: %s", q->id, g->name,
                      zkc__zrc_name(r->rc));
        } else if (zkc__qent_decode(r->value, r->valuelen, &g->e, &why) != 0) {
            g->st = GM_BAD;
            zkc__log(q->c, ZKC_LOG_WARN, "inventory: queue entry %s/%s is malformed (%s): the queue stops there",
                     q->ln[0].qdir, g->name, why);
        } else {
            g->st = GM_OK;
            g->owner = (uint64_t)r->stat.ephemeral_owner;
        }
    }
    if (!q->busy)
        round_progress(q);
}

static void round_start(rq *q)
{
    if (q->leave) {
        step(q); /* leaving beats granting: the next head takes over */
        return;
    }
    q->err = 0;
    q->ndec = 0;
    if (q->n == 1) {
        /* With a fresh listing, the SKU record and the batch's entries are
         * read together. */
        q->phase = P_GRANT;
        RQ_SEND_TAG(q, 0, zkc__get(q->c, q->ln[0].skupath, NULL, gsku_done, q));
        if (q->glist)
            walk(q);
        else
            RQ_SEND(q, zkc__children(q->c, q->ln[0].qdir, NULL, glist_done, q));
    } else {
        q->phase = P_SELF;
        for (int i = 0; i < q->n; i++)
            RQ_SEND_TAG(q, i, zkc__get(q->c, q->ln[i].skupath, NULL, gsku_done, q));
    }
}

/* Wait for restock: watch each SKU that is short, from the version we read. */
RQ_DONE(wsku_done)
{
    rline *l = &q->ln[r->tag];
    l->sku_w.reading = 0;
    if (r->rc != ZR_OK) {
        zkc__watch_drop(r->watch);
        if (l->sku_w.w == r->watch)
            l->sku_w.w = NULL;
        group_err(q, r->rc == ZR_NONODE ? ZKC_ENONODE : req_error(r->rc), "SKU %s: watching %s: %s", l->l.sku,
                  l->skupath, zkc__zrc_name(r->rc));
    } else if (r->stat.version != l->sku_ver) {
        q->recheck = 1; /* it changed before the watch was set */
    }
    if (q->busy)
        return;
    if (q->err)
        rq_fail(q, q->err, "%s", q->err_msg);
    else
        step(q);
}

static void wait_restock(rq *q, int64_t short_by)
{
    if (q->try_mode) {
        rq_fail(q, ZKC_ETIMEDOUT, "request %s: not enough stock now, %" PRId64 " unit(s) short (timeout 0: not waiting)",
                q->id, short_by);
        return;
    }
    q->phase = P_WAITSTOCK;
    q->recheck = 0;
    q->err = 0;
    q->attempts = 0; /* contention is counted per decision, not per life */
    int sent = 0;
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        if (l->sku.available >= l->l.qty || l->sku_w.w)
            continue;
        l->sku_w.w = zkc__watch_new(q->c, sku_fired, l);
        if (!l->sku_w.w)
            abort();
        l->sku_w.reading = 1;
        RQ_SEND_TAG(q, i, zkc__get(q->c, l->skupath, l->sku_w.w, wsku_done, q));
        sent++;
    }
    if (!sent)
        step(q);
}

static void grant_recover(rq *q);

RQ_DONE(regrant_sku_done)
{
    rline *l = &q->ln[0];
    const char *why = NULL;
    if (r->rc != ZR_OK)
        rq_fail(q, r->rc == ZR_NONODE ? ZKC_ENONODE : req_error(r->rc), "SKU %s: reading %s: %s", l->l.sku,
                l->skupath, r->rc == ZR_NONODE ? "deleted" : zkc__zrc_name(r->rc));
    else if (zkc__sku_decode(r->value, r->valuelen, &l->sku, &why) != 0)
        rq_fail(q, ZKC_EBADDATA, "SKU record %s: %s; nothing was written", l->skupath, why);
    else if (!zkc__version_usable(r->stat.version))
        rq_fail(q, ZKC_EVERSIONWRAP, "SKU record %s: its version wrapped to -1; no conditional write is possible",
                l->skupath);
    else {
        l->sku_ver = r->stat.version;
        walk_decide(q);
    }
}

/* Reply of a deciding multi (batch or self-grant). Layout: ops[0..nsku) SKU
 * records, then per decision: record, node delete (batch); or record, then the
 * node deletes (self). */
RQ_DONE(grant_done)
{
    int nsku = q->phase == P_SELF ? q->n : (int)r->tag;
    if (r->rc == ZR_OK) {
        forget_nodes(q);
        free_glist(q);
        int st = q->dstate[0];
        if (st == ZKC_RES_RESERVED)
            rq_finish(q, 0, st, NULL);
        else
            rq_finish(q, ZKC_EOUTOFSTOCK, st, "request %s: not enough stock (%" PRId64 " unit(s) short; fail-fast)",
                      q->id, q->short_by);
        return;
    }
    if (unknown_outcome(r->rc)) {
        grant_recover(q);
        return;
    }
    if (r->rc == ZR_SESSIONLOST) {
        janitor_nodes(q);
        rq_finish(q, ZKC_ESESSIONLOST, ZKC_RES_PENDING, "request %s: the session ended while granting", q->id);
        return;
    }
    if (r->rc == ZR_NOTSENT || r->rc == ZR_CLOSING) {
        rq_fail(q, req_error(r->rc), "request %s: grant not sent: %s", q->id, zkc__zrc_name(r->rc));
        return;
    }
    int k = multi_failed(r);
    int rc = k >= 0 ? r->ops[k].rc : r->rc;
    if (k >= 0 && k < nsku) {
        if (rc == ZR_BADVERSION) {
            if (q->phase == P_GRANT)
                regrant(q);
            else
                round_again(q, 1);
            return;
        }
        rq_fail(q, rc == ZR_NONODE ? ZKC_ENONODE : req_error(rc), "SKU record %s: %s", r->ops[k].path,
                zkc__zrc_name(rc));
        return;
    }
    if (k >= 0 && q->phase == P_GRANT) {
        int d = (k - nsku) / 2, is_delete = (k - nsku) % 2;
        int gi = d < q->ndec ? q->dec[d] : -1;
        if (rc == ZR_NONODE && gi > 0) {
            /* That member left (timeout) or its record is gone: look again. */
            q->gm[gi].st = is_delete ? GM_GONE : GM_BAD;
            if (!is_delete)
                zkc__log(q->c, ZKC_LOG_WARN, "inventory: request record %s is missing: its queue entry is skipped",
                         r->ops[k].path);
            round_again(q, 0);
            return;
        }
        if (rc == ZR_NONODE && gi == 0 && is_delete) {
            q->missing = 1;
            back_to_queue(q);
            return;
        }
    } else if (k >= 0 && q->phase == P_SELF && rc == ZR_NONODE && r->ops[k].type == ZKC_REQ_DELETE) {
        q->missing = 1;
        back_to_queue(q);
        return;
    }
    rq_fail(q, rc == ZR_NONODE ? ZKC_EBADDATA : req_error(rc), "request %s: grant failed on %s: %s", q->id,
            k >= 0 ? r->ops[k].path : "multi", zkc__zrc_name(rc));
}

RQ_DONE(grec_node_done)
{
    if (r->rc == ZR_OK) {
        round_again(q, 0); /* our node is there: the grant did not apply */
    } else if (r->rc == ZR_NONODE) {
        q->missing = 1;
        back_to_queue(q);
    } else {
        rq_fail(q, req_error(r->rc), "request %s: checking its queue node after a connection loss: %s", q->id,
                zkc__zrc_name(r->rc));
    }
}

RQ_DONE(grec_rec_done)
{
    zkc__res_rec rec;
    const char *why = NULL;
    if (r->rc != ZR_OK) {
        rq_fail(q, req_error(r->rc), "request %s: reading its record after a connection loss: %s", q->id,
                zkc__zrc_name(r->rc));
    } else if (zkc__resrec_decode(r->value, r->valuelen, &rec, &why) != 0) {
        rq_fail(q, ZKC_EBADDATA, "request record %s: %s", q->recpath, why);
    } else if (rec.state != ZKC_RES_PENDING && strcmp(rec.nonce, q->nonce) == 0) {
        forget_nodes(q);
        finish_decided(q, rec.state);
    } else {
        RQ_SEND(q, zkc__exists(q->c, q->ln[0].node, NULL, grec_node_done, q));
    }
}

RQ_DONE(grec_sync_done)
{
    ZKC__UNUSED(r);
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, grec_rec_done, q));
}

/* The grant multi may or may not have applied: it always deletes our own node
 * and rewrites our record, so those two tell. */
static void grant_recover(rq *q)
{
    free_glist(q);
    RQ_SEND(q, zkc__sync(q->c, q->recpath, grec_sync_done, q));
}

static void member_record(rq *q, const gmem *g, int state, zkc__res_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->state = state;
    rec->flags = g->e.flags;
    rec->hold_ms = g->e.hold_ms;
    memcpy(rec->nonce, g->e.nonce, sizeof rec->nonce);
    rec->owner = g->owner;
    rec->n = 1;
    rec->line[0].qty = g->e.qty;
    snprintf(rec->line[0].sku, sizeof rec->line[0].sku, "%s", q->ln[0].l.sku);
}

/* Single-line head: decide the batch from the listing, the SKU record and the
 * queued entries, in queue order. */
static void walk(rq *q)
{
    rline *l0 = &q->ln[0];
    /* Are we still the head? */
    if (q->nglist == 0 || !our_node_name(l0, q->glist[0])) {
        int there = 0;
        for (int i = 0; i < q->nglist; i++)
            there |= our_node_name(l0, q->glist[i]);
        if (!there && q->nglist == RES_WINDOW)
            there = 1; /* beyond the window: not head, surely still queued */
        if (!there)
            q->missing = 1;
        back_to_queue(q);
        return;
    }
    /* Members of this window, keeping what we already read. */
    gmem *gm = calloc((size_t)q->nglist, sizeof *gm);
    if (!gm)
        abort();
    int need = 0;
    for (int i = 0; i < q->nglist; i++) {
        gm[i].name = q->glist[i];
        q->glist[i] = NULL;
        for (int j = 0; j < q->ngm; j++)
            if (q->gm[j].name && strcmp(q->gm[j].name, gm[i].name) == 0) {
                gm[i].st = q->gm[j].st;
                gm[i].e = q->gm[j].e;
                gm[i].owner = q->gm[j].owner;
            }
        if (i == 0) {
            gm[0].st = GM_OK;
            gm[0].e.qty = l0->l.qty;
            gm[0].e.flags = q->flags;
            gm[0].e.nlines = 1;
            gm[0].e.hold_ms = q->hold_ms;
            memcpy(gm[0].e.nonce, q->nonce, sizeof gm[0].e.nonce);
            snprintf(gm[0].e.id, sizeof gm[0].e.id, "%s", q->id);
            gm[0].owner = q->owner;
        }
        need += gm[i].st == GM_UNREAD;
    }
    free_gm(q);
    q->gm = gm;
    q->ngm = q->nglist;
    free_glist(q);
    if (need) {
        for (int i = 1; i < q->ngm; i++) {
            if (q->gm[i].st != GM_UNREAD)
                continue;
            char *p = zkc__path_join(l0->qdir, q->gm[i].name);
            if (!p)
                abort();
            RQ_SEND_TAG(q, i, zkc__get(q->c, p, NULL, gmem_done, q));
            free(p);
        }
    }
    if (!q->busy)
        walk_decide(q); /* else the last reply of the round decides */
}

static void walk_decide(rq *q)
{
    rline *l0 = &q->ln[0];
    if (q->err) {
        rq_fail(q, q->err, "%s", q->err_msg);
        return;
    }
    if (q->leave) {
        step(q);
        return;
    }
    /* The walk: strict FIFO. */
    int64_t avail = l0->sku.available, granted = 0;
    q->ndec = 0;
    for (int k = 0; k < q->ngm && q->ndec < ZKC__RES_BATCH; k++) {
        gmem *g = &q->gm[k];
        if (g->st == GM_GONE)
            continue;
        if (g->st != GM_OK || g->e.nlines > 1)
            break; /* a multi-line request grants itself; a bad entry stops the queue */
        if (g->e.qty <= avail) {
            avail -= g->e.qty;
            granted += g->e.qty;
            q->dstate[q->ndec] = ZKC_RES_RESERVED;
        } else if (!(g->e.flags & ZKC__RES_F_WAIT)) {
            if (k == 0)
                q->short_by = g->e.qty - avail;
            q->dstate[q->ndec] = ZKC_RES_OUT_OF_STOCK;
        } else {
            break; /* waits for restock, and so does everyone behind it */
        }
        q->dec[q->ndec++] = k;
    }
    if (q->ndec == 0) {
        wait_restock(q, l0->l.qty - l0->sku.available);
        return;
    }
    zkc__sku_rec nsku = l0->sku;
    nsku.available = avail;
    nsku.reserved += granted;
    char skubuf[128];
    int skulen = zkc__sku_encode(&nsku, skubuf, sizeof skubuf);
    if (skulen < 0) {
        rq_fail(q, ZKC_EOVERFLOW, "SKU %s: unit counts overflow", l0->l.sku);
        return;
    }
    int nops = 1 + 2 * q->ndec;
    zkc__mop *ops = calloc((size_t)nops, sizeof *ops);
    char **bufs = calloc((size_t)nops, sizeof *bufs);
    if (!ops || !bufs)
        abort();
    ops[0].type = granted ? ZKC_REQ_SET : ZKC_REQ_EXISTS; /* refusals only: check the version we read */
    ops[0].path = l0->skupath;
    ops[0].data = granted ? skubuf : NULL;
    ops[0].len = granted ? skulen : 0;
    ops[0].version = l0->sku_ver;
    zkc__res_rec rec;
    for (int d = 0; d < q->ndec; d++) {
        gmem *g = &q->gm[q->dec[d]];
        member_record(q, g, q->dstate[d], &rec);
        int len;
        char *data = encode_rec(&rec, &len);
        bufs[1 + 2 * d] = rec_path(q->inv, g->e.id);
        ops[1 + 2 * d].type = ZKC_REQ_SET;
        ops[1 + 2 * d].path = bufs[1 + 2 * d];
        ops[1 + 2 * d].data = data;
        ops[1 + 2 * d].len = len;
        ops[1 + 2 * d].version = -1; /* guarded by the node delete below */
        bufs[2 + 2 * d] = zkc__path_join(l0->qdir, g->name);
        if (!bufs[2 + 2 * d])
            abort();
        ops[2 + 2 * d].type = ZKC_REQ_DELETE;
        ops[2 + 2 * d].path = bufs[2 + 2 * d];
        ops[2 + 2 * d].version = -1;
    }
    RQ_SEND_TAG(q, 1, zkc__multi(q->c, ops, nops, grant_done, q));
    for (int i = 0; i < nops; i++) {
        if (ops[i].type == ZKC_REQ_SET && i > 0)
            free((char *)ops[i].data);
        free(bufs[i]);
    }
    free(ops);
    free(bufs);
}

/* Multi-line head of all its queues: all lines or none, for itself only. */
static void self_decide(rq *q)
{
    if (q->err) {
        rq_fail(q, q->err, "%s", q->err_msg);
        return;
    }
    if (q->leave) {
        step(q);
        return;
    }
    int64_t short_by = 0;
    for (int i = 0; i < q->n; i++)
        if (q->ln[i].sku.available < q->ln[i].l.qty)
            short_by += q->ln[i].l.qty - q->ln[i].sku.available;
    if (short_by && (q->flags & ZKC__RES_F_WAIT)) {
        wait_restock(q, short_by);
        return;
    }
    int grant = short_by == 0;
    q->short_by = short_by;
    q->ndec = 1;
    q->dec[0] = 0;
    q->dstate[0] = grant ? ZKC_RES_RESERVED : ZKC_RES_OUT_OF_STOCK;
    int nsku = q->n;
    int nops = nsku + 1 + q->n;
    zkc__mop ops[2 * ZKC__RES_MAX_LINES + 1];
    char skubuf[ZKC__RES_MAX_LINES][128];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < nsku; i++) {
        rline *l = &q->ln[i];
        ops[i].path = l->skupath;
        ops[i].version = l->sku_ver;
        if (!grant) {
            /* A refusal rests on these versions: a restock since then makes
             * the transaction fail, and we look again. */
            ops[i].type = ZKC_REQ_EXISTS; /* check version */
            continue;
        }
        zkc__sku_rec s = l->sku;
        s.available -= l->l.qty;
        s.reserved += l->l.qty;
        int len = zkc__sku_encode(&s, skubuf[i], sizeof skubuf[i]);
        if (len < 0) {
            rq_fail(q, ZKC_EOVERFLOW, "SKU %s: unit counts overflow", l->l.sku);
            return;
        }
        ops[i].type = ZKC_REQ_SET;
        ops[i].data = skubuf[i];
        ops[i].len = len;
    }
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    own_record(q, q->dstate[0], rec);
    int rlen;
    char *rdata = encode_rec(rec, &rlen);
    free(rec);
    ops[nsku].type = ZKC_REQ_SET;
    ops[nsku].path = q->recpath;
    ops[nsku].data = rdata;
    ops[nsku].len = rlen;
    ops[nsku].version = -1;
    for (int i = 0; i < q->n; i++) {
        ops[nsku + 1 + i].type = ZKC_REQ_DELETE;
        ops[nsku + 1 + i].path = q->ln[i].node;
        ops[nsku + 1 + i].version = -1;
    }
    RQ_SEND(q, zkc__multi(q->c, ops, nops, grant_done, q));
    free(rdata);
}

/* ---------------------------------------------------------------- leaving */

static void withdraw(rq *q);

RQ_DONE(leave_rec_done)
{
    zkc__res_rec rec;
    const char *why = NULL;
    if (r->rc == ZR_OK && zkc__resrec_decode(r->value, r->valuelen, &rec, &why) == 0 &&
        strcmp(rec.nonce, q->nonce) == 0) {
        if (rec.state == ZKC_RES_TIMED_OUT) {
            forget_nodes(q); /* deleted by our own withdrawal */
            rq_finish(q, q->leave, ZKC_RES_TIMED_OUT, "%s", q->leave_msg);
            return;
        }
        if (rec.state != ZKC_RES_PENDING) {
            /* A granter decided first: that is the outcome. */
            forget_nodes(q);
            finish_decided(q, rec.state);
            return;
        }
        if (!q->nodes_gone && r->stat.version == q->rec_ver && q->withdraws < 3) {
            withdraw(q); /* our withdrawal did not apply: again */
            return;
        }
    }
    janitor_nodes(q);
    rq_finish(q, q->leave, q->nodes_gone ? ZKC_RES_ABANDONED : ZKC_RES_PENDING,
              "%s (could not withdraw it cleanly: %s; look it up by id)", q->leave_msg,
              r->rc != ZR_OK ? zkc__zrc_name(r->rc) : why ? why : q->nodes_gone ? "its queue nodes were gone" : "");
}

RQ_DONE(leave_sync_done)
{
    ZKC__UNUSED(r);
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, leave_rec_done, q));
}

RQ_DONE(leave_done)
{
    if (r->rc == ZR_OK) {
        forget_nodes(q);
        rq_finish(q, q->leave, ZKC_RES_TIMED_OUT, "%s", q->leave_msg);
        return;
    }
    if (unknown_outcome(r->rc)) {
        RQ_SEND(q, zkc__sync(q->c, q->recpath, leave_sync_done, q));
        return;
    }
    int k = multi_failed(r);
    if (k >= 0) {
        /* Someone got there first (a granter), or our nodes are gone. */
        if (r->ops[k].type == ZKC_REQ_DELETE && r->ops[k].rc == ZR_NONODE)
            q->nodes_gone = 1;
        RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, leave_rec_done, q));
        return;
    }
    janitor_nodes(q);
    rq_finish(q, q->leave, ZKC_RES_PENDING,
              "%s (could not withdraw it: %s; its queue nodes will be deleted once a server answers; look it up by "
              "id)",
              q->leave_msg, zkc__zrc_name(r->rc));
}

/* multi{delete our queue nodes, record PENDING -> TIMED_OUT at our version}. */
static void withdraw(rq *q)
{
    q->withdraws++;
    q->phase = P_LEAVE;
    zkc__mop ops[ZKC__RES_MAX_LINES + 1];
    memset(ops, 0, sizeof ops);
    int nops = 0;
    for (int i = 0; i < q->n; i++) {
        if (!q->ln[i].node)
            continue;
        ops[nops].type = ZKC_REQ_DELETE;
        ops[nops].path = q->ln[i].node;
        ops[nops].version = -1;
        nops++;
    }
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    own_record(q, ZKC_RES_TIMED_OUT, rec);
    int len;
    char *data = encode_rec(rec, &len);
    free(rec);
    ops[nops].type = ZKC_REQ_SET;
    ops[nops].path = q->recpath;
    ops[nops].data = data;
    ops[nops].len = len;
    ops[nops].version = q->rec_ver;
    nops++;
    RQ_SEND(q, zkc__multi(q->c, ops, nops, leave_done, q));
    free(data);
}

static void rq_leave(rq *q)
{
    if (!q->queued) {
        int st = q->ex ? q->ex->state : ZKC_RES_PENDING;
        rq_finish(q, q->leave, st == ZKC_RES_PENDING ? ZKC_RES_PENDING : st, "%s", q->leave_msg);
        return;
    }
    drop_watches(q);
    if (q->c->state != ZKC__S_CONNECTED || q->c->closing) {
        /* No server to tell now: do not make the caller wait for one. */
        janitor_nodes(q);
        rq_finish(q, q->leave, ZKC_RES_PENDING,
                  "%s (no server reachable to withdraw it; its queue nodes will be deleted once one answers; look it "
                  "up by id)",
                  q->leave_msg);
        return;
    }
    withdraw(q);
}

/* ---------------------------------------------------------------- driving */

static void step(rq *q)
{
    if (q->finished || q->busy)
        return;
    if (q->leave) {
        rq_leave(q);
        return;
    }
    switch (q->phase) {
    case P_START:
        check_limits(q);
        break;
    case P_QUEUED:
    case P_WAITSTOCK:
        queued_step(q);
        break;
    case P_FOLLOW:
        if (q->follow_dirty) {
            q->follow_dirty = 0;
            ws_release(&q->rec_w);
            ws_release(&q->fnode_w);
            existing_read(q);
        } else if (q->try_mode) {
            rq_finish(q, ZKC_ETIMEDOUT, ZKC_RES_PENDING,
                      "request %s: another worker's request under this id is still queued (timeout 0: not waiting)",
                      q->id);
        }
        break;
    default:
        break;
    }
}

static void rq_timer_fired(zkc__timer *t)
{
    rq *q = ZKC__CONTAINER_OF(t, rq, timer);
    if (q->finished)
        return;
    if (!q->leave) {
        q->leave = ZKC_ETIMEDOUT;
        snprintf(q->leave_msg, sizeof q->leave_msg, "request %s: not decided within %d ms", q->id, q->timeout_ms);
    }
    step(q);
}

static void inv_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    zkc_inventory *inv = ZKC__CONTAINER_OF(sl, zkc_inventory, sl);
    rq *q = inv->rqs;
    while (q) {
        rq *next = q->next;
        if ((int)st == ZKC_STATE_LOST && q->queued && q->gen == gen) {
            /* Our ephemeral queue nodes went (or go) with that session. */
            janitor_nodes(q);
            rq_finish(q, ZKC_ESESSIONLOST, ZKC_RES_PENDING,
                      "request %s: the ZooKeeper session ended while it was queued; look it up by id", q->id);
        } else if ((int)st == ZKC_STATE_LOST && q->phase == P_FOLLOW) {
            /* Its watches went with the session: look again from the next. */
            q->follow_dirty = 1;
            step(q);
        } else if ((int)st == ZKC_STATE_RECONNECTED) {
            /* Same session: watches survive, but look again in case. */
            if (q->phase == P_QUEUED || q->phase == P_WAITSTOCK) {
                q->dirty_rec = 1;
                q->recheck = 1;
                for (int i = 0; i < q->n; i++)
                    if (!q->ln[i].head)
                        q->ln[i].dirty = 1;
                step(q);
            } else if (q->phase == P_FOLLOW) {
                q->follow_dirty = 1;
                step(q);
            }
        }
        q = next;
    }
}

static void inv_shutdown(zkc__object *o)
{
    zkc_inventory *inv = ZKC__CONTAINER_OF(o, zkc_inventory, obj);
    while (inv->rqs)
        rq_finish(inv->rqs, ZKC_ECANCELED, ZKC_RES_PENDING,
                  "request %s: the client is being destroyed (its queue nodes end with the session; look it up by "
                  "id)",
                  inv->rqs->id);
    zkc__sess_unlisten(inv->c, &inv->sl);
    zkc__object_unlink(inv->c, &inv->obj);
    inv->destroyed = 1;
}

/* ---------------------------------------------------------------- reserve API */

static void res_start(zkc__op *op)
{
    res_op *ro = ZKC__CONTAINER_OF(op, res_op, op);
    zkc_inventory *inv = ro->inv;
    if (inv->destroyed || inv->destroy_op) {
        zkc__op_finish(op, ZKC_ECLOSED, "inventory %s is being destroyed", inv->root);
        return;
    }
    rq *q = calloc(1, sizeof *q);
    if (!q || !(q->ln = calloc((size_t)ro->n, sizeof *q->ln))) {
        free(q);
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    inv_ref(inv);
    q->inv = inv;
    q->c = inv->c;
    q->op = ro;
    q->refs = 1;
    snprintf(q->id, sizeof q->id, "%s", ro->id);
    q->recpath = rec_path(inv, ro->id);
    q->flags = ro->flags;
    q->hold_ms = ro->hold_ms;
    q->timeout_ms = ro->timeout_ms;
    q->try_mode = ro->timeout_ms == 0;
    q->n = ro->n;
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        l->q = q;
        l->idx = i;
        l->l = ro->lines[i];
        l->skupath = sku_path(inv, l->l.sku);
        l->qdir = queue_dir(inv, l->l.sku);
    }
    zkc__timer_init(&q->timer, rq_timer_fired);
    zkc__timer_init(&q->backoff, backoff_fired);
    q->next = inv->rqs;
    if (inv->rqs)
        inv->rqs->prev = q;
    inv->rqs = q;
    q->linked = 1;
    if (ro->timeout_ms > 0)
        zkc__timer_arm(q->c, &q->timer, zkc__now_ms() + ro->timeout_ms);
    q->phase = P_START;
    step(q);
}

static void res_invoke(zkc__op *op)
{
    res_op *ro = ZKC__CONTAINER_OF(op, res_op, op);
    if (ro->cb)
        ro->cb(ro->inv, op->status, ro->id, ro->state, ro->ud);
}

static void res_release(zkc__op *op)
{
    res_op *ro = ZKC__CONTAINER_OF(op, res_op, op);
    zkc_inventory *inv = ro->inv;
    free(ro->lines);
    free(ro);
    inv_unref(inv);
}

static int check_inv(zkc_inventory *inv, const char *fn)
{
    if (!inv)
        return zkc__err(ZKC_EINVAL, "%s: inventory is NULL", fn);
    if (__atomic_load_n(&inv->api_destroyed, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_EINVAL, "%s: inventory %s was destroyed", fn, inv->root);
    return 0;
}

static int res_submit(zkc_inventory *inv, const char *id, const zkc_line *lines, int n, const zkc_reserve_options *o,
                      int timeout_ms, char *id_out, zkc_res_state *state, zkc_reserve_cb cb, void *ud, int blocking)
{
    const char *fn = blocking ? "zkc_inventory_reserve" : "zkc_inventory_reserve_async";
    if (state)
        *state = ZKC_RES_PENDING;
    int rc = check_inv(inv, fn);
    if (rc)
        return rc;
    if (!lines || n < 1 || n > ZKC__RES_MAX_LINES)
        return zkc__err(ZKC_EINVAL, "%s: %d line(s); 1..%d allowed", fn, lines ? n : 0, ZKC__RES_MAX_LINES);
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "%s: timeout %d ms is negative (use ZKC_FOREVER)", fn, timeout_ms);
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "%s: callback is NULL", fn);
    if (!id && blocking && !id_out)
        return zkc__err(ZKC_EINVAL, "%s: no id given and nowhere to write the generated one (id_out is NULL)", fn);
    if (id && (rc = zkc__name_check(id, "request id")) != 0)
        return rc;
    int64_t hold = RES_DEFAULT_HOLD_MS;
    int flags = 0;
    if (o) {
        if (o->hold_ms < 0)
            return zkc__err(ZKC_EINVAL, "%s: hold_ms %d is negative", fn, o->hold_ms);
        if (o->hold_ms > 0)
            hold = o->hold_ms;
        if (o->wait_for_restock)
            flags |= ZKC__RES_F_WAIT;
    }
    res_op *ro = calloc(1, sizeof *ro);
    if (!ro || !(ro->lines = calloc((size_t)n, sizeof *ro->lines))) {
        free(ro);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    /* Lines of one SKU add up: one queue node per SKU. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if ((rc = zkc__name_check(lines[i].sku, "SKU")) != 0)
            goto refuse;
        if (lines[i].qty < 1 || lines[i].qty > ZKC__RES_QTY_MAX) {
            rc = zkc__err(ZKC_EINVAL, "%s: line %d (SKU %s): quantity %" PRId64 " is outside 1..%" PRId64, fn, i,
                          lines[i].sku, lines[i].qty, ZKC__RES_QTY_MAX);
            goto refuse;
        }
        int j = 0;
        while (j < m && strcmp(ro->lines[j].sku, lines[i].sku) != 0)
            j++;
        if (j == m) {
            snprintf(ro->lines[m].sku, sizeof ro->lines[m].sku, "%s", lines[i].sku);
            m++;
        }
        ro->lines[j].qty += lines[i].qty;
        if (ro->lines[j].qty > ZKC__RES_QTY_MAX) {
            rc = zkc__err(ZKC_EINVAL, "%s: SKU %s: total quantity is above %" PRId64, fn, lines[i].sku,
                          ZKC__RES_QTY_MAX);
            goto refuse;
        }
    }
    ro->n = m;
    if (id) {
        snprintf(ro->id, sizeof ro->id, "%s", id);
    } else {
        char u[37];
        zkc__uuid(u);
        snprintf(ro->id, sizeof ro->id, "%s", u);
    }
    if (id_out && strlen(ro->id) < 64)
        snprintf(id_out, 64, "%s", ro->id);
    ro->op.c = inv->c;
    ro->op.invoke = res_invoke;
    ro->op.release = res_release;
    ro->inv = inv;
    ro->flags = flags;
    ro->hold_ms = hold;
    ro->timeout_ms = timeout_ms;
    ro->cb = cb;
    ro->ud = ud;
    ro->state = ZKC_RES_PENDING;
    inv_ref(inv);
    rc = zkc__op_run(&ro->op, res_start, blocking);
    if (!blocking)
        return rc;
    if (state)
        *state = ro->state;
    ro->op.release(&ro->op);
    return rc;
refuse:
    free(ro->lines);
    free(ro);
    return rc;
}

int zkc_inventory_reserve(zkc_inventory *inv, const char *id, const zkc_line *lines, int n,
                          const zkc_reserve_options *o, int timeout_ms, char *id_out, zkc_res_state *state)
{
    return res_submit(inv, id, lines, n, o, timeout_ms, id_out, state, NULL, NULL, 1);
}

int zkc_inventory_reserve_async(zkc_inventory *inv, const char *id, const zkc_line *lines, int n,
                                const zkc_reserve_options *o, int timeout_ms, zkc_reserve_cb cb, void *ud)
{
    return res_submit(inv, id, lines, n, o, timeout_ms, NULL, NULL, cb, ud, 0);
}

/* ================================================================ other operations
 * Blocking only: each finishes when nothing of it is in flight any more, so
 * the caller may free it right after. */

typedef struct sop sop;
typedef struct settle settle;

struct settle {
    zkc_inventory *inv;
    zkc_client *c;
    char *recpath;
    int to;              /* SOLD, CANCELLED or EXPIRED */
    int sync;
    int64_t now;         /* EXPIRED: server time; only if mtime + hold <= now */
    void (*done)(settle *s, int status, const char *msg);
    void *ud;
    zkc__res_rec rec;
    int32_t rec_ver;
    int state;           /* the record's state when done */
    int acted;
    int64_t units;
    int pending;
    int err;
    char msg[256];
    int attempts;
    int unknown;
    zkc__timer backoff;
    zkc__sku_rec sku[ZKC__RES_MAX_LINES];
    int32_t sku_ver[ZKC__RES_MAX_LINES];
};

static void settle_read(settle *s);

static void settle_end(settle *s, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void settle_end(settle *s, int status, const char *fmt, ...)
{
    char msg[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    s->done(s, status, msg);
}

static void settle_backoff_fired(zkc__timer *t)
{
    settle *s = ZKC__CONTAINER_OF(t, settle, backoff);
    settle_read(s);
}

static void settle_multi_done(zkc__req *r)
{
    settle *s = r->ctx;
    if (r->rc == ZR_OK) {
        s->acted = 1;
        s->state = s->to;
        for (int i = 0; i < s->rec.n; i++)
            s->units += s->rec.line[i].qty;
        settle_end(s, 0, NULL);
        return;
    }
    if (unknown_outcome(r->rc)) {
        s->unknown = 1; /* the record will tell */
        s->sync = 1;
        settle_read(s);
        return;
    }
    int k = multi_failed(r);
    if (k >= 0 && (r->ops[k].rc == ZR_BADVERSION || r->ops[k].rc == ZR_NONODE)) {
        ZKC__STAT_INC(s->c, conflicts);
        if (++s->attempts >= RES_ATTEMPTS) {
            settle_end(s, ZKC_ECONTENDED, "request record %s: still changing after %d attempts", s->recpath,
                       RES_ATTEMPTS);
            return;
        }
        if (s->c->closing) {
            settle_end(s, ZKC_ECANCELED, "the client is closing");
            return;
        }
        zkc__timer_arm(s->c, &s->backoff, zkc__now_ms() + backoff_ms(s->attempts));
        return;
    }
    int rc = k >= 0 ? r->ops[k].rc : r->rc;
    settle_end(s, req_error(rc), "request record %s: %s failed: %s", s->recpath, k >= 0 ? r->ops[k].path : "multi",
               zkc__zrc_name(rc));
}

static void settle_sku_done(zkc__req *r)
{
    settle *s = r->ctx;
    int i = (int)r->tag;
    const char *why = NULL;
    s->pending--;
    if (r->rc != ZR_OK) {
        if (!s->err) {
            s->err = r->rc == ZR_NONODE ? ZKC_ENONODE : req_error(r->rc);
            snprintf(s->msg, sizeof s->msg, "SKU %s: %s", s->rec.line[i].sku, zkc__zrc_name(r->rc));
        }
    } else if (zkc__sku_decode(r->value, r->valuelen, &s->sku[i], &why) != 0) {
        if (!s->err) {
            s->err = ZKC_EBADDATA;
            snprintf(s->msg, sizeof s->msg, "SKU record %s/%s: %s; nothing was written", s->inv->sku_dir,
                     s->rec.line[i].sku, why);
        }
    } else if (!zkc__version_usable(r->stat.version)) {
        if (!s->err) {
            s->err = ZKC_EVERSIONWRAP;
            snprintf(s->msg, sizeof s->msg, "SKU record %s/%s: version wrapped to -1", s->inv->sku_dir,
                     s->rec.line[i].sku);
        }
    } else {
        s->sku_ver[i] = r->stat.version;
    }
    if (s->pending)
        return;
    if (s->err) {
        settle_end(s, s->err, "%s", s->msg);
        return;
    }
    zkc__mop ops[1 + ZKC__RES_MAX_LINES];
    char bufs[ZKC__RES_MAX_LINES][128];
    memset(ops, 0, sizeof ops);
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    *rec = s->rec;
    rec->state = s->to;
    int len;
    char *data = encode_rec(rec, &len);
    free(rec);
    ops[0].type = ZKC_REQ_SET;
    ops[0].path = s->recpath;
    ops[0].data = data;
    ops[0].len = len;
    ops[0].version = s->rec_ver;
    char *paths[ZKC__RES_MAX_LINES];
    int n = s->rec.n;
    for (int j = 0; j < n; j++) {
        zkc__sku_rec v = s->sku[j];
        int64_t q = s->rec.line[j].qty;
        paths[j] = sku_path(s->inv, s->rec.line[j].sku);
        if (v.reserved < q) {
            for (int x = 0; x <= j; x++)
                free(paths[x]);
            free(data);
            settle_end(s, ZKC_EBADDATA,
                       "SKU %s holds %" PRId64 " reserved unit(s), fewer than the %" PRId64
                       " of reservation %s: units were written around the queue; nothing was written",
                       s->rec.line[j].sku, v.reserved, q, s->recpath);
            return;
        }
        v.reserved -= q;
        if (s->to == ZKC_RES_SOLD)
            v.sold += q;
        else
            v.available += q;
        int bl = zkc__sku_encode(&v, bufs[j], sizeof bufs[j]);
        if (bl < 0)
            abort(); /* the sum is unchanged and was valid */
        ops[1 + j].type = ZKC_REQ_SET;
        ops[1 + j].path = paths[j];
        ops[1 + j].data = bufs[j];
        ops[1 + j].len = bl;
        ops[1 + j].version = s->sku_ver[j];
    }
    zkc__multi(s->c, ops, 1 + n, settle_multi_done, s);
    for (int j = 0; j < n; j++)
        free(paths[j]);
    free(data);
}

static void settle_rec_done(zkc__req *r)
{
    settle *s = r->ctx;
    const char *why = NULL;
    if (r->rc == ZR_NONODE) {
        settle_end(s, ZKC_ENONODE, "no request with this id (%s), or it is older than the retention period",
                   s->recpath);
        return;
    }
    if (r->rc != ZR_OK) {
        settle_end(s, req_error(r->rc), "reading request record %s: %s", s->recpath, zkc__zrc_name(r->rc));
        return;
    }
    if (zkc__resrec_decode(r->value, r->valuelen, &s->rec, &why) != 0) {
        settle_end(s, ZKC_EBADDATA, "request record %s: %s; nothing was written", s->recpath, why);
        return;
    }
    s->rec_ver = r->stat.version;
    s->state = s->rec.state;
    if (s->rec.state != ZKC_RES_RESERVED) {
        if (s->unknown && s->rec.state == s->to) {
            s->acted = 1; /* our write landed before the connection dropped */
            for (int i = 0; i < s->rec.n; i++)
                s->units += s->rec.line[i].qty;
        }
        settle_end(s, 0, NULL);
        return;
    }
    if (s->to == ZKC_RES_EXPIRED && r->stat.mtime + s->rec.hold_ms > s->now) {
        settle_end(s, 0, NULL); /* not due */
        return;
    }
    s->err = 0;
    s->pending = s->rec.n;
    for (int i = 0; i < s->rec.n; i++) {
        char *p = sku_path(s->inv, s->rec.line[i].sku);
        zkc__get(s->c, p, NULL, settle_sku_done, s)->tag = (uint64_t)i;
        free(p);
    }
}

static void settle_sync_done(zkc__req *r)
{
    settle *s = r->ctx;
    zkc__get(s->c, s->recpath, NULL, settle_rec_done, s);
}

static void settle_read(settle *s)
{
    if (s->sync) {
        s->sync = 0;
        zkc__sync(s->c, s->recpath, settle_sync_done, s);
    } else {
        zkc__get(s->c, s->recpath, NULL, settle_rec_done, s);
    }
}

static settle *settle_new(zkc_inventory *inv, const char *recpath, int to, int sync,
                          void (*done)(settle *, int, const char *), void *ud)
{
    settle *s = calloc(1, sizeof *s);
    if (!s || !(s->recpath = strdup(recpath)))
        abort();
    s->inv = inv;
    s->c = inv->c;
    s->to = to;
    s->sync = sync;
    s->done = done;
    s->ud = ud;
    zkc__timer_init(&s->backoff, settle_backoff_fired);
    return s;
}

static void settle_free(settle *s)
{
    zkc__timer_disarm(s->c, &s->backoff);
    free(s->recpath);
    free(s);
}

/* ---------------------------------------------------------------- the blocking ops */

enum { SOP_OPEN, SOP_DESTROY, SOP_RESTOCK, SOP_STOCK, SOP_CONFIRM, SOP_CANCEL, SOP_LOOKUP, SOP_REAP };

typedef struct reap reap;

struct sop {
    zkc__op op;
    zkc_inventory *inv;
    int kind;
    char *sku, *skupath, *qdir;
    int64_t qty;
    char id[ZKC__RES_NAME_MAX + 1];
    char *recpath;
    zkc_stock_info info;
    zkc_res_state state;
    int64_t returned;
    int attempts;
    int loops;
    zkc__timer backoff;
    char data[128];
    int datalen;
    int32_t ver;
    zkc__res_rec *rec;
    reap *rp;
};

static void sop_end(sop *s, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void sop_end(sop *s, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__op_vfinish(&s->op, status, fmt, ap);
    va_end(ap);
}

static void sop_invoke(zkc__op *op)
{
    ZKC__UNUSED(op);
}

static void sop_release(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    zkc_inventory *inv = s->inv;
    free(s->sku);
    free(s->skupath);
    free(s->qdir);
    free(s->recpath);
    free(s->rec);
    free(s);
    inv_unref(inv);
}

static sop *sop_new(zkc_inventory *inv, int kind)
{
    sop *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->op.c = inv->c;
    s->op.invoke = sop_invoke;
    s->op.release = sop_release;
    s->inv = inv;
    s->kind = kind;
    inv_ref(inv);
    return s;
}

static int sop_run(sop *s, void (*start)(zkc__op *))
{
    int rc = zkc__op_run(&s->op, start, 1);
    return rc;
}

/* ---- restock ---- */

static void restock_read(sop *s);

static void restock_backoff_fired(zkc__timer *t)
{
    sop *s = ZKC__CONTAINER_OF(t, sop, backoff);
    restock_read(s);
}

static void restock_retry(sop *s)
{
    ZKC__STAT_INC(s->op.c, conflicts);
    if (++s->attempts >= RES_ATTEMPTS) {
        sop_end(s, ZKC_ECONTENDED, "SKU %s: still changing after %d attempts", s->sku, RES_ATTEMPTS);
        return;
    }
    if (s->op.c->closing) {
        sop_end(s, ZKC_ECANCELED, "the client is closing");
        return;
    }
    zkc__timer_arm(s->op.c, &s->backoff, zkc__now_ms() + backoff_ms(s->attempts));
}

static void restock_apply(sop *s, const zkc__req *r);

static void restock_verify_done(zkc__req *r)
{
    sop *s = r->ctx;
    /* After a connection loss: did our write land? Same version: no. The next
     * version holding exactly our bytes: yes (a conditional write succeeds at
     * most once per version). Anything else: we cannot tell. */
    if (r->rc == ZR_OK && r->stat.version == s->ver) {
        restock_apply(s, r);
        return;
    }
    if (r->rc == ZR_OK && r->stat.version == s->ver + 1 && r->valuelen == s->datalen &&
        memcmp(r->value, s->data, (size_t)s->datalen) == 0) {
        sop_end(s, 0, NULL);
        return;
    }
    if (r->rc == ZR_NONODE && s->ver < 0) {
        restock_read(s); /* the create did not land */
        return;
    }
    if (r->rc == ZR_OK && s->ver < 0 && r->stat.version == 0 && r->valuelen == s->datalen &&
        memcmp(r->value, s->data, (size_t)s->datalen) == 0) {
        sop_end(s, 0, NULL);
        return;
    }
    sop_end(s, ZKC_EUNKNOWN,
            "restock of SKU %s: outcome unknown after a connection loss (%s); check zkc_inventory_stock before "
            "restocking again",
            s->sku, r->rc == ZR_OK ? "the record changed meanwhile" : zkc__zrc_name(r->rc));
}

static void restock_verify_sync_done(zkc__req *r)
{
    sop *s = r->ctx;
    zkc__get(r->c, s->skupath, NULL, restock_verify_done, s);
}

static void restock_set_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc == ZR_OK)
        sop_end(s, 0, NULL);
    else if (r->rc == ZR_BADVERSION)
        restock_retry(s);
    else if (unknown_outcome(r->rc))
        zkc__sync(r->c, s->skupath, restock_verify_sync_done, s);
    else
        sop_end(s, req_error(r->rc), "restock of SKU %s: writing %s: %s", s->sku, s->skupath, zkc__zrc_name(r->rc));
}

static void restock_create(sop *s);

static void restock_parents_done(void *arg, int rc)
{
    sop *s = arg;
    if (rc != ZR_OK)
        sop_end(s, req_error(rc), "restock of SKU %s: creating %s: %s", s->sku, s->inv->sku_dir, zkc__zrc_name(rc));
    else
        restock_create(s);
}

static void restock_create_done(zkc__req *r)
{
    sop *s = r->ctx;
    int k = multi_failed(r);
    int rc = k >= 0 ? r->ops[k].rc : r->rc;
    if (r->rc == ZR_OK)
        sop_end(s, 0, NULL);
    else if (k == 0 && rc == ZR_NODEEXISTS)
        restock_read(s); /* created meanwhile: add to it */
    else if (k == 0 && rc == ZR_NONODE && s->loops++ < 3)
        mkpath_start(r->c, s->inv->sku_dir, restock_parents_done, s);
    else if (unknown_outcome(r->rc))
        zkc__sync(r->c, s->skupath, restock_verify_sync_done, s);
    else
        sop_end(s, req_error(rc), "restock of SKU %s: creating %s: %s", s->sku, s->skupath, zkc__zrc_name(rc));
}

static void restock_create(sop *s)
{
    zkc__sku_rec v = {s->qty, 0, 0, s->qty};
    s->datalen = zkc__sku_encode(&v, s->data, sizeof s->data);
    s->ver = -1;
    zkc__mop ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].type = ZKC_REQ_CREATE;
    ops[0].path = s->skupath;
    ops[0].data = s->data;
    ops[0].len = s->datalen;
    ops[1].type = ZKC_REQ_CREATE;
    ops[1].path = s->qdir;
    zkc__multi(s->op.c, ops, 2, restock_create_done, s);
}

static void restock_apply(sop *s, const zkc__req *r)
{
    zkc__sku_rec v;
    const char *why = NULL;
    if (zkc__sku_decode(r->value, r->valuelen, &v, &why) != 0) {
        sop_end(s, ZKC_EBADDATA, "SKU record %s: %s; nothing was written", s->skupath, why);
        return;
    }
    if (s->qty == 0) {
        sop_end(s, 0, NULL);
        return;
    }
    if (!zkc__version_usable(r->stat.version)) {
        sop_end(s, ZKC_EVERSIONWRAP, "SKU record %s: its version wrapped to -1; no conditional write is possible",
                s->skupath);
        return;
    }
    if (__builtin_add_overflow(v.available, s->qty, &v.available) ||
        __builtin_add_overflow(v.total, s->qty, &v.total)) {
        sop_end(s, ZKC_EOVERFLOW, "restock of SKU %s: the unit counts would overflow", s->sku);
        return;
    }
    s->datalen = zkc__sku_encode(&v, s->data, sizeof s->data);
    s->ver = r->stat.version;
    zkc__set(s->op.c, s->skupath, s->data, s->datalen, s->ver, restock_set_done, s);
}

static void restock_get_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc == ZR_NONODE)
        restock_create(s);
    else if (r->rc != ZR_OK)
        sop_end(s, req_error(r->rc), "restock of SKU %s: reading %s: %s", s->sku, s->skupath, zkc__zrc_name(r->rc));
    else
        restock_apply(s, r);
}

static void restock_read(sop *s)
{
    zkc__get(s->op.c, s->skupath, NULL, restock_get_done, s);
}

static void restock_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    restock_read(s);
}

/* ---- stock ---- */

static void stock_q_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc == ZR_OK)
        s->info.queue_length = r->stat.num_children;
    else if (r->rc != ZR_NONODE) {
        sop_end(s, req_error(r->rc), "SKU %s: reading its queue: %s", s->sku, zkc__zrc_name(r->rc));
        return;
    }
    sop_end(s, 0, NULL);
}

static void stock_get_done(zkc__req *r)
{
    sop *s = r->ctx;
    zkc__sku_rec v;
    const char *why = NULL;
    if (r->rc == ZR_NONODE) {
        sop_end(s, ZKC_ENONODE, "SKU %s does not exist under %s (restock creates it)", s->sku, s->inv->sku_dir);
    } else if (r->rc != ZR_OK) {
        sop_end(s, req_error(r->rc), "SKU %s: reading %s: %s", s->sku, s->skupath, zkc__zrc_name(r->rc));
    } else if (zkc__sku_decode(r->value, r->valuelen, &v, &why) != 0) {
        sop_end(s, ZKC_EBADDATA, "SKU record %s: %s", s->skupath, why);
    } else {
        s->info.available = v.available;
        s->info.reserved = v.reserved;
        s->info.sold = v.sold;
        s->info.total = v.total;
        zkc__exists(r->c, s->qdir, NULL, stock_q_done, s);
    }
}

static void stock_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    zkc__sync_get(op->c, s->skupath, stock_get_done, s);
}

/* ---- lookup ---- */

static void lookup_rec_done(zkc__req *r);

static void lookup_queue_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        sop_end(s, req_error(r->rc), "request %s: listing a queue: %s", s->id, zkc__zrc_name(r->rc));
        return;
    }
    for (int i = 0; r->rc == ZR_OK && i < r->nchildren; i++) {
        char nonce[ZKC__RES_NONCE_LEN + 1];
        if (zkc__resname_parse(r->children[i], nonce, NULL) && strcmp(nonce, s->rec->nonce) == 0) {
            s->state = ZKC_RES_PENDING; /* its queue node is alive */
            sop_end(s, 0, NULL);
            return;
        }
    }
    /* No node. If the record did not move meanwhile, nobody will decide it. */
    s->loops++;
    zkc__get(r->c, s->recpath, NULL, lookup_rec_done, s);
}

static void lookup_rec_done(zkc__req *r)
{
    sop *s = r->ctx;
    const char *why = NULL;
    int32_t prev = s->ver;
    if (r->rc == ZR_NONODE) {
        sop_end(s, ZKC_ENONODE, "no request with id %s (or it is older than the retention period)", s->id);
        return;
    }
    if (r->rc != ZR_OK) {
        sop_end(s, req_error(r->rc), "request %s: reading %s: %s", s->id, s->recpath, zkc__zrc_name(r->rc));
        return;
    }
    if (zkc__resrec_decode(r->value, r->valuelen, s->rec, &why) != 0) {
        sop_end(s, ZKC_EBADDATA, "request record %s: %s", s->recpath, why);
        return;
    }
    s->ver = r->stat.version;
    s->state = (zkc_res_state)s->rec->state;
    if (s->rec->state != ZKC_RES_PENDING) {
        sop_end(s, 0, NULL);
        return;
    }
    if (s->loops > 0 && prev == s->ver) {
        s->state = ZKC_RES_ABANDONED;
        sop_end(s, 0, NULL);
        return;
    }
    if (s->loops > 8) {
        s->state = ZKC_RES_PENDING; /* it keeps being queued again */
        sop_end(s, 0, NULL);
        return;
    }
    char *qdir = queue_dir(s->inv, s->rec->line[0].sku);
    zkc__children(r->c, qdir, NULL, lookup_queue_done, s);
    free(qdir);
}

static void lookup_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    /* sync: a restarted worker must see what the previous one did. */
    zkc__sync_get(op->c, s->recpath, lookup_rec_done, s);
}

/* ---- confirm / cancel ---- */

static void settle_op_done(settle *st, int status, const char *msg)
{
    sop *s = st->ud;
    int state = st->state, to = st->to;
    settle_free(st);
    if (status) {
        sop_end(s, status, "%s", msg);
        return;
    }
    s->state = (zkc_res_state)state;
    if (state == to)
        sop_end(s, 0, NULL); /* done now, or before: idempotent */
    else
        sop_end(s, ZKC_EINVAL, "request %s is %s, not RESERVED: nothing to %s", s->id, zkc__res_state_name(state),
                to == ZKC_RES_SOLD ? "confirm" : "cancel");
}

static void settle_op_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    settle *st = settle_new(s->inv, s->recpath, s->kind == SOP_CONFIRM ? ZKC_RES_SOLD : ZKC_RES_CANCELLED, 1,
                            settle_op_done, s);
    settle_read(st);
}

/* ---- reap ---- */

typedef struct ritem {
    reap *rp;
    char *path;
    zkc__res_rec rec;
    int32_t ver;
} ritem;

struct reap {
    sop *s;
    zkc_inventory *inv;
    zkc_client *c;
    int64_t now, retention_ms;
    char **buckets;
    int nb, bi;
    char **ids;
    int nids, ii;
    char *bucket;
    int inflight;
    int err;
    char msg[256];
};

static void reap_next_bucket(reap *rp);
static void reap_pump(reap *rp);

static void reap_err(reap *rp, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void reap_err(reap *rp, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    first_error(&rp->err, rp->msg, sizeof rp->msg, status, fmt, ap);
    va_end(ap);
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void reap_end(reap *rp)
{
    sop *s = rp->s;
    free_names(rp->buckets, rp->nb);
    free_names(rp->ids, rp->nids);
    free(rp->bucket);
    int err = rp->err;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", rp->msg);
    free(rp);
    s->rp = NULL;
    if (err)
        sop_end(s, err, "%s", msg);
    else
        sop_end(s, 0, NULL);
}

static void item_end(ritem *it)
{
    reap *rp = it->rp;
    free(it->path);
    free(it);
    rp->inflight--;
    reap_pump(rp);
}

static void item_settled(settle *st, int status, const char *msg)
{
    ritem *it = st->ud;
    reap *rp = it->rp;
    if (status)
        reap_err(rp, status, "%s", msg);
    else if (st->acted)
        rp->s->returned += st->units;
    settle_free(st);
    item_end(it);
}

static void item_delete_done(zkc__req *r)
{
    ritem *it = r->ctx;
    /* BADVERSION / NONODE: it changed or went meanwhile; leave it to the next reap. */
    if (r->rc != ZR_OK && r->rc != ZR_BADVERSION && r->rc != ZR_NONODE)
        reap_err(it->rp, req_error(r->rc), "reap: deleting %s: %s", it->path, zkc__zrc_name(r->rc));
    item_end(it);
}

static void item_queue_done(zkc__req *r)
{
    ritem *it = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        reap_err(it->rp, req_error(r->rc), "reap: listing a queue for %s: %s", it->path, zkc__zrc_name(r->rc));
        item_end(it);
        return;
    }
    for (int i = 0; r->rc == ZR_OK && i < r->nchildren; i++) {
        char nonce[ZKC__RES_NONCE_LEN + 1];
        if (zkc__resname_parse(r->children[i], nonce, NULL) && strcmp(nonce, it->rec.nonce) == 0) {
            item_end(it); /* still queued: alive */
            return;
        }
    }
    /* Abandoned long ago: deleting at the version examined cannot race a
     * re-enqueue, which rewrites the record. */
    zkc__delete(r->c, it->path, it->ver, item_delete_done, it);
}

static void item_get_done(zkc__req *r)
{
    ritem *it = r->ctx;
    reap *rp = it->rp;
    const char *why = NULL;
    if (r->rc == ZR_NONODE) {
        item_end(it);
        return;
    }
    if (r->rc != ZR_OK) {
        reap_err(rp, req_error(r->rc), "reap: reading %s: %s", it->path, zkc__zrc_name(r->rc));
        item_end(it);
        return;
    }
    if (zkc__resrec_decode(r->value, r->valuelen, &it->rec, &why) != 0) {
        /* Detected, never "fixed": reported, the rest is reaped. */
        reap_err(rp, ZKC_EBADDATA, "reap: request record %s: %s; left as it is", it->path, why);
        item_end(it);
        return;
    }
    it->ver = r->stat.version;
    int64_t age = rp->now - r->stat.mtime;
    switch (it->rec.state) {
    case ZKC_RES_RESERVED:
        if (age >= it->rec.hold_ms) {
            settle *st = settle_new(rp->inv, it->path, ZKC_RES_EXPIRED, 0, item_settled, it);
            st->now = rp->now;
            settle_read(st);
            return;
        }
        break;
    case ZKC_RES_PENDING:
        if (age >= rp->retention_ms) {
            char *qdir = queue_dir(rp->inv, it->rec.line[0].sku);
            zkc__children(r->c, qdir, NULL, item_queue_done, it);
            free(qdir);
            return;
        }
        break;
    default: /* final */
        if (age >= rp->retention_ms) {
            zkc__delete(r->c, it->path, it->ver, item_delete_done, it);
            return;
        }
        break;
    }
    item_end(it);
}

static void reap_pump(reap *rp)
{
    while (rp->inflight < RES_REAP_INFLIGHT && rp->ii < rp->nids) {
        ritem *it = calloc(1, sizeof *it);
        if (!it)
            abort();
        it->rp = rp;
        it->path = zkc__path_join(rp->bucket, rp->ids[rp->ii++]);
        if (!it->path)
            abort();
        rp->inflight++;
        zkc__get(rp->c, it->path, NULL, item_get_done, it);
    }
    if (rp->inflight == 0 && rp->ii >= rp->nids)
        reap_next_bucket(rp);
}

static void reap_ids_done(zkc__req *r)
{
    reap *rp = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE)
        reap_err(rp, req_error(r->rc), "reap: listing %s: %s", r->path, zkc__zrc_name(r->rc));
    if (r->rc == ZR_OK) {
        rp->ids = r->children;
        rp->nids = r->nchildren;
        r->children = NULL;
        r->nchildren = 0;
    }
    reap_pump(rp);
}

static void reap_next_bucket(reap *rp)
{
    free_names(rp->ids, rp->nids);
    rp->ids = NULL;
    rp->nids = rp->ii = 0;
    free(rp->bucket);
    rp->bucket = NULL;
    /* Stop early on errors that will not go away by themselves. */
    if (rp->bi >= rp->nb || rp->c->closing || (rp->err && rp->err != ZKC_EBADDATA && rp->err != ZKC_ECONTENDED)) {
        reap_end(rp);
        return;
    }
    rp->bucket = zkc__path_join(rp->inv->req_dir, rp->buckets[rp->bi++]);
    if (!rp->bucket)
        abort();
    zkc__children(rp->c, rp->bucket, NULL, reap_ids_done, rp);
}

static void reap_buckets_done(zkc__req *r)
{
    reap *rp = r->ctx;
    if (r->rc == ZR_OK) {
        rp->buckets = r->children;
        rp->nb = r->nchildren;
        r->children = NULL;
        r->nchildren = 0;
    } else if (r->rc != ZR_NONODE) {
        reap_err(rp, req_error(r->rc), "reap: listing %s: %s", rp->inv->req_dir, zkc__zrc_name(r->rc));
    }
    reap_next_bucket(rp);
}

static void reap_clock_done(zkc__req *r)
{
    reap *rp = r->ctx;
    if (r->rc != ZR_OK) {
        reap_err(rp, r->rc == ZR_NONODE ? ZKC_ENONODE : req_error(r->rc),
                 "reap: writing %s to read the servers' clock: %s", rp->inv->root, zkc__zrc_name(r->rc));
        reap_end(rp);
        return;
    }
    /* The leader stamped this write: that is "now" on the servers' clock. */
    rp->now = r->stat.mtime;
    zkc__children(r->c, rp->inv->req_dir, NULL, reap_buckets_done, rp);
}

static void reap_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    reap *rp = calloc(1, sizeof *rp);
    if (!rp)
        abort();
    rp->s = s;
    rp->inv = s->inv;
    rp->c = op->c;
    rp->retention_ms = (int64_t)op->c->opt.marker_retention_s * 1000;
    s->rp = rp;
    zkc__set(op->c, s->inv->root, "zkci1", 5, -1, reap_clock_done, rp);
}

/* ---------------------------------------------------------------- lifecycle */

static void open_finish(sop *s)
{
    zkc_inventory *inv = s->inv;
    if (s->attempts) {
        sop_end(s, s->attempts, "inventory %s: creating the request buckets under %s: %s", inv->root, inv->req_dir,
                zkc_strerror(s->attempts));
        return;
    }
    zkc__object_link(inv->c, &inv->obj);
    zkc__sess_listen(inv->c, &inv->sl);
    sop_end(s, 0, NULL);
}

static void open_bucket_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NODEEXISTS && !s->attempts)
        s->attempts = req_error(r->rc);
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
        sop_end(s, req_error(r->rc), "inventory %s: listing %s: %s", inv->root, inv->req_dir, zkc__zrc_name(r->rc));
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
        char *p = mprintf("%s/%02x", inv->req_dir, b);
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
        sop_end(s, req_error(rc), "inventory %s: creating %s: %s", s->inv->root, s->inv->req_dir, zkc__zrc_name(rc));
        return;
    }
    zkc__children(s->op.c, s->inv->req_dir, NULL, open_buckets_done, s);
}

static void open_sku_done(void *arg, int rc)
{
    sop *s = arg;
    if (rc != ZR_OK) {
        sop_end(s, req_error(rc), "inventory %s: creating %s: %s", s->inv->root, s->inv->sku_dir, zkc__zrc_name(rc));
        return;
    }
    mkpath_start(s->op.c, s->inv->req_dir, open_req_done, s);
}

static void open_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    mkpath_start(op->c, s->inv->sku_dir, open_sku_done, s);
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
    inv->sku_dir = mprintf("%s/sku", root);
    inv->req_dir = mprintf("%s/req", root);
    inv->c = c;
    inv->refs = 1;
    inv->obj.shutdown = inv_shutdown;
    inv->sl.fn = inv_session;
    zkc__client_ref(c);
    sop *s = sop_new(inv, SOP_OPEN);
    if (!s) {
        inv_unref(inv);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    rc = sop_run(s, open_start);
    s->op.release(&s->op);
    if (rc) {
        inv_unref(inv);
        return rc;
    }
    *out = inv;
    return 0;
}

static void destroy_done(zkc_inventory *inv)
{
    sop *s = inv->destroy_op;
    inv->destroy_op = NULL;
    zkc__sess_unlisten(inv->c, &inv->sl);
    zkc__object_unlink(inv->c, &inv->obj);
    inv->destroyed = 1;
    if (s)
        sop_end(s, 0, NULL);
}

static void destroy_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    zkc_inventory *inv = s->inv;
    if (inv->destroyed || inv->destroy_op) {
        sop_end(s, 0, NULL);
        return;
    }
    inv->destroy_op = s;
    if (!inv->rqs) {
        destroy_done(inv);
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
        step(q);
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
        sop *s = sop_new(inv, SOP_DESTROY);
        if (s) {
            sop_run(s, destroy_start);
            s->op.release(&s->op);
        }
    }
    inv_unref(inv);
}

static int sku_args(zkc_inventory *inv, const char *sku, const char *fn)
{
    int rc = check_inv(inv, fn);
    if (rc)
        return rc;
    return zkc__name_check(sku, "SKU");
}

static sop *sku_sop(zkc_inventory *inv, const char *sku, int kind, int *rc)
{
    sop *s = sop_new(inv, kind);
    if (!s || !(s->sku = strdup(sku))) {
        if (s)
            s->op.release(&s->op);
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    s->skupath = sku_path(inv, sku);
    s->qdir = queue_dir(inv, sku);
    *rc = 0;
    return s;
}

int zkc_inventory_restock(zkc_inventory *inv, const char *sku, int64_t qty)
{
    int rc = sku_args(inv, sku, "zkc_inventory_restock");
    if (rc)
        return rc;
    if (qty < 0 || qty > ZKC__RES_QTY_MAX)
        return zkc__err(ZKC_EINVAL, "zkc_inventory_restock: quantity %" PRId64 " is outside 0..%" PRId64, qty,
                        ZKC__RES_QTY_MAX);
    sop *s = sku_sop(inv, sku, SOP_RESTOCK, &rc);
    if (!s)
        return rc;
    s->qty = qty;
    zkc__timer_init(&s->backoff, restock_backoff_fired);
    rc = sop_run(s, restock_start);
    s->op.release(&s->op);
    return rc;
}

int zkc_inventory_stock(zkc_inventory *inv, const char *sku, zkc_stock_info *out)
{
    int rc = sku_args(inv, sku, "zkc_inventory_stock");
    if (rc)
        return rc;
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_inventory_stock: out is NULL");
    sop *s = sku_sop(inv, sku, SOP_STOCK, &rc);
    if (!s)
        return rc;
    rc = sop_run(s, stock_start);
    if (rc == 0)
        *out = s->info;
    s->op.release(&s->op);
    return rc;
}

static sop *id_sop(zkc_inventory *inv, const char *id, int kind, const char *fn, int *rc)
{
    if ((*rc = check_inv(inv, fn)) != 0 || (*rc = zkc__name_check(id, "request id")) != 0)
        return NULL;
    sop *s = sop_new(inv, kind);
    if (!s) {
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    s->recpath = rec_path(inv, id);
    return s;
}

static int settle_sync(zkc_inventory *inv, const char *id, int kind, const char *fn)
{
    int rc;
    sop *s = id_sop(inv, id, kind, fn, &rc);
    if (!s)
        return rc;
    rc = sop_run(s, settle_op_start);
    s->op.release(&s->op);
    return rc;
}

int zkc_inventory_confirm(zkc_inventory *inv, const char *id)
{
    return settle_sync(inv, id, SOP_CONFIRM, "zkc_inventory_confirm");
}

int zkc_inventory_cancel(zkc_inventory *inv, const char *id)
{
    return settle_sync(inv, id, SOP_CANCEL, "zkc_inventory_cancel");
}

int zkc_inventory_lookup(zkc_inventory *inv, const char *id, zkc_res_state *state)
{
    int rc;
    sop *s = id_sop(inv, id, SOP_LOOKUP, "zkc_inventory_lookup", &rc);
    if (!s)
        return rc;
    if (!(s->rec = malloc(sizeof *s->rec))) {
        s->op.release(&s->op);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    s->ver = -2;
    rc = sop_run(s, lookup_start);
    if (rc == 0 && state)
        *state = s->state;
    s->op.release(&s->op);
    return rc;
}

int zkc_inventory_reap(zkc_inventory *inv, int64_t *returned)
{
    if (returned)
        *returned = 0;
    int rc = check_inv(inv, "zkc_inventory_reap");
    if (rc)
        return rc;
    sop *s = sop_new(inv, SOP_REAP);
    if (!s)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    rc = sop_run(s, reap_start);
    if (returned)
        *returned = s->returned;
    s->op.release(&s->op);
    return rc;
}
#endif /* ZKC_RESERVE_PURE */
