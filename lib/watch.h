/* One-shot watch cells (watch.c). */
#ifndef ZKC_WATCH_H
#define ZKC_WATCH_H

#include "list.h"
#include "zkcoord.h"

#include <stdint.h>

typedef struct zkc__watch zkc__watch;
/* A one-shot ZooKeeper watch. Owned by the client; the owner only detaches. */
struct zkc__watch {
    void (*fn)(zkc__watch *w, int event); /* engine; event: ZW_* */
    void *ctx;
    /* private to watch.c */
    zkc_client *c;
    uint64_t gen;
    int state;
    char *path;
    zkc__list_node node;       /* in the client's watches */
};
#define ZW_CREATED 1
#define ZW_DELETED 2
#define ZW_CHANGED 3
#define ZW_CHILD 4

/* Engine: a new watch owned by the client; fn(w, event) runs once on the engine
 * when it fires, and the cell is freed when fn returns: the owner forgets it
 * there. Until then the owner must zkc__watch_drop it when it loses interest.
 * Pass it to at most one read at a time. */
zkc__watch *zkc__watch_new(zkc_client *c, void (*fn)(zkc__watch *, int), void *ctx);
/* Engine: the owner no longer wants it: it will not be called, the server-side
 * watch is removed, and the memory is reclaimed by the client. NULL is fine. */
void zkc__watch_drop(zkc__watch *w);
/* Engine: drop without a removal request, for a watch on a node we are about
 * to delete ourselves (the delete fires it), also when its read is still out
 * (the delete, sent later, comes after it). */
void zkc__watch_forget(zkc__watch *w);
/* req.c, engine: a read carrying w was submitted (parked or sent). */
void zkc__watch_pending(zkc__watch *w);
/* req.c, engine: a read carrying w is handed to the session on path. */
void zkc__watch_sending(zkc__watch *w, const char *path, int children);
/* req.c, engine: the read carrying w settled (not to be retried); armed: the
 * reply registered the watch. Returns w, or NULL when the owner had dropped it
 * (then it is no longer the read's to report). */
zkc__watch *zkc__watch_settle(zkc__watch *w, int armed, uint64_t gen);

/* The session, engine. */
void zkc__watches_close_gen(zkc_client *c, uint64_t gen);
void zkc__watches_resume(zkc_client *c); /* reconnected: remove watches dropped meanwhile */
void zkc__watches_free_all(zkc_client *c); /* client_free: the engine is gone; reclaim what is left */

#endif
