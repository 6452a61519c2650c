/* train.c - `lathe train SPEC.yaml [key=value ...]`: trains an image classifier as the spec says
 * (docs/TRAINING.md) into runs/NAME/; `--resume` continues a run from its last checkpoint. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "libcore/base/config.h"
#include "libcore/base/error.h"
#include "libcore/base/folder_lock.h"
#include "libcore/base/fsutil.h"
#include "libcore/base/log.h"
#include "libcore/det/detector.h"
#include "libcore/dist/dist.h"
#include "libcore/anomaly/anomaly.h"
#include "libcore/mm/contrastive.h"
#include "libcore/mm/fusion.h"
#include "libcore/io/dataset.h"
#include "libcore/nn/graph.h"
#include "libcore/nn/spec_check.h"
#include "libcore/nn/train.h"


static void usage(FILE *out) {
    fprintf(out,
            "usage: lathe train SPEC.yaml [key=value ...] [options]\n"
            "       lathe train --resume --name NAME [--runs DIR] [options]\n\n"
            "Trains a model on a lathe dataset as SPEC.yaml says (sections data, model, train:\n"
            "docs/TRAINING.md): an image classifier on the image-level labels (task: classify, the\n"
            "default), an anchor-free detector on the boxes (task: detect; validated by COCO mAP), an\n"
            "image-text head on the descriptions (task: contrastive; validated by zero-shot accuracy from\n"
            "class prompts), an anomaly head on the good samples only (task: anomaly; one pass that\n"
            "remembers their patch features) or an image + sensor fusion head (task: fusion; multi-label,\n"
            "validated by accuracy; docs/MULTIMODAL.md). Any key can be overridden as key=value\n"
            "(train.epochs=5 model.width=0.5); train.device=cpu|cuda|cuda:N|auto picks where it trains\n"
            "(default auto: the first GPU when one can be used, else the CPU).\n"
            "The run goes to RUNS/NAME/: config.yaml (the resolved spec),\n"
            "log.jsonl, checkpoints/last.safetensors and best.safetensors, metrics.json.\n"
            "SIGINT/SIGTERM/SIGUSR1 write a checkpoint and stop (exit 130); --resume continues exactly.\n"
            "Started by mpirun or srun (--mpi=pmix), it trains data-parallel, one rank per process:\n"
            "train.batch is the global batch, split over the ranks; rank 0 writes the run; a stop\n"
            "signal to any rank stops all at the same step (docs/SCALE.md).\n\n"
            "  --name NAME         run name (default: the spec's name, else the file's stem)\n"
            "  --runs DIR          where runs go (default runs)\n"
            "  --resume            continue RUNS/NAME from its last checkpoint with its saved config.yaml\n"
            "                      (SPEC.yaml is then needed only to name the run when --name is not given)\n"
            "  --overwrite         replace an existing run RUNS/NAME (without it, an existing run is an\n"
            "                      error: nothing of it is touched)\n"
            "  --init CHECKPOINT   start from these weights (train.init): tensors whose name and size match\n"
            "                      are loaded, the rest (a head for another class list) stay freshly initialized\n"
            "  --summary           print the model's layers, shapes, parameters and FLOPs, and exit\n"
            "  --threads N         CPU threads (default: all cores; with several ranks the cores each was\n"
            "                      bound to, else its own slice of the node's, which it binds itself to);\n"
            "                      results are identical for equal N\n"
            "  --notebook          when training ends, also write RUN/notebook.ipynb: the run as a Jupyter\n"
            "                      notebook that renders as it is and reruns (lathe notebook, docs/CLI.md)\n"
            "  --log-format FMT    text (default) or json log lines on stderr\n"
            "  -h, --help          this help\n");
}

static const struct option options[] = {
    {"name", required_argument, NULL, 'n'},    {"runs", required_argument, NULL, 'r'},
    {"resume", no_argument, NULL, 'R'},        {"summary", no_argument, NULL, 's'},
    {"threads", required_argument, NULL, 't'}, {"log-format", required_argument, NULL, 'l'},
    {"init", required_argument, NULL, 'i'},    {"overwrite", no_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},         {"notebook", no_argument, NULL, 'N'},
    {NULL, 0, NULL, 0},
};

/* A run name is one folder name: not empty, no '/', not "." or "..", and not cut short. */
static int check_run_name(const char *name) {
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return lathe_fail(LATHE_EINVAL, "run name \"%s\": it must be one folder name (no '/', not empty, . or ..)", name);
    if (strlen(name) > 200) return lathe_fail(LATHE_EINVAL, "run name of %zu characters: 200 at most", strlen(name));
    return 0;
}

/* Everything inside the run folder but the folder itself and the lock this process holds. */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag;
    if (ftw->level == 0 || (ftw->level == 1 && !strcmp(path + ftw->base, LATHE_FOLDER_LOCK_NAME))) return 0;
    return remove(path) ? lathe_fail(LATHE_EIO, "cannot remove %s: %s", path, strerror(errno)) : 0;
}

/* A new run's folder: absent or empty, or an earlier run's that never wrote a checkpoint (it
 * stopped at its setup), or with overwrite any earlier run's; those are emptied. A folder that
 * holds something other than a run (no config.yaml) is never emptied. */
static int prepare_run_dir(const char *run_dir, int overwrite) {
    char cfg[4500], last[4500], best[4500];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", run_dir);
    snprintf(last, sizeof last, "%s/checkpoints/last.safetensors", run_dir);
    snprintf(best, sizeof best, "%s/checkpoints/best.safetensors", run_dir);
    if (lathe_folder_empty(run_dir)) return 0;
    if (access(cfg, F_OK)) return lathe_fail(LATHE_EEXIST, "%s exists and is not a lathe run (no config.yaml)", run_dir);
    if (!overwrite && (!access(last, F_OK) || !access(best, F_OK)))
        return lathe_fail(LATHE_EEXIST, "%s already holds a run: continue it with --resume, replace it with --overwrite, "
                                        "or pick another --name", run_dir);
    return nftw(run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) ? -LATHE_EIO : 0;
}

static int train(int argc, char **argv) {
    const char *name = NULL, *runs = "runs", *init = NULL;
    int resume = 0, summary = 0, overwrite = 0, notebook = 0, opt;
    long long threads = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return EXIT_OK;
        case 'n': name = optarg; break;
        case 'r': runs = optarg; break;
        case 'R': resume = 1; break;
        case 'o': overwrite = 1; break;
        case 'N': notebook = 1; break;
        case 's': summary = 1; break;
        case 'i': init = optarg; break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &threads)) return cli_usage_error("train", "--threads needs 1..1024");
            break;
        case 'l':
            if (cli_set_log_format(optarg)) return cli_usage_error("train", "unknown --log-format '%s'", optarg);
            break;
        default: return cli_usage_error("train", "bad option");
        }
    }
    /* --resume --name N needs no spec: the run's config.yaml is the spec */
    int spec_free = resume && name;
    if (optind >= argc && !spec_free) return cli_usage_error("train", "which SPEC.yaml?");
    if (!*runs) return cli_usage_error("train", "--runs needs a folder");
    if (name && check_run_name(name)) return cli_usage_error("train", "--name: %s", lathe_last_error());
    if (resume && overwrite) return cli_usage_error("train", "--resume and --overwrite exclude each other");
    const char *spec_path = optind < argc ? argv[optind] : NULL;
    if (resume && (optind + 1 < argc || (spec_path && strchr(spec_path, '=') && access(spec_path, F_OK))))
        return cli_usage_error("train", "--resume takes no key=value overrides (the run's config.yaml is used)");
    if (lathe_dist_init()) { /* a launcher's ranks: one per process (libcore/dist) */
        cli_error("train", NULL);
        return EXIT_FAIL;
    }
    int writer = lathe_dist_writer(); /* rank 0: the one that writes the run */
    if (!writer) lathe_log_set_level(LATHE_LOG_WARN); /* the progress and the epochs once, from rank 0 */
    int share = lathe_dist_cpu_share(); /* a rank's own cores (it binds itself when the launcher did not) */
    cli_set_threads(threads ? (int)threads : share);
    cJSON *spec = NULL;
    char what[4200];
    snprintf(what, sizeof what, "train %s", spec_path ? spec_path : name);
    if (spec_free) spec = cJSON_CreateObject(); /* replaced by the run's config.yaml below */
    else if (lathe_config_load(spec_path, &spec)) {
        cli_error(what, NULL);
        return EXIT_FAIL;
    }
    for (int i = optind + 1; i < argc && !resume; i++)
        if (lathe_config_override(spec, argv[i])) {
            cJSON_Delete(spec);
            return cli_usage_error("train", "%s", lathe_last_error());
        }
    if (init) {
        char assignment[4200];
        snprintf(assignment, sizeof assignment, "train.init=%s", init);
        if (resume || lathe_config_override(spec, assignment)) {
            cJSON_Delete(spec);
            return cli_usage_error("train", "--init: %s", resume ? "not with --resume" : lathe_last_error());
        }
    }
    char run_name[256], run_dir[4400], cfg_path[4500];
    if (name) snprintf(run_name, sizeof run_name, "%s", name);
    else if (lathe_config_str(spec, "name", NULL)) snprintf(run_name, sizeof run_name, "%s", lathe_config_str(spec, "name", ""));
    else cli_stem(spec_path, run_name, sizeof run_name);
    snprintf(run_dir, sizeof run_dir, "%s/%s", runs, run_name);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", run_dir);
    int rc = check_run_name(run_name);
    /* one writer per run: a resume locks before it reads the run's config (a new run, below,
     * before it prepares the folder) */
    lathe_lock *lock = NULL;
    if (!rc && writer && resume && !summary && !access(run_dir, F_OK)) rc = lathe_folder_lock(run_dir, &lock);
    rc = lathe_dist_agree(rc); /* the other ranks read the run once rank 0 holds it */
    if (!rc && resume) { /* the run's own resolved spec, so the continuation is the same training */
        cJSON_Delete(spec);
        spec = NULL;
        rc = lathe_config_load(cfg_path, &spec);
    }
    if (!rc) lathe_config_drop_nulls(spec); /* `key: ~` unsets a key, also one a base spec sets */
    if (!rc) rc = lathe_spec_check(spec);
    if (!rc && summary) {
        lathe_graph *g;
        cJSON *model = cJSON_Duplicate(lathe_config_get(spec, "model"), 1);
        if (model && !cJSON_GetObjectItemCaseSensitive(model, "classes")) { /* the dataset's, as training takes them */
            lathe_dataset *ds = NULL;
            const char *dir = lathe_config_str(spec, "data.dataset", NULL);
            int known = dir && !lathe_dataset_open(dir, &ds);
            cJSON_AddNumberToObject(model, "classes", known ? lathe_dataset_manifest(ds)->nclasses : 2);
            if (!known) printf("(model.classes is not set and data.dataset cannot be read: 2 classes assumed)\n");
            lathe_dataset_close(ds);
            lathe_clear_error();
        }
        rc = lathe_graph_build(model, 1, 0, &g);
        cJSON_Delete(model);
        if (!rc && writer) lathe_graph_summary(g, stdout);
        if (!rc) lathe_graph_free(g);
        cJSON_Delete(spec);
        lathe_folder_unlock(lock);
        if (rc) cli_error(what, NULL);
        return rc ? EXIT_FAIL : EXIT_OK;
    }
    const char *task = lathe_config_str(spec, "task", "classify");
    if (!rc && strcmp(task, "classify") && strcmp(task, "detect") && strcmp(task, "contrastive") && strcmp(task, "anomaly") &&
        strcmp(task, "fusion"))
        rc = lathe_fail(LATHE_EINVAL, "task: classify, detect, contrastive, anomaly or fusion, not %s", task);
    if (!rc && lathe_dist_world() > 1 && !strcmp(task, "anomaly"))
        rc = lathe_fail(LATHE_EUNSUPPORTED, "task anomaly trains in one process (one pass over the good samples): start it "
                                            "without mpirun or srun");
    if (!rc && !resume) rc = cli_record_classes(spec);
    if (!rc && writer && !resume) rc = lathe_folder_lock(run_dir, &lock);
    if (!rc && writer && !resume) rc = prepare_run_dir(run_dir, overwrite);
    if (!rc && writer && !resume) {
        char *yaml = lathe_config_to_yaml(spec);
        rc = yaml ? lathe_mkdirs(run_dir) : lathe_fail(LATHE_ENOMEM, "config");
        if (!rc) rc = lathe_write_atomic(cfg_path, yaml, strlen(yaml));
        free(yaml);
    }
    rc = lathe_dist_agree(rc); /* the run's folder is ready (or refused) for every rank */
    lathe_dist_set_sync_bn(lathe_config_prob(spec, "train.sync_bn", 0, 1) > 0); /* before the task builds its graph */
    volatile sig_atomic_t *stop = cli_stop_on_signals();
    if (!rc) rc = !strcmp(task, "detect")        ? lathe_train_detector(spec, run_dir, resume, stop)
                  : !strcmp(task, "contrastive") ? lathe_train_contrastive(spec, run_dir, resume, stop)
                  : !strcmp(task, "anomaly")     ? lathe_train_anomaly(spec, run_dir, resume, stop)
                  : !strcmp(task, "fusion")      ? lathe_train_fusion(spec, run_dir, resume, stop)
                                                 : lathe_train_classifier(spec, run_dir, resume, stop);
    if (!rc && notebook && writer) rc = cli_notebook_beside(run_dir, "notebook.ipynb");
    lathe_folder_unlock(lock);
    cJSON_Delete(spec);
    if (rc == -LATHE_EINTR) {
        if (writer)
            fprintf(stderr, "lathe: %s; resume with: lathe train --resume --name %s --runs %s\n", lathe_last_error(),
                    run_name, runs);
        return 130;
    }
    if (rc) {
        if (writer || !lathe_dist_agreed(rc)) cli_error(what, NULL); /* an agreed error once, from rank 0 */
        return EXIT_FAIL;
    }
    if (writer) printf("run: %s (metrics.json, log.jsonl, checkpoints/%s)\n", run_dir, notebook ? ", notebook.ipynb" : "");
    return EXIT_OK;
}

/* A run that ends well ends MPI on every rank; a failed one exits without waiting for the others
 * (the launcher then ends them: mpirun and srun stop a job whose process exits with an error). */
int cmd_train(int argc, char **argv) {
    int rc = train(argc, argv);
    if (rc == EXIT_OK) lathe_dist_finalize();
    return rc;
}
