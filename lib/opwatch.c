/* Operation watchdog (test builds): see opwatch.h. A process-wide table keyed
 * by the operation's address, under one mutex: operations register from any
 * thread (zkc__op_run runs on the caller's), finish on an engine, and the
 * watchdog reads them from its own thread. */
#include "opwatch.h"

#ifdef ZKC_OPWATCH

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct entry {
    struct entry *next;
    zkc__op *op;
    zkc_client *c;
    int64_t t0;
    int64_t bound; /* 0: none */
    const char *kind;
    char path[192];
    const char *state;
    int reported;
} entry;

#define NBUCKETS 4096
#define WATCH_PERIOD_MS 250

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *table[NBUCKETS];
static long overdue;
/* The watchdog's life, under mu: it runs while clients > 0. */
static pthread_cond_t dog_cv;    /* wakes the watchdog: its period, or stop */
static pthread_cond_t state_cv;  /* a stop finished (running is 0 again) */
static pthread_once_t cv_once = PTHREAD_ONCE_INIT;
static int clients, running, stopping;
static pthread_t dog;

static __thread struct {
    const char *kind;
    char path[192];
    int64_t bound;
} next_label;

static size_t bucket(const void *p)
{
    return ((uintptr_t)p >> 4) % NBUCKETS;
}

static void describe(const entry *e, int64_t now, const char *what, char *buf, size_t len)
{
    char kind[64];
    if (e->kind)
        snprintf(kind, sizeof kind, "%s", e->kind);
    else
        snprintf(kind, sizeof kind, "op(start=%p)", (void *)(uintptr_t)e->op->start);
    snprintf(buf, len,
             "zkcoord opwatch: pid %d: %s: kind=%s path=%s state=%s open %" PRId64 " ms (bound %" PRId64
             " ms) client=%s\n",
             (int)getpid(), what, kind, e->path[0] ? e->path : "-", e->state ? e->state : "submitted", now - e->t0,
             e->bound, e->c ? e->c->uuid : "-");
}

static void emit(const char *line)
{
    fputs(line, stderr);
    const char *f = getenv("ZKC_OPWATCH_FILE");
    if (f && *f) {
        int fd = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, line, strlen(line));
            (void)w;
            close(fd);
        }
    }
}

static void scan(int64_t now, char **out, size_t *outlen)
{
    for (size_t b = 0; b < NBUCKETS; b++)
        for (entry *e = table[b]; e; e = e->next) {
            if (e->reported || e->bound <= 0 || now - e->t0 <= e->bound)
                continue;
            e->reported = 1;
            overdue++;
            char line[512];
            describe(e, now, "operation still open past its bound", line, sizeof line);
            size_t l = strlen(line);
            char *n = realloc(*out, *outlen + l + 1);
            if (!n)
                continue;
            *out = n;
            memcpy(*out + *outlen, line, l + 1);
            *outlen += l;
        }
}

static void *watchdog(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        /* A period, not a synchronisation: the cv only makes the stop prompt. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WATCH_PERIOD_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&dog_cv, &mu, &ts);
        if (stopping)
            break;
        char *out = NULL;
        size_t outlen = 0;
        scan(zkc__now_ms(), &out, &outlen);
        pthread_mutex_unlock(&mu);
        if (out)
            emit(out);
        free(out);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void init_cvs(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&dog_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&state_cv, NULL);
}

void zkc__opwatch_client_made(zkc_client *c)
{
    (void)c;
    pthread_once(&cv_once, init_cvs);
    pthread_mutex_lock(&mu);
    while (stopping) /* the last client's free is joining the old watchdog */
        pthread_cond_wait(&state_cv, &mu);
    clients++;
    if (!running) {
        if (pthread_create(&dog, NULL, watchdog, NULL) != 0)
            abort(); /* a test build that cannot watch must not pretend to */
        running = 1;
    }
    pthread_mutex_unlock(&mu);
}

void zkc__opwatch_next(const char *kind, const char *path, int64_t bound_ms)
{
    next_label.kind = kind;
    snprintf(next_label.path, sizeof next_label.path, "%s", path ? path : "");
    const char *env = getenv("ZKC_OPWATCH_BOUND_MS");
    next_label.bound = env && *env ? strtoll(env, NULL, 10) : bound_ms;
}

void zkc__opwatch_submit(zkc__op *op)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->op = op;
    e->c = op->c;
    e->t0 = zkc__now_ms();
    if (next_label.kind) {
        e->kind = next_label.kind;
        memcpy(e->path, next_label.path, sizeof e->path);
        e->bound = next_label.bound;
        next_label.kind = NULL;
    }
    size_t b = bucket(op);
    pthread_mutex_lock(&mu);
    e->next = table[b];
    table[b] = e;
    pthread_mutex_unlock(&mu);
}

void zkc__opwatch_finish(zkc__op *op)
{
    size_t b = bucket(op);
    entry *gone = NULL;
    pthread_mutex_lock(&mu);
    for (entry **pp = &table[b]; *pp; pp = &(*pp)->next)
        if ((*pp)->op == op) {
            gone = *pp;
            *pp = gone->next;
            break;
        }
    pthread_mutex_unlock(&mu);
    free(gone);
}

void zkc__opwatch_state(zkc__op *op, const char *state)
{
    size_t b = bucket(op);
    pthread_mutex_lock(&mu);
    for (entry *e = table[b]; e; e = e->next)
        if (e->op == op) {
            e->state = state;
            break;
        }
    pthread_mutex_unlock(&mu);
}

void zkc__opwatch_client_freed(zkc_client *c)
{
    int64_t now = zkc__now_ms();
    int open = 0;
    pthread_mutex_lock(&mu);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (entry *e = table[b]; e; e = e->next)
            if (e->c == c) {
                char line[512];
                describe(e, now, "operation still open when its client was freed", line, sizeof line);
                emit(line);
                open++;
            }
    if (open) {
        pthread_mutex_unlock(&mu);
        abort(); /* the operation's callback will never run */
    }
    if (--clients == 0 && running) {
        stopping = 1;
        pthread_cond_signal(&dog_cv);
        pthread_mutex_unlock(&mu);
        pthread_join(dog, NULL);
        pthread_mutex_lock(&mu);
        running = 0;
        stopping = 0;
        pthread_cond_broadcast(&state_cv);
    }
    pthread_mutex_unlock(&mu);
}

long zkc__opwatch_overdue(void)
{
    pthread_mutex_lock(&mu);
    long n = overdue;
    pthread_mutex_unlock(&mu);
    return n;
}

#endif
