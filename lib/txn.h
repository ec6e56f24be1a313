/* The transaction core (lib/txn.c): versioned records updated exactly once.
 *
 * A user (counters; inventory's grant rounds, settle and restock) embeds a
 * zkc__txn per attempt family and supplies zkc__txn_ops:
 *   1. round(): read its records (with its own cache), compute the new bytes
 *      and any extra ops, and, when zkc__txn_marker_ready() says so, send
 *      them with zkc__txn_marker_op() appended through zkc__txn_send();
 *   2. in the multi's reply, call zkc__txn_reply(): it completes the marker's
 *      part (success, connection loss or timeout decided from the marker,
 *      unsent, marker conflicts) and hands back only a failure of one of the
 *      user's own ops (typically BadVersion: zkc__txn_backoff, then round()
 *      again from a fresh read);
 *   3. after a loss the core calls applied(rec) with what the marker recorded
 *      for the attempt that landed, or unapplied() then round() when nothing
 *      landed (a late landing can no longer apply: the marker version moved);
 *   4. zkc__txn_finish() when done (the user frees its memory).
 * NO-MARKER MODE: a multi sent without the marker op (one that is its own
 * evidence, e.g. a state change of a record conditional on its version, read
 * back after a loss) gets the same reply classification and backoff; after a
 * loss the core calls verify() instead of reading a marker, and applied() /
 * unapplied() are never called. A txn never mixes the two modes.
 * A multi may hold several of the user's records (all conditional).
 * A user may set guards (zkc__txn_guard) before the first send: each becomes a
 * check op appended to every multi, and a failed check fails the txn with
 * ZKC_EFENCED (nothing was applied: the check is part of the transaction).
 * All on the engine thread. The marker's content is a zkc__record (codec.h)
 * whose id is zkc__txn.id: its before/after entries are the user's to fill.
 */
#ifndef ZKC_TXN_H
#define ZKC_TXN_H

#include "internal.h"
#include "codec.h"

typedef struct zkc__txn zkc__txn;
typedef struct zkc__marker zkc__marker;

typedef struct zkc__txn_ops {
    /* Compute and send (or finish): first, after a backoff, after a loss was
     * decided "not applied", and once the marker is ready. */
    void (*round)(zkc__txn *t);
    /* After a loss: an attempt of ours landed; rec is what it recorded. */
    void (*applied)(zkc__txn *t, const zkc__record *rec);
    /* After a loss: nothing landed; forget cached reads (round() follows).
     * Optional: NULL when round() caches nothing. */
    void (*unapplied)(zkc__txn *t);
    /* Give up with status (ZKC_EUNKNOWN when the outcome cannot be decided). */
    void (*fail)(zkc__txn *t, int status, const char *msg);
    /* Optional, test builds: where the attempt is, for the op watchdog. */
    void (*phase)(zkc__txn *t, const char *state);
    /* Appended to an "outcome unknown" message: how the caller can find out
     * later ("" for nothing). */
    const char *unknown_hint;
    /* No-marker mode only: a sent multi's reply was lost; find out from the
     * user's own records (then finish, or round() again). Last, so users that
     * initialise by position need not name it. */
    void (*verify)(zkc__txn *t);
} zkc__txn_ops;

struct zkc__txn {
    zkc_client *c;
    const zkc__txn_ops *ops;
    char id[96];        /* the same across retries: a late landing is recognised */
    zkc__marker *m;     /* taken at the first send, kept until finish */
    zkc__timer backoff;
    int unknown;        /* a sent attempt's outcome is undecided */
    int64_t sent_ms;    /* when the last multi went out */
    int lost;           /* rounds lost to other writers */
    const zkc_guard *guards; /* the user's, kept until finish: checked in every multi */
    int nguards;
};

void zkc__txn_init(zkc__txn *t, zkc_client *c, const zkc__txn_ops *ops);
/* Release the marker and the timer. */
void zkc__txn_finish(zkc__txn *t);

/* Guard every multi of t with guards[0..n-1] (the user's memory, kept until
 * zkc__txn_finish): a check op each, after the user's ops and the marker. */
void zkc__txn_guard(zkc__txn *t, const zkc_guard *guards, int n);
/* Any thread: is g a usable guard (a valid path, version >= -1)? 0 or
 * ZKC_EINVAL with zkc_errmsg set (fn names the call). */
int zkc__txn_guard_check(const zkc_guard *g, const char *fn);
/* Fill ops[0..n-1] with the check ops of guards[0..n-1]; returns n. For
 * writers that send their own multi (the core's users get them appended). */
int zkc__guard_ops(zkc__mop *ops, const zkc_guard *guards, int n);
/* In a failed multi whose last n ops are guard checks: 1 if one of those
 * failed first (nothing of the multi applied), with the caller's *status
 * (ZKC_EFENCED when the hold has ended) and msg; else 0. */
int zkc__guard_refused(const zkc__req *r, int n, int *status, char *msg, size_t len);
/* Any thread: the guard of a hold whose node is `node` (NULL: its path was
 * not kept, out of memory) and token `token`, into *out: version -1. 0, or
 * ZKC_ENOMEM naming fn and what (e.g. "lock /a"). */
int zkc__guard_of_hold(zkc_guard *out, const char *node, int64_t token, const char *fn, const char *what);
/* Any thread: append a copy of g to (*guards, *n) unless one with its path is
 * there. 0 or ZKC_ENOMEM. */
int zkc__txn_guard_add(zkc_guard **guards, int *n, const zkc_guard *g);

/* 1: the marker is ready, send now. 0: the core is taking, creating or
 * reading it and calls round() (or fail()) when that is done. */
int zkc__txn_marker_ready(zkc__txn *t);
/* The setData of the marker, conditional on its version: the op to append. */
void zkc__txn_marker_op(zkc__txn *t, zkc__mop *op, const char *data, int len);
const char *zkc__txn_marker_path(const zkc__txn *t);
/* Send the multi (the marker op among ops, or none: NO-MARKER MODE); done
 * gets the reply (ctx t). */
void zkc__txn_send(zkc__txn *t, zkc__mop *ops, int nops, zkc__req_done done);

enum { ZKC__TXN_APPLIED, ZKC__TXN_OP_FAILED, ZKC__TXN_TAKEN };
/* Classify a multi's reply. APPLIED: it succeeded. OP_FAILED: ops[*fi] (not
 * the marker) failed with *frc; the caller decides. TAKEN: the core carries
 * on (decides after a loss, resends, or fails the txn). */
int zkc__txn_reply(zkc__txn *t, zkc__req *r, int *fi, int *frc);
/* The index of the marker op in the multi, -1 without one (no-marker mode). */
int zkc__txn_marker_index(const zkc__txn *t, const zkc__req *r);

/* The one backoff policy after a lost round (BadVersion): jittered
 * exponential, or, while our beacon is up (beacon_rtt_ms >= 0), back before
 * the winner's next write. round() follows. */
void zkc__txn_backoff(zkc__txn *t, int attempts, int64_t beacon_rtt_ms);
/* round() after ms (yielding to others). */
void zkc__txn_defer(zkc__txn *t, int64_t ms);

/* A failed request known not to have applied (never sent, or a server's
 * answer), as a caller sees it. */
int zkc__txn_req_error(int rc);

#endif
