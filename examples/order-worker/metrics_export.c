/*
 * The order worker's metrics exporter (public API only: zkc_client_metrics_*).
 *
 *   - A file, rewritten every interval the way node_exporter's textfile
 *     collector wants it: the text goes to a temporary file in the same
 *     directory, which is then renamed over the target, so a reader never
 *     sees half a file (rename is atomic within a file system).
 *   - GET /metrics on 127.0.0.1:port, answered by one blocking thread, one
 *     connection at a time (a scraper every few seconds needs no more). The
 *     library only formats; serving is the application's business, so it
 *     lives here and not in libzkcoord.
 * `extra` lines (the demo's own families) are appended to every exposition.
 */
#include "metrics_export.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct exporter {
    zkc_client *c;
    char *file;
    int interval_ms;
    int lfd;
    pthread_t file_thread, http_thread;
    int file_started, http_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    char extra[512];
};

/* The whole exposition, malloc'd, with the demo's lines after the library's. */
static char *render(exporter *x, size_t *len)
{
    long n = zkc_client_metrics_format(x->c, NULL, 0);
    if (n < 0)
        return NULL;
    pthread_mutex_lock(&x->mu);
    size_t el = strlen(x->extra);
    size_t cap = (size_t)n + 4096 + el; /* the text may grow between the two calls */
    char *buf = malloc(cap);
    if (buf) {
        long m = zkc_client_metrics_format(x->c, buf, cap - el);
        if (m < 0 || (size_t)m >= cap - el) {
            free(buf);
            buf = NULL;
        } else {
            memcpy(buf + m, x->extra, el + 1);
            *len = (size_t)m + el;
        }
    }
    pthread_mutex_unlock(&x->mu);
    return buf;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int exporter_write_file(exporter *x)
{
    if (!x || !x->file)
        return 0;
    size_t len;
    char *text = render(x, &len);
    if (!text)
        return -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", x->file, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        rc = write_all(fileno(f), text, len);
        if (fclose(f) != 0)
            rc = -1;
        if (rc == 0 && rename(tmp, x->file) != 0)
            rc = -1;
        if (rc != 0)
            unlink(tmp);
    }
    free(text);
    return rc;
}

static void *file_loop(void *arg)
{
    exporter *x = arg;
    pthread_mutex_lock(&x->mu);
    while (!x->stop) {
        pthread_mutex_unlock(&x->mu);
        if (exporter_write_file(x) != 0)
            fprintf(stderr, "order-worker: writing %s failed: %s\n", x->file, strerror(errno));
        pthread_mutex_lock(&x->mu);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += x->interval_ms / 1000;
        dl.tv_nsec += (long)(x->interval_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (!x->stop && pthread_cond_timedwait(&x->cv, &x->mu, &dl) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

static void answer(exporter *x, int fd)
{
    /* Read the request head (bounded); only its first line matters. */
    char req[2048];
    size_t n = 0;
    while (n < sizeof req - 1) {
        ssize_t r = read(fd, req + n, sizeof req - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[n] = '\0';
    char head[256];
    if (strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0) {
        size_t len;
        char *text = render(x, &len);
        if (!text) {
            const char *e = "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            write_all(fd, e, strlen(e));
            return;
        }
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                          len);
        if (write_all(fd, head, (size_t)hl) == 0)
            write_all(fd, text, len);
        free(text);
        return;
    }
    const char *body = "try GET /metrics\n";
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      strlen(body));
    if (write_all(fd, head, (size_t)hl) == 0)
        write_all(fd, body, strlen(body));
}

static void *http_loop(void *arg)
{
    exporter *x = arg;
    for (;;) {
        int fd = accept(x->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down by exporter_stop (EINVAL), or broken */
        }
        struct timeval tv = {5, 0}; /* a client that sends nothing does not hold the thread */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        answer(x, fd);
        close(fd);
    }
    return NULL;
}

exporter *exporter_start(zkc_client *c, const char *file, int port, int interval_ms)
{
    exporter *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->c = c;
    x->lfd = -1;
    x->interval_ms = interval_ms > 0 ? interval_ms : 2000;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    if (port > 0) {
        x->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(x->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* a replacement worker rebinds */
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (x->lfd < 0 || bind(x->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(x->lfd, 16) != 0) {
            fprintf(stderr, "order-worker: metrics port %d: %s\n", port, strerror(errno));
            if (x->lfd >= 0)
                close(x->lfd);
            free(x);
            return NULL;
        }
        x->http_started = pthread_create(&x->http_thread, NULL, http_loop, x) == 0;
    }
    if (file) {
        x->file = strdup(file);
        x->file_started = x->file && pthread_create(&x->file_thread, NULL, file_loop, x) == 0;
    }
    return x;
}

void exporter_set_extra(exporter *x, const char *lines)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    snprintf(x->extra, sizeof x->extra, "%s", lines);
    pthread_mutex_unlock(&x->mu);
}

void exporter_stop(exporter *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = 1;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    if (x->file_started)
        pthread_join(x->file_thread, NULL);
    if (x->lfd >= 0) {
        shutdown(x->lfd, SHUT_RDWR); /* wakes the blocked accept */
        if (x->http_started)
            pthread_join(x->http_thread, NULL);
        close(x->lfd);
    }
    exporter_write_file(x); /* the final numbers */
    free(x->file);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x);
}
