/* The child supervisor shared by 'zkcoord lock' and 'zkcoord elect'
 * (cli/supervise.c): run a command only while something is held (a lock, a
 * term of leadership) and stop it the moment the hold is lost. */
#ifndef ZKCOORD_SUPERVISE_H
#define ZKCOORD_SUPERVISE_H

#include "cli.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>

/* What the library's callbacks (dispatch thread) tell the supervisor: the
 * grant, then hold events. Event codes are those of zkc_lock_event and
 * zkc_election_event, which agree. */
enum { HOLD_SUSPENDED = 1, HOLD_RECONNECTED = 2, HOLD_LOST = 3 };

typedef struct hold_events {
    int wake_w; /* self-pipe write end: one byte = "look at the flags" */
    atomic_int granted_done;
    int status;
    int64_t token;
    char errmsg[512];
    atomic_int suspended, reconnected, lost; /* event counters */
    atomic_int last_event;                   /* the latest HOLD_* */
} hold_events;

/* Dispatch thread: the grant's outcome; a hold event. */
void hold_granted(hold_events *x, int status, int64_t token);
void hold_event(hold_events *x, int ev);

/* A step's "go on"; anything else is the exit status. */
enum { GO_ON = -1 };

typedef struct supervisor {
    /* set by the subcommand */
    char what[600];          /* "lock /a", "leadership of /a": for messages */
    const char *path;
    const char *path_env;    /* "ZKC_LOCK_PATH=" or "ZKC_ELECTION_PATH=" */
    int grace_ms;            /* between SIGTERM and SIGKILL */
    int kill_on_suspend;
    char **command;          /* argv of COMMAND, inside our argv */
    char guard_node[ZKC_GUARD_PATH_MAX]; /* the hold's node, for ZKC_GUARD_NODE ("": none) */
    zkc_client_options copts;
    /* the supervisor's */
    sigset_t orig_mask; /* the mask COMMAND gets back */
    int sfd;            /* signalfd: the forwarded signals, SIGCHLD, SIGCONT */
    int pfd[2];         /* self-pipe that the library's callbacks write to */
    zkc_client *c;
    hold_events x;
    int held;
    pid_t pid;          /* COMMAND, leader of its own process group; -1: none */
    int tty;            /* the terminal handed to COMMAND, or -1 */
    char **env;
    int session_ms;
    int terminating, killed, seen_susp, seen_reco;
    int64_t kill_at, suspended_until; /* CLOCK_MONOTONIC ms; 0: not set */
} supervisor;

void sup_init(supervisor *s);

/* The options every supervised subcommand has; its table lists SUP_OPTS. */
enum { SUP_GRACE = 100, SUP_KILL_SUSPEND };
#define SUP_OPTS {"kill-on-suspend", 0, 0, SUP_KILL_SUSPEND}, {"grace", 0, 1, SUP_GRACE}
/* Parse the subcommand's line: its own options go to own(id, a, ud) (0, or
 * an exit status); PATH, COMMAND and SUP_OPTS are ours. GO_ON, or the exit
 * status (ZX_OK after --help). `cmd` names the subcommand in messages. */
int sup_parse(supervisor *s, int argc, char **argv, const optdef *opts, const char *cmd, void (*help)(FILE *f),
              int (*own)(int id, const args *a, void *ud), void *ud);

/* Wait for hold_granted; a forwarded signal calls cancel(ud) (either the
 * grant wins, then s->held is set, or nothing is held) and returns 128+sig.
 * ZKC_ETIMEDOUT: busy(ud) says so, ZX_BUSY. Another error: its message, its
 * exit status. A hold lost at once: ZX_LOST. GO_ON once held. */
int sup_wait_grant(supervisor *s, void (*cancel)(void *ud), void (*busy)(void *ud), void *ud);
/* The whole run: block the handled signals in every thread, connect (in a
 * helper thread, so ^C works meanwhile), take(ud) (GO_ON once held, using
 * sup_wait_grant and sup_granted; else the exit status), run COMMAND in its
 * own process group with ZKC_FENCING_TOKEN and path_env in its environment,
 * supervise it (forward signals, act on hold events, reap), take the terminal
 * back, then end(ud, give_back): give back the hold if give_back, and free
 * the subcommand's objects. Still held with no server reachable: nothing can
 * be given back; exits at once (the servers end the session and its node).
 * Returns the exit status: COMMAND's, or the failing step's. */
int sup_run(supervisor *s, int (*take)(void *ud), void (*end)(void *ud, int give_back), void *ud);

#endif
