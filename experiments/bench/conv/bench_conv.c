/* bench_conv.c - the measurement behind lathe's choice of convolution library: one training step of
 * a convolution (forward, backward data, backward weights) on the layer shapes of the n-size
 * detector at 256x256, batch 16, fp32, timed with lathe's kernels (im2col + OpenBLAS SGEMM) and
 * with oneDNN, in plain NCHW/OIHW layout (what lathe's graph holds) and in the blocked layout
 * oneDNN picks for itself (data reordered once, outside the timing: the best case for a graph
 * that kept oneDNN's layouts throughout), and in that blocked layout with plain tensors reordered in
 * and out on every call (what a drop-in replacement of lathe's kernels would cost), all with
 * oneDNN's direct algorithm; and through the graph's own path (conv_dnnl.c, Winograd where it
 * applies; LATHE_CONV=direct turns that off). Prints a table.
 *
 * usage: bench_conv THREADS REPEATS   (built by run.sh with -ldnnl) */
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv_dnnl.h"
#include "kernels/nn.h"
#include "libcore/base/log.h"

void openblas_set_num_threads(int);

typedef struct {
    const char *name;
    int n, c, h, k, r, stride;
} shape;

static const shape shapes[] = {
    {"stem 3->16 3x3/2 @256", 16, 3, 256, 16, 3, 2},   {"down 16->32 3x3/2 @128", 16, 16, 128, 32, 3, 2},
    {"csp 16->16 3x3 @64", 16, 16, 64, 16, 3, 1},      {"csp 32->32 3x3 @32", 16, 32, 32, 32, 3, 1},
    {"csp 64->64 3x3 @16", 16, 64, 16, 64, 3, 1},      {"head 64->64 3x3 @32", 16, 64, 32, 64, 3, 1},
    {"1x1 64->64 @32", 16, 64, 32, 64, 1, 1},          {"csp 128->128 3x3 @8", 16, 128, 8, 128, 3, 1},
};

#define CHECK(x)                                                                                      \
    do {                                                                                              \
        dnnl_status_t st_ = (x);                                                                      \
        if (st_ != dnnl_success) {                                                                    \
            fprintf(stderr, "bench_conv: %s failed (%d) at line %d\n", #x, (int)st_, __LINE__);       \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

static float *filled(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) seed = seed * 1664525u + 1013904223u, p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    return p;
}

/* via_dnnl 0: lathe's im2col kernels; 1: the path the graph takes (kernels/cpu/conv_dnnl.c: oneDNN
 * with reorders on every call, Winograd for 3x3 stride 1 unless LATHE_CONV=direct). */
static double time_lathe(const shape *sh, int threads, int repeats, int via_dnnl) {
    lathe_conv_shape s = {sh->n, sh->c, sh->h, sh->h, sh->k, sh->r, sh->r, sh->stride, sh->r / 2, 1, 1, 0, 0, threads};
    s.p = s.q = lathe_k_conv_out(sh->h, sh->r, sh->stride, sh->r / 2, 1);
    size_t nx = (size_t)sh->n * sh->c * sh->h * sh->h, nw = (size_t)sh->k * sh->c * sh->r * sh->r;
    size_t ny = (size_t)sh->n * sh->k * s.p * s.q;
    float *x = filled(nx, 1), *w = filled(nw, 2), *b = filled(sh->k, 3), *y = malloc(ny * 4), *dy = filled(ny, 4);
    float *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc(sh->k, 4), *ws = malloc(lathe_k_conv_workspace(&s) * 4);
    double t0 = 0;
    for (int i = -1; i < repeats; i++) {
        if (i == 0) t0 = lathe_now();
        if (!via_dnnl) {
            lathe_k_conv2d_fwd_f32(&s, x, w, b, y, ws);
            lathe_k_conv2d_bwd_f32(&s, x, w, dy, dx, dw, db, ws);
        } else if (lathe_k_conv2d_fwd_dnnl(&s, x, w, b, y) || lathe_k_conv2d_bwd_dnnl(&s, x, w, dy, dx, dw, db)) {
            fprintf(stderr, "bench_conv: lathe's oneDNN path refused %s\n", sh->name);
            exit(1);
        }
    }
    double dt = (lathe_now() - t0) / repeats;
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db), free(ws);
    return dt;
}

/* A memory of md, filled from plain data (reordered when md is not plain). */
static dnnl_memory_t memory_from(dnnl_engine_t eng, dnnl_stream_t strm, const dnnl_memory_desc_t *md,
                                 const dnnl_memory_desc_t *plain_md, float *plain) {
    dnnl_memory_t plain_mem, mem;
    CHECK(dnnl_memory_create(&plain_mem, plain_md, eng, plain));
    CHECK(dnnl_memory_create(&mem, md, eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, plain_md, eng, md, eng, NULL));
    dnnl_primitive_t r;
    CHECK(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, plain_mem}, {DNNL_ARG_TO, mem}};
    CHECK(dnnl_primitive_execute(r, strm, 2, args));
    CHECK(dnnl_stream_wait(strm));
    dnnl_primitive_destroy(r), dnnl_primitive_desc_destroy(rpd), dnnl_memory_destroy(plain_mem);
    return mem;
}

/* A reorder between two memories, prepared once. */
typedef struct {
    dnnl_primitive_t p;
    dnnl_exec_arg_t args[2];
} reorder;

static reorder reorder_between(dnnl_engine_t eng, dnnl_memory_t from, dnnl_memory_t to) {
    const dnnl_memory_desc_t *a, *b;
    CHECK(dnnl_memory_get_memory_desc(from, &a));
    CHECK(dnnl_memory_get_memory_desc(to, &b));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, a, eng, b, eng, NULL));
    reorder r = {NULL, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}};
    CHECK(dnnl_primitive_create(&r.p, pd));
    dnnl_primitive_desc_destroy(pd);
    return r;
}

static const dnnl_memory_desc_t *queried(dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* mode 0: plain layouts; 1: oneDNN's layouts, data reordered once; 2: oneDNN's layouts with plain
 * tensors outside, reordered in and out on every call (a drop-in replacement of lathe's kernels). */
static double time_dnnl(const shape *sh, int mode, int repeats, char *impl, size_t cap) {
    int blocked = mode > 0;
    int p = lathe_k_conv_out(sh->h, sh->r, sh->stride, sh->r / 2, 1), pad = sh->r / 2;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    dnnl_dims_t xd = {sh->n, sh->c, sh->h, sh->h}, wd = {sh->k, sh->c, sh->r, sh->r}, bd = {sh->k}, yd = {sh->n, sh->k, p, p};
    dnnl_dims_t strides = {sh->stride, sh->stride}, pads = {pad, pad};
    dnnl_memory_desc_t x_plain, w_plain, b_md, y_plain, x_md, w_md, y_md;
    CHECK(dnnl_memory_desc_init_by_tag(&x_plain, 4, xd, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&w_plain, 4, wd, dnnl_f32, dnnl_oihw));
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&y_plain, 4, yd, dnnl_f32, dnnl_nchw));
    dnnl_format_tag_t any = blocked ? dnnl_format_tag_any : 0;
    CHECK(dnnl_memory_desc_init_by_tag(&x_md, 4, xd, dnnl_f32, blocked ? any : dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&w_md, 4, wd, dnnl_f32, blocked ? any : dnnl_oihw));
    CHECK(dnnl_memory_desc_init_by_tag(&y_md, 4, yd, dnnl_f32, blocked ? any : dnnl_nchw));
    dnnl_convolution_desc_t fd, bdd, bwd;
    CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &x_md, &w_md, &b_md,
                                             &y_md, strides, pads, pads));
    dnnl_primitive_desc_t fpd, bdpd, bwpd;
    CHECK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    CHECK(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &x_md, &w_md, &y_md, strides, pads, pads));
    CHECK(dnnl_primitive_desc_create(&bdpd, &bdd, NULL, eng, fpd));
    CHECK(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &x_md, &w_md, &b_md, &y_md, strides,
                                                      pads, pads));
    CHECK(dnnl_primitive_desc_create(&bwpd, &bwd, NULL, eng, fpd));
    const char *name = NULL;
    dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &name);
    snprintf(impl, cap, "%s", name ? name : "?");
    size_t nx = (size_t)sh->n * sh->c * sh->h * sh->h, nw = (size_t)sh->k * sh->c * sh->r * sh->r;
    size_t ny = (size_t)sh->n * sh->k * p * p;
    float *x = filled(nx, 1), *w = filled(nw, 2), *b = filled(sh->k, 3), *dy = filled(ny, 4);
    dnnl_memory_t X = memory_from(eng, strm, queried(fpd, dnnl_query_src_md), &x_plain, x);
    dnnl_memory_t Wt = memory_from(eng, strm, queried(fpd, dnnl_query_weights_md), &w_plain, w);
    dnnl_memory_t B, Y, DY = memory_from(eng, strm, queried(bdpd, dnnl_query_diff_dst_md), &y_plain, dy);
    dnnl_memory_t DX, DW, DB;
    CHECK(dnnl_memory_create(&B, &b_md, eng, b));
    CHECK(dnnl_memory_create(&Y, queried(fpd, dnnl_query_dst_md), eng, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&DX, queried(bdpd, dnnl_query_diff_src_md), eng, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&DW, queried(bwpd, dnnl_query_diff_weights_md), eng, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&DB, &b_md, eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_t F, BD, BW;
    CHECK(dnnl_primitive_create(&F, fpd));
    CHECK(dnnl_primitive_create(&BD, bdpd));
    CHECK(dnnl_primitive_create(&BW, bwpd));
    dnnl_exec_arg_t fa[4] = {{DNNL_ARG_SRC, X}, {DNNL_ARG_WEIGHTS, Wt}, {DNNL_ARG_BIAS, B}, {DNNL_ARG_DST, Y}};
    dnnl_exec_arg_t da[3] = {{DNNL_ARG_DIFF_DST, DY}, {DNNL_ARG_WEIGHTS, Wt}, {DNNL_ARG_DIFF_SRC, DX}};
    dnnl_exec_arg_t wa[4] = {{DNNL_ARG_SRC, X}, {DNNL_ARG_DIFF_DST, DY}, {DNNL_ARG_DIFF_WEIGHTS, DW}, {DNNL_ARG_DIFF_BIAS, DB}};
    /* mode 2: the plain tensors and the reorders a drop-in replacement would run on every call */
    reorder io[7];
    int nio = 0;
    dnnl_memory_t plain[6] = {0};
    if (mode == 2) {
        const dnnl_memory_desc_t *pmd[6] = {&x_plain, &w_plain, &y_plain, &y_plain, &x_plain, &w_plain};
        for (int k = 0; k < 6; k++) CHECK(dnnl_memory_create(&plain[k], pmd[k], eng, DNNL_MEMORY_ALLOCATE));
        io[nio++] = reorder_between(eng, plain[0], X), io[nio++] = reorder_between(eng, plain[1], Wt);
        io[nio++] = reorder_between(eng, Y, plain[2]), io[nio++] = reorder_between(eng, plain[3], DY);
        io[nio++] = reorder_between(eng, DX, plain[4]), io[nio++] = reorder_between(eng, DW, plain[5]);
    }
    double t0 = 0;
    for (int i = -1; i < repeats; i++) {
        if (i == 0) t0 = lathe_now();
        for (int k = 0; k < 2 && mode == 2; k++) CHECK(dnnl_primitive_execute(io[k].p, strm, 2, io[k].args));
        CHECK(dnnl_primitive_execute(F, strm, 4, fa));
        for (int k = 2; k < 4 && mode == 2; k++) CHECK(dnnl_primitive_execute(io[k].p, strm, 2, io[k].args));
        CHECK(dnnl_primitive_execute(BD, strm, 3, da));
        CHECK(dnnl_primitive_execute(BW, strm, 4, wa));
        for (int k = 4; k < 6 && mode == 2; k++) CHECK(dnnl_primitive_execute(io[k].p, strm, 2, io[k].args));
        CHECK(dnnl_stream_wait(strm));
    }
    for (int k = 0; k < nio; k++) dnnl_primitive_destroy(io[k].p);
    for (int k = 0; k < 6; k++)
        if (plain[k]) dnnl_memory_destroy(plain[k]);
    double dt = (lathe_now() - t0) / repeats;
    dnnl_primitive_destroy(F), dnnl_primitive_destroy(BD), dnnl_primitive_destroy(BW);
    dnnl_primitive_desc_destroy(fpd), dnnl_primitive_desc_destroy(bdpd), dnnl_primitive_desc_destroy(bwpd);
    dnnl_memory_t all[] = {X, Wt, B, Y, DY, DX, DW, DB};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dnnl_memory_destroy(all[i]);
    dnnl_stream_destroy(strm), dnnl_engine_destroy(eng);
    free(x), free(w), free(b), free(dy);
    return dt;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_conv THREADS REPEATS\n");
        return 2;
    }
    int threads = atoi(argv[1]), repeats = atoi(argv[2]);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    printf("conv training step (fwd + bwd data + bwd weights), batch 16, fp32, %d threads, ms per step\n", threads);
    printf("  %-26s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "shape", "lathe", "plain", "blocked", "drop-in", "graph",
           "plain/l", "blkd/l", "drop/l", "graph/l");
    double tl = 0, tp = 0, tb = 0, td = 0, tg = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char ip[128], ib[128];
        double l = time_lathe(&shapes[i], threads, repeats, 0), p = time_dnnl(&shapes[i], 0, repeats, ip, sizeof ip);
        double b = time_dnnl(&shapes[i], 1, repeats, ib, sizeof ib), d = time_dnnl(&shapes[i], 2, repeats, ib, sizeof ib);
        double g = time_lathe(&shapes[i], threads, repeats, 1);
        tl += l, tp += p, tb += b, td += d, tg += g;
        printf("  %-26s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f   (%s / %s)\n", shapes[i].name, 1e3 * l,
               1e3 * p, 1e3 * b, 1e3 * d, 1e3 * g, p / l, b / l, d / l, g / l, ip, ib);
    }
    printf("  %-26s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", "all", 1e3 * tl, 1e3 * tp, 1e3 * tb,
           1e3 * td, 1e3 * tg, tp / tl, tb / tl, td / tl, tg / tl);
    return 0;
}
