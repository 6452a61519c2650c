/* det_loss_f32.c - the float32 detection losses of det_loss.h (training). */
#include "kernels/det_loss.h"

#define T float
#define SUF _f32
#include "det_loss.inc"
