/* One worker process of the flash sale (zkcoord-bench --flash-worker), started
 * by sc_flash_sale: one zkcoord client (one session) and THREADS threads
 * taking this process's share of the order book (orders INDEX, INDEX + PROCS,
 * ...), each through zkc_inventory_reserve in fail-fast mode.
 *
 *   zkcoord-bench --flash-worker HOSTS META_ROOT BASE PROCS THREADS ORDERS
 *
 * INDEX comes from ZKC_PEER_INDEX (the peers' process protocol, bench/peers.c):
 * it prints "ready" once connected; each "run R" line runs the whole share
 * of sale R (inventory BASE/rR) and answers with one JSON line; end of input
 * ends it. The line carries what the parent checks across processes: orders,
 * grants and refusals, hot units granted, first start and last end (CLOCK_
 * MONOTONIC, shared by the processes of one machine), requests and CPU, and
 * for the FIFO audit the earliest end of a refused hot order per hot quantity
 * and the start of every granted hot order per hot quantity. */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct fw_state {
    zkc_inventory *inv;
    int index, procs, orders, round;
    int next;                 /* atomic: the next k of order index + k * procs */
    pthread_mutex_t mu;       /* the results below */
    uint64_t done, granted, refused, refused_cold_only;
    int64_t hot_units;
    double t0, t1;
    double refused_end[3];    /* [q]: earliest end of a refused order with hot quantity q */
    lat_t granted_start[3];   /* [q]: starts of granted orders with hot quantity q */
    lat_t lat;
    char err[300];
} fw_state;

static int fw_take(fw_state *s)
{
    int k = __atomic_fetch_add(&s->next, 1, __ATOMIC_ACQ_REL);
    long i = (long)s->index + (long)k * s->procs;
    return i < s->orders ? (int)i : -1;
}

static void *fw_thread(void *arg)
{
    fw_state *s = arg;
    for (int i; (i = fw_take(s)) >= 0;) {
        flash_line fl[3];
        int n = flash_order(i, fl);
        char names[3][8], id[48];
        zkc_inventory_line lines[3];
        int64_t hotq = 0;
        for (int k = 0; k < n; k++) {
            flash_sku_name(fl[k].sku, names[k], sizeof names[k]);
            lines[k].sku = names[k];
            lines[k].qty = fl[k].qty;
            if (fl[k].sku < 0)
                hotq = fl[k].qty;
        }
        snprintf(id, sizeof id, "r%d-o%d", s->round, i);
        zkc_inventory_reserve_options ro;
        memset(&ro, 0, sizeof ro);
        zkc_inventory_state st = ZKC_INVENTORY_PENDING;
        double a = now_ms();
        int rc = zkc_inventory_reserve(s->inv, id, lines, n, &ro, LOCK_TIMEOUT_MS, NULL, &st);
        double b = now_ms();
        pthread_mutex_lock(&s->mu);
        s->t0 = fmin(s->t0, a);
        s->t1 = fmax(s->t1, b);
        if (rc == 0) {
            s->granted++;
            s->hot_units += hotq;
            if (hotq)
                lat_push(&s->granted_start[hotq], a);
        } else if (rc == ZKC_EOUTOFSTOCK) {
            s->refused++;
            if (hotq)
                s->refused_end[hotq] = fmin(s->refused_end[hotq], b);
            else
                s->refused_cold_only++;
        } else if (!s->err[0]) {
            snprintf(s->err, sizeof s->err, "zkc_inventory_reserve %s: %s (%s)", id, zkc_strerror(rc), zkc_errmsg());
        }
        s->done++;
        lat_push(&s->lat, b - a);
        int stop = s->err[0] != 0;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
    }
    return NULL;
}

static void fw_nums(sb *b, const char *key, const lat_t *l)
{
    sb_printf(b, ", \"%s\": [", key);
    for (size_t k = 0; k < l->n; k++)
        sb_printf(b, "%s%.3f", k ? "," : "", l->v[k]);
    sb_printf(b, "]");
}

static void fw_report(fw_state *s, const zkc_stats *s0, const zkc_stats *s1, double cpu, double csw)
{
    sb b = {0};
    sb_printf(&b, "{\"ops\": %" PRIu64 ", \"ops_all\": %" PRIu64 ", \"granted\": %" PRIu64 ", \"refused\": %" PRIu64
                  ", \"refused_cold_only\": %" PRIu64 ", \"units\": %" PRId64 ", \"t0\": %.3f, \"t1\": %.3f"
                  ", \"cpu_ms\": %.3f, \"csw\": %.0f, \"rh1\": %.3f, \"rh2\": %.3f, \"req\": [",
              s->done, s->done, s->granted, s->refused, s->refused_cold_only, s->hot_units, s->t0, s->t1, cpu, csw,
              s->refused_end[1], s->refused_end[2]);
    for (int k = 0; k < 16; k++)
        sb_printf(&b, "%s%" PRIu64, k ? "," : "", s1->requests[k] - s0->requests[k]);
    sb_printf(&b, "]");
    fw_nums(&b, "gh1", &s->granted_start[1]);
    fw_nums(&b, "gh2", &s->granted_start[2]);
    fw_nums(&b, "lat_ms", &s->lat);
    printf("%s}\n", sb_str(&b));
    fflush(stdout);
    sb_free(&b);
}

static void rusage_now(double *cpu, double *csw)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    *csw = (double)(ru.ru_nvcsw + ru.ru_nivcsw);
}

/* One sale: this process's share of round r's book. 0, or -1 (said why). */
static int fw_round(zkc_client *c, const char *base, int r, fw_state *s, int threads)
{
    char root[200];
    snprintf(root, sizeof root, "%s/r%d", base, r);
    s->round = r;
    s->next = 0;
    s->done = s->granted = s->refused = s->refused_cold_only = 0;
    s->hot_units = 0;
    s->t0 = INFINITY;
    s->t1 = -INFINITY;
    s->refused_end[1] = s->refused_end[2] = 1e300;
    for (int q = 0; q < 3; q++)
        s->granted_start[q].n = 0;
    s->lat.n = 0;
    s->err[0] = 0;
    int e = zkc_inventory_create(c, root, &s->inv);
    if (e) {
        printf("{\"error\": \"zkc_inventory_create %s: %s\"}\n", root, zkc_strerror(e));
        fflush(stdout);
        return -1;
    }
    zkc_stats s0, s1;
    double cpu0, csw0, cpu1, csw1;
    zkc_client_stats(c, &s0);
    rusage_now(&cpu0, &csw0);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    int started = 0;
    for (; th && started < threads; started++)
        if (pthread_create(&th[started], NULL, fw_thread, s))
            break;
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    free(th);
    rusage_now(&cpu1, &csw1);
    zkc_client_stats(c, &s1);
    zkc_inventory_destroy(s->inv);
    s->inv = NULL;
    if (s->err[0] || started < threads) {
        sb b = {0};
        sb_jstr(&b, s->err[0] ? s->err : "cannot start the threads");
        printf("{\"error\": %s}\n", sb_str(&b));
        fflush(stdout);
        sb_free(&b);
        return -1;
    }
    fw_report(s, &s0, &s1, cpu1 - cpu0, csw1 - csw0);
    return 0;
}

int flash_worker_main(int argc, char **argv)
{
    if (argc != 7) {
        printf("{\"error\": \"usage: zkcoord-bench --flash-worker HOSTS META BASE PROCS THREADS ORDERS\"}\n");
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    g_hosts = argv[1];
    snprintf(g_meta, sizeof g_meta, "%s", argv[2]);
    const char *base = argv[3];
    const char *ix = getenv("ZKC_PEER_INDEX");
    fw_state *s = calloc(1, sizeof *s);
    if (!s)
        return 2;
    pthread_mutex_init(&s->mu, NULL);
    s->index = ix ? atoi(ix) : 0;
    s->procs = atoi(argv[4]);
    int threads = atoi(argv[5]);
    s->orders = atoi(argv[6]);
    char err[600];
    zkc_client *c = lib_client(err, sizeof err);
    if (!c) {
        sb b = {0};
        sb_jstr(&b, err);
        printf("{\"error\": %s}\n", sb_str(&b));
        sb_free(&b);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char line[128];
    int rc = 0;
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4))
            break;
        int r;
        if (sscanf(line, "run %d", &r) == 1 && fw_round(c, base, r, s, threads)) {
            rc = 1;
            break;
        }
    }
    zkc_client_destroy(c);
    for (int q = 0; q < 3; q++)
        lat_free(&s->granted_start[q]);
    lat_free(&s->lat);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}
