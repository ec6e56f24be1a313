/* Recipe objects (object.c): what every lock, counter, inventory, ... shares
 * with the client that made it, and the per-client singletons of a recipe. */
#ifndef ZKC_OBJECT_H
#define ZKC_OBJECT_H

#include "zkcoord.h"
#include "list.h"

#include <pthread.h>
#include <stddef.h>

/* Reference counts (any thread). zkc__ref_put returns 1 when it dropped the last. */
static inline void zkc__ref_get(int *refs)
{
    __atomic_add_fetch(refs, 1, __ATOMIC_ACQ_REL);
}

static inline int zkc__ref_put(int *refs)
{
    return __atomic_sub_fetch(refs, 1, __ATOMIC_ACQ_REL) == 0;
}

/* Every recipe object (lock, counter, ...) embeds one: the client cancels their
 * operations at shutdown and outlives them (each holds a client reference). */
typedef struct zkc__object zkc__object;
struct zkc__object {
    void (*shutdown)(zkc__object *o); /* engine: cancel ops (ECANCELED), forget holds */
    zkc__list_node node;
    int linked;                       /* in the client's list (kept for queue.c) */
};
void zkc__object_link(zkc_client *c, zkc__object *o);   /* engine */
void zkc__object_unlink(zkc_client *c, zkc__object *o); /* engine */
/* Engine, at shutdown: every linked object's shutdown, newest first. */
void zkc__objects_shutdown(zkc_client *c);

/* A recipe object's user listener of hold events (a lock's, an election's):
 * set from any thread; the engine posts events; the dispatch thread calls the
 * listener, in order, never once the object's destroy has begun (*muted). */
typedef struct zkc__listener zkc__listener;
struct zkc__listener {
    pthread_mutex_t mu;
    void (*fn)(void); /* the recipe's listener type, cast; guarded by mu */
    void *ud;
    void *obj;
    const int *muted; /* atomic: the object's destroy has begun */
    /* dispatch: cast fn back to the recipe's type and call it */
    void (*call)(void (*fn)(void), void *obj, int ev, void *ud);
    /* keep obj alive while an event of it is queued */
    void (*hold)(void *obj);
    void (*drop)(void *obj);
};
void zkc__listener_init(zkc__listener *l, void *obj, const int *muted,
                        void (*call)(void (*fn)(void), void *obj, int ev, void *ud), void (*hold)(void *obj),
                        void (*drop)(void *obj));
void zkc__listener_destroy(zkc__listener *l);
void zkc__listener_set(zkc__listener *l, void (*fn)(void), void *ud); /* any thread */
void zkc__listener_post(zkc_client *c, zkc__listener *l, int ev);      /* engine */

/* A recipe's per-client state, made on first use and freed with the client:
 * the recipe embeds one and registers it under a key of its own (the address
 * of a static of its file), instead of a field in struct zkc_client. */
typedef struct zkc__singleton zkc__singleton;
struct zkc__singleton {
    const void *key;
    /* When the client is freed (no engine any more; after every object's
     * shutdown): free what the singleton holds, the singleton included. */
    void (*free)(zkc__singleton *s);
    zkc__list_node node;
};
/* Engine: the singleton registered under key, or NULL. */
zkc__singleton *zkc__singleton_get(zkc_client *c, const void *key);
/* Engine: the state registered under key, made on first use: `size` zeroed
 * bytes whose zkc__singleton sits at `offset`, set up by make (lists, object
 * link, session listener: what the state needs; nonzero: out of memory, and
 * nothing of it may stay linked) and registered with free_fn. Returns the
 * state, or NULL when out of memory. ZKC__SINGLETON names the type instead. */
void *zkc__singleton_get_or_make(zkc_client *c, const void *key, size_t size, size_t offset,
                                 int (*make)(void *state, zkc_client *c), void (*free_fn)(zkc__singleton *s));
#define ZKC__SINGLETON(c, key, type, member, make, free_fn)                                                          \
    ((type *)zkc__singleton_get_or_make((c), (key), sizeof(type), offsetof(type, member), (make), (free_fn)))
/* Engine: register s (s->key and s->free set); at most one per key. */
void zkc__singleton_add(zkc_client *c, zkc__singleton *s);
/* Engine: unregister s (a singleton that ends before its client: its free
 * hook is then not called). */
void zkc__singleton_remove(zkc_client *c, zkc__singleton *s);
/* Client free: free every registered singleton, newest first. */
void zkc__singletons_free(zkc_client *c);

void zkc__client_ref(zkc_client *c);   /* any thread */
void zkc__client_unref(zkc_client *c); /* any thread; frees after destroy */

#endif
