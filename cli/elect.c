/* zkcoord elect: stand in the leader election at PATH and run a command only
 * while leader, for singletons (one reaper, one importer). This file parses
 * the command line, stands, and resigns; running and supervising the command
 * (signals, the process group, LOST and SUSPENDED) is the shared supervisor's
 * (cli/supervise.c), as for 'zkcoord lock'. */
#include "supervise.h"

#include <unistd.h>

void help_elect(FILE *f)
{
    fprintf(f,
            "usage: zkcoord elect [options] PATH [--] COMMAND [ARGS...]\n"
            "\n"
            "Stand in the leader election at PATH (parent nodes are created on demand),\n"
            "wait to be elected, run COMMAND in its own process group while leader, resign\n"
            "when COMMAND exits, and exit with COMMAND's status (128+N if a signal N killed\n"
            "it). Participants are served in the order they stood; zkcoord and Curator's\n"
            "LeaderLatch share one election at one path.\n"
            "\n"
            "COMMAND's environment gets ZKC_FENCING_TOKEN (the term's token, larger for\n"
            "every later term: pass it with every write to a protected resource, which\n"
            "must refuse tokens smaller than the largest it has seen), ZKC_ELECTION_PATH and\n"
            "ZKC_GUARD_NODE (the term's node: 'zkcoord counter add --guard \"$ZKC_GUARD_NODE\"'\n"
            "writes only while the term lasts).\n"
            "\n"
            "If leadership is LOST while COMMAND runs (session expired or presumed expired,\n"
            "or our node deleted), COMMAND's process group gets SIGTERM, then SIGKILL after\n"
            "the grace period, and zkcoord exits with status 6; the library reports LOST\n"
            "before the servers can let another participant lead. A connection that stays\n"
            "down (SUSPENDED) for a whole session timeout counts as LOST. SIGINT, SIGTERM,\n"
            "SIGHUP and SIGQUIT sent to zkcoord go to the process group.\n"
            "\n"
            "Options:\n"
            "  --id ID              participant id others read as the leader's\n"
            "                       (default: HOSTNAME:PID)\n"
            "  --data D             data stored with the id (an address, say)\n"
            "  -t, --timeout S      wait at most S seconds (fractional) to be elected;\n"
            "                       0: lead at once or fail; default: as long as it takes.\n"
            "                       Not elected: exit 3.\n"
            "  --kill-on-suspend    also terminate COMMAND when the connection drops\n"
            "                       (SUSPENDED: leadership may be lost), for commands that\n"
            "                       must never run in doubt; exit status 6\n"
            "  --grace S            seconds between SIGTERM and SIGKILL (default 5)\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Example:\n"
            "  zkcoord --hosts zk1:2181 elect --id reaper-$(hostname) /orders/reaper -- ./reap.sh\n");
}

enum { E_ID = 1, E_DATA, E_TIMEOUT };

static const optdef elect_opts[] = {
    {"id", 0, 1, E_ID},
    {"data", 0, 1, E_DATA},
    {"timeout", 't', 1, E_TIMEOUT},
    SUP_OPTS,
    {NULL, 0, 0, 0},
};

typedef struct elect_job {
    supervisor s;
    const char *id;
    const char *data;
    int timeout_ms;
    char default_id[300];
    zkc_election *e;
} elect_job;

static int elect_opt(int id, const args *a, void *ud)
{
    elect_job *j = ud;
    switch (id) {
    case E_ID: j->id = a->val; break;
    case E_DATA: j->data = a->val; break;
    case E_TIMEOUT: return parse_seconds(a->val, "--timeout", &j->timeout_ms) ? ZX_USAGE : 0;
    }
    return 0;
}

static int elect_parse(int argc, char **argv, elect_job *j)
{
    supervisor *s = &j->s;
    j->timeout_ms = ZKC_FOREVER;
    int ex = sup_parse(s, argc, argv, elect_opts, "elect", help_elect, elect_opt, j);
    if (ex != GO_ON)
        return ex;
    if (j->id && !*j->id) {
        msg("--id must not be empty");
        return ZX_USAGE;
    }
    if (!j->id) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        snprintf(j->default_id, sizeof j->default_id, "%s:%ld", host, (long)getpid());
        j->id = j->default_id;
    }
    snprintf(s->what, sizeof s->what, "leadership of %s", s->path);
    s->path_env = "ZKC_ELECTION_PATH=";
    return GO_ON;
}

/* Dispatch thread. */
static void on_led(zkc_election *e, int status, int64_t token, void *ud)
{
    (void)e;
    hold_granted(ud, status, token);
}

/* Dispatch thread. */
static void on_event(zkc_election *e, zkc_election_event ev, void *ud)
{
    (void)e;
    hold_event(ud, (int)ev);
}

static void cancel_lead(void *ud)
{
    zkc_election_cancel(((elect_job *)ud)->e);
}

/* Not elected in time: say who leads. */
static void busy(void *ud)
{
    elect_job *j = ud;
    const char *path = j->s.path;
    if (j->timeout_ms == 0)
        msg("election %s: not leader (--timeout 0: not waiting)", path);
    else
        msg("election %s: not elected within %.3g s", path, j->timeout_ms / 1000.0);
    zkc_election_leader_info in;
    if (zkc_election_leader(j->s.c, path, &in))
        return;
    msg("%s is led by '%s' (session 0x%" PRIx64 ", term token %" PRId64 ")", path, in.participant_id,
        (uint64_t)in.session_id, in.token);
    zkc_election_leader_free(&in);
}

static int elect_stand(elect_job *j)
{
    supervisor *s = &j->s;
    const char *path = s->path;
    int rc = zkc_election_create(s->c, path, j->id, j->data, j->data ? (int)strlen(j->data) : 0, &j->e);
    if (rc)
        return fail_lib(rc, zkc_errmsg(), "election %s", path);
    zkc_election_set_listener(j->e, on_event, &s->x);
    s->x.wake_w = s->pfd[1];
    if ((rc = zkc_election_lead_async(j->e, j->timeout_ms, on_led, &s->x)))
        return fail_lib(rc, zkc_errmsg(), "election %s: cannot stand", path);
    int ex = sup_wait_grant(s, cancel_lead, busy, j);
    zkc_guard gd;
    if (ex == GO_ON && zkc_election_guard(j->e, &gd) == 0) /* else (lost already): no ZKC_GUARD_NODE */
        snprintf(s->guard_node, sizeof s->guard_node, "%s", gd.path);
    return ex;
}

static int take(void *ud)
{
    return elect_stand(ud);
}

static void end(void *ud, int give_back)
{
    elect_job *j = ud;
    if (give_back) {
        int rc = zkc_election_resign(j->e);
        if (rc && rc != ZKC_ENOTHELD)
            fail_lib(rc, zkc_errmsg(), "warning: election %s: resign failed (the node goes with the session)",
                     j->s.path);
    }
    if (j->e) {
        zkc_election_set_listener(j->e, NULL, NULL);
        zkc_election_destroy(j->e);
    }
}

int cmd_elect(int argc, char **argv)
{
    elect_job j = {.e = NULL};
    sup_init(&j.s);
    int ex = elect_parse(argc, argv, &j);
    if (ex != GO_ON)
        return ex;
    if ((ex = client_options(&j.s.copts)))
        return ex;
    return sup_run(&j.s, take, end, &j);
}
