/* synth_scene.c - draws a planned synthetic scene (synth.c) into an RGB image: conveyor belt with
 * grooves, fibres and side rails; parts as signed-distance shapes with soft (defocused) edges,
 * bevels, machining rings and drop shadows; defects; a gripper bar; then optional 3x3 blur, a
 * lighting gradient with vignette, and sensor noise. Per-pixel work is a handful of float or
 * integer operations: a 1280x960 image takes about 8 ms of one core (JPEG encoding about 3.5 ms).
 * It cannot fail. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "datasets/synth_internal.h"

#define PI_F 3.14159265f

static const float belt_rgb[][3] = {
    {118, 118, 116}, {72, 74, 77}, {40, 40, 43}, {58, 98, 68}, {50, 72, 112},
};
static const float grip_rgb[][3] = {{232, 118, 34}, {122, 126, 132}};

/* Plain comparisons: fmaxf/fminf become library calls without -ffast-math (NaN rules). */
static inline float maxf(float a, float b) { return a > b ? a : b; }
static inline float minf(float a, float b) { return a < b ? a : b; }
static inline float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static inline uint8_t to_u8(float v) { return (uint8_t)(int)(clampf(v, 0, 255) + 0.5f); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* atan2 to about 1e-5 rad: enough to place gear teeth, and several times cheaper than libm. */
static inline float fast_atan2(float y, float x) {
    float ax = fabsf(x), ay = fabsf(y), mx = maxf(ax, ay), mn = minf(ax, ay);
    float a = mn / (mx + 1e-30f), s = a * a;
    float r = ((-0.0464964749f * s + 0.15931422f) * s - 0.327622764f) * s * a + a;
    if (ay > ax) r = 1.57079637f - r;
    if (x < 0) r = PI_F - r;
    return y < 0 ? -r : r;
}

/* Regular hexagon with inradius r, flat top and bottom (exact distance, Inigo Quilez). */
static inline float hex_sdf(float u, float v, float r) {
    const float kx = -0.866025404f, ky = 0.5f, kz = 0.577350269f;
    float px = fabsf(u), py = fabsf(v);
    float d = minf(kx * px + ky * py, 0.0f);
    px -= 2 * d * kx, py -= 2 * d * ky;
    px -= clampf(px, -kz * r, kz * r), py -= r;
    float len = sqrtf(px * px + py * py);
    return py < 0 ? -len : len;
}

/* Rectangle of half extents (hw, hh) with corner radius cr. */
static inline float box_sdf(float u, float v, float hw, float hh, float cr) {
    float qx = fabsf(u) - hw + cr, qy = fabsf(v) - hh + cr;
    float ox = maxf(qx, 0), oy = maxf(qy, 0);
    return sqrtf(ox * ox + oy * oy) + minf(maxf(qx, qy), 0) - cr;
}

/* Triangle wave in [-1, 1] with period 1: concentric machining marks. */
static inline float tri(float x) { return fabsf(x - floorf(x) - 0.5f) * 4 - 1; }

/* Signed distance (local units) at (u, v) and the surface colour there (before lighting). Always
 * inlined with a constant `type`, so each part type gets its own pixel loop with no per-pixel
 * switch (about 10% faster than one generic loop). */
static inline __attribute__((always_inline)) float part_eval(const synth_part *p, int type, float u, float v,
                                                              float rgb[3]) {
    float d, shade = 1, r = sqrtf(u * u + v * v);
    const float *base = p->rgb;
    static const float black[3] = {24, 25, 28}, gold[3] = {204, 168, 84}, pin[3] = {190, 190, 194};
    float trace_rgb[3];
    switch (type) {
    case SYNTH_NUT:
        d = maxf(hex_sdf(u, v, 0.866f), p->bore - r);
        if (r > 0.9f) shade = 0.84f;                  /* chamfered corners */
        else if (r < p->bore + 0.07f) shade = 0.68f;  /* thread */
        else shade = 1 + 0.03f * tri(r * 22);
        break;
    case SYNTH_FLANGE:
        d = maxf(r - 1, p->bore - r);
        shade = (r < p->bore + 0.14f ? 1.12f : 1.0f) * (1 + 0.045f * tri(r * 26));
        break;
    case SYNTH_BRACKET:
        d = box_sdf(u, v, p->hw, p->hh, 0.12f);
        if (u > p->hw - 0.28f) shade = 1.13f;  /* the bent lip catches the light */
        else if (u > p->hw - 0.31f) shade = 0.8f;
        break;
    case SYNTH_GEAR:
        if (r > 0.8f) {
            float f = (fast_atan2(v, u) * (1 / (2 * PI_F)) + 0.5f) * (float)p->teeth + p->tooth_phase;
            float t = fabsf(f - floorf(f) - 0.5f) * 2; /* 0 mid-gap, 1 mid-tooth */
            float k = clampf((t - 0.3f) / 0.3f, 0, 1);
            d = r - (0.84f + 0.16f * k);
            if (k > 0 && k < 1) { /* on a flank: radial distance overstates the true distance */
                float g = 0.16f / (0.3f * PI_F / (float)p->teeth * r);
                d *= 1 / sqrtf(1 + g * g);
            }
        } else {
            d = r - 0.84f;
        }
        d = maxf(d, p->bore - r);
        shade = (r < p->bore + 0.14f ? 1.12f : r > 0.78f ? 0.92f : 1.0f) * (1 + 0.04f * tri(r * 30));
        break;
    default: { /* SYNTH_PCB */
        d = box_sdf(u, v, p->hw, p->hh, 0.03f);
        for (int i = 0; i < p->ntraces; i++) { /* a trace runs from pad to pad (a lone line is a scratch) */
            const float *t = p->traces[i];
            float pad = 0.026f, cu = (t[0] + t[2]) / 2, cv = (t[1] + t[3]) / 2;
            int along_u = t[2] - t[0] > t[3] - t[1];
            float du = along_u ? minf(fabsf(u - t[0]), fabsf(u - t[2])) : fabsf(u - cu);
            float dv = along_u ? fabsf(v - cv) : minf(fabsf(v - t[1]), fabsf(v - t[3]));
            if (du <= pad && dv <= pad) {
                base = gold;
            } else if (u >= t[0] && u <= t[2] && v >= t[1] && v <= t[3] && base != gold) {
                for (int c = 0; c < 3; c++) trace_rgb[c] = minf(255, base[c] * 1.45f + 20);
                base = trace_rgb;
            }
        }
        for (int i = 0; i < p->nchips; i++) {
            const float *c = p->chips[i];
            float ax = fabsf(u - c[0]), ay = fabsf(v - c[1]);
            if (ax <= c[2] && ay <= c[3]) base = black;
            else if (ax <= c[2] - 0.02f && ay <= c[3] + 0.05f && tri(u * 26) > 0) base = pin;
        }
        break;
    }
    }
    if (p->nholes) { /* holes of one part share a radius: the nearest one decides */
        float best = 1e30f;
        int hit = -1;
        for (int i = 0; i < p->nholes; i++) {
            if (p->missing >> i & 1) continue;
            float dx = u - p->holes[i].x, dy = v - p->holes[i].y, q = dx * dx + dy * dy;
            if (q < best) best = q, hit = i;
        }
        if (hit >= 0) {
            float dist = sqrtf(best);
            d = maxf(d, p->holes[hit].r - dist);
            if (type == SYNTH_PCB && dist < p->holes[hit].r + 0.035f) base = gold, shade = 1;
        }
    }
    /* An undrilled hole leaves what came before the drill: a board's pad, solid; on metal the spot
     * drill's shallow cone, lit like a dent from the upper left (its upper-left wall in shade). */
    for (unsigned m = p->missing; m; m &= m - 1) {
        const synth_hole *h = &p->holes[__builtin_ctz(m)];
        float dx = u - h->x, dy = v - h->y, q = dx * dx + dy * dy;
        if (type == SYNTH_PCB) {
            if (q < (h->r + 0.035f) * (h->r + 0.035f)) base = gold, shade = 1;
            continue;
        }
        float s = 0.45f * h->r;
        if (q >= s * s) continue;
        float rho = sqrtf(q) / s, t = -0.7071f * (dx + dy) / s; /* t: 1 at the upper-left wall */
        shade *= rho > 0.85f ? 0.72f : 0.95f - 0.3f * t * (1 - rho) - 0.1f * (1 - rho);
    }
    rgb[0] = base[0] * shade, rgb[1] = base[1] * shade, rgb[2] = base[2] * shade;
    return d;
}

float lathe_synth_part_sdf(const synth_part *p, float u, float v) {
    float rgb[3];
    return part_eval(p, p->type, u, v, rgb);
}

/* Noise comes from windows at random offsets into one pool of random bytes per image: as good as
 * fresh bytes to the eye and the encoders, and it keeps the generator off the per-pixel path. */
#define NOISE_POOL (1 << 18)

/* Scratch layout: int32 col[W], row[H], col3[3W]; bytes rows[6W]; bytes pool[NOISE_POOL]. */
size_t lathe_synth_scratch_bytes(int width, int height) {
    return sizeof(int32_t) * ((size_t)4 * (size_t)width + (size_t)height) + (size_t)6 * (size_t)width + NOISE_POOL + 64;
}

/* ---- layers ---- */

typedef struct {
    uint8_t *px;
    int W, H;
} canvas;

static void background(const synth_scene *sc, canvas *cv, int32_t *col_add, int32_t *row_add, int16_t *col3,
                       synth_rng *r) {
    int W = cv->W, H = cv->H, n = 3 * W, vert = sc->belt_vertical;
    int along = vert ? H : W, across = vert ? W : H;
    int32_t *groove = vert ? row_add : col_add, *fibre = vert ? col_add : row_add;
    float period = sc->stripe_period * (float)(along > across ? along : across);
    if (period < 6) period = 6;
    for (int i = 0; i < along; i++) { /* grooves across the belt, with a little grain */
        float f = (float)i / period + sc->stripe_phase;
        f -= floorf(f);
        float ridge = maxf(0, 1 - fabsf(f - 0.5f) * 7);
        groove[i] = (int32_t)(-sc->stripe_amp * ridge) + (int32_t)(synth_next(r) % 5) - 2;
    }
    for (int i = 0; i < across; i++) fibre[i] = (int32_t)(synth_next(r) % 9) - 4; /* fibres along it */
    const float *belt = belt_rgb[sc->belt];
    for (int x = 0; x < W; x++)
        for (int c = 0; c < 3; c++) col3[3 * x + c] = (int16_t)((int)belt[c] + col_add[x]);
    for (int y = 0; y < H; y++) { /* 16-bit lanes: twice the pixels per vector of 32-bit ones */
        uint8_t *p = cv->px + (size_t)y * n;
        int16_t ra = (int16_t)row_add[y];
#pragma omp simd
        for (int i = 0; i < n; i++) {
            int16_t v = (int16_t)(col3[i] + ra);
            p[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    /* Side rails: brushed steel, brightest along the middle, a dark gap at the belt. */
    for (int side = 0; side < 2; side++) {
        int t = side ? sc->rail1 : sc->rail0;
        for (int k = 0; k < t; k++) {
            int line = side ? across - 1 - k : k;
            float prof = (float)k / (float)t, v = 118 + 60 * sinf(PI_F * prof);
            if (k >= t - 2) v = 30;
            if (vert) {
                for (int y = 0; y < H; y++) {
                    uint8_t *p = cv->px + ((size_t)y * W + line) * 3;
                    p[0] = p[1] = p[2] = (uint8_t)clampi((int)v + row_add[y] / 2, 0, 255);
                    p[2] = (uint8_t)clampi(p[2] + 4, 0, 255);
                }
            } else {
                uint8_t *p = cv->px + (size_t)line * W * 3;
                for (int x = 0; x < W; x++) {
                    p[3 * x] = p[3 * x + 1] = (uint8_t)clampi((int)v + col_add[x] / 4, 0, 255);
                    p[3 * x + 2] = (uint8_t)clampi(p[3 * x] + 4, 0, 255);
                }
            }
        }
    }
}

/* A part with its drop shadow: soft edges from the signed distance, a bevel darkening every edge
 * (holes too), and light falling from the upper left. */
static inline __attribute__((always_inline)) void draw_part_as(const synth_pose *ps, int type, float soft,
                                                                canvas *cv) {
    const synth_part *p = &ps->part;
    float span = ps->R * p->bound, ox = 0.06f * span, oy = 0.09f * span, pen = maxf(1.5f, 0.05f * span);
    float off = sqrtf(ox * ox + oy * oy), ext = span + off + pen + soft + 2;
    /* Beyond `far` (local units) neither the part nor its shadow changes a pixel. The shadow is the
     * part's distance at an offset, and distance changes by at most the offset length. */
    float margin = (off + pen + soft + 1) / ps->R, far = p->bound + margin, far2 = far * far;
    float ub = (p->hw > 0 ? p->hw : p->bound) + margin, vb = (p->hh > 0 ? p->hh : p->bound) + margin;
    float shadow_reach = off + 0.5f * pen;
    int y0 = clampi((int)floorf(ps->cy - ext), 0, cv->H - 1), y1 = clampi((int)ceilf(ps->cy + ext), 0, cv->H - 1);
    if (ps->cy + ext < 0 || ps->cy - ext > (float)cv->H || ps->cx + ext < 0 || ps->cx - ext > (float)cv->W) return;
    float c = cosf(ps->theta) / ps->R, s = sinf(ps->theta) / ps->R, inv_soft = 1 / soft;
    float bevel = 1 / maxf(1.5f, 0.055f * ps->R), lk = -0.2f / (1.4142f * span);
    for (int y = y0; y <= y1; y++) {
        float dy = (float)y + 0.5f - ps->cy, h2 = ext * ext - dy * dy;
        if (h2 <= 0) continue;
        float h = sqrtf(h2);
        int x0 = clampi((int)floorf(ps->cx - h), 0, cv->W - 1), x1 = clampi((int)ceilf(ps->cx + h), 0, cv->W - 1);
        uint8_t *row = cv->px + (size_t)y * cv->W * 3;
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - ps->cx;
            float u = dx * c + dy * s, v = -dx * s + dy * c, rgb[3];
            if (u * u + v * v > far2 || fabsf(u) > ub || fabsf(v) > vb) continue;
            float dpx = part_eval(p, type, u, v, rgb) * ps->R;
            float cov = clampf(0.5f - dpx * inv_soft, 0, 1);
            uint8_t *q = row + 3 * x;
            if (cov < 1 && dpx < shadow_reach) { /* belt visible: shade it where the shadow falls */
                float su = (dx - ox) * c + (dy - oy) * s, sv = -(dx - ox) * s + (dy - oy) * c;
                float srgb[3], sd = part_eval(p, type, su, sv, srgb) * ps->R;
                float sh = 1 - 0.38f * clampf(0.5f - sd / pen, 0, 1);
                if (sh < 1)
                    for (int k = 0; k < 3; k++) q[k] = (uint8_t)((float)q[k] * sh);
            }
            if (cov <= 0) continue;
            float light = (1 + lk * (dx + dy)) * (0.7f + 0.3f * clampf(-dpx * bevel, 0, 1));
            for (int k = 0; k < 3; k++) q[k] = to_u8((float)q[k] + cov * (rgb[k] * light - (float)q[k]));
        }
    }
}

static void draw_part(const synth_pose *ps, float soft, canvas *cv) {
    switch (ps->part.type) {
    case SYNTH_NUT: draw_part_as(ps, SYNTH_NUT, soft, cv); break;
    case SYNTH_FLANGE: draw_part_as(ps, SYNTH_FLANGE, soft, cv); break;
    case SYNTH_BRACKET: draw_part_as(ps, SYNTH_BRACKET, soft, cv); break;
    case SYNTH_GEAR: draw_part_as(ps, SYNTH_GEAR, soft, cv); break;
    default: draw_part_as(ps, SYNTH_PCB, soft, cv); break;
    }
}

/* Squared distance from (x, y) to segment a-b, and where along it (0 at a, 1 at b) the nearest point is. */
static inline float seg_dist2_t(float x, float y, float ax, float ay, float bx, float by, float *at) {
    float dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? clampf(((x - ax) * dx + (y - ay) * dy) / l2, 0, 1) : 0;
    float ex = x - ax - t * dx, ey = y - ay - t * dy;
    *at = t;
    return ex * ex + ey * ey;
}

static inline float seg_dist2(float x, float y, float ax, float ay, float bx, float by) {
    float t;
    return seg_dist2_t(x, y, ax, ay, bx, by, &t);
}

/* One defect, never outside its box. */
static void draw_defect(const synth_defect *d, canvas *cv) {
    float ca = cosf(d->angle), sa = sinf(d->angle);
    float inv_a = d->a > 0 ? 1 / d->a : 0, inv_b = d->b > 0 ? 1 / d->b : 0, minab = minf(d->a, d->b);
    float maxab = maxf(d->a, d->b);
    if (d->category == LATHE_SYNTH_MISSING_HOLE) return; /* drawn with the part: part_eval */
    for (int y = d->y0; y <= d->y1; y++) {
        uint8_t *row = cv->px + (size_t)y * cv->W * 3;
        float py = (float)y + 0.5f;
        for (int x = d->x0; x <= d->x1; x++) {
            float px = (float)x + 0.5f, f;
            uint8_t *q = row + 3 * x;
            if (d->category == LATHE_SYNTH_DENT) {
                float dx = px - d->px[0], dy = py - d->py[0];
                float qx = (dx * ca + dy * sa) * inv_a, qy = (-dx * sa + dy * ca) * inv_b;
                float rho = sqrtf(qx * qx + qy * qy);
                float alpha = clampf((1 - rho) * minab + 0.5f, 0, 1);
                if (alpha <= 0) continue;
                /* A hollow lit from the upper left: its upper-left wall is in shade, the opposite
                 * one catches light, and a darker rim outlines it all round. */
                float t = (-0.7071f * dx - 0.7071f * dy) / maxab, w = clampf((rho - 0.7f) * 3.333f, 0, 1);
                f = 1 - alpha * d->strength * ((1 - w) * (0.2f + 0.6f * t) + w * 0.5f);
                float glint = alpha * d->strength * (1 - w) * maxf(0, -t) * 50; /* shows on dark metal too */
                for (int k = 0; k < 3; k++) q[k] = to_u8((float)q[k] * f + glint);
                continue;
            }
            float best = 1e30f, along = 0, hw = d->half_width; /* along: 0..1 from the first point */
            for (int i = 1; i < d->npts; i++) {
                float t, e2 = seg_dist2_t(px, py, d->px[i - 1], d->py[i - 1], d->px[i], d->py[i], &t);
                if (e2 < best) best = e2, along = ((float)(i - 1) + t) / (float)(d->npts - 1);
            }
            if (d->category == LATHE_SYNTH_CRACK) hw *= 1 - 0.65f * (2 * along - 1) * (2 * along - 1); /* tips 0.35 */
            float alpha = clampf(hw + 0.5f - sqrtf(best), 0, 1);
            if (alpha <= 0) continue;
            float a = alpha * d->strength;
            for (int k = 0; k < 3; k++) {
                float v = (float)q[k];
                if (d->bright) v += a * (255 - v) * (d->category == LATHE_SYNTH_CRACK ? 0.6f : 0.85f);
                else if (d->category == LATHE_SYNTH_CRACK) v *= 1 - 0.9f * a;
                else v *= 1 - 0.7f * a;
                q[k] = to_u8(v);
            }
        }
    }
}

/* A robot gripper's bar reaching in from outside the frame, with its shadow and a dark jaw. */
static void draw_gripper(const synth_scene *sc, canvas *cv) {
    const float *g = sc->grip;
    float hw = sc->grip_hw, ox = 0.5f * hw, oy = 0.8f * hw, pen = maxf(1.5f, 0.35f * hw);
    float lo_x = minf(g[0], g[2]) - hw - pen, hi_x = maxf(g[0], g[2]) + hw + ox + pen;
    float lo_y = minf(g[1], g[3]) - hw - pen, hi_y = maxf(g[1], g[3]) + hw + oy + pen;
    if (hi_x < 0 || lo_x > (float)cv->W || hi_y < 0 || lo_y > (float)cv->H) return;
    int y0 = clampi((int)floorf(lo_y), 0, cv->H - 1), y1 = clampi((int)ceilf(hi_y), 0, cv->H - 1);
    const float *col = grip_rgb[sc->grip_color];
    float jaw = 1.3f * hw, reach = hw + pen + maxf(ox, oy) + 2, gdx = g[2] - g[0], gdy = g[3] - g[1];
    for (int y = y0; y <= y1; y++) {
        uint8_t *row = cv->px + (size_t)y * cv->W * 3;
        float py = (float)y + 0.5f, ta = 0, tb = 1;
        if (fabsf(gdy) > 1e-6f) { /* the stretch of the bar within `reach` rows of this one */
            ta = (py - reach - g[1]) / gdy, tb = (py + reach - g[1]) / gdy;
            if (ta > tb) {
                float t = ta;
                ta = tb, tb = t;
            }
            ta = maxf(ta, 0), tb = minf(tb, 1);
            if (ta > tb) continue;
        } else if (fabsf(py - g[1]) > reach) {
            continue;
        }
        float xa = g[0] + ta * gdx, xb = g[0] + tb * gdx;
        int x0 = clampi((int)floorf(minf(xa, xb) - reach), 0, cv->W - 1);
        int x1 = clampi((int)ceilf(maxf(xa, xb) + reach), 0, cv->W - 1);
        for (int x = x0; x <= x1; x++) {
            float px = (float)x + 0.5f;
            uint8_t *q = row + 3 * x;
            float ds = sqrtf(seg_dist2(px - ox, py - oy, g[0], g[1], g[2], g[3])) - hw;
            float sh = 1 - 0.45f * clampf(0.5f - ds / pen, 0, 1);
            float dist = sqrtf(seg_dist2(px, py, g[0], g[1], g[2], g[3]));
            float cov = clampf(hw + 0.5f - dist, 0, 1);
            if (sh >= 1 && cov <= 0) continue;
            float rr = dist / hw, shade = 0.62f + 0.45f * (1 - rr * rr); /* a cylinder, lit from above */
            float ex = px - g[2], ey = py - g[3];
            if (ex * ex + ey * ey < jaw * jaw) shade *= 0.55f;
            for (int k = 0; k < 3; k++) {
                float v = (float)q[k] * sh;
                q[k] = to_u8(v + cov * (col[k] * shade - v));
            }
        }
    }
}

/* 3x3 binomial blur in place; rows holds two image rows. */
static void blur3(canvas *cv, uint8_t *rows) {
    int W = cv->W, H = cv->H, n = 3 * W;
    uint8_t *tmp = rows;
    for (int y = 0; y < H; y++) { /* horizontal */
        uint8_t *p = cv->px + (size_t)y * n;
        memcpy(tmp, p, (size_t)n);
        for (int c = 0; c < 3; c++) {
            p[c] = (uint8_t)((3 * tmp[c] + tmp[c + 3] + 2) >> 2);
            p[n - 3 + c] = (uint8_t)((tmp[n - 6 + c] + 3 * tmp[n - 3 + c] + 2) >> 2);
        }
#pragma omp simd
        for (int i = 3; i < n - 3; i++) p[i] = (uint8_t)((tmp[i - 3] + 2 * tmp[i] + tmp[i + 3] + 2) >> 2);
    }
    uint8_t *above = rows, *cur = rows + n;
    memcpy(above, cv->px, (size_t)n);
    for (int y = 0; y < H; y++) { /* vertical */
        uint8_t *p = cv->px + (size_t)y * n;
        const uint8_t *below = y + 1 < H ? p + n : p;
        memcpy(cur, p, (size_t)n);
#pragma omp simd
        for (int i = 0; i < n; i++) p[i] = (uint8_t)((above[i] + 2 * cur[i] + below[i] + 2) >> 2);
        uint8_t *t = above;
        above = cur, cur = t;
    }
}

/* Lighting gain and noise of about `noise` grey levels, per channel, in unsigned 16-bit fixed point
 * so SSE2 multiplies 8 at a time. The sum is offset by 64 grey levels, which holds the noise's
 * lowest excursion (255 amp / 128 levels, amp <= 32, sigma up to 26) and keeps the highest below
 * 65536 (255 x 180 + 64 x 128 + 64 + 255 amp). Sigmas under about 0.4 round to no noise. */
static void light_and_noise(const synth_scene *sc, canvas *cv, int16_t *col3, int32_t *row_g, uint8_t *pool,
                            synth_rng *r) {
    int W = cv->W, H = cv->H, n = 3 * W;
    for (int x = 0; x < W; x++) {
        float xn = ((float)x + 0.5f) / (float)W - 0.5f;
        col3[3 * x] = col3[3 * x + 1] = col3[3 * x + 2] =
            (int16_t)lrintf(128 * (sc->light_x * xn - sc->vignette * xn * xn));
    }
    for (int y = 0; y < H; y++) {
        float yn = ((float)y + 0.5f) / (float)H - 0.5f;
        row_g[y] = (int32_t)lrintf(128 * (sc->light0 + sc->light_y * yn - sc->vignette * yn * yn));
    }
    for (int i = 0; i < NOISE_POOL; i += 8) {
        uint64_t b = synth_next(r);
        memcpy(pool + i, &b, 8);
    }
    /* (b0 + b1 - 255) is triangular with sigma ~104.5: amp scales it to the wanted sigma (x128). */
    uint16_t amp = (uint16_t)lrintf(clampf(sc->noise * 128 / 104.5f, 0, 32));
    uint16_t bias = (uint16_t)(64 + 64 * 128 - 255 * amp); /* rounding, +64 levels, centring the noise */
    uint64_t span = (uint64_t)(NOISE_POOL - n + 1);
    for (int y = 0; y < H; y++) {
        uint8_t *p = cv->px + (size_t)y * n;
        const uint8_t *b0 = pool + synth_next(r) % span, *b1 = pool + synth_next(r) % span;
        int16_t rg = (int16_t)row_g[y];
#pragma omp simd
        for (int i = 0; i < n; i++) {
            int16_t gs = (int16_t)(col3[i] + rg);
            uint16_t g = (uint16_t)(gs < 0 ? 0 : gs > 180 ? 180 : gs);
            uint16_t u = (uint16_t)((uint16_t)(p[i] * g) + (uint16_t)((b0[i] + b1[i]) * amp) + bias);
            int16_t v = (int16_t)((u >> 7) - 64);
            p[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

void lathe_synth_render(const synth_scene *sc, lathe_image *img, void *scratch) {
    canvas cv = {img->pixels, img->width, img->height};
    int32_t *col = scratch, *row = col + cv.W;
    int16_t *col3 = (int16_t *)(row + cv.H);
    uint8_t *rows = (uint8_t *)(row + cv.H + 3 * cv.W), *pool = rows + 6 * cv.W;
    synth_rng r;
    lathe_synth_rng_init(&r, sc->seed, (uint64_t)sc->part_no, (uint64_t)sc->view, SYNTH_STREAM_PIXELS);
    background(sc, &cv, col, row, col3, &r);
    if (sc->has_second && !sc->second_over) draw_part(&sc->second, sc->soft, &cv);
    draw_part(&sc->main, sc->soft, &cv);
    for (int i = 0; i < sc->ndefects; i++) draw_defect(&sc->defects[i], &cv);
    if (sc->has_second && sc->second_over) draw_part(&sc->second, sc->soft, &cv);
    if (sc->has_gripper) draw_gripper(sc, &cv);
    if (sc->blur) blur3(&cv, rows);
    light_and_noise(sc, &cv, col3, row, pool, &r);
}
