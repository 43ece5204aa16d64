/*
 * log.c — the runtime's logger: one line per event, "<UTC time> <LEVEL> <message>", to
 * stderr and optionally to a file. Thread-safe; lines are never interleaved.
 */
#include "runtime/rt.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int log_level = RT_LOG_INFO;
static pthread_mutex_t log_mx = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;

void rt_log_set_level(int level) { atomic_store(&log_level, level); }
int rt_log_level(void) { return atomic_load_explicit(&log_level, memory_order_relaxed); }

int rt_log_set_file(const char *path)
{
    FILE *f = NULL;
    if (path && !(f = fopen(path, "a")))
        return RT_EIO;
    pthread_mutex_lock(&log_mx);
    if (log_file)
        fclose(log_file);
    log_file = f;
    pthread_mutex_unlock(&log_mx);
    return 0;
}

void rt_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < rt_log_level() || level >= RT_LOG_NONE)
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (m < 0) ? n : (n + m >= (int)sizeof line - 1 ? (int)sizeof line - 2 : n + m);
    line[n++] = '\n';
    pthread_mutex_lock(&log_mx);
    fwrite(line, 1, (size_t)n, stderr);
    if (log_file) {
        fwrite(line, 1, (size_t)n, log_file);
        fflush(log_file);
    }
    pthread_mutex_unlock(&log_mx);
}
