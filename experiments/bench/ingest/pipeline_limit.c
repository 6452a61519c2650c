/* pipeline_limit.c - the floor of `lathe ingest --store pixels --size S`: only the work no ingest can
 * avoid, on the same files. Each image is read, decoded by libjpeg-turbo at the smallest DCT scale
 * that still covers its letterbox size (1280x960 -> 640: the 1/2 scale, 640x480), placed in an
 * S x S x 3 letterbox canvas and compressed as one zstd frame (one ZSTD_compressCCtx per image, level 1
 * by default), as ingest stores it. Nothing is written.
 *
 * It calls TurboJPEG directly, not lathe_image_decode: one decompressor handle and one zstd context
 * per thread, reused, and the decoder writes straight into the canvas (pitch S*3), so the figure is
 * the codecs' own cost and any overhead lathe adds around them counts against lathe. Decoding flags
 * are TurboJPEG's accurate defaults (no TJFLAG_FASTDCT/FASTUPSAMPLE), as lathe decodes.
 *
 * Usage: pipeline_limit DIR THREADS [--size S] [--level L] [--pad V]
 * Prints one line: images, threads, wall and CPU seconds, images/s by wall clock, and the limit,
 * images/s = images * cores / CPU seconds: the CPU time divided over the cores, where cores =
 * min(threads, processors this process may run on). Exits 1 if any image fails to read or decode.
 * EXIF orientation is ignored (it only swaps width and height; the synthetic archives carry none).
 * PNG files are skipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zstd.h>

typedef struct {
    char **paths;
    size_t npaths;
    int size, level, pad;
    atomic_size_t next;
    atomic_int failed;
    atomic_ullong raw_bytes, zstd_bytes;
} job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static int is_jpeg_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The JPEG files of dir, sorted; returns their count, or -1 with a message. */
static long list_jpegs(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "pipeline_limit: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    size_t n = 0, cap = 0;
    char **paths = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_jpeg_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **grown = realloc(paths, cap * sizeof *paths);
            if (!grown) goto oom;
            paths = grown;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(paths[n] = malloc(len))) goto oom;
        snprintf(paths[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n) qsort(paths, n, sizeof *paths, cmp_str);
    *out = paths;
    return (long)n;
oom:
    closedir(d);
    fprintf(stderr, "pipeline_limit: out of memory\n");
    return -1;
}

/* Reads a whole file into *buf (grown as needed); returns its length or -1. */
static long read_file(const char *path, unsigned char **buf, size_t *cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    if (len > *cap) {
        unsigned char *grown = realloc(*buf, len);
        if (!grown) {
            close(fd);
            return -1;
        }
        *buf = grown;
        *cap = len;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, *buf + got, len - got);
        if (r <= 0) {
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    return (long)len;
}

/* The smallest TurboJPEG scale (never above 1) whose output covers need_w x need_h. */
static tjscalingfactor pick_scale(int w, int h, int need_w, int need_h) {
    tjscalingfactor best = {1, 1};
    int n = 0;
    tjscalingfactor *f = tjGetScalingFactors(&n);
    int best_w = w;
    for (int i = 0; f && i < n; i++) {
        if (f[i].num > f[i].denom) continue;
        int sw = TJSCALED(w, f[i]), sh = TJSCALED(h, f[i]);
        if (sw >= need_w && sh >= need_h && sw < best_w) {
            best = f[i];
            best_w = sw;
        }
    }
    return best;
}

static void *worker(void *arg) {
    job *jb = arg;
    const int S = jb->size;
    const size_t canvas_len = (size_t)S * S * 3;
    tjhandle tj = tjInitDecompress();
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t bound = ZSTD_compressBound(canvas_len);
    unsigned char *canvas = malloc(canvas_len), *zbuf = malloc(bound), *file = NULL, *scratch = NULL;
    size_t file_cap = 0, scratch_cap = 0;
    unsigned long long raw = 0, packed = 0;
    if (!tj || !cctx || !canvas || !zbuf) {
        fprintf(stderr, "pipeline_limit: out of memory\n");
        atomic_store(&jb->failed, 1);
        goto done;
    }
    int last_nw = -1, last_nh = -1;
    for (;;) {
        size_t i = atomic_fetch_add(&jb->next, 1);
        if (i >= jb->npaths) break;
        const char *path = jb->paths[i];
        long len = read_file(path, &file, &file_cap);
        int w, h, subsamp, cs;
        if (len < 0 || tjDecompressHeader3(tj, file, (unsigned long)len, &w, &h, &subsamp, &cs) != 0) {
            fprintf(stderr, "pipeline_limit: %s: unreadable\n", path);
            atomic_store(&jb->failed, 1);
            continue;
        }
        /* Letterbox geometry: scale by min(S/w, S/h), content nw x nh centred, the rest padded. */
        double s = (double)S / w < (double)S / h ? (double)S / w : (double)S / h;
        int nw = (int)(w * s + 0.5), nh = (int)(h * s + 0.5);
        if (nw > S) nw = S;
        if (nh > S) nh = S;
        if (nw < 1) nw = 1;
        if (nh < 1) nh = 1;
        int x0 = (S - nw) / 2, y0 = (S - nh) / 2;
        if (nw != last_nw || nh != last_nh) { /* the pad only changes with the geometry */
            memset(canvas, jb->pad, canvas_len);
            last_nw = nw;
            last_nh = nh;
        }
        tjscalingfactor f = pick_scale(w, h, nw, nh);
        int sw = TJSCALED(w, f), sh = TJSCALED(h, f);
        unsigned char *at = canvas + ((size_t)y0 * S + (size_t)x0) * 3;
        int rc;
        if (sw == nw && sh == nh) {
            /* The reduced scale is the letterbox size: decode straight into the canvas. */
            rc = tjDecompress2(tj, file, (unsigned long)len, at, sw, S * 3, sh, TJPF_RGB, TJFLAG_STOPONWARNING);
        } else {
            /* Otherwise ingest must also resize; that is not counted here: a nearest-neighbour copy
             * stands in, so for such images this is a lower bound on the work. */
            size_t need = (size_t)sw * sh * 3;
            if (need > scratch_cap) {
                unsigned char *grown = realloc(scratch, need);
                if (!grown) {
                    atomic_store(&jb->failed, 1);
                    continue;
                }
                scratch = grown;
                scratch_cap = need;
            }
            rc = tjDecompress2(tj, file, (unsigned long)len, scratch, sw, sw * 3, sh, TJPF_RGB, TJFLAG_STOPONWARNING);
            for (int y = 0; rc == 0 && y < nh; y++) {
                const unsigned char *src = scratch + (size_t)((long)y * sh / nh) * sw * 3;
                unsigned char *dst = at + (size_t)y * S * 3;
                for (int x = 0; x < nw; x++) memcpy(dst + x * 3, src + (size_t)((long)x * sw / nw) * 3, 3);
            }
        }
        if (rc != 0) {
            fprintf(stderr, "pipeline_limit: %s: %s\n", path, tjGetErrorStr2(tj));
            atomic_store(&jb->failed, 1);
            continue;
        }
        size_t z = ZSTD_compressCCtx(cctx, zbuf, bound, canvas, canvas_len, jb->level);
        if (ZSTD_isError(z)) {
            fprintf(stderr, "pipeline_limit: zstd: %s\n", ZSTD_getErrorName(z));
            atomic_store(&jb->failed, 1);
            continue;
        }
        raw += canvas_len;
        packed += z;
    }
    atomic_fetch_add(&jb->raw_bytes, raw);
    atomic_fetch_add(&jb->zstd_bytes, packed);
done:
    if (tj) tjDestroy(tj);
    ZSTD_freeCCtx(cctx);
    free(canvas);
    free(zbuf);
    free(file);
    free(scratch);
    return NULL;
}

static int usage(void) {
    fprintf(stderr, "usage: pipeline_limit DIR THREADS [--size S] [--level L] [--pad V]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 3) return usage();
    const char *dir = argv[1];
    int threads = atoi(argv[2]);
    job jb = {.size = 640, .level = 1, .pad = 114};
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) return usage();
        if (strcmp(argv[i], "--size") == 0) jb.size = atoi(argv[++i]);
        else if (strcmp(argv[i], "--level") == 0) jb.level = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pad") == 0) jb.pad = atoi(argv[++i]);
        else return usage();
    }
    if (threads < 1 || threads > 1024 || jb.size < 1 || jb.size > 16384 || jb.pad < 0 || jb.pad > 255)
        return usage();
    long n = list_jpegs(dir, &jb.paths);
    if (n < 0) return 1;
    if (n == 0) {
        fprintf(stderr, "pipeline_limit: no JPEG files in %s\n", dir);
        return 1;
    }
    jb.npaths = (size_t)n;
    atomic_init(&jb.next, 0);
    atomic_init(&jb.failed, 0);
    atomic_init(&jb.raw_bytes, 0);
    atomic_init(&jb.zstd_bytes, 0);

    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!tids) return 1;
    double c0 = cpu_s(), t0 = now_s();
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, worker, &jb) != 0) break;
    for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    if (started < threads) {
        fprintf(stderr, "pipeline_limit: started only %d threads\n", started);
        return 1;
    }
    int cores = threads;
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) < cores) cores = CPU_COUNT(&mask);
    unsigned long long raw = atomic_load(&jb.raw_bytes), packed = atomic_load(&jb.zstd_bytes);
    printf("pipeline_limit: %ld images, %d threads, size %d, zstd %d: %.3f s wall, %.3f s cpu (%.2f ms/image), "
           "%.1f images/s wall, limit %.1f images/s (cpu over %d cores), zstd %.1f%% of %.1f MB\n",
           n, threads, jb.size, jb.level, wall, cpu, cpu * 1e3 / (double)n, (double)n / wall,
           (double)n * cores / cpu, cores, raw ? 100.0 * (double)packed / (double)raw : 0.0, (double)raw / 1e6);
    for (long i = 0; i < n; i++) free(jb.paths[i]);
    free(jb.paths);
    free(tids);
    return atomic_load(&jb.failed) ? 1 : 0;
}
