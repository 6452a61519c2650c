/* info.c - `lathe info DATASET [--json]`: what a dataset holds (counts per split, classes with box
 * and image-label counts per split, shards, size, schema, completeness), as text for people or one
 * JSON object on stdout for scripts. Reads the manifest and the label arrays of every shard. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/error.h"
#include "libcore/io/dataset.h"
#include "libcore/io/shard.h"

static void usage(FILE *out) {
    fprintf(out, "usage: lathe info DATASET [--json] [--log-format text|json]\n\n"
                 "Describes a dataset written by `lathe ingest`: samples per split and rejected, classes with\n"
                 "their box and image-label counts per split, shards (file, split, samples, bytes), total size,\n"
                 "the schema (store, image size, channels, masks, sensors, text) and whether it is complete.\n\n"
                 "  --json              print one JSON object on stdout instead of text\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n");
}

static const char *store_name(int store) { return store == LATHE_STORE_PIXELS ? "pixels" : "encoded"; }

static void human_size(uint64_t bytes, char *out, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (u == 0) snprintf(out, cap, "%" PRIu64 " B", bytes);
    else snprintf(out, cap, "%.1f %s", v, units[u]);
}

static uint64_t total_bytes(const lathe_manifest *m) {
    uint64_t b = 0;
    for (size_t i = 0; i < m->nshards; i++) b += m->shards[i].bytes;
    return b;
}

/* {"train": a, "val": b, "test": c, "total": a+b+c} */
static cJSON *split_counts(const uint64_t *v) {
    cJSON *o = cJSON_CreateObject();
    uint64_t total = 0;
    for (int s = 0; s < LATHE_NSPLITS; s++) {
        cJSON_AddNumberToObject(o, lathe_split_name(s), (double)v[s]);
        total += v[s];
    }
    cJSON_AddNumberToObject(o, "total", (double)total);
    return o;
}

static cJSON *string_list(char *const *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static int print_json(const char *dir, const lathe_dataset *ds, const lathe_dataset_stats *st) {
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "path", dir);
    cJSON_AddNumberToObject(root, "lathe_schema", m->schema);
    cJSON_AddBoolToObject(root, "complete", m->complete);
    cJSON_AddStringToObject(root, "created_by", m->created_by ? m->created_by : "");
    cJSON_AddStringToObject(root, "source_format", m->source_format ? m->source_format : "");
    if (m->split_origin) cJSON_AddStringToObject(root, "split_origin", m->split_origin);
    if (m->part) cJSON_AddStringToObject(root, "part", m->part);
    cJSON_AddNumberToObject(root, "samples", (double)lathe_dataset_count(ds));
    uint64_t per_split[LATHE_NSPLITS];
    for (int s = 0; s < LATHE_NSPLITS; s++) per_split[s] = lathe_manifest_samples(m, s);
    cJSON_AddItemToObject(root, "splits", split_counts(per_split));
    cJSON_AddNumberToObject(root, "rejected", (double)m->rejected);

    cJSON *schema = cJSON_AddObjectToObject(root, "schema");
    cJSON_AddStringToObject(schema, "store", store_name(m->store));
    cJSON *size = cJSON_AddArrayToObject(schema, "image_size");
    cJSON_AddItemToArray(size, cJSON_CreateNumber(m->height));
    cJSON_AddItemToArray(size, cJSON_CreateNumber(m->width));
    cJSON_AddNumberToObject(schema, "channels", m->channels);
    cJSON_AddBoolToObject(schema, "masks", m->has_masks);
    cJSON_AddBoolToObject(schema, "text", m->has_text);
    cJSON *sensors = cJSON_AddObjectToObject(schema, "sensors");
    cJSON_AddNumberToObject(sensors, "steps", m->sensor_steps);
    cJSON_AddItemToObject(sensors, "channels", string_list(m->sensor_names, m->sensor_channels));

    cJSON *classes = cJSON_AddArrayToObject(root, "classes");
    for (int c = 0; c < m->nclasses; c++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", c);
        cJSON_AddStringToObject(o, "name", m->class_names[c]);
        cJSON_AddItemToObject(o, "boxes", split_counts(st->boxes[c]));
        cJSON_AddItemToObject(o, "images", split_counts(st->images[c]));
        cJSON_AddItemToArray(classes, o);
    }
    cJSON_AddItemToObject(root, "boxes", split_counts(st->total_boxes));
    cJSON_AddItemToObject(root, "unlabeled", split_counts(st->unlabeled));
    cJSON_AddNumberToObject(root, "invalid_labels", (double)st->bad_labels);
    cJSON_AddNumberToObject(root, "split_mismatches", (double)st->split_mismatches);

    cJSON *shards = cJSON_AddArrayToObject(root, "shards");
    for (size_t i = 0; i < m->nshards; i++) {
        const lathe_manifest_shard *sh = &m->shards[i];
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, sh->xxh64);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", sh->file);
        cJSON_AddStringToObject(o, "split", lathe_split_name(sh->split));
        cJSON_AddNumberToObject(o, "samples", (double)sh->samples);
        cJSON_AddNumberToObject(o, "bytes", (double)sh->bytes);
        cJSON_AddStringToObject(o, "xxh64", hex);
        cJSON_AddItemToArray(shards, o);
    }
    cJSON_AddNumberToObject(root, "bytes", (double)total_bytes(m));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        cli_error("info", "out of memory");
        return EXIT_FAIL;
    }
    puts(text);
    cJSON_free(text);
    return EXIT_OK;
}

/* "a / b / c" of the three splits. */
static void split_triple(const uint64_t *v, char *out, size_t cap) {
    snprintf(out, cap, "%" PRIu64 " / %" PRIu64 " / %" PRIu64, v[0], v[1], v[2]);
}

static int print_text(const char *dir, const lathe_dataset *ds, const lathe_dataset_stats *st) {
    const lathe_manifest *m = lathe_dataset_manifest(ds);
    char buf[256], buf2[256];
    printf("dataset   %s (%s)\n", dir, m->complete ? "complete" : "INCOMPLETE: the ingest has not finished");
    printf("created   by %s from %s%s%s\n", m->created_by ? m->created_by : "?",
           m->source_format && *m->source_format ? m->source_format : "?", m->part ? ", part " : "",
           m->part ? m->part : "");
    printf("samples   %" PRIu64 " (train %" PRIu64 ", val %" PRIu64 ", test %" PRIu64 "), rejected %" PRIu64 "\n",
           lathe_dataset_count(ds), lathe_manifest_samples(m, LATHE_SPLIT_TRAIN),
           lathe_manifest_samples(m, LATHE_SPLIT_VAL), lathe_manifest_samples(m, LATHE_SPLIT_TEST), m->rejected);
    printf("splits    %s\n", !m->split_origin                    ? "(not recorded: an older lathe)"
                            : !strcmp(m->split_origin, "source") ? "the source's train/val/test folders"
                                                                 : "lathe's stable hash (--split shares)");
    if (m->store == LATHE_STORE_PIXELS)
        printf("store     pixels, %dx%d (HxW), %d channel%s\n", m->height, m->width, m->channels,
               m->channels == 1 ? "" : "s");
    else
        printf("store     encoded (source JPEG/PNG bytes)\n");
    printf("masks     %s\n", m->has_masks ? "yes" : "no");
    if (m->sensor_steps > 0) {
        size_t len = 0;
        buf[0] = '\0';
        for (int i = 0; i < m->sensor_channels && len < sizeof buf; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? ", " : "", m->sensor_names[i]);
        printf("sensors   %d steps x %d channels (%s)\n", m->sensor_steps, m->sensor_channels, buf);
    } else {
        printf("sensors   no\n");
    }
    printf("text      %s\n", m->has_text ? "yes" : "no");
    human_size(total_bytes(m), buf, sizeof buf);
    printf("size      %s in %zu shard%s\n", buf, m->nshards, m->nshards == 1 ? "" : "s");

    int width = 5;
    for (int c = 0; c < m->nclasses; c++)
        if ((int)strlen(m->class_names[c]) > width) width = (int)strlen(m->class_names[c]);
    printf("\nclasses   %d%s\n", m->nclasses, m->nclasses ? " (counts per split: train / val / test)" : "");
    if (m->nclasses) printf("  %4s  %-*s  %-24s  %s\n", "id", width, "name", "boxes", "images");
    for (int c = 0; c < m->nclasses; c++) {
        split_triple(st->boxes[c], buf, sizeof buf);
        split_triple(st->images[c], buf2, sizeof buf2);
        printf("  %4d  %-*s  %-24s  %s\n", c, width, m->class_names[c], buf, buf2);
    }
    uint64_t labeled[LATHE_NSPLITS] = {0};
    for (int c = 0; c < m->nclasses; c++)
        for (int s = 0; s < LATHE_NSPLITS; s++) labeled[s] += st->images[c][s];
    split_triple(st->total_boxes, buf, sizeof buf);
    split_triple(labeled, buf2, sizeof buf2);
    printf("  %4s  %-*s  %-24s  %s\n", "", width, "all", buf, buf2);
    split_triple(st->unlabeled, buf2, sizeof buf2);
    printf("  %4s  %-*s  %-24s  %s\n", "", width, "no label", "", buf2);
    if (st->bad_labels)
        printf("  warning: %" PRIu64 " labels outside the classes (run `lathe verify`)\n", st->bad_labels);
    if (st->split_mismatches)
        printf("  warning: %" PRIu64 " samples whose /meta split is not the one the manifest lists their shard under: the "
               "split counts above are the manifest's (run `lathe verify`)\n",
               st->split_mismatches);

    printf("\nshards\n  %-20s  %-5s  %8s  %12s\n", "file", "split", "samples", "bytes");
    for (size_t i = 0; i < m->nshards; i++) {
        const lathe_manifest_shard *sh = &m->shards[i];
        printf("  %-20s  %-5s  %8" PRIu64 "  %12" PRIu64 "\n", sh->file, lathe_split_name(sh->split), sh->samples,
               sh->bytes);
    }
    return EXIT_OK;
}

int cmd_info(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--log-format") == 0 || strncmp(a, "--log-format=", 13) == 0) {
            const char *v = a[12] == '=' ? a + 13 : i + 1 < argc ? argv[++i] : NULL;
            if (!v) return cli_usage_error("info", "--log-format needs a value (text or json)");
            if (cli_set_log_format(v)) return cli_usage_error("info", "unknown --log-format '%s' (text or json)", v);
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("info", "unknown option '%s'", a);
        } else if (dir) {
            return cli_usage_error("info", "one DATASET only ('%s' and '%s')", dir, a);
        } else {
            dir = a;
        }
    }
    if (!dir) return cli_usage_error("info", "which DATASET?");
    lathe_dataset *ds;
    char what[4200];
    snprintf(what, sizeof what, "info %s", dir);
    if (lathe_dataset_open(dir, &ds)) {
        cli_error(what, NULL);
        return EXIT_FAIL;
    }
    lathe_dataset_stats st;
    if (lathe_dataset_stats_compute(ds, &st)) {
        cli_error(what, NULL);
        lathe_dataset_close(ds);
        return EXIT_FAIL;
    }
    int rc = json ? print_json(dir, ds, &st) : print_text(dir, ds, &st);
    if (fflush(stdout) != 0) {
        cli_error(what, "cannot write to stdout");
        rc = EXIT_FAIL;
    }
    lathe_dataset_stats_free(&st);
    lathe_dataset_close(ds);
    return rc;
}
