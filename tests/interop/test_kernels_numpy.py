"""The forward passes of the CPU nn kernels (kernels/nn.h, float32 build) against independent numpy
implementations, called through ctypes on build/liblathe_nn.so: convolution (stride, padding,
dilation, groups, bias), linear, batch norm (train statistics and eval), layer norm, every
activation, max and average pooling, nearest upsampling, softmax cross-entropy with label
smoothing and BCE with logits. (Backward passes are checked against finite differences in
tests/unit/test_nn_kernels.c.)"""
import ctypes
import math
import os
from pathlib import Path

import numpy as np
import pytest

BUILD = Path(os.environ.get("LATHE_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = Path(__file__).resolve().parents[2] / BUILD
LIB = ctypes.CDLL(str(BUILD / "liblathe_nn.so"))
F = ctypes.POINTER(ctypes.c_float)
I32 = ctypes.POINTER(ctypes.c_int32)
RELU, LEAKY, SILU, GELU, SIGMOID = range(5)


class ConvShape(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int) for k in
                ("n", "c", "h", "w", "k", "r", "s", "stride", "pad", "dilation", "groups", "p", "q", "threads")]


def fp(a):
    return a.ctypes.data_as(F)


def f32(*shape, rng):
    return rng.standard_normal(shape).astype(np.float32)


def conv_numpy(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    p = (h + 2 * pad - dil * (r - 1) - 1) // stride + 1
    q = (wd + 2 * pad - dil * (s - 1) - 1) // stride + 1
    out = np.zeros((n, k, p, q))
    kg = k // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(r):
            for j in range(s):
                patch = xs[:, :, i * dil:i * dil + stride * p:stride, j * dil:j * dil + stride * q:stride]
                out[:, g * kg:(g + 1) * kg] += np.einsum("ncpq,kc->nkpq", patch, w[g * kg:(g + 1) * kg, :, i, j])
    return out + (b[None, :, None, None] if b is not None else 0)


@pytest.mark.parametrize("n,c,h,w,k,r,stride,pad,dil,groups,bias", [
    (2, 3, 9, 7, 4, 3, 1, 1, 1, 1, True), (2, 4, 10, 10, 6, 3, 2, 1, 1, 2, False),
    (1, 2, 11, 9, 3, 3, 1, 2, 2, 1, True), (2, 6, 8, 8, 6, 3, 1, 1, 1, 6, True),
    (3, 5, 6, 6, 7, 1, 1, 0, 1, 1, True), (1, 3, 13, 13, 4, 5, 3, 2, 1, 1, True)])
def test_conv2d(n, c, h, w, k, r, stride, pad, dil, groups, bias):
    rng = np.random.default_rng(n * 100 + c)
    x, wt = f32(n, c, h, w, rng=rng), f32(k, c // groups, r, r, rng=rng)
    b = f32(k, rng=rng) if bias else None
    want = conv_numpy(x, wt, b, stride, pad, dil, groups)
    s = ConvShape(n, c, h, w, k, r, r, stride, pad, dil, groups, want.shape[2], want.shape[3], 2)
    LIB.lathe_k_conv_workspace.restype = ctypes.c_size_t
    ws = np.zeros(LIB.lathe_k_conv_workspace(ctypes.byref(s)), np.float32)
    y = np.zeros(want.shape, np.float32)
    LIB.lathe_k_conv2d_fwd_f32(ctypes.byref(s), fp(x), fp(wt), fp(b) if bias else None, fp(y), fp(ws))
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_linear():
    rng = np.random.default_rng(1)
    x, w, b = f32(5, 7, rng=rng), f32(3, 7, rng=rng), f32(3, rng=rng)
    y = np.zeros((5, 3), np.float32)
    LIB.lathe_k_linear_fwd_f32(5, 7, 3, fp(x), fp(w), fp(b), fp(y))
    np.testing.assert_allclose(y, x.astype(np.float64) @ w.T + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("train", [1, 0])
def test_batchnorm(train):
    rng = np.random.default_rng(2)
    n, c, hw = 4, 3, 10
    x = f32(n, c, hw, rng=rng) * 3 + 1
    gamma, beta = f32(c, rng=rng), f32(c, rng=rng)
    rm, rv = f32(c, rng=rng), np.abs(f32(c, rng=rng)) + 0.5
    rm0, rv0 = rm.copy(), rv.copy()
    sm, si, y = np.zeros(c, np.float32), np.zeros(c, np.float32), np.zeros_like(x)
    LIB.lathe_k_bn_fwd_f32(n, c, hw, fp(x), fp(gamma), fp(beta), fp(rm), fp(rv), ctypes.c_float(0.1),
                           ctypes.c_float(1e-5), train, fp(sm), fp(si), fp(y))
    xd = x.astype(np.float64)
    if train:
        mean, var = xd.mean(axis=(0, 2)), xd.var(axis=(0, 2))
        np.testing.assert_allclose(rm, 0.9 * rm0 + 0.1 * mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rv, 0.9 * rv0 + 0.1 * var * n * hw / (n * hw - 1), rtol=1e-5, atol=1e-6)
    else:
        mean, var = rm0.astype(np.float64), rv0.astype(np.float64)
    want = (xd - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-5) * gamma[None, :, None] + beta[None, :, None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_layernorm():
    rng = np.random.default_rng(3)
    x, g, b = f32(4, 9, rng=rng), f32(9, rng=rng), f32(9, rng=rng)
    mean, inv, y = np.zeros(4, np.float32), np.zeros(4, np.float32), np.zeros_like(x)
    LIB.lathe_k_layernorm_fwd_f32(4, 9, fp(x), fp(g), fp(b), ctypes.c_float(1e-5), fp(mean), fp(inv), fp(y))
    xd = x.astype(np.float64)
    want = (xd - xd.mean(1, keepdims=True)) / np.sqrt(xd.var(1, keepdims=True) + 1e-5) * g + b
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_activations():
    x = np.linspace(-6, 6, 1001).astype(np.float32)
    xd = x.astype(np.float64)
    sig = 1 / (1 + np.exp(-xd))
    erf = np.vectorize(math.erf)
    want = {RELU: np.maximum(xd, 0), LEAKY: np.where(xd > 0, xd, 0.1 * xd), SILU: xd * sig,
            GELU: 0.5 * xd * (1 + erf(xd / np.sqrt(2))), SIGMOID: sig}
    for act, w in want.items():
        y = np.zeros_like(x)
        LIB.lathe_k_act_fwd_f32(act, ctypes.c_size_t(x.size), fp(x), ctypes.c_float(0.1), fp(y))
        np.testing.assert_allclose(y, w, rtol=1e-5, atol=1e-6, err_msg=f"activation {act}")


def pool_numpy(x, k, stride, pad, kind):
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    p, q = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = np.zeros((n, c, p, q))
    for i in range(p):
        for j in range(q):
            win = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.sum(axis=(2, 3)) / (k * k)
    return out


@pytest.mark.parametrize("k,stride,pad", [(2, 2, 0), (3, 2, 1), (5, 1, 2)])
def test_pooling(k, stride, pad):
    rng = np.random.default_rng(4)
    x = f32(2, 3, 9, 8, rng=rng)
    for kind in ("max", "avg"):
        want = pool_numpy(x, k, stride, pad, kind)
        y = np.zeros(want.shape, np.float32)
        if kind == "max":
            arg = np.zeros(want.shape, np.int32)
            LIB.lathe_k_maxpool_fwd_f32(2, 3, 9, 8, k, stride, pad, want.shape[2], want.shape[3], fp(x), fp(y),
                                        arg.ctypes.data_as(I32))
        else:
            LIB.lathe_k_avgpool_fwd_f32(2, 3, 9, 8, k, stride, pad, want.shape[2], want.shape[3], fp(x), fp(y))
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6, err_msg=kind)


def test_upsample():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = np.zeros((2, 3, 12, 15), np.float32)
    LIB.lathe_k_upsample_fwd_f32(2, 3, 4, 5, 3, fp(x), fp(y))
    np.testing.assert_array_equal(y, x.repeat(3, axis=2).repeat(3, axis=3))


def test_losses():
    rng = np.random.default_rng(5)
    z = f32(6, 4, rng=rng) * 3
    labels = np.array([0, 3, -1, 2, 1, 1], np.int32)
    LIB.lathe_k_softmax_ce_f32.restype = ctypes.c_double
    got = LIB.lathe_k_softmax_ce_f32(6, 4, fp(z), labels.ctypes.data_as(I32), ctypes.c_float(0.1), None)
    zd = z.astype(np.float64)
    logp = zd - np.log(np.exp(zd).sum(1, keepdims=True))
    keep = labels >= 0
    target = np.full((6, 4), 0.1 / 4)
    target[np.arange(6), np.maximum(labels, 0)] += 0.9
    want = -(target * logp).sum(1)[keep].mean()
    assert got == pytest.approx(want, rel=1e-6)
    t = rng.random(20).astype(np.float32)
    x = f32(20, rng=rng) * 4
    LIB.lathe_k_bce_logits_f32.restype = ctypes.c_double
    got = LIB.lathe_k_bce_logits_f32(ctypes.c_size_t(20), fp(x), fp(t), None)
    xd = x.astype(np.float64)
    want = np.mean(-(t * np.log(1 / (1 + np.exp(-xd))) + (1 - t) * np.log(1 - 1 / (1 + np.exp(-xd)))))
    assert got == pytest.approx(want, rel=1e-6)


def test_multi_head_attention():
    rng = np.random.default_rng(6)
    b, l, d, h = 2, 7, 8, 2
    x, w, bias = f32(b, l, d, rng=rng), f32(4, d, d, rng=rng) * 0.5, f32(4, d, rng=rng)
    LIB.lathe_k_mha_saved.restype = ctypes.c_size_t
    saved = np.zeros(LIB.lathe_k_mha_saved(b, l, d, h), np.float32)
    y = np.zeros((b, l, d), np.float32)
    w_out, b_out = np.ascontiguousarray(w[3]), np.ascontiguousarray(bias[3])
    LIB.lathe_k_mha_fwd_f32(b, l, d, h, fp(x), fp(w), fp(bias), fp(w_out), fp(b_out), fp(saved), fp(y))
    xd, wd, bd = x.astype(np.float64), w.astype(np.float64), bias.astype(np.float64)
    q, k, v = (xd @ wd[i].T + bd[i] for i in range(3))
    dh = d // h
    heads = []
    for hi in range(h):
        sl = slice(hi * dh, (hi + 1) * dh)
        s = q[:, :, sl] @ k[:, :, sl].transpose(0, 2, 1) / np.sqrt(dh)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        heads.append(p @ v[:, :, sl])
    want = np.concatenate(heads, -1) @ wd[3].T + bd[3]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def nms_numpy(boxes, scores, classes, iou_thr, score_thr, max_out):
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= score_thr]
    keep = []
    for i in order:
        if len(keep) == max_out:
            break
        ok = True
        for k in keep:
            if classes[k] != classes[i]:
                continue
            a, b = boxes[k].astype(np.float32), boxes[i].astype(np.float32)
            w = np.float32(min(a[2], b[2]) - max(a[0], b[0]))
            h = np.float32(min(a[3], b[3]) - max(a[1], b[1]))
            if w <= 0 or h <= 0:
                continue
            inter = np.float32(w * h)
            ua = np.float32(np.float32((a[2] - a[0]) * (a[3] - a[1])) + np.float32((b[2] - b[0]) * (b[3] - b[1])) - inter)
            if np.float32(inter / ua) > np.float32(iou_thr):
                ok = False
                break
        if ok:
            keep.append(int(i))
    return keep


@pytest.mark.parametrize("seed,n,iou,score_thr,max_out", [(1, 300, 0.5, 0.0, 1000), (2, 500, 0.3, 0.2, 50),
                                                           (3, 50, 0.7, 0.0, 5), (4, 0, 0.5, 0.0, 10)])
def test_nms(seed, n, iou, score_thr, max_out):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 60, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = np.round(rng.random(n), 2).astype(np.float32)  # rounded: many ties
    classes = rng.integers(0, 3, n).astype(np.int32)
    keep = np.zeros(max(n, 1), np.int32)
    got = LIB.lathe_k_nms_cpu(fp(boxes), fp(scores), classes.ctypes.data_as(I32), n, ctypes.c_float(iou),
                              ctypes.c_float(score_thr), max_out, keep.ctypes.data_as(I32))
    assert list(keep[:got]) == nms_numpy(boxes, scores, classes, iou, score_thr, max_out)
