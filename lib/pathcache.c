/*
 * Paths known to exist, per client: only a hint. A create whose parent is
 * missing (NONODE) has to make the missing ancestors, and without memory it
 * cannot tell how far up they are missing; walking to the root costs a create
 * per level for every new path, as many as ten requests for a first acquire.
 * Remembering the directories seen to exist lets the writer start just below
 * the deepest of them.
 *
 * Nothing here is ever trusted: containers are reaped by the server once
 * empty, and any client may delete anything, so a remembered path can be gone.
 * The writers never skip a create because of it, they only choose where to
 * start making parents, and a NONODE below a remembered path forgets it and
 * goes further up (member.c, req.c's mkpath). A wrong entry costs one request.
 *
 * Bounded (ZKC__PATHCACHE_MAX, least recently confirmed evicted): a client
 * touching millions of paths keeps the directories they share, since every
 * confirmation of a deep path confirms its ancestors too. Engine only, like
 * everything the writers own, so no lock.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 8192 /* a power of two, about twice ZKC__PATHCACHE_MAX */

typedef struct entry entry;
struct entry {
    entry *next; /* in its bucket */
    zkc__list_node lru;
    uint64_t hash;
    size_t len;
    char path[];
};

struct zkc__pathcache {
    entry *bucket[NBUCKETS];
    zkc__list lru; /* most recently confirmed first */
    int n;
};

static entry **find(struct zkc__pathcache *k, const char *p, size_t len, uint64_t h)
{
    entry **e = &k->bucket[h & (NBUCKETS - 1)];
    while (*e && !((*e)->hash == h && (*e)->len == len && memcmp((*e)->path, p, len) == 0))
        e = &(*e)->next;
    return e;
}

static void drop(struct zkc__pathcache *k, entry **at)
{
    entry *e = *at;
    *at = e->next;
    zkc__list_remove(&e->lru);
    k->n--;
    free(e);
}

void zkc__pathcache_add(zkc_client *c, const char *path, size_t len)
{
    if (len == 0 || (len == 1 && path[0] == '/'))
        return;
    struct zkc__pathcache *k = c->known;
    if (!k) {
        if (!(k = c->known = calloc(1, sizeof *k)))
            return;
        zkc__list_init(&k->lru);
    }
    uint64_t h = zkc__hash64(path, len);
    entry **at = find(k, path, len, h);
    if (*at) {
        zkc__list_remove(&(*at)->lru);
        zkc__list_push_front(&k->lru, &(*at)->lru);
        return;
    }
    if (k->n >= ZKC__PATHCACHE_MAX) {
        entry *old = ZKC__CONTAINER_OF(k->lru.head.prev, entry, lru);
        drop(k, find(k, old->path, old->len, old->hash));
        at = find(k, path, len, h); /* the bucket may have changed under us */
    }
    entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return;
    memcpy(e->path, path, len);
    e->path[len] = '\0';
    e->len = len;
    e->hash = h;
    e->next = NULL;
    *at = e;
    zkc__list_push_front(&k->lru, &e->lru);
    k->n++;
}

void zkc__pathcache_add_tree(zkc_client *c, const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 1; i < n; i++)
        if (path[i] == '/')
            zkc__pathcache_add(c, path, i);
    zkc__pathcache_add(c, path, n);
}

void zkc__pathcache_forget(zkc_client *c, const char *path, size_t len)
{
    struct zkc__pathcache *k = c->known;
    if (!k)
        return;
    entry **at = find(k, path, len, zkc__hash64(path, len));
    if (*at)
        drop(k, at);
}

size_t zkc__pathcache_deepest(zkc_client *c, const char *path, size_t len)
{
    struct zkc__pathcache *k = c->known;
    if (!k)
        return 0;
    for (size_t i = len; i-- > 1;)
        if (path[i] == '/' && *find(k, path, i, zkc__hash64(path, i)))
            return i;
    return 0;
}

void zkc__pathcache_free(zkc_client *c)
{
    struct zkc__pathcache *k = c->known;
    if (!k)
        return;
    for (int i = 0; i < NBUCKETS; i++)
        while (k->bucket[i])
            drop(k, &k->bucket[i]);
    free(k);
    c->known = NULL;
}
