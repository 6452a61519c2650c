/* fuzz_archive.c - the archive reader (libcore/io/archive.c over libarchive: tar, zip, 7z, cpio, ...
 * with any compression filter) on a hostile archive file: every entry listed, its name checked, its
 * data read with a byte cap, as ingest's two passes do. */
#include "fuzz.h"

#include "libcore/io/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[4200];
    fuzz_write("input.archive", data, size, path, sizeof path);
    lathe_archive *a = NULL;
    if (lathe_archive_open(path, &a) != 0) return 0;
    lathe_entry e;
    for (int i = 0; i < 64 && lathe_archive_next(a, &e) == 1; i++) {
        if (e.reject_reason) continue;
        uint8_t *bytes = NULL;
        size_t len = 0;
        /* odd entries are left unread: the next call must skip their data */
        if (i % 2 == 0 && lathe_archive_read(a, 1 << 20, &bytes, &len) == 0) free(bytes);
    }
    lathe_archive_close(a);
    return 0;
}
