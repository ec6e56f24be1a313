/* The physical limit of the ensemble, measured before each scenario, and how
 * far the scenario's figure is from it (issue 19).
 *
 * Every ZooKeeper write is one transaction: the leader logs it (fsync) and a
 * quorum of followers log it before it commits. Two numbers bound what any
 * recipe can do on this ensemble:
 *
 *   serial write latency   sequential setData round trips on one raw session:
 *                          one fsync'd quorum commit after another. A handoff
 *                          whose critical path has one write (the holder's
 *                          delete wakes the next) cannot beat 1 / this.
 *   group-commit rate      many async setData outstanding on one raw session:
 *                          the servers batch log appends into one fsync, so the
 *                          write rate grows with concurrency until the CPUs or
 *                          the disk run out. Work that is batched (combined
 *                          enqueues, grants decided in one multi) cannot beat
 *                          this rate / writes per operation.
 *
 * The report then gives, per scenario, ops/s at one serial commit per
 * operation (or per batch), ops/s at the group-commit rate for the scenario's
 * measured writes per operation, and the library's fraction of each. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_NODES 64    /* setData outstanding at once in the group-commit probe */

typedef struct group_probe group_probe;
typedef struct group_slot {
    group_probe *g;
    char path[200];
} group_slot;

struct group_probe {
    zhandle_t *zh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double deadline;
    long done, failed;
    int inflight;
    group_slot slot[GROUP_NODES];
};

static void group_send(group_slot *s);

static void group_done(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    group_slot *s = (group_slot *)data;
    group_probe *g = s->g;
    pthread_mutex_lock(&g->mu);
    if (rc == ZOK)
        g->done++;
    else
        g->failed++;
    int again = rc == ZOK && now_ms() < g->deadline;
    if (!again) {
        g->inflight--;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    if (again)
        group_send(s);
}

static void group_send(group_slot *s)
{
    group_probe *g = s->g;
    if (zoo_aset(g->zh, s->path, "x", 1, -1, group_done, s) != ZOK) {
        pthread_mutex_lock(&g->mu);
        g->failed++;
        g->inflight--;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
}

/* Writes per second with GROUP_NODES setData outstanding for `seconds`. */
static double group_commit_rate(raw_conn *rc, const char *dir, double seconds)
{
    group_probe *g = calloc(1, sizeof *g);
    if (!g)
        return NAN;
    g->zh = rc->zh;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    for (int k = 0; k < GROUP_NODES; k++) {
        g->slot[k].g = g;
        snprintf(g->slot[k].path, sizeof g->slot[k].path, "%s/g%02d", dir, k);
        int z = zoo_create(rc->zh, g->slot[k].path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        if (z != ZOK && z != ZNODEEXISTS) {
            free(g);
            return NAN;
        }
    }
    double t0 = now_ms();
    g->deadline = t0 + seconds * 1000.0;
    g->inflight = GROUP_NODES;
    for (int k = 0; k < GROUP_NODES; k++)
        group_send(&g->slot[k]);
    pthread_mutex_lock(&g->mu);
    while (g->inflight > 0)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    double el = now_ms() - t0;
    /* A write that failed (a request timed out on a loaded machine) ends its
     * slot early: the rate of what was done is still a rate, a little low; say so. */
    double rate = g->done == 0 || el <= 0 ? NAN : (double)g->done / (el / 1000.0);
    if (g->failed)
        fprintf(stderr, "bench: group-commit probe: %ld of %ld writes failed; the rate counts the %ld done\n",
                g->failed, g->failed + g->done, g->done);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return rate;
}

void measure_limit(limit_info *li, int serial_writes, double group_seconds)
{
    memset(li, 0, sizeof *li);
    li->serial_p50_ms = li->serial_mean_ms = li->group_writes_per_s = NAN;
    li->group_outstanding = GROUP_NODES;
    char err[256], dir[160], p[200];
    raw_conn *rc = raw_open(err, sizeof err);
    if (!rc)
        return;
    snprintf(dir, sizeof dir, "%s/limit", g_root);
    snprintf(p, sizeof p, "%s/serial", dir);
    raw_mkpath(rc->zh, p);
    lat_t l = {0};
    for (int i = 0; i < serial_writes; i++) {
        double t0 = now_ms();
        if (zoo_set(rc->zh, p, "x", 1, -1) != ZOK)
            break;
        lat_push(&l, now_ms() - t0);
    }
    li->serial_writes = (int)l.n;
    if (l.n) {
        li->serial_p50_ms = lat_pct(&l, 50);
        li->serial_mean_ms = lat_mean(&l);
    }
    lat_free(&l);
    li->group_writes_per_s = group_commit_rate(rc, dir, group_seconds);
    raw_close(rc);
}

/* Ops/s at one serial commit per operation, and at the group-commit rate for
 * `writes` writes per operation. */
static void limit_bounds(const limit_info *li, double writes, double *serial_ops, double *group_ops)
{
    *serial_ops = li->serial_p50_ms > 0 ? 1000.0 / li->serial_p50_ms : NAN;
    *group_ops = writes > 0 && isfinite(li->group_writes_per_s) ? li->group_writes_per_s / writes : NAN;
}

void limit_json(sb *j, const limit_info *li, double ops, double writes)
{
    double so, go;
    limit_bounds(li, writes, &so, &go);
    sb o = {0};
    kv_str(&o, "method",
           "serial: sequential setData round trips on one raw session (one fsync'd quorum commit each); group: "
           "async setData on distinct nodes kept outstanding on one raw session (commits batched into fsyncs)");
    kv_num(&o, "serial_write_p50_ms", li->serial_p50_ms);
    kv_num(&o, "serial_write_mean_ms", li->serial_mean_ms);
    kv_num(&o, "serial_writes", li->serial_writes);
    kv_num(&o, "group_commit_writes_per_s", li->group_writes_per_s);
    kv_num(&o, "group_outstanding", li->group_outstanding);
    kv_num(&o, "writes_per_op", writes);
    kv_num(&o, "ops_per_s_at_one_serial_commit", so);
    kv_num(&o, "ops_per_s_at_group_commit_rate", go);
    kv_num(&o, "fraction_of_serial_commit_bound", so > 0 ? ops / so : NAN);
    kv_num(&o, "fraction_of_group_commit_bound", go > 0 ? ops / go : NAN);
    kv_obj(j, "physical_limit", &o);
    sb_free(&o);
}

void limit_text(const limit_info *li, double ops, double writes)
{
    double so, go;
    limit_bounds(li, writes, &so, &go);
    printf("    physical limit: serial write %.2f ms (%.0f commits/s), group commit %.0f writes/s (%d outstanding); "
           "%.2f writes/op: one serial commit per op would allow %.0f ops/s (library at %.2f of it), the group "
           "rate %.0f ops/s (library at %.2f of it)\n",
           li->serial_p50_ms, so, li->group_writes_per_s, li->group_outstanding, writes, so,
           so > 0 ? ops / so : NAN, go, go > 0 ? ops / go : NAN);
}
