/* test_synth_knobs.c - the realism knobs of lathe synth (defect size, contrast, count, rates,
 * clutter, part size, sensor noise and drift, camera noise and blur): each changes what it says,
 * sample i stays the same whatever the count and threads, and at their defaults the output is the
 * original one. */
#include "libcore/base/log.h"
#include "synth_test.h"

/* Mean area of the boxes of scratches, dents and cracks (missing holes keep their size). */
static double mean_box_area(const lathe_synth_opts *o, size_t n) {
    double area = 0;
    int boxes = 0;
    for (size_t i = 0; i < n; i++) {
        synth_scene sc = plan_of(o, i);
        for (int k = 0; k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            if (d->category == LATHE_SYNTH_MISSING_HOLE) continue;
            area += (double)(d->x1 - d->x0 + 1) * (d->y1 - d->y0 + 1);
            boxes++;
        }
    }
    assert_true(boxes > 10);
    return area / boxes;
}

static uint64_t samples_digest(const lathe_synth_opts *o, int n, int pixels) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        lathe_synth_sample s;
        assert_int_equal(lathe_synth_sample_make(o, (size_t)i, &s), 0);
        int meta[5] = {s.part, s.view, s.label, s.is_png, s.nboxes};
        h = fnv(h, meta, sizeof meta);
        for (int k = 0; k < s.nboxes; k++) {
            int b[5] = {s.boxes[k].category, s.boxes[k].x, s.boxes[k].y, s.boxes[k].w, s.boxes[k].h};
            h = fnv(h, b, sizeof b);
        }
        if (pixels) {
            h = fnv(h, s.image.pixels, (size_t)o->width * o->height * 3);
            h = fnv(h, s.sensors, sizeof(float) * (size_t)s.steps * LATHE_SYNTH_NCHANNELS);
        }
        lathe_synth_sample_free(&s);
    }
    return h;
}

/* Defaults and their check; every bad value is refused with a message that names the option. */
static void test_knob_options(void **state) {
    (void)state;
    lathe_synth_opts o;
    lathe_synth_defaults(&o);
    assert_true(o.defect_size[0] == 1 && o.defect_size[1] == 1 && o.contrast[0] == 1 && o.contrast[1] == 1);
    assert_true(o.defect_count[0] == 0 && o.defect_count[1] == 0);
    assert_true(o.defect_rate == 0.46 && o.sensor_fault_rate == 0.14 && o.clutter == 1 && o.blur == 0.5);
    assert_true(o.noise[0] == 1.5 && o.noise[1] == 5.0 && o.part_size[0] == 0.16 && o.part_size[1] == 0.36);
    struct {
        lathe_synth_opts o;
        const char *names;
    } bad[27];
    for (int i = 0; i < 27; i++) bad[i].o = o;
    bad[0].o.defect_size[0] = 0.05, bad[0].names = "defect size";
    bad[1].o.defect_size[0] = 0.8, bad[1].o.defect_size[1] = 0.5, bad[1].names = "defect size";
    bad[2].o.defect_size[1] = 3.5, bad[2].names = "defect size";
    bad[3].o.contrast[0] = 0, bad[3].names = "contrast";
    bad[4].o.contrast[1] = NAN, bad[4].names = "contrast";
    bad[5].o.defect_count[1] = 3, bad[5].names = "defects"; /* MIN 0 */
    bad[6].o.defect_count[0] = 3, bad[6].o.defect_count[1] = 2, bad[6].names = "defects";
    bad[7].o.defect_count[0] = 1, bad[7].o.defect_count[1] = LATHE_SYNTH_MAX_BOXES + 1, bad[7].names = "defects";
    bad[8].o.defect_rate = -0.1, bad[8].names = "defect rate";
    bad[9].o.defect_rate = NAN, bad[9].names = "defect rate";
    bad[10].o.sensor_fault_rate = 1.2, bad[10].names = "sensor fault rate";
    bad[11].o.defect_rate = 0.9, bad[11].names = "sensor fault rate"; /* 0.9 + 0.14 > 1 */
    bad[12].o.clutter = -0.5, bad[12].names = "clutter";
    bad[13].o.clutter = 3.5, bad[13].names = "clutter";
    bad[14].o.noise[0] = -1, bad[14].names = "noise";
    bad[15].o.noise[0] = 6, bad[15].names = "noise"; /* MIN above MAX 5 */
    bad[16].o.noise[1] = 30, bad[16].names = "noise";
    bad[17].o.blur = 1.01, bad[17].names = "blur";
    bad[18].o.blur = -0.01, bad[18].names = "blur";
    bad[19].o.sensor_noise = -1, bad[19].names = "sensor noise";
    bad[20].o.sensor_noise = 21, bad[20].names = "sensor noise";
    bad[21].o.sensor_drift = NAN, bad[21].names = "sensor drift";
    bad[22].o.sensor_dropout = 1.5, bad[22].names = "sensor dropout";
    bad[23].o.sensor_dropout = -0.1, bad[23].names = "sensor dropout";
    bad[24].o.part_size[0] = 0.04, bad[24].names = "part size";
    bad[25].o.part_size[1] = 0.5, bad[25].names = "part size";
    bad[26].o.part_size[0] = 0.3, bad[26].o.part_size[1] = 0.2, bad[26].names = "part size";
    for (int i = 0; i < 27; i++) {
        assert_int_equal(lathe_synth_check(&bad[i].o), -LATHE_EINVAL);
        if (!strstr(lathe_last_error(), bad[i].names))
            fail_msg("bad value %d: the message '%s' does not name %s", i, lathe_last_error(), bad[i].names);
        lathe_synth_sample s;
        assert_int_equal(lathe_synth_sample_make(&bad[i].o, 0, &s), -LATHE_EINVAL);
    }
    /* The edges are fine. */
    lathe_synth_opts good = o;
    good.defect_size[0] = 0.1, good.defect_size[1] = 3, good.contrast[0] = 0.05, good.contrast[1] = 2;
    good.defect_count[0] = 1, good.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    good.defect_rate = 0.86, good.clutter = 3, good.noise[0] = 0, good.noise[1] = 25, good.blur = 1;
    assert_int_equal(lathe_synth_check(&good), 0);
    good.part_size[0] = 0.05, good.part_size[1] = 0.45;
    assert_int_equal(lathe_synth_check(&good), 0);
    good.defect_rate = 1, good.sensor_fault_rate = 0, good.clutter = 0, good.blur = 0;
    assert_int_equal(lathe_synth_check(&good), 0);
}

/* At their defaults the knobs give the original generator's samples: digests of the output of the
 * generator before the knobs existed (pixels and sensors included; the pixel digest pins this
 * platform's libm too: if only it fails elsewhere, compare the archives with an older build). The
 * digests leave the descriptions out; they were taken from the generator before the description
 * grammar, whose own stream must not move any of this. The pixel digests were taken again when an
 * undrilled hole began to leave its pad or spot mark (the labels' digests did not move), and all
 * four when cracks became tortuous and tapered (a crack's shape takes more draws from its part's
 * stream, so the later draws of a part with a crack, and its boxes, moved too), and the pixel
 * digests again when a board's traces got pads at their ends. The second pair moved when the jam
 * joined the sensor-only faults (a share of the bearing-wear and overheating parts became
 * overheating and jam parts: their labels and sensor windows changed, no pixel or box did). */
static void test_knob_defaults_known_answer(void **state) {
    (void)state;
    lathe_synth_opts o;
    lathe_synth_defaults(&o);
    o.count = 40, o.seed = 3, o.width = 160, o.height = 120, o.sensor_steps = 48, o.png_ratio = 0.3;
    assert_true(samples_digest(&o, 40, 0) == 0x057cd19f06ac5059ull);
    assert_true(samples_digest(&o, 40, 1) == 0xfed590990c2f2ca5ull);
    o.width = 640, o.height = 480, o.seed = 21;
    assert_true(samples_digest(&o, 12, 0) == 0xc352437a908d7d0cull);
    assert_true(samples_digest(&o, 12, 1) == 0xed7d9abda1b7f2f0ull);
}

/* --defect-size scales scratches, dents and cracks, but never below a few pixels nor outside the
 * image; it changes no label. */
static void test_knob_defect_size(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 5);
    one.width = 640, one.height = 480;
    lathe_synth_opts half = one, big = one;
    half.defect_size[0] = half.defect_size[1] = 0.5;
    big.defect_size[0] = 1.5, big.defect_size[1] = 2;
    double a1 = mean_box_area(&one, 100), ah = mean_box_area(&half, 100), ab = mean_box_area(&big, 100);
    if (!(ah < 0.6 * a1 && ab > 1.5 * a1)) fail_msg("mean box areas: size 0.5 %.0f, 1 %.0f, 1.5..2 %.0f", ah, a1, ab);
    for (size_t i = 0; i < 100; i++) assert_int_equal(plan_of(&half, i).label, plan_of(&one, i).label);
    /* Tiny sizes on tiny images: the pixel floor holds, boxes stay in the image. */
    lathe_synth_opts tiny = small_opts(1, 6);
    tiny.width = 48, tiny.height = 36;
    tiny.defect_size[0] = tiny.defect_size[1] = 0.1;
    tiny.defect_count[0] = 1, tiny.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    int seen = 0;
    for (size_t i = 0; i < 200; i++) {
        synth_scene sc = plan_of(&tiny, i);
        for (int k = 0; k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            int w = d->x1 - d->x0 + 1, h = d->y1 - d->y0 + 1;
            assert_true(d->x0 >= 0 && d->y0 >= 0 && d->x1 < tiny.width && d->y1 < tiny.height);
            if (d->category != LATHE_SYNTH_MISSING_HOLE && (w > h ? w : h) < 3)
                fail_msg("sample %zu: a %dx%d %s", i, w, h, lathe_synth_class_name(d->category));
            seen++;
        }
    }
    assert_true(seen > 50);
}

/* A scratch is one straight segment; a crack a tortuous path of 8 or more, whose length well
 * exceeds the distance between its ends and which turns at most of its joints. */
static void test_crack_shape(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 17);
    o.width = 640, o.height = 480;
    int cracks = 0, scratches = 0;
    for (size_t i = 0; i < 200; i++) {
        synth_scene sc = plan_of(&o, i);
        for (int k = 0; k < sc.ndefects; k++) {
            const synth_defect *d = &sc.defects[k];
            if (d->category == LATHE_SYNTH_SCRATCH) assert_int_equal(d->npts, 2), scratches++;
            if (d->category != LATHE_SYNTH_CRACK) continue;
            assert_true(d->npts >= 8 && d->npts <= SYNTH_MAX_PTS);
            float path = 0, chord = hypotf(d->px[d->npts - 1] - d->px[0], d->py[d->npts - 1] - d->py[0]);
            int turns = 0;
            for (int j = 1; j < d->npts; j++) {
                float ax = d->px[j] - d->px[j - 1], ay = d->py[j] - d->py[j - 1];
                path += hypotf(ax, ay);
                if (j > 1) {
                    float bx = d->px[j - 1] - d->px[j - 2], by = d->py[j - 1] - d->py[j - 2];
                    float cosang = (ax * bx + ay * by) / (hypotf(ax, ay) * hypotf(bx, by));
                    turns += cosang < cosf(0.2f); /* more than ~11 degrees */
                }
            }
            if (!(path > 1.1f * chord) || turns < (d->npts - 2) / 2)
                fail_msg("sample %zu: a crack of %d points, path %.1f, chord %.1f, %d turns", i, d->npts, path, chord, turns);
            cracks++;
        }
    }
    assert_true(cracks > 10 && scratches > 10);
}

/* --contrast scales each defect's strength, capped at full strength, and nothing else. */
static void test_knob_contrast(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 9), low = one, high = one;
    low.contrast[0] = low.contrast[1] = 0.3;
    high.contrast[0] = high.contrast[1] = 2;
    int seen = 0, capped = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene a = plan_of(&one, i), b = plan_of(&low, i), c = plan_of(&high, i);
        assert_int_equal(a.ndefects, b.ndefects);
        assert_int_equal(a.ndefects, c.ndefects);
        for (int k = 0; k < a.ndefects; k++) {
            const synth_defect *d = &a.defects[k];
            assert_int_equal(d->x0, b.defects[k].x0);
            assert_int_equal(d->y1, c.defects[k].y1);
            assert_true(b.defects[k].strength == d->strength * 0.3f);
            assert_true(c.defects[k].strength == fminf(1.0f, d->strength * 2));
            seen += d->category != LATHE_SYNTH_MISSING_HOLE;
            capped += c.defects[k].strength == 1.0f;
        }
    }
    assert_true(seen > 20 && capped > 0);
}

/* --defects MIN,MAX: the count is drawn in MIN..MAX (3,3: three boxes wherever they fit, which is
 * nearly everywhere at 640x480), kinds are still mixed, and every box holds its defect. */
static void test_knob_defects(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 12);
    o.width = 640, o.height = 480;
    o.defect_count[0] = o.defect_count[1] = 3;
    int defective = 0, three = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        assert_true(sc.ndefects <= 3);
        if (!image_defect(sc.label)) {
            assert_int_equal(sc.ndefects, 0);
            continue;
        }
        defective++, three += sc.ndefects == 3;
    }
    if (three < defective * 95 / 100) fail_msg("3 boxes on %d of %d defective images", three, defective);

    o.defect_count[0] = 1, o.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    int hist[LATHE_SYNTH_MAX_BOXES + 1] = {0}, mixed = 0;
    for (size_t i = 0; i < 200; i++) {
        synth_scene sc = plan_of(&o, i);
        if (!image_defect(sc.label)) continue;
        hist[sc.ndefects]++;
        int kinds = 0;
        for (int c = LATHE_SYNTH_SCRATCH; c <= LATHE_SYNTH_MISSING_HOLE; c++) {
            int has = 0;
            for (int k = 0; k < sc.ndefects; k++) has |= sc.defects[k].category == c;
            kinds += has;
        }
        mixed += kinds > 1;
    }
    assert_int_equal(hist[0], 0);
    assert_true(hist[1] > 0 && hist[LATHE_SYNTH_MAX_BOXES] > 0 && mixed > 0);

    /* Many small defects on small, cluttered, blurred images: every box still holds its defect. */
    lathe_synth_opts busy = small_opts(1, 8);
    busy.width = 200, busy.height = 150;
    busy.defect_count[0] = 4, busy.defect_count[1] = LATHE_SYNTH_MAX_BOXES;
    busy.defect_size[0] = 0.3, busy.defect_size[1] = 0.8;
    busy.clutter = 3, busy.blur = 1, busy.noise[0] = 0, busy.noise[1] = 8;
    check_boxes_hold_defects(&busy, 60);
}

/* --defect-rate and --sensor-fault-rate set the label shares, the mix within each kept. */
static void test_knob_rates(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 13);
    o.width = 640, o.height = 480;
    o.defect_rate = 1, o.sensor_fault_rate = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        if (!image_defect(sc.label) || sc.ndefects == 0) fail_msg("sample %zu: label %d with %d boxes", i, sc.label, sc.ndefects);
    }
    o.defect_rate = 0;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        assert_int_equal(sc.label, LATHE_SYNTH_GOOD);
        assert_int_equal(sc.ndefects, 0);
    }
    o.sensor_fault_rate = 1;
    for (size_t i = 0; i < 100; i++) {
        synth_scene sc = plan_of(&o, i);
        assert_true(sc.label >= LATHE_SYNTH_BEARING_WEAR && sc.label <= LATHE_SYNTH_JAM);
        assert_int_equal(sc.ndefects, 0);
    }
    /* 0.23 image defects (half the default), 0.5 sensor faults: shares over 4000 parts. */
    o.defect_rate = 0.23, o.sensor_fault_rate = 0.5;
    int n[LATHE_SYNTH_NCLASSES] = {0};
    for (int part = 1; part <= 4000; part++) {
        synth_scene sc;
        lathe_synth_plan(&o, part, 1, &sc);
        n[sc.label]++;
    }
    const double want[LATHE_SYNTH_NCLASSES] = {0.27, 0.07, 0.06, 0.05, 0.05, 0.179, 0.179, 0.143};
    for (int c = 0; c < LATHE_SYNTH_NCLASSES; c++)
        if (fabs(n[c] / 4000.0 - want[c]) > 0.025)
            fail_msg("%s: share %.3f, want %.3f", lathe_synth_class_name(c), n[c] / 4000.0, want[c]);
}

/* --clutter scales the chances of the second part and the gripper bar; boxes and labels stay. */
static void test_knob_clutter(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 14), none = one, lots = one;
    none.clutter = 0, lots.clutter = 3;
    int second[3] = {0}, grip[3] = {0};
    for (size_t i = 0; i < 200; i++) {
        synth_scene a = plan_of(&one, i), b = plan_of(&none, i), c = plan_of(&lots, i);
        assert_int_equal(a.label, b.label);
        assert_int_equal(a.ndefects, c.ndefects);
        for (int k = 0; k < a.ndefects; k++) assert_memory_equal(&a.defects[k], &c.defects[k], sizeof a.defects[k]);
        second[0] += a.has_second, second[1] += b.has_second, second[2] += c.has_second;
        grip[0] += a.has_gripper, grip[1] += b.has_gripper, grip[2] += c.has_gripper;
    }
    assert_int_equal(second[1], 0);
    assert_int_equal(grip[1], 0);
    /* chances 0.3 / 0.9 for the second part, 0.2 / 0.6 for the gripper (which may find no room) */
    assert_true(second[0] > 40 && second[0] < 80 && second[2] > 165);
    assert_true(grip[0] > 20 && grip[0] < 60 && grip[2] > 90);
}

/* --part-size sets the main part's radius against the belt's smaller side; the part stays on the
 * belt, labels stay, and every box still holds its defect, down to the smallest images. */
static void test_knob_part_size(void **state) {
    (void)state;
    lathe_synth_opts one = small_opts(1, 15), framed = one;
    framed.part_size[0] = 0.4, framed.part_size[1] = 0.45;
    for (size_t i = 0; i < 200; i++) {
        synth_scene a = plan_of(&one, i), b = plan_of(&framed, i);
        /* the same draw of the label; only a defect that found no room on one of the two is lost */
        if (a.label != b.label) assert_true(a.label == LATHE_SYNTH_GOOD || b.label == LATHE_SYNTH_GOOD);
        float bw = (float)b.width - (b.belt_vertical ? (float)(b.rail0 + b.rail1) : 0);
        float bh = (float)b.height - (b.belt_vertical ? 0 : (float)(b.rail0 + b.rail1));
        float radius = b.main.R * b.main.part.bound, share = radius / fminf(bw, bh);
        if (share < 0.4f - 1e-4f || share > 0.45f + 1e-4f) fail_msg("sample %zu: part radius %.3f of the belt", i, share);
        assert_true(b.main.cx - radius > -1 && b.main.cx + radius < (float)b.width + 1);
        assert_true(b.main.cy - radius > -1 && b.main.cy + radius < (float)b.height + 1);
    }
    for (int size = 0; size < 2; size++) {
        lathe_synth_opts o = framed;
        o.width = size ? 256 : 32, o.height = size ? 192 : 32;
        o.defect_rate = 1, o.sensor_fault_rate = 0;
        check_boxes_hold_defects(&o, 150);
    }
}

/* --sensor-noise and --sensor-drift scale the windows' noise and drift (0: a smooth, level good
 * window), --sensor-dropout empties whole channels of the CSV and changes nothing else. */
static void test_knob_sensors(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 16), calm = o;
    calm.sensor_noise = 0, calm.sensor_drift = 0;
    float a[64 * LATHE_SYNTH_NCHANNELS], b[64 * LATHE_SYNTH_NCHANNELS];
    int checked = 0;
    for (size_t i = 0; i < 40; i++) {
        synth_scene s1 = plan_of(&o, i), s2 = plan_of(&calm, i);
        lathe_synth_sensors(&s1, 64, a), lathe_synth_sensors(&s2, 64, b);
        if (s1.label != LATHE_SYNTH_GOOD) continue;
        checked++;
        double rough = 0, level = fabs(b[63 * LATHE_SYNTH_NCHANNELS + 3] - b[3]), diff = 0;
        for (int t = 1; t < 63; t++) { /* the temperature's second difference: noise, or nothing */
            const float *p = b + (size_t)t * LATHE_SYNTH_NCHANNELS + 3;
            rough += fabs(p[LATHE_SYNTH_NCHANNELS] - 2 * p[0] + p[-LATHE_SYNTH_NCHANNELS]);
        }
        for (int k = 0; k < 64 * LATHE_SYNTH_NCHANNELS; k++) diff += fabs(a[k] - b[k]);
        assert_true(rough < 1e-3 && level < 1e-4 && diff > 0.1);
    }
    assert_true(checked > 5);
    lathe_synth_opts plain = small_opts(30, 17), gaps = plain;
    plain.width = gaps.width = 64, plain.height = gaps.height = 48, plain.voc = plain.yolo = gaps.voc = gaps.yolo = 0;
    gaps.sensor_dropout = 0.5;
    char *d1 = write_folder("synth-plain", &plain), *d2 = write_folder("synth-gaps", &gaps);
    int empty = 0, cells = 0;
    for (size_t i = 0; i < 30; i++) {
        synth_scene sc = plan_of(&plain, i);
        char rel[64];
        snprintf(rel, sizeof rel, "sensors/part%05d_v%d.csv", sc.part_no, sc.view);
        size_t n1 = 0, n2 = 0;
        uint8_t *t1 = read_in(d1, rel, &n1), *t2 = read_in(d2, rel, &n2);
        assert_non_null(t1), assert_non_null(t2);
        /* cell by cell: equal, or empty in the second; a channel is empty in every row or in none */
        char *p1 = (char *)t1, *p2 = (char *)t2, *e1 = p1 + n1, *e2 = p2 + n2;
        int col = 0, dead[8] = {0}, row = 0;
        while (p1 < e1 && p2 < e2) {
            char *q1 = p1, *q2 = p2;
            while (q1 < e1 && *q1 != ',' && *q1 != '\n') q1++;
            while (q2 < e2 && *q2 != ',' && *q2 != '\n') q2++;
            if (q2 == p2) {
                assert_true(row > 0 && col > 0);
                if (row == 1) dead[col] = 1, empty++;
                assert_true(dead[col]);
            } else {
                assert_true(q1 - p1 == q2 - p2 && !memcmp(p1, p2, (size_t)(q1 - p1)) && !dead[col]);
            }
            if (row == 1 && col > 0) cells++;
            int end = *q1 == '\n';
            col = end ? 0 : col + 1, row += end;
            p1 = q1 + 1, p2 = q2 + 1;
        }
        free(t1), free(t2);
    }
    assert_true(cells == 30 * LATHE_SYNTH_NCHANNELS && empty > 0.3 * cells && empty < 0.7 * cells);
    test_rmtree(d1), test_rmtree(d2);
    free(d1), free(d2);
}

/* --noise sets the camera noise sigma (0 = none, 20 still without wrap-around in the fixed-point
 * sum), --blur the chance of the blur. */
static void test_knob_noise_blur(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(1, 15), quiet = o, loud = o, sharp = o, soft = o;
    quiet.noise[0] = quiet.noise[1] = 0;
    loud.noise[0] = loud.noise[1] = 20;
    sharp.blur = 0, soft.blur = 1;
    int blurred[3] = {0};
    for (size_t i = 0; i < 100; i++) {
        synth_scene a = plan_of(&o, i), b = plan_of(&sharp, i), c = plan_of(&soft, i), d = plan_of(&loud, i);
        assert_true(a.noise >= 1.5f && a.noise <= 5.0f && d.noise == 20.0f);
        assert_int_equal(a.ndefects, d.ndefects);
        blurred[0] += a.blur, blurred[1] += b.blur, blurred[2] += c.blur;
    }
    assert_true(blurred[0] > 30 && blurred[0] < 70 && blurred[1] == 0 && blurred[2] == 100);

    /* The same scene without noise and with sigma 20: the difference is the noise. */
    for (size_t i = 0; i < 4; i++) {
        lathe_synth_sample a, b;
        assert_int_equal(lathe_synth_sample_make(&quiet, i, &a), 0);
        assert_int_equal(lathe_synth_sample_make(&loud, i, &b), 0);
        double sum = 0, sum2 = 0;
        int big = 0, n = 0;
        for (size_t k = 0; k < (size_t)o.width * o.height * 3; k++) {
            int x = a.image.pixels[k], y = b.image.pixels[k];
            big += abs(y - x) > 70; /* beyond the noise's reach: the sum wrapped around */
            if (x < 70 || x > 185) continue; /* the spread away from clipping */
            double dv = y - x;
            sum += dv, sum2 += dv * dv, n++;
        }
        assert_true(n > 1000);
        double mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
        if (fabs(mean) > 1.5 || sd < 17 || sd > 23 || big) fail_msg("noise 20: mean %.2f sd %.2f, %d beyond 70", mean, sd, big);
        lathe_synth_sample_free(&a);
        lathe_synth_sample_free(&b);
    }
}

/* With the knobs set, sample i is still the same whatever the count and the threads, and
 * annotations.json records the knobs (only those that differ from the defaults). */
static void test_knob_prefix(void **state) {
    (void)state;
    lathe_synth_opts o = small_opts(5, 16);
    o.threads = 1;
    o.defect_size[0] = 0.4, o.defect_size[1] = 0.7, o.contrast[0] = 0.5, o.contrast[1] = 0.9;
    o.defect_count[0] = 2, o.defect_count[1] = 5, o.defect_rate = 0.6, o.clutter = 2, o.noise[1] = 9, o.blur = 0.9;
    char *a = write_folder("synth-k5", &o);
    o.count = 12, o.threads = 3;
    char *b = write_folder("synth-k12", &o);
    cJSON *ca = load_coco(a), *cb = load_coco(b);
    check_same_first_images(a, ca, b, cb, 5);
    cJSON *gen = cJSON_GetObjectItem(cJSON_GetObjectItem(ca, "info"), "lathe_synth");
    cJSON *size = cJSON_GetObjectItem(gen, "defect_size");
    assert_true(cJSON_GetArraySize(size) == 2 && cJSON_GetArrayItem(size, 0)->valuedouble == 0.4);
    assert_true(cJSON_GetArrayItem(cJSON_GetObjectItem(gen, "defects"), 1)->valueint == 5);
    assert_true(cJSON_GetObjectItem(gen, "clutter")->valuedouble == 2);
    assert_null(cJSON_GetObjectItem(gen, "sensor_fault_rate")); /* at its default */
    cJSON_Delete(ca);
    cJSON_Delete(cb);
    test_rmtree(a), test_rmtree(b);
    free(a), free(b);
}

int main(void) {
    lathe_log_set_level(LATHE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_knob_options),
        cmocka_unit_test(test_knob_defaults_known_answer),
        cmocka_unit_test(test_knob_defect_size),
        cmocka_unit_test(test_knob_contrast),
        cmocka_unit_test(test_crack_shape),
        cmocka_unit_test(test_knob_defects),
        cmocka_unit_test(test_knob_rates),
        cmocka_unit_test(test_knob_clutter),
        cmocka_unit_test(test_knob_part_size),
        cmocka_unit_test(test_knob_noise_blur),
        cmocka_unit_test(test_knob_sensors),
        cmocka_unit_test(test_knob_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
