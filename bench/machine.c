/* The machine under the benchmark: clocks, load, this process's CPU, memory
 * and context switches, and the CPU of our ensemble's server processes. */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <malloc.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    while (nanosleep(&ts, &ts) && errno == EINTR && !g_interrupted)
        ;
}

void loadavg(double out[3])
{
    out[0] = out[1] = out[2] = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3)
            out[0] = out[1] = out[2] = NAN;
        fclose(f);
    }
}

/* malloc'd bytes in use (one arena: see main). */
/* Voluntary context switches of the calling thread so far: its waits. */
double thread_voluntary_switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_nvcsw;
}

long long mem_inuse(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
}

long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Our ensemble's server processes (found by their data directory). */
static int g_srv_pid[16];
static int g_nsrv;

void find_servers(void)
{
    g_nsrv = 0;
    if (!g_base[0])
        return;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && g_nsrv < 16) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char p[64], buf[8192];
        snprintf(p, sizeof p, "/proc/%ld/cmdline", pid);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n] = 0;
        if (strstr(buf, "java") && strstr(buf, g_base))
            g_srv_pid[g_nsrv++] = (int)pid;
    }
    closedir(d);
}

/* CPU ms used so far by the ensemble's servers, or NAN. */
double server_cpu_ms(void)
{
    if (!g_nsrv)
        return NAN;
    double total = 0;
    long hz = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < g_nsrv; i++) {
        char p[64], buf[2048];
        snprintf(p, sizeof p, "/proc/%d/stat", g_srv_pid[i]);
        FILE *f = fopen(p, "r");
        if (!f)
            return NAN;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *q = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            return NAN;
        total += (double)(ut + st) * 1000.0 / (double)hz;
    }
    return total;
}

/* Context switches of all our threads so far (voluntary + involuntary). */
double ctx_switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_nvcsw + (double)ru.ru_nivcsw;
}

double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}
