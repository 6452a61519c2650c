/* sample.c - names of the splits. */
#include "sample.h"

#include <string.h>
#include <strings.h>

static const char *const split_names[LATHE_NSPLITS] = {"train", "val", "test"};

const char *lathe_split_name(int split) {
    return split >= 0 && split < LATHE_NSPLITS ? split_names[split] : "none";
}

int lathe_good_class(const char *const *names, int n) {
    static const char *const good[] = {"good", "ok", "normal", "pass"};
    for (int k = 0; k < n; k++)
        for (size_t j = 0; names[k] && j < sizeof good / sizeof good[0]; j++)
            if (!strcasecmp(names[k], good[j])) return k;
    return -1;
}

int lathe_split_parse(const char *name) {
    for (int i = 0; i < LATHE_NSPLITS; i++)
        if (strcmp(name, split_names[i]) == 0) return i;
    return -1;
}
