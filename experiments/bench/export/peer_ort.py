"""The onnxruntime side of the export benchmark (run.sh beside this file): the exported model on the
CPU execution provider with the same threads, timed over whole batches of random input.
    peer_ort.py MODEL.onnx BATCH REPS THREADS
Prints one JSON line: batch, ms_per_batch (median of REPS after 3 warm-ups), images_per_s, ort."""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

model, batch, reps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
shape = [batch] + [d for d in sess.get_inputs()[0].shape[1:]]
x = np.random.default_rng(1).random(shape, dtype=np.float32)
times = []
for r in range(reps + 3):
    t0 = time.perf_counter()
    sess.run(None, {"images": x})
    if r >= 3:
        times.append((time.perf_counter() - t0) * 1e3)
med = statistics.median(times)
print(json.dumps({"batch": batch, "ms_per_batch": round(med, 3), "images_per_s": round(batch * 1e3 / med, 2),
                  "ort": ort.__version__}))
