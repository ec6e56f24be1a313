/* Recipe objects: the list of live objects the client cancels at shutdown,
 * and the per-client singleton registry (a recipe's state shared by all its
 * objects of one client, freed with the client). */
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
