/* log.h - lathe's only way to print from library code: leveled messages and progress, as text
 * for people (a bar on a terminal, periodic lines otherwise) or JSON lines for machines.
 * Everything goes to stderr; stdout belongs to the commands' results. Thread-safe. */
#ifndef LATHE_BASE_LOG_H
#define LATHE_BASE_LOG_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_LOG_ERROR = 0, LATHE_LOG_WARN = 1, LATHE_LOG_INFO = 2, LATHE_LOG_DEBUG = 3 };

void lathe_log_set_json(int on);
int lathe_log_is_json(void);
/* Messages above level are dropped (default LATHE_LOG_INFO). */
void lathe_log_set_level(int level);
/* event is a short machine name ("ingest.shard"); the text is printf-style. */
void lathe_log(int level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct lathe_progress lathe_progress;
/* Starts a progress report for `what` over total units (0 = unknown). NULL on allocation failure
 * (callers may pass NULL to the other calls). */
lathe_progress *lathe_progress_start(const char *what, uint64_t total);
/* Reports done units; prints at most a few times a second (a line every 10 s when not a tty). */
void lathe_progress_update(lathe_progress *p, uint64_t done);
/* Prints the final line with the overall rate and frees p. */
void lathe_progress_finish(lathe_progress *p, uint64_t done);

/* Seconds on a monotonic clock. */
double lathe_now(void);

#ifdef __cplusplus
}
#endif
#endif
