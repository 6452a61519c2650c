/* loss.c - the detector loss of one image (loss.h). */
#include "loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "kernels/det_decode.h"
#include "kernels/det_loss.h"
#include "libcore/base/error.h"

void lathe_det_loss_defaults(lathe_det_loss_opts *o, int classes, int bins) {
    memset(o, 0, sizeof *o);
    o->classes = classes, o->bins = bins;
    o->w_cls = 0.5f, o->w_iou = 7.5f, o->w_dfl = 1.5f;
    o->assign.topk = 10, o->assign.alpha = 1, o->assign.beta = 6;
    o->iou_kind = LATHE_IOU_CIOU;
    o->cls_kind = LATHE_CLS_BCE;
}

/* the predicted class probabilities (A, C) and decoded boxes (A, 4) of raw head outputs; the boxes
 * are decoded straight from the head's rows (4 B distance logits, then C class logits) */
static void predictions(const lathe_det_loss_opts *o, int A, const float *points, const float *stride, const float *out,
                        float *prob, float *boxes) {
    int B = o->bins, C = o->classes, per = 4 * B + C;
    for (int a = 0; a < A; a++)
        for (int c = 0; c < C; c++) prob[(size_t)a * C + c] = 1 / (1 + expf(-out[(size_t)a * per + 4 * B + c]));
    lathe_k_dfl_decode_cpu(A, B, per, out, points, stride, boxes);
}

/* prob (A, C) and boxes (A, 4) for predictions(): 0, or -LATHE_ENOMEM with both NULL */
static int prediction_buffers(const lathe_det_loss_opts *o, int A, float **prob, float **boxes) {
    *prob = malloc(sizeof(float) * ((size_t)A * o->classes + 1)), *boxes = malloc(sizeof(float) * 4 * ((size_t)A + 1));
    if (*prob && *boxes) return 0;
    free(*prob), free(*boxes);
    *prob = *boxes = NULL;
    return lathe_fail(LATHE_ENOMEM, "predictions of %d anchors", A);
}

static double loss_decoded(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                           const float *out, const float *gt, const int32_t *gt_labels, const int32_t *assigned,
                           const float *score, const float *boxes, float *dout, double parts[3]);

int lathe_det_assign_image(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                           const float *out, int G, const float *gt, const int32_t *gt_labels, int32_t *assigned,
                           float *score) {
    float *prob, *boxes;
    int rc = prediction_buffers(o, A, &prob, &boxes);
    if (!rc) {
        predictions(o, A, points, stride, out, prob, boxes);
        rc = lathe_assign_tal(&o->assign, A, o->classes, points, prob, boxes, G, gt, gt_labels, assigned, score);
    }
    free(prob), free(boxes);
    return rc;
}

/* assignment and loss from one decoding of the image's predictions */
double lathe_det_loss_image(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                            const float *out, int G, const float *gt, const int32_t *gt_labels, float *dout,
                            double parts[3]) {
    int32_t *assigned = malloc(sizeof(int32_t) * ((size_t)A + 1));
    float *score = malloc(sizeof(float) * ((size_t)A + 1)), *prob = NULL, *boxes = NULL;
    int rc = assigned && score ? prediction_buffers(o, A, &prob, &boxes) : lathe_fail(LATHE_ENOMEM, "detector loss");
    if (!rc) {
        predictions(o, A, points, stride, out, prob, boxes);
        rc = lathe_assign_tal(&o->assign, A, o->classes, points, prob, boxes, G, gt, gt_labels, assigned, score);
    }
    double total = rc < 0 ? rc : loss_decoded(o, A, points, stride, out, gt, gt_labels, assigned, score, boxes, dout, parts);
    free(assigned), free(score), free(prob), free(boxes);
    return total;
}

double lathe_det_loss_assigned(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                               const float *out, const float *gt, const int32_t *gt_labels, const int32_t *assigned,
                               const float *score, float *dout, double parts[3]) {
    float *boxes = malloc(sizeof(float) * 4 * ((size_t)A + 1));
    if (!boxes) return (double)lathe_fail(LATHE_ENOMEM, "detector loss of %d anchors", A);
    lathe_k_dfl_decode_cpu(A, o->bins, 4 * o->bins + o->classes, out, points, stride, boxes);
    double total = loss_decoded(o, A, points, stride, out, gt, gt_labels, assigned, score, boxes, dout, parts);
    free(boxes);
    return total;
}

/* the loss and its gradient given the image's decoded boxes (A, 4) */
static double loss_decoded(const lathe_det_loss_opts *o, int A, const float *points, const float *stride,
                           const float *out, const float *gt, const int32_t *gt_labels, const int32_t *assigned,
                           const float *score, const float *boxes, float *dout, double parts[3]) {
    int B = o->bins, C = o->classes, per = 4 * B + C;
    /* the class loss runs over the K classes kept (all but cls_skip's), column k being class kept[k] */
    int *kept = malloc(sizeof(int) * ((size_t)C + 1)), *column = malloc(sizeof(int) * ((size_t)C + 1)), K = 0;
    for (int c = 0; kept && column && c < C; c++) {
        column[c] = o->cls_skip && o->cls_skip[c] ? -1 : K;
        if (column[c] >= 0) kept[K++] = c;
    }
    size_t ac = (size_t)A * K;
    float *cls_logit = malloc(sizeof(float) * (ac + 1)), *q = calloc(ac + 1, sizeof(float));
    float *dcls = malloc(sizeof(float) * (ac + 1));
    if (!kept || !column || !cls_logit || !q || !dcls) {
        free(kept), free(column), free(cls_logit), free(q), free(dcls);
        return (double)lathe_fail(LATHE_ENOMEM, "detector loss of %d anchors", A);
    }
    for (int a = 0; a < A; a++)
        for (int k = 0; k < K; k++) cls_logit[(size_t)a * K + k] = out[(size_t)a * per + 4 * B + kept[k]];
    int npos = 0;
    for (int a = 0; a < A; a++) npos += assigned[a] >= 0;
    double total = 0, norm = 0;
    for (int a = 0; a < A; a++) {
        if (assigned[a] < 0) continue;
        int k = column[gt_labels[assigned[a]]];
        if (k >= 0) q[(size_t)a * K + k] = score[a];
        norm += score[a];
    }
    if (o->norm > 0) norm = o->norm; /* a batch's shared normalizer */
    else if (norm < 1) norm = 1;
    double l_cls;
    if (o->cls_kind == LATHE_CLS_FOCAL) { /* RetinaNet's focal loss on hard targets: 1 for each positive's class */
        for (size_t i = 0; i < ac; i++) q[i] = q[i] > 0 ? 1.0f : 0.0f;
        l_cls = lathe_k_focal_f32(ac, cls_logit, q, 0.25f, 2.0f, dcls) * (double)ac / norm; /* a sum, as varifocal's */
        for (size_t i = 0; i < ac; i++) dcls[i] *= (float)ac;
    } else if (o->cls_kind == LATHE_CLS_BCE) {
        l_cls = lathe_k_bce_f32(ac, cls_logit, q, dcls) / norm;
    } else {
        l_cls = lathe_k_varifocal_f32(ac, cls_logit, q, 0.75f, 2.0f, dcls) / norm;
    }
    /* positives: CIoU (or GIoU) on decoded boxes, DFL on the logits, both weighted by target score */
    float *pb = malloc(sizeof(float) * 4 * ((size_t)npos + 1)), *tb = malloc(sizeof(float) * 4 * ((size_t)npos + 1));
    float *w = malloc(sizeof(float) * ((size_t)npos + 1)), *dbox = malloc(sizeof(float) * 4 * ((size_t)npos + 1));
    float *pl = malloc(sizeof(float) * 4 * (size_t)B * ((size_t)npos + 1)), *dist = malloc(sizeof(float) * 4 * ((size_t)npos + 1));
    float *dpl = malloc(sizeof(float) * 4 * (size_t)B * ((size_t)npos + 1));
    float *pp = malloc(sizeof(float) * 2 * ((size_t)npos + 1)), *ps = malloc(sizeof(float) * ((size_t)npos + 1));
    int32_t *idx = malloc(sizeof(int32_t) * ((size_t)npos + 1));
    double l_iou = 0, l_dfl = 0;
    if (!pb || !tb || !w || !dbox || !pl || !dist || !dpl || !pp || !ps || !idx) {
        total = -LATHE_ENOMEM;
        lathe_fail(LATHE_ENOMEM, "detector loss");
    } else {
        int k = 0;
        for (int a = 0; a < A; a++) {
            if (assigned[a] < 0) continue;
            idx[k] = a;
            memcpy(pb + 4 * k, boxes + 4 * (size_t)a, 4 * sizeof(float));
            memcpy(tb + 4 * k, gt + 4 * (size_t)assigned[a], 4 * sizeof(float));
            memcpy(pl + (size_t)k * 4 * B, out + (size_t)a * per, sizeof(float) * 4 * B);
            pp[2 * k] = points[2 * a], pp[2 * k + 1] = points[2 * a + 1], ps[k] = stride[a];
            w[k] = score[a];
            k++;
        }
        lathe_det_encode(npos, B, tb, pp, ps, dist);
        /* both return sum(w L) / sum(w); rescale to sum(w L) / norm like the class loss */
        double wsum = 0;
        for (int i = 0; i < npos; i++) wsum += w[i];
        double scale = npos ? wsum / norm : 0;
        l_iou = npos ? lathe_k_iou_loss_f32(o->iou_kind, npos, pb, tb, w, dbox) * scale : 0;
        l_dfl = npos ? lathe_k_dfl_f32(npos, B, pl, dist, w, dpl) * scale : 0;
        total = o->w_cls * l_cls + o->w_iou * l_iou + o->w_dfl * l_dfl;
        if (dout) {
            memset(dout, 0, sizeof(float) * (size_t)A * per);
            for (int a = 0; a < A; a++)
                for (int j = 0; j < K; j++)
                    dout[(size_t)a * per + 4 * B + kept[j]] = (float)(o->w_cls * dcls[(size_t)a * K + j] / norm);
            for (int i = 0; i < npos; i++) {
                int a = idx[i];
                float *d = dout + (size_t)a * per;
                /* box side s moves with the expectation of its distribution: x1 = px - d_l stride, ... */
                static const float sign[4] = {-1, -1, 1, 1};
                for (int side = 0; side < 4; side++) {
                    const float *z = pl + ((size_t)i * 4 + side) * B;
                    double mx = z[0], sum = 0, e = 0;
                    for (int j = 1; j < B; j++) mx = z[j] > mx ? z[j] : mx;
                    for (int j = 0; j < B; j++) sum += exp(z[j] - mx), e += exp(z[j] - mx) * j;
                    double mean = e / sum, gbox = o->w_iou * scale * dbox[4 * i + side] * sign[side] * ps[i];
                    for (int j = 0; j < B; j++) {
                        double pj = exp(z[j] - mx) / sum;
                        d[side * B + j] += (float)(gbox * pj * (j - mean) + o->w_dfl * scale * dpl[((size_t)i * 4 + side) * B + j]);
                    }
                }
            }
        }
    }
    if (parts) parts[0] = l_cls, parts[1] = l_iou, parts[2] = l_dfl;
    free(pb), free(tb), free(w), free(dbox), free(pl), free(dist), free(dpl), free(pp), free(ps), free(idx);
    free(kept), free(column), free(cls_logit), free(q), free(dcls);
    return total;
}
