/* main.c - `lathe`: dispatches to one subcommand per file (tools/<name>.c). */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/folder_lock.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"synth", cmd_synth, "write a deterministic synthetic factory archive"},
    {"ingest", cmd_ingest, "ingest a folder or archive into a dataset of HDF5 shards"},
    {"info", cmd_info, "describe a dataset: counts, classes, splits, shards, schema"},
    {"verify", cmd_verify, "check a dataset: checksums, schema, chunks, boxes"},
    {"analyze", cmd_analyze, "statistics and quality findings of a dataset (leakage, duplicates, ...)"},
    {"train", cmd_train, "train a classifier, a detector or an image-text head from a YAML spec"},
    {"eval", cmd_eval, "evaluate a run, or COCO detections (pycocotools metrics); CI gate"},
    {"export", cmd_export, "a run's model as ONNX for onnxruntime, TensorRT and DeepStream"},
    {"embed", cmd_embed, "sentence embeddings of texts, or image embeddings of an image-text run (.npy)"},
    {"notebook", cmd_notebook, "a Jupyter notebook of runs, evaluations or analyses (renders, reruns)"},
    {"predict", cmd_predict, "a detector run on images, a folder or a dataset split: COCO results, drawings"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: lathe <command> [options]\n       lathe --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`lathe <command> --help` describes each command. Exit codes: 0 ok, 1 failure, 2 usage,\n"
                 "3 quality gate failed, 4 input rejected under --strict.\n");
}

int main(int argc, char **argv) {
    lathe_folder_lock_set_command(argc, argv); /* named in the folder locks this process takes */
    /* No HDF5 clean-up at exit: after a failed write (a full disk) a file cannot be flushed, and
     * the clean-up then printed "infinite loop closing library" after lathe's own message. Files
     * are closed by the code that opened them. */
    H5dont_atexit();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lathe %s\n", LATHE_VERSION);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lathe: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
