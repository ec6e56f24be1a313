/* The janitor (lib/janitor.c): deferred deletes of nodes we no longer want. */
#ifndef ZKC_JANITOR_H
#define ZKC_JANITOR_H

#include "internal.h"

/* Engine: delete `node` once a server is reachable (at once if it is now). */
void zkc__janitor_delete(zkc_client *c, const char *node);
/* Engine: the outcome of a create under `dir` is unknown: once a server is
 * reachable, sync, list `dir` and delete every child whose name contains
 * `tag` (a uuid or nonce only this attempt used). */
void zkc__janitor_find(zkc_client *c, const char *dir, const char *tag);

#endif
