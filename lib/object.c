/* Recipe objects: the list of live objects the client cancels at shutdown,
 * the per-client singleton registry (a recipe's state shared by all its
 * objects of one client, freed with the client), and the listener cell through
 * which a lock or an election tells its user about SUSPENDED, RECONNECTED and
 * LOST on the dispatch thread. */
#include "internal.h"

#include <stdlib.h>

void zkc__object_link(zkc_client *c, zkc__object *o)
{
    zkc__list_push_front(&c->objects, &o->node);
    o->linked = 1;
}

void zkc__object_unlink(zkc_client *c, zkc__object *o)
{
    ZKC__UNUSED(c);
    if (!o->linked)
        return;
    zkc__list_remove(&o->node);
    o->linked = 0;
}

void zkc__objects_shutdown(zkc_client *c)
{
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &c->objects)
    {
        zkc__object *o = ZKC__CONTAINER_OF(n, zkc__object, node);
        o->shutdown(o);
    }
}

zkc__singleton *zkc__singleton_get(zkc_client *c, const void *key)
{
    for (zkc__list_node *n = zkc__list_first(&c->singletons); n; n = zkc__list_next(&c->singletons, n)) {
        zkc__singleton *s = ZKC__CONTAINER_OF(n, zkc__singleton, node);
        if (s->key == key)
            return s;
    }
    return NULL;
}

void *zkc__singleton_get_or_make(zkc_client *c, const void *key, size_t size, size_t offset,
                                 int (*make)(void *state, zkc_client *c), void (*free_fn)(zkc__singleton *s))
{
    zkc__singleton *s = zkc__singleton_get(c, key);
    if (s)
        return (char *)s - offset;
    char *state = calloc(1, size);
    if (!state)
        return NULL;
    if (make && make(state, c) != 0) {
        free(state);
        return NULL;
    }
    s = (zkc__singleton *)(state + offset);
    s->key = key;
    s->free = free_fn;
    zkc__singleton_add(c, s);
    return state;
}

void zkc__singleton_add(zkc_client *c, zkc__singleton *s)
{
    zkc__list_push_front(&c->singletons, &s->node);
}

void zkc__singleton_remove(zkc_client *c, zkc__singleton *s)
{
    ZKC__UNUSED(c);
    zkc__list_remove(&s->node);
}

void zkc__singletons_free(zkc_client *c)
{
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &c->singletons)
    {
        zkc__singleton *s = ZKC__CONTAINER_OF(n, zkc__singleton, node);
        zkc__list_remove(n);
        s->free(s);
    }
}

/* ---------------------------------------------------------------- listeners */

void zkc__listener_init(zkc__listener *l, void *obj, const int *muted,
                        void (*call)(void (*fn)(void), void *obj, int ev, void *ud), void (*hold)(void *obj),
                        void (*drop)(void *obj))
{
    pthread_mutex_init(&l->mu, NULL);
    l->fn = NULL;
    l->ud = NULL;
    l->obj = obj;
    l->muted = muted;
    l->call = call;
    l->hold = hold;
    l->drop = drop;
}

void zkc__listener_destroy(zkc__listener *l)
{
    pthread_mutex_destroy(&l->mu);
}

void zkc__listener_set(zkc__listener *l, void (*fn)(void), void *ud)
{
    pthread_mutex_lock(&l->mu);
    l->fn = fn;
    l->ud = ud;
    pthread_mutex_unlock(&l->mu);
}

typedef struct listener_job {
    zkc__job j;
    zkc__listener *l;
    int ev;
} listener_job;

static void listener_run(zkc__job *j)
{
    listener_job *x = ZKC__CONTAINER_OF(j, listener_job, j);
    zkc__listener *l = x->l;
    /* Read under the lock: the listener may be replaced from any thread. */
    pthread_mutex_lock(&l->mu);
    void (*fn)(void) = __atomic_load_n(l->muted, __ATOMIC_ACQUIRE) ? NULL : l->fn;
    void *ud = l->ud;
    pthread_mutex_unlock(&l->mu);
    if (fn)
        l->call(fn, l->obj, x->ev, ud);
    void *obj = l->obj;
    void (*drop)(void *) = l->drop;
    free(x);
    drop(obj);
}

void zkc__listener_post(zkc_client *c, zkc__listener *l, int ev)
{
    listener_job *x = malloc(sizeof *x);
    if (!x)
        return;
    x->j.fn = listener_run;
    x->l = l;
    x->ev = ev;
    l->hold(l->obj);
    zkc__dispatch(c, &x->j);
}
