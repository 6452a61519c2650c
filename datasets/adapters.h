/* adapters.h - the label formats ingest understands, each implementing libcore's lathe_adapter
 * (libcore/data/catalog.h). */
#ifndef LATHE_DATASETS_ADAPTERS_H
#define LATHE_DATASETS_ADAPTERS_H
#include "libcore/data/catalog.h"
#ifdef __cplusplus
extern "C" {
#endif

extern const lathe_adapter lathe_adapter_coco;    /* COCO JSON (instances) */
extern const lathe_adapter lathe_adapter_yolo;    /* YOLO txt + classes.txt / data.yaml */
extern const lathe_adapter lathe_adapter_voc;     /* Pascal VOC XML */
extern const lathe_adapter lathe_adapter_kitti;   /* KITTI object labels */
extern const lathe_adapter lathe_adapter_mvtec;   /* MVTec-style good/defect folders + masks */
extern const lathe_adapter lathe_adapter_folders; /* one folder per class */

/* NULL-terminated list in auto-detect priority order. */
const lathe_adapter *const *lathe_adapters(void);
/* The adapter called name, or NULL. */
const lathe_adapter *lathe_adapter_find(const char *name);
/* The adapter whose detect() scores highest on these paths (class folders when none scores). */
const lathe_adapter *lathe_adapter_detect(const char *const *paths, size_t n);

#ifdef __cplusplus
}
#endif
#endif
