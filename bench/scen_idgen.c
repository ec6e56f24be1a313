/* idgen: ids per second for 64 threads of one session, zkc_idgen_next against
 * the exactly-once counter used directly (one zkc_counter_add of 1 per id, the
 * way an order number is taken without block leases). Both sides use the
 * library; the "floor" here is the naive use, so the ratio is the speed-up of
 * leasing blocks. Each library thread checks that its ids increase. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int op_idgen_next(worker *w)
{
    int64_t id = 0;
    int rc = zkc_idgen_next(w->obj, 10000, &id);
    if (rc == ZKC_ETIMEDOUT)
        return OP_FAIL;
    if (rc)
        return lib_err(w, rc, "zkc_idgen_next");
    if (id <= w->val) {
        snprintf(w->err, sizeof w->err, "id %lld after %lld on one thread", (long long)id, (long long)w->val);
        return -1;
    }
    w->val = id;
    return OP_OK;
}

void sc_idgen(report *rep)
{
    const int threads_full = 64, threads_quick = 16;
    int nt = SCN(threads);
    params_common(rep, 1, nt);
    kv_num(&rep->params, "first_block", 100);
    rep->floor_what = "zkc_counter_add of 1 per id, same session and threads (the exactly-once counter used directly)";
    char gp[160], cp[160];
    snprintf(gp, sizeof gp, "%s/idgen/ids", g_root);
    snprintf(cp, sizeof cp, "%s/idgen/counter", g_root);
    zkc_client *c = NULL;
    zkc_idgen *g = NULL;
    zkc_counter *ctr = NULL;
    worker *wl = calloc((size_t)nt, sizeof *wl), *wf = calloc((size_t)nt, sizeof *wf);
    if (!wl || !wf) {
        rep_fail(rep, "out of memory");
        goto out;
    }
    for (int i = 0; i < nt; i++) {
        worker_init(&wl[i], i, op_idgen_next, NULL, NULL);
        worker_init(&wf[i], i, op_counter_add, NULL, NULL);
    }
    if (!(c = setup_client(rep)))
        goto out;
    if (zkc_idgen_create(c, gp, NULL, &g) || zkc_counter_create(c, cp, NULL, &ctr)) {
        rep_fail(rep, "create: %s", zkc_errmsg());
        goto out;
    }
    for (int i = 0; i < nt; i++) {
        wl[i].obj = g;
        wf[i].obj = ctr;
    }
    warm(rep, &wl[0], "library");
    warm(rep, &wf[0], "floor");
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++)
        if (run_side(rep, &rep->lib, wl, nt, opt.seconds, &c, 1) || run_side(rep, &rep->fl, wf, nt, opt.seconds, &c, 1))
            break;
    if (rep_ok(rep)) {
        double multis = (double)rep->lib.req[ZKC_REQ_MULTI];
        kv_num(&rep->extra, "ids_per_lease", multis > 0 ? (double)rep->lib.ops_all / multis : NAN);
    }
out:
    zkc_idgen_destroy(g);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    if (wl)
        for (int i = 0; i < nt; i++)
            worker_fini(&wl[i]);
    if (wf)
        for (int i = 0; i < nt; i++)
            worker_fini(&wf[i]);
    free(wl);
    free(wf);
}
