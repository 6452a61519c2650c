/* synth.c - `lathe synth OUT`: writes a deterministic synthetic factory archive (datasets/synth.h).
 * Parses and checks the options, then calls lathe_synth_write. Exit 0 ok, 1 failure, 2 usage. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "datasets/synth.h"
#include "libcore/base/error.h"

static void usage(FILE *out) {
    lathe_synth_opts d;
    lathe_synth_defaults(&d);
    fprintf(out,
            "usage: lathe synth OUT [options]\n"
            "\n"
            "Writes a deterministic synthetic product-inspection archive: photos of parts (hex nuts,\n"
            "flanges, bracket plates, gears, circuit boards) on conveyor belts with defect boxes, a sensor\n"
            "window per photo and a one-line description. OUT is a folder, or a tar when it ends in .tar,\n"
            ".tar.gz (.tgz) or .tar.zst. The same options give byte-identical output, whatever --threads.\n"
            "\n"
            "Layout: annotations.json (COCO; categories 0 good, 1 scratch, 2 dent, 3 crack, 4 missing_hole,\n"
            "5 bearing_wear, 6 overheating, 7 jam; each image has a \"label\" and a \"description\"),\n"
            "images/partNNNNN_vK.{jpg,png} (part N seen in views K = 1..3), sensors/<stem>.csv\n"
            "(t,vib_x,vib_y,vib_z,temperature,current; T rows at 200 Hz), text/<stem>.txt, and with\n"
            "--yolo labels/<stem>.txt + data.yaml, with --voc Annotations/<stem>.xml.\n"
            "\n"
            "options:\n"
            "  --count N          samples (images) to write (default %d)\n"
            "  --width W          image width in pixels, 32..16384 (default %d)\n"
            "  --height H         image height in pixels, 32..16384 (default %d)\n"
            "  --seed S           random seed, 0..%lld (default %llu)\n"
            "  --png-ratio R      fraction of images written as PNG, 0..1 (default %.1f)\n"
            "  --sensor-steps T   rows of each sensor window, 2..1000000 (default %d)\n"
            "  --jpeg-quality Q   JPEG quality, 1..100 (default %d)\n"
            "  --yolo             also write YOLO labels (class = COCO category id) and data.yaml\n"
            "  --voc              also write Pascal VOC XML\n"
            "  --threads N        worker threads, 0 = all cores (default 0); never changes the output\n"
            "  --force            write into a non-empty folder (files of an earlier run that this run\n"
            "                     does not rewrite are left as they are), or replace an existing archive\n"
            "  --log-format F     text or json (default text)\n"
            "  -h, --help         show this help\n"
            "\n"
            "realism (at their defaults the output is exactly that without the option; within a range\n"
            "MIN,MAX a value is drawn uniformly per defect, per image for --noise; N alone means N,N;\n"
            "annotations.json records the options that differ from their defaults):\n"
            "  --defect-size MIN,MAX  factor on the size of image defects (scratch length, dent axes,\n"
            "                         crack steps; never below a few pixels), 0.1..3; missing holes keep\n"
            "                         the hole's size (default %g,%g)\n"
            "  --contrast MIN,MAX     factor on the strength of image defects, 0.05..2, capped at full\n"
            "                         strength (default %g,%g)\n"
            "  --defects MIN,MAX      image defects on a defective part, 1..%d, each after the first of\n"
            "                         another kind with chance 0.15; fewer where the part has no room\n"
            "                         (default: 1 or 2 of the main kind, sometimes one of another kind)\n"
            "  --defect-rate F        share of parts with an image defect (scratch, dent, crack, missing\n"
            "                         hole in the ratio 14:12:10:10), 0..1 (default %g)\n"
            "  --sensor-fault-rate F  share of parts with a fault only the sensors show (bearing wear,\n"
            "                         overheating, jam, 5:5:4), 0..1 (default %g); good parts are the\n"
            "                         rest, so the two rates sum to at most 1\n"
            "  --part-size MIN,MAX    the main part's radius as a share of the belt's smaller side, per\n"
            "                         image, 0.05..0.45; 0.4,0.45 is a station camera framing the part\n"
            "                         (default %g,%g)\n"
            "  --clutter P            factor on the chances of a second part at the frame edge (0.3) and\n"
            "                         of a gripper bar (0.2), each capped at 1, 0..3; 0 = none (default %g)\n"
            "  --noise MIN,MAX        camera noise sigma in grey levels, 0..25 (default %g,%g)\n"
            "  --blur P               chance of a slight blur (3x3) per image, 0..1 (default %g)\n"
            "  --sensor-noise F       factor on the sensors' noise (vibration, temperature, current),\n"
            "                         0..20 (default %g)\n"
            "  --sensor-drift F       factor on the slow drift of temperature and current across a\n"
            "                         window, 0..20 (default %g)\n"
            "  --sensor-dropout P     chance per channel per window that it recorded nothing (an empty\n"
            "                         column in the CSV: NaN once ingested), 0..1 (default %g)\n",
            d.count, d.width, d.height, LLONG_MAX, (unsigned long long)d.seed, d.png_ratio, d.sensor_steps,
            d.jpeg_quality, d.defect_size[0], d.defect_size[1], d.contrast[0], d.contrast[1], LATHE_SYNTH_MAX_BOXES,
            d.defect_rate, d.sensor_fault_rate, d.part_size[0], d.part_size[1], d.clutter, d.noise[0], d.noise[1], d.blur, d.sensor_noise, d.sensor_drift,
            d.sensor_dropout);
}

/* Splits "MIN,MAX" (or one value for both) into a and b; returns -1 when a part is too long. */
static int split_range(const char *s, char a[64], char b[64]) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    const char *second = comma ? comma + 1 : s;
    if (n >= 64 || strlen(second) >= 64) return -1;
    memcpy(a, s, n);
    a[n] = 0;
    strcpy(b, second);
    return 0;
}

/* "MIN,MAX" or one number for both, each in lo..hi, MIN <= MAX. Returns 0 or -1. */
static int parse_range(const char *s, double lo, double hi, double out[2]) {
    char a[64], b[64];
    if (split_range(s, a, b) || cli_parse_double(a, lo, hi, &out[0]) || cli_parse_double(b, lo, hi, &out[1])) return -1;
    return out[0] <= out[1] ? 0 : -1;
}

/* The same for integers. */
static int parse_int_range(const char *s, int lo, int hi, int out[2]) {
    char a[64], b[64];
    long long x, y;
    if (split_range(s, a, b) || cli_parse_int(a, lo, hi, &x) || cli_parse_int(b, lo, hi, &y) || x > y) return -1;
    out[0] = (int)x, out[1] = (int)y;
    return 0;
}

enum { OPT_COUNT = 256, OPT_WIDTH, OPT_HEIGHT, OPT_SEED, OPT_PNG_RATIO, OPT_STEPS, OPT_QUALITY, OPT_YOLO, OPT_VOC,
       OPT_THREADS, OPT_FORCE, OPT_LOG_FORMAT, OPT_DEFECT_SIZE, OPT_CONTRAST, OPT_DEFECTS, OPT_DEFECT_RATE,
       OPT_SENSOR_RATE, OPT_CLUTTER, OPT_NOISE, OPT_BLUR, OPT_SENSOR_NOISE, OPT_SENSOR_DRIFT, OPT_SENSOR_DROPOUT, OPT_PART_SIZE };

int cmd_synth(int argc, char **argv) {
    static const struct option longopts[] = {
        {"count", required_argument, NULL, OPT_COUNT},
        {"width", required_argument, NULL, OPT_WIDTH},
        {"height", required_argument, NULL, OPT_HEIGHT},
        {"seed", required_argument, NULL, OPT_SEED},
        {"png-ratio", required_argument, NULL, OPT_PNG_RATIO},
        {"sensor-steps", required_argument, NULL, OPT_STEPS},
        {"jpeg-quality", required_argument, NULL, OPT_QUALITY},
        {"yolo", no_argument, NULL, OPT_YOLO},
        {"voc", no_argument, NULL, OPT_VOC},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"force", no_argument, NULL, OPT_FORCE},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"defect-size", required_argument, NULL, OPT_DEFECT_SIZE},
        {"contrast", required_argument, NULL, OPT_CONTRAST},
        {"defects", required_argument, NULL, OPT_DEFECTS},
        {"defect-rate", required_argument, NULL, OPT_DEFECT_RATE},
        {"sensor-fault-rate", required_argument, NULL, OPT_SENSOR_RATE},
        {"part-size", required_argument, NULL, OPT_PART_SIZE},
        {"clutter", required_argument, NULL, OPT_CLUTTER},
        {"noise", required_argument, NULL, OPT_NOISE},
        {"blur", required_argument, NULL, OPT_BLUR},
        {"sensor-noise", required_argument, NULL, OPT_SENSOR_NOISE},
        {"sensor-drift", required_argument, NULL, OPT_SENSOR_DRIFT},
        {"sensor-dropout", required_argument, NULL, OPT_SENSOR_DROPOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lathe_synth_opts o;
    lathe_synth_defaults(&o);
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        long long v;
        double r;
        const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        switch (c) {
        case OPT_COUNT:
            if (cli_parse_int(optarg, 1, INT_MAX, &v)) return cli_usage_error("synth", "--count must be an integer >= 1, not '%s'", optarg);
            o.count = (int)v;
            break;
        case OPT_WIDTH:
        case OPT_HEIGHT:
            if (cli_parse_int(optarg, 32, 16384, &v))
                return cli_usage_error("synth", "--%s must be an integer in 32..16384, not '%s'",
                                       c == OPT_WIDTH ? "width" : "height", optarg);
            *(c == OPT_WIDTH ? &o.width : &o.height) = (int)v;
            break;
        case OPT_SEED:
            if (cli_parse_int(optarg, 0, LLONG_MAX, &v))
                return cli_usage_error("synth", "--seed must be an integer in 0..%lld, not '%s'", LLONG_MAX, optarg);
            o.seed = (uint64_t)v;
            break;
        case OPT_PNG_RATIO:
            if (cli_parse_double(optarg, 0, 1, &r)) return cli_usage_error("synth", "--png-ratio must be a number in 0..1, not '%s'", optarg);
            o.png_ratio = r;
            break;
        case OPT_STEPS:
            if (cli_parse_int(optarg, 2, 1000000, &v))
                return cli_usage_error("synth", "--sensor-steps must be an integer in 2..1000000, not '%s'", optarg);
            o.sensor_steps = (int)v;
            break;
        case OPT_QUALITY:
            if (cli_parse_int(optarg, 1, 100, &v)) return cli_usage_error("synth", "--jpeg-quality must be an integer in 1..100, not '%s'", optarg);
            o.jpeg_quality = (int)v;
            break;
        case OPT_YOLO: o.yolo = 1; break;
        case OPT_VOC: o.voc = 1; break;
        case OPT_THREADS:
            if (cli_parse_int(optarg, 0, 1024, &v)) return cli_usage_error("synth", "--threads must be an integer in 0..1024, not '%s'", optarg);
            o.threads = (int)v;
            break;
        case OPT_FORCE: o.force = 1; break;
        case OPT_LOG_FORMAT:
            if (cli_set_log_format(optarg)) return cli_usage_error("synth", "--log-format must be text or json, not '%s'", optarg);
            break;
        case OPT_DEFECT_SIZE:
            if (parse_range(optarg, 0.1, 3, o.defect_size))
                return cli_usage_error("synth", "--defect-size must be MIN,MAX with 0.1 <= MIN <= MAX <= 3, not '%s'", optarg);
            break;
        case OPT_CONTRAST:
            if (parse_range(optarg, 0.05, 2, o.contrast))
                return cli_usage_error("synth", "--contrast must be MIN,MAX with 0.05 <= MIN <= MAX <= 2, not '%s'", optarg);
            break;
        case OPT_DEFECTS:
            if (parse_int_range(optarg, 1, LATHE_SYNTH_MAX_BOXES, o.defect_count))
                return cli_usage_error("synth", "--defects must be MIN,MAX, integers with 1 <= MIN <= MAX <= %d, not '%s'",
                                       LATHE_SYNTH_MAX_BOXES, optarg);
            break;
        case OPT_DEFECT_RATE:
        case OPT_SENSOR_RATE:
            if (cli_parse_double(optarg, 0, 1, &r))
                return cli_usage_error("synth", "--%s must be a number in 0..1, not '%s'",
                                       c == OPT_DEFECT_RATE ? "defect-rate" : "sensor-fault-rate", optarg);
            *(c == OPT_DEFECT_RATE ? &o.defect_rate : &o.sensor_fault_rate) = r;
            break;
        case OPT_PART_SIZE:
            if (parse_range(optarg, 0.05, 0.45, o.part_size))
                return cli_usage_error("synth", "--part-size must be MIN,MAX with 0.05 <= MIN <= MAX <= 0.45, not '%s'", optarg);
            break;
        case OPT_CLUTTER:
            if (cli_parse_double(optarg, 0, 3, &r)) return cli_usage_error("synth", "--clutter must be a number in 0..3, not '%s'", optarg);
            o.clutter = r;
            break;
        case OPT_NOISE:
            if (parse_range(optarg, 0, 25, o.noise))
                return cli_usage_error("synth", "--noise must be MIN,MAX with 0 <= MIN <= MAX <= 25, not '%s'", optarg);
            break;
        case OPT_BLUR:
            if (cli_parse_double(optarg, 0, 1, &r)) return cli_usage_error("synth", "--blur must be a number in 0..1, not '%s'", optarg);
            o.blur = r;
            break;
        case OPT_SENSOR_NOISE:
        case OPT_SENSOR_DRIFT:
            if (cli_parse_double(optarg, 0, 20, &r))
                return cli_usage_error("synth", "--%s must be a number in 0..20, not '%s'",
                                       c == OPT_SENSOR_NOISE ? "sensor-noise" : "sensor-drift", optarg);
            *(c == OPT_SENSOR_NOISE ? &o.sensor_noise : &o.sensor_drift) = r;
            break;
        case OPT_SENSOR_DROPOUT:
            if (cli_parse_double(optarg, 0, 1, &r))
                return cli_usage_error("synth", "--sensor-dropout must be a number in 0..1, not '%s'", optarg);
            o.sensor_dropout = r;
            break;
        case 'h': usage(stdout); return EXIT_OK;
        case ':': return cli_usage_error("synth", "option %s needs a value", name);
        default: return cli_usage_error("synth", "unknown option %s", name);
        }
    }
    if (optind >= argc) return cli_usage_error("synth", "missing the output path OUT");
    if (argc - optind > 1) return cli_usage_error("synth", "one output path expected, got '%s' and '%s'", argv[optind], argv[optind + 1]);
    const char *out = argv[optind];
    if (o.defect_rate + o.sensor_fault_rate > 1 + 1e-9)
        return cli_usage_error("synth", "--defect-rate %g and --sensor-fault-rate %g sum above 1 (good parts are the rest)",
                               o.defect_rate, o.sensor_fault_rate);
    int rc = lathe_synth_write(&o, out);
    if (rc) {
        cli_error("synth", NULL);
        if (rc == -LATHE_EEXIST) fprintf(stderr, "(pass --force to write over it)\n");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
