/* ingest.c - `lathe ingest`: parses the command line, connects the label adapters (datasets/) to
 * libcore's ingest pipeline, handles Ctrl-C, and prints the summary. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "datasets/adapters.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/data/ingest.h"
#include "libcore/io/shard.h"

static void usage(FILE *out) {
    lathe_ingest_opts d; /* the defaults the help states are the library's, never copies of them */
    lathe_ingest_defaults(&d);
    fprintf(out,
            "usage: lathe ingest SRC -o DATASET [options]\n"
            "       lathe ingest --merge -o DATASET PART_DATASET...\n\n"
            "Reads SRC (a folder, or a .tar, .tar.gz, .tar.zst or .zip streamed without extracting) and\n"
            "writes DATASET: HDF5 shards, manifest.json and rejects.jsonl (docs/FORMAT.md). Rerunning the\n"
            "same command after a crash or Ctrl-C resumes; it ends with exactly the samples of one run.\n\n"
            "options:\n"
            "  -o, --output DIR        the dataset folder (created; must be empty or a lathe dataset)\n"
            "  --format NAME           label format: auto (default)");
    for (const lathe_adapter *const *a = lathe_adapters(); *a; a++) fprintf(out, ", %s", (*a)->name);
    fprintf(out,
            "\n"
            "  --store pixels|encoded  decoded, letterboxed pixels (default) or the source bytes as they are\n"
            "  --size N                letterbox side in pixels (default %d)\n"
            "  --tile T                cut images into T x T tiles at full resolution instead of letterboxing\n"
            "                          (the pixels store only)\n"
            "  --overlap O             tile overlap in pixels, less than T (default %d)\n"
            "  --min-visibility F      tiles: keep a clipped box when F of its area shows (default %g)\n"
            "  --shard-size N          samples per shard (default %zu)\n"
            "  --split SPLIT           where each sample's split comes from. source: the source's own train/,\n"
            "                          val/ and test/ folders (also training, valid, validation, testing,\n"
            "                          val2017...; the deepest such folder of the path) or split label files\n"
            "                          (instances_val2017.json), images in none rejected; the default when\n"
            "                          the source has any (docs/FORMAT.md, Splits). source,X: the same,\n"
            "                          and a share X of train becomes the split the source lacks (val, else\n"
            "                          test), by the stable hash. A,B,C: train,val,test shares by a stable\n"
            "                          hash of the key (the default otherwise: %g,%g,%g)\n"
            "  --group-by REGEX        split (and part) by the regex's first group (or match) of the path,\n"
            "                          so related images (one part, one session) share a split\n"
            "  --part I/N              ingest only the stable slice I of N (a Slurm array task)\n"
            "  --merge                 join complete --part datasets given as arguments into DATASET\n"
            "  --box-policy clip|reject  boxes outside the image or of negative size: clip (drop what is\n"
            "                          empty, default) or reject the sample\n"
            "  --sensor-nan keep|reject  a sensor window with NaN values is kept (default) or rejected\n"
            "  --max-pixels N          reject images with more pixels (default %" PRIu64 ")\n"
            "  --max-entry-bytes N     reject entries larger than this (default %" PRIu64 ")\n"
            "  --max-label-bytes N     fail when the label files hold more bytes in all (default %" PRIu64 ")\n"
            "  --threads N             worker threads (default: all CPUs)\n"
            "  --zstd-level N          compression level 1..19 (default %d)\n"
            "  --strict                exit 4 when anything was rejected\n"
            "  --overwrite             replace a dataset that was made with other arguments\n"
            "  --log-format text|json  progress and messages on stderr as text or JSON lines\n"
            "  -h, --help              this help\n\n"
            "exit codes: 0 ok, 1 failure, 2 usage, 4 rejects under --strict, 130 interrupted\n",
            d.size, d.overlap, d.min_visibility, d.shard_size, d.split[0], d.split[1], d.split[2], d.max_pixels,
            d.max_entry_bytes, d.max_label_bytes, d.zstd_level);
}

static int parse_split(const char *s, double out[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        out[i] = strtod(s, &end);
        if (end == s || out[i] < 0 || out[i] > 1 || (i < 2 && *end != ',') || (i == 2 && *end)) return -1;
        s = end + 1;
    }
    double sum = out[0] + out[1] + out[2];
    return sum > 0.999 && sum < 1.001 ? 0 : -1;
}

/* Counts rejects.jsonl lines per reason into a cJSON object. */
static cJSON *reject_reasons(const char *dir) {
    char path[4200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/rejects.jsonl", dir);
    cJSON *counts = cJSON_CreateObject();
    if (lathe_read_file(path, (size_t)1 << 32, &text, &len)) return counts;
    for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        cJSON *o = cJSON_Parse(p);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "reason");
        if (cJSON_IsString(r)) {
            cJSON *n = cJSON_GetObjectItemCaseSensitive(counts, r->valuestring);
            if (n) cJSON_SetNumberValue(n, n->valuedouble + 1);
            else cJSON_AddNumberToObject(counts, r->valuestring, 1);
        }
        cJSON_Delete(o);
    }
    free(text);
    return counts;
}

static void print_summary(const char *out, const lathe_ingest_summary *s) {
    cJSON *reasons = reject_reasons(out);
    if (lathe_log_is_json()) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", out);
        cJSON_AddStringToObject(o, "format", s->format ? s->format : "");
        cJSON_AddNumberToObject(o, "samples", (double)s->samples);
        cJSON_AddNumberToObject(o, "train", (double)s->per_split[0]);
        cJSON_AddNumberToObject(o, "val", (double)s->per_split[1]);
        cJSON_AddNumberToObject(o, "test", (double)s->per_split[2]);
        cJSON_AddNumberToObject(o, "shards", (double)s->shards);
        cJSON_AddNumberToObject(o, "rejected", (double)s->rejected);
        cJSON_AddNumberToObject(o, "ignored", (double)s->ignored);
        cJSON_AddBoolToObject(o, "already_complete", s->already_complete);
        cJSON_AddItemToObject(o, "reject_reasons", reasons);
        char *text = cJSON_PrintUnformatted(o);
        if (text) printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(o);
        return;
    }
    printf("%s: %s%llu samples (train %llu, val %llu, test %llu) in %llu shards; %llu rejected, %llu ignored\n", out,
           s->already_complete ? "already complete: " : "", (unsigned long long)s->samples,
           (unsigned long long)s->per_split[0], (unsigned long long)s->per_split[1], (unsigned long long)s->per_split[2],
           (unsigned long long)s->shards, (unsigned long long)s->rejected, (unsigned long long)s->ignored);
    const cJSON *r;
    cJSON_ArrayForEach(r, reasons) printf("  rejected %-24s %d\n", r->string, (int)r->valuedouble);
    if (s->rejected) printf("  (details in %s/rejects.jsonl)\n", out);
    cJSON_Delete(reasons);
}

enum {
    OPT_FORMAT = 256, OPT_STORE, OPT_SIZE, OPT_TILE, OPT_OVERLAP, OPT_MINVIS, OPT_SHARD, OPT_SPLIT, OPT_GROUP,
    OPT_PART, OPT_MERGE, OPT_BOX, OPT_NAN, OPT_MAXPIX, OPT_MAXBYTES, OPT_MAXLABEL, OPT_THREADS, OPT_LEVEL, OPT_STRICT,
    OPT_OVERWRITE, OPT_LOG,
};

static const struct option options[] = {
    {"output", required_argument, 0, 'o'}, {"format", required_argument, 0, OPT_FORMAT},
    {"store", required_argument, 0, OPT_STORE}, {"size", required_argument, 0, OPT_SIZE},
    {"tile", required_argument, 0, OPT_TILE}, {"overlap", required_argument, 0, OPT_OVERLAP},
    {"min-visibility", required_argument, 0, OPT_MINVIS}, {"shard-size", required_argument, 0, OPT_SHARD},
    {"split", required_argument, 0, OPT_SPLIT}, {"group-by", required_argument, 0, OPT_GROUP},
    {"part", required_argument, 0, OPT_PART}, {"merge", no_argument, 0, OPT_MERGE},
    {"box-policy", required_argument, 0, OPT_BOX}, {"sensor-nan", required_argument, 0, OPT_NAN},
    {"max-pixels", required_argument, 0, OPT_MAXPIX}, {"max-entry-bytes", required_argument, 0, OPT_MAXBYTES},
    {"max-label-bytes", required_argument, 0, OPT_MAXLABEL},
    {"threads", required_argument, 0, OPT_THREADS}, {"zstd-level", required_argument, 0, OPT_LEVEL},
    {"strict", no_argument, 0, OPT_STRICT}, {"overwrite", no_argument, 0, OPT_OVERWRITE},
    {"log-format", required_argument, 0, OPT_LOG}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
};

/* Applies one option to o; returns 0 or EXIT_USAGE. */
static int apply_option(int opt, const char *arg, lathe_ingest_opts *o, int *merge, int *strict) {
    long long v;
    double d;
    switch (opt) {
    case 'o': o->out = arg; return 0;
    case OPT_FORMAT:
        if (strcmp(arg, "auto") == 0) o->adapter = NULL;
        else if (!(o->adapter = lathe_adapter_find(arg))) return cli_usage_error("ingest", "unknown --format '%s'", arg);
        return 0;
    case OPT_STORE:
        if (strcmp(arg, "pixels") == 0) o->store = LATHE_STORE_PIXELS;
        else if (strcmp(arg, "encoded") == 0) o->store = LATHE_STORE_ENCODED;
        else return cli_usage_error("ingest", "--store must be pixels or encoded");
        return 0;
    case OPT_SIZE:
        if (cli_parse_int(arg, 8, 16384, &v)) return cli_usage_error("ingest", "--size must be 8..16384");
        o->size = (int)v;
        return 0;
    case OPT_TILE:
        if (cli_parse_int(arg, 8, 16384, &v)) return cli_usage_error("ingest", "--tile must be 8..16384");
        o->tile = (int)v;
        return 0;
    case OPT_OVERLAP:
        if (cli_parse_int(arg, 0, 16383, &v)) return cli_usage_error("ingest", "--overlap must be 0..16383");
        o->overlap = (int)v;
        return 0;
    case OPT_MINVIS:
        if (cli_parse_double(arg, 0, 1, &d)) return cli_usage_error("ingest", "--min-visibility must be in [0, 1]");
        o->min_visibility = d;
        return 0;
    case OPT_SHARD:
        if (cli_parse_int(arg, 1, 1000000, &v)) return cli_usage_error("ingest", "--shard-size must be 1..1000000");
        o->shard_size = (size_t)v;
        return 0;
    case OPT_SPLIT:
        if (!strcmp(arg, "source") || !strncmp(arg, "source,", 7)) {
            o->split_mode = LATHE_SPLIT_SOURCE, o->carve = 0;
            if (arg[6] && cli_parse_double(arg + 7, 0, 0.999, &o->carve))
                return cli_usage_error("ingest", "--split source,X needs a share X in [0, 1)");
            return 0;
        }
        if (parse_split(arg, o->split))
            return cli_usage_error("ingest", "--split needs source, source,X or three shares summing to 1");
        o->split_mode = LATHE_SPLIT_HASH;
        return 0;
    case OPT_GROUP: o->group_by = arg; return 0;
    case OPT_PART: {
        int i, n;
        char extra;
        if (sscanf(arg, "%d/%d%c", &i, &n, &extra) != 2 || n < 1 || i < 0 || i >= n)
            return cli_usage_error("ingest", "--part must be I/N with 0 <= I < N");
        o->part_index = i, o->part_count = n;
        return 0;
    }
    case OPT_MERGE: *merge = 1; return 0;
    case OPT_BOX:
        if (strcmp(arg, "clip") == 0) o->box_policy = LATHE_BOX_CLIP;
        else if (strcmp(arg, "reject") == 0) o->box_policy = LATHE_BOX_REJECT;
        else return cli_usage_error("ingest", "--box-policy must be clip or reject");
        return 0;
    case OPT_NAN:
        if (strcmp(arg, "keep") && strcmp(arg, "reject")) return cli_usage_error("ingest", "--sensor-nan must be keep or reject");
        o->reject_nan_sensors = strcmp(arg, "reject") == 0;
        return 0;
    case OPT_MAXPIX:
        if (cli_parse_int(arg, 1, (long long)1 << 40, &v)) return cli_usage_error("ingest", "--max-pixels must be positive");
        o->max_pixels = (uint64_t)v;
        return 0;
    case OPT_MAXBYTES:
        if (cli_parse_int(arg, 1, (long long)1 << 40, &v)) return cli_usage_error("ingest", "--max-entry-bytes must be positive");
        o->max_entry_bytes = (uint64_t)v;
        return 0;
    case OPT_MAXLABEL:
        if (cli_parse_int(arg, 1, (long long)1 << 50, &v)) return cli_usage_error("ingest", "--max-label-bytes must be positive");
        o->max_label_bytes = (uint64_t)v;
        return 0;
    case OPT_THREADS:
        if (cli_parse_int(arg, 1, 1024, &v)) return cli_usage_error("ingest", "--threads must be 1..1024");
        o->threads = (int)v;
        return 0;
    case OPT_LEVEL:
        if (cli_parse_int(arg, 1, 19, &v)) return cli_usage_error("ingest", "--zstd-level must be 1..19");
        o->zstd_level = (int)v;
        return 0;
    case OPT_STRICT: *strict = 1; return 0;
    case OPT_OVERWRITE: o->overwrite = 1; return 0;
    case OPT_LOG:
        if (cli_set_log_format(arg)) return cli_usage_error("ingest", "--log-format must be text or json");
        return 0;
    default: return cli_usage_error("ingest", "unknown option");
    }
}

/* Workers allocate image-sized buffers (~1 MB) that the writer thread frees. Above glibc's default
 * mmap threshold each one is a fresh mmap with its page faults and munmap: about 15% of ingest time
 * on 2 cores (docs/PERFORMANCE.md). The program, not the library, owns this process-wide choice. */
static void tune_allocator(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

int cmd_ingest(int argc, char **argv) {
    tune_allocator();
    lathe_ingest_opts o;
    lathe_ingest_defaults(&o);
    o.adapters = lathe_adapters();
    o.detect = lathe_adapter_detect;
    int merge = 0, strict = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (opt == '?') return cli_usage_error("ingest", "bad option");
        int rc = apply_option(opt, optarg, &o, &merge, &strict);
        if (rc) return rc;
    }
    if (!o.out) return cli_usage_error("ingest", "-o DATASET is required");
    if (o.tile && o.overlap >= o.tile) return cli_usage_error("ingest", "--overlap must be less than --tile");
    if (o.tile && o.store == LATHE_STORE_ENCODED)
        return cli_usage_error("ingest", "--tile cuts decoded pixels: it does not go with --store encoded");
    lathe_ingest_summary sum;
    int rc;
    if (merge) {
        if (optind >= argc) return cli_usage_error("ingest", "--merge needs the part datasets");
        rc = lathe_ingest_merge(o.out, (const char *const *)argv + optind, (size_t)(argc - optind), &sum);
        if (rc) {
            cli_error("merging parts", NULL);
            return EXIT_FAIL;
        }
    } else {
        if (optind != argc - 1) return cli_usage_error("ingest", "exactly one SRC is required");
        o.src = argv[optind];
        o.stop = cli_stop_on_signals();
        rc = lathe_ingest_run(&o, &sum);
        if (rc == -LATHE_EINTR) {
            fprintf(stderr, "lathe: interrupted; %s keeps what was committed; run the same command to resume\n", o.out);
            return 130;
        }
        if (rc) {
            char what[4200];
            snprintf(what, sizeof what, "ingest %s", o.src);
            cli_error(what, NULL);
            return EXIT_FAIL;
        }
    }
    print_summary(o.out, &sum);
    if (sum.samples == 0) {
        cli_error("ingest", "no sample was ingested (see rejects.jsonl)");
        return EXIT_FAIL;
    }
    return strict && sum.rejected ? EXIT_REJECTED : EXIT_OK;
}
