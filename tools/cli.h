/* cli.h - what every subcommand shares: exit codes, error printing, the --log-format option and
 * number parsing. Only tools/ may exit; library calls report through lathe_last_error(). */
#ifndef LATHE_TOOLS_CLI_H
#define LATHE_TOOLS_CLI_H
#include <cjson/cJSON.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,       /* the work failed */
    EXIT_USAGE = 2,      /* bad command line */
    EXIT_REGRESSION = 3, /* a quality gate failed */
    EXIT_REJECTED = 4,   /* input was rejected under --strict */
};

/* Prints "lathe: error: <what>: <why>" (why = the library's last error when NULL). */
void cli_error(const char *what, const char *why);
/* Prints "lathe <cmd>: <message>" and a hint to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Applies --log-format text|json; returns 0 or -1 when the value is unknown. */
int cli_set_log_format(const char *value);
/* Strict number parsing: the whole string must be a number within [min, max]. 0 on success. */
int cli_parse_int(const char *s, long long min, long long max, long long *out);
int cli_parse_double(const char *s, double min, double max, double *out);
/* --threads N: OpenMP's and OpenBLAS's thread counts (n <= 0 keeps the default: all cores). */
void cli_set_threads(int n);
/* --device D: sets the run spec's train.device (checked when the graph moves there). 0 or -LATHE_ENOMEM. */
int cli_set_device(cJSON *spec, const char *device);
/* --flip on|off of eval and predict: sets the run spec's eval.flip (a detector's test-time mirror,
 * libcore/det/flip_fuse.h). 0, -LATHE_EINVAL for another value, or -LATHE_ENOMEM. */
int cli_set_flip(cJSON *spec, const char *on_off);
/* From now on SIGINT, SIGTERM and SIGUSR1 set the returned flag instead of killing the process, so a long
 * command stops at a safe point and keeps its work. */
volatile sig_atomic_t *cli_stop_on_signals(void);
/* From now on SIGINT and SIGTERM end the process at once (exit 130, or 128 + the signal), also
 * where a script started it in the background with SIGINT ignored: for commands whose output is
 * published whole at the end (analyze, eval, predict), so the earlier output stays as it was. */
void cli_exit_on_signals(void);
/* The file name of path without its last extension ("a/b/run.yaml" -> "run"), cut to fit cap before
 * a UTF-8 character rather than inside one. */
void cli_stem(const char *path, char *out, size_t cap);
/* A run folder's resolved spec (RUN/config.yaml) and checkpoint: "best" or "last"
 * (RUN/checkpoints/<name>.safetensors), anything else a path taken as it is. */
void cli_run_files(const char *run, const char *checkpoint, char *cfg, size_t cfg_cap, char *ck, size_t ck_cap);
/* 0 when checkpoint file ck exists; else a failure that, for a run without best.safetensors yet
 * (stopped in its first epoch), points at --checkpoint last. */
int cli_checkpoint_exists(const char *run, const char *checkpoint, const char *ck);
/* What `lathe eval` and `lathe predict` run: a run folder (its config.yaml, and checkpoint "best",
 * "last" or a path into ck) or a lathe engine file (`lathe export --format lathe`: the spec is made
 * from its metadata, ck is the file itself, *engine is set). *spec is the caller's to delete.
 * Returns 0 or a negative code with a message. */
int cli_open_run(const char *run, const char *checkpoint, cJSON **spec, char *ck, size_t ck_cap, int *engine);
/* The tiles a run's model sees: the tiling an engine recorded (data.tile, data.overlap: cli_open_run),
 * else that of the run's dataset (data.dataset) when it was ingested with --tile; 0 and 0 for none. */
void cli_run_tiling(const cJSON *spec, int *tile, int *overlap);
/* Records model.classes and class_names from the spec's data.dataset into the spec (a run's
 * config.yaml), unless class_names is there already. Returns 0 or the dataset's error. */
int cli_record_classes(cJSON *spec);
/* --dataset D for a classifier's or a detector's run: 0 when D names the classes the run recorded
 * (class_names), in its order, or when the run recorded none; else -LATHE_EINVAL naming the first
 * difference (the model's outputs are the run's classes: scored under D's names they would be
 * mislabelled, exit 0). Other tasks name their classes in text and take any dataset. */
int cli_check_dataset_classes(const cJSON *spec, const char *dataset);

/* --notebook of train, eval and analyze: the notebook of folder dir (what lathe notebook writes for
 * it) as dir/file, its paths relative to dir. Returns 0 or the notebook's error. */
int cli_notebook_beside(const char *dir, const char *file);

#endif
