/* Small helpers of every layer (util.c): memory, randomness, the log. */
#ifndef ZKC_UTIL_H
#define ZKC_UTIL_H

#include "zkcoord.h"

#include <stddef.h>
#include <stdint.h>

#define ZKC__CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ZKC__UNUSED(x) ((void)(x))

#if defined(__GNUC__)
#define ZKC__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ZKC__PRINTF(a, b)
#endif

char *zkc__strdup(const char *s);
void *zkc__calloc(size_t n, size_t sz);
/* Random RFC 4122 version 4 uuid text (36 chars + NUL). */
void zkc__uuid(char out[37]);
uint64_t zkc__random64(void);
/* FNV-1a of len bytes: in-memory hash tables (never an on-server name). */
uint64_t zkc__hash64(const void *p, size_t len);
/* Any thread: the user's log function, if its level admits lvl. */
void zkc__log(zkc_client *c, zkc_log_level lvl, const char *fmt, ...) ZKC__PRINTF(3, 4);

#endif
