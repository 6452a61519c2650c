/* h5_error.c - the system error behind an HDF5 failure (h5_error.h). */
#include "h5_error.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *out;
    size_t cap;
    int err, found;
} reason;

/* HDF5's file drivers write "..., errno = N, error message = 'TEXT', ..." into the description. */
static herr_t visit(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    reason *r = data;
    const char *desc = e->desc, *no = desc ? strstr(desc, "errno = ") : NULL, *msg = desc ? strstr(desc, "error message = '") : NULL;
    if (r->found || !no || !msg) return 0;
    r->err = atoi(no + 8);
    msg += strlen("error message = '");
    const char *end = strchr(msg, '\'');
    size_t len = end ? (size_t)(end - msg) : strlen(msg);
    if (len >= r->cap) len = r->cap - 1;
    memcpy(r->out, msg, len);
    r->out[len] = '\0';
    r->found = 1;
    return 0;
}

int lathe_h5_os_error(char *out, size_t cap, int *err) {
    reason r = {out, cap, 0, 0};
    if (cap) out[0] = '\0';
    if (cap) H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, visit, &r);
    H5Eclear2(H5E_DEFAULT);
    if (err) *err = r.found ? r.err : 0;
    return r.found;
}
