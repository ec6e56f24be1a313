/* What the servers say through four-letter words (wchs, mntr), and the
 * persistent write latency a client sees: printed before every scenario. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ensemble.h"

/* ---- four-letter words on every server of g_hosts ---- */

static int host_list(char hosts[][64], int cap)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", g_hosts);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = 0;
    int n = 0;
    char *save = NULL;
    for (char *h = strtok_r(buf, ",", &save); h && n < cap; h = strtok_r(NULL, ",", &save))
        snprintf(hosts[n++], 64, "%s", h);
    return n;
}

/* The number after `key` in the answer of every server to the four-letter
 * word cmd, summed over the ensemble, or NAN when a server does not say. */
static double four_letter_sum(const char *cmd, const char *key)
{
    char hosts[16][64];
    int n = host_list(hosts, 16);
    double total = 0;
    for (int i = 0; i < n; i++) {
        char out[16384];
        if (zkh_four_letter(hosts[i], cmd, out, sizeof out, 3000) < 0)
            return NAN;
        const char *p = strstr(out, key);
        if (!p)
            return NAN;
        total += strtod(p + strlen(key), NULL);
    }
    return n ? total : NAN;
}

/* The number after `key` in every server's mntr, summed (NAN if none answered). */
double server_mntr_sum(const char *key)
{
    return four_letter_sum("mntr", key);
}

/* Watches held by all servers ("Total watches:" of wchs), or -1. */
long server_watches(void)
{
    double w = four_letter_sum("wchs", "Total watches:");
    return isfinite(w) ? (long)w : -1;
}

/* Watch notifications the servers have sent so far: mntr's per-event
 * summaries of watchers triggered (data created/deleted/changed, children),
 * summed over the ensemble (each server counts its own clients' watches). A
 * handoff that wakes one waiter adds 1; a broadcast adds one per waiter. */
double server_watch_events(void)
{
    static const char *const keys[] = {"zk_sum_node_created_watch_count", "zk_sum_node_deleted_watch_count",
                                       "zk_sum_node_changed_watch_count", "zk_sum_node_children_watch_count"};
    double total = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        total += four_letter_sum("mntr", keys[i]);
    return total;
}

/* The ensemble's last transaction id (srvr "Zxid:", the highest over the
 * servers), or NAN. Every write is one transaction and takes the next zxid,
 * so its difference over a run counts the writes any client made (session
 * creation and closing included), whatever the library: how the peers'
 * writes per operation are known. */
double server_zxid(void)
{
    char hosts[16][64];
    int n = host_list(hosts, 16);
    double best = NAN;
    for (int i = 0; i < n; i++) {
        char out[4096];
        if (zkh_four_letter(hosts[i], "srvr", out, sizeof out, 3000) < 0)
            continue;
        const char *p = strstr(out, "Zxid:");
        if (!p)
            continue;
        double z = (double)strtoull(p + 5, NULL, 16);
        best = isfinite(best) ? fmax(best, z) : z;
    }
    return best;
}

/* Requests the servers received from clients so far (mntr zk_packets_received
 * summed over the ensemble; pings included, four-letter words not), or NAN. */
double server_packets(void)
{
    return four_letter_sum("mntr", "zk_packets_received");
}

void mntr_fsync(fsync_info *fi)
{
    char hosts[16][64];
    int n = host_list(hosts, 16);
    fi->nservers = 0;
    for (int i = 0; i < n; i++) {
        char out[16384];
        int k = fi->nservers;
        fi->avg[k] = fi->max[k] = NAN;
        fi->cnt[k] = -1;
        snprintf(fi->state[k], sizeof fi->state[k], "?");
        if (zkh_four_letter(hosts[i], "mntr", out, sizeof out, 3000) < 0)
            continue;
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char key[64], val[64];
            if (sscanf(line, "%63s %63s", key, val) != 2)
                continue;
            if (!strcmp(key, "zk_avg_fsynctime"))
                fi->avg[k] = atof(val);
            else if (!strcmp(key, "zk_max_fsynctime"))
                fi->max[k] = atof(val);
            else if (!strcmp(key, "zk_cnt_fsynctime"))
                fi->cnt[k] = atol(val);
            else if (!strcmp(key, "zk_server_state"))
                snprintf(fi->state[k], sizeof fi->state[k], "%.15s", val);
        }
        fi->nservers++;
    }
}

/* Persistent write latency as a client sees it: sequential create + delete of
 * a persistent node, one session (each is one transaction: leader fsync plus
 * a quorum of follower fsyncs). */
void measure_fsync(fsync_info *fi, int n)
{
    memset(fi, 0, sizeof *fi);
    fi->write_p50_ms = fi->write_mean_ms = NAN;
    char err[256];
    raw_conn *rc = raw_open(err, sizeof err);
    if (rc) {
        char dir[160], p[200];
        snprintf(dir, sizeof dir, "%s/fsync", g_root);
        raw_mkpath(rc->zh, dir);
        lat_t l = {0};
        double sum = 0;
        for (int i = 0; i < n; i++) {
            snprintf(p, sizeof p, "%s/n%d", dir, i);
            double t0 = now_ms();
            if (zoo_create(rc->zh, p, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) != ZOK)
                break;
            double t1 = now_ms();
            if (zoo_delete(rc->zh, p, -1) != ZOK)
                break;
            double t2 = now_ms();
            lat_push(&l, t1 - t0);
            lat_push(&l, t2 - t1);
            sum += t2 - t0;
        }
        fi->writes = (int)l.n;
        if (l.n) {
            fi->write_mean_ms = sum / (double)l.n;
            fi->write_p50_ms = lat_pct(&l, 50);
        }
        lat_free(&l);
        raw_close(rc);
    }
    mntr_fsync(fi);
}

void fsync_json(sb *b, const fsync_info *fi)
{
    sb o = {0};
    kv_str(&o, "method",
           "client-side: sequential create+delete of a persistent node, one raw session (each write = leader "
           "fsync + quorum); server-side: mntr zk_avg/max_fsynctime per server, cumulative since start");
    kv_num(&o, "write_p50_ms", fi->write_p50_ms);
    kv_num(&o, "write_mean_ms", fi->write_mean_ms);
    kv_num(&o, "writes", fi->writes);
    sb a = {0};
    sb_printf(&a, "[");
    for (int i = 0; i < fi->nservers; i++) {
        sb_printf(&a, "%s{\"state\": ", i ? ", " : "");
        sb_jstr(&a, fi->state[i]);
        sb_printf(&a, ", \"avg_ms\": ");
        sb_jnum(&a, fi->avg[i]);
        sb_printf(&a, ", \"max_ms\": ");
        sb_jnum(&a, fi->max[i]);
        sb_printf(&a, ", \"count\": %ld}", fi->cnt[i]);
    }
    sb_printf(&a, "]");
    kv_raw(&o, "mntr_fsynctime", sb_str(&a));
    sb_printf(b, "{%s}", sb_str(&o));
    sb_free(&a);
    sb_free(&o);
}

void fsync_text(char *out, size_t len, const fsync_info *fi)
{
    int off = snprintf(out, len, "write p50 %.2f ms, mean %.2f ms (%d raw persistent writes)", fi->write_p50_ms,
                       fi->write_mean_ms, fi->writes);
    for (int i = 0; i < fi->nservers && off < (int)len; i++)
        off += snprintf(out + off, len - (size_t)off, "%s%s avg %.2f max %.0f ms", i ? ", " : "; mntr fsync: ",
                        fi->state[i], fi->avg[i], fi->max[i]);
}
