/* voc.c - the Pascal VOC label format: one <annotation> XML file per image (Annotations/NAME.xml, or
 * beside the images), parsed with libxml2 with entity loading and network access off. */
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datasets/adapters.h"
#include "libcore/base/error.h"

/* Pixel coordinates beyond this are not coordinates (ingest judges the ones below against the
 * image). */
#define VOC_COORD_LIMIT 1e7
/* Far more classes than any real label set; the catalog looks classes up linearly, so hostile files
 * with endless distinct names would otherwise cost quadratic time. */
#define VOC_MAX_CLASSES 10000

/* Hostile XML: no XML_PARSE_NOENT (entities stay references and are never expanded into the tree),
 * no XML_PARSE_DTDLOAD (no external DTD), XML_PARSE_NONET (no network), no XML_PARSE_HUGE (libxml2
 * keeps its depth, text size and entity amplification limits). Errors are collected, not printed. */
#define VOC_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES)

static int is_annotations_xml(const char *path) {
    return lathe_path_ends_with(path, ".xml") &&
           (lathe_path_has_dir(path, "Annotations") || lathe_path_has_dir(path, "annotations"));
}

static int is_element(const xmlNode *node, const char *name) {
    return node && node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0;
}

static xmlNode *child(const xmlNode *parent, const char *name) {
    for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
        if (is_element(c, name)) return c;
    return NULL;
}

/* The text of element node (its text and CDATA children, trimmed; entity references are skipped, so
 * nothing an entity holds is ever read). Returns 0, or -1 when absent or longer than cap - 1. */
static int element_text(const xmlNode *node, char *buf, size_t cap) {
    if (!node) return -1;
    size_t n = 0;
    for (const xmlNode *c = node->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) continue;
        size_t len = c->content ? strlen((const char *)c->content) : 0;
        if (n + len >= cap) return -1;
        memcpy(buf + n, c->content, len);
        n += len;
    }
    buf[n] = '\0';
    size_t start = 0;
    while (start < n && strchr(" \t\r\n", buf[start])) start++;
    while (n > start && strchr(" \t\r\n", buf[n - 1])) n--;
    memmove(buf, buf + start, n - start);
    buf[n - start] = '\0';
    return 0;
}

static int child_number(const xmlNode *parent, const char *name, double *out) {
    char buf[64], *end;
    if (element_text(child(parent, name), buf, sizeof buf) || !buf[0]) return -1;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno == ERANGE || !isfinite(v) || fabs(v) > VOC_COORD_LIMIT) return -1;
    *out = v;
    return 0;
}

/* <size><width>/<height>: 0 when absent or 0 (some exporters write 0); a reject when not a count. */
static void read_size(lathe_catalog *cat, const char *path, const xmlNode *root, lathe_record *rec) {
    const xmlNode *size = child(root, "size");
    if (!size) return;
    double w, h;
    if (child_number(size, "width", &w) || child_number(size, "height", &h) || w < 0 || h < 0 || w > INT_MAX ||
        h > INT_MAX || w != floor(w) || h != floor(h)) {
        lathe_catalog_reject(cat, path, "malformed_label", "line %ld: <size> has no valid width and height",
                             xmlGetLineNo(size));
        return;
    }
    rec->width = (int)w;
    rec->height = (int)h;
}

static int is_difficult(const xmlNode *object) {
    char buf[16];
    if (element_text(child(object, "difficult"), buf, sizeof buf)) return 0;
    return strcmp(buf, "1") == 0 || strcasecmp(buf, "true") == 0;
}

/* Adds one <object>: name, bndbox (1-based inclusive pixels -> x1 = xmin - 1, x2 = xmax), difficult.
 * A malformed object is rejected and skipped; returns a negative code only when out of memory. */
static int add_object(lathe_catalog *cat, const char *path, const xmlNode *object, int index, lathe_record *rec) {
    char name[256];
    long line = xmlGetLineNo(object);
    if (element_text(child(object, "name"), name, sizeof name) || !name[0]) {
        lathe_catalog_reject(cat, path, "malformed_label", "line %ld: object %d has no <name> (or one over 255 bytes)",
                             line, index);
        return 0;
    }
    const xmlNode *bb = child(object, "bndbox");
    double xmin, ymin, xmax, ymax;
    if (!bb || child_number(bb, "xmin", &xmin) || child_number(bb, "ymin", &ymin) ||
        child_number(bb, "xmax", &xmax) || child_number(bb, "ymax", &ymax)) {
        lathe_catalog_reject(cat, path, "malformed_label",
                             "line %ld: object %d (%s) has no <bndbox> with numeric xmin, ymin, xmax, ymax", line,
                             index, name);
        return 0;
    }
    int64_t id = lathe_catalog_class_named(cat, name);
    if (id < 0) return (int)id;
    if (lathe_catalog_nclasses(cat) > VOC_MAX_CLASSES)
        return lathe_fail(LATHE_ELIMIT, "%s: line %ld: more than %d class names", path, line, VOC_MAX_CLASSES);
    lathe_box box = {
        .x1 = (float)(xmin - 1),
        .y1 = (float)(ymin - 1),
        .x2 = (float)xmax,
        .y2 = (float)ymax,
        .label = (int32_t)id,
        .flags = (uint8_t)(is_difficult(object) ? LATHE_BOX_IGNORE : 0),
        .id = -1,
        .area = -1,
    };
    return lathe_record_add_box(rec, &box);
}

/* The record key: the basename of <filename> (records match entries by '/'-bounded suffix, so
 * "JPEGImages/x.jpg" is found wherever it lies); without <filename>, the XML's own stem (matched
 * against the image path without its extension). */
static void record_key(const xmlNode *root, const char *path, char *key, size_t cap) {
    char name[1024];
    if (!element_text(child(root, "filename"), name, sizeof name) && name[0]) {
        const char *base = name;
        for (const char *p = name; *p; p++)
            if (*p == '/' || *p == '\\') base = p + 1;
        if (*base) {
            snprintf(key, cap, "%s", base);
            return;
        }
    }
    lathe_path_stem(path, key, cap);
}

static int parse_document(lathe_catalog *cat, const char *path, xmlDoc *doc) {
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!is_element(root, "annotation"))
        return lathe_fail(LATHE_EFORMAT, "%s: line %ld: the root element is <%s>, not <annotation>", path,
                          root ? xmlGetLineNo(root) : 1L, root ? (const char *)root->name : "");
    char key[1024];
    record_key(root, path, key, sizeof key);
    if (lathe_catalog_find(cat, key)) {
        lathe_catalog_reject(cat, path, "duplicate_label", "image %s is already described by another XML file", key);
        return 0;
    }
    lathe_record *rec = lathe_catalog_record(cat, key);
    if (!rec) return lathe_fail(LATHE_ENOMEM, "%s: catalog record", path);
    read_size(cat, path, root, rec);
    int index = 0, rc = 0;
    for (xmlNode *c = root->children; c && !rc; c = c->next)
        if (is_element(c, "object")) rc = add_object(cat, path, c, ++index, rec);
    return rc;
}

/* libxml2 reports an encoding's failed conversion ("encoding error : input conversion failed") and
 * the I/O error after it on its generic channel, which XML_PARSE_NOERROR does not reach: during a
 * parse that channel goes here (it is per thread in libxml2, so other threads keep theirs). The
 * parse still fails or succeeds as it would, and its last error is what lathe reports. */
static void voc_xml_quiet(void *ctx, const char *msg, ...) { (void)ctx, (void)msg; }

static int voc_parse(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    int list = lathe_imagesets_split(path); /* ImageSets/Main/{train,val,test,trainval}.txt */
    if (list >= 0) return lathe_catalog_read_split_list(cat, path, data, len, list);
    if (len > INT_MAX) return lathe_fail(LATHE_ELIMIT, "%s: %zu bytes, more than an XML label file can be", path, len);
    xmlInitParser();
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    if (!ctxt) return lathe_fail(LATHE_ENOMEM, "%s: XML parser", path);
    xmlGenericErrorFunc saved_func = xmlGenericError;
    void *saved_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, voc_xml_quiet);
    /* URL NULL: there is no base to resolve anything external against */
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, (const char *)data, (int)len, NULL, NULL, VOC_XML_OPTIONS);
    xmlSetGenericErrorFunc(saved_ctx, saved_func);
    int rc;
    if (!doc) {
        const xmlError *err = xmlCtxtGetLastError(ctxt);
        char msg[200] = "not well-formed XML";
        if (err && err->message) {
            snprintf(msg, sizeof msg, "%s", err->message);
            msg[strcspn(msg, "\n")] = '\0';
        }
        rc = lathe_fail(LATHE_EFORMAT, "%s: line %d column %d: %s", path, err ? err->line : 0, err ? err->int2 : 0,
                        msg);
    } else {
        rc = parse_document(cat, path, doc);
        xmlFreeDoc(doc);
    }
    xmlFreeParserCtxt(ctxt);
    return rc;
}

/* Every XML file is a label file: Annotations/NAME.xml is VOC's own layout, and exporters (Roboflow,
 * labelImg) also write x.xml beside x.jpg. ImageSets/Main's split lists are label files too. */
static lathe_entry_role voc_role(const char *path) {
    if (lathe_imagesets_split(path) >= 0) return LATHE_ENTRY_LABEL;
    return lathe_path_ends_with(path, ".xml") && !lathe_path_is_debris(path) ? LATHE_ENTRY_LABEL : LATHE_ENTRY_OTHER;
}

/* Annotations/NAME.xml scores high; XML files beside images score lower. */
static int voc_detect(const char *const *paths, size_t n) {
    size_t annotations = 0, xml = 0, images = 0;
    for (size_t i = 0; i < n; i++) {
        if (lathe_path_is_debris(paths[i])) continue;
        if (is_annotations_xml(paths[i])) annotations++;
        else if (lathe_path_ends_with(paths[i], ".xml")) xml++;
        else if (lathe_path_is_image(paths[i])) images++;
    }
    if (annotations) return 90;
    return xml && images ? 40 : 0;
}

/* Pascal VOC XML: boxes in pixels (converted from 1-based inclusive), <difficult> as
 * LATHE_BOX_IGNORE, <size> as the record's width and height, classes by name. */
const lathe_adapter lathe_adapter_voc = {
    .name = "voc",
    .summary = "Pascal VOC: Annotations/*.xml (or x.xml beside x.jpg), one <annotation> per image",
    .detect = voc_detect,
    .role = voc_role,
    .parse = voc_parse,
    .scan_paths = NULL,
};
