"""PyTorch's side of the training benchmark: builds the same model as lathe from the same spec
(the primitive layer types of docs/TRAINING.md, read from `bench_train SPEC --model-json`: blocks
expanded, bases merged), then times training steps (forward, loss, backward, SGD with momentum) on
random data at the same batch and thread count, fp32, eager mode after warm-up. The loss is
cross-entropy for a classifier; for a detector (`detect`) a stand-in of the same shape and a
lighter cost than lathe's real one: BCE on every class logit plus cross-entropy of every side's
distance distribution (no target assignment), which can only favour PyTorch. Prints one JSON line:
images_per_s, step_ms, peak_rss_mib, params, and on a GPU peak_gpu_mib (the allocator's peak).

usage: python3 peer_torch.py MODEL.json BATCH STEPS THREADS [DEVICE [PRECISION [MODE]]]
  DEVICE cpu (default) or cuda; PRECISION fp32 (default) or bf16 (autocast, as lathe's mixed
  precision); MODE eager (default) or compile (torch.compile of the model, compiled in warm-up)"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Graph(nn.Module):
    def __init__(self, model):
        super().__init__()
        c, h, w = model["input"]
        shapes, self.names, self.steps = [(c, h, w)], ["input"], []
        self.mods = nn.ModuleDict()
        for i, d in enumerate(model["layers"]):
            name = d.get("name", f"layers.{i}")
            frm = d.get("from", -1)
            frm = frm if isinstance(frm, list) else [frm]
            ins = [len(shapes) + f if isinstance(f, int) and f < 0 else (f + 1 if isinstance(f, int) else self.names.index(f))
                   for f in frm]
            c, h, w = shapes[ins[0]]
            t, key = d["type"], name.replace(".", "_")
            if t == "conv":
                k, s = d.get("k", 3), d.get("stride", 1)
                p, g = d.get("pad", (k - 1) // 2), d.get("groups", 1)
                g = c if g == -1 else g
                self.mods[key] = nn.Conv2d(c, d["out"], k, s, p, groups=g, bias=bool(d.get("bias", 1)))
                c, h, w = d["out"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif t == "bn":
                self.mods[key] = nn.BatchNorm2d(c)
            elif t in ("relu", "silu", "gelu", "sigmoid", "leaky"):
                self.mods[key] = {"relu": nn.ReLU(), "silu": nn.SiLU(), "gelu": nn.GELU(), "sigmoid": nn.Sigmoid(),
                                  "leaky": nn.LeakyReLU(d.get("slope", 0.1))}[t]
            elif t in ("maxpool", "avgpool"):
                k, s, p = d.get("k", 2), d.get("stride", d.get("k", 2)), d.get("pad", 0)
                self.mods[key] = (nn.MaxPool2d if t == "maxpool" else nn.AvgPool2d)(k, s, p)
                h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif t == "gap":
                self.mods[key] = nn.AdaptiveAvgPool2d(1)
                h = w = 1
            elif t == "upsample":
                f = d.get("factor", 2)
                self.mods[key] = nn.Upsample(scale_factor=f, mode="nearest")
                h, w = h * f, w * f
            elif t == "concat":
                c = sum(shapes[j][0] for j in ins)
            elif t == "linear":
                self.mods[key] = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, d["out"] if d["out"] != "classes" else model["classes"]))
                c, h, w = self.mods[key][1].out_features, 1, 1
            elif t == "dropout":
                self.mods[key] = nn.Dropout(d.get("p", 0.5))
            elif t == "detect":  # per anchor of every level: (N, A, K)
                c, h, w = 1, sum(shapes[j][1] * shapes[j][2] for j in ins), c
            elif t != "add":
                raise ValueError(f"layer type {t} is not in the benchmark peer")
            self.steps.append((t, key, ins))
            shapes.append((c, h, w))
            self.names.append(name)

    def forward(self, x):
        outs = [x]
        for t, key, ins in self.steps:
            if t == "concat":
                y = torch.cat([outs[j] for j in ins], 1)
            elif t == "detect":
                y = torch.cat([outs[j].flatten(2).transpose(1, 2) for j in ins], 1)
            elif t == "add":
                y = outs[ins[0]]
                for j in ins[1:]:
                    y = y + outs[j]
            else:
                y = self.mods[key](outs[ins[0]])
            outs.append(y)
        return outs[-1]


def main():
    spec, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    device, precision, mode = (sys.argv[5:] + ["cpu", "fp32", "eager"][len(sys.argv[5:]):])[:3]
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = json.load(open(spec))
    net = Graph(model).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    run = torch.compile(net) if mode == "compile" else net
    c, h, w = model["input"]
    x = (torch.rand(batch, c, h, w) * 2 - 1).to(device)
    y = (torch.arange(batch) % model["classes"]).to(device)
    gpu = device.startswith("cuda")
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    detector = model["layers"][-1]["type"] == "detect"
    bins, classes = model.get("bins", 16), model["classes"]
    for i in range(-2, steps):
        if i == 0:
            sync()
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.split(":")[0], torch.bfloat16, enabled=precision == "bf16"):
            out = run(x)
        out = out.float()
        if detector:  # stand-in loss: every class logit and every side's distance distribution
            n, a, _ = out.shape
            cls = out[..., 4 * bins:]
            sides = out[..., :4 * bins].reshape(n * a * 4, bins)
            loss = F.binary_cross_entropy_with_logits(cls, torch.zeros_like(cls)) + \
                F.cross_entropy(sides, torch.arange(n * a * 4, device=device) % bins)
        else:
            loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
    sync()
    dt = time.perf_counter() - t0
    result = {"images_per_s": batch * steps / dt, "step_ms": 1000 * dt / steps,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "params": sum(p.numel() for p in net.parameters()), "torch": torch.__version__,
              "device": device, "precision": precision, "mode": mode}
    if gpu:
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
