/* predict.c - `lathe predict RUN INPUT...`: a detector run's checkpoint on image files, folders of
 * images, or a dataset split: COCO results JSON in source pixels, and with --render the images with
 * their boxes drawn. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "libcore/anomaly/anomaly.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/folder_lock.h"
#include "libcore/base/output_set.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/base/utf8.h"
#include "libcore/data/transform.h"
#include "libcore/det/detector.h"
#include "libcore/det/tile_merge.h"
#include "libcore/eval/draw.h"
#include "libcore/io/image.h"
#include "libcore/mm/prompts.h"
#include "libcore/nn/checkpoint.h"
#include "libcore/nn/trainer.h"

enum { MAX_FILE_BYTES = 256 << 20 };
#define MAX_PIXELS 100000000ull /* decompression-bomb guard: 100 megapixels */

static void usage(FILE *out) {
    fprintf(out, "usage: lathe predict RUN IMAGE|FOLDER... [options]\n"
                 "       lathe predict RUN --dataset D [--split S] [options]\n\n"
                 "Runs a detector run's checkpoint (task: detect), or a detector's engine file (`lathe export\n"
                 "--format lathe`; results in ENGINE.predict/, the tiling it records), on JPEG/PNG files and\n"
                 "folders of them (not recursive, sorted by name), or on every sample of a dataset split. Writes\n"
                 "OUT/predictions.json, COCO results ({image_id, category_id, bbox [x, y, w, h] in source pixels,\n"
                 "score}); for files also OUT/images.json ({id, file_name, width, height} per image, id =\n"
                 "image_id), for a dataset image_id is the one `lathe eval --detections --dataset` expects.\n"
                 "Unreadable images are reported and skipped (exit 1 at the end). On a tiled dataset (ingest\n"
                 "--tile), and on files with --tile, each image's tile detections become whole-image ones: a box\n"
                 "that a tile's inner edge cuts scores half, then NMS across the tiles, and a cut piece of an\n"
                 "object that another tile sees is merged into that one detection.\n"
                 "An anomaly run (task: anomaly) scores image files: OUT/anomaly.json ({id, file_name, width,\n"
                 "height, score, anomalous at the run's threshold, map} per image) and OUT/maps/<id>-<stem>.png,\n"
                 "the anomaly map at the image's size in grey levels, 128 at the run's threshold.\n\n"
                 "  --checkpoint C      best (default), last, or a .safetensors path\n"
                 "  --dataset D         predict on a lathe dataset instead of files\n"
                 "  --split S           with --dataset: train, val (default) or test\n"
                 "  -o, --output DIR    where results go (default RUN/predict): replaced as a whole when the run\n"
                 "                      ends, never half old, half new; a folder holding other files is refused\n"
                 "  --conf X            score floor (default 0.25; 0.001 for evaluation)\n"
                 "  --iou X             NMS IoU threshold (default 0.7)\n"
                 "  --max-det N         detections kept per image (default 100)\n"
                 "  --tile T            image files: run on T x T tiles of each image at full resolution (overlap\n"
                 "                      --overlap O pixels) and merge the tiles' detections per image, as eval does\n"
                 "                      for a tiled dataset; default: the tiling of the run's dataset when it was\n"
                 "                      ingested with --tile, else none (letterbox the whole image); 0 turns it off\n"
                 "  --overlap O         tile overlap in pixels (default: the run's dataset's, else 0)\n"
                 "  --render            also draw the boxes: OUT/render/<image id>-<image stem>.png (dataset: <sample\n"
                 "                      index>.png, a tiled dataset's whole images named by their first tile); an\n"
                 "                      image too large to draw is said and left undrawn\n"
                 "  --threads N         CPU threads (default: all cores)\n"
                 "  --device D          cpu, cuda, cuda:N or auto (default: the run's train.device, else auto)\n"
                 "  --flip on|off       a detector's test-time mirror: each image is also scored flipped left to\n"
                 "                      right and the two views' detections fused (a box both views find keeps\n"
                 "                      the mean score, one view's alone half its score); twice the time\n"
                 "                      (default: the run's eval.flip, else off)\n"
                 "  --classes LIST      an open-vocabulary detector (a `vocab` head, docs/MULTIMODAL.md): detect\n"
                 "                      these comma-separated classes instead of the trained ones, named in text\n"
                 "                      (\"scratch,dent,oil stain\"; category_id = the position in LIST); image files\n"
                 "  --log-format FMT    text (default) or json log lines on stderr\n"
                 "  -h, --help          this help\n");
}

static const struct option options[] = {
    {"checkpoint", required_argument, NULL, 'c'}, {"dataset", required_argument, NULL, 'd'},
    {"split", required_argument, NULL, 's'},      {"output", required_argument, NULL, 'o'},
    {"conf", required_argument, NULL, 'C'},       {"iou", required_argument, NULL, 'I'},
    {"max-det", required_argument, NULL, 'M'},    {"render", no_argument, NULL, 'r'},
    {"threads", required_argument, NULL, 't'},    {"log-format", required_argument, NULL, 'l'}, {"device", required_argument, NULL, 'V'},
    {"flip", required_argument, NULL, 'F'},
    {"tile", required_argument, NULL, 'T'},       {"overlap", required_argument, NULL, 'O'},
    {"classes", required_argument, NULL, 'K'},
    {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
};

/* --classes: the run's spec made to name these classes (model.classes, class_names), so the
 * detector opens with an open-vocabulary head of that many text rows. */
static int name_classes(cJSON *spec, const char *list) {
    cJSON *names = cJSON_CreateArray(), *model = cJSON_GetObjectItemCaseSensitive(spec, "model");
    char *copy = strdup(list), *rest = copy;
    int n = 0, rc = names && copy && cJSON_IsObject(model) ? 0 : lathe_fail(LATHE_ENOMEM, "--classes");
    for (char *tok = rc ? NULL : strsep(&rest, ","); tok && !rc; tok = strsep(&rest, ",")) {
        while (*tok == ' ') tok++;
        for (char *e = tok + strlen(tok); e > tok && e[-1] == ' '; e--) e[-1] = 0;
        const cJSON *seen;
        cJSON_ArrayForEach(seen, names) if (!strcmp(seen->valuestring, tok)) rc = lathe_fail(LATHE_EINVAL,
                                                                                            "--classes names %s twice", tok);
        if (!*tok) rc = lathe_fail(LATHE_EINVAL, "--classes: an empty class name");
        if (!rc) cJSON_AddItemToArray(names, cJSON_CreateString(tok)), n++;
    }
    if (!rc && (n < 1 || n > 1024)) rc = lathe_fail(LATHE_EINVAL, "--classes: 1 to 1024 names, separated by commas");
    if (!rc) {
        cJSON_DeleteItemFromObjectCaseSensitive(model, "classes");
        cJSON_AddNumberToObject(model, "classes", n);
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "class_names");
        cJSON_AddItemToObject(spec, "class_names", names), names = NULL;
    }
    cJSON_Delete(names);
    free(copy);
    return rc;
}

/* The checkpoint's weights into a detector whose open-vocabulary head names other classes: every
 * tensor but the head's text rows, which keep the new names' prompts. */
static int load_renamed(lathe_detector *d, const cJSON *spec, const char *ck) {
    lathe_layer_view v;
    lathe_graph_layer(d->g, lathe_graph_nlayers(d->g) - 1, &v);
    if (v.type != LATHE_LAYER_VOCAB)
        return lathe_fail(LATHE_EINVAL, "--classes needs an open-vocabulary detector (a model ending in a vocab layer)");
    size_t loaded = 0;
    int rc = lathe_checkpoint_import(ck, NULL, d->g, &loaded);
    if (!rc && loaded + 1 < lathe_graph_nparams(d->g))
        rc = lathe_fail(LATHE_EFORMAT, "%s holds %zu of the model's %zu tensors", ck, loaded, lathe_graph_nparams(d->g));
    return rc ? rc : lathe_vocab_set_classes(d->g, spec, (const char *const *)d->class_names, d->classes, 1);
}

typedef struct {
    char **paths;
    size_t n, cap;
} file_list;

static int list_add(file_list *l, const char *path) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->paths, cap * sizeof *p);
        if (!p) return lathe_fail(LATHE_ENOMEM, "file list");
        l->paths = p, l->cap = cap;
    }
    return (l->paths[l->n] = strdup(path)) ? (l->n++, 0) : lathe_fail(LATHE_ENOMEM, "file list");
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files as given; a folder contributes its JPEG/PNG files, sorted. */
static int collect(file_list *l, char **args, int n) {
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(args[i], &st)) return lathe_fail(LATHE_ENOTFOUND, "%s: no such file or folder", args[i]);
        if (!S_ISDIR(st.st_mode)) {
            int rc = list_add(l, args[i]);
            if (rc) return rc;
            continue;
        }
        DIR *dir = opendir(args[i]);
        if (!dir) return lathe_fail(LATHE_EIO, "%s: cannot read the folder", args[i]);
        size_t first = l->n;
        int rc = 0;
        for (struct dirent *e; !rc && (e = readdir(dir));) {
            if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", args[i], e->d_name);
            struct stat est;
            if (stat(path, &est) == 0 && S_ISDIR(est.st_mode)) continue; /* not recursive, whatever a folder is named */
            rc = list_add(l, path);
        }
        closedir(dir);
        if (rc) return rc;
        qsort(l->paths + first, l->n - first, sizeof *l->paths, cmp_str);
    }
    return l->n ? 0 : lathe_fail(LATHE_EINVAL, "no JPEG or PNG image among the inputs");
}

static void list_free(file_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
}

/* Draws an image's detections (source pixels) to OUT/render/<name>.png. */
static int render(const lathe_detector *d, const lathe_image *img, const lathe_coco_ann *dt, size_t n, const char *out,
                  const char *name) {
    lathe_drawn_box *boxes = calloc(n + 1, sizeof *boxes);
    if (!boxes) return lathe_fail(LATHE_ENOMEM, "boxes to draw");
    for (size_t i = 0; i < n; i++)
        boxes[i] = (lathe_drawn_box){(float)dt[i].x, (float)dt[i].y, (float)(dt[i].x + dt[i].w), (float)(dt[i].y + dt[i].h),
                                     (float)dt[i].score, (int32_t)dt[i].category_id, 0};
    lathe_png png = {0};
    char dir[4400], path[4600];
    snprintf(dir, sizeof dir, "%s/render", out);
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    int rc = lathe_draw_boxes(img->pixels, img->width, img->height, boxes, n, (const char *const *)d->class_names,
                              d->classes, &png);
    if (!rc) rc = lathe_mkdirs(dir);
    if (!rc) rc = lathe_png_write_file(&png, path);
    lathe_png_free(&png);
    free(boxes);
    return rc;
}

/* Letterboxes a decoded image into the graph's input slot i; returns the plan. */
static int load_input(lathe_detector *d, const lathe_image *img, int slot, uint8_t *canvas, lathe_letterbox *plan) {
    *plan = lathe_letterbox_plan(img->width, img->height, d->w);
    int rc = lathe_letterbox_into(img, plan, d->w, LATHE_LETTERBOX_FILL, 0, canvas);
    if (rc) return rc;
    float *x = lathe_graph_input(d->g, NULL, NULL, NULL) + (size_t)slot * 3 * d->h * d->w;
    for (int c = 0; c < 3; c++)
        for (size_t p = 0; p < (size_t)d->h * d->w; p++)
            x[(size_t)c * d->h * d->w + p] = (canvas[p * 3 + c] / 255.0f - d->mean) / d->std;
    return 0;
}

typedef struct {
    lathe_coco_ann *dt;
    size_t n, cap;
} results;

static int results_add(results *r, const lathe_detection *det, int n, const lathe_letterbox *plan, const lathe_image *img,
                       int64_t id) {
    if (r->n + (size_t)n > r->cap) {
        size_t cap = 2 * r->cap + (size_t)n + 256;
        lathe_coco_ann *p = realloc(r->dt, cap * sizeof *p);
        if (!p) return lathe_fail(LATHE_ENOMEM, "results");
        r->dt = p, r->cap = cap;
    }
    /* the image file's letterbox plays the part of a dataset sample's /meta */
    lathe_meta mt = {.orig_width = img->width, .orig_height = img->height, .scale_x = plan->scale_x,
                     .scale_y = plan->scale_y, .pad_x = plan->pad_x, .pad_y = plan->pad_y};
    lathe_det_to_source(det, n, &mt, id, 1, 0, 0, r->dt + r->n);
    r->n += (size_t)n;
    return 0;
}

/* Files in batches of one graph batch; a bad image is reported and skipped. */
/* images.json is JSON, so UTF-8: a name in another encoding is written with U+FFFD for the bytes
 * that are not UTF-8, and said (the image's id still ties it to its detections). */
static void add_file_name(cJSON *im, const char *path) {
    char *name = lathe_utf8_valid(path, strlen(path)) ? NULL : lathe_utf8_repair(path);
    if (name) lathe_log(LATHE_LOG_WARN, "predict.name", "%s: the file name is not UTF-8; images.json holds %s", path, name);
    cJSON_AddStringToObject(im, "file_name", name ? name : path);
    free(name);
}

/* How image files are cut: tile side (0: letterbox the whole image) and overlap. */
typedef struct {
    int tile, overlap;
} tiling;

/* One image's detections from its tiles (lathe_tile_origins, as ingest cuts them), each tile
 * letterboxed into the model's input, mapped to source pixels and merged (lathe_tile_merge). */
enum { MAX_AXIS = 4096 }; /* tiles a side of one image */

/* An image too long for the tiling (a side of more than MAX_AXIS tiles) is refused like an
 * unreadable one: that image skipped, the others predicted. */
static int tiles_fit(const tiling *tl, const lathe_image *img) {
    if (!tl->tile) return 0;
    int nx = lathe_tile_origins(img->width, tl->tile, tl->overlap, NULL, 0);
    int ny = lathe_tile_origins(img->height, tl->tile, tl->overlap, NULL, 0);
    return nx > MAX_AXIS || ny > MAX_AXIS
               ? lathe_fail(LATHE_ELIMIT, "%dx%d would make more than %d tiles of %d a side (--tile 0 letterboxes it whole)",
                            img->width, img->height, MAX_AXIS, tl->tile)
               : 0;
}

static int predict_tiled(lathe_detector *d, const lathe_image *img, const tiling *tl, const lathe_det_predict_opts *o,
                         int64_t id, uint8_t *canvas, results *res) {
    int xs[MAX_AXIS], ys[MAX_AXIS], T = tl->tile;
    int nx = lathe_tile_origins(img->width, T, tl->overlap, xs, MAX_AXIS);
    int ny = lathe_tile_origins(img->height, T, tl->overlap, ys, MAX_AXIS);
    if (nx > MAX_AXIS || ny > MAX_AXIS) return lathe_fail(LATHE_ELIMIT, "the image would make more than %d tiles a side", MAX_AXIS);
    size_t ntiles = (size_t)nx * ny, cap = 0, n = 0;
    uint8_t *tile_px = malloc((size_t)T * T * 3);
    lathe_detection *dets = malloc(sizeof *dets * (size_t)d->batch * o->max_det);
    int *counts = malloc(sizeof *counts * (size_t)d->batch);
    lathe_coco_ann *dt = NULL;
    lathe_tile_rect *rects = NULL;
    int rc = tile_px && dets && counts ? 0 : lathe_fail(LATHE_ENOMEM, "tile buffers");
    lathe_image tile = {T, T, 3, tile_px};
    lathe_letterbox plan = lathe_letterbox_plan(T, T, d->w);
    for (size_t first = 0; !rc && first < ntiles; first += (size_t)d->batch) {
        int got = (int)(ntiles - first < (size_t)d->batch ? ntiles - first : (size_t)d->batch);
        for (int k = 0; !rc && k < got; k++) {
            size_t t = first + (size_t)k;
            lathe_tile_copy(img, xs[t % (size_t)nx], ys[t / (size_t)nx], T, LATHE_LETTERBOX_FILL, tile_px);
            lathe_letterbox unused;
            rc = load_input(d, &tile, k, canvas, &unused);
        }
        if (!rc) rc = lathe_detector_run(d, got, o, dets, counts);
        for (int k = 0; !rc && k < got; k++) {
            if (n + (size_t)counts[k] > cap) {
                cap = 2 * cap + (size_t)counts[k] + 64;
                lathe_coco_ann *g = realloc(dt, cap * sizeof *g);
                lathe_tile_rect *r = g ? realloc(rects, cap * sizeof *r) : NULL;
                if (g) dt = g;
                if (r) rects = r;
                if (!g || !r) {
                    rc = lathe_fail(LATHE_ENOMEM, "tile detections");
                    break;
                }
            }
            size_t t = first + (size_t)k;
            lathe_meta mt = {.orig_width = img->width, .orig_height = img->height, .scale_x = plan.scale_x,
                             .scale_y = plan.scale_y, .pad_x = plan.pad_x, .pad_y = plan.pad_y,
                             .tile_x = xs[t % (size_t)nx], .tile_y = ys[t / (size_t)nx]};
            lathe_det_to_source(dets + (size_t)k * o->max_det, counts[k], &mt, id, 1, 0, 0, dt + n);
            for (int j = 0; j < counts[k]; j++)
                rects[n + (size_t)j] = (lathe_tile_rect){mt.tile_x, mt.tile_y, mt.tile_x + T, mt.tile_y + T};
            n += (size_t)counts[k];
        }
    }
    lathe_tile_merge_opts mo = lathe_detector_merge_opts(o);
    size_t kept = 0;
    if (!rc) rc = lathe_tile_merge(dt, rects, n, img->width, img->height, &mo, &kept);
    if (!rc && res->n + kept > res->cap) {
        size_t c = 2 * res->cap + kept + 256;
        lathe_coco_ann *p = realloc(res->dt, c * sizeof *p);
        if (!p) rc = lathe_fail(LATHE_ENOMEM, "results");
        else res->dt = p, res->cap = c;
    }
    if (!rc) memcpy(res->dt + res->n, dt, kept * sizeof *dt), res->n += kept;
    free(tile_px), free(dets), free(counts), free(dt), free(rects);
    return rc;
}

static int predict_files(lathe_detector *d, const file_list *files, const tiling *tl, const lathe_det_predict_opts *o,
                         int draw, const char *out, results *res, cJSON *images, int *skipped) {
    uint8_t *canvas = malloc((size_t)d->w * d->w * 3);
    lathe_detection *dets = malloc(sizeof *dets * (size_t)d->batch * o->max_det);
    int *counts = malloc(sizeof *counts * (size_t)d->batch);
    lathe_image *imgs = calloc((size_t)d->batch, sizeof *imgs);
    lathe_letterbox *plans = calloc((size_t)d->batch, sizeof *plans);
    int64_t *ids = calloc((size_t)d->batch, sizeof *ids);
    int rc = canvas && dets && counts && imgs && plans && ids ? 0 : lathe_fail(LATHE_ENOMEM, "prediction buffers");
    lathe_decode_opts dopt = {.max_pixels = MAX_PIXELS, .channels = 3};
    for (size_t next = 0; !rc && next < files->n;) {
        int n = 0;
        for (; next < files->n && n < d->batch; next++) {
            char *data = NULL;
            size_t len = 0;
            int r = lathe_read_file(files->paths[next], MAX_FILE_BYTES, &data, &len);
            if (!r) r = lathe_image_decode((const uint8_t *)data, len, &dopt, &imgs[n], NULL);
            free(data);
            if (!r) r = tl->tile ? tiles_fit(tl, &imgs[n]) : load_input(d, &imgs[n], n, canvas, &plans[n]);
            if (r) {
                cli_error(files->paths[next], NULL);
                lathe_image_free(&imgs[n]);
                ++*skipped;
                continue;
            }
            ids[n] = (int64_t)next;
            cJSON *im = cJSON_CreateObject();
            cJSON_AddNumberToObject(im, "id", (double)next);
            add_file_name(im, files->paths[next]);
            cJSON_AddNumberToObject(im, "width", imgs[n].width);
            cJSON_AddNumberToObject(im, "height", imgs[n].height);
            cJSON_AddItemToArray(images, im);
            n++;
        }
        if (n && !tl->tile) rc = lathe_detector_run(d, n, o, dets, counts);
        for (int i = 0; i < n; i++) {
            size_t first = res->n;
            if (!rc && tl->tile) rc = predict_tiled(d, &imgs[i], tl, o, ids[i], canvas, res);
            else if (!rc) rc = results_add(res, dets + (size_t)i * o->max_det, counts[i], &plans[i], &imgs[i], ids[i]);
            char stem[200], name[300]; /* with its id, .png and lathe_write_atomic's temporary name: under 255 bytes */
            cli_stem(files->paths[ids[i]], stem, sizeof stem);
            snprintf(name, sizeof name, "%lld-%s", (long long)ids[i], stem); /* unique: a.png and a.jpg both drawn */
            if (!rc && draw && (rc = render(d, &imgs[i], res->dt + first, res->n - first, out, name)) == -LATHE_EINVAL) {
                cli_error(files->paths[ids[i]], NULL); /* too large to draw: its detections still count */
                rc = 0;
            }
            lathe_image_free(&imgs[i]);
        }
    }
    free(canvas), free(dets), free(counts), free(imgs), free(plans), free(ids);
    return rc;
}

static int by_image(const void *a, const void *b) {
    const lathe_coco_ann *x = a, *y = b;
    return (x->image_id > y->image_id) - (x->image_id < y->image_id);
}

/* Draws the detections of one image (res sorted by image id) on its stored pixels: sample i, or in a
 * tiled dataset the whole image whose first tile i is. */
static int render_sample(lathe_detector *d, const lathe_coco_ann *sorted, size_t n, uint64_t i, int64_t id, const char *out) {
    lathe_dataset_sample s;
    int rc = lathe_dataset_get_whole(d->ds, i, LATHE_READ_PIXELS | LATHE_READ_META, &s);
    if (rc) return rc;
    lathe_coco_ann key = {.image_id = id};
    const lathe_coco_ann *hit = bsearch(&key, sorted, n, sizeof key, by_image);
    size_t first = hit ? (size_t)(hit - sorted) : 0, count = 0;
    while (hit && first > 0 && sorted[first - 1].image_id == id) first--;
    while (hit && first + count < n && sorted[first + count].image_id == id) count++;
    lathe_coco_ann *boxes = malloc(sizeof *boxes * (count + 1));
    double sx = s.meta.scale_x > 0 ? s.meta.scale_x : 1, sy = s.meta.scale_y > 0 ? s.meta.scale_y : 1;
    for (size_t k = 0; boxes && k < count; k++) { /* source pixels to stored pixels */
        boxes[k] = sorted[first + k];
        boxes[k].x = (boxes[k].x - s.meta.tile_x) * sx + s.meta.pad_x, boxes[k].w *= sx;
        boxes[k].y = (boxes[k].y - s.meta.tile_y) * sy + s.meta.pad_y, boxes[k].h *= sy;
    }
    if (!boxes) rc = lathe_fail(LATHE_ENOMEM, "detections to draw");
    else if (s.channels != 3) rc = lathe_fail(LATHE_EUNSUPPORTED, "drawing needs RGB images, not %d channels", s.channels);
    char name[64];
    snprintf(name, sizeof name, "%llu", (unsigned long long)i); /* the (first) sample's index: unique */
    lathe_image img = {s.width, s.height, s.channels, s.pixels};
    if (!rc) rc = render(d, &img, boxes, count, out, name);
    free(boxes);
    lathe_dataset_sample_free(&s);
    return rc;
}

/* A dataset split: the detections of lathe_detector_split; drawings on the stored images (a tiled
 * dataset's whole images), named by the image's first sample index. */
static int predict_dataset(lathe_detector *d, const char *split, const lathe_det_predict_opts *o, int draw,
                           const char *out, results *res) {
    int sp = lathe_split_parse(split);
    if (sp < 0) return lathe_fail(LATHE_EINVAL, "unknown split %s", split);
    int rc = lathe_detector_split(d, sp, o, &res->dt, &res->n);
    if (rc || !draw) return rc;
    lathe_coco_ann *sorted = malloc(sizeof *sorted * (res->n + 1));
    if (!sorted) return lathe_fail(LATHE_ENOMEM, "detections to draw");
    memcpy(sorted, res->dt, sizeof *sorted * res->n);
    qsort(sorted, res->n, sizeof *sorted, by_image);
    uint64_t total = lathe_dataset_count(d->ds);
    int64_t *ids = NULL;
    rc = lathe_dataset_image_ids(d->ds, &ids);
    for (uint64_t i = 0; !rc && i < total; i++) {
        lathe_dataset_sample s;
        if ((rc = lathe_dataset_get(d->ds, i, 0, &s))) break; /* the split */
        int mine = s.split == sp && (i == 0 || ids[i] != ids[i - 1]); /* an image's first sample */
        lathe_dataset_sample_free(&s);
        if (mine) rc = render_sample(d, sorted, res->n, i, ids[i], out);
    }
    free(ids);
    free(sorted);
    return rc;
}

/* An anomaly run on image files: OUT/anomaly.json and OUT/maps/. Returns 0, 1 when some files were
 * skipped (each said), or a negative code with a message. */
static int predict_anomaly(const char *run, const cJSON *spec, const char *ck, int engine, int detector_options,
                           char **args, int nargs, const char *outdir) {
    if (engine) return lathe_fail(LATHE_EUNSUPPORTED, "engines of anomaly runs are not made: predict with the run");
    if (strcmp(lathe_config_str(spec, "anomaly.input", "image"), "image"))
        return lathe_fail(LATHE_EUNSUPPORTED, "%s scores sensor windows, not images: lathe eval --dataset D scores a "
                                              "dataset's windows", run);
    if (detector_options)
        return lathe_fail(LATHE_EINVAL, "%s is an anomaly run: it takes image files and -o, --checkpoint, --device, "
                                        "--threads (--dataset: lathe eval scores a split)", run);
    file_list files = {0};
    size_t skipped = 0;
    lathe_lock *lock = NULL;
    lathe_output_set set = {.stage = ""};
    int rc = collect(&files, args, nargs);
    if (!rc) rc = lathe_folder_lock(outdir, &lock);
    if (!rc) rc = lathe_output_set_begin(&set, outdir);
    if (!rc) rc = lathe_predict_anomaly(spec, ck, (const char *const *)files.paths, files.n, set.stage, &skipped);
    if (!rc) rc = lathe_output_set_publish(&set);
    lathe_output_set_discard(&set);
    lathe_folder_unlock(lock);
    if (!rc) printf("%zu images scored%s; results: %s/anomaly.json, maps in %s/maps/\n", files.n - skipped,
                    skipped ? " (some skipped, said above)" : "", outdir, outdir);
    list_free(&files);
    return rc ? rc : skipped ? 1 : 0;
}

int cmd_predict(int argc, char **argv) {
    const char *checkpoint = "best", *split = "val", *dataset = NULL, *out = NULL, *device = NULL, *vocabulary = NULL;
    const char *flip = NULL;
    lathe_det_predict_opts o;
    lathe_det_predict_defaults(&o);
    o.conf = 0.25f;
    int draw = 0, split_given = 0, opt;
    long long threads = 0, max_det = 100, tile = -1, overlap = -1;
    double conf = o.conf, iou = o.iou;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "ho:", options, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return EXIT_OK;
        case 'c': checkpoint = optarg; break;
        case 'd': dataset = optarg; break;
        case 's': split = optarg, split_given = 1; break;
        case 'o': out = optarg; break;
        case 'r': draw = 1; break;
        case 'C':
            if (cli_parse_double(optarg, 0, 1, &conf)) return cli_usage_error("predict", "--conf needs 0..1");
            break;
        case 'I':
            if (cli_parse_double(optarg, 0, 1, &iou)) return cli_usage_error("predict", "--iou needs 0..1");
            break;
        case 'M':
            if (cli_parse_int(optarg, 1, 100000, &max_det)) return cli_usage_error("predict", "--max-det needs 1..100000");
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &threads)) return cli_usage_error("predict", "--threads needs 1..1024");
            break;
        case 'V': device = optarg; break;
        case 'F': flip = optarg; break;
        case 'K': vocabulary = optarg; break;
        case 'T':
            if (cli_parse_int(optarg, 0, 16384, &tile) || (tile > 0 && tile < 8))
                return cli_usage_error("predict", "--tile needs 0 (off) or 8..16384");
            break;
        case 'O':
            if (cli_parse_int(optarg, 0, 16383, &overlap)) return cli_usage_error("predict", "--overlap needs 0..16383");
            break;
        case 'l':
            if (cli_set_log_format(optarg)) return cli_usage_error("predict", "unknown --log-format '%s'", optarg);
            break;
        default: return cli_usage_error("predict", "bad option");
        }
    }
    if (optind >= argc) return cli_usage_error("predict", "which RUN?");
    if (!dataset && optind + 1 >= argc) return cli_usage_error("predict", "give images or folders, or --dataset");
    if (dataset && optind + 1 < argc) return cli_usage_error("predict", "--dataset takes no image arguments");
    if (!dataset && split_given) return cli_usage_error("predict", "--split goes with --dataset");
    if (dataset && vocabulary) return cli_usage_error("predict", "--classes goes with image files, not --dataset");
    if (dataset && (tile >= 0 || overlap >= 0))
        return cli_usage_error("predict", "--tile and --overlap are for image files (a dataset keeps its own tiles)");
    cli_set_threads((int)threads);
    o.conf = (float)conf, o.iou = (float)iou, o.max_det = (int)max_det;
    cli_exit_on_signals(); /* stops at once, also when a script ignored SIGINT */
    const char *run = argv[optind];
    char ck[4200], outdir[4200], what[4300], path[4400];
    int engine = 0;
    cJSON *spec = NULL, *images = cJSON_CreateArray();
    int rc = cli_open_run(run, checkpoint, &spec, ck, sizeof ck, &engine);
    if (out) snprintf(outdir, sizeof outdir, "%s", out);
    else snprintf(outdir, sizeof outdir, engine ? "%s.predict" : "%s/predict", run);
    snprintf(what, sizeof what, "predict %s", run);
    lathe_detector d = {0};
    file_list files = {0};
    results res = {0};
    int skipped = 0;
    if (!rc && device) rc = cli_set_device(spec, device);
    if (!rc && flip) rc = cli_set_flip(spec, flip);
    if (!rc && !strcmp(lathe_config_str(spec, "task", "classify"), "anomaly")) {
        rc = predict_anomaly(run, spec, ck, engine, dataset || vocabulary || tile >= 0 || overlap >= 0 || draw || flip,
                             argv + optind + 1, argc - optind - 1, outdir);
        cJSON_Delete(images);
        cJSON_Delete(spec);
        if (rc < 0) cli_error(what, NULL);
        return rc ? EXIT_FAIL : EXIT_OK;
    }
    if (!rc && strcmp(lathe_config_str(spec, "task", "classify"), "detect"))
        rc = lathe_fail(LATHE_EINVAL, "%s is not a detector or anomaly run (task: detect or anomaly)", run);
    if (!rc) rc = cli_check_dataset_classes(spec, dataset);
    if (!rc && vocabulary) rc = engine ? lathe_fail(LATHE_EUNSUPPORTED, "--classes needs the run, not an engine")
                                       : name_classes(spec, vocabulary);
    if (!rc && !dataset) rc = collect(&files, argv + optind + 1, argc - optind - 1);
    lathe_lock *lock = NULL; /* one writer of the output folder, whose files are replaced as a set */
    lathe_output_set set = {.stage = ""};
    if (!rc) rc = lathe_folder_lock(outdir, &lock);
    if (!rc) rc = lathe_output_set_begin(&set, outdir);
    if (!rc) rc = lathe_detector_open(&d, spec, dataset, 0, (int)lathe_config_num(spec, "train.batch", LATHE_TRAIN_BATCH_DEFAULT));
    if (!rc && !dataset && d.h != d.w) /* a dataset's samples go through eval's path, which takes any input */
        rc = lathe_fail(LATHE_EUNSUPPORTED, "predict letterboxes image files to a square input, not %dx%d (--dataset works)",
                        d.w, d.h);
    tiling tl = {0, 0};
    if (!rc && !dataset) cli_run_tiling(spec, &tl.tile, &tl.overlap);
    if (tile >= 0) tl.tile = (int)tile, tl.overlap = tl.overlap < tl.tile ? tl.overlap : 0;
    if (overlap >= 0) tl.overlap = (int)overlap;
    if (!rc && tl.tile && tl.overlap >= tl.tile)
        rc = lathe_fail(LATHE_EINVAL, "--overlap %d must be below the tile side %d", tl.overlap, tl.tile);
    if (!rc && tl.tile) lathe_log(LATHE_LOG_INFO, "predict.tiles", "tiles of %d with overlap %d", tl.tile, tl.overlap);
    if (!rc) rc = vocabulary ? load_renamed(&d, spec, ck) : lathe_checkpoint_load(ck, d.g, NULL);
    if (!rc) rc = dataset ? predict_dataset(&d, split, &o, draw, set.stage, &res)
                          : predict_files(&d, &files, &tl, &o, draw, set.stage, &res, images, &skipped);
    snprintf(path, sizeof path, "%s/predictions.json", set.stage);
    if (!rc) rc = lathe_coco_results_write(path, res.dt, res.n);
    if (!rc && !dataset) {
        char ipath[4400];
        snprintf(ipath, sizeof ipath, "%s/images.json", set.stage);
        rc = lathe_json_save(ipath, images);
    }
    if (!rc) rc = lathe_output_set_publish(&set);
    lathe_output_set_discard(&set);
    snprintf(path, sizeof path, "%s/predictions.json", outdir);
    if (!rc)
        printf("%zu detections on %s; results: %s%s\n", res.n, dataset ? split : "the images", path,
               draw ? " (drawings in render/)" : "");
    lathe_folder_unlock(lock);
    if (rc) cli_error(what, NULL);
    free(res.dt);
    list_free(&files);
    lathe_detector_close(&d);
    cJSON_Delete(images);
    cJSON_Delete(spec);
    return rc ? EXIT_FAIL : skipped ? EXIT_FAIL : EXIT_OK;
}
