/* Real-ZooKeeper test harness: start and control an ensemble from C tests.
 *
 * Backends, chosen by env ZKH_BACKEND:
 *   local    (default) java processes on loopback ports, killed when the test dies;
 *   docker   docker/ensemble.sh (env ZKH_DOCKER_SCRIPT overrides its location);
 *   external env ZKC_HOSTS names a running ensemble; control functions return -ENOTSUP.
 *
 * Node indexes are 0-based. Functions returning int give 0 (or a count) on
 * success and -errno on failure. An ensemble handle is meant to be driven by
 * one thread at a time; zkh_four_letter and zkh_expire_session are stateless.
 *
 * Other env: ZK_HOME (use $ZK_HOME/lib/\* instead of Debian's jar), ZKH_JAVA
 * (java binary), ZKH_JVM_FLAGS (extra JVM flags), ZKH_SERVER_HEAP_MB (local
 * servers' -Xmx, 1024), ZKH_FORCE_SNAP_SYNC=0 (let
 * local servers sync followers by DIFF: Debian's 3.8.0 then loses txns, see
 * docker/README.md), ZKH_LOG_LEVEL (server log
 * level, WARN), ZKH_KEEP=1 (keep temp dirs), ZKH_START_TIMEOUT_MS (60000),
 * ZKH_DOCKER_UP_TIMEOUT_S (600). The docker backend drives one ensemble
 * (one compose project) at a time.
 *
 * Local servers get PR_SET_PDEATHSIG: they die with the *thread* that
 * started them (zkh_ensemble_start, zkh_node_start), so call those from a
 * thread that lives as long as the ensemble (normally the main thread).
 *
 * Under Check's fork mode an ensemble started in the parent (e.g. zkh_shared()
 * in main) is usable read-only from the test children: only the process that
 * started it stops it at exit. Tests that inject faults should start their own
 * ensemble inside the test function.
 */
#ifndef ZKH_ENSEMBLE_H
#define ZKH_ENSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkh_ensemble zkh_ensemble;

typedef struct zkh_options {
    int nodes;                  /* 1 or 3 (default 3); up to 7 on the local backend */
    int tick_ms;                /* default 200 */
    int max_client_cnxns;       /* default 1000 */
    int fsync;                  /* 0: forceSync=no (tests); 1: real fsync (bench) */
    const char *base_dir;       /* NULL: mkdtemp under $TMPDIR (removed at stop) */
    int min_session_timeout_ms; /* 0 = server default (2 ticks) */
    int max_session_timeout_ms; /* 0 = server default (20 ticks) */
} zkh_options;

void zkh_options_init(zkh_options *o);

/* Waits until every node answers `srvr` and a leader exists (60 s at most);
 * on failure prints the reason and the tail of the node's log to stderr. */
int zkh_ensemble_start(zkh_ensemble **out, const zkh_options *o);
/* Kills everything and removes the temp dir (kept, and its path printed, when
 * env ZKH_KEEP=1). A user-supplied base_dir is never removed. NULL is a no-op. */
void zkh_ensemble_stop(zkh_ensemble *e);

const char *zkh_ensemble_hosts(zkh_ensemble *e); /* "127.0.0.1:p1,127.0.0.1:p2,..." */
const char *zkh_node_hostport(zkh_ensemble *e, int i);
int zkh_node_count(zkh_ensemble *e);
const char *zkh_ensemble_dir(zkh_ensemble *e); /* local backend: base dir, else NULL */
int zkh_can_control(zkh_ensemble *e);          /* 0 on the external backend */
int zkh_ci(void);                              /* 1 when env CI=true: skips must fail */

int zkh_node_stop(zkh_ensemble *e, int i);  /* SIGTERM, wait for exit (bounded) */
int zkh_node_start(zkh_ensemble *e, int i); /* same data dir and ports; no wait */
int zkh_node_kill9(zkh_ensemble *e, int i);
int zkh_node_pause(zkh_ensemble *e, int i);  /* SIGSTOP */
int zkh_node_resume(zkh_ensemble *e, int i); /* SIGCONT */
int zkh_node_disconnect(zkh_ensemble *e, int i); /* docker only, else -ENOTSUP */
int zkh_node_connect(zkh_ensemble *e, int i);    /* docker only, else -ENOTSUP */
int zkh_node_running(zkh_ensemble *e, int i);    /* 1 started and not paused/stopped */

int zkh_leader(zkh_ensemble *e); /* index whose srvr says leader/standalone, or -1 */
int zkh_wait_quorum(zkh_ensemble *e, int timeout_ms); /* 0 or -ETIMEDOUT */

/* Raw four-letter word. Returns bytes stored in buf (NUL-terminated,
 * truncated to len-1) or -errno (-ETIMEDOUT when the server stays silent). */
int zkh_four_letter(const char *hostport, const char *cmd, char *buf, size_t len,
                    int timeout_ms);
long zkh_watch_count(zkh_ensemble *e); /* sum of `wchs` totals, or -errno */
/* Concatenated `wchp` output of all running nodes (malloc'd, caller frees). */
int zkh_watches_by_path(zkh_ensemble *e, char **text);

/* Opens a second handle with the same session id and password, waits until it
 * is connected, then closes it: the server ends the session, and the original
 * handle sees ZOO_EXPIRED_SESSION_STATE once it talks to a server again. The
 * end is verified (a further handle on the id must be refused as expired); a
 * close that lost the race with the original client taking its session back
 * is repeated, a bounded number of times. 0 verified expired; -ESTALE if the
 * session was already gone; -EAGAIN if it kept surviving the close. */
int zkh_expire_session(const char *hosts, int64_t session_id, const char *passwd,
                       int passwd_len, int timeout_ms);

/* One ensemble per process, started on first use and stopped at exit.
 * Env: ZKH_NODES (3), ZKH_TICK_MS, ZKH_MIN_SESSION_TIMEOUT_MS,
 * ZKH_MAX_SESSION_TIMEOUT_MS. NULL (and a message) if it cannot start. */
zkh_ensemble *zkh_shared(void);

/* ---- for the zk-ensemble command (local backend only) ---- */
/* Servers survive the caller (no parent-death signal, own session); state and
 * pids are recorded in o->base_dir, which is required. */
int zkh_ensemble_start_detached(zkh_ensemble **out, const zkh_options *o);
/* Re-open an ensemble recorded in dir by zkh_ensemble_start_detached. */
int zkh_ensemble_attach(zkh_ensemble **out, const char *dir);
/* Free the handle, leave the servers running. */
void zkh_ensemble_release(zkh_ensemble *e);

#ifdef __cplusplus
}
#endif
#endif
