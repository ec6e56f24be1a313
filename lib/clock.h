/* The servers' clock as one client sees it (clock.c): the one estimator of
 * lib/, shared by the rate limiter, admin cleanup and the inventory's reap. */
#ifndef ZKC_CLOCK_H
#define ZKC_CLOCK_H

#include "req.h"

#include <stdint.h>

/* Engine: feed the reply of any write of ours (`sent`: our monotonic ms when it
 * was first sent; the leader stamped its mtime between then and now). Returns
 * the mtime: the servers' clock at the least, now. */
int64_t zkc__clock_sample(zkc_client *c, int64_t sent_ms, const zkc__stat *st);

/* Engine: make sure of a sample younger than max_age_ms (0: from a touch in
 * flight or sent now), touching <meta_root>/clock if need be (created, parents
 * too, when missing); requests that come while a touch is in flight share it.
 * done(arg, zrc, at_least) runs once on the engine (at once, from inside this
 * call, when the sample in hand is young enough): zrc ZR_OK and at_least a
 * time the servers' clock had reached (a mtime), or the
 * touch's failure: ZR_CONNLOSS / ZR_OPTIMEOUT when it was sent and no answer
 * came (it is sent again within the operation timeout: it may have been
 * applied); ZR_NOTSENT, ZR_SESSIONLOST when it never left; ZR_CLOSING, ... */
typedef void (*zkc__clock_done)(void *arg, int zrc, int64_t at_least);
void zkc__clock_sync(zkc_client *c, int64_t max_age_ms, zkc__clock_done done, void *arg);

/* Engine: 1 when a sample younger than max_age_ms is known. */
int zkc__clock_fresh(zkc_client *c, int64_t max_age_ms);

/* Engine, after a sample: the estimate of the servers' clock now, in ms or
 * microseconds; within half the sample's round trip of the truth (plus the
 * drift since), and never lower than an earlier answer. */
int64_t zkc__clock_now_ms(zkc_client *c);
int64_t zkc__clock_now_us(zkc_client *c);
/* Engine: our monotonic ms at which the estimate reads `ms` (or `us`, rounded
 * up): for timers. */
int64_t zkc__clock_mono_at_ms(zkc_client *c, int64_t ms);
int64_t zkc__clock_mono_at_us(zkc_client *c, int64_t us);
/* Engine: the round trip of the sample in use (ms; twice the error bound). */
int64_t zkc__clock_rtt_ms(zkc_client *c);

#endif
