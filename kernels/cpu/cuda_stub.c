/* cuda_stub.c - the CUDA entry points in a build without CUDA (the Makefile compiles this file only
 * then): they report that no GPU path exists. */
#include "kernels/det_decode.h"
#include "kernels/nms.h"
#include "kernels/preprocess.h"

int lathe_k_cuda_available(const char **reason) {
    if (reason) *reason = "lathe was built without CUDA (CUDA=0 or no nvcc)";
    return 0;
}

int lathe_k_preprocess_cuda(const uint8_t *src_gpu, float *dst_gpu, int n, int h, int w, int c, const float *mean,
                            const float *std, void *stream, const char **error) {
    (void)src_gpu, (void)dst_gpu, (void)n, (void)h, (void)w, (void)c, (void)mean, (void)std, (void)stream;
    if (error) *error = "lathe was built without CUDA";
    return -1;
}

int lathe_k_nms_cuda(const float *boxes_gpu, const float *scores_gpu, const int32_t *classes_gpu, int n, float iou_thr,
                     float score_thr, int max_out, int32_t *keep, void *stream, const char **error) {
    (void)boxes_gpu, (void)scores_gpu, (void)classes_gpu, (void)n, (void)iou_thr, (void)score_thr, (void)max_out;
    (void)keep, (void)stream;
    if (error) *error = "lathe was built without CUDA";
    return -1;
}

int lathe_k_dfl_decode_cuda(int a, int bins, int stride_k, const float *logits_gpu, const float *points_gpu,
                            const float *stride_gpu, float *boxes_gpu, void *stream, const char **error) {
    (void)a, (void)bins, (void)stride_k, (void)logits_gpu, (void)points_gpu, (void)stride_gpu, (void)boxes_gpu;
    (void)stream;
    if (error) *error = "lathe was built without CUDA";
    return -1;
}
