/* Paths known to exist (lib/pathcache.c): a bounded, per-client hint that
 * lets a writer whose create found its parent missing skip creating the
 * ancestors it already saw. */
#ifndef ZKC_PATHCACHE_H
#define ZKC_PATHCACHE_H

#include <stddef.h>
#include "zkcoord.h"

/* How many paths a client remembers; the least recently confirmed go first. */
#define ZKC__PATHCACHE_MAX 4096

/* Engine: the first len bytes of path named a node that existed. Out of
 * memory, nothing is remembered. */
void zkc__pathcache_add(zkc_client *c, const char *path, size_t len);
/* Engine: add every proper ancestor of path (not "/"), and path itself. */
void zkc__pathcache_add_tree(zkc_client *c, const char *path);
/* Engine: the first len bytes of path named a node found missing. */
void zkc__pathcache_forget(zkc_client *c, const char *path, size_t len);
/* Engine: the length of the deepest proper ancestor of path's first len
 * bytes that is remembered (not "/"), or 0. */
size_t zkc__pathcache_deepest(zkc_client *c, const char *path, size_t len);
/* Client free. */
void zkc__pathcache_free(zkc_client *c);

#endif
