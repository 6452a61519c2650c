/* sample.c - names of the splits. */
#include "sample.h"

#include <string.h>

static const char *const split_names[LATHE_NSPLITS] = {"train", "val", "test"};

const char *lathe_split_name(int split) {
    return split >= 0 && split < LATHE_NSPLITS ? split_names[split] : "none";
}

int lathe_split_parse(const char *name) {
    for (int i = 0; i < LATHE_NSPLITS; i++)
        if (strcmp(name, split_names[i]) == 0) return i;
    return -1;
}
