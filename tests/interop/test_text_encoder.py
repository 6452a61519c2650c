"""lathe embed --text-file against a reference forward of all-MiniLM-L6-v2 written here in numpy from
the same safetensors weights, with token ids from the `tokenizers` package (an oracle independent of
lathe's tokenizer): cosine >= 0.9999 per sentence. Also: shapes, batch independence, bad inputs."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from scipy.special import erf

from fixtures import LATHE, lathe, needs_text_model
from fixtures import TEXT_MODEL as MODEL

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_text_model

SENTENCES = [
    "a thin scratch near the left edge of a steel flange",
    "An aluminium gear with 14 teeth on a dark rubber belt, with no visible defects",
    "",
    "Oil on the belt!!! (possibly hydraulic fluid?)",
    "Größe: 3.5mm × 12kg/m² at 10°C — café naïve Ångström",
    "中文 日本語のテキスト 한국어 😀🔧",
    "crack " * 400,  # longer than 256 tokens: truncated
    "x",
    "A shallow dent near the upper right and two jagged cracks near the center, slightly out of focus",
]


def reference(texts, max_tokens=256):
    """all-MiniLM-L6-v2 in numpy: BERT embeddings, 6 post-norm layers, masked mean, L2 norm."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(MODEL) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    w = load_file(str(Path(MODEL) / "model.safetensors"))
    cfg = json.loads((Path(MODEL) / "config.json").read_text())
    heads, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]

    def ln(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * g + b

    out = []
    for text in texts:
        ids = np.array(tok.encode(text).ids)
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = ln(x.astype(np.float64), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(v, name):
                return v @ w[p + name + ".weight"].T.astype(np.float64) + w[p + name + ".bias"]

            q, k, v = (lin(x, f"attention.self.{s}") for s in ("query", "key", "value"))
            d = x.shape[1] // heads
            ctx = np.zeros_like(x)
            for h in range(heads):
                sl = slice(h * d, (h + 1) * d)
                s = q[:, sl] @ k[:, sl].T / np.sqrt(d)
                s = np.exp(s - s.max(1, keepdims=True))
                ctx[:, sl] = (s / s.sum(1, keepdims=True)) @ v[:, sl]
            x = ln(lin(ctx, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"],
                   w[p + "attention.output.LayerNorm.bias"])
            f = lin(x, "intermediate.dense")
            f = 0.5 * f * (1 + erf(f / np.sqrt(2)))
            x = ln(lin(f, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        e = x.mean(0)
        out.append(e / np.linalg.norm(e))
    return np.array(out)


def embed(tmp_path, texts, *args, name="texts.txt"):
    f = tmp_path / name
    f.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / (name + ".npy")
    lathe("embed", "--text-file", f, "-o", out, "--text-model", MODEL, *args)
    return np.load(out)


@pytest.fixture(scope="module")
def ref():
    return reference(SENTENCES)


@pytest.mark.parametrize("batch", ["1", "4", "64"])
def test_matches_numpy_reference(tmp_path, ref, batch):
    got = embed(tmp_path, SENTENCES, "--batch", batch)
    assert got.dtype == np.float32 and got.shape == (len(SENTENCES), 384)
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999, list(zip(cos, SENTENCES))
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_default_model_is_found_and_meaning_is_kept(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("a scratch on the steel housing\na scratched metal housing\nthe weather is sunny today\n")
    out = tmp_path / "t.npy"
    env = {k: v for k, v in os.environ.items() if k not in ("LATHE_TEXT_MODEL", "VIRTUAL_ENV")}
    lathe("embed", "--text-file", f, "-o", out, env=env)  # no --text-model: the .venv package
    e = np.load(out)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # related phrases are closer than unrelated ones


def test_stdin_crlf_and_invalid_utf8(tmp_path):
    raw = b"a dent\r\nbad \xff\xfe bytes\n"
    p = subprocess.run([LATHE, "embed", "--text-file", "-", "-o", tmp_path / "s.npy", "--text-model", MODEL],
                       input=raw, capture_output=True)
    assert p.returncode == 0, p.stderr
    e = np.load(tmp_path / "s.npy")
    assert e.shape == (2, 384) and np.isfinite(e).all()
    assert e[0] @ embed(tmp_path, ["a dent"])[0] > 0.99999


def test_nul_bytes_are_dropped_not_the_end_of_the_line(tmp_path):
    """BERT's normalizer drops NUL bytes (the tokenizers package too): a line with one embeds as the
    line without it. lathe embedded only the text before the first NUL ("steel", cosine 0.47)."""
    (tmp_path / "nul.txt").write_bytes(b"steel\x00 scratch on the left door\n\x00a dent\n")
    lathe("embed", "--text-file", tmp_path / "nul.txt", "-o", tmp_path / "nul.npy", "--text-model", MODEL)
    got = np.load(tmp_path / "nul.npy")
    want = embed(tmp_path, ["steel scratch on the left door", "a dent"])
    assert (got * want).sum(1).min() > 0.99999


def test_bad_inputs_fail_clearly(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    p = lathe("embed", "--text-file", empty, "-o", tmp_path / "e.npy", "--text-model", MODEL, check=False)
    assert p.returncode == 1 and "no text lines" in p.stderr
    p = lathe("embed", "--text-file", tmp_path / "missing.txt", "-o", tmp_path / "e.npy", "--text-model", MODEL,
              check=False)
    assert p.returncode == 1 and "missing.txt" in p.stderr
    p = lathe("embed", "--text-file", empty, "-o", tmp_path / "e.npy", "--text-model", tmp_path, check=False)
    assert p.returncode == 1 and "no model.safetensors" in p.stderr
    p = lathe("embed", "-o", tmp_path / "e.npy", check=False)
    assert p.returncode == 2

    # a model folder whose config disagrees with its weights, and one with truncated weights
    bad = tmp_path / "bad"
    shutil.copytree(MODEL, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["intermediate_size"] = 1000
    (bad / "config.json").write_text(json.dumps(cfg))
    f = tmp_path / "one.txt"
    f.write_text("hello\n")
    p = lathe("embed", "--text-file", f, "-o", tmp_path / "e.npy", "--text-model", bad, check=False)
    assert p.returncode == 1 and "intermediate.dense.weight" in p.stderr, p.stderr
    cfg["intermediate_size"], cfg["hidden_act"] = 1536, "relu"
    (bad / "config.json").write_text(json.dumps(cfg))
    p = lathe("embed", "--text-file", f, "-o", tmp_path / "e.npy", "--text-model", bad, check=False)
    assert p.returncode == 1 and "hidden_act relu" in p.stderr
    cfg["hidden_act"], cfg["num_hidden_layers"] = "gelu", 1e40  # once an undefined cast to int
    (bad / "config.json").write_text(json.dumps(cfg))
    p = lathe("embed", "--text-file", f, "-o", tmp_path / "e.npy", "--text-model", bad, check=False)
    assert p.returncode == 1 and "num_hidden_layers" in p.stderr, p.stderr
    cfg["num_hidden_layers"] = 6
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "sentence_bert_config.json").write_text('{"max_seq_length": 1e40}')  # no limit: the model's own
    p = lathe("embed", "--text-file", f, "-o", tmp_path / "e.npy", "--text-model", bad, check=False)
    assert p.returncode == 0, p.stderr
    (tmp_path / "e.npy").unlink()
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    p = lathe("embed", "--text-file", f, "-o", tmp_path / "e.npy", "--text-model", bad, check=False)
    assert p.returncode == 1 and "model.safetensors" in p.stderr
    assert not (tmp_path / "e.npy").exists()
