/* catalog.h - what the label files of a source say: classes, and one record per image with its
 * boxes, image-level label, text and mask. Format adapters (datasets/) fill a catalog during the
 * ingest scan pass; the ingest pipeline then matches image entries to records by path.
 *
 * Class labels are *source ids* while adapters fill the catalog (COCO category ids, YOLO class
 * numbers, ...). lathe_catalog_finish() sorts the declared classes by source id, turns every label
 * into a class index 0..K-1, and drops (with a reject) annotations whose id was never declared. */
#ifndef LATHE_DATA_CATALOG_H
#define LATHE_DATA_CATALOG_H
#include <stddef.h>
#include <stdint.h>

#include "../data/sample.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_record {
    char *file;         /* image path as the label format names it; matched to entries by suffix */
    int64_t image_id;   /* source image id, -1 if none */
    int32_t label;      /* image-level class (source id while filling, index after finish), -1 none */
    int normalized;     /* boxes are in [0,1] image units (YOLO); scaled once the image is decoded */
    int width, height;  /* size the label file declares, 0 if none (checked against the image) */
    char *text;         /* description, NULL if none */
    char *mask_file;    /* path of the mask entry (MVTec), NULL if none */
    lathe_box *boxes;
    size_t nboxes, capboxes;
    int matched;        /* set by ingest once the image entry was found */
    int split;          /* the split a label file puts it in (LATHE_SPLIT_*), -1 none, LATHE_SPLIT_CONFLICT
                           when label files of two splits name it (lathe_record_put_split) */
} lathe_record;

enum { LATHE_SPLIT_CONFLICT = -2 };
/* Records that a label file of split s names rec: the first split sticks, another one marks it
 * LATHE_SPLIT_CONFLICT (ingest rejects such a sample: in_two_splits). */
void lathe_record_put_split(lathe_record *rec, int s);

/* The split a name's words say (LATHE_SPLIT_TRAIN/VAL/TEST for train/training, val/valid/validation,
 * test/testing, any case, digits may follow: instances_val2017), or -1. Words are runs of letters
 * and digits; the last word that names a split wins. */
int lathe_split_named(const char *name, size_t len);

typedef struct {
    int64_t source_id;
    char *name;
} lathe_class;

/* A reject found while reading labels: path of the label file or image, reason code, detail. */
typedef struct {
    char *path, *reason, *detail;
} lathe_label_reject;

typedef struct lathe_catalog lathe_catalog;

/* Split lists (VOC's ImageSets/Main/train.txt, ...): the image whose file name without extension is
 * stem is named by the list file `list` of split s (LATHE_SPLIT_*), or by a train+val list when s is
 * LATHE_SPLIT_TRAINVAL. Applied to the records at lathe_catalog_finish: each list that names a
 * record puts it in its split (lathe_record_put_split); a train+val list counts only for records
 * that no train, val or test list names, and puts them in train; a stem no record has is a
 * missing_file reject of the list that first named it. Returns 0 or -LATHE_ENOMEM. */
enum { LATHE_SPLIT_TRAINVAL = 3 };
int lathe_catalog_list_split(lathe_catalog *cat, const char *list, const char *stem, int s);
/* A split list file (path, for rejects): each line names an image by an id or a path; its file name
 * without extension is the stem given to lathe_catalog_list_split. Blank lines and lines starting
 * with # are skipped; a line that names no file is a malformed_label reject. 0 or -LATHE_ENOMEM. */
int lathe_catalog_read_split_list(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len, int s);
/* Split folders a label file names (YOLO's data.yaml train: images/set_a): records whose file lies
 * under folder ('/'-bounded, anywhere in the path; leading ./ and ../ are dropped) are in split s,
 * the longest matching folder deciding. A folder named for two splits (train: images, val: images)
 * names none. Applied at lathe_catalog_finish, before the split lists. 0 or -LATHE_ENOMEM. */
int lathe_catalog_split_folder(lathe_catalog *cat, const char *folder, int s);

/* List files whose split another label file gives (YOLO's data.yaml `train: lists/a.txt`): the list
 * at path is kept (lathe_catalog_keep_list) until a label file names it with its split
 * (lathe_catalog_name_list: name relative, leading ./ and ../ dropped, matched as a '/'-bounded
 * suffix of the list's path); at lathe_catalog_finish each named list is read as a split list. A
 * list nobody names is ignored. Both return 0 or -LATHE_ENOMEM. */
int lathe_catalog_keep_list(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len);
int lathe_catalog_name_list(lathe_catalog *cat, const char *name, int s);

/* The split of an ImageSets list, ImageSets/[...]/{train,val,test,trainval}.txt (VOC's
 * ImageSets/Main, KITTI's ImageSets): LATHE_SPLIT_TRAIN/VAL/TEST/TRAINVAL, or -1 for any other path
 * (per-class lists such as aeroplane_train.txt are not split lists). */
int lathe_imagesets_split(const char *path);

lathe_catalog *lathe_catalog_create(void);
void lathe_catalog_free(lathe_catalog *cat);

/* Declares a class. A second declaration of the same source id keeps the first name unless it was
 * NULL. name may be NULL (named "class_<id>" at finish if never named). Returns 0 or -LATHE_ENOMEM. */
int lathe_catalog_declare_class(lathe_catalog *cat, int64_t source_id, const char *name);
/* Source id of the class called name, declaring it with the next free id when new (class folders).
 * Returns the id >= 0, or a negative error code. */
int64_t lathe_catalog_class_named(lathe_catalog *cat, const char *name);

/* The record for file, created when new (file is copied). Returns NULL on allocation failure. */
lathe_record *lathe_catalog_record(lathe_catalog *cat, const char *file);
/* The record whose file is exactly path, or NULL. */
lathe_record *lathe_catalog_find(const lathe_catalog *cat, const char *file);
/* The record an archive entry path refers to: exact match, else the record whose file equals a
 * '/'-bounded suffix of path, else NULL. */
lathe_record *lathe_catalog_match(const lathe_catalog *cat, const char *entry_path);
/* Appends a box (label is a source id). Returns 0 or -LATHE_ENOMEM. */
int lathe_record_add_box(lathe_record *rec, const lathe_box *box);
/* Sets a string field (text, mask_file), replacing the old value. Returns 0 or -LATHE_ENOMEM. */
int lathe_record_set(char **field, const char *value);

/* Records a label-level reject (malformed line, unknown category, duplicate id, ...). */
void lathe_catalog_reject(lathe_catalog *cat, const char *path, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Numbers the classes and relabels every record (see the file comment). Returns 0 or a negative
 * code. After finish, declare/record calls are not allowed. */
int lathe_catalog_finish(lathe_catalog *cat);

size_t lathe_catalog_nrecords(const lathe_catalog *cat);
lathe_record *lathe_catalog_at(const lathe_catalog *cat, size_t i);
size_t lathe_catalog_nclasses(const lathe_catalog *cat);
const lathe_class *lathe_catalog_class_at(const lathe_catalog *cat, size_t i);
size_t lathe_catalog_nrejects(const lathe_catalog *cat);
const lathe_label_reject *lathe_catalog_reject_at(const lathe_catalog *cat, size_t i);

/* What an entry of the source is to a format adapter. */
typedef enum {
    LATHE_ENTRY_OTHER = 0, /* not used by this format (ingest may still use it: sensors, text) */
    LATHE_ENTRY_LABEL,     /* a label file, read into memory and parsed in the scan pass */
    LATHE_ENTRY_MASK,      /* a mask image, kept for the sample that names it */
    LATHE_ENTRY_IMAGE,     /* a sample image, decoded in the ingest pass */
} lathe_entry_role;

/* A label format. Every function pointer may be NULL where the format needs no such step. */
typedef struct lathe_adapter {
    const char *name;    /* "coco", "yolo", ... as given to --format */
    const char *summary; /* one line for --help */
    /* How well the format explains these entry paths: 0 = not at all, higher wins auto-detect. */
    int (*detect)(const char *const *paths, size_t n);
    /* The role of one entry path. Images default to their extension when this returns OTHER. */
    lathe_entry_role (*role)(const char *path);
    /* Parses one label file. Returns 0, or a negative code when the whole file is unusable (the
     * message says where); problems with single annotations are lathe_catalog_reject()ed. */
    int (*parse)(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len);
    /* After all label files: sees every entry path once (sorted) to create records that the paths
     * themselves define (class folders, MVTec good/defect folders). Returns 0 or a negative code. */
    int (*scan_paths)(lathe_catalog *cat, const char *const *paths, size_t n);
} lathe_adapter;

/* 1 when path ends in an image extension lathe decodes (.jpg .jpeg .png, any case). */
int lathe_path_is_image(const char *path);
/* 1 when path ends in an image extension lathe does not decode (.bmp .tif .gif .webp ...). */
int lathe_path_is_unsupported_image(const char *path);
/* The final component of path without its extension, written to out (size cap). */
void lathe_path_stem(const char *path, char *out, size_t cap);
/* 1 when a component of path is hidden (".x", not "." itself) or macOS archive debris
 * ("__MACOSX/", "._x" AppleDouble files): never data, whatever the extension. */
int lathe_path_is_debris(const char *path);
/* 1 when path ends with suffix, ignoring ASCII case. */
int lathe_path_ends_with(const char *path, const char *suffix);
/* 1 when path contains the directory component dir ("a/labels/b.txt" has "labels"). */
int lathe_path_has_dir(const char *path, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
