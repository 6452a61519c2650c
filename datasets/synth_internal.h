/* synth_internal.h - what the three files of the synthetic generator share (not installed):
 * synth.c plans scenes (pose, defects, occluders, text) and simulates sensors, synth_scene.c draws
 * the pixels of a planned scene, synth_write.c writes archives.
 * Coordinates: image pixels with pixel (x, y) covering [x, x+1) x [y, y+1); part-local units where
 * the part's nominal radius is 1 (a view maps local (u, v) to image cx + R (u cos t - v sin t), ...). */
#ifndef LATHE_DATASETS_SYNTH_INTERNAL_H
#define LATHE_DATASETS_SYNTH_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include "datasets/synth.h"

/* xoshiro256** seeded through splitmix64: small, fast, and the same on every platform. */
typedef struct {
    uint64_t s[4];
} synth_rng;

static inline uint64_t synth_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static inline uint64_t synth_next(synth_rng *r) {
    uint64_t *s = r->s, out = synth_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = synth_rotl(s[3], 45);
    return out;
}
/* Uniform in [0, 1). */
static inline double synth_unit(synth_rng *r) { return (double)(synth_next(r) >> 11) * 0x1.0p-53; }
static inline double synth_range(synth_rng *r, double lo, double hi) { return lo + (hi - lo) * synth_unit(r); }
/* Uniform integer in [lo, hi]. */
static inline int synth_int(synth_rng *r, int lo, int hi) {
    return lo + (int)((synth_next(r) >> 32) * (uint64_t)(hi - lo + 1) >> 32);
}

/* Independent streams: one per (seed, part, view, purpose). KNOBS (per part) feeds only the
 * realism knobs' own draws and TEXT only the description's wording, so the other streams, and the
 * default output's pixels, boxes and sensors, stay as they were. */
enum {
    SYNTH_STREAM_PART = 1,
    SYNTH_STREAM_VIEW,
    SYNTH_STREAM_PIXELS,
    SYNTH_STREAM_SENSORS,
    SYNTH_STREAM_KNOBS,
    SYNTH_STREAM_TEXT,
    SYNTH_STREAM_SENSOR_GAPS, /* --sensor-dropout's draws only */
    SYNTH_STREAM_JAM,         /* a jam's time, length and height only */
};
void lathe_synth_rng_init(synth_rng *r, uint64_t seed, uint64_t part, uint64_t view, uint64_t stream);

enum { SYNTH_NUT = 0, SYNTH_FLANGE, SYNTH_BRACKET, SYNTH_GEAR, SYNTH_PCB, SYNTH_NTYPES };
enum { SYNTH_MAX_HOLES = 8, SYNTH_MAX_CHIPS = 3, SYNTH_MAX_TRACES = 6, SYNTH_MAX_PTS = 14 };

typedef struct {
    float x, y, r;
} synth_hole;

/* A physical part in local units; the same for every view of it. */
typedef struct {
    int type;          /* SYNTH_* */
    int material;      /* index into the material table (synth.c) */
    float rgb[3];      /* base colour */
    float hw, hh;      /* half extents of bracket and board plates */
    float bound;       /* radius of a circle that holds the part */
    float bore;        /* central hole radius (nut, flange, gear), 0 = none; always drilled */
    int nholes;
    synth_hole holes[SYNTH_MAX_HOLES];
    unsigned missing;  /* bit i: holes[i] was never drilled */
    int teeth;         /* gear */
    float tooth_phase;
    int nchips, ntraces;
    float chips[SYNTH_MAX_CHIPS][4];  /* board: cx, cy, half w, half h */
    float traces[SYNTH_MAX_TRACES][4];/* board: x0, y0, x1, y1 of an axis-aligned copper strip */
} synth_part;

/* A part placed in one image. */
typedef struct {
    synth_part part;
    float cx, cy, R, theta; /* centre (pixels), nominal radius (pixels), rotation (radians) */
} synth_pose;

/* A defect drawn in one image, in pixels. */
typedef struct {
    int category;           /* LATHE_SYNTH_SCRATCH..MISSING_HOLE */
    int x0, y0, x1, y1;     /* inclusive pixel box; drawing never leaves it */
    int npts;               /* scratch 2, crack 8..SYNTH_MAX_PTS: the polyline */
    float px[SYNTH_MAX_PTS], py[SYNTH_MAX_PTS];
    float half_width;       /* line half width (pixels); a crack's at its middle, tapering to its tips */
    float a, b, angle;      /* dent: semi-axes (pixels) and orientation */
    float strength;         /* 0..1 */
    int bright;             /* scratch, crack: lighter (1) or darker (0) than the surface */
} synth_defect;

enum { SYNTH_MAX_DEFECTS = LATHE_SYNTH_MAX_BOXES };
#define SYNTH_SENSOR_HZ 200.0 /* sensor sampling rate: row t is at t / 200 s */

/* Everything needed to draw one sample, its sensors and its text. */
typedef struct {
    int part_no, view;      /* from 1 */
    int label;
    int is_png;
    int width, height;
    synth_pose main;
    int belt;               /* belt colour index */
    int belt_vertical;      /* belt runs top to bottom (stripes across y) */
    int rail0, rail1;       /* rail thickness in pixels at the two belt sides (0 = none) */
    float stripe_period, stripe_phase, stripe_amp;
    float light0, light_x, light_y, vignette; /* gain = light0 + light_x xn + light_y yn - vignette r2 */
    float noise;            /* sensor noise sigma, grey levels */
    float soft;             /* edge softness (defocus), pixels */
    int blur;               /* 3x3 binomial blur after drawing */
    int has_second, second_over; /* a partial second part; drawn over the main one (else under) */
    synth_pose second;
    int has_gripper;
    float grip[4], grip_hw; /* gripper bar: segment (x0, y0, x1, y1) and half width, pixels */
    int grip_color;
    int ndefects;
    synth_defect defects[SYNTH_MAX_DEFECTS];
    int crack, bearing, overheat, jam; /* what the sensors show */
    float sensor_noise, sensor_drift; /* the knobs' factors (1 at their defaults) */
    uint64_t seed;
} synth_scene;

/* Plans sample (part_no, view) of the archive seeded `seed` (deterministic, cannot fail). */
void lathe_synth_plan(const lathe_synth_opts *o, int part_no, int view, synth_scene *sc);
/* Views of part part_no (1..3). Sample indices run over parts in order, views 1..n each. */
int lathe_synth_views(uint64_t seed, int part_no);
/* The part and view of sample `index`, found by walking parts from the first. */
void lathe_synth_locate(uint64_t seed, size_t index, int *part_no, int *view);
/* Writes the description of sc into buf (one line, no newline, cut short to fit cap): its wording
 * is drawn from the scene's own SYNTH_STREAM_TEXT, what it says is true of the scene. */
void lathe_synth_describe(const synth_scene *sc, char *buf, size_t cap);

/* What a description may say of one defect of sc: where it sits on the part as the camera sees it
 * ("upper left", "center", ...), its size against its class's usual sizes (-1 small, 0, 1 large;
 * always 0 for a missing hole) and its strength (-1 faint, 0, 1 deep; 0 for a missing hole). */
typedef struct {
    const char *place;
    int size, severity;
} synth_defect_traits;
synth_defect_traits lathe_synth_defect_traits(const synth_scene *sc, const synth_defect *d);
/* Fills out (T, S) with the sensor window of sc. */
void lathe_synth_sensors(const synth_scene *sc, int steps, float *out);
/* Signed distance (local units, negative inside the material) from (u, v) to the part's outline,
 * holes included (undrilled holes are material). */
float lathe_synth_part_sdf(const synth_part *p, float u, float v);

/* Bytes of scratch memory lathe_synth_render needs for a width x height image. */
size_t lathe_synth_scratch_bytes(int width, int height);
/* Draws sc into img, which must be (sc->height, sc->width, 3); scratch holds
 * lathe_synth_scratch_bytes() bytes (malloc-aligned). Cannot fail. */
void lathe_synth_render(const synth_scene *sc, lathe_image *img, void *scratch);

#endif
