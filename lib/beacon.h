/* Fairness beacons (lib/beacon.c), an option of the transaction core: see
 * FAIRNESS in lib/beacon.c. One per versioned record a client writes. */
#ifndef ZKC_BEACON_H
#define ZKC_BEACON_H

#include "internal.h"

/* Rounds a batch may lose before it raises its beacon. */
#define ZKC__BEACON_AFTER 2

typedef struct zkc__beacon zkc__beacon;
struct zkc__beacon {
    zkc_client *c;
    const char *path;        /* the record's node: the beacon is its child */
    /* Whether the owner is busy with the record (a batch, or a read): the
     * linger timer then looks again later instead of lowering the beacon. */
    int (*busy)(zkc__beacon *b);
    /* Optional: the owner is kept alive while a request of the beacon is out
     * or its timer is armed (hold before, drop after, on the engine). */
    void (*hold)(zkc__beacon *b);
    void (*drop)(zkc__beacon *b);
    zkc__timer timer;        /* lowers a beacon kept up after a contended batch */
    int state;               /* internal */
    int want;                /* a batch of ours is still losing */
    int broken;              /* creating it failed for good: never again */
    int scanning;            /* a listing of the children is out */
    int others_waiting;      /* another client's beacon was up at the last listing */
    int32_t seen_cversion;
    int64_t rtt_ms;          /* recent write round trip (smoothed) */
};

/* Engine, all of them. */
void zkc__beacon_init(zkc__beacon *b, zkc_client *c, const char *path, int (*busy)(zkc__beacon *));
/* A batch lost a round: tell the winner we wait. `missing`: the record's node
 * does not exist (no beacon can hang under it). */
void zkc__beacon_raise(zkc__beacon *b, int missing);
/* A batch is decided, after `lost` lost rounds. */
void zkc__beacon_settle(zkc__beacon *b, int lost);
/* After a successful write of ours: its stat tells whether anyone waits. */
void zkc__beacon_observe(zkc__beacon *b, const zkc__stat *st);
/* A write's round trip, for the timings. */
void zkc__beacon_rtt(zkc__beacon *b, int64_t rtt_ms);
/* Another client's batch waits: how long a winner leaves it before its next
 * cached write; 0 when nobody waits. */
int64_t zkc__beacon_yield_ms(zkc__beacon *b);

#endif
