/* The ZooKeeper C client, for the only files that talk to it: req.c,
 * watch.c and the session. What they share that is typed with its types. */
#ifndef ZKC_ZK_H
#define ZKC_ZK_H

#include <zookeeper/zookeeper.h>

/* watch.c: the watcher function given with every watching read (ctx: the
 * zkc__watch). ZooKeeper's threads: it only posts to the engine. */
void zkc__watch_zk_cb(zhandle_t *zh, int type, int state, const char *path, void *ctx);

#endif
