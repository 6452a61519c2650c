/* test_text_parity.c - the text encoder (libcore/mm/text_encoder.h) on the GPU against the same
 * encoder on the CPU: a small BERT the test writes itself (random weights, its own vocabulary, so
 * nothing has to be carried to a GPU machine) and, where installed, all-MiniLM-L6-v2 (lathe's
 * default model). Texts of very different lengths in one padded batch, so the attention mask
 * matters. Also times sentences per second on each side. Prints SKIP and exits 0 where no GPU or
 * no CUDA build exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/preprocess.h"
#include "libcore/base/error.h"
#include "libcore/io/safetensors.h"
#include "libcore/mm/text_encoder.h"
#ifdef LATHE_HAVE_CUDA
#include "gputest.h"

static int failures;

static const char *const texts[] = {
    "a thin scratch near the left edge",
    "an aluminium gear with fourteen teeth on a dark rubber belt, with no visible defects at all, lying straight",
    "",
    "dent",
    "two jagged cracks and a missing bolt hole near the center of the flange, slightly out of focus",
    "oil on the belt",
};
enum { NT = sizeof texts / sizeof texts[0] };

static uint64_t seed = 5;
static float *rnd(size_t n, float scale) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = scale * (float)((double)(seed >> 11) / 9007199254740992.0 * 2 - 1);
    }
    return v;
}

typedef struct {
    lathe_st_tensor t[64];
    float *data[64];
    char names[64][96];
    int n;
} tensors;

/* a random (rows, cols) tensor (cols 0: a vector) named nm */
static void add(tensors *ts, const char *nm, int rows, int cols, float scale) {
    int i = ts->n++;
    snprintf(ts->names[i], sizeof ts->names[i], "%s", nm);
    ts->data[i] = rnd((size_t)rows * (cols ? cols : 1), scale);
    ts->t[i] = (lathe_st_tensor){ts->names[i], ts->data[i], {rows, cols}, cols ? 2 : 1, 0};
}

/* A 2-layer, 64-wide BERT with 4 heads and a vocabulary of the texts' words, in dir. */
static int write_small_bert(const char *dir) {
    enum { D = 64, I = 128, V = 64, P = 128, L = 2 };
    char path[512];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"model_type\": \"bert\", \"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": 4, "
               "\"intermediate_size\": %d, \"vocab_size\": %d, \"max_position_embeddings\": %d, \"hidden_act\": "
               "\"gelu\", \"layer_norm_eps\": 1e-12}\n", D, L, I, V, P);
    fclose(f);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (!(f = fopen(path, "w"))) return -1;
    const char *words[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "thin", "scratch", "near", "the",
                           "left", "edge", "an", "gear", "with", "teeth", "on", "dark", "belt", ",", "no", "at",
                           "all", "dent", "two", "and", "oil", "hole", "of", "center", "##s", "out", "focus"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) fprintf(f, "%s\n", words[i]);
    fclose(f);
    tensors ts = {0};
    add(&ts, "embeddings.word_embeddings.weight", V, D, 1);
    add(&ts, "embeddings.position_embeddings.weight", P, D, 0.5f);
    add(&ts, "embeddings.token_type_embeddings.weight", 2, D, 0.5f);
    add(&ts, "embeddings.LayerNorm.weight", D, 0, 1);
    add(&ts, "embeddings.LayerNorm.bias", D, 0, 0.1f);
    for (int l = 0; l < L; l++) {
        const char *parts[] = {"attention.self.query", "attention.self.key", "attention.self.value",
                               "attention.output.dense", "intermediate.dense", "output.dense"};
        char nm[96];
        for (int p = 0; p < 6; p++) {
            int rows = p == 4 ? I : D, cols = p == 5 ? I : D;
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s.weight", l, parts[p]);
            add(&ts, nm, rows, cols, 0.15f);
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s.bias", l, parts[p]);
            add(&ts, nm, rows, 0, 0.1f);
        }
        const char *norms[] = {"attention.output.LayerNorm", "output.LayerNorm"};
        for (int k = 0; k < 2; k++) {
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s.weight", l, norms[k]);
            add(&ts, nm, D, 0, 1);
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s.bias", l, norms[k]);
            add(&ts, nm, D, 0, 0.1f);
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = lathe_st_write(path, ts.t, (size_t)ts.n, NULL, 0);
    for (int i = 0; i < ts.n; i++) free(ts.data[i]);
    return rc;
}

/* Embeds the texts (repeated `copies` times) on both devices; compares; times each. */
static void compare_model(const char *what, const char *dir, int copies) {
    lathe_text_encoder *cpu = NULL, *gpu = NULL;
    if (lathe_text_encoder_open(dir, "cpu", &cpu) || lathe_text_encoder_open(dir, "cuda", &gpu)) {
        printf("FAIL %s: %s\n", what, lathe_last_error());
        failures++;
        lathe_text_encoder_free(cpu);
        return;
    }
    size_t n = (size_t)NT * copies, d = (size_t)lathe_text_encoder_dim(cpu);
    const char **many = malloc(n * sizeof *many);
    for (size_t i = 0; i < n; i++) many[i] = texts[i % NT];
    float *a = malloc(n * d * sizeof *a), *b = malloc(n * d * sizeof *b);
    double t0 = gputest_now();
    int rc = lathe_text_encode(cpu, many, n, 64, a);
    double t1 = gputest_now();
    rc = rc ? rc : lathe_text_encode(gpu, many, n, 64, b); /* the first GPU call warms up */
    double t2 = gputest_now();
    rc = rc ? rc : lathe_text_encode(gpu, many, n, 64, b);
    double t3 = gputest_now();
    double err = rc ? INFINITY : gputest_worst_error(a, b, n * d);
    int ok = !rc && err < 2e-5;
    failures += !ok;
    printf("%s %s: %zu texts, worst error %.2e; CPU %.0f texts/s, GPU %.0f texts/s (first call %.3f s)%s%s\n",
           ok ? "ok  " : "FAIL", what, n, err, n / (t1 - t0), n / (t3 - t2), t2 - t1, rc ? ": " : "",
           rc ? lathe_last_error() : "");
    free(a), free(b), free(many);
    lathe_text_encoder_free(cpu), lathe_text_encoder_free(gpu);
}

int main(void) {
    const char *reason = NULL;
    if (!lathe_k_cuda_available(&reason)) {
        printf("SKIP text parity: %s\n", reason);
        return 0;
    }
    char dir[] = "/tmp/lathe-text-parity-XXXXXX";
    if (!mkdtemp(dir) || write_small_bert(dir)) {
        printf("FAIL text parity: cannot write the small model\n");
        return 1;
    }
    compare_model("small BERT (random weights)", dir, 1);
    char real[4096];
    if (!lathe_text_model_find(NULL, real, sizeof real)) compare_model("all-MiniLM-L6-v2", real, 64);
    else printf("SKIP all-MiniLM-L6-v2: %s\n", lathe_last_error());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("(could not remove %s)\n", dir);
    printf("text parity: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
#else
int main(void) {
    printf("SKIP text parity: lathe was built without CUDA\n");
    return 0;
}
#endif
