/* Election scenario: election_handoffs, 8 sessions taking terms of one
 * election in turn (lead, then resign at once). A term costs what a lock
 * hand-off costs, plus the read of our own node that checks its owner session
 * before leadership is granted (see lib/election.c); the floor is the raw
 * hand-off of lock_contended, so the ratio shows what that check and the
 * library cost. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static int op_election_term(worker *w)
{
    zkc_election *e = w->obj;
    int rc = zkc_election_lead(e, LOCK_TIMEOUT_MS, NULL);
    if (rc)
        return lib_err(w, rc, "zkc_election_lead");
    if ((rc = zkc_election_resign(e)) != 0)
        return lib_err(w, rc, "zkc_election_resign");
    return OP_OK;
}

void sc_election_handoffs(report *rep)
{
    enum { SESSIONS = 8 };
    char libp[160], rawp[160];
    snprintf(libp, sizeof libp, "%s/el/lib", g_root);
    snprintf(rawp, sizeof rawp, "%s/el/raw", g_root);
    params_common(rep, SESSIONS, SESSIONS);
    rep->floor_what = "8 raw sessions: create, getChildren, get+watch predecessor, wait, delete";
    raw_conn *setup = NULL, *rcs[SESSIONS] = {0};
    zkc_client *cs[SESSIONS] = {0};
    zkc_election *es[SESSIONS] = {0};
    worker wl[SESSIONS], wf[SESSIONS];
    for (int i = 0; i < SESSIONS; i++) {
        worker_init(&wl[i], i, op_election_term, NULL, NULL);
        worker_init(&wf[i], i, op_raw_lock_handoff, NULL, NULL);
    }
    if (!(setup = setup_raw(rep)))
        goto out;
    if (raw_mkpath(setup->zh, libp) || raw_mkpath(setup->zh, rawp)) {
        rep_fail(rep, "cannot create %s", libp);
        goto out;
    }
    for (int i = 0; i < SESSIONS; i++) {
        char id[32];
        snprintf(id, sizeof id, "bench-%d", i);
        if (!(cs[i] = setup_client(rep)) || !(rcs[i] = setup_raw(rep)))
            goto out;
        if (zkc_election_create(cs[i], libp, id, NULL, 0, &es[i])) {
            rep_fail(rep, "zkc_election_create: %s", zkc_errmsg());
            goto out;
        }
        wl[i].obj = es[i];
        wf[i].obj = rcs[i];
        snprintf(wf[i].path, sizeof wf[i].path, "%s", rawp);
    }
    warm(rep, &wl[0], "library");
    warm(rep, &wf[0], "floor");
    for (int r = 0; r < opt.rounds && rep_ok(rep); r++)
        if (run_side(rep, &rep->lib, wl, SESSIONS, opt.seconds, cs, SESSIONS) ||
            run_side(rep, &rep->fl, wf, SESSIONS, opt.seconds, NULL, 0))
            break;
out:
    for (int i = 0; i < SESSIONS; i++) {
        zkc_election_destroy(es[i]);
        zkc_client_destroy(cs[i]);
        raw_close(rcs[i]);
        worker_fini(&wl[i]);
        worker_fini(&wf[i]);
    }
    raw_close(setup);
}
