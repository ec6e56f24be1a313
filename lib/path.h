/* znode paths (path.c): validation, parent, join. */
#ifndef ZKC_PATH_H
#define ZKC_PATH_H

#include <stddef.h>

#define ZKC__PATH_MAX 1024
/* 0 or ZKC_EINVAL with a message naming `what` ("lock path", ...). */
int zkc__path_check(const char *path, const char *what);
/* Validate a single node name (no '/'). */
int zkc__name_check(const char *name, const char *what);
/* Parent of path into buf ("/" for a top-level node). */
void zkc__path_parent(const char *path, char *buf, size_t len);
/* malloc'd "a/b" with exactly one slash. */
char *zkc__path_join(const char *dir, const char *name);
/* malloc'd "dir/<2 hex>/name": name's bucket among 256 (FNV-1a of name), so a
 * store of many records (counter keys, inventory requests) lists in pieces far
 * below jute.maxbuffer. The bucket of a name never changes: it is stored.
 * One sweep walks such stores: keystore.c. */
char *zkc__path_bucketed(const char *dir, const char *name);

#endif
