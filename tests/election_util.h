/* Shared by the election suites (test_election.c, test_election_faults.c):
 * making a participant, recording its callbacks as tu_events, and waiting,
 * bounded, until a reader sees a given leader. Header-only: each suite is one
 * translation unit. */
#ifndef ZKC_ELECTION_UTIL_H
#define ZKC_ELECTION_UTIL_H

#include "testutil.h"

#include <string.h>

static inline zkc_election *mkel(zkc_client *c, const char *path, const char *id, const char *data)
{
    zkc_election *e = NULL;
    int rc = zkc_election_create(c, path, id, data, data ? (int)strlen(data) : 0, &e);
    ck_assert_msg(rc == 0, "zkc_election_create(%s, %s): %s", path, id, zkc_errmsg());
    return e;
}

/* Records (event = status, value = token) of each lead callback. */
static inline void lead_cb(zkc_election *e, int status, int64_t token, void *ud)
{
    (void)e;
    tu_events_add(ud, status, token);
}

/* Records each SUSPENDED / RECONNECTED / LOST (event = the event, value 0). */
static inline void ev_cb(zkc_election *e, zkc_election_event ev, void *ud)
{
    (void)e;
    tu_events_add(ud, (int)ev, 0);
}

/* Another client's view lags the leader's writes: wait (bounded) until c
 * reads `id` as the leader at path. 1 if it did. */
static inline int wait_leader(zkc_client *c, const char *path, const char *id, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        zkc_election_leader_info in;
        int ok = zkc_election_leader(c, path, &in) == 0 && strcmp(in.participant_id, id) == 0;
        zkc_election_leader_free(&in);
        if (ok || tu_now_ms() > deadline)
            return ok;
        tu_nap_ms(50);
    }
}

#endif
