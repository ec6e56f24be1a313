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
/* Wait for hold_granted; a forwarded signal calls cancel(ud) (either the
 * grant wins, then s->held is set, or nothing is held) and returns 128+sig. */
int sup_wait_grant(supervisor *s, void (*cancel)(void *ud), void *ud);
/* After a grant: GO_ON, or ZX_LOST when the hold was lost at once. */
int sup_granted(supervisor *s);
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
