/* log.c - text or JSON-lines logging and progress on stderr, serialised by one mutex. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_json;
static int log_level = LATHE_LOG_INFO;

void lathe_log_set_json(int on) { log_json = on; }
int lathe_log_is_json(void) { return log_json; }
void lathe_log_set_level(int level) { log_level = level; }

double lathe_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *level_name(int level) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return level >= 0 && level <= LATHE_LOG_DEBUG ? names[level] : "info";
}

/* Writes s as the inside of a JSON string. */
static void put_json_string(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
}

void lathe_log(int level, const char *event, const char *fmt, ...) {
    if (level > log_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (log_json) {
        fprintf(stderr, "{\"level\":\"%s\",\"event\":\"", level_name(level));
        put_json_string(stderr, event);
        fputs("\",\"message\":\"", stderr);
        put_json_string(stderr, msg);
        fputs("\"}\n", stderr);
    } else if (level <= LATHE_LOG_WARN) {
        fprintf(stderr, "lathe: %s: %s\n", level_name(level), msg);
    } else {
        fprintf(stderr, "lathe: %s\n", msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

struct lathe_progress {
    char what[64];
    uint64_t total;
    double start, last_print;
    int tty;
};

lathe_progress *lathe_progress_start(const char *what, uint64_t total) {
    lathe_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->what, sizeof p->what, "%s", what);
    p->total = total;
    p->start = p->last_print = lathe_now();
    p->tty = !log_json && isatty(STDERR_FILENO);
    return p;
}

static void print_progress(lathe_progress *p, uint64_t done, int final) {
    double elapsed = lathe_now() - p->start;
    double rate = elapsed > 0 ? done / elapsed : 0;
    double eta = rate > 0 && p->total > done ? (p->total - done) / rate : 0;
    pthread_mutex_lock(&log_lock);
    if (log_json) {
        fprintf(stderr,
                "{\"level\":\"info\",\"event\":\"progress\",\"what\":\"%s\",\"done\":%llu,\"total\":%llu,"
                "\"rate\":%.1f,\"eta_s\":%.1f,\"final\":%s}\n",
                p->what, (unsigned long long)done, (unsigned long long)p->total, rate, eta,
                final ? "true" : "false");
    } else if (p->tty) {
        int width = 30, filled = p->total ? (int)(width * (double)done / p->total) : 0;
        if (filled > width) filled = width;
        fprintf(stderr, "\r%-10s [%.*s%*s] %llu/%llu %.1f/s ETA %.0fs ", p->what, filled,
                "##############################", width - filled, "", (unsigned long long)done,
                (unsigned long long)p->total, rate, eta);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "lathe: %s %llu/%llu (%.1f/s, %s %.0fs)\n", p->what, (unsigned long long)done,
                (unsigned long long)p->total, rate, final ? "took" : "ETA", final ? elapsed : eta);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void lathe_progress_update(lathe_progress *p, uint64_t done) {
    if (!p) return;
    double now = lathe_now(), every = p->tty ? 0.2 : 10.0;
    if (now - p->last_print < every) return;
    p->last_print = now;
    print_progress(p, done, 0);
}

void lathe_progress_finish(lathe_progress *p, uint64_t done) {
    if (!p) return;
    print_progress(p, done, 1);
    free(p);
}
