/* The order worker's metrics exporter: a file rewritten atomically every
 * interval (node_exporter textfile-collector style) and GET /metrics on
 * 127.0.0.1:port. See metrics_export.c. */
#ifndef ORDER_WORKER_METRICS_EXPORT_H
#define ORDER_WORKER_METRICS_EXPORT_H

#include <zkcoord.h>

typedef struct exporter exporter;

/* file may be NULL, port 0 (then that half is off). NULL on failure (said on
 * stderr). */
exporter *exporter_start(zkc_client *c, const char *file, int port, int interval_ms);
/* Lines in the text format appended to every exposition (the demo's own). */
void exporter_set_extra(exporter *x, const char *lines);
/* Write the file now (0, or -1 with errno). */
int exporter_write_file(exporter *x);
/* Stop both threads, write the file a last time, free. */
void exporter_stop(exporter *x);

#endif
