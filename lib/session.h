/* The session (session.c): its state as the engine knows it, the listeners
 * recipes register, the stats, and its life as the client drives it. */
#ifndef ZKC_SESSION_H
#define ZKC_SESSION_H

#include "list.h"
#include "zkcoord.h"

#include <stdint.h>

/* Internal session listener: recipes register to hear SUSPENDED / RECONNECTED /
 * LOST on the engine thread, before users hear them. */
typedef struct zkc__sess_listener zkc__sess_listener;
struct zkc__sess_listener {
    void (*fn)(zkc__sess_listener *l, zkc_state st, uint64_t gen);
    zkc__list_node node;
};
void zkc__sess_listen(zkc_client *c, zkc__sess_listener *l);   /* engine */
void zkc__sess_unlisten(zkc_client *c, zkc__sess_listener *l); /* engine */

/* Engine: the state of the session as the engine knows it. */
enum { ZKC__S_CONNECTING = 0, ZKC__S_CONNECTED, ZKC__S_SUSPENDED, ZKC__S_CLOSED };

typedef struct zkc__stats_atomic {
    uint64_t requests[ZKC_REQ_KINDS_MAX];
    uint64_t retries, conflicts, sessions, suspended, reconnected, lost, disconnected_ms, callbacks;
} zkc__stats_atomic;

#define ZKC__CLOSING_STATE 100 /* internal listeners: the client is shutting down */

#define ZKC__STAT_INC(c, field) __atomic_add_fetch(&(c)->st.field, 1, __ATOMIC_RELAXED)
#define ZKC__STAT_ADD(c, field, n) __atomic_add_fetch(&(c)->st.field, (n), __ATOMIC_RELAXED)

/* Engine: is the session usable now; the heartbeat freshness view for is_held. */
int zkc__session_fresh(zkc_client *c);
/* What client.c drives: the session's life. */
void zkc__session_init(zkc_client *c);  /* at create, before the threads */
int zkc__session_start(zkc_client *c);  /* any thread: open the first session on the engine */
void zkc__session_close(zkc_client *c); /* engine, at shutdown after the objects: drain, close */
void zkc__session_abandon(zkc_client *c); /* the engine is gone: close a handle it left */
int zkc__session_set_hosts(zkc_client *c, const char *hosts); /* any thread; hosts checked */

#endif
