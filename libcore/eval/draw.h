/* draw.h - detections drawn over an RGB image with cairo, into PNG bytes: a colour per class (a
 * fixed palette), predictions solid with a "name 0.87" tag, ground truth dashed, missed ground
 * truth red, dashed and thicker with a tag. Used for the sample images of the detection report. */
#ifndef LATHE_EVAL_DRAW_H
#define LATHE_EVAL_DRAW_H
#include <stddef.h>
#include <stdint.h>

#include "plot.h"
#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_DRAWN_PREDICTION = 0, LATHE_DRAWN_TRUTH = 1, LATHE_DRAWN_MISSED = 2 };

typedef struct {
    float x1, y1, x2, y2; /* pixels of the image drawn on */
    float score;          /* < 0 (or NaN): no score shown */
    int32_t label;        /* class index; outside [0, nclasses) it reads "class N" */
    int kind;             /* LATHE_DRAWN_* */
} lathe_drawn_box;

/* Draws n boxes over rgb (H, W, 3) and encodes the result as PNG into out. Ground truth is drawn
 * first, predictions over it, tags last. Boxes with a non-finite coordinate or wholly outside the
 * image are skipped; the rest are clipped to the image. class_names (nclasses, may be NULL) name
 * the labels. Returns 0, -LATHE_EINVAL (no pixels, a size outside 1..32767, boxes NULL with n > 0,
 * an unknown kind) or -LATHE_ENOMEM. */
int lathe_draw_boxes(const uint8_t *rgb, int w, int h, const lathe_drawn_box *boxes, size_t n,
                     const char *const *class_names, int nclasses, lathe_png *out);

#ifdef __cplusplus
}
#endif
#endif
