/* synth.c - the synthetic factory generator's plans: which part each sample shows, its pose,
 * defects, occluders and lighting, its sensor window and its description. Everything is drawn from
 * per-(seed, part, view) random streams, so any sample can be made alone, in any thread.
 * Pixels are drawn by synth_scene.c, archives written by synth_write.c. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/synth.h"
#include "datasets/synth_internal.h"
#include "libcore/base/error.h"

#define PI 3.14159265358979323846

static const char *const class_names[LATHE_SYNTH_NCLASSES] = {
    "good", "scratch", "dent", "crack", "missing_hole", "bearing_wear", "overheating", "jam",
};
static const char *const channel_names[LATHE_SYNTH_NCHANNELS] = {
    "vib_x", "vib_y", "vib_z", "temperature", "current",
};

/* The default label mix: good .40; scratch .14, dent .12, crack .10, missing hole .10 (the image
 * defects, .46); bearing wear .05, overheating .05, jam .04 (the sensor-only faults, .14). */
static const double label_cdf[LATHE_SYNTH_NCLASSES] = {0.40, 0.54, 0.66, 0.76, 0.86, 0.91, 0.96, 1.0};
#define DEFAULT_DEFECT_RATE 0.46
#define DEFAULT_SENSOR_RATE 0.14

const char *lathe_synth_class_name(int id) {
    return id >= 0 && id < LATHE_SYNTH_NCLASSES ? class_names[id] : NULL;
}

const char *lathe_synth_channel_name(int channel) {
    return channel >= 0 && channel < LATHE_SYNTH_NCHANNELS ? channel_names[channel] : NULL;
}

void lathe_synth_defaults(lathe_synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->count = 200;
    o->width = 640;
    o->height = 480;
    o->sensor_steps = 64;
    o->jpeg_quality = 90;
    o->png_ratio = 0.2;
    o->defect_size[0] = o->defect_size[1] = 1;
    o->contrast[0] = o->contrast[1] = 1;
    o->defect_rate = DEFAULT_DEFECT_RATE;
    o->sensor_fault_rate = DEFAULT_SENSOR_RATE;
    o->part_size[0] = 0.16, o->part_size[1] = 0.36;
    o->clutter = 1;
    o->noise[0] = 1.5, o->noise[1] = 5.0;
    o->blur = 0.5;
    o->sensor_noise = o->sensor_drift = 1;
}

/* 1 when lo <= r[0] <= r[1] <= hi (NaN fails). */
static int range_ok(const double r[2], double lo, double hi) { return r[0] >= lo && r[0] <= r[1] && r[1] <= hi; }

int lathe_synth_check(const lathe_synth_opts *o) {
    if (!o) return lathe_fail(LATHE_EINVAL, "no options");
    if (o->count < 1) return lathe_fail(LATHE_EINVAL, "count %d: must be at least 1", o->count);
    if (o->width < 32 || o->width > 16384 || o->height < 32 || o->height > 16384)
        return lathe_fail(LATHE_EINVAL, "image size %dx%d: width and height must be 32..16384", o->width,
                          o->height);
    if (o->sensor_steps < 2 || o->sensor_steps > 1000000)
        return lathe_fail(LATHE_EINVAL, "sensor steps %d: must be 2..1000000", o->sensor_steps);
    if (o->jpeg_quality < 1 || o->jpeg_quality > 100)
        return lathe_fail(LATHE_EINVAL, "jpeg quality %d: must be 1..100", o->jpeg_quality);
    if (!(o->png_ratio >= 0 && o->png_ratio <= 1))
        return lathe_fail(LATHE_EINVAL, "png ratio %g: must be 0..1", o->png_ratio);
    if (o->threads < 0 || o->threads > 1024)
        return lathe_fail(LATHE_EINVAL, "threads %d: must be 0..1024", o->threads);
    if (!range_ok(o->defect_size, 0.1, 3))
        return lathe_fail(LATHE_EINVAL, "defect size %g,%g: must be MIN,MAX with 0.1 <= MIN <= MAX <= 3",
                          o->defect_size[0], o->defect_size[1]);
    if (!range_ok(o->contrast, 0.05, 2))
        return lathe_fail(LATHE_EINVAL, "contrast %g,%g: must be MIN,MAX with 0.05 <= MIN <= MAX <= 2", o->contrast[0],
                          o->contrast[1]);
    int nmin = o->defect_count[0], nmax = o->defect_count[1];
    if (!(nmin == 0 && nmax == 0) && !(nmin >= 1 && nmin <= nmax && nmax <= LATHE_SYNTH_MAX_BOXES))
        return lathe_fail(LATHE_EINVAL, "defects %d,%d: must be MIN,MAX with 1 <= MIN <= MAX <= %d (0,0 = the default rule)",
                          nmin, nmax, LATHE_SYNTH_MAX_BOXES);
    if (!(o->defect_rate >= 0 && o->defect_rate <= 1))
        return lathe_fail(LATHE_EINVAL, "defect rate %g: must be 0..1", o->defect_rate);
    if (!(o->sensor_fault_rate >= 0 && o->sensor_fault_rate <= 1))
        return lathe_fail(LATHE_EINVAL, "sensor fault rate %g: must be 0..1", o->sensor_fault_rate);
    if (o->defect_rate + o->sensor_fault_rate > 1 + 1e-9)
        return lathe_fail(LATHE_EINVAL,
                          "defect rate %g + sensor fault rate %g: must sum to at most 1 (good parts are the rest)",
                          o->defect_rate, o->sensor_fault_rate);
    if (!range_ok(o->part_size, 0.05, 0.45))
        return lathe_fail(LATHE_EINVAL, "part size %g,%g: must be MIN,MAX with 0.05 <= MIN <= MAX <= 0.45",
                          o->part_size[0], o->part_size[1]);
    if (!(o->clutter >= 0 && o->clutter <= 3))
        return lathe_fail(LATHE_EINVAL, "clutter %g: must be 0..3", o->clutter);
    if (!range_ok(o->noise, 0, 25))
        return lathe_fail(LATHE_EINVAL, "noise %g,%g: must be MIN,MAX with 0 <= MIN <= MAX <= 25", o->noise[0], o->noise[1]);
    if (!(o->blur >= 0 && o->blur <= 1)) return lathe_fail(LATHE_EINVAL, "blur %g: must be 0..1", o->blur);
    if (!(o->sensor_noise >= 0 && o->sensor_noise <= 20)) return lathe_fail(LATHE_EINVAL, "sensor noise %g: must be 0..20", o->sensor_noise);
    if (!(o->sensor_drift >= 0 && o->sensor_drift <= 20)) return lathe_fail(LATHE_EINVAL, "sensor drift %g: must be 0..20", o->sensor_drift);
    if (!(o->sensor_dropout >= 0 && o->sensor_dropout <= 1))
        return lathe_fail(LATHE_EINVAL, "sensor dropout %g: must be 0..1", o->sensor_dropout);
    return 0;
}

/* ---- random streams ---- */

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void lathe_synth_rng_init(synth_rng *r, uint64_t seed, uint64_t part, uint64_t view, uint64_t stream) {
    uint64_t k = mix64(mix64(mix64(mix64(seed) ^ part) ^ view) ^ stream);
    for (int i = 0; i < 4; i++) r->s[i] = mix64(k += 0x9E3779B97F4A7C15ull);
}

/* Standard normal (Box-Muller, one value per call). */
static double gauss(synth_rng *r) {
    double u = synth_unit(r), v = synth_unit(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * PI * v);
}

int lathe_synth_views(uint64_t seed, int part_no) {
    synth_rng r;
    lathe_synth_rng_init(&r, seed, (uint64_t)part_no, 0, SYNTH_STREAM_PART);
    double u = synth_unit(&r); /* the first draw of the part stream, see plan_part */
    return u < 0.4 ? 1 : u < 0.75 ? 2 : 3;
}

void lathe_synth_locate(uint64_t seed, size_t index, int *part_no, int *view) {
    int p = 1;
    for (;;) {
        int n = lathe_synth_views(seed, p);
        if (index < (size_t)n) break;
        index -= (size_t)n;
        p++;
    }
    *part_no = p;
    *view = (int)index + 1;
}

/* ---- parts ---- */

typedef struct {
    const char *name;
    float r, g, b;
} material;

enum { M_STEEL, M_BRASS, M_ZINC, M_OXIDE, M_ALU, M_IRON, M_NYLON, M_BLUEP, M_YELLOWP, M_PCBG, M_PCBB, M_PCBK };
static const material materials[] = {
    {"steel", 168, 171, 176},      {"brass", 196, 164, 84},          {"zinc-plated", 188, 194, 204},
    {"black-oxide", 62, 62, 68},   {"aluminium", 206, 208, 212},     {"cast-iron", 104, 104, 108},
    {"nylon", 226, 222, 206},      {"blue-painted", 52, 88, 164},    {"yellow-painted", 222, 180, 46},
    {"green", 34, 114, 58},        {"blue", 30, 64, 142},            {"black", 36, 38, 42},
};
static const int type_materials[SYNTH_NTYPES][4] = {
    {M_STEEL, M_BRASS, M_ZINC, M_OXIDE},  {M_STEEL, M_ALU, M_IRON, M_ZINC}, {M_ALU, M_STEEL, M_BLUEP, M_YELLOWP},
    {M_STEEL, M_BRASS, M_NYLON, M_OXIDE}, {M_PCBG, M_PCBB, M_PCBK, M_PCBG},
};
static const char *const type_names[SYNTH_NTYPES] = {"hex nut", "flange", "bracket plate", "gear", "circuit board"};
static const char *const hole_names[SYNTH_NTYPES] = {"hole", "bolt hole", "bolt hole", "lightening hole",
                                                     "mounting hole"};

static const struct {
    const char *name;
} belts[] = {{"grey"}, {"dark grey"}, {"black"}, {"green"}, {"blue"}};
enum { NBELTS = sizeof belts / sizeof belts[0] };

/* A new part of `type`; with need_holes, one that has holes that could be missing. */
static void make_part(synth_rng *r, int type, int need_holes, synth_part *p) {
    memset(p, 0, sizeof *p);
    p->type = type;
    p->material = type_materials[type][synth_int(r, 0, 3)];
    p->rgb[0] = materials[p->material].r;
    p->rgb[1] = materials[p->material].g;
    p->rgb[2] = materials[p->material].b;
    p->bound = 1.0f;
    switch (type) {
    case SYNTH_NUT: p->bore = (float)synth_range(r, 0.40, 0.48); break;
    case SYNTH_FLANGE: {
        p->bore = (float)synth_range(r, 0.28, 0.38);
        int n = 4 + 2 * synth_int(r, 0, 2);
        float pitch = (float)synth_range(r, 0.66, 0.72), hr = (float)synth_range(r, 0.08, 0.11);
        double phase = synth_range(r, 0, 2 * PI);
        p->nholes = n;
        for (int i = 0; i < n; i++) {
            double a = phase + 2 * PI * i / n;
            p->holes[i] = (synth_hole){pitch * (float)cos(a), pitch * (float)sin(a), hr};
        }
        break;
    }
    case SYNTH_BRACKET: {
        p->hw = 0.86f;
        p->hh = (float)synth_range(r, 0.42, 0.52);
        p->bound = hypotf(p->hw, p->hh);
        float hr = (float)synth_range(r, 0.07, 0.09), ix = p->hw - 0.17f, iy = p->hh - 0.17f;
        if (synth_unit(r) < 0.5) {
            p->nholes = 2;
            p->holes[0] = (synth_hole){-ix, 0, hr};
            p->holes[1] = (synth_hole){ix, 0, hr};
        } else {
            p->nholes = 4;
            for (int i = 0; i < 4; i++) p->holes[i] = (synth_hole){i & 1 ? ix : -ix, i & 2 ? iy : -iy, hr};
        }
        break;
    }
    case SYNTH_GEAR: {
        p->teeth = synth_int(r, 12, 24);
        p->tooth_phase = (float)synth_unit(r);
        p->bore = (float)synth_range(r, 0.16, 0.22);
        int n = synth_unit(r) < 0.5 && !need_holes ? 0 : synth_int(r, 4, 6);
        float hr = (float)synth_range(r, 0.10, 0.13);
        double phase = synth_range(r, 0, 2 * PI);
        p->nholes = n;
        for (int i = 0; i < n; i++) {
            double a = phase + 2 * PI * i / n;
            p->holes[i] = (synth_hole){0.56f * (float)cos(a), 0.56f * (float)sin(a), hr};
        }
        break;
    }
    default: { /* SYNTH_PCB */
        p->hw = 0.86f;
        p->hh = (float)synth_range(r, 0.48, 0.58);
        p->bound = hypotf(p->hw, p->hh);
        float hr = (float)synth_range(r, 0.040, 0.052), ix = p->hw - 0.09f, iy = p->hh - 0.09f;
        p->nholes = 4;
        for (int i = 0; i < 4; i++) p->holes[i] = (synth_hole){i & 1 ? ix : -ix, i & 2 ? iy : -iy, hr};
        p->nchips = synth_int(r, 1, 3);
        for (int i = 0; i < p->nchips; i++) {
            float slot = 2 * (p->hw - 0.22f) / (float)p->nchips, x0 = -(p->hw - 0.22f) + slot * (float)i;
            float chw = (float)synth_range(r, 0.25, 0.42) * slot, chh = (float)synth_range(r, 0.12, 0.28);
            p->chips[i][0] = x0 + slot / 2;
            p->chips[i][1] = (float)synth_range(r, -0.1, 0.1);
            p->chips[i][2] = chw;
            p->chips[i][3] = chh;
        }
        p->ntraces = synth_int(r, 3, SYNTH_MAX_TRACES);
        for (int i = 0; i < p->ntraces; i++) {
            float t = 0.012f;
            if (i % 2 == 0) { /* along u */
                float y = (float)synth_range(r, -p->hh + 0.12, p->hh - 0.12), a = (float)synth_range(r, -0.7, 0.2);
                float b = a + (float)synth_range(r, 0.3, 0.9);
                p->traces[i][0] = a, p->traces[i][1] = y - t, p->traces[i][2] = b < 0.75f ? b : 0.75f;
                p->traces[i][3] = y + t;
            } else {
                float x = (float)synth_range(r, -0.7, 0.7), a = (float)synth_range(r, -p->hh + 0.1, 0);
                float b = a + (float)synth_range(r, 0.2, 0.6);
                p->traces[i][0] = x - t, p->traces[i][1] = a, p->traces[i][2] = x + t;
                p->traces[i][3] = b < p->hh - 0.1f ? b : p->hh - 0.1f;
            }
        }
        break;
    }
    }
}

/* ---- defects in part-local units (the same on every view of a part) ---- */

typedef struct {
    int category;
    int npts;
    float u[SYNTH_MAX_PTS], v[SYNTH_MAX_PTS];
    float hw;               /* line half width */
    float a, b, angle;      /* dent */
    float strength;
    int bright;
    int hole;               /* missing hole index */
    float cu, cv, rad;      /* bounding circle */
} local_defect;

/* 1 when (u, v) lies on material at least margin inside every edge and hole. */
static int on_material(const synth_part *p, float u, float v, float margin) {
    for (int i = 0; i < p->nchips; i++) /* keep off the black chips, where a dark defect would vanish */
        if (fabsf(u - p->chips[i][0]) < p->chips[i][2] + 0.05f + margin &&
            fabsf(v - p->chips[i][1]) < p->chips[i][3] + 0.08f + margin)
            return 0;
    return lathe_synth_part_sdf(p, u, v) < -margin;
}

/* Dark surfaces (black-oxide, black boards) show scratches and cracks as light lines, light ones
 * (nylon, aluminium) show scratches as dark lines. */
static int dark_surface(const synth_part *p) { return p->rgb[0] + p->rgb[1] + p->rgb[2] < 3 * 90; }
static int light_surface(const synth_part *p) { return p->rgb[0] + p->rgb[1] + p->rgb[2] > 3 * 195; }

static void bounding_circle(local_defect *d) {
    if (d->category == LATHE_SYNTH_DENT || d->category == LATHE_SYNTH_MISSING_HOLE) return;
    float lo_u = d->u[0], hi_u = d->u[0], lo_v = d->v[0], hi_v = d->v[0];
    for (int i = 1; i < d->npts; i++) {
        lo_u = fminf(lo_u, d->u[i]), hi_u = fmaxf(hi_u, d->u[i]);
        lo_v = fminf(lo_v, d->v[i]), hi_v = fmaxf(hi_v, d->v[i]);
    }
    d->cu = (lo_u + hi_u) / 2, d->cv = (lo_v + hi_v) / 2;
    d->rad = hypotf(hi_u - lo_u, hi_v - lo_v) / 2 + d->hw;
}

static int clear_of(const local_defect *d, const local_defect *others, int n) {
    for (int i = 0; i < n; i++)
        if (hypotf(d->cu - others[i].cu, d->cv - others[i].cv) < d->rad + others[i].rad + 0.04f) return 0;
    return 1;
}

/* Tries to place one defect of category cat on part p (size scaled by k, but never below a few
 * pixels where px is one pixel in local units on the part's smallest view). Returns 1 when placed. */
static int place_defect(synth_rng *r, synth_part *p, int cat, float k, float px, const local_defect *others, int n,
                        local_defect *d) {
    for (int attempt = 0; attempt < 60; attempt++) {
        memset(d, 0, sizeof *d);
        d->category = cat;
        d->hole = -1;
        float cu = (float)synth_range(r, -p->bound, p->bound), cv = (float)synth_range(r, -p->bound, p->bound);
        if (!on_material(p, cu, cv, 0.05f)) continue;
        int ok = 1;
        if (cat == LATHE_SYNTH_SCRATCH) {
            float len = fmaxf(k * (float)synth_range(r, 0.2, 0.55), fminf(10 * px, 0.6f));
            float a = (float)synth_range(r, 0, 2 * PI);
            d->hw = (float)synth_range(r, 0.006, 0.013);
            d->npts = 2;
            d->u[0] = cu - len / 2 * cosf(a), d->v[0] = cv - len / 2 * sinf(a);
            d->u[1] = cu + len / 2 * cosf(a), d->v[1] = cv + len / 2 * sinf(a);
            d->strength = (float)synth_range(r, 0.55, 0.85);
            d->bright = synth_unit(r) < 0.6;
            if (dark_surface(p) || light_surface(p)) d->bright = dark_surface(p);
            for (int i = 0; i <= 8 && ok; i++) {
                float t = (float)i / 8;
                ok = on_material(p, d->u[0] + t * (d->u[1] - d->u[0]), d->v[0] + t * (d->v[1] - d->v[0]), d->hw + 0.04f);
            }
        } else if (cat == LATHE_SYNTH_DENT) {
            d->a = fmaxf(k * (float)synth_range(r, 0.06, 0.13), fminf(3.5f * px, 0.25f));
            d->b = fmaxf(d->a * (float)synth_range(r, 0.55, 1.0), fminf(3 * px, d->a));
            d->angle = (float)synth_range(r, 0, PI);
            d->strength = (float)synth_range(r, 0.5, 0.85);
            d->cu = cu, d->cv = cv, d->rad = d->a;
            for (int i = 0; i < 12 && ok; i++) {
                float t = (float)(2 * PI * i / 12), x = d->a * cosf(t), y = d->b * sinf(t);
                ok = on_material(p, cu + x * cosf(d->angle) - y * sinf(d->angle),
                                 cv + x * sinf(d->angle) + y * cosf(d->angle), 0.03f);
            }
        } else if (cat == LATHE_SYNTH_CRACK) {
            /* A crack is tortuous where a scratch is straight: short uneven segments, each turned
             * off the path's heading by 9-52 degrees, mostly to the other side than the last, while
             * the heading itself wanders (and, drawn, it tapers to its tips: synth_scene.c). */
            d->hw = (float)synth_range(r, 0.005, 0.011);
            d->npts = synth_int(r, 8, SYNTH_MAX_PTS);
            d->strength = (float)synth_range(r, 0.6, 0.85);
            d->bright = dark_surface(p);
            float dir = (float)synth_range(r, 0, 2 * PI), side = synth_unit(r) < 0.5 ? 1.0f : -1.0f;
            d->u[0] = cu, d->v[0] = cv;
            for (int i = 1; i < d->npts; i++) {
                float step = fmaxf(k * (float)synth_range(r, 0.018, 0.048), fminf(1.5f * px, 0.03f));
                float turn = side * (float)synth_range(r, 0.15, 0.9);
                dir += (float)synth_range(r, -0.35, 0.35);
                if (synth_unit(r) < 0.75) side = -side;
                d->u[i] = d->u[i - 1] + step * cosf(dir + turn);
                d->v[i] = d->v[i - 1] + step * sinf(dir + turn);
            }
            for (int i = 0; i < d->npts && ok; i++) {
                ok = on_material(p, d->u[i], d->v[i], d->hw + 0.03f);
                if (ok && i > 0)
                    ok = on_material(p, (d->u[i] + d->u[i - 1]) / 2, (d->v[i] + d->v[i - 1]) / 2, d->hw + 0.03f);
            }
        } else { /* LATHE_SYNTH_MISSING_HOLE: one drilled hole of the part is not there */
            int drilled = 0;
            for (int i = 0; i < p->nholes; i++) drilled += !(p->missing >> i & 1);
            if (drilled < 2) return 0;
            int pick = synth_int(r, 0, drilled - 1);
            for (int i = 0; i < p->nholes; i++)
                if (!(p->missing >> i & 1) && pick-- == 0) d->hole = i;
            const synth_hole *h = &p->holes[d->hole];
            d->cu = h->x, d->cv = h->y, d->rad = h->r;
            if (!clear_of(d, others, n)) continue;
            p->missing |= 1u << d->hole;
            return 1;
        }
        if (!ok) continue;
        bounding_circle(d);
        if (clear_of(d, others, n)) return 1;
    }
    return 0;
}

/* ---- one image ---- */

/* Inclusive pixel range whose centres fall inside (lo, hi), clipped to [0, n-1] and never empty. */
static void pixel_range(float lo, float hi, int n, int *a, int *b) {
    int i0 = (int)floorf(lo - 0.5f) + 1, i1 = (int)ceilf(hi - 0.5f) - 1;
    if (i0 < 0) i0 = 0;
    if (i1 > n - 1) i1 = n - 1;
    if (i1 < i0) { /* thinner than a pixel centre spacing: the pixel under its middle */
        int mid = (int)floorf((lo + hi) / 2);
        i0 = i1 = mid < 0 ? 0 : mid > n - 1 ? n - 1 : mid;
    }
    *a = i0, *b = i1;
}

static void to_image(const synth_pose *ps, float u, float v, float *x, float *y) {
    float c = cosf(ps->theta), s = sinf(ps->theta);
    *x = ps->cx + ps->R * (u * c - v * s);
    *y = ps->cy + ps->R * (u * s + v * c);
}

/* Places local defect ld on the image through the pose; sets the pixel box. */
static void view_defect(const synth_pose *ps, const local_defect *ld, int W, int H, synth_defect *d) {
    memset(d, 0, sizeof *d);
    d->category = ld->category;
    d->strength = ld->strength;
    d->bright = ld->bright;
    float lo_x, hi_x, lo_y, hi_y;
    if (ld->category == LATHE_SYNTH_DENT || ld->category == LATHE_SYNTH_MISSING_HOLE) {
        float cx, cy;
        to_image(ps, ld->cu, ld->cv, &cx, &cy);
        d->npts = 1, d->px[0] = cx, d->py[0] = cy;
        float ex, ey;
        if (ld->category == LATHE_SYNTH_DENT) {
            d->a = ld->a * ps->R, d->b = ld->b * ps->R, d->angle = ld->angle + ps->theta;
            float k = 1.0f + 0.5f / fminf(d->a, d->b), c = cosf(d->angle), s = sinf(d->angle);
            ex = k * sqrtf(d->a * d->a * c * c + d->b * d->b * s * s);
            ey = k * sqrtf(d->a * d->a * s * s + d->b * d->b * c * c);
        } else {
            ex = ey = ld->rad * ps->R + 0.5f;
        }
        lo_x = cx - ex, hi_x = cx + ex, lo_y = cy - ey, hi_y = cy + ey;
    } else {
        d->npts = ld->npts;
        d->half_width = fmaxf(0.6f, ld->hw * ps->R);
        lo_x = lo_y = 1e30f, hi_x = hi_y = -1e30f;
        for (int i = 0; i < ld->npts; i++) {
            to_image(ps, ld->u[i], ld->v[i], &d->px[i], &d->py[i]);
            lo_x = fminf(lo_x, d->px[i]), hi_x = fmaxf(hi_x, d->px[i]);
            lo_y = fminf(lo_y, d->py[i]), hi_y = fmaxf(hi_y, d->py[i]);
        }
        float e = d->half_width + 0.5f;
        lo_x -= e, hi_x += e, lo_y -= e, hi_y += e;
    }
    pixel_range(lo_x, hi_x, W, &d->x0, &d->x1);
    pixel_range(lo_y, hi_y, H, &d->y0, &d->y1);
}

/* Distance from point (x, y) to segment (ax, ay)-(bx, by). */
static float seg_dist(float x, float y, float ax, float ay, float bx, float by) {
    float dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypotf(x - ax - t * dx, y - ay - t * dy);
}

/* Distance between a segment and an inclusive pixel box (0 when they touch). */
static float seg_box_dist(const float s[4], const synth_defect *d) {
    float x0 = (float)d->x0, y0 = (float)d->y0, x1 = (float)d->x1 + 1, y1 = (float)d->y1 + 1;
    for (int i = 0; i <= 64; i++) { /* a sampled test of crossing: fine at the sizes used here */
        float t = (float)i / 64, x = s[0] + t * (s[2] - s[0]), y = s[1] + t * (s[3] - s[1]);
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1) return 0;
    }
    float best = 1e30f, cx[4] = {x0, x1, x0, x1}, cy[4] = {y0, y0, y1, y1};
    for (int i = 0; i < 4; i++) best = fminf(best, seg_dist(cx[i], cy[i], s[0], s[1], s[2], s[3]));
    for (int i = 0; i < 2; i++) {
        float x = s[2 * i], y = s[2 * i + 1];
        float dx = fmaxf(fmaxf(x0 - x, 0), x - x1), dy = fmaxf(fmaxf(y0 - y, 0), y - y1);
        best = fminf(best, hypotf(dx, dy));
    }
    return best;
}

static int circle_hits_defects(const synth_scene *sc, float cx, float cy, float rad) {
    for (int i = 0; i < sc->ndefects; i++) {
        const synth_defect *d = &sc->defects[i];
        float dx = fmaxf(fmaxf((float)d->x0 - cx, 0), cx - (float)(d->x1 + 1));
        float dy = fmaxf(fmaxf((float)d->y0 - cy, 0), cy - (float)(d->y1 + 1));
        if (hypotf(dx, dy) < rad) return 1;
    }
    return 0;
}

/* The label cdf for o's rates: the original table itself at the default rates (so every label is the
 * original one, bit for bit), else the same mix within the image defects and within the sensor
 * faults, scaled to the rates, good the rest. A class with no share can never be drawn. */
static void label_mix(const lathe_synth_opts *o, double cdf[LATHE_SYNTH_NCLASSES]) {
    if (o->defect_rate == DEFAULT_DEFECT_RATE && o->sensor_fault_rate == DEFAULT_SENSOR_RATE) {
        memcpy(cdf, label_cdf, sizeof label_cdf);
        return;
    }
    double share[LATHE_SYNTH_NCLASSES], c = 0;
    share[0] = fmax(0, 1 - o->defect_rate - o->sensor_fault_rate);
    for (int i = 1; i < LATHE_SYNTH_NCLASSES; i++) {
        int image = i <= LATHE_SYNTH_MISSING_HOLE;
        share[i] = (label_cdf[i] - label_cdf[i - 1]) / (image ? DEFAULT_DEFECT_RATE : DEFAULT_SENSOR_RATE) *
                   (image ? o->defect_rate : o->sensor_fault_rate);
    }
    int last = 0;
    for (int i = 0; i < LATHE_SYNTH_NCLASSES; i++) {
        c += share[i];
        cdf[i] = c;
        if (share[i] > 0) last = i;
    }
    for (int i = last; i < LATHE_SYNTH_NCLASSES; i++) cdf[i] = 1.0;
}

/* place_defect with the size factor of its slot; on success scales the strength by the slot's
 * contrast factor (capped at full strength). Returns 1 when placed. */
static int place_knobbed(synth_rng *r, synth_part *p, int cat, float k, float px, const float *size,
                         const float *gain, int slot, local_defect *ld, int n) {
    if (!place_defect(r, p, cat, k * size[slot], px, ld, n, &ld[n])) return 0;
    ld[n].strength = fminf(1.0f, ld[n].strength * gain[slot]);
    return 1;
}

void lathe_synth_plan(const lathe_synth_opts *o, int part_no, int view, synth_scene *sc) {
    memset(sc, 0, sizeof *sc);
    sc->part_no = part_no, sc->view = view;
    sc->width = o->width, sc->height = o->height;
    sc->seed = o->seed;
    int W = o->width, H = o->height;

    /* The physical part and its station: the same on every view. */
    synth_rng pr;
    lathe_synth_rng_init(&pr, o->seed, (uint64_t)part_no, 0, SYNTH_STREAM_PART);
    (void)synth_unit(&pr); /* number of views, see lathe_synth_views */
    double u = synth_unit(&pr), cdf[LATHE_SYNTH_NCLASSES];
    label_mix(o, cdf);
    int label = 0;
    while (u >= cdf[label]) label++;
    sc->label = label;
    int type = label == LATHE_SYNTH_MISSING_HOLE ? synth_int(&pr, SYNTH_FLANGE, SYNTH_PCB) : synth_int(&pr, 0, SYNTH_NTYPES - 1);
    synth_part *part = &sc->main.part;
    make_part(&pr, type, label == LATHE_SYNTH_MISSING_HOLE, part);
    sc->belt = synth_int(&pr, 0, NBELTS - 1);
    sc->belt_vertical = synth_unit(&pr) < 0.3;
    float rail_frac0 = synth_unit(&pr) < 0.5 ? (float)synth_range(&pr, 0.035, 0.07) : 0;
    float rail_frac1 = synth_unit(&pr) < 0.5 ? (float)synth_range(&pr, 0.035, 0.07) : 0;
    sc->stripe_period = (float)synth_range(&pr, 0.025, 0.08);
    sc->stripe_amp = (float)synth_range(&pr, 4, 14);
    int across = sc->belt_vertical ? W : H;
    sc->rail0 = (int)(rail_frac0 * (float)across + 0.5f);
    sc->rail1 = (int)(rail_frac1 * (float)across + 0.5f);
    float bx0 = 0, by0 = 0, bx1 = (float)W, by1 = (float)H; /* the belt between the rails */
    if (sc->belt_vertical) bx0 = (float)sc->rail0, bx1 = (float)(W - sc->rail1);
    else by0 = (float)sc->rail0, by1 = (float)(H - sc->rail1);
    float belt_min = fminf(bx1 - bx0, by1 - by0);
    float px = part->bound / ((float)o->part_size[0] * belt_min); /* a pixel in local units when seen smallest */

    local_defect ld[SYNTH_MAX_DEFECTS];
    int nld = 0;
    if (label >= LATHE_SYNTH_SCRATCH && label <= LATHE_SYNTH_MISSING_HOLE) {
        /* The knobs' factors per defect slot, from their own stream: at 1,1 they are exactly 1 and
         * the part stream's draws below are the original ones. */
        synth_rng kr;
        lathe_synth_rng_init(&kr, o->seed, (uint64_t)part_no, 0, SYNTH_STREAM_KNOBS);
        float size[SYNTH_MAX_DEFECTS], gain[SYNTH_MAX_DEFECTS];
        for (int i = 0; i < SYNTH_MAX_DEFECTS; i++) size[i] = (float)synth_range(&kr, o->defect_size[0], o->defect_size[1]);
        for (int i = 0; i < SYNTH_MAX_DEFECTS; i++) gain[i] = (float)synth_range(&kr, o->contrast[0], o->contrast[1]);
        /* Defects that find no room are tried smaller, down to a fifth of their size (of the default
         * size for larger ones), and never below a few pixels (place_defect). */
        float k_end = 0.2f / fmaxf(1.0f, (float)o->defect_size[1]);
        if (o->defect_count[0] == 0) { /* the original rule: 1 or 2 of the main kind, sometimes another kind */
            double c = synth_unit(&pr);
            int want = c < (label == LATHE_SYNTH_CRACK || label == LATHE_SYNTH_MISSING_HOLE ? 0.85 : 0.7) ? 1 : 2;
            for (float k = 1.0f; nld == 0 && k > k_end; k *= 0.7f)
                for (int i = 0; i < want; i++)
                    if (place_knobbed(&pr, part, label, k, px, size, gain, nld, ld, nld)) nld++;
            if (label != LATHE_SYNTH_MISSING_HOLE && synth_unit(&pr) < 0.15) { /* a second kind of defect */
                int other = synth_int(&pr, LATHE_SYNTH_SCRATCH, LATHE_SYNTH_CRACK - 1);
                if (other >= label) other++;
                if (place_knobbed(&pr, part, other, 0.8f, px, size, gain, nld, ld, nld)) nld++;
            }
        } else { /* --defects: n defects; each after the first is of another kind with chance 0.15 */
            int n = synth_int(&kr, o->defect_count[0], o->defect_count[1]), kind[SYNTH_MAX_DEFECTS];
            int spare = label == LATHE_SYNTH_MISSING_HOLE ? part->nholes - 1 : 0; /* one hole always stays */
            for (int i = 0; i < SYNTH_MAX_DEFECTS; i++) {
                int mixed = synth_unit(&kr) < 0.15;
                int other = synth_int(&kr, LATHE_SYNTH_SCRATCH, label == LATHE_SYNTH_MISSING_HOLE ? LATHE_SYNTH_CRACK
                                                                                                 : LATHE_SYNTH_CRACK - 1);
                if (label != LATHE_SYNTH_MISSING_HOLE && other >= label) other++;
                kind[i] = i == 0 || !mixed ? label : other;
                if (kind[i] == LATHE_SYNTH_MISSING_HOLE && spare-- <= 0) kind[i] = other; /* no hole left to leave out */
            }
            /* Those that do not fit are tried again smaller beside those placed: the count is met
             * where the part has room. */
            int placed[SYNTH_MAX_DEFECTS] = {0};
            for (float k = 1.0f; nld < n && k > k_end; k *= 0.7f)
                for (int i = 0; i < n; i++)
                    if (!placed[i] && place_knobbed(&pr, part, kind[i], k, px, size, gain, i, ld, nld)) placed[i] = 1, nld++;
        }
        if (nld == 0) sc->label = label = LATHE_SYNTH_GOOD; /* nowhere to put it (rare: a crowded board, a small image) */
    }
    sc->bearing = label == LATHE_SYNTH_BEARING_WEAR;
    sc->overheat = label == LATHE_SYNTH_OVERHEATING;
    sc->jam = label == LATHE_SYNTH_JAM;
    for (int i = 0; i < nld; i++) sc->crack |= ld[i].category == LATHE_SYNTH_CRACK;

    /* This photo of it. */
    synth_rng vr;
    lathe_synth_rng_init(&vr, o->seed, (uint64_t)part_no, (uint64_t)view, SYNTH_STREAM_VIEW);
    sc->is_png = synth_unit(&vr) < o->png_ratio;
    sc->stripe_phase = (float)synth_unit(&vr);
    float span = (float)synth_range(&vr, o->part_size[0], o->part_size[1]) * belt_min; /* radius of the bounding circle */
    synth_pose *m = &sc->main;
    m->R = span / part->bound;
    m->cx = (float)synth_range(&vr, bx0 + span + 2, bx1 - span - 2);
    m->cy = (float)synth_range(&vr, by0 + span + 2, by1 - span - 2);
    m->theta = (float)synth_range(&vr, 0, 2 * PI);
    sc->light0 = (float)synth_range(&vr, 0.85, 1.1);
    sc->light_x = (float)synth_range(&vr, -0.3, 0.3);
    sc->light_y = (float)synth_range(&vr, -0.3, 0.3);
    sc->vignette = (float)synth_range(&vr, 0, 0.4);
    sc->noise = (float)synth_range(&vr, o->noise[0], o->noise[1]);
    sc->soft = (float)synth_range(&vr, 0.8, 1.8);
    sc->blur = synth_unit(&vr) < o->blur;
    sc->sensor_noise = (float)o->sensor_noise, sc->sensor_drift = (float)o->sensor_drift;
    for (int i = 0; i < nld; i++) view_defect(m, &ld[i], W, H, &sc->defects[i]);
    sc->ndefects = nld;

    /* Occluders, kept off every defect box so no labelled defect is hidden. */
    if (synth_unit(&vr) < fmin(1.0, 0.3 * o->clutter)) {
        synth_pose *s2 = &sc->second;
        make_part(&vr, synth_int(&vr, 0, SYNTH_NTYPES - 1), 0, &s2->part);
        float span2 = span * (float)synth_range(&vr, 0.7, 1.1);
        s2->R = span2 / s2->part.bound;
        s2->theta = (float)synth_range(&vr, 0, 2 * PI);
        float along = (float)synth_range(&vr, -0.5, 0.1) * span2; /* centre outside or just inside an end */
        int far_end = synth_unit(&vr) < 0.5;
        if (sc->belt_vertical) {
            s2->cy = far_end ? (float)H - along : along;
            s2->cx = bx1 - bx0 > 2 * span2 ? (float)synth_range(&vr, bx0 + span2, bx1 - span2) : (bx0 + bx1) / 2;
        } else {
            s2->cx = far_end ? (float)W - along : along;
            s2->cy = by1 - by0 > 2 * span2 ? (float)synth_range(&vr, by0 + span2, by1 - span2) : (by0 + by1) / 2;
        }
        int over = synth_unit(&vr) < 0.5;
        sc->has_second = 1;
        sc->second_over = over && !circle_hits_defects(sc, s2->cx, s2->cy, span2 + 0.1f * span2 + 3);
    }
    if (synth_unit(&vr) < fmin(1.0, 0.2 * o->clutter)) {
        float hw = fmaxf(2.0f, span * (float)synth_range(&vr, 0.1, 0.16));
        sc->grip_color = synth_int(&vr, 0, 1);
        for (int attempt = 0; attempt < 10 && !sc->has_gripper; attempt++) {
            double psi = synth_range(&vr, 0, 2 * PI), phi = synth_range(&vr, 0, 2 * PI);
            float reach = span * (float)synth_range(&vr, 0.25, 0.75);
            float ex = m->cx + reach * (float)cos(psi), ey = m->cy + reach * (float)sin(psi);
            float far = 2.0f * (float)(W + H);
            float seg[4] = {ex + far * (float)cos(phi), ey + far * (float)sin(phi), ex, ey};
            int clear = 1;
            for (int i = 0; i < sc->ndefects && clear; i++) clear = seg_box_dist(seg, &sc->defects[i]) > 2.2f * hw + 3;
            if (!clear) continue;
            memcpy(sc->grip, seg, sizeof seg);
            sc->grip_hw = hw;
            sc->has_gripper = 1;
        }
    }
}

/* ---- sensors ---- */

void lathe_synth_sensors(const synth_scene *sc, int steps, float *out) {
    synth_rng r;
    lathe_synth_rng_init(&r, sc->seed, (uint64_t)sc->part_no, (uint64_t)sc->view, SYNTH_STREAM_SENSORS);
    /* Every parameter is drawn whatever the defects, so a defect changes only its own pattern. */
    double f0 = synth_range(&r, 0.07, 0.12); /* shaft rotation, cycles per step */
    double amp[3], ph[3], ph2[3], bamp[3], bph[3], gain[3];
    for (int c = 0; c < 3; c++) {
        amp[c] = synth_range(&r, 0.15, 0.35), ph[c] = synth_range(&r, 0, 2 * PI), ph2[c] = synth_range(&r, 0, 2 * PI);
        bamp[c] = synth_range(&r, 0.25, 0.45), bph[c] = synth_range(&r, 0, 2 * PI);
        gain[c] = synth_range(&r, 0.6, 1.0);
    }
    double fb = synth_range(&r, 0.36, 0.46);                           /* bearing defect frequency */
    double t0 = synth_range(&r, 0.2, 0.7) * steps, burst = synth_range(&r, 1.6, 2.6);
    double tau = synth_range(&r, 2.0, 5.0), fc = synth_range(&r, 0.22, 0.30);
    double temp0 = synth_range(&r, 36, 46), drift = synth_range(&r, -0.4, 0.4), rise = synth_range(&r, 4, 9);
    double cur0 = synth_range(&r, 3.5, 6.0), cur_rise = synth_range(&r, 0.12, 0.25);
    /* A jam: the shaft stalls for a moment, the motor current spikes and the shaft's vibration fades,
     * then both recover. Its draws have their own stream, so every other window is unchanged. */
    double tj = steps, jam_len = 1, jam_peak = 0;
    if (sc->jam) {
        synth_rng jr;
        lathe_synth_rng_init(&jr, sc->seed, (uint64_t)sc->part_no, (uint64_t)sc->view, SYNTH_STREAM_JAM);
        tj = synth_range(&jr, 0.15, 0.7) * steps;
        jam_len = fmax(2.0, synth_range(&jr, 0.04, 0.1) * steps);
        jam_peak = synth_range(&jr, 1.0, 1.8);
    }
    for (int t = 0; t < steps; t++) {
        double x = (double)t / (steps - 1), w = 2 * PI * f0 * t;
        double stall = t < tj ? 0 : t < tj + jam_len ? 1 : exp(-(t - tj - jam_len) / 1.5);
        float *row = out + (size_t)t * LATHE_SYNTH_NCHANNELS;
        for (int c = 0; c < 3; c++) {
            double v = (1 - 0.7 * stall) * (amp[c] * sin(w + ph[c]) + 0.3 * amp[c] * sin(2 * w + ph2[c])) +
                       0.03 * sc->sensor_noise * gauss(&r);
            if (sc->bearing) v += bamp[c] * sin(2 * PI * fb * t + bph[c]) * (1 + 0.3 * sin(w));
            if (sc->crack && t >= t0)
                v += burst * gain[c] * exp(-(t - t0) / tau) * cos(2 * PI * fc * (t - t0) + 0.4 * c);
            row[c] = (float)v;
        }
        double temp = temp0 + sc->sensor_drift * drift * x + 0.03 * sc->sensor_noise * gauss(&r);
        if (sc->overheat) temp += rise * pow(x, 1.2);
        double cur = cur0 * (1 + 0.015 * sin(w)) + 0.04 * sc->sensor_noise * gauss(&r) + (sc->sensor_drift - 1) * 0.1 * drift * x;
        if (sc->overheat) cur *= 1 + cur_rise * x;
        cur *= 1 + jam_peak * stall;
        row[3] = (float)temp;
        row[4] = (float)cur;
    }
}

/* ---- text: a small grammar ----
 * A description says what the scene holds (the part, its belt and pose, lighting, focus, occluders,
 * each image defect's class, count and places, what the sensors show) in one of four shapes, with
 * synonyms and attributes that are true of the scene (a defect's size and strength). Every choice
 * of wording is drawn from the scene's own SYNTH_STREAM_TEXT, never from the streams that make the
 * image, boxes and sensors, so those are the same whatever the wording. */

#define TEXT_MAX_WORDS 60 /* a longer draft is said again in fewer words */

typedef struct {
    char *buf;
    size_t cap, len;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    if (t->len + 1 >= t->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n > 0) t->len = t->len + (size_t)n < t->cap ? t->len + (size_t)n : t->cap - 1;
}

/* Uppercases the letter at buf[at], a sentence's first. */
static void cap_at(text *t, size_t at) {
    if (at < t->len) t->buf[at] = (char)toupper((unsigned char)t->buf[at]);
}

static int count_words(const char *s) {
    int n = 0;
    for (const char *c = s; *c; c++) n += *c != ' ' && (c == s || c[-1] == ' ');
    return n;
}

/* The wording choices of one description. */
typedef struct {
    synth_rng r;
    int terse;        /* always the first (shortest) wording: the fallback for crowded scenes */
    const char *prep; /* before a place: "near the", ... */
    int repeat_prep;  /* "near the A and near the B", else "near the A and the B" */
    const char *also; /* before the last of several defect classes */
} voice;

/* One of n wordings. */
static int pick(voice *v, int n) { return v->terse ? 0 : synth_int(&v->r, 0, n - 1); }
#define NOF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define ANY(v, a) ((a)[pick((v), NOF(a))])

/* "a" or "an" before word: by its first letter, or for a number as it is spoken. */
static const char *article(const char *word) {
    if (isdigit((unsigned char)word[0])) {
        int n = atoi(word);
        return n == 8 || n == 11 || n == 18 || (n >= 80 && n < 90) ? "an" : "a";
    }
    return strchr("aeiouAEIOU", word[0]) ? "an" : "a";
}

static const char *const number_names[] = {"no", "one", "two", "three", "four", "five", "six", "seven", "eight"};

/* ---- what may be said of a defect ---- */

static const char *const place_names[9] = {"right edge",  "upper right", "top edge",    "upper left", "left edge",
                                           "lower left",  "bottom edge", "lower right", "center"};

/* Where a defect sits on the part, as the camera sees it: an index into place_names. */
static int where(const synth_scene *sc, const synth_defect *d) {
    float dx = ((float)(d->x0 + d->x1 + 1) / 2 - sc->main.cx) / (sc->main.R * sc->main.part.bound);
    float dy = ((float)(d->y0 + d->y1 + 1) / 2 - sc->main.cy) / (sc->main.R * sc->main.part.bound);
    if (hypotf(dx, dy) < 0.3f) return 8;
    double a = atan2(-dy, dx) * 180 / PI;
    return (int)floor((a + 360 + 22.5) / 45) % 8;
}

/* Size cuts per class in part-local units (the part's nominal radius is 1): below [0] is small,
 * above [1] large; the 20th and 80th percentiles of the default sizes (20,000 parts, seed 0).
 * Scratch and crack are measured along their line, a dent by its longer semi-axis. */
static const float size_cut[LATHE_SYNTH_MISSING_HOLE][2] = {{0, 0}, {0.24f, 0.43f}, {0.068f, 0.108f}, {0.225f, 0.38f}};
/* Strength under which a defect is faint (reached only with --contrast under 0.9) and from which
 * it is deep (the top 14-20% of the default strengths). */
#define FAINT_BELOW 0.45f
#define DEEP_FROM 0.8f

static float defect_extent(const synth_scene *sc, const synth_defect *d) {
    float len = 0;
    if (d->category == LATHE_SYNTH_DENT) len = fmaxf(d->a, d->b);
    else
        for (int i = 1; i < d->npts; i++) len += hypotf(d->px[i] - d->px[i - 1], d->py[i] - d->py[i - 1]);
    return len / sc->main.R;
}

synth_defect_traits lathe_synth_defect_traits(const synth_scene *sc, const synth_defect *d) {
    synth_defect_traits tr = {place_names[where(sc, d)], 0, 0};
    if (d->category == LATHE_SYNTH_MISSING_HOLE) return tr; /* the hole's own size, and nothing drawn */
    float e = defect_extent(sc, d);
    const float *cut = size_cut[d->category];
    tr.size = e < cut[0] ? -1 : e > cut[1] ? 1 : 0;
    tr.severity = d->strength < FAINT_BELOW ? -1 : d->strength >= DEEP_FROM ? 1 : 0;
    return tr;
}

/* The image defects of one class, named together. */
typedef struct {
    int cat, n;
    int size, severity; /* the traits all n share, else 0 */
    int nplaces;
    const char *places[SYNTH_MAX_DEFECTS]; /* distinct, in defect order */
} group;

/* Gathers sc's defects by class, in class order; returns the number of groups (0..4). */
static int group_defects(const synth_scene *sc, group g[4]) {
    int ng = 0;
    for (int cat = LATHE_SYNTH_SCRATCH; cat <= LATHE_SYNTH_MISSING_HOLE; cat++) {
        group *x = &g[ng];
        memset(x, 0, sizeof *x);
        x->cat = cat;
        for (int i = 0; i < sc->ndefects; i++) {
            if (sc->defects[i].category != cat) continue;
            synth_defect_traits tr = lathe_synth_defect_traits(sc, &sc->defects[i]);
            x->size = x->n == 0 || x->size == tr.size ? tr.size : 0;
            x->severity = x->n == 0 || x->severity == tr.severity ? tr.severity : 0;
            x->n++;
            int dup = 0;
            for (int j = 0; j < x->nplaces; j++) dup |= x->places[j] == tr.place;
            if (!dup) x->places[x->nplaces++] = tr.place;
        }
        ng += x->n > 0;
    }
    return ng;
}

/* ---- defect phrases ---- */

/* PLAIN: takes a size or strength word; NOT_DEEP, NOT_LARGE: says otherwise of a deep, large one. */
enum { PLAIN = 1, NOT_DEEP = 2, NOT_LARGE = 4 };
typedef struct {
    const char *one, *many;
    int flags;
} noun;
/* Each keeps its class's own word but "fracture line" and "dimple", and the first is the plainest. */
static const noun nouns[LATHE_SYNTH_MISSING_HOLE][5] = {
    [LATHE_SYNTH_SCRATCH] = {{"scratch", "scratches", PLAIN},
                             {"scratch mark", "scratch marks", PLAIN},
                             {"thin scratch", "thin scratches", 0},
                             {"fine scratch", "fine scratches", NOT_DEEP},
                             {"hairline scratch", "hairline scratches", NOT_DEEP}},
    [LATHE_SYNTH_DENT] = {{"dent", "dents", PLAIN},
                          {"shallow dent", "shallow dents", NOT_DEEP},
                          {"dimple", "dimples", NOT_DEEP | NOT_LARGE},
                          {"dented spot", "dented spots", 0}},
    [LATHE_SYNTH_CRACK] = {{"crack", "cracks", PLAIN},
                           {"fracture line", "fracture lines", PLAIN},
                           {"jagged crack", "jagged cracks", 0},
                           {"hairline crack", "hairline cracks", NOT_DEEP},
                           {"fine crack", "fine cracks", NOT_DEEP}},
};
static const char *const size_words[LATHE_SYNTH_MISSING_HOLE][2] = {
    {"", ""}, {"short", "long"}, {"small", "large"}, {"short", "long"}};
static const char *const faint_words[] = {"faint", "barely visible"};
static const char *const deep_words[] = {"deep", "pronounced"};
/* A missing hole: before the hole's name, after it for one, after it for several. */
static const char *const hole_forms[][3] = {
    {"missing ", "", ""},  {"missing ", "", ""}, {"", " missing", " missing"}, {"undrilled ", "", ""},
    {"", " that was never drilled", " that were never drilled"},
};

/* The words before a group's noun: its size, its strength, both or neither (adj[0] = 0). */
static void group_adjectives(voice *v, const group *g, char *adj, size_t cap) {
    int says[4], n = 0;
    says[n++] = 0;
    if (g->size) says[n++] = 1;
    if (g->severity) says[n++] = 2;
    if (g->size && g->severity) says[n++] = 3;
    int say = says[pick(v, n)];
    const char *size = say & 1 ? size_words[g->cat][g->size > 0] : "";
    const char *sev = !(say & 2) ? "" : g->severity > 0 ? ANY(v, deep_words) : ANY(v, faint_words);
    snprintf(adj, cap, "%s%s%s", size, say == 3 ? ", " : "", sev);
}

/* A group's noun phrase without its count: "long, deep scratches", "dimple", "undrilled bolt holes"
 * (a note says holes are "missing"). */
static void group_noun(voice *v, const synth_scene *sc, const group *g, int note, char *out, size_t cap) {
    if (g->cat == LATHE_SYNTH_MISSING_HOLE) {
        const char *const *f = hole_forms[note ? 0 : pick(v, NOF(hole_forms))];
        snprintf(out, cap, "%s%s%s%s", f[0], hole_names[sc->main.part.type], g->n > 1 ? "s" : "", f[g->n > 1 ? 2 : 1]);
        return;
    }
    char adj[40];
    group_adjectives(v, g, adj, sizeof adj);
    int ok[5], nok = 0;
    for (int i = 0; i < 5 && nouns[g->cat][i].one; i++) {
        int f = nouns[g->cat][i].flags;
        int contradicts = (f & NOT_DEEP && g->severity > 0) || (f & NOT_LARGE && g->size > 0);
        if (adj[0] ? f & PLAIN : !contradicts) ok[nok++] = i;
    }
    const noun *w = &nouns[g->cat][ok[pick(v, nok)]];
    snprintf(out, cap, "%s%s%s", adj, adj[0] ? " " : "", g->n > 1 ? w->many : w->one);
}

/* One group: "two deep scratches near the upper left and the center"; in a note "2 deep scratches
 * (upper left, center)". */
static void put_group(text *t, voice *v, const synth_scene *sc, const group *g, int note) {
    char np[96];
    group_noun(v, sc, g, note, np, sizeof np);
    if (note) {
        put(t, "%d %s (", g->n, np);
        for (int j = 0; j < g->nplaces; j++) put(t, "%s%s", j ? ", " : "", g->places[j]);
        put(t, ")");
        return;
    }
    if (g->n > 1) put(t, "%s %s", number_names[g->n], np);
    else put(t, "%s %s", pick(v, 3) ? article(np) : "one", np);
    for (int j = 0; j < g->nplaces; j++) {
        const char *sep = j == 0 ? " " : j == g->nplaces - 1 ? " and " : ", ";
        put(t, "%s%s %s", sep, j == 0 || v->repeat_prep ? v->prep : "the", g->places[j]);
    }
}

static void put_defects(text *t, voice *v, const synth_scene *sc, const group *g, int ng, int note) {
    for (int i = 0; i < ng; i++) {
        /* after a list of places, a comma keeps "and" from joining the next class to it */
        if (i > 0) put(t, "%s", note || i < ng - 1 ? ", " : g[i - 1].nplaces > 1 ? ", and " : v->also);
        put_group(t, v, sc, &g[i], note);
    }
}

/* ---- the scene ---- */

/* The part with its article: "a zinc-plated hex nut", "an 18-tooth brass gear", "a brass gear with
 * 18 teeth", "a steel flange with six bolt holes" (capitalized at a sentence's start). */
static void put_part(text *t, voice *v, const synth_part *p, int sentence_start) {
    const char *mat = materials[p->material].name, *type = type_names[p->type];
    int holes = p->nholes - __builtin_popcount(p->missing);
    char np[96], num[8];
    if (p->type == SYNTH_GEAR && pick(v, 2)) {
        snprintf(np, sizeof np, "%d-tooth %s %s", p->teeth, mat, type);
    } else if (p->type == SYNTH_GEAR) {
        snprintf(np, sizeof np, "%s %s with %d teeth", mat, type, p->teeth);
    } else if (p->type == SYNTH_FLANGE) {
        if (pick(v, 2)) snprintf(num, sizeof num, "%s", number_names[holes]);
        else snprintf(num, sizeof num, "%d", holes);
        snprintf(np, sizeof np, "%s %s with %s bolt hole%s", mat, type, num, holes == 1 ? "" : "s");
    } else {
        snprintf(np, sizeof np, "%s %s", mat, type);
    }
    size_t at = t->len;
    put(t, "%s %s", article(np), np);
    if (sentence_start) cap_at(t, at);
}

static void put_belt(text *t, voice *v, const synth_scene *sc) {
    static const char *const kinds[] = {"belt", "conveyor belt", "conveyor"};
    put(t, "%s %s %s", article(belts[sc->belt].name), belts[sc->belt].name, ANY(v, kinds));
}

/* sep and how far the part is turned from square, for parts whose turn shows (not round ones). */
static void put_pose(text *t, voice *v, const synth_pose *ps, const char *sep) {
    static const char *const straight[] = {"lying straight", "square to the frame", "aligned with the frame"};
    static const char *const slight[] = {"slightly rotated", "turned slightly", "a little askew"};
    static const char *const turned[] = {"rotated about", "turned about", "at an angle of about"};
    int type = ps->part.type;
    if (type != SYNTH_NUT && type != SYNTH_BRACKET && type != SYNTH_PCB) return;
    double period = type == SYNTH_NUT ? PI / 3 : PI;
    double off = fmod(ps->theta, period);
    off = fmin(off, period - off) * 180 / PI;
    if (off < 3) put(t, "%s%s", sep, ANY(v, straight));
    else if (off < 20) put(t, "%s%s", sep, ANY(v, slight));
    else put(t, "%s%s %d degrees", sep, ANY(v, turned), (int)(off / 5 + 0.5) * 5);
}

/* The scene's conditions (lighting, focus, gripper, second part), each after sep, in a drawn order. */
static void put_conditions(text *t, voice *v, const synth_scene *sc, const char *sep) {
    static const char *const uneven[] = {"unevenly lit", "under uneven lighting", "with uneven lighting"};
    static const char *const blurred[] = {"slightly blurred", "slightly out of focus", "a little blurry"};
    static const char *const gripper[] = {"partly under a gripper arm", "partly covered by a gripper arm",
                                          "with a gripper arm reaching over it"};
    static const char *const over[][2] = {{"partly under another ", ""}, {"partly covered by another ", ""},
                                          {"with another ", " lying over it"}};
    static const char *const beside[][2] = {{"beside another ", " at the frame's edge"},
                                            {"next to part of another ", " at the edge of the frame"},
                                            {"with part of another ", " at the edge of the frame"}};
    char c[4][96];
    int n = 0;
    if (sc->light_x * sc->light_x + sc->light_y * sc->light_y > 0.1f) snprintf(c[n++], sizeof c[0], "%s", ANY(v, uneven));
    if (sc->blur && sc->soft > 1.4f) snprintf(c[n++], sizeof c[0], "%s", ANY(v, blurred));
    if (sc->has_gripper) snprintf(c[n++], sizeof c[0], "%s", ANY(v, gripper));
    if (sc->has_second) {
        const char *other = type_names[sc->second.part.type];
        float gap = hypotf(sc->second.cx - sc->main.cx, sc->second.cy - sc->main.cy);
        int touch = gap < sc->second.R * sc->second.part.bound + sc->main.R * sc->main.part.bound;
        const char *const *w = touch && sc->second_over ? over[pick(v, NOF(over))] : beside[pick(v, NOF(beside))];
        snprintf(c[n++], sizeof c[0], "%s%s%s", w[0], other, w[1]);
    }
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        char tmp[96];
        int j = pick(v, i + 1);
        memcpy(tmp, c[i], sizeof tmp), memcpy(c[i], c[j], sizeof tmp), memcpy(c[j], tmp, sizeof tmp);
    }
    for (int i = 0; i < n; i++) put(t, "%s%s", sep, c[i]);
}

/* What the sensors show: a sentence each, or in a note "; sensors: ...". */
static void put_sensors(text *t, voice *v, const synth_scene *sc, int note) {
    static const char *const burst[] = {"Vibration jumps in a sharp burst.", "The vibration sensors record a sharp burst.",
                                        "A sharp burst shows in the vibration signal."};
    static const char *const wear[] = {"High-frequency vibration points to bearing wear.",
                                       "The vibration sensors show a high-frequency component typical of bearing wear.",
                                       "The vibration carries a high-frequency component, a sign of bearing wear."};
    static const char *const heat[] = {"Rising temperature and motor current point to overheating.",
                                       "Temperature and motor current rise steadily, a sign of overheating.",
                                       "The temperature climbs with the motor current: overheating."};
    static const char *const jam[] = {"The motor current spikes while the vibration fades: a jam.",
                                      "A sudden spike in motor current points to a jam.",
                                      "The drive stalls for a moment, its current spiking: a jam."};
    if (note) {
        if (sc->crack) put(t, "; sensors: vibration burst");
        if (sc->bearing) put(t, "; sensors: high-frequency vibration (bearing wear)");
        if (sc->overheat) put(t, "; sensors: temperature and current rising (overheating)");
        if (sc->jam) put(t, "; sensors: current spike (jam)");
        return;
    }
    if (sc->crack) put(t, " %s", ANY(v, burst));
    if (sc->bearing) put(t, " %s", ANY(v, wear));
    if (sc->overheat) put(t, " %s", ANY(v, heat));
    if (sc->jam) put(t, " %s", ANY(v, jam));
}

/* One of n wordings of "no defects", of which the first `visible` speak only of what the photo
 * shows: all that may be said when the sensors show a fault. */
static int pick_good(voice *v, const synth_scene *sc, int n, int visible) {
    return pick(v, sc->bearing || sc->overheat || sc->jam ? visible : n);
}

/* ---- the four shapes ---- */

typedef void shape_fn(text *t, voice *v, const synth_scene *sc, const group *g, int ng);

/* "A zinc-plated hex nut on a dark grey belt, rotated about 30 degrees, with two dents near ..." */
static void shape_part_first(text *t, voice *v, const synth_scene *sc, const group *g, int ng) {
    static const char *const good[] = {", with no visible defects", ", free of visible defects",
                                       ", in good condition with no defects seen", ": a clean part with no defects"};
    static const char *const with[] = {", with ", ", showing ", "; it has "};
    put_part(t, v, &sc->main.part, 1);
    put(t, " on ");
    put_belt(t, v, sc);
    put_pose(t, v, &sc->main, ", ");
    put_conditions(t, v, sc, ", ");
    if (ng) {
        put(t, "%s", ANY(v, with));
        put_defects(t, v, sc, g, ng, 0);
    } else {
        put(t, "%s", good[pick_good(v, sc, NOF(good), 2)]);
    }
    put(t, ".");
    put_sensors(t, v, sc, 0);
}

/* "A zinc-plated hex nut lies on a dark grey belt, rotated about 30 degrees. It has two dents ..." */
static void shape_two_sentences(text *t, voice *v, const synth_scene *sc, const group *g, int ng) {
    static const char *const verbs[] = {" lies on ", " sits on ", " rests on "};
    static const char *const good[] = {"It has no visible defects.", "No defects are visible.",
                                       "It is in good condition, with no defects seen."};
    static const char *const finds[] = {"It has ", "It shows ", "The inspection finds ", "There "};
    size_t at = t->len;
    int open = pick(v, 3);
    if (open == 0) {
        put_part(t, v, &sc->main.part, 1);
        put(t, "%s", ANY(v, verbs));
        put_belt(t, v, sc);
    } else if (open == 1) {
        put(t, "Photo of ");
        put_part(t, v, &sc->main.part, 0);
        put(t, " on ");
        put_belt(t, v, sc);
    } else {
        put_belt(t, v, sc);
        cap_at(t, at);
        put(t, " carries ");
        put_part(t, v, &sc->main.part, 0);
    }
    put_pose(t, v, &sc->main, ", ");
    put_conditions(t, v, sc, ", ");
    put(t, ". ");
    if (ng) {
        int k = pick(v, NOF(finds));
        put(t, "%s%s", finds[k], k == NOF(finds) - 1 ? g[0].n > 1 ? "are " : "is " : "");
        put_defects(t, v, sc, g, ng, 0);
        put(t, ".");
    } else {
        put(t, "%s", good[pick_good(v, sc, NOF(good), 2)]);
    }
    put_sensors(t, v, sc, 0);
}

/* "Two dents near the upper left and the right edge on a zinc-plated hex nut lying on a grey belt." */
static void shape_defects_first(text *t, voice *v, const synth_scene *sc, const group *g, int ng) {
    static const char *const good[] = {"No visible defects on ", "No defects seen on "};
    static const char *const on[] = {" on ", " seen on ", " found on "};
    static const char *const lying[] = {" on ", " lying on ", ", resting on "};
    size_t at = t->len;
    if (ng) {
        put_defects(t, v, sc, g, ng, 0);
        cap_at(t, at);
        put(t, "%s", ANY(v, on));
    } else {
        put(t, "%s", ANY(v, good));
    }
    put_part(t, v, &sc->main.part, 0);
    put(t, "%s", ANY(v, lying));
    put_belt(t, v, sc);
    put_pose(t, v, &sc->main, ", ");
    put_conditions(t, v, sc, ", ");
    put(t, ".");
    put_sensors(t, v, sc, 0);
}

/* "Inspection: hex nut, zinc-plated; dark grey belt; rotated about 30 degrees; defects: 2 dents
 * (upper left, right edge)." The most compact shape, so also the fallback. */
static void shape_note(text *t, voice *v, const synth_scene *sc, const group *g, int ng) {
    static const char *const head[] = {"Inspection: ", "Inspection note: ", "QC report: "};
    static const char *const none[] = {"defects: none", "defects: none visible", "no defects found"};
    const synth_part *p = &sc->main.part;
    int holes = p->nholes - __builtin_popcount(p->missing);
    put(t, "%s%s, %s", ANY(v, head), type_names[p->type], materials[p->material].name);
    if (p->type == SYNTH_GEAR) put(t, ", %d teeth", p->teeth);
    if (p->type == SYNTH_FLANGE) put(t, ", %d bolt hole%s", holes, holes == 1 ? "" : "s");
    put(t, "; %s belt", belts[sc->belt].name);
    put_pose(t, v, &sc->main, "; ");
    put_conditions(t, v, sc, "; ");
    if (ng) {
        put(t, "; defects: ");
        put_defects(t, v, sc, g, ng, 1);
    } else {
        put(t, "; %s", ANY(v, none));
    }
    put_sensors(t, v, sc, 1);
    put(t, ".");
}

void lathe_synth_describe(const synth_scene *sc, char *buf, size_t cap) {
    static shape_fn *const shapes[] = {shape_part_first, shape_two_sentences, shape_defects_first, shape_note};
    static const char *const preps[] = {"near the", "close to the", "toward the"};
    static const char *const alsos[] = {" and ", ", plus ", " as well as "};
    group g[4];
    int ng = group_defects(sc, g);
    voice v = {.terse = 0};
    lathe_synth_rng_init(&v.r, sc->seed, (uint64_t)sc->part_no, (uint64_t)sc->view, SYNTH_STREAM_TEXT);
    v.prep = ANY(&v, preps);
    v.repeat_prep = pick(&v, 2);
    v.also = ANY(&v, alsos);
    text t = {buf, cap, 0};
    if (cap) buf[0] = 0;
    shape_fn *shape = ANY(&v, shapes);
    shape(&t, &v, sc, g, ng);
    /* A crowded scene: every fact again in the same shape's shortest words, else as a note. */
    for (int retry = 0; retry < 2 && cap && count_words(buf) > TEXT_MAX_WORDS; retry++) {
        v = (voice){.r = v.r, .terse = 1, .prep = preps[0], .repeat_prep = 0, .also = alsos[0]};
        t.len = 0;
        if (cap) buf[0] = 0;
        (retry ? shape_note : shape)(&t, &v, sc, g, ng);
    }
}

/* ---- one sample in memory ---- */

void lathe_synth_sample_free(lathe_synth_sample *s) {
    if (!s) return;
    lathe_image_free(&s->image);
    free(s->sensors);
    s->sensors = NULL;
}

int lathe_synth_sample_make(const lathe_synth_opts *o, size_t index, lathe_synth_sample *s) {
    memset(s, 0, sizeof *s);
    int rc = lathe_synth_check(o);
    if (rc) return rc;
    synth_scene sc;
    int part_no, view;
    lathe_synth_locate(o->seed, index, &part_no, &view);
    lathe_synth_plan(o, part_no, view, &sc);
    void *scratch = malloc(lathe_synth_scratch_bytes(o->width, o->height));
    s->sensors = malloc(sizeof(float) * (size_t)o->sensor_steps * LATHE_SYNTH_NCHANNELS);
    if (!scratch || !s->sensors || (rc = lathe_image_alloc(&s->image, o->width, o->height, 3))) {
        free(scratch);
        free(s->sensors);
        memset(s, 0, sizeof *s);
        return rc ? rc : lathe_fail(LATHE_ENOMEM, "synthetic sample of %dx%d", o->width, o->height);
    }
    lathe_synth_render(&sc, &s->image, scratch);
    free(scratch);
    lathe_synth_sensors(&sc, o->sensor_steps, s->sensors);
    s->steps = o->sensor_steps;
    snprintf(s->stem, sizeof s->stem, "part%05d_v%d", part_no, view);
    s->part = part_no, s->view = view;
    s->label = sc.label;
    s->is_png = sc.is_png;
    s->nboxes = sc.ndefects;
    for (int i = 0; i < sc.ndefects; i++) {
        const synth_defect *d = &sc.defects[i];
        s->boxes[i].category = d->category;
        s->boxes[i].x = d->x0, s->boxes[i].y = d->y0;
        s->boxes[i].w = d->x1 - d->x0 + 1, s->boxes[i].h = d->y1 - d->y0 + 1;
    }
    lathe_synth_describe(&sc, s->text, sizeof s->text);
    return 0;
}
