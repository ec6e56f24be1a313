/*
 * Fairness beacons: a writer that keeps losing a versioned record says so,
 * and the winner lets it in. An option of the transaction core (lib/txn.h).
 *
 * FAIRNESS. The cache makes the writer that just won write again at once, while
 * a loser must re-read first: under saturation one session keeps winning and
 * the others starve (measured: 2 of 8 sessions under a quarter of their share).
 * So a batch that has lost ZKC__BEACON_AFTER rounds raises a beacon, an
 * ephemeral child "zkc-waiting-<client uuid>" of the record's node, and retries
 * without backoff. Every successful setData returns the node's stat for free;
 * when its children changed, the winner lists them, and while another client's
 * beacon is up it leaves one to two write round trips before its next cached
 * write. Best effort and timing only: if the beacon cannot be created (ACL, an
 * ephemeral record node) nothing else changes, and exactness never depends on
 * it. A beacon lives while its batch waits, and with its session at worst; a
 * batch that had to fight keeps it a linger (ten write round trips) for the
 * next, and the linger's end lowers it, or looks again later while the owner
 * is busy (whatever keeps it busy need not settle it); a delete that got no
 * answer goes to the janitor. The owner's optional
 * hold/drop keep it alive while a request of the beacon is out or its timer
 * is armed, so a beacon still up is lowered before its owner may go.
 */
#include "beacon.h"
#include "janitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BEACON_NONE = 0, BEACON_CREATING, BEACON_UP };
#define BEACON_PREFIX "zkc-waiting-"

static void hold(zkc__beacon *b)
{
    if (b->hold)
        b->hold(b);
}

static void drop(zkc__beacon *b)
{
    if (b->drop)
        b->drop(b); /* may free b: the last thing done with it */
}

static void timer_arm(zkc__beacon *b, int64_t due)
{
    if (b->timer.index < 0)
        hold(b);
    zkc__timer_arm(b->c, &b->timer, due);
}

/* Returns 1 when it was armed: the caller then owes drop(b), last. */
static int timer_disarm(zkc__beacon *b)
{
    if (b->timer.index < 0)
        return 0;
    zkc__timer_disarm(b->c, &b->timer);
    return 1;
}

static void beacon_deleted(zkc__req *r)
{
    zkc__beacon *b = r->ctx;
    /* Gone, or gone with its session (SESSIONLOST, CLOSING): either is fine.
     * Unanswered, or never sent while the session lives on: the beacon may
     * still be up and would slow every other writer until our session ends,
     * so the janitor deletes it once a server answers. */
    if ((zkc__zrc_indeterminate(r->rc) || r->rc == ZR_NOTSENT) && !b->c->closing)
        zkc__janitor_delete(b->c, r->path);
    drop(b);
}

static char *beacon_path(zkc__beacon *b)
{
    size_t n = strlen(b->path) + sizeof BEACON_PREFIX + sizeof b->c->uuid + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/" BEACON_PREFIX "%s", b->path, b->c->uuid);
    return p;
}

/* The caller holds b (the timer's hold is given back after the delete took one). */
static void beacon_lower(zkc__beacon *b)
{
    b->want = 0;
    int armed = timer_disarm(b);
    if (b->state == BEACON_UP) { /* else none, or its create is out: beacon_created lowers it */
        b->state = BEACON_NONE;
        char *p = beacon_path(b);
        if (p && !b->c->closing) {
            hold(b);
            zkc__delete(b->c, p, -1, beacon_deleted, b);
        }
        free(p);
    }
    if (armed)
        drop(b);
}

static void beacon_created(zkc__req *r)
{
    zkc__beacon *b = r->ctx;
    b->state = BEACON_NONE;
    if (r->rc == ZR_OK || r->rc == ZR_NODEEXISTS || zkc__zrc_indeterminate(r->rc)) {
        /* NODEEXISTS: ours, from an attempt whose reply was lost; no answer
         * (zkc__zrc_indeterminate): perhaps created, so delete it as if it were. */
        b->state = BEACON_UP;
        if (!b->want)
            beacon_lower(b);
    } else if (r->rc == ZR_NOAUTH || r->rc == ZR_NOCHILDRENFOREPHEMERALS) {
        b->broken = 1;
    }
    drop(b);
}

static void linger(zkc__beacon *b)
{
    int64_t ms = b->rtt_ms * 10 > 50 ? b->rtt_ms * 10 : 50;
    timer_arm(b, zkc__now_ms() + ms);
}

/* A batch is decided. One that won at its first try met no contention: the
 * beacon goes. One that had to fight keeps it for the next batch (raising and
 * lowering it per batch would double the writes under contention), unless no
 * batch comes soon. */
void zkc__beacon_settle(zkc__beacon *b, int lost)
{
    b->want = 0;
    if (b->state != BEACON_UP)
        return;
    if (!lost || b->c->closing) {
        beacon_lower(b);
        return;
    }
    linger(b);
}

static void beacon_timer_fire(zkc__timer *tm)
{
    zkc__beacon *b = ZKC__CONTAINER_OF(tm, zkc__beacon, timer);
    /* The loop disarmed it: its hold is ours to give back, after the lowering.
     * Busy, the owner may be in a batch that still wants the beacon; but not
     * every busy spell settles it (a read of the record does not, nor does a
     * queued batch of a core that is not AUTO), and trusting one to left the
     * beacon up for the rest of the session. So look again a linger later: a
     * batch that settles or raises first disarms this. */
    if (!b->busy(b))
        beacon_lower(b);
    else if (!b->c->closing)
        linger(b);
    drop(b);
}

void zkc__beacon_init(zkc__beacon *b, zkc_client *c, const char *path, int (*busy)(zkc__beacon *))
{
    memset(b, 0, sizeof *b);
    b->c = c;
    b->path = path;
    b->busy = busy;
    zkc__timer_init(&b->timer, beacon_timer_fire);
}

/* The caller holds b (a batch of its owner is running). */
void zkc__beacon_raise(zkc__beacon *b, int missing)
{
    b->want = 1;
    if (timer_disarm(b))
        drop(b);
    if (b->state != BEACON_NONE || b->broken || missing || b->c->closing)
        return;
    char *p = beacon_path(b);
    if (!p)
        return;
    b->state = BEACON_CREATING;
    hold(b);
    zkc__create(b->c, p, NULL, 0, ZC_EPHEMERAL, beacon_created, b);
    free(p);
}

static void scan_done(zkc__req *r)
{
    zkc__beacon *b = r->ctx;
    b->scanning = 0;
    if (r->rc == ZR_OK) {
        int others = 0;
        for (int i = 0; i < r->nchildren; i++)
            if (strncmp(r->children[i], BEACON_PREFIX, sizeof BEACON_PREFIX - 1) == 0 &&
                strcmp(r->children[i] + sizeof BEACON_PREFIX - 1, b->c->uuid) != 0)
                others++;
        b->others_waiting = others > 0;
    }
    drop(b);
}

/* The stat says whether the children changed; only then do we look (a record
 * may have children of its own). */
void zkc__beacon_observe(zkc__beacon *b, const zkc__stat *st)
{
    int mine = b->state == BEACON_UP;
    if (st->num_children <= mine) {
        b->others_waiting = 0;
        b->seen_cversion = st->cversion;
        return;
    }
    if (st->cversion == b->seen_cversion || b->scanning)
        return;
    b->seen_cversion = st->cversion;
    b->scanning = 1;
    hold(b);
    zkc__children(b->c, b->path, NULL, scan_done, b);
}

void zkc__beacon_rtt(zkc__beacon *b, int64_t rtt_ms)
{
    b->rtt_ms = b->rtt_ms ? (b->rtt_ms * 7 + rtt_ms) / 8 : rtt_ms;
}

/* A read and a write of theirs, and up to one round trip more. (It was a
 * read and most of a write until the engine ran steps in place, lib/loop.c:
 * the winner's next write then came back sooner than the waiting session's
 * read and write, and more adds gave up with ZKC_ECONTENDED.) */
int64_t zkc__beacon_yield_ms(zkc__beacon *b)
{
    if (!b->others_waiting)
        return 0;
    int64_t rtt = b->rtt_ms > 0 ? b->rtt_ms : 1;
    int64_t d = 2 * rtt + (int64_t)(zkc__random64() % (uint64_t)(rtt + 1));
    return d < 50 ? d : 50;
}
