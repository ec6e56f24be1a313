/* Real-ZooKeeper ensembles for tests: local java processes, docker, or external. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ensemble.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#define ZKH_MAX_NODES 7
#define START_TIMEOUT_MS start_timeout_ms() /* 60 s, env ZKH_START_TIMEOUT_MS */
#define START_ATTEMPTS 3 /* a free port can be taken by someone else before java binds it */
#define STOP_TIMEOUT_MS 20000
#define ZKH_DIR_MAX 2048 /* leaves room below PATH_MAX for the files inside */

enum backend { BK_LOCAL, BK_DOCKER, BK_EXTERNAL };

struct node {
    int client_port, quorum_port, election_port;
    pid_t pid; /* local: 0 when not running */
    int up;    /* started by us and not stopped or killed */
    int paused;
    char dir[ZKH_DIR_MAX + 64];
    char hostport[256];
};

struct zkh_ensemble {
    int backend;
    zkh_options opt;
    char base[ZKH_DIR_MAX];
    int own_base;  /* mkdtemp'd by us: removed at stop */
    int keep_base; /* ZKH_KEEP=1 at stop */
    int detached;  /* servers outlive this process */
    pid_t owner;   /* only this process stops it at exit (Check forks children) */
    int n;
    struct node nodes[ZKH_MAX_NODES];
    char hosts[ZKH_MAX_NODES * 140];
    char script[PATH_MAX];
    char user_base[PATH_MAX]; /* options' base_dir, copied */
    struct zkh_ensemble *next;
};

/* ------------------------------------------------------------------ utils */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || x < 0 || x > INT_MAX) ? def : (int)x;
}

static int start_timeout_ms(void)
{
    int v = env_int("ZKH_START_TIMEOUT_MS", 60000);
    return v > 0 ? v : 60000;
}

static int env_true(const char *name)
{
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

static int write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int write_file(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    if (fclose(f) != 0)
        return -errno;
    return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(p);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Prints the last `lines` lines of a log: the usual reason a node did not come up. */
static void print_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "zkh:   (no log at %s: %s)\n", path, strerror(errno));
        return;
    }
    char buf[16384];
    long sz = 0;
    if (fseek(f, 0, SEEK_END) == 0)
        sz = ftell(f);
    long from = sz > (long)sizeof buf - 1 ? sz - (long)sizeof buf + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = buf + n;
    int seen = 0;
    while (p > buf) {
        if (p[-1] == '\n' && p != buf + n && ++seen > lines)
            break;
        p--;
    }
    if (!n) {
        fprintf(stderr, "zkh:   (%s is empty)\n", path);
        return;
    }
    fprintf(stderr, "zkh: ---- last lines of %s ----\n%s%s", path, p,
            (n && buf[n - 1] != '\n') ? "\n" : "");
    fprintf(stderr, "zkh: ---- end of %s ----\n", path);
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ------------------------------------------------------------- networking */

static int split_hostport(const char *hp, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon;
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        if ((size_t)(rb - hp - 1) >= hl)
            return -EINVAL;
        memcpy(host, hp + 1, rb - hp - 1);
        host[rb - hp - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon || (size_t)(colon - hp) >= hl)
            return -EINVAL;
        memcpy(host, hp, colon - hp);
        host[colon - hp] = 0;
    }
    size_t len = strcspn(colon + 1, ",/");
    if (!len || len >= pl)
        return -EINVAL;
    memcpy(port, colon + 1, len);
    port[len] = 0;
    return 0;
}

/* Non-blocking connect bounded by timeout_ms: a paused server still completes
 * the TCP handshake (the kernel does it), but one that is gone must not hang us. */
static int tcp_connect(const char *hostport, int timeout_ms)
{
    char host[256], port[16];
    if (split_hostport(hostport, host, sizeof host, port, sizeof port))
        return -EINVAL;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -EHOSTUNREACH;
    int err = -ECONNREFUSED;
    long long deadline = now_ms() + timeout_ms;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        if (errno != EINPROGRESS) {
            err = -errno;
            close(fd);
            continue;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int left = (int)(deadline - now_ms());
        int r = left > 0 ? poll(&pfd, 1, left) : 0;
        if (r == 1) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            if (!soerr) {
                freeaddrinfo(res);
                return fd;
            }
            err = -soerr;
        } else {
            err = -ETIMEDOUT;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return err;
}

/* Sends a four-letter word and collects the whole reply (the server closes). */
static int fourlw_alloc(const char *hostport, const char *cmd, char **out, size_t *outlen,
                        int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int fd = tcp_connect(hostport, timeout_ms);
    if (fd < 0)
        return fd;
    size_t cl = strlen(cmd), sent = 0;
    while (sent < cl) {
        ssize_t w = send(fd, cmd + sent, cl - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int left = (int)(deadline - now_ms());
            if (left > 0 && poll(&pfd, 1, left) > 0)
                continue;
            close(fd);
            return -ETIMEDOUT;
        }
        int e = w < 0 ? -errno : -EIO;
        close(fd);
        return e;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= (64u << 20)) /* bounded: wchp on a huge server */
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLIN, 0};
            int left = (int)(deadline - now_ms());
            if (left > 0 && poll(&pfd, 1, left) > 0)
                continue;
            free(buf);
            close(fd);
            return -ETIMEDOUT;
        }
        int e = -errno;
        free(buf);
        close(fd);
        /* A reset after a complete reply is still a reply. */
        return e;
    }
    close(fd);
    buf[len] = 0;
    *out = buf;
    if (outlen)
        *outlen = len;
    return 0;
}

int zkh_four_letter(const char *hostport, const char *cmd, char *buf, size_t len,
                    int timeout_ms)
{
    if (!hostport || !cmd || !buf || !len)
        return -EINVAL;
    char *text;
    size_t tl;
    int r = fourlw_alloc(hostport, cmd, &text, &tl, timeout_ms);
    if (r < 0) {
        buf[0] = 0;
        return r;
    }
    if (tl >= len)
        tl = len - 1;
    memcpy(buf, text, tl);
    buf[tl] = 0;
    free(text);
    return (int)tl;
}

enum { MODE_NOT_SERVING = 0, MODE_LEADER, MODE_FOLLOWER, MODE_STANDALONE, MODE_OBSERVER };

/* -errno if no answer, else a MODE_*. */
static int srvr_mode(const char *hostport, int timeout_ms, char *reply, size_t rlen)
{
    char buf[2048];
    int r = zkh_four_letter(hostport, "srvr", buf, sizeof buf, timeout_ms);
    if (reply && rlen) {
        if (r < 0)
            snprintf(reply, rlen, "no answer: %s", strerror(-r));
        else {
            size_t n = strlen(buf) < rlen - 1 ? strlen(buf) : rlen - 1;
            memcpy(reply, buf, n); /* a truncated reply is fine for a message */
            reply[n] = 0;
        }
    }
    if (r < 0)
        return r;
    const char *m = strstr(buf, "Mode: ");
    if (!m)
        return MODE_NOT_SERVING; /* "not currently serving requests" */
    m += 6;
    if (!strncmp(m, "leader", 6))
        return MODE_LEADER;
    if (!strncmp(m, "standalone", 10))
        return MODE_STANDALONE;
    if (!strncmp(m, "follower", 8))
        return MODE_FOLLOWER;
    if (!strncmp(m, "observer", 8))
        return MODE_OBSERVER;
    return MODE_NOT_SERVING;
}

/* ------------------------------------------------------------- processes */

/* True once pid has exited. Works for our children (reaps them) and for
 * detached servers we did not fork (a zombie counts as gone). */
static int proc_gone_noreap(pid_t pid);

static int proc_gone(pid_t pid)
{
    if (pid <= 0)
        return 1;
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
        return 1;
    if (r == 0)
        return 0;
    return proc_gone_noreap(pid);
}

/* Never reaps: safe on pids that may be someone else's children. */
static int proc_gone_noreap(pid_t pid)
{
    if (pid <= 0)
        return 1;
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *rp = strrchr(line, ')');
    if (!rp || rp[1] != ' ')
        return 0;
    return rp[2] == 'Z' || rp[2] == 'X';
}

/* Guards against pid reuse before signalling a server recorded in a state file. */
static int pid_runs_cfg(pid_t pid, const char *cfg)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    buf[n] = 0;
    return strstr(buf, cfg) != NULL && strstr(buf, "QuorumPeerMain") != NULL;
}

/* kill() returns before a JVM's threads have all stopped: a request that
 * arrives in that window still gets answered. 1 if every thread is stopped. */
static int all_threads_stopped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int all = 1, any = 0;
    struct dirent *de;
    while (all && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char sp[128], line[512];
        snprintf(sp, sizeof sp, "/proc/%d/task/%.20s/stat", (int)pid, de->d_name);
        int fd = open(sp, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* thread exited meanwhile */
        ssize_t n = read(fd, line, sizeof line - 1);
        close(fd);
        if (n <= 0)
            continue;
        line[n] = 0;
        char *rp = strrchr(line, ')');
        if (rp && rp[1] == ' ') {
            any = 1;
            all = rp[2] == 'T' || rp[2] == 't';
        }
    }
    closedir(d);
    return all && any;
}

static int wait_gone(pid_t pid, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (!proc_gone(pid)) {
        if (now_ms() > deadline)
            return -ETIMEDOUT;
        sleep_ms(20);
    }
    return 0;
}

/* Each server leads its own process group, so signal the group. */
static int signal_node(pid_t pid, int sig)
{
    if (kill(-pid, sig) == 0)
        return 0;
    if (kill(pid, sig) == 0)
        return 0;
    return -errno;
}

static void close_fds_from(int lowfd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
        return;
#endif
    for (int fd = lowfd; fd < 65536; fd++)
        close(fd);
}

/* ---------------------------------------------------------------- registry */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static zkh_ensemble *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_atexit(void)
{
    for (;;) {
        zkh_ensemble *victim = NULL;
        pthread_mutex_lock(&reg_mu);
        for (zkh_ensemble *e = reg_head; e; e = e->next)
            if (e->owner == getpid() && !e->detached) {
                victim = e;
                break;
            }
        pthread_mutex_unlock(&reg_mu);
        if (!victim)
            break;
        zkh_ensemble_stop(victim);
    }
}

static void reg_init(void) { atexit(reg_atexit); }

static void reg_add(zkh_ensemble *e)
{
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_mu);
    e->next = reg_head;
    reg_head = e;
    pthread_mutex_unlock(&reg_mu);
}

static void reg_del(zkh_ensemble *e)
{
    pthread_mutex_lock(&reg_mu);
    for (zkh_ensemble **pp = &reg_head; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

/* ------------------------------------------------------------ local backend */

void zkh_options_init(zkh_options *o)
{
    memset(o, 0, sizeof *o);
    o->nodes = 3;
    o->tick_ms = 200;
    o->max_client_cnxns = 1000;
}

/* Holds every socket open until all are bound so the ports are distinct. */
static int alloc_ports(int *ports, int count)
{
    int fds[3 * ZKH_MAX_NODES];
    int err = 0, i;
    for (i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {0};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof sa;
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &sl) != 0) {
            err = -errno;
            if (fds[i] >= 0)
                close(fds[i]);
            break;
        }
        ports[i] = ntohs(sa.sin_port);
    }
    while (i-- > 0)
        close(fds[i]);
    return err;
}

static void node_paths(zkh_ensemble *e, int i, const char *leaf, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", e->nodes[i].dir, leaf);
}

static void build_hosts(zkh_ensemble *e)
{
    e->hosts[0] = 0;
    size_t off = 0;
    for (int i = 0; i < e->n; i++)
        off += snprintf(e->hosts + off, sizeof e->hosts - off, "%s%s", i ? "," : "",
                        e->nodes[i].hostport);
}

static int write_node_files(zkh_ensemble *e, int i)
{
    struct node *nd = &e->nodes[i];
    const zkh_options *o = &e->opt;
    char path[PATH_MAX + 32], data[PATH_MAX + 16], log[PATH_MAX + 32];
    snprintf(data, sizeof data, "%s/data", nd->dir);
    snprintf(log, sizeof log, "%s/zookeeper.log", nd->dir);
    if (mkdir(nd->dir, 0755) && errno != EEXIST)
        return -errno;
    if (mkdir(data, 0755) && errno != EEXIST)
        return -errno;
    int r;
    snprintf(path, sizeof path, "%s/myid", data);
    if ((r = write_file(path, "%d\n", i + 1)))
        return r;

    /* Limits in ticks, sized in time: a loaded 2-core box syncs slowly. */
    int tick = o->tick_ms;
    int init_limit = (10000 + tick - 1) / tick, sync_limit = (5000 + tick - 1) / tick;
    if (init_limit < 10)
        init_limit = 10;
    if (sync_limit < 5)
        sync_limit = 5;
    char servers[ZKH_MAX_NODES * 64] = "", extra[256] = "";
    size_t off = 0;
    if (e->n > 1)
        for (int k = 0; k < e->n; k++)
            off += snprintf(servers + off, sizeof servers - off, "server.%d=127.0.0.1:%d:%d\n",
                            k + 1, e->nodes[k].quorum_port, e->nodes[k].election_port);
    off = 0;
    if (o->min_session_timeout_ms > 0)
        off += snprintf(extra + off, sizeof extra - off, "minSessionTimeout=%d\n",
                        o->min_session_timeout_ms);
    if (o->max_session_timeout_ms > 0)
        off += snprintf(extra + off, sizeof extra - off, "maxSessionTimeout=%d\n",
                        o->max_session_timeout_ms);
    snprintf(path, sizeof path, "%s/zoo.cfg", nd->dir);
    r = write_file(path,
                   "# written by the zkcoord test harness\n"
                   "tickTime=%d\ninitLimit=%d\nsyncLimit=%d\n"
                   "dataDir=%s\n"
                   "clientPort=%d\nclientPortAddress=127.0.0.1\n"
                   "maxClientCnxns=%d\n"
                   "forceSync=%s\n"
                   "4lw.commands.whitelist=*\n"
                   "admin.enableServer=false\n"
                   "%s"
                   "%s%s",
                   tick, init_limit, sync_limit, data, nd->client_port, o->max_client_cnxns,
                   o->fsync ? "yes" : "no", extra,
                   e->n > 1 ? "standaloneEnabled=false\nreconfigEnabled=false\n" : "", servers);
    if (r)
        return r;

    const char *level = getenv("ZKH_LOG_LEVEL");
    if (!level || !*level)
        level = "WARN";
    /* Debian's server logs through slf4j-log4j12; an upstream ZK_HOME through
     * logback: write both so either lands in the same per-node file. */
    snprintf(path, sizeof path, "%s/log4j.properties", nd->dir);
    r = write_file(path,
                   "log4j.rootLogger=%s, FILE\n"
                   "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
                   "log4j.appender.FILE.File=%s\n"
                   "log4j.appender.FILE.Append=true\n"
                   "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
                   "log4j.appender.FILE.layout.ConversionPattern=%%d{ISO8601} %%-5p [%%t:%%C{1}@%%L] - %%m%%n\n",
                   level, log);
    if (r)
        return r;
    snprintf(path, sizeof path, "%s/logback.xml", nd->dir);
    return write_file(path,
                      "<configuration>\n"
                      "  <appender name=\"FILE\" class=\"ch.qos.logback.core.FileAppender\">\n"
                      "    <file>%s</file><append>true</append>\n"
                      "    <encoder><pattern>%%d{ISO8601} %%-5p [%%t:%%C{1}@%%L] - %%m%%n</pattern></encoder>\n"
                      "  </appender>\n"
                      "  <root level=\"%s\"><appender-ref ref=\"FILE\"/></root>\n"
                      "</configuration>\n",
                      log, level);
}

static void java_classpath(char *cp, size_t len)
{
    const char *zk_home = getenv("ZK_HOME");
    if (zk_home && *zk_home) {
        /* The JVM expands a trailing "/" "*" to every jar in that dir. */
        snprintf(cp, len, "%s/conf:%s/lib/*:%s/*", zk_home, zk_home, zk_home);
        return;
    }
    size_t off = snprintf(cp, len, "/usr/share/java/zookeeper.jar");
    /* The Debian jar's manifest has slf4j-api but no binding: without one the
     * server logs nothing at all. */
    static const char *const opt[] = {"/usr/share/java/slf4j-log4j12.jar",
                                      "/usr/share/java/log4j-1.2.jar"};
    for (size_t k = 0; k < sizeof opt / sizeof opt[0]; k++)
        if (access(opt[k], R_OK) == 0 && off < len)
            off += snprintf(cp + off, len - off, ":%s", opt[k]);
}

static void java_path(char *out, size_t len)
{
    const char *j = getenv("ZKH_JAVA");
    if (j && *j) {
        snprintf(out, len, "%s", j);
        return;
    }
    const char *jh = getenv("JAVA_HOME");
    if (jh && *jh) {
        snprintf(out, len, "%s/bin/java", jh);
        if (access(out, X_OK) == 0)
            return;
    }
    snprintf(out, len, access("/usr/bin/java", X_OK) == 0 ? "/usr/bin/java" : "java");
}

static void write_state(zkh_ensemble *e);

/* Everything the child needs is prepared before fork(): after it only
 * async-signal-safe calls are allowed (tests have threads). */
static int spawn_node(zkh_ensemble *e, int i)
{
    struct node *nd = &e->nodes[i];
    char java[PATH_MAX], cp[3 * PATH_MAX], cfg[PATH_MAX + 16], log[PATH_MAX + 32];
    char l4j[PATH_MAX + 64], lbk[PATH_MAX + 64], logdir[PATH_MAX + 32];
    java_path(java, sizeof java);
    java_classpath(cp, sizeof cp);
    node_paths(e, i, "zoo.cfg", cfg, sizeof cfg);
    node_paths(e, i, "zookeeper.log", log, sizeof log);
    snprintf(l4j, sizeof l4j, "-Dlog4j.configuration=file:%s/log4j.properties", nd->dir);
    snprintf(lbk, sizeof lbk, "-Dlogback.configurationFile=%s/logback.xml", nd->dir);
    snprintf(logdir, sizeof logdir, "-Dzookeeper.log.dir=%s", nd->dir);

    const char *argv[64];
    int a = 0;
    argv[a++] = java;
    /* 1 GB: a soak's tree reaches ~460,000 nodes between key sweeps (8
     * workers); at 256 MB a server died of OutOfMemoryError 650 s into an
     * 8-worker soak, the first with full-snapshot syncs (below; which of the
     * two tipped it was not pinned down). ZKH_SERVER_HEAP_MB overrides. */
    char xmx[32];
    int heap_mb = env_int("ZKH_SERVER_HEAP_MB", 1024);
    snprintf(xmx, sizeof xmx, "-Xmx%dm", heap_mb >= 64 ? heap_mb : 1024);
    argv[a++] = xmx;
    argv[a++] = "-XX:+UseSerialGC";
    argv[a++] = "-XX:TieredStopAtLevel=1";
    argv[a++] = "-Xshare:auto";
    argv[a++] = "-XX:-UsePerfData";
    argv[a++] = "-XX:+ExitOnOutOfMemoryError";
    argv[a++] = "-Djava.net.preferIPv4Stack=true";
    argv[a++] = "-Dzookeeper.jmx.log4j.disable=true";
    /* Debian's ZooKeeper 3.8.0 drops transactions from a follower's log when a
     * DIFF sync is cut short by another fault; at its next restart the
     * follower replays a log with a hole and may lead with it, undoing
     * committed writes (docker/README.md, "ZooKeeper 3.8.0"). A full snapshot
     * on every sync leaves no hole. ZKH_FORCE_SNAP_SYNC=0 turns it off. */
    const char *fs = getenv("ZKH_FORCE_SNAP_SYNC");
    argv[a++] = fs && strcmp(fs, "0") == 0 ? "-Dzookeeper.forceSnapshotSync=false" : "-Dzookeeper.forceSnapshotSync=true";
    argv[a++] = l4j;
    argv[a++] = lbk;
    argv[a++] = logdir;
    char extra[1024] = "";
    const char *xf = getenv("ZKH_JVM_FLAGS");
    if (xf && *xf) {
        snprintf(extra, sizeof extra, "%s", xf);
        for (char *tok = strtok(extra, " \t"); tok && a < 56; tok = strtok(NULL, " \t"))
            argv[a++] = tok;
    }
    argv[a++] = "-cp";
    argv[a++] = cp;
    argv[a++] = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
    argv[a++] = cfg;
    argv[a] = NULL;

    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return -errno;
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0) {
        int err = -errno;
        close(logfd);
        return err;
    }
    int detached = e->detached;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(logfd);
        close(nullfd);
        return err;
    }
    if (pid == 0) {
        if (detached) {
            setsid();
        } else {
            setpgid(0, 0);
            /* Servers must never outlive the test, even on SIGKILL of it. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* The JVM skips its SIGTERM handler if the signal is inherited ignored. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD};
        for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
            sigaction(sigs[k], &dfl, NULL);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        /* Inherited sockets (a proxy's listener) would stay bound by java. */
        close_fds_from(3);
        execvp(argv[0], (char *const *)argv);
        static const char msg[] = "zkh: exec java failed\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    if (!detached)
        setpgid(pid, pid); /* also from here: no race with signalling the group */
    nd->pid = pid;
    nd->up = 1;
    nd->paused = 0;
    write_state(e);
    return 0;
}

static void kill_all_local(zkh_ensemble *e)
{
    for (int i = 0; i < e->n; i++)
        if (e->nodes[i].pid > 0)
            signal_node(e->nodes[i].pid, SIGKILL);
    for (int i = 0; i < e->n; i++)
        if (e->nodes[i].pid > 0) {
            wait_gone(e->nodes[i].pid, 10000);
            e->nodes[i].pid = 0;
            e->nodes[i].up = 0;
            e->nodes[i].paused = 0;
        }
}

static void write_state(zkh_ensemble *e)
{
    if (e->backend != BK_LOCAL || !e->base[0])
        return;
    char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/state", e->base);
    snprintf(tmp, sizeof tmp, "%s/state.tmp", e->base);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    /* owner/temp let a later run collect this dir if we die without cleanup. */
    fprintf(f, "zkh-state 1\nnodes %d\ntick %d\nfsync %d\nowner %d\ntemp %d\n", e->n,
            e->opt.tick_ms, e->opt.fsync, (int)(e->detached ? 0 : e->owner),
            e->own_base && !e->keep_base);
    for (int i = 0; i < e->n; i++) {
        struct node *nd = &e->nodes[i];
        fprintf(f, "node %d %d %d %d %d %d\n", i, (int)(nd->up ? nd->pid : 0), nd->client_port,
                nd->quorum_port, nd->election_port, nd->paused);
    }
    if (fclose(f) == 0)
        rename(tmp, path);
    for (int i = 0; i < e->n; i++) {
        char pidf[PATH_MAX + 16];
        snprintf(pidf, sizeof pidf, "%s/pid", e->nodes[i].dir);
        if (e->nodes[i].up && e->nodes[i].pid > 0)
            write_file(pidf, "%d\n", (int)e->nodes[i].pid);
        else
            unlink(pidf);
    }
}

/* Fails fast when a server dies; reports why each laggard is not ready. */
static int wait_ready_local(zkh_ensemble *e, int timeout_ms, int *bind_conflict)
{
    long long deadline = now_ms() + timeout_ms;
    char last[ZKH_MAX_NODES][256];
    memset(last, 0, sizeof last);
    *bind_conflict = 0;
    for (;;) {
        int serving = 0, leader = 0, dead = -1;
        for (int i = 0; i < e->n; i++) {
            struct node *nd = &e->nodes[i];
            if (proc_gone(nd->pid)) {
                dead = i;
                break;
            }
            int m = srvr_mode(nd->hostport, 1000, last[i], sizeof last[i]);
            if (m > 0)
                serving++;
            if (m == MODE_LEADER || m == MODE_STANDALONE)
                leader = 1;
        }
        if (dead < 0 && serving == e->n && leader)
            return 0;
        if (dead >= 0 || now_ms() > deadline) {
            char log[PATH_MAX + 32];
            for (int i = 0; i < e->n; i++) {
                node_paths(e, i, "zookeeper.log", log, sizeof log);
                if (file_contains(log, "Address already in use"))
                    *bind_conflict = 1;
            }
            if (*bind_conflict)
                return -EADDRINUSE;
            if (dead >= 0) {
                fprintf(stderr, "zkh: ZooKeeper node %d (%s) exited during startup\n", dead,
                        e->nodes[dead].hostport);
                node_paths(e, dead, "zookeeper.log", log, sizeof log);
                print_tail(log, 40);
                return -ECHILD;
            }
            fprintf(stderr, "zkh: ZooKeeper ensemble in %s not ready after %.1f s (no %s)\n",
                    e->base, timeout_ms / 1000.0, leader ? "full set of serving nodes" : "leader");
            for (int i = 0; i < e->n; i++) {
                int m = srvr_mode(e->nodes[i].hostport, 1000, last[i], sizeof last[i]);
                if (m > 0 && leader)
                    continue;
                char *nl = strchr(last[i], '\n');
                if (nl && !strstr(last[i], "Mode"))
                    *nl = 0;
                fprintf(stderr, "zkh: node %d (%s) srvr: %s\n", i, e->nodes[i].hostport,
                        m > 0 ? "serving" : last[i]);
                node_paths(e, i, "zookeeper.log", log, sizeof log);
                print_tail(log, 30);
            }
            return -ETIMEDOUT;
        }
        sleep_ms(100);
    }
}

/* Check's fork mode ends a failed test with _exit(): no atexit, so its temp
 * dir stays behind (the servers die by PDEATHSIG). Collect such dirs: ours
 * (state says temp), owner gone, no server alive. */
static void gc_stale_tempdirs(const char *tmp)
{
    if (env_true("ZKH_KEEP"))
        return;
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "zkh-", 4) || strlen(de->d_name) != 10)
            continue;
        char dir[PATH_MAX], st[PATH_MAX + 16], line[256];
        snprintf(dir, sizeof dir, "%s/%s", tmp, de->d_name);
        snprintf(st, sizeof st, "%s/state", dir);
        FILE *f = fopen(st, "r");
        if (!f)
            continue;
        int owner = 0, temp = 0, alive = 0, v, pid;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "owner %d", &v) == 1)
                owner = v;
            else if (sscanf(line, "temp %d", &v) == 1)
                temp = v;
            else if (sscanf(line, "node %d %d", &v, &pid) == 2 && !proc_gone_noreap(pid))
                alive = 1;
        }
        fclose(f);
        if (temp && owner > 0 && !alive && owner != getpid() && proc_gone_noreap(owner))
            rm_rf(dir);
    }
    closedir(d);
}

static int prepare_base(zkh_ensemble *e, const zkh_options *o)
{
    if (o->base_dir && *o->base_dir) {
        if (mkdir(o->base_dir, 0755) && errno != EEXIST)
            return -errno;
        char rp[PATH_MAX];
        if (!realpath(o->base_dir, rp))
            return -errno;
        if (strlen(rp) >= sizeof e->base)
            return -ENAMETOOLONG;
        memcpy(e->base, rp, strlen(rp) + 1);
        /* A previous run's layout in a user dir: refuse if it still runs. */
        char st[PATH_MAX + 16];
        snprintf(st, sizeof st, "%s/state", e->base);
        zkh_ensemble *old = NULL;
        if (access(st, R_OK) == 0 && zkh_ensemble_attach(&old, e->base) == 0) {
            int running = 0;
            for (int i = 0; i < old->n; i++)
                running |= old->nodes[i].pid > 0;
            zkh_ensemble_release(old);
            if (running) {
                fprintf(stderr, "zkh: an ensemble recorded in %s is still running\n", e->base);
                return -EBUSY;
            }
        }
        for (int i = 1; i <= ZKH_MAX_NODES; i++) {
            char d[PATH_MAX + 16];
            snprintf(d, sizeof d, "%s/node%d", e->base, i);
            rm_rf(d);
        }
        e->own_base = 0;
    } else {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = "/tmp";
        gc_stale_tempdirs(tmp);
        snprintf(e->base, sizeof e->base, "%s/zkh-XXXXXX", tmp);
        if (!mkdtemp(e->base))
            return -errno;
        e->own_base = 1;
    }
    for (int i = 0; i < e->n; i++)
        snprintf(e->nodes[i].dir, sizeof e->nodes[i].dir, "%s/node%d", e->base, i + 1);
    return 0;
}

static int start_local(zkh_ensemble *e)
{
    int r = prepare_base(e, &e->opt);
    if (r) {
        fprintf(stderr, "zkh: cannot prepare the ensemble directory: %s\n", strerror(-r));
        return r;
    }
    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        int ports[3 * ZKH_MAX_NODES];
        r = 0;
        if ((r = alloc_ports(ports, 3 * e->n)))
            break;
        for (int i = 0; i < e->n; i++) {
            struct node *nd = &e->nodes[i];
            nd->client_port = ports[3 * i];
            nd->quorum_port = ports[3 * i + 1];
            nd->election_port = ports[3 * i + 2];
            snprintf(nd->hostport, sizeof nd->hostport, "127.0.0.1:%d", nd->client_port);
        }
        build_hosts(e);
        for (int i = 0; i < e->n && !r; i++) {
            char d[PATH_MAX + 16];
            snprintf(d, sizeof d, "%s/data", e->nodes[i].dir);
            rm_rf(d);
            r = write_node_files(e, i);
        }
        if (r) {
            fprintf(stderr, "zkh: cannot write node files in %s: %s\n", e->base, strerror(-r));
            break;
        }
        for (int i = 0; i < e->n && !r; i++)
            r = spawn_node(e, i);
        if (r) {
            fprintf(stderr, "zkh: cannot start java: %s\n", strerror(-r));
            kill_all_local(e);
            break;
        }
        int conflict;
        r = wait_ready_local(e, START_TIMEOUT_MS, &conflict);
        if (!r)
            return 0;
        kill_all_local(e);
        if (!conflict)
            break;
        fprintf(stderr, "zkh: a port was taken before ZooKeeper bound it; retrying (%d/%d)\n",
                attempt, START_ATTEMPTS);
        for (int i = 0; i < e->n; i++) {
            char log[PATH_MAX + 32];
            node_paths(e, i, "zookeeper.log", log, sizeof log);
            unlink(log);
        }
    }
    write_state(e);
    return r ? r : -EADDRINUSE;
}

/* ----------------------------------------------------------- docker backend */

static void find_docker_script(zkh_ensemble *e)
{
    const char *s = getenv("ZKH_DOCKER_SCRIPT");
    if (s && *s) {
        snprintf(e->script, sizeof e->script, "%s", s);
        return;
    }
#ifdef ZKH_TOP_SRCDIR
    snprintf(e->script, sizeof e->script, "%s/docker/ensemble.sh", ZKH_TOP_SRCDIR);
    if (access(e->script, R_OK) == 0)
        return;
#endif
    /* Test binaries live below the top dir (libtool puts them in .libs/). */
    char exe[ZKH_DIR_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 6; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash || slash == exe)
                break;
            *slash = 0;
            snprintf(e->script, sizeof e->script, "%s/docker/ensemble.sh", exe);
            if (access(e->script, R_OK) == 0)
                return;
        }
    }
    snprintf(e->script, sizeof e->script, "docker/ensemble.sh");
}

/* Runs the docker script with one or two args, stdout captured, bounded. */
static int run_script(zkh_ensemble *e, int timeout_ms, char *out, size_t outlen,
                      const char *arg1, int node1)
{
    char nbuf[16], envnodes[32];
    snprintf(nbuf, sizeof nbuf, "%d", node1);
    snprintf(envnodes, sizeof envnodes, "ZKH_NODES=%d", e->opt.nodes);
    const char *argv[5];
    int a = 0;
    int direct = access(e->script, X_OK) == 0;
    if (!direct)
        argv[a++] = "bash";
    argv[a++] = e->script;
    argv[a++] = arg1;
    if (node1 > 0)
        argv[a++] = nbuf;
    argv[a] = NULL;

    /* Environment for the child built before fork (setenv is not fork-safe). */
    extern char **environ;
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = calloc(ne + 2, sizeof *envp);
    if (!envp)
        return -ENOMEM;
    size_t k = 0;
    for (size_t j = 0; j < ne; j++)
        if (strncmp(environ[j], "ZKH_NODES=", 10))
            envp[k++] = environ[j];
    envp[k++] = envnodes;

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        free(envp);
        return -errno;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(pfd[0]);
        close(pfd[1]);
        free(envp);
        return err;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int nullfd = open("/dev/null", O_RDONLY);
        if (nullfd >= 0)
            dup2(nullfd, 0);
        dup2(pfd[1], 1);
        execvpe(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
    close(pfd[1]);
    long long deadline = now_ms() + timeout_ms;
    size_t len = 0;
    char sink[512];
    int timed_out = 0;
    for (;;) {
        int left = (int)(deadline - now_ms());
        struct pollfd p = {pfd[0], POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) == 0) {
            timed_out = 1;
            break;
        }
        char *dst = (out && len + 1 < outlen) ? out + len : sink;
        size_t room = (out && len + 1 < outlen) ? outlen - len - 1 : sizeof sink;
        ssize_t r = read(pfd[0], dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != sink)
            len += (size_t)r;
    }
    close(pfd[0]);
    if (out && outlen)
        out[len] = 0;
    if (timed_out)
        kill(-pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, timed_out ? 0 : WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(-pid, SIGKILL);
            timed_out = 1;
        }
        sleep_ms(20);
    }
    if (timed_out) {
        fprintf(stderr, "zkh: %s %s timed out after %d s\n", e->script, arg1, timeout_ms / 1000);
        return -ETIMEDOUT;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "zkh: %s %s%s%s failed (status %d)\n", e->script, arg1,
                node1 > 0 ? " " : "", node1 > 0 ? nbuf : "",
                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return -EIO;
    }
    return 0;
}

static void trim_last_line(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    char *nl = strrchr(s, '\n');
    if (nl)
        memmove(s, nl + 1, strlen(nl + 1) + 1);
}

static int parse_hosts(zkh_ensemble *e, const char *hosts)
{
    snprintf(e->hosts, sizeof e->hosts, "%s", hosts);
    char tmp[sizeof e->hosts];
    snprintf(tmp, sizeof tmp, "%s", hosts);
    char *slash = strchr(tmp, '/'); /* chroot suffix */
    if (slash)
        *slash = 0;
    e->n = 0;
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*t))
            t++;
        if (!*t)
            continue;
        if (e->n == ZKH_MAX_NODES)
            return -E2BIG;
        struct node *nd = &e->nodes[e->n++];
        snprintf(nd->hostport, sizeof nd->hostport, "%s", t);
        nd->up = 1;
    }
    return e->n ? 0 : -EINVAL;
}

static int start_docker(zkh_ensemble *e)
{
    find_docker_script(e);
    char out[4096];
    int up_s = env_int("ZKH_DOCKER_UP_TIMEOUT_S", 600);
    int r = run_script(e, up_s * 1000, out, sizeof out, "up", 0);
    if (r) {
        fprintf(stderr, "zkh: docker ensemble did not start (script %s)\n", e->script);
        return r;
    }
    trim_last_line(out);
    if ((r = parse_hosts(e, out))) {
        fprintf(stderr, "zkh: '%s up' printed no connect string\n", e->script);
        return r;
    }
    for (int i = 0; i < e->n; i++) {
        char hp[256];
        if (run_script(e, 60000, hp, sizeof hp, "hostport", i + 1) == 0) {
            trim_last_line(hp);
            if (*hp)
                snprintf(e->nodes[i].hostport, sizeof e->nodes[i].hostport, "%s", hp);
        }
    }
    if ((r = zkh_wait_quorum(e, START_TIMEOUT_MS)))
        fprintf(stderr, "zkh: docker ensemble %s has no quorum after %d s\n", e->hosts,
                START_TIMEOUT_MS / 1000);
    return r;
}

/* ---------------------------------------------------------------- public */

static int start_common(zkh_ensemble **out, const zkh_options *o, int detached)
{
    *out = NULL;
    zkh_options def;
    zkh_options_init(&def);
    if (!o)
        o = &def;
    zkh_ensemble *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->opt = *o;
    if (e->opt.nodes <= 0)
        e->opt.nodes = 3;
    if (e->opt.tick_ms <= 0)
        e->opt.tick_ms = 200;
    if (e->opt.max_client_cnxns <= 0)
        e->opt.max_client_cnxns = 1000;
    if (o->base_dir && *o->base_dir) {
        if (strlen(o->base_dir) >= sizeof e->user_base) {
            free(e);
            return -ENAMETOOLONG;
        }
        strcpy(e->user_base, o->base_dir);
        e->opt.base_dir = e->user_base; /* the caller's string may not outlive us */
    }
    e->owner = getpid();
    e->detached = detached;

    const char *bk = getenv("ZKH_BACKEND");
    int r;
    if (detached || !bk || !*bk || !strcmp(bk, "local")) {
        e->backend = BK_LOCAL;
        if (e->opt.nodes > ZKH_MAX_NODES) {
            free(e);
            return -EINVAL;
        }
        if (detached && !(o->base_dir && *o->base_dir)) {
            fprintf(stderr, "zkh: a detached ensemble needs a base directory\n");
            free(e);
            return -EINVAL;
        }
        e->n = e->opt.nodes;
        r = start_local(e);
    } else if (!strcmp(bk, "docker")) {
        e->backend = BK_DOCKER;
        r = start_docker(e);
    } else if (!strcmp(bk, "external")) {
        e->backend = BK_EXTERNAL;
        const char *h = getenv("ZKC_HOSTS");
        if (!h || !*h) {
            fprintf(stderr, "zkh: ZKH_BACKEND=external needs ZKC_HOSTS\n");
            r = -EINVAL;
        } else if ((r = parse_hosts(e, h)) == 0 && (r = zkh_wait_quorum(e, START_TIMEOUT_MS))) {
            fprintf(stderr, "zkh: external ensemble %s has no quorum\n", h);
        }
    } else {
        fprintf(stderr, "zkh: unknown ZKH_BACKEND '%s' (local, docker, external)\n", bk);
        r = -EINVAL;
    }
    if (r) {
        if (e->backend == BK_LOCAL && e->own_base && e->base[0]) {
            if (env_true("ZKH_KEEP"))
                fprintf(stderr, "zkh: kept %s\n", e->base);
            else
                rm_rf(e->base);
        }
        if (e->backend == BK_DOCKER && !env_true("ZKH_KEEP"))
            run_script(e, 300000, NULL, 0, "down", 0);
        free(e);
        return r;
    }
    if (!detached)
        reg_add(e);
    *out = e;
    return 0;
}

int zkh_ensemble_start(zkh_ensemble **out, const zkh_options *o)
{
    if (!out)
        return -EINVAL;
    return start_common(out, o, 0);
}

int zkh_ensemble_start_detached(zkh_ensemble **out, const zkh_options *o)
{
    if (!out)
        return -EINVAL;
    int r = start_common(out, o, 1);
    if (!r) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/hosts", (*out)->base);
        write_file(p, "%s\n", (*out)->hosts);
    }
    return r;
}

int zkh_ensemble_attach(zkh_ensemble **out, const char *dir)
{
    if (!out || !dir)
        return -EINVAL;
    *out = NULL;
    zkh_ensemble *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    zkh_options_init(&e->opt);
    e->backend = BK_LOCAL;
    e->detached = 1;
    e->owner = getpid();
    char rp[PATH_MAX];
    if (!realpath(dir, rp)) {
        int err = -errno;
        free(e);
        return err;
    }
    if (strlen(rp) >= sizeof e->base) {
        free(e);
        return -ENAMETOOLONG;
    }
    memcpy(e->base, rp, strlen(rp) + 1);
    char path[PATH_MAX + 16], line[256];
    snprintf(path, sizeof path, "%s/state", e->base);
    FILE *f = fopen(path, "r");
    if (!f) {
        int err = -errno;
        free(e);
        return err;
    }
    int ok = fgets(line, sizeof line, f) && !strncmp(line, "zkh-state 1", 11);
    while (ok && fgets(line, sizeof line, f)) {
        int i, pid, cp, qp, ep, paused;
        if (sscanf(line, "nodes %d", &i) == 1) {
            if (i < 1 || i > ZKH_MAX_NODES)
                ok = 0;
            else
                e->n = e->opt.nodes = i;
        } else if (sscanf(line, "tick %d", &i) == 1) {
            e->opt.tick_ms = i;
        } else if (sscanf(line, "fsync %d", &i) == 1) {
            e->opt.fsync = i;
        } else if (sscanf(line, "node %d %d %d %d %d %d", &i, &pid, &cp, &qp, &ep, &paused) == 6) {
            if (i < 0 || i >= e->n) {
                ok = 0;
                break;
            }
            struct node *nd = &e->nodes[i];
            snprintf(nd->dir, sizeof nd->dir, "%s/node%d", e->base, i + 1);
            nd->client_port = cp;
            nd->quorum_port = qp;
            nd->election_port = ep;
            nd->paused = paused;
            snprintf(nd->hostport, sizeof nd->hostport, "127.0.0.1:%d", cp);
            char cfg[PATH_MAX + 16];
            snprintf(cfg, sizeof cfg, "%s/zoo.cfg", nd->dir);
            if (pid > 0 && !proc_gone(pid) && pid_runs_cfg(pid, cfg)) {
                nd->pid = pid;
                nd->up = 1;
            } else {
                nd->paused = 0;
            }
        }
    }
    fclose(f);
    if (!ok || e->n == 0) {
        free(e);
        return -EINVAL;
    }
    build_hosts(e);
    *out = e;
    return 0;
}

void zkh_ensemble_release(zkh_ensemble *e)
{
    if (!e)
        return;
    reg_del(e);
    free(e);
}

void zkh_ensemble_stop(zkh_ensemble *e)
{
    if (!e)
        return;
    reg_del(e);
    int keep = env_true("ZKH_KEEP");
    if (e->backend == BK_LOCAL) {
        for (int i = 0; i < e->n; i++) {
            char cfg[PATH_MAX + 16];
            snprintf(cfg, sizeof cfg, "%s/zoo.cfg", e->nodes[i].dir);
            /* Never signal a recycled pid of a detached server. */
            if (e->detached && e->nodes[i].pid > 0 && !pid_runs_cfg(e->nodes[i].pid, cfg))
                e->nodes[i].pid = 0;
        }
        e->keep_base = keep;
        kill_all_local(e);
        write_state(e);
        if (e->own_base) {
            if (keep)
                fprintf(stderr, "zkh: ZKH_KEEP=1: ensemble files kept in %s\n", e->base);
            else
                rm_rf(e->base);
        }
    } else if (e->backend == BK_DOCKER) {
        if (keep)
            fprintf(stderr, "zkh: ZKH_KEEP=1: docker ensemble left running (%s down)\n",
                    e->script);
        else
            run_script(e, 300000, NULL, 0, "down", 0);
    }
    free(e);
}

const char *zkh_ensemble_hosts(zkh_ensemble *e) { return e ? e->hosts : NULL; }

const char *zkh_node_hostport(zkh_ensemble *e, int i)
{
    return (e && i >= 0 && i < e->n) ? e->nodes[i].hostport : NULL;
}

int zkh_node_count(zkh_ensemble *e) { return e ? e->n : 0; }

const char *zkh_ensemble_dir(zkh_ensemble *e)
{
    return (e && e->backend == BK_LOCAL) ? e->base : NULL;
}

int zkh_can_control(zkh_ensemble *e) { return e && e->backend != BK_EXTERNAL; }

int zkh_ci(void) { return env_true("CI"); }

static int check_node(zkh_ensemble *e, int i)
{
    if (!e || i < 0 || i >= e->n)
        return -EINVAL;
    if (e->backend == BK_EXTERNAL)
        return -ENOTSUP;
    return 0;
}

/* Notices a local server that died on its own (crash, OOM). */
static void refresh_local(zkh_ensemble *e, int i)
{
    struct node *nd = &e->nodes[i];
    if (e->backend == BK_LOCAL && nd->pid > 0 && proc_gone(nd->pid)) {
        nd->pid = 0;
        nd->up = 0;
        nd->paused = 0;
    }
}

int zkh_node_running(zkh_ensemble *e, int i)
{
    if (!e || i < 0 || i >= e->n)
        return 0;
    refresh_local(e, i);
    return e->nodes[i].up && !e->nodes[i].paused;
}

int zkh_node_stop(zkh_ensemble *e, int i)
{
    int r = check_node(e, i);
    if (r)
        return r;
    struct node *nd = &e->nodes[i];
    if (e->backend == BK_DOCKER) {
        if ((r = run_script(e, 120000, NULL, 0, "stop", i + 1)) == 0)
            nd->up = nd->paused = 0;
        return r;
    }
    refresh_local(e, i);
    if (nd->pid <= 0)
        return 0;
    signal_node(nd->pid, SIGTERM);
    if (nd->paused)
        signal_node(nd->pid, SIGCONT); /* a stopped JVM cannot act on SIGTERM */
    r = wait_gone(nd->pid, STOP_TIMEOUT_MS);
    if (r) {
        fprintf(stderr, "zkh: node %d ignored SIGTERM for %d s; killing it\n", i,
                STOP_TIMEOUT_MS / 1000);
        signal_node(nd->pid, SIGKILL);
        r = wait_gone(nd->pid, 10000);
    }
    if (!r) {
        nd->pid = 0;
        nd->up = nd->paused = 0;
        write_state(e);
    }
    return r;
}

int zkh_node_kill9(zkh_ensemble *e, int i)
{
    int r = check_node(e, i);
    if (r)
        return r;
    struct node *nd = &e->nodes[i];
    if (e->backend == BK_DOCKER) {
        if ((r = run_script(e, 120000, NULL, 0, "kill", i + 1)) == 0)
            nd->up = nd->paused = 0;
        return r;
    }
    refresh_local(e, i);
    if (nd->pid <= 0)
        return 0;
    signal_node(nd->pid, SIGKILL);
    /* Wait so that the caller can rely on the ports being closed. */
    if ((r = wait_gone(nd->pid, 10000)))
        return r;
    nd->pid = 0;
    nd->up = nd->paused = 0;
    write_state(e);
    return 0;
}

int zkh_node_start(zkh_ensemble *e, int i)
{
    int r = check_node(e, i);
    if (r)
        return r;
    struct node *nd = &e->nodes[i];
    if (e->backend == BK_DOCKER) {
        if ((r = run_script(e, 120000, NULL, 0, "start", i + 1)) == 0) {
            nd->up = 1;
            nd->paused = 0;
        }
        return r;
    }
    refresh_local(e, i);
    if (nd->pid > 0)
        return -EALREADY;
    return spawn_node(e, i);
}

static int pause_resume(zkh_ensemble *e, int i, int pause)
{
    int r = check_node(e, i);
    if (r)
        return r;
    struct node *nd = &e->nodes[i];
    if (e->backend == BK_DOCKER) {
        if ((r = run_script(e, 120000, NULL, 0, pause ? "pause" : "unpause", i + 1)) == 0)
            nd->paused = pause;
        return r;
    }
    refresh_local(e, i);
    if (nd->pid <= 0)
        return -ESRCH;
    if ((r = signal_node(nd->pid, pause ? SIGSTOP : SIGCONT)))
        return r;
    long long deadline = now_ms() + 10000;
    while (pause && !all_threads_stopped(nd->pid)) {
        if (now_ms() > deadline) {
            fprintf(stderr, "zkh: node %d did not stop within 10 s of SIGSTOP\n", i);
            return -ETIMEDOUT;
        }
        sleep_ms(5);
    }
    nd->paused = pause;
    write_state(e);
    return 0;
}

int zkh_node_pause(zkh_ensemble *e, int i) { return pause_resume(e, i, 1); }
int zkh_node_resume(zkh_ensemble *e, int i) { return pause_resume(e, i, 0); }

static int net_toggle(zkh_ensemble *e, int i, const char *verb)
{
    int r = check_node(e, i);
    if (r)
        return r;
    if (e->backend != BK_DOCKER)
        return -ENOTSUP;
    return run_script(e, 120000, NULL, 0, verb, i + 1);
}

int zkh_node_disconnect(zkh_ensemble *e, int i) { return net_toggle(e, i, "disconnect"); }
int zkh_node_connect(zkh_ensemble *e, int i) { return net_toggle(e, i, "connect"); }

/* Paused or stopped nodes are skipped: asking them only burns the timeout. */
static int node_askable(zkh_ensemble *e, int i)
{
    if (e->backend == BK_EXTERNAL)
        return 1;
    refresh_local(e, i);
    return e->nodes[i].up && !e->nodes[i].paused;
}

int zkh_leader(zkh_ensemble *e)
{
    if (!e)
        return -1;
    for (int i = 0; i < e->n; i++) {
        if (!node_askable(e, i))
            continue;
        int m = srvr_mode(e->nodes[i].hostport, 2000, NULL, 0);
        if (m == MODE_LEADER || m == MODE_STANDALONE)
            return i;
    }
    return -1;
}

int zkh_wait_quorum(zkh_ensemble *e, int timeout_ms)
{
    if (!e)
        return -EINVAL;
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int leader = 0, all = 1;
        for (int i = 0; i < e->n; i++) {
            if (!node_askable(e, i))
                continue;
            int m = srvr_mode(e->nodes[i].hostport, 1000, NULL, 0);
            if (m <= 0)
                all = 0;
            if (m == MODE_LEADER || m == MODE_STANDALONE)
                leader = 1;
        }
        if (leader && all)
            return 0;
        if (now_ms() > deadline)
            return -ETIMEDOUT;
        sleep_ms(100);
    }
}

long zkh_watch_count(zkh_ensemble *e)
{
    if (!e)
        return -EINVAL;
    long total = 0;
    for (int i = 0; i < e->n; i++) {
        if (!node_askable(e, i))
            continue;
        char buf[1024];
        int r = zkh_four_letter(e->nodes[i].hostport, "wchs", buf, sizeof buf, 5000);
        if (r < 0)
            return r;
        const char *t = strstr(buf, "Total watches:");
        if (!t)
            return -EPROTO; /* e.g. 4lw not whitelisted */
        total += strtol(t + 14, NULL, 10);
    }
    return total;
}

int zkh_watches_by_path(zkh_ensemble *e, char **text)
{
    if (!e || !text)
        return -EINVAL;
    *text = NULL;
    size_t cap = 1024, len = 0;
    char *all = malloc(cap);
    if (!all)
        return -ENOMEM;
    all[0] = 0;
    for (int i = 0; i < e->n; i++) {
        if (!node_askable(e, i))
            continue;
        char *part;
        size_t pl;
        int r = fourlw_alloc(e->nodes[i].hostport, "wchp", &part, &pl, 5000);
        if (r < 0) {
            free(all);
            return r;
        }
        char hdr[200];
        int hl = snprintf(hdr, sizeof hdr, "# node %d %s\n", i, e->nodes[i].hostport);
        size_t need = len + (size_t)hl + pl + 2;
        if (need > cap) {
            while (cap < need)
                cap *= 2;
            char *na = realloc(all, cap);
            if (!na) {
                free(part);
                free(all);
                return -ENOMEM;
            }
            all = na;
        }
        memcpy(all + len, hdr, (size_t)hl);
        len += (size_t)hl;
        memcpy(all + len, part, pl);
        len += pl;
        if (pl && part[pl - 1] != '\n')
            all[len++] = '\n';
        all[len] = 0;
        free(part);
    }
    *text = all;
    return 0;
}

/* --------------------------------------------------------- session expiry */

struct expire_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
};

static void expire_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh; (void)path;
    struct expire_ctx *c = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&c->mu);
    c->state = state;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* One handle on the session: wait until it is connected (the server moves the
 * session to it) or refused, then close it (closeSession). 0 connected, then
 * closed; -ESTALE the server said the session is gone; -EACCES, -ETIMEDOUT. */
static int expire_attempt(const char *hosts, const clientid_t *cid, int timeout_ms)
{
    struct expire_ctx c;
    pthread_mutex_init(&c.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c.cv, &ca);
    pthread_condattr_destroy(&ca);
    c.state = 0;
    zhandle_t *zh = zookeeper_init(hosts, expire_watcher, 10000, cid, &c, 0);
    int r;
    if (!zh) {
        r = errno ? -errno : -EIO;
    } else {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c.mu);
        while (c.state != ZOO_CONNECTED_STATE && c.state != ZOO_EXPIRED_SESSION_STATE &&
               c.state != ZOO_AUTH_FAILED_STATE) {
            if (pthread_cond_timedwait(&c.cv, &c.mu, &dl) == ETIMEDOUT)
                break;
        }
        int st = c.state;
        pthread_mutex_unlock(&c.mu);
        if (st == ZOO_CONNECTED_STATE)
            r = 0;
        else if (st == ZOO_EXPIRED_SESSION_STATE)
            r = -ESTALE;
        else if (st == ZOO_AUTH_FAILED_STATE)
            r = -EACCES;
        else
            r = -ETIMEDOUT;
        /* Closing this handle asks the server to end the session. */
        zookeeper_close(zh);
    }
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    return r;
}

/* The close can lose a race: if the session's own client reconnects (and so
 * takes the session back) before our closeSession is processed, the server
 * refuses the close as coming from a connection that no longer owns the
 * session, and the session lives on. So the expiry is verified: a further
 * handle on the same id must be refused (-ESTALE) by the servers; if it
 * connects instead, the session survived, and closing that handle is the
 * next attempt. Bounded: ZKH_EXPIRE_ATTEMPTS closes, each within timeout_ms. */
#define ZKH_EXPIRE_ATTEMPTS 5

int zkh_expire_session(const char *hosts, int64_t session_id, const char *passwd,
                       int passwd_len, int timeout_ms)
{
    if (!hosts || !passwd || passwd_len < 0)
        return -EINVAL;
    clientid_t cid;
    memset(&cid, 0, sizeof cid);
    cid.client_id = session_id;
    size_t pl = (size_t)passwd_len < sizeof cid.passwd ? (size_t)passwd_len : sizeof cid.passwd;
    memcpy(cid.passwd, passwd, pl);
    int r = expire_attempt(hosts, &cid, timeout_ms);
    if (r != 0)
        return r; /* -ESTALE: it was already gone */
    for (int i = 1; i < ZKH_EXPIRE_ATTEMPTS; i++) {
        r = expire_attempt(hosts, &cid, timeout_ms);
        if (r == -ESTALE)
            return 0; /* verified: the servers refuse it */
        if (r != 0)
            return r;
        /* It connected: our close had lost the race; this attempt closed it again. */
    }
    /* The last close was not verified: look once more. */
    r = expire_attempt(hosts, &cid, timeout_ms);
    return r == -ESTALE ? 0 : r == 0 ? -EAGAIN : r;
}

/* ------------------------------------------------------------------ shared */

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static zkh_ensemble *shared_e;
static int shared_failed;

zkh_ensemble *zkh_shared(void)
{
    pthread_mutex_lock(&shared_mu);
    /* A forked child (Check) inherits the parent's ensemble and uses it. */
    if (!shared_e && !shared_failed) {
        zkh_options o;
        zkh_options_init(&o);
        o.nodes = env_int("ZKH_NODES", 3);
        o.tick_ms = env_int("ZKH_TICK_MS", 200);
        o.min_session_timeout_ms = env_int("ZKH_MIN_SESSION_TIMEOUT_MS", 0);
        o.max_session_timeout_ms = env_int("ZKH_MAX_SESSION_TIMEOUT_MS", 0);
        if (zkh_ensemble_start(&shared_e, &o)) {
            fprintf(stderr, "zkh: the shared test ensemble could not start\n");
            shared_failed = 1;
            shared_e = NULL;
        }
    }
    zkh_ensemble *e = shared_e;
    pthread_mutex_unlock(&shared_mu);
    return e;
}
