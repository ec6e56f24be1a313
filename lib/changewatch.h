/* Change watches (changewatch.c): the public zkc_watch, on a few nodes. */
#ifndef ZKC_CHANGEWATCH_H
#define ZKC_CHANGEWATCH_H

#include "zkcoord.h"

#define ZKC__CW_MAX_TARGETS 2

/* One node to watch: its children (a node missing is watched for its
 * creation), or the node itself (created, changed, deleted). */
typedef struct zkc__cw_target {
    const char *path;
    int children;
} zkc__cw_target;

/* Any thread but the engine: start a change watch on n (<= ZKC__CW_MAX_TARGETS)
 * nodes, paths already checked; fn_name for messages. 0 and *out, or an error
 * (then fn is never called). */
int zkc__cw_start(zkc_client *c, const zkc__cw_target *targets, int n, zkc_watch_fn fn, void *ud,
                  zkc_watch **out, const char *fn_name);

#endif
