/* decode.c - anchor points and box decoding/encoding for the anchor-free head (decode.h). */
#include "decode.h"

#include <stddef.h>

#include "kernels/det_decode.h"

int lathe_det_anchors(int h, int w, const int *strides, int nlevels, float *points, float *stride) {
    int a = 0;
    for (int l = 0; l < nlevels; l++) {
        int s = strides[l], gh = (h + s - 1) / s, gw = (w + s - 1) / s;
        for (int y = 0; y < gh; y++)
            for (int x = 0; x < gw; x++, a++) {
                if (points) points[2 * a] = (x + 0.5f) * s, points[2 * a + 1] = (y + 0.5f) * s;
                if (stride) stride[a] = (float)s;
            }
    }
    return a;
}

/* one implementation: the kernel (kernels/det_decode.h), with rows of exactly 4 B logits */
void lathe_det_decode(int a, int bins, const float *logits, const float *points, const float *stride, float *boxes) {
    lathe_k_dfl_decode_cpu(a, bins, 4 * bins, logits, points, stride, boxes);
}

void lathe_det_encode(int a, int bins, const float *boxes, const float *points, const float *stride, float *dist) {
    float hi = bins - 1.01f;
    for (int i = 0; i < a; i++) {
        const float *p = points + 2 * (size_t)i, *b = boxes + 4 * (size_t)i;
        float v[4] = {p[0] - b[0], p[1] - b[1], b[2] - p[0], b[3] - p[1]};
        for (int k = 0; k < 4; k++) {
            float d = v[k] / stride[i];
            dist[4 * (size_t)i + k] = d < 0 ? 0 : d > hi ? hi : d;
        }
    }
}
