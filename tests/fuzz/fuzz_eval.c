/* fuzz_eval.c - COCO detection results for `lathe eval --detections` (libcore/eval/coco.c): the input
 * is a results file evaluated against a small ground truth, or "GROUND_TRUTH\0RESULTS" to fuzz both.
 * When both load, the twelve metrics and the report are computed. */
#include "fuzz.h"

#include "libcore/eval/coco.h"

static const char gt_json[] =
    "{\"images\": [{\"id\": 1, \"width\": 64, \"height\": 48}, {\"id\": 2, \"width\": 64, \"height\": 48}],\n"
    " \"categories\": [{\"id\": 1, \"name\": \"scratch\"}, {\"id\": 3, \"name\": \"crack\"}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [4, 4, 20, 10], \"area\": 200, \"iscrowd\": 0},\n"
    "  {\"id\": 2, \"image_id\": 1, \"category_id\": 3, \"bbox\": [30, 20, 8, 8], \"area\": 64, \"iscrowd\": 0},\n"
    "  {\"id\": 3, \"image_id\": 2, \"category_id\": 1, \"bbox\": [0, 0, 64, 48], \"area\": 3072, \"iscrowd\": 1}]}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t first;
    const uint8_t *second;
    size_t second_len;
    fuzz_split(data, size, &first, &second, &second_len);
    char gt[4200], dt[4200];
    if (second) {
        fuzz_write("gt.json", data, first, gt, sizeof gt);
        fuzz_write("dt.json", second, second_len, dt, sizeof dt);
    } else {
        fuzz_write("gt.json", gt_json, sizeof gt_json - 1, gt, sizeof gt);
        fuzz_write("dt.json", data, size, dt, sizeof dt);
    }
    lathe_coco_data d;
    if (lathe_coco_load(gt, dt, &d) != 0) return 0;
    lathe_coco_result r;
    if (lathe_coco_evaluate(&d, &r) == 0) {
        for (size_t k = 0; k < r.ncategories; k++) (void)lathe_coco_category_ap(&r, k, -1);
        cJSON *report = lathe_coco_report(&d, &r);
        cJSON_Delete(report);
        lathe_coco_result_free(&r);
    }
    lathe_coco_data_free(&d);
    return 0;
}
