/* det_decode.c - DFL box decoding on the CPU (kernels/det_decode.h); the reference the CUDA twin
 * (kernels/cuda/det_decode.cu) is tested against. */
#include <math.h>
#include <stddef.h>

#include "kernels/det_decode.h"

void lathe_k_dfl_decode_cpu(int a, int bins, int stride_k, const float *logits, const float *points,
                            const float *stride, float *boxes) {
    /* a parallel region costs a few microseconds, more than a few hundred anchors' work; prediction
     * decodes one anchor at a time */
#pragma omp parallel for schedule(static) if (a >= 512)
    for (int i = 0; i < a; i++) {
        float d[4];
        for (int side = 0; side < 4; side++) {
            const float *z = logits + (size_t)i * stride_k + (size_t)side * bins;
            /* written so a NaN in z[0] stays NaN, as the CUDA twin does */
            float mx = z[0];
            for (int j = 1; j < bins; j++) mx = z[j] > mx ? z[j] : mx;
            /* expf, as the CUDA twin: a double exp made this the detection loss's hot spot (8400
             * anchors x 4 sides x 16 bins an image at 640); the sums stay double */
            double s = 0, e = 0;
            for (int j = 0; j < bins; j++) {
                double p = expf(z[j] - mx);
                s += p, e += p * j;
            }
            d[side] = (float)(e / s) * stride[i];
        }
        const float *p = points + 2 * (size_t)i;
        float *b = boxes + 4 * (size_t)i;
        b[0] = p[0] - d[0], b[1] = p[1] - d[1], b[2] = p[0] + d[2], b[3] = p[1] + d[3];
    }
}
