/* engine.h - lathe's C inference API (docs/EXPORT.md, "The C API"): open an engine file that
 * `lathe export --format lathe` wrote, run batches of uint8 RGB images or normalized float tensors
 * on the CPU or a CUDA GPU, and get a classifier's logits or a detector's decoded, NMS-filtered
 * detections in input pixels. Link with liblathe (pkg-config lathe). Every call returns 0 or a
 * negative LATHE_E* code, with the reason in lathe_last_error() (libcore/base/error.h); a
 * truncated, tampered or foreign file is -LATHE_EFORMAT, never a crash. */
#ifndef LATHE_EXPORT_ENGINE_H
#define LATHE_EXPORT_ENGINE_H
#include <stdint.h>

#include "libcore/det/predict.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_engine lathe_engine;

typedef struct {
    int detector;                     /* 1: a detector (detections), 0: a classifier (logits) */
    int classes;                      /* K */
    const char *const *class_names;   /* K names */
    int c, h, w;                      /* the model's input: channels (1 or 3), height, width */
    float mean, std;                  /* its normalization: x = (pixel / 255 - mean) / std */
    int letterbox;                    /* the grey an image is padded with to the input size */
    int max_batch;                    /* images per lathe_engine_run call */
    const char *precision;            /* how the file stores the weights: fp32, fp16 or bf16 */
} lathe_engine_info;

/* Opens path for batches of up to max_batch images on device ("cpu", "cuda", "cuda:N" or "auto";
 * NULL is "cpu"). Weights stored in fp16/bf16 are widened to float32; on a GPU a bf16 engine
 * multiplies in bf16. Returns 0 (*out set), -LATHE_ENOTFOUND, -LATHE_EFORMAT (not a lathe engine,
 * truncated, a tensor missing, mis-shaped or not finite), -LATHE_EINVAL or -LATHE_ENOMEM. */
int lathe_engine_open(const char *path, const char *device, int max_batch, lathe_engine **out);
void lathe_engine_close(lathe_engine *e);
const lathe_engine_info *lathe_engine_get_info(const lathe_engine *e);

/* A detector's NMS settings: score floor, IoU threshold, detections kept per image (defaults 0.25,
 * 0.7, 100, as lathe predict). Returns 0 or -LATHE_EINVAL. */
int lathe_engine_set_nms(lathe_engine *e, float conf, float iou, int max_det);

/* What a run fills (buffers the caller owns): a classifier's logits (n x classes); a detector's
 * detections (n x max_det, image i's first counts[i] of dets + i * max_det valid, boxes in input
 * pixels) and counts (n). */
typedef struct {
    float *logits;
    lathe_detection *dets;
    int *counts;
} lathe_engine_output;

/* Runs n (1..max_batch) images: uint8 n x H x W x 3 RGB at the input size (letterboxed with
 * info.letterbox; a one-channel model takes their luma), or float32 n x C x H x W already
 * normalized. Returns 0, -LATHE_EINVAL (bad n or output buffers) or -LATHE_EIO (a GPU failure). */
int lathe_engine_run_u8(lathe_engine *e, const uint8_t *images, int n, lathe_engine_output *out);
int lathe_engine_run_f32(lathe_engine *e, const float *x, int n, lathe_engine_output *out);

#ifdef __cplusplus
}
#endif
#endif
