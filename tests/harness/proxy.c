/* ZooKeeper-aware TCP proxy: one poll() thread per proxy, bounded buffers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_CAP (64 * 1024) /* per direction; messages stream through, never whole */
#define MAX_CONNS 512
#define OP_MIN (-16)
#define OP_MAX 127
#define NOPS (OP_MAX - OP_MIN + 1)
#define CTL_TIMEOUT_MS 10000

struct flow {
    unsigned char buf[BUF_CAP];
    size_t len;         /* bytes buffered */
    size_t ok;          /* leading bytes cleared for forwarding */
    uint32_t remaining; /* bytes of the current message still to clear */
    int started;        /* the connect request/response has been seen */
};

struct conn {
    int cfd, sfd;
    int connecting; /* upstream connect() in progress */
    struct flow up;   /* client -> server */
    struct flow down; /* server -> client */
    int32_t drop_xids[64]; /* replies to discard: requests armed by drop_reply */
    int ndrop;
    int32_t delay_xids[64]; /* replies to hold: requests armed by delay_reply */
    int ndelay;
    long long hold_until;   /* server -> client held until then (0: not held) */
    struct conn *next;
};

struct zkh_proxy {
    pthread_t thread;
    int lfd;
    int wake[2];
    char hostport[64];
    struct sockaddr_storage up_addr;
    socklen_t up_len;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    int stop;
    int blackhole;
    int pending_cut;
    unsigned long ctl_req, ctl_done;
    int drop_req[NOPS], drop_rep[NOPS], delay_rep[NOPS];
    int skip_req[NOPS]; /* requests of the type passed before drop_req applies */
    int delay_ms;
    long seen[NOPS];
    int fired;
    int nconns;

    /* proxy thread only */
    struct conn *conns;
    int bh_applied;
};

static int op_index(int op) { return (op < OP_MIN || op > OP_MAX) ? -1 : op - OP_MIN; }

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void wake_thread(zkh_proxy *p)
{
    char c = 1;
    ssize_t ignored = write(p->wake[1], &c, 1);
    (void)ignored;
}

/* ------------------------------------------------------------ framing */

enum { PASS = 0, CUT = -1 };

/* Clears complete headers for forwarding; CUT when a fault fires. Called with
 * nothing locked. */
static int scan_up(zkh_proxy *p, struct conn *c)
{
    struct flow *f = &c->up;
    while (f->ok < f->len) {
        if (f->remaining) {
            size_t take = f->len - f->ok;
            if (take > f->remaining)
                take = f->remaining;
            f->ok += take;
            f->remaining -= (uint32_t)take;
            continue;
        }
        size_t avail = f->len - f->ok;
        if (avail < 4)
            break;
        uint32_t mlen = be32(f->buf + f->ok);
        if (!f->started || mlen < 8) {
            /* ConnectRequest has no request header. */
            f->started = 1;
            f->ok += 4;
            f->remaining = mlen;
            continue;
        }
        if (avail < 12)
            break;
        int32_t xid = (int32_t)be32(f->buf + f->ok + 4);
        int32_t type = (int32_t)be32(f->buf + f->ok + 8);
        int ix = op_index(type), verdict = PASS;
        pthread_mutex_lock(&p->mu);
        if (ix >= 0) {
            p->seen[ix]++;
            if (p->drop_req[ix] > 0 && p->skip_req[ix] > 0) {
                p->skip_req[ix]--;
                if (p->drop_rep[ix] > 0 && c->ndrop < (int)(sizeof c->drop_xids / sizeof c->drop_xids[0])) {
                    p->drop_rep[ix]--;
                    c->drop_xids[c->ndrop++] = xid;
                }
            } else if (p->drop_req[ix] > 0) {
                p->drop_req[ix]--;
                p->fired++;
                verdict = CUT;
            } else if (p->drop_rep[ix] > 0 &&
                       c->ndrop < (int)(sizeof c->drop_xids / sizeof c->drop_xids[0])) {
                p->drop_rep[ix]--;
                c->drop_xids[c->ndrop++] = xid;
            } else if (p->delay_rep[ix] > 0 &&
                       c->ndelay < (int)(sizeof c->delay_xids / sizeof c->delay_xids[0])) {
                p->delay_rep[ix]--;
                c->delay_xids[c->ndelay++] = xid;
            }
        }
        pthread_mutex_unlock(&p->mu);
        if (verdict == CUT)
            return CUT;
        f->ok += 4;
        f->remaining = mlen;
    }
    return PASS;
}

static int scan_down(zkh_proxy *p, struct conn *c)
{
    struct flow *f = &c->down;
    if (c->hold_until) {
        if (now_ms() < c->hold_until)
            return PASS; /* nothing more is cleared; the poll timeout wakes us */
        c->hold_until = 0;
    }
    while (f->ok < f->len) {
        if (f->remaining) {
            size_t take = f->len - f->ok;
            if (take > f->remaining)
                take = f->remaining;
            f->ok += take;
            f->remaining -= (uint32_t)take;
            continue;
        }
        size_t avail = f->len - f->ok;
        if (avail < 4)
            break;
        uint32_t mlen = be32(f->buf + f->ok);
        if (!f->started || mlen < 4) {
            f->started = 1; /* ConnectResponse */
            f->ok += 4;
            f->remaining = mlen;
            continue;
        }
        if (avail < 8)
            break;
        int32_t xid = (int32_t)be32(f->buf + f->ok + 4);
        for (int k = 0; k < c->ndrop; k++)
            if (c->drop_xids[k] == xid) {
                c->drop_xids[k] = c->drop_xids[--c->ndrop];
                pthread_mutex_lock(&p->mu);
                p->fired++;
                pthread_mutex_unlock(&p->mu);
                return CUT;
            }
        for (int k = 0; k < c->ndelay; k++)
            if (c->delay_xids[k] == xid) {
                c->delay_xids[k] = c->delay_xids[--c->ndelay];
                pthread_mutex_lock(&p->mu);
                p->fired++;
                c->hold_until = now_ms() + p->delay_ms;
                pthread_mutex_unlock(&p->mu);
                return PASS; /* this reply is the first byte held */
            }
        f->ok += 4;
        f->remaining = mlen;
    }
    return PASS;
}

/* ------------------------------------------------------------ connections */

static void conn_close(zkh_proxy *p, struct conn *c, int reset)
{
    if (c->cfd >= 0) {
        if (reset) {
            struct linger lg = {1, 0};
            setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(c->cfd);
    }
    if (c->sfd >= 0)
        close(c->sfd);
    for (struct conn **pp = &p->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    free(c);
    pthread_mutex_lock(&p->mu);
    p->nconns--;
    pthread_mutex_unlock(&p->mu);
}

static void close_all(zkh_proxy *p, int reset)
{
    while (p->conns)
        conn_close(p, p->conns, reset);
}

/* Returns -1 on a fatal socket error. */
static int flow_write(struct flow *f, int fd)
{
    while (f->ok > 0) {
        ssize_t w = send(fd, f->buf, f->ok, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            memmove(f->buf, f->buf + w, f->len - (size_t)w);
            f->len -= (size_t)w;
            f->ok -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    return 0;
}

/* What was cleared before a fault still belongs to the stream: deliver it
 * (bounded) before cutting, so only the faulted message is lost. */
static void flush_cleared(struct flow *f, int fd)
{
    long long deadline = now_ms() + 1000;
    while (fd >= 0 && f->ok > 0 && now_ms() < deadline) {
        if (flow_write(f, fd) < 0)
            return;
        if (f->ok > 0) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            poll(&pfd, 1, 50);
        }
    }
}

/* Reads what fits; 0 ok, -1 EOF or error. */
static int flow_read(struct flow *f, int fd)
{
    while (f->len < BUF_CAP) {
        ssize_t r = recv(fd, f->buf + f->len, BUF_CAP - f->len, MSG_DONTWAIT);
        if (r > 0) {
            f->len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    return 0;
}

static int drain_discard(int fd)
{
    char sink[4096];
    for (;;) {
        ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
}

static void accept_new(zkh_proxy *p)
{
    for (;;) {
        int cfd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return;
        pthread_mutex_lock(&p->mu);
        int full = p->nconns >= MAX_CONNS;
        if (!full)
            p->nconns++;
        pthread_mutex_unlock(&p->mu);
        struct conn *c = full ? NULL : calloc(1, sizeof *c);
        if (!c) {
            close(cfd);
            if (!full) {
                pthread_mutex_lock(&p->mu);
                p->nconns--;
                pthread_mutex_unlock(&p->mu);
            }
            continue;
        }
        set_nodelay(cfd);
        c->cfd = cfd;
        c->sfd = -1;
        c->next = p->conns;
        p->conns = c;
        if (p->bh_applied)
            continue; /* held: accepted, never forwarded */
        int sfd = socket(p->up_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (sfd < 0) {
            conn_close(p, c, 1);
            continue;
        }
        set_nodelay(sfd);
        c->sfd = sfd;
        if (connect(sfd, (struct sockaddr *)&p->up_addr, p->up_len) == 0)
            continue;
        if (errno == EINPROGRESS)
            c->connecting = 1;
        else
            conn_close(p, c, 1); /* upstream down: the client sees a reset */
    }
}

/* Handles one connection's poll results; may free it. */
static void service(zkh_proxy *p, struct conn *c, short crev, short srev)
{
    if (p->bh_applied) {
        /* Partitioned: swallow everything, notice only the client leaving. */
        if ((crev & (POLLIN | POLLHUP | POLLERR)) && drain_discard(c->cfd) < 0) {
            conn_close(p, c, 0);
            return;
        }
        if (c->sfd >= 0 && (srev & (POLLIN | POLLHUP | POLLERR)) && drain_discard(c->sfd) < 0) {
            close(c->sfd);
            c->sfd = -1;
        }
        return;
    }
    if (c->connecting) {
        if (srev & (POLLOUT | POLLERR | POLLHUP)) {
            int err = 0;
            socklen_t sl = sizeof err;
            getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &sl);
            if (err) {
                conn_close(p, c, 1);
                return;
            }
            c->connecting = 0;
        }
    }
    if (crev & (POLLIN | POLLHUP | POLLERR)) {
        int eof = flow_read(&c->up, c->cfd) < 0;
        if (scan_up(p, c) == CUT) {
            if (!c->connecting)
                flush_cleared(&c->up, c->sfd);
            conn_close(p, c, 0);
            return;
        }
        if (eof) {
            if (!c->connecting)
                flush_cleared(&c->up, c->sfd);
            conn_close(p, c, 0);
            return;
        }
    }
    if (!c->connecting && (srev & (POLLIN | POLLHUP | POLLERR))) {
        int eof = flow_read(&c->down, c->sfd) < 0;
        if (scan_down(p, c) == CUT) {
            flush_cleared(&c->down, c->cfd);
            conn_close(p, c, 0);
            return;
        }
        if (eof) {
            flush_cleared(&c->down, c->cfd);
            conn_close(p, c, 0);
            return;
        }
    }
    if (!c->connecting && flow_write(&c->up, c->sfd) < 0) {
        conn_close(p, c, 1);
        return;
    }
    if (flow_write(&c->down, c->cfd) < 0)
        conn_close(p, c, 1);
}

/* A held stream whose time is up: clear what it holds; the next poll writes it. */
static void release_held(zkh_proxy *p)
{
    long long now = now_ms();
    for (struct conn *c = p->conns; c; c = c->next)
        if (c->hold_until && now >= c->hold_until && !p->bh_applied)
            scan_down(p, c);
}

static void *proxy_main(void *arg)
{
    zkh_proxy *p = arg;
    struct pollfd *pfds = NULL;
    struct conn **owners = NULL;
    size_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int stop = p->stop, bh = p->blackhole, cut = p->pending_cut;
        unsigned long req = p->ctl_req;
        p->pending_cut = 0;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        if (cut)
            close_all(p, 1);
        if (p->bh_applied && !bh)
            close_all(p, 1); /* held connections would never recover */
        p->bh_applied = bh;
        pthread_mutex_lock(&p->mu);
        p->ctl_done = req;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);

        size_t need = 2;
        for (struct conn *c = p->conns; c; c = c->next)
            need += 2;
        if (need > cap) {
            struct pollfd *np = realloc(pfds, need * sizeof *np);
            struct conn **no = np ? realloc(owners, need * sizeof *no) : NULL;
            if (np)
                pfds = np;
            if (!np || !no)
                break; /* out of memory: the proxy stops serving */
            owners = no;
            cap = need;
        }
        size_t n = 0;
        pfds[n++] = (struct pollfd){p->wake[0], POLLIN, 0};
        pfds[n++] = (struct pollfd){p->lfd, POLLIN, 0};
        for (struct conn *c = p->conns; c; c = c->next) {
            short ce = 0, se = 0;
            if (p->bh_applied) {
                ce = POLLIN;
                se = c->sfd >= 0 ? POLLIN : 0;
            } else if (c->connecting) {
                se = POLLOUT;
                ce = c->up.len < BUF_CAP ? POLLIN : 0;
            } else {
                if (c->up.len < BUF_CAP)
                    ce |= POLLIN;
                if (c->down.ok)
                    ce |= POLLOUT;
                if (c->down.len < BUF_CAP)
                    se |= POLLIN;
                if (c->up.ok)
                    se |= POLLOUT;
            }
            owners[n] = c;
            pfds[n++] = (struct pollfd){c->cfd, ce, 0};
            owners[n] = c;
            pfds[n++] = (struct pollfd){c->sfd, se, 0};
        }
        int wait_ms = 1000;
        long long now = now_ms();
        for (struct conn *c = p->conns; c; c = c->next)
            if (c->hold_until) {
                long long left = c->hold_until - now;
                if (left < wait_ms)
                    wait_ms = left > 0 ? (int)left : 0;
            }
        if (poll(pfds, n, wait_ms) < 0)
            continue;
        release_held(p);
        if (pfds[0].revents) {
            char sink[64];
            while (read(p->wake[0], sink, sizeof sink) > 0) {
            }
        }
        /* Service existing connections first: owners[] stays valid only
         * until one of them is freed, so match by walking the list. */
        for (size_t k = 2; k + 1 < n; k += 2) {
            struct conn *c = owners[k];
            int alive = 0;
            for (struct conn *x = p->conns; x; x = x->next)
                if (x == c) {
                    alive = 1;
                    break;
                }
            if (alive && (pfds[k].revents || pfds[k + 1].revents))
                service(p, c, pfds[k].revents, pfds[k + 1].revents);
        }
        if (pfds[1].revents & POLLIN)
            accept_new(p);
    }
    free(pfds);
    free(owners);
    close_all(p, 1);
    return NULL;
}

/* ---------------------------------------------------------------- public */

int zkh_proxy_start(zkh_proxy **out, const char *upstream)
{
    if (!out || !upstream)
        return -EINVAL;
    *out = NULL;
    char host[256], port[16];
    const char *colon = strrchr(upstream, ':');
    if (!colon || (size_t)(colon - upstream) >= sizeof host || strlen(colon + 1) >= sizeof port ||
        !colon[1])
        return -EINVAL;
    size_t hl = (size_t)(colon - upstream);
    if (upstream[0] == '[' && hl >= 2 && upstream[hl - 1] == ']') {
        memcpy(host, upstream + 1, hl - 2);
        host[hl - 2] = 0;
    } else {
        memcpy(host, upstream, hl);
        host[hl] = 0;
    }
    snprintf(port, sizeof port, "%s", colon + 1);

    zkh_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->lfd = p->wake[0] = p->wake[1] = -1;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
        free(p);
        return -EHOSTUNREACH;
    }
    /* "localhost" may list ::1 first, but servers here listen on 127.0.0.1. */
    struct addrinfo *pick = res;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    memcpy(&p->up_addr, pick->ai_addr, pick->ai_addrlen);
    p->up_len = pick->ai_addrlen;
    freeaddrinfo(res);

    int err;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) ||
        listen(p->lfd, 64) || getsockname(p->lfd, (struct sockaddr *)&sa, &sl) ||
        pipe2(p->wake, O_NONBLOCK | O_CLOEXEC)) {
        err = -errno;
        goto fail;
    }
    snprintf(p->hostport, sizeof p->hostport, "127.0.0.1:%d", ntohs(sa.sin_port));
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((err = pthread_create(&p->thread, NULL, proxy_main, p))) {
        err = -err;
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        goto fail;
    }
    *out = p;
    return 0;
fail:
    if (p->lfd >= 0)
        close(p->lfd);
    if (p->wake[0] >= 0)
        close(p->wake[0]);
    if (p->wake[1] >= 0)
        close(p->wake[1]);
    free(p);
    return err;
}

const char *zkh_proxy_hostport(zkh_proxy *p) { return p ? p->hostport : NULL; }

/* Caller holds mu; returns with it held, once the thread has seen the change. */
static void await_ack(zkh_proxy *p)
{
    unsigned long want = ++p->ctl_req;
    wake_thread(p);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += CTL_TIMEOUT_MS / 1000;
    while (p->ctl_done < want)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT) {
            fprintf(stderr, "zkh_proxy %s: control request not acknowledged\n", p->hostport);
            break;
        }
}

void zkh_proxy_cut(zkh_proxy *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->pending_cut = 1;
    await_ack(p);
    pthread_mutex_unlock(&p->mu);
}

void zkh_proxy_blackhole(zkh_proxy *p, int on)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->blackhole = !!on;
    await_ack(p);
    pthread_mutex_unlock(&p->mu);
}

static void arm(zkh_proxy *p, int op, int count, int reply)
{
    int ix = op_index(op);
    if (!p || ix < 0)
        return;
    pthread_mutex_lock(&p->mu);
    (reply ? p->drop_rep : p->drop_req)[ix] = count > 0 ? count : 0;
    if (!reply)
        p->skip_req[ix] = 0;
    pthread_mutex_unlock(&p->mu);
}

void zkh_proxy_drop_request_after(zkh_proxy *p, int op_type, int skip, int count)
{
    int ix = op_index(op_type);
    if (!p || ix < 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->drop_req[ix] = count > 0 ? count : 0;
    p->skip_req[ix] = skip > 0 ? skip : 0;
    pthread_mutex_unlock(&p->mu);
}

void zkh_proxy_drop_request(zkh_proxy *p, int op_type, int count) { arm(p, op_type, count, 0); }
void zkh_proxy_drop_reply(zkh_proxy *p, int op_type, int count) { arm(p, op_type, count, 1); }

void zkh_proxy_delay_reply(zkh_proxy *p, int op_type, int count, int ms)
{
    int ix = op_index(op_type);
    if (!p || ix < 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->delay_rep[ix] = count > 0 ? count : 0;
    p->delay_ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock(&p->mu);
}

long zkh_proxy_requests_seen(zkh_proxy *p, int op_type)
{
    int ix = op_index(op_type);
    if (!p || ix < 0)
        return 0;
    pthread_mutex_lock(&p->mu);
    long n = p->seen[ix];
    pthread_mutex_unlock(&p->mu);
    return n;
}

int zkh_proxy_faults_fired(zkh_proxy *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    int n = p->fired;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int zkh_proxy_connections(zkh_proxy *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    int n = p->nconns;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void zkh_proxy_stop(zkh_proxy *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_mutex_unlock(&p->mu);
    wake_thread(p);
    pthread_join(p->thread, NULL);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
