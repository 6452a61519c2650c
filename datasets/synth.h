/* synth.h - `lathe synth`: deterministic synthetic factory archives (product inspection).
 * Each sample is one photo of a part on a conveyor belt (JPEG or PNG), its defect boxes (COCO,
 * optionally YOLO and Pascal VOC), a sensor window (vibration x/y/z, temperature, motor current)
 * and a one-line English description. Output depends only on the options (never on --threads),
 * and sample i is the same whatever the count (a smaller archive is a prefix of a larger one).
 * Shape letters: H height, W width, T sensor steps, S sensor channels (5). */
#ifndef LATHE_DATASETS_SYNTH_H
#define LATHE_DATASETS_SYNTH_H
#include <stddef.h>
#include <stdint.h>

#include "libcore/io/image.h"
#ifdef __cplusplus
extern "C" {
#endif

/* COCO category ids, fixed. Boxes use only the image defects 1..4; 5..7 show in the sensors
 * only and appear as an image's "label" without boxes. */
enum {
    LATHE_SYNTH_GOOD = 0,
    LATHE_SYNTH_SCRATCH = 1,      /* image only: thin bright or dark line */
    LATHE_SYNTH_DENT = 2,         /* image only: shaded ellipse */
    LATHE_SYNTH_CRACK = 3,        /* image (jagged dark polyline) and sensors (vibration burst) */
    LATHE_SYNTH_MISSING_HOLE = 4, /* image only: a bolt/mounting hole never drilled (its pad or spot mark stays) */
    LATHE_SYNTH_BEARING_WEAR = 5, /* sensors only: high-frequency vibration component */
    LATHE_SYNTH_OVERHEATING = 6,  /* sensors only: temperature ramp with rising motor current */
    LATHE_SYNTH_JAM = 7,          /* sensors only: a motor current spike while the shaft stalls */
    LATHE_SYNTH_NCLASSES = 8,
};

enum { LATHE_SYNTH_NCHANNELS = 5 }; /* vib_x, vib_y, vib_z, temperature, current */
enum { LATHE_SYNTH_MAX_BOXES = 8 };
enum { LATHE_SYNTH_TEXT_MAX = 1024 }; /* bytes that hold any description with its NUL */

typedef struct {
    uint64_t seed;
    int count;        /* samples (images) to write, >= 1 */
    int width, height;/* image size in pixels, 32..16384 each */
    int sensor_steps; /* T, 2..1000000 */
    int jpeg_quality; /* 1..100 */
    int threads;      /* worker threads, 0 = OpenMP's default; never changes the output */
    double png_ratio; /* fraction of images written as PNG, 0..1 */
    int yolo, voc;    /* also write YOLO labels + data.yaml / Pascal VOC XML */
    int force;        /* write into a non-empty folder / replace an existing archive file */
    /* Realism knobs. At their defaults the output is the original generator's, byte for byte. A
     * range is [0] MIN .. [1] MAX, MIN <= MAX, drawn uniformly per defect (per image for noise). */
    double defect_size[2];   /* factor on image-defect size (scratch length, dent axes, crack steps;
                                missing holes keep the hole's size), 0.1..3; default 1,1 */
    double contrast[2];      /* factor on defect strength (capped at full strength), 0.05..2; 1,1 */
    int defect_count[2];     /* image defects on a defective part, 1..LATHE_SYNTH_MAX_BOXES;
                                0,0 = the original rule (1 or 2 of the main kind, sometimes another) */
    double defect_rate;      /* share of parts with an image defect, 0..1; default 0.46 */
    double sensor_fault_rate;/* share with a sensor-only fault, 0..1; default 0.14; the two rates sum
                                to at most 1 and good parts are the rest */
    double part_size[2];     /* the main part's bounding-circle radius as a share of the belt's
                                smaller side, drawn per image, 0.05..0.45; default 0.16,0.36
                                (0.4,0.45: a station camera framing the part) */
    double clutter;          /* factor on the chances of a second part (0.3) and a gripper bar (0.2),
                                each capped at 1, 0..3; default 1 */
    double noise[2];         /* camera noise sigma in grey levels, 0..25; default 1.5,5 */
    double blur;             /* chance of the 3x3 blur, 0..1; default 0.5 */
    double sensor_noise;     /* factor on the sensors' noise, 0..20; default 1 */
    double sensor_drift;     /* factor on the slow drift of the temperature and the current over a
                                window, 0..20; default 1 */
    double sensor_dropout;   /* chance per channel per window that it recorded nothing (an empty
                                CSV column, NaN once ingested), 0..1; default 0 */
} lathe_synth_opts;

/* count 200, 640x480, seed 0, T 64, JPEG quality 90, PNG ratio 0.2, all threads, no YOLO/VOC, and
 * the realism knobs at the values that give the original archives. */
void lathe_synth_defaults(lathe_synth_opts *o);
/* Checks every field; returns 0 or -LATHE_EINVAL with a message naming the field. */
int lathe_synth_check(const lathe_synth_opts *o);

/* Name of a category id ("good", "scratch", ...; NULL outside 0..7) and of a sensor channel. */
const char *lathe_synth_class_name(int id);
const char *lathe_synth_channel_name(int channel);

/* Writes count samples to out_path: a folder (created with its parents), or a tar streamed through
 * libarchive when out_path ends in .tar, .tar.gz, .tgz or .tar.zst (written to "<out>.partial" and
 * renamed when complete). Layout:
 *   annotations.json (COCO; first entry of a tar), data.yaml (--yolo), then per sample in index
 *   order images/partNNNNN_vK.{jpg,png}, sensors/<stem>.csv, text/<stem>.txt,
 *   labels/<stem>.txt (--yolo), Annotations/<stem>.xml (--voc).
 * Fails with -LATHE_EINVAL (bad options), -LATHE_EEXIST (non-empty folder or existing file without
 * force), -LATHE_EIO (a write failed; a tar's partial file is removed, a folder keeps what was
 * written) or -LATHE_ENOMEM, with a message. Reports progress through lathe_progress_*. */
int lathe_synth_write(const lathe_synth_opts *o, const char *out_path);

/* One sample in memory, exactly as lathe_synth_write writes sample `index` (0-based). */
typedef struct {
    char stem[32];    /* "part00001_v1": part number and view, both from 1 */
    int part, view;
    int label;        /* main defect's category id, 0 = good */
    int is_png;       /* written as PNG (else JPEG) */
    lathe_image image;/* (H, W, 3) RGB */
    int nboxes;
    struct {
        int category;    /* 1..4 */
        int x, y, w, h;  /* pixels: columns x..x+w-1, rows y..y+h-1, inside the image */
    } boxes[LATHE_SYNTH_MAX_BOXES];
    float *sensors;   /* (T, S) in lathe_synth_channel_name order */
    int steps;        /* T */
    char text[LATHE_SYNTH_TEXT_MAX]; /* the description, one line */
} lathe_synth_sample;

/* Generates sample `index` of the archive that options o describe. Returns 0 or a negative code
 * (-LATHE_EINVAL, -LATHE_ENOMEM); on failure s holds nothing to free. */
int lathe_synth_sample_make(const lathe_synth_opts *o, size_t index, lathe_synth_sample *s);
void lathe_synth_sample_free(lathe_synth_sample *s);

#ifdef __cplusplus
}
#endif
#endif
