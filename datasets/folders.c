/* folders.c - class folders (the torchvision ImageFolder layout): an image's immediate parent folder
 * names its class, so "train/bolt/x.jpg" is a bolt. No label files; the auto-detect fallback. */
#include <stdio.h>
#include <string.h>

#include "datasets/adapters.h"
#include "libcore/base/error.h"

/* The name of path's parent folder into buf; -1 when path has none (an image at the root) or the
 * name does not fit. */
static int parent_name(const char *path, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return -1;
    const char *start = slash;
    while (start > path && start[-1] != '/') start--;
    size_t n = (size_t)(slash - start);
    if (n == 0 || n >= cap || (n == 1 && *start == '.')) return -1; /* "./x.jpg" is at the root */
    memcpy(buf, start, n);
    buf[n] = '\0';
    return 0;
}

static lathe_entry_role folders_role(const char *path) {
    return lathe_path_is_image(path) && !lathe_path_is_debris(path) ? LATHE_ENTRY_IMAGE : LATHE_ENTRY_OTHER;
}

/* One record per image in a folder: label = the class the folder names (classes numbered by name at
 * finish). Images at the root get none. */
static int folders_scan_paths(lathe_catalog *cat, const char *const *paths, size_t n) {
    char name[256];
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        if (!lathe_path_is_image(p) || lathe_path_is_debris(p) || parent_name(p, name, sizeof name)) continue;
        int64_t id = lathe_catalog_class_named(cat, name);
        if (id < 0) return (int)id;
        lathe_record *rec = lathe_catalog_record(cat, p);
        if (!rec) return lathe_fail(LATHE_ENOMEM, "folders: record for %s", p);
        rec->label = (int32_t)id;
    }
    return 0;
}

/* Scores 1 (below every real format) when some image sits in a folder. */
static int folders_detect(const char *const *paths, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (lathe_path_is_image(paths[i]) && strchr(paths[i], '/') && !lathe_path_is_debris(paths[i])) return 1;
    return 0;
}

/* Class folders: image-level labels only, class names sorted alphabetically. */
const lathe_adapter lathe_adapter_folders = {
    .name = "folders",
    .summary = "class folders: <class>/<image> (the parent folder names the class)",
    .detect = folders_detect,
    .role = folders_role,
    .parse = NULL,
    .scan_paths = folders_scan_paths,
};
