/* yaml_values.c - a test helper (tests/interop/test_yaml_pyyaml.py): lathe's YAML reading
 * (lathe_config_parse: libfyaml's structure, scalars as libcore/base/yaml_check.c reads them) on
 * each NUL-separated text of stdin, one line of stdout per text: its JSON, or "ERR " and the
 * message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "libcore/base/config.h"
#include "libcore/base/error.h"

int main(void) {
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, stdin)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) free(buf);
            buf = more;
        }
    }
    if (!buf) {
        fprintf(stderr, "yaml_values: out of memory\n");
        return 1;
    }
    buf[len] = '\0';
    size_t at = 0;
    do { /* an empty input is one empty text */
        const char *text = buf + at;
        cJSON *tree = NULL;
        if (lathe_config_parse(text, "text", &tree)) {
            printf("ERR %s\n", lathe_last_error());
        } else {
            char *json = cJSON_PrintUnformatted(tree);
            printf("%s\n", json ? json : "ERR out of memory");
            free(json);
            cJSON_Delete(tree);
        }
        at += strlen(text) + 1;
    } while (at < len);
    free(buf);
    return 0;
}
