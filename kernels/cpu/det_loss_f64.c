/* det_loss_f64.c - the same losses in double precision, for the finite-difference tests. */
#include "kernels/det_loss.h"

#define T double
#define SUF _f64
#include "det_loss.inc"
