"""lathe's YAML scalars against PyYAML's (tests/tools/yaml_values: lathe_config_parse, whose block
and single-quoted scalars are read from the text by libcore/base/yaml_check.c and yaml_block.c,
as libfyaml 0.7.12 misreads some: docs/RELIABILITY.md, findings 21 and 23). Texts are generated from
a fixed seed: block scalars under every kind of parent (root, mapping, sequence, nested, with
properties) with every header (style, chomping, indentation indicator, comment), over lines of
spaces, tabs, text, comments and \\r\\n; and single-quoted scalars with '' runs and folded lines.
Where both read a text, the values must be equal; where PyYAML reads one and lathe refuses it, the
refusal must be libfyaml's own parser's, never lathe's block scalar reader's."""
import json
import os
import random
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("LATHE_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
TOOL = BUILD / "tests" / "tools" / "yaml_values"

BLOCK_READER = "a block scalar (| or >) that lathe cannot read"


def lathe_values(texts):
    """One result per text: the parsed value, or ("ERR", message)."""
    data = "\0".join(texts).encode("utf-8")
    p = subprocess.run([str(TOOL)], input=data, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    lines = p.stdout.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(texts) + 1, (len(lines), len(texts))
    return [("ERR", line[4:]) if line.startswith("ERR ") else json.loads(line) for line in lines[:-1]]


def pyyaml_value(text):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return ("ERR", None)


def block_texts(rnd, n):
    heads = ["a: ", "- ", "", "a:\n  b: ", "- - ", "- k: ", "a:\n  - ", '"q": ', "&p a: ", "- !t ", "a: &q ",
             "-\n  ", "a:\n- \n  "]
    lines = [" ", "  ", "   ", "\n", "\t", "x", "y z", "#", "\r\n", "    w", " # c", "\u00e9t\u00e9"]
    out = []
    for _ in range(n):
        header = rnd.choice("|>") + rnd.choice(["", "-", "+", "1", "2", "3", "2-", "+1"]) + rnd.choice(["", " # c"])
        body = "".join(rnd.choice(lines) for _ in range(rnd.randint(0, 10)))
        if rnd.random() < 0.5:
            body = "\n" + body
        out.append(rnd.choice(heads) + header + body + rnd.choice(["", "", "\nb: 1", "\n- 2"]))
    return out


def quoted_texts(rnd, n):
    places = [("a: ", ""), ("- ", ""), ("a: [", "]"), ("{k: ", "}"), ("", ": 1")]  # a quoted key last
    pieces = ["x", "''", "''''", " ", "  ", "\n", "\n\n", "\n  ", "\t", "\r\n", "y z", "\u00fc"]
    out = []
    for _ in range(n):
        head, tail = rnd.choice(places)
        out.append(head + "'" + "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8))) + "'" + tail)
    return out


def compare(texts):
    both = 0
    for text, mine in zip(texts, lathe_values(texts)):
        theirs = pyyaml_value(text)
        if theirs == ("ERR", None):
            continue
        if isinstance(mine, tuple):
            assert BLOCK_READER not in mine[1], (text, mine[1], theirs)
            continue
        assert mine == theirs, (text, mine, theirs)
        both += 1
    return both


def test_block_scalars_equal_pyyaml():
    texts = block_texts(random.Random(52), 8000)
    assert compare(texts) > 2000  # most texts are invalid YAML for one of the two; enough are read by both


def test_single_quoted_scalars_equal_pyyaml():
    texts = quoted_texts(random.Random(21), 3000)
    assert compare(texts) > 1000


def test_block_scalars_lathe_refuses_are_refused_by_pyyaml():
    texts = ["a:\n  b: >-\n  x\n", "names:\n  - |\n  x", "- >+1# #x", "x: 1\ny:\n  - |\n  z: 2"]
    for text, mine in zip(texts, lathe_values(texts)):
        assert isinstance(mine, tuple) and BLOCK_READER in mine[1], (text, mine)
        assert pyyaml_value(text) == ("ERR", None), text
