#!/usr/bin/env bash
# test_install.sh - `make install` into a temporary PREFIX gives a library, headers and a
# pkg-config file with which a C program builds and reads a dataset that lathe wrote, and with which
# experiments/engine/detect.c (the C inference API's example) builds and runs an engine that the
# installed lathe exported.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${LATHE_BUILD:-build}
work=$(mktemp -d "${TMPDIR:-/tmp}/lathe-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
# the build under test is the one installed: under `make SANITIZE=1 test` the sanitized library, so
# the programs linked against it take the sanitizers' runtime too (run.sh makes BUILD absolute)
san=${LATHE_SANITIZE:-0}
build_dir=${BUILD%/san}
build_dir=${build_dir%/tsan}
sanflags=() cc=cc
[ "$san" = 1 ] && sanflags=(-fsanitize=address,undefined)
[ "$san" = thread ] && sanflags=(-fsanitize=thread) cc=clang # the TSan build is clang's, with its runtime
make -s install PREFIX="$work/prefix" SANITIZE="$san" BUILD_DIR="$build_dir" >/dev/null
"$work/prefix/bin/lathe" --version
"$work/prefix/bin/lathe" synth "$work/src" --count 6 --seed 5 >/dev/null 2>&1
"$work/prefix/bin/lathe" ingest "$work/src" -o "$work/ds" --size 64 >/dev/null 2>&1
cat > "$work/reader.c" <<'C'
#include <stdio.h>
#include "libcore/base/error.h"
#include "libcore/io/dataset.h"
int main(int argc, char **argv) {
    lathe_dataset *ds;
    if (argc < 2 || lathe_dataset_open(argv[1], &ds)) { fprintf(stderr, "%s\n", lathe_last_error()); return 1; }
    printf("%llu\n", (unsigned long long)lathe_dataset_count(ds));
    lathe_dataset_close(ds);
    return 0;
}
C
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
"$cc" -std=c11 "${sanflags[@]}" -o "$work/reader" "$work/reader.c" $(pkg-config --cflags --libs lathe)
n=$("$work/reader" "$work/ds")
[ "$n" = 6 ] || { echo "reader counted $n samples, expected 6"; exit 1; }
echo "installed library read $n samples"

# the inference API: a detector trained one epoch by the installed lathe, exported as an engine
"$work/prefix/bin/lathe" train experiments/detect/detector_n.yaml "data.dataset=$work/ds" data.val_split=train \
  "model.input=[3,64,64]" model.width=0.125 train.epochs=1 train.batch=6 --runs "$work/runs" --name det >/dev/null 2>&1
"$work/prefix/bin/lathe" export "$work/runs/det" -o "$work/det.lathe" --format lathe --precision fp16
"$cc" -std=c11 -O2 -Wall -Wextra -Werror "${sanflags[@]}" -o "$work/detect" experiments/engine/detect.c $(pkg-config --cflags --libs lathe)
"$work/detect" "$work/det.lathe" "$work"/src/images/* >"$work/detections.tsv"
images=$(cut -f1 "$work/detections.tsv" | sort -u | wc -l)
[ "$images" = 6 ] || { echo "the engine example reported $images images, expected 6"; cat "$work/detections.tsv"; exit 1; }
if "$work/detect" "$work/ds/manifest.json" "$work"/src/images/* 2>"$work/err.txt"; then
  echo "the example opened a file that is not an engine"; exit 1
fi
grep -q "not a lathe engine\|safetensors\|header" "$work/err.txt" || { echo "unclear error:"; cat "$work/err.txt"; exit 1; }
echo "installed inference API ran the engine on $images images"
