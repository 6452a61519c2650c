/* verify.c - `lathe verify DATASET [--json] [--quick]`: checks a dataset end to end and lists every
 * problem: the manifest, each shard's size and xxh64, each shard's HDF5 schema against the
 * manifest (lathe_dataset_check_shard), every image and mask chunk through the reader, every box
 * inside its image, and leftover files. Exit 0 when clean, 1 with the problems listed.
 * Hashing and the chunk pass use every core (OpenMP); problems are sorted before printing. A shard
 * whose size or hash differs from the manifest's is looked inside by a child process
 * (libcore/base/isolate.h): libhdf5 can crash or loop on a damaged file, and verify must still
 * report it. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <omp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/isolate.h"
#include "libcore/base/log.h"
#include "libcore/io/dataset.h"
#include "libcore/io/image.h"
#include "libcore/io/shard.h"

#define SHOWN_PER_FILE 20 /* problems printed per file; the rest are counted */

enum { GROUP_MANIFEST = 0, GROUP_SHARD = 1, GROUP_FOLDER = 2 };

typedef struct {
    int group;
    size_t shard;
    int64_t row;    /* shard row, -1 for the file as a whole */
    uint64_t index; /* global sample index when row >= 0 */
    size_t seq;
    char *file;     /* manifest.json, a shard file, or a stray file */
    char *message;
} problem;

typedef struct {
    const char *dir;
    const lathe_manifest *m;
    lathe_dataset *ds;
    problem *v;
    size_t n, cap;
    int oom;
    int emit_fd; /* in a child looking inside a changed shard: problems go to this pipe (else -1) */
} verifier;

static void add(verifier *vf, int group, size_t shard, int64_t row, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void add(verifier *vf, int group, size_t shard, int64_t row, const char *file, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (vf->emit_fd >= 0) { /* the child's problems are all of its one shard */
        lathe_isolated_line(vf->emit_fd, "problem %" PRId64 " %s", row, msg);
        return;
    }
#pragma omp critical(verify_problems)
    {
        if (vf->n == vf->cap) {
            size_t cap = vf->cap ? vf->cap * 2 : 64;
            problem *p = realloc(vf->v, cap * sizeof *p);
            if (p) vf->v = p, vf->cap = cap;
        }
        if (vf->n < vf->cap) {
            problem *p = &vf->v[vf->n];
            p->group = group, p->shard = shard, p->row = row, p->seq = vf->n;
            p->index = row >= 0 ? lathe_dataset_shard_first(vf->ds, shard) + (uint64_t)row : 0;
            p->file = strdup(file);
            p->message = strdup(msg);
            if (p->file && p->message) vf->n++;
            else free(p->file), free(p->message), vf->oom = 1;
        } else {
            vf->oom = 1;
        }
    }
}

static int compare_problems(const void *a, const void *b) {
    const problem *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    if (x->row != y->row) return x->row < y->row ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- the manifest ---- */

static void check_manifest(verifier *vf) {
    const lathe_manifest *m = vf->m;
    const char *f = "manifest.json";
    if (!m->complete) add(vf, GROUP_MANIFEST, 0, -1, f, "the dataset is incomplete: its ingest has not finished");
    if (m->has_masks && m->store != LATHE_STORE_PIXELS)
        add(vf, GROUP_MANIFEST, 0, -1, f, "masks: true with the encoded store, which holds no masks");
    if (m->sensor_steps > 0 && m->sensor_channels == 0)
        add(vf, GROUP_MANIFEST, 0, -1, f, "sensors have %d steps but no channels", m->sensor_steps);
    if (m->sensor_steps == 0 && m->sensor_channels > 0)
        add(vf, GROUP_MANIFEST, 0, -1, f, "sensors have %d channels but no steps", m->sensor_channels);
    for (int c = 0; c < m->nclasses; c++) {
        if (!*m->class_names[c]) add(vf, GROUP_MANIFEST, 0, -1, f, "class %d has an empty name", c);
        for (int k = 0; k < c; k++)
            if (strcmp(m->class_names[c], m->class_names[k]) == 0)
                add(vf, GROUP_MANIFEST, 0, -1, f, "classes %d and %d are both named '%s'", k, c, m->class_names[c]);
    }
    for (size_t i = 0; i < m->nshards; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->shards[i].file, m->shards[k].file) == 0)
                add(vf, GROUP_MANIFEST, 0, -1, f, "shards %zu and %zu are both %s", k, i, m->shards[i].file);
    /* rejects.jsonl holds one line per rejected input once the ingest is complete */
    char path[4200];
    snprintf(path, sizeof path, "%s/rejects.jsonl", vf->dir);
    FILE *r = fopen(path, "rb");
    if (!r) {
        if (m->complete && m->rejected)
            add(vf, GROUP_MANIFEST, 0, -1, f, "%" PRIu64 " rejected, but rejects.jsonl is missing", m->rejected);
        return;
    }
    uint64_t lines = 0, bad = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, r)) >= 0) { /* each a JSON object with the reason and the path */
        lines++;
        cJSON *o = lathe_json_parse(line, (size_t)len, NULL);
        if (!bad && !(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "reason")) &&
                      cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "path"))))
            bad = lines;
        cJSON_Delete(o);
    }
    free(line);
    fclose(r);
    if (bad) add(vf, GROUP_MANIFEST, 0, -1, f, "rejects.jsonl line %" PRIu64 " is not a reject record", bad);
    if (m->complete && lines != m->rejected)
        add(vf, GROUP_MANIFEST, 0, -1, f, "%" PRIu64 " rejected, but rejects.jsonl has %" PRIu64 " lines", m->rejected,
            lines);
}

/* ---- shard files: presence, size, checksum ---- */

enum { FILE_MISSING = 0, FILE_AS_LISTED = 1, FILE_CHANGED = 2 };

/* Checks shard s's size and (unless quick) its xxh64. Returns FILE_MISSING, FILE_AS_LISTED or
 * FILE_CHANGED (its size or hash differs: the deeper checks look inside it in a child process). */
static int check_file(verifier *vf, size_t s, int quick) {
    const lathe_manifest_shard *sh = &vf->m->shards[s];
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", vf->dir, sh->file);
    struct stat st;
    if (stat(path, &st) != 0) {
        add(vf, GROUP_SHARD, s, -1, sh->file, "missing (the manifest lists it)");
        return FILE_MISSING;
    }
    if ((uint64_t)st.st_size != sh->bytes) {
        add(vf, GROUP_SHARD, s, -1, sh->file, "%lld bytes, the manifest says %" PRIu64 " (truncated or replaced)",
            (long long)st.st_size, sh->bytes);
        return FILE_CHANGED;
    }
    if (quick) return FILE_AS_LISTED;
    uint64_t hash = 0, bytes = 0;
    if (lathe_file_xxh64(path, &hash, &bytes)) {
        add(vf, GROUP_SHARD, s, -1, sh->file, "cannot be read: %s", lathe_last_error());
        return FILE_AS_LISTED; /* a read error, not a change: the reader's own errors will say more */
    }
    if (hash == sh->xxh64) return FILE_AS_LISTED;
    add(vf, GROUP_SHARD, s, -1, sh->file, "xxh64 is %016" PRIx64 ", the manifest says %016" PRIx64
        " (the file changed after ingest)", hash, sh->xxh64);
    return FILE_CHANGED;
}

static void check_files(verifier *vf, int quick, int threads, int *file_state) {
    const lathe_manifest *m = vf->m;
    lathe_progress *p = quick ? NULL : lathe_progress_start("verify: checksums (shards)", m->nshards);
    _Atomic uint64_t done = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t i = 0; i < (int64_t)m->nshards; i++) {
        file_state[i] = check_file(vf, (size_t)i, quick);
        uint64_t now = atomic_fetch_add(&done, 1) + 1;
        if (omp_get_thread_num() == 0) lathe_progress_update(p, now);
    }
    if (p) lathe_progress_finish(p, atomic_load(&done));
}

/* ---- HDF5 schema of each shard ---- */

static void shard_problem(void *ctx, size_t shard, int64_t row, const char *message) {
    verifier *vf = ctx;
    add(vf, GROUP_SHARD, shard, row, vf->m->shards[shard].file, "%s", message);
}

/* ---- the sample pass: chunks through the reader, boxes inside their image ---- */

/* Strips the "<shard>: sample I (row R): " context the reader puts before its message. */
static const char *reader_message(const char *msg) {
    const char *p = strstr(msg, "): ");
    return p && strstr(msg, ": sample ") && strstr(msg, ": sample ") < p ? p + 3 : msg;
}

static void check_boxes(verifier *vf, size_t s, uint64_t row, const lathe_dataset_sample *smp, int w, int h) {
    for (size_t j = 0; j < smp->nboxes; j++) {
        const lathe_box *b = &smp->boxes[j];
        const char *file = vf->m->shards[s].file;
        if (!(b->x1 < b->x2 && b->y1 < b->y2))
            add(vf, GROUP_SHARD, s, (int64_t)row, file, "box %zu has no area (%g, %g, %g, %g)", j, b->x1, b->y1,
                b->x2, b->y2);
        else if (!(b->x1 >= 0 && b->y1 >= 0 && b->x2 <= (float)w && b->y2 <= (float)h))
            add(vf, GROUP_SHARD, s, (int64_t)row, file, "box %zu outside the image (%g, %g, %g, %g in %dx%d)", j,
                b->x1, b->y1, b->x2, b->y2, w, h);
    }
}

static void check_sample(verifier *vf, uint64_t i, int quick, uint64_t *nboxes) {
    const lathe_manifest *m = vf->m;
    unsigned what = LATHE_READ_BOXES;
    if (!quick) what |= LATHE_READ_PIXELS | LATHE_READ_MASK;
    if (m->store == LATHE_STORE_ENCODED) what |= LATHE_READ_PIXELS | (quick ? 0 : LATHE_READ_DECODE);
    size_t s;
    uint64_t row;
    lathe_dataset_locate(vf->ds, i, &s, &row);
    lathe_dataset_sample smp;
    if (lathe_dataset_get(vf->ds, i, what, &smp)) {
        add(vf, GROUP_SHARD, s, (int64_t)row, m->shards[s].file, "%s", reader_message(lathe_last_error()));
        return;
    }
    int w = m->width, h = m->height;
    if (m->store == LATHE_STORE_ENCODED) {
        lathe_image_info info;
        if (smp.pixels) w = smp.width, h = smp.height;
        else if (lathe_image_probe(smp.encoded, smp.encoded_len, &info) == 0) w = info.width, h = info.height;
        else {
            add(vf, GROUP_SHARD, s, (int64_t)row, m->shards[s].file, "encoded image: %s", lathe_last_error());
            w = h = -1;
        }
    }
    if (w >= 0) check_boxes(vf, s, row, &smp, w, h);
    *nboxes += smp.nboxes;
    lathe_dataset_sample_free(&smp);
}

static uint64_t check_samples(verifier *vf, const int *shard_ok, int quick, int threads) {
    const lathe_manifest *m = vf->m;
    uint64_t total = 0;
    for (size_t s = 0; s < m->nshards; s++)
        if (shard_ok[s]) total += m->shards[s].samples;
    lathe_progress *p = lathe_progress_start(quick ? "verify: boxes" : "verify: chunks and boxes", total);
    _Atomic uint64_t done = 0, boxes = 0;
    uint64_t first = 0; /* the shard's first sample; a bad shard is skipped whole, whatever count it claims */
    for (size_t s = 0; s < m->nshards; first += m->shards[s].samples, s++) {
        if (!shard_ok[s]) continue;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
        for (int64_t row = 0; row < (int64_t)m->shards[s].samples; row++) {
            uint64_t nb = 0;
            check_sample(vf, first + (uint64_t)row, quick, &nb);
            atomic_fetch_add(&boxes, nb);
            uint64_t now = atomic_fetch_add(&done, 1) + 1;
            if (omp_get_thread_num() == 0) lathe_progress_update(p, now);
        }
    }
    lathe_progress_finish(p, atomic_load(&done));
    return atomic_load(&boxes);
}

/* ---- a changed shard, looked inside by a child process ---- */

typedef struct {
    verifier *vf;
    size_t shard;
    int quick;
    uint64_t nboxes;
} inspection;

/* In the child: the checks the parent makes of an unchanged shard, its schema and then (when that
 * holds) every sample, each problem and a progress line per sample written to the pipe. */
static void inspect_in_child(void *ctx, int fd) {
    inspection *in = ctx;
    verifier *vf = in->vf;
    vf->emit_fd = fd;
    if (lathe_dataset_check_shard(vf->ds, in->shard, shard_problem, vf) != 0) return;
    uint64_t first = lathe_dataset_shard_first(vf->ds, in->shard), nboxes = 0;
    for (uint64_t r = 0; r < vf->m->shards[in->shard].samples; r++) {
        check_sample(vf, first + r, in->quick, &nboxes);
        lathe_isolated_line(fd, "sample %" PRIu64, r); /* progress, for the parent's watchdog */
    }
    lathe_isolated_line(fd, "boxes %" PRIu64, nboxes);
}

static void inspection_line(void *ctx, const char *line) {
    inspection *in = ctx;
    long long row;
    unsigned long long nboxes;
    int used = 0;
    if (sscanf(line, "problem %lld %n", &row, &used) == 1 && used > 0)
        add(in->vf, GROUP_SHARD, in->shard, row, in->vf->m->shards[in->shard].file, "%s", line + used);
    else if (sscanf(line, "boxes %llu", &nboxes) == 1)
        in->nboxes = nboxes;
}

/* Looks inside changed shard s in a child process; what the child found is listed as if found
 * here, and a crash or a loop inside libhdf5 becomes one more problem. Returns the boxes counted. */
static uint64_t inspect_changed(verifier *vf, size_t s, int quick, int stall_seconds) {
    inspection in = {vf, s, quick, 0};
    lathe_isolated_end end;
    const char *file = vf->m->shards[s].file;
    if (lathe_run_isolated(inspect_in_child, &in, stall_seconds, inspection_line, &in, &end)) {
        add(vf, GROUP_SHARD, s, -1, file, "not looked inside: %s", lathe_last_error());
        return 0;
    }
    if (end.how == LATHE_ISOLATED_SIGNALED)
        add(vf, GROUP_SHARD, s, -1, file, "looking inside the changed file crashed the HDF5 library (signal %d, %s): "
            "the damage is in HDF5's own structures", end.code, strsignal(end.code));
    else if (end.how == LATHE_ISOLATED_STALLED)
        add(vf, GROUP_SHARD, s, -1, file, "looking inside the changed file made no progress for %d s (the HDF5 library "
            "loops on a damaged structure): stopped", end.code);
    else if (end.code != 0)
        add(vf, GROUP_SHARD, s, -1, file, "looking inside the changed file failed: its process exited with status %d",
            end.code);
    return in.nboxes;
}

/* ---- the folder: temporaries and shards the manifest does not list ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void check_folder(verifier *vf) {
    DIR *d = opendir(vf->dir);
    if (!d) {
        add(vf, GROUP_FOLDER, 0, -1, ".", "the folder cannot be listed");
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (ends_with(name, ".tmp") || strcmp(name, "rejects.partial.jsonl") == 0) {
            add(vf, GROUP_FOLDER, 0, -1, name, "leftover temporary file (an interrupted ingest?)");
        } else if (ends_with(name, ".h5")) {
            int listed = 0;
            for (size_t i = 0; i < vf->m->nshards && !listed; i++) listed = strcmp(vf->m->shards[i].file, name) == 0;
            if (!listed) add(vf, GROUP_FOLDER, 0, -1, name, "a shard file the manifest does not list");
        }
    }
    closedir(d);
}

/* ---- output ---- */

static void print_text(const verifier *vf, size_t nshards, uint64_t nsamples, uint64_t nboxes, int quick) {
    size_t shown = 0, omitted = 0;
    const char *current = NULL;
    for (size_t i = 0; i < vf->n; i++) {
        const problem *p = &vf->v[i];
        if (!current || strcmp(current, p->file) != 0) {
            if (omitted) printf("lathe: verify: %s: ... and %zu more problems\n", current, omitted);
            current = p->file, shown = omitted = 0;
        }
        if (shown++ >= SHOWN_PER_FILE) {
            omitted++;
            continue;
        }
        if (p->row >= 0) printf("lathe: verify: %s: sample %" PRId64 " %s\n", p->file, p->row, p->message);
        else printf("lathe: verify: %s: %s\n", p->file, p->message);
    }
    if (omitted) printf("lathe: verify: %s: ... and %zu more problems\n", current, omitted);
    const char *checked = quick ? "quick: sizes, schema, boxes" : "checksums, schema, chunks, boxes";
    if (vf->n == 0)
        printf("lathe: verify: %s: ok (%zu shards, %" PRIu64 " samples, %" PRIu64 " boxes; %s)\n", vf->dir, nshards,
               nsamples, nboxes, checked);
    else
        printf("lathe: verify: %s: %zu problem%s (%zu shards, %" PRIu64 " samples, %" PRIu64 " boxes; %s)\n", vf->dir,
               vf->n, vf->n == 1 ? "" : "s", nshards, nsamples, nboxes, checked);
}

static int print_json(const verifier *vf, size_t nshards, uint64_t nsamples, uint64_t nboxes, int quick) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "path", vf->dir);
    cJSON_AddBoolToObject(root, "ok", vf->n == 0);
    cJSON_AddBoolToObject(root, "quick", quick);
    cJSON_AddNumberToObject(root, "shards", (double)nshards);
    cJSON_AddNumberToObject(root, "samples", (double)nsamples);
    cJSON_AddNumberToObject(root, "boxes", (double)nboxes);
    cJSON_AddNumberToObject(root, "problem_count", (double)vf->n);
    cJSON *list = cJSON_AddArrayToObject(root, "problems");
    for (size_t i = 0; i < vf->n; i++) {
        const problem *p = &vf->v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", p->file);
        if (p->row >= 0) {
            cJSON_AddNumberToObject(o, "sample", (double)p->row);
            cJSON_AddNumberToObject(o, "index", (double)p->index);
        } else {
            cJSON_AddNullToObject(o, "sample");
            cJSON_AddNullToObject(o, "index");
        }
        cJSON_AddStringToObject(o, "message", p->message);
        cJSON_AddItemToArray(list, o);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return -1;
    puts(text);
    cJSON_free(text);
    return 0;
}

static void usage(FILE *out) {
    fprintf(out, "usage: lathe verify DATASET [--json] [--quick] [--threads N] [--inspect-timeout S]\n"
                 "                    [--log-format text|json]\n\n"
                 "Checks a dataset written by `lathe ingest` and lists every problem: the manifest; each\n"
                 "shard's presence, size and xxh64; each shard's HDF5 schema against the manifest; every image\n"
                 "and mask chunk decompressing to its size; every box inside its image with a positive size;\n"
                 "leftover temporary files and shards the manifest does not list. A shard whose size or\n"
                 "xxh64 differs from the manifest's is looked inside by a separate process, so that a crash\n"
                 "or an endless loop of the HDF5 library on a damaged file is listed as a problem too.\n"
                 "Exit status: 0 clean, 1 problems found (or the dataset cannot be read), 2 bad usage.\n\n"
                 "  --json              print one JSON object on stdout (ok, counts, problems)\n"
                 "  --quick             skip the checksums and the chunk pass (sizes, schema, boxes only)\n"
                 "  --threads N         threads for hashing and chunks (default: all cores)\n"
                 "  --inspect-timeout S stop looking inside a changed shard when it makes no progress\n"
                 "                      for S seconds (default 60)\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n");
}

int cmd_verify(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0, quick = 0, threads = omp_get_max_threads(), inspect_timeout = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--quick") == 0) {
            quick = 1;
        } else if (strcmp(a, "--threads") == 0 || strncmp(a, "--threads=", 10) == 0) {
            const char *v = a[9] == '=' ? a + 10 : i + 1 < argc ? argv[++i] : NULL;
            long long n;
            if (!v || cli_parse_int(v, 1, 1024, &n))
                return cli_usage_error("verify", "--threads needs a number 1..1024");
            threads = (int)n;
        } else if (strcmp(a, "--inspect-timeout") == 0 || strncmp(a, "--inspect-timeout=", 18) == 0) {
            const char *v = a[17] == '=' ? a + 18 : i + 1 < argc ? argv[++i] : NULL;
            long long n;
            if (!v || cli_parse_int(v, 1, 86400, &n))
                return cli_usage_error("verify", "--inspect-timeout needs seconds 1..86400");
            inspect_timeout = (int)n;
        } else if (strcmp(a, "--log-format") == 0 || strncmp(a, "--log-format=", 13) == 0) {
            const char *v = a[12] == '=' ? a + 13 : i + 1 < argc ? argv[++i] : NULL;
            if (!v) return cli_usage_error("verify", "--log-format needs a value (text or json)");
            if (cli_set_log_format(v)) return cli_usage_error("verify", "unknown --log-format '%s' (text or json)", v);
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("verify", "unknown option '%s'", a);
        } else if (dir) {
            return cli_usage_error("verify", "one DATASET only ('%s' and '%s')", dir, a);
        } else {
            dir = a;
        }
    }
    if (!dir) return cli_usage_error("verify", "which DATASET?");

    char what[4200];
    snprintf(what, sizeof what, "verify %s", dir);
    lathe_dataset_options opts = {0, 1}; /* missing or resized shards are reported below, not refused */
    lathe_dataset *ds;
    if (lathe_dataset_open_ex(dir, &opts, &ds)) {
        cli_error(what, NULL);
        return EXIT_FAIL;
    }
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    verifier vf = {dir, m, ds, NULL, 0, 0, 0, -1};
    int *file_state = calloc(m->nshards ? m->nshards : 1, sizeof *file_state);
    int *shard_ok = calloc(m->nshards ? m->nshards : 1, sizeof *shard_ok);
    if (!file_state || !shard_ok) {
        free(file_state);
        free(shard_ok);
        lathe_dataset_close(ds);
        cli_error(what, "out of memory");
        return EXIT_FAIL;
    }
    check_manifest(&vf);
    check_files(&vf, quick, threads, file_state);
    uint64_t nboxes = 0;
    for (size_t s = 0; s < m->nshards; s++) {
        if (file_state[s] == FILE_CHANGED) nboxes += inspect_changed(&vf, s, quick, inspect_timeout);
        else shard_ok[s] = file_state[s] == FILE_AS_LISTED && lathe_dataset_check_shard(ds, s, shard_problem, &vf) == 0;
    }
    nboxes += check_samples(&vf, shard_ok, quick, threads);
    check_folder(&vf);
    if (vf.n) qsort(vf.v, vf.n, sizeof *vf.v, compare_problems);

    int rc = vf.n ? EXIT_FAIL : EXIT_OK;
    if (json) {
        if (print_json(&vf, m->nshards, lathe_dataset_count(ds), nboxes, quick)) {
            cli_error(what, "out of memory");
            rc = EXIT_FAIL;
        }
    } else {
        print_text(&vf, m->nshards, lathe_dataset_count(ds), nboxes, quick);
    }
    if (vf.oom) {
        cli_error(what, "out of memory while collecting problems (the list is incomplete)");
        rc = EXIT_FAIL;
    }
    if (fflush(stdout) != 0) {
        cli_error(what, "cannot write to stdout");
        rc = EXIT_FAIL;
    }
    for (size_t i = 0; i < vf.n; i++) free(vf.v[i].file), free(vf.v[i].message);
    free(vf.v);
    free(file_state);
    free(shard_ok);
    lathe_dataset_close(ds);
    return rc;
}
