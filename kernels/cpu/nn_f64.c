/* nn_f64.c - the same kernels in double precision, for the finite-difference gradient tests. */
#include <cblas.h>

#include "kernels/nn.h"

#define T double
#define SUF _f64
#define GEMM cblas_dgemm
#include "nn_ops.inc"
