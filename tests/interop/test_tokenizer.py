"""lathe's WordPiece tokenizer (libcore/mm/wordpiece.c, through tests/tools/tokenize) against the
Python `tokenizers` package on all-MiniLM-L6-v2's tokenizer.json (no padding, truncation to max_len):
equal ids for English, accents, German, CJK, emoji, units, punctuation runs, case, Turkish, Greek,
control and zero-width characters, long texts and words, literal special tokens, 200 random strings,
every Unicode code point, truncation at several lengths, invalid UTF-8 and NUL bytes (as U+FFFD,
dropped), a folder with vocab.txt alone, and added tokens of every kind (normalized, single_word,
lstrip/rstrip, new ids). Skipped only when the model folder is not installed (make deps installs it)."""
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

from tokenizers import Tokenizer

from fixtures import TEXT_MODEL, needs_text_model

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("LATHE_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
TOOL = BUILD / "tests" / "tools" / "tokenize"


MODEL = TEXT_MODEL
pytestmark = needs_text_model


def lathe_ids(texts, max_len, model=None):
    """Runs the C tokenizer; texts are str or bytes, without '\\n'."""
    lines = [t if isinstance(t, bytes) else t.encode("utf-8") for t in texts]
    assert not any(b"\n" in line for line in lines)
    p = subprocess.run([str(TOOL), str(model or MODEL), str(max_len)], input=b"".join(x + b"\n" for x in lines),
                       capture_output=True)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = p.stdout.decode().split("\n")
    assert out[-1] == "" and len(out) == len(lines) + 1, (len(out), len(lines))
    return [[int(x) for x in line.split()] for line in out[:-1]]


def oracle(max_len, path=None):
    tok = Tokenizer.from_file(str(path or MODEL / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    return tok


def check(texts, max_len=256, model=None, tok=None, oracle_texts=None):
    tok = tok or oracle(max_len)
    want = [e.ids for e in tok.encode_batch(oracle_texts or texts)]
    got = lathe_ids(texts, max_len, model)
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ, first: " + "\n".join(
        f"{t[:200]!r}\n  lathe:      {g[:40]}\n  tokenizers: {w[:40]}" for t, g, w in bad[:5])


WORDS = ("the conveyor belt jammed near station 4 and a scratch 3.5mm long was found on the housing of part "
         "A-113 ; operator reported misaligned labels , dented cans , missing caps and a cracked weld seam "
         "( see photo ) before the 10°C cold-room door").split()

CASES = [
    "Scratch on the left door panel, about 3 cm long.",
    "Dent near the rear bumper; paint chipped (2 spots).",
    "The conveyor stopped at 14:32 — operator restarted it.",
    "Missing screw in bracket #4 of assembly line B.",
    "café naïve Ångström résumé Zoë coöperate façade",
    "Größe Straße Übermäßig ÄÖÜ äöü ß ẞ",
    "中文 日本語のテキスト 한국어 漢字かなカナ 𠀋𪚲 丽",
    "😀🔧 ©®™ ½ ¼ ¾ € £ ¥ § ¶ • … ‰ ← → ✓ ✗ 👍🏽 ❤️ 👨‍👩‍👧",
    "3.5mm 12kg/m² 10°C 1,000,000 -4.2e-3 50% $19.99 #42 3×4 1/2",
    "!!!??? ... -- (a)[b]{c} <x> \"quoted\" 'single' a_b a-b a.b.c ,,, ;;",
    "HeLLo WoRLD hELLO UPPER lower MiXeD",
    "İstanbul ISTANBUL ıi İi",
    "ΣΊΣΥΦΟΣ σίσυφος ς Ω ά ΰ",
    "tab\tseparated\tvalues\r",
    "ctrl\x01\x02\x07\x0b\x0c\x1b\x7fchars\x1c\x1d\x1e\x1f end",
    "zero\u200bwidth\u200cjoin\u200dner\u2060word\ufeffmark\u00adsoft",
    "nbsp\u00a0em\u2003ideo\u3000line\u2028para\u2029ogham\u1680nel\x85x",
    "",
    " ",
    "   leading and trailing   ",
    "[CLS] hello [SEP]",
    "[MASK]",
    "[PAD][UNK][CLS][SEP][MASK]",
    "x[MASK]y [cls] [Mask] [MASK [ MASK ] [[SEP]]",
    "a" * 150,
    "a" * 100,
    "a" * 101,
    "b" + "é" * 99,
    "İ" * 60,
    "İ" * 101,
    "x" * 99 + "\u0301" * 50,
    "ａｂｃ ＡＢＣ １２３ ！？",
    "e\u0301 e\u0301\u0316 o\u0308\u0304 \u0301lone",
    "\U0001D165\U0001D16D a\U0001D16D\U0001D165b \u16ff0x\U00016FF0\U0001D165",
    "Hangul 가각갂 각 한글",
    "हिन्दी मराठी தமிழ் ไทย ภาษา العربية עברית",
    "unassigned \u0378 \U000E0080 private \ue000 \U000F0000 noncharacter \ufdd0 \uffff",
    "\ufffd replacement \ufffd",
    "\x00nul\x00",
    "new Unicode: \U0001F972 \U0001FAE0 \u08d3 \u0890 \U00011938 \ua7cb \U00010D50",
    "Σ" + "σ" * 3 + "ς",
    "don't can't it's O'Neill rock'n'roll",
    "https://example.com/path?q=1&x=y user@example.com",
    "1st 2nd 3rd 4th 5G 4K H2O CO₂ x²",
]


def test_cases():
    long_text = " ".join(random.Random(7).choice(WORDS) for _ in range(10_000))
    check(CASES + [long_text])


# character classes for random strings: each piece is a few characters of one class, or a literal token
CLASSES = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "  \t\r",
    "áéíóúàèçñöüßÅåøæœÉÈÊËĀăĐđ",
    "\u0300\u0301\u0308\u0327\u0316\u0345\u0338\u20dd",
    "中文日本語字漢丽",
    "のテキストカタひらがな",
    "한국어가힣각각",
    "😀🔧🥲👍🏽❤\ufe0f\u200d🇩🇪",
    "©®™½°²€£¥§¶•…←✓",
    "\x00\x01\x07\x0b\x0c\x1b\x7f\x85\x9f\u200b\u200c\u200d\u2060\ufeff\ue000\ufffd\u00ad",
    "\u00a0\u2003\u3000\u2028\u2029\u1680\u202f",
    "ΣΊΣΥΦΟΣσςάΰ",
    "ЖжЁёЙй",
    "İıŞşĞğ",
    "مرحباहिन्दीதமிழ்ไทย",
    "\U0001D165\U0001D16D\U00016FF0\u08d3\u0890\U00011938\ua7cb\U00010D50\u0378\U000F0000\u166d\u2e43",
    "ａｂｃＡＢＣ１２３！？",
]
SPECIALS = ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[cls]", "[MASK", " [SEP] "]


def random_strings(n, seed, classes=CLASSES, specials=SPECIALS):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randrange(0, 40)):
            if rng.random() < 0.05:
                parts.append(rng.choice(specials))
            else:
                parts.append("".join(rng.choice(rng.choice(classes)) for _ in range(rng.randrange(1, 7))))
        out.append("".join(parts))
    return out


def test_random_strings():
    check(random_strings(200, seed=1234))


def test_truncation():
    texts = CASES[:12] + ["[CLS] [SEP] [MASK] a b c d e f", "x" * 150 + " y z", "one two three four five six"]
    for max_len in (2, 3, 4, 5, 7, 16, 64, 512):
        check(texts, max_len)


def test_every_code_point():
    """Each code point between two letters ("a{c}a"), 256 to a line: its clean-up, CJK padding,
    decomposition, accent stripping, lowercase and punctuation class all show in the ids."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c != 0x0A]
    lines = [" ".join("a" + chr(c) + "a" for c in cps[i:i + 256]) for i in range(0, len(cps), 256)]
    check(lines, 4096)


def test_normalization_details(tmp_path):
    """What the model's vocab cannot show (its pieces hold few marks or rare letters): a vocab extended
    with tokenizers' own normalized form of each test word, so the ids match only where lathe's
    normalization is the same code points. Words: each combining mark between two marks that survive
    accent stripping (canonical order, and a stripped starter ending the run), each cased letter,
    each canonical decomposition (Hangul included), and the code points where tokenizers' tables
    differ from utf8proc's."""
    import unicodedata
    extra = [*range(0x1E4EC, 0x1E4F0), 0x11F41, 0x11F42, *range(0x10EFD, 0x10F00), 0x1E08F, 0x16FF0, 0x16FF1,
             0x11938, 0x1C89, *range(0xA7CB, 0xA7DD), *range(0x10D50, 0x10D66), *range(0x16EA0, 0x16EB9), 0x130, 0x1734]
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    marks = [c for c in cps if unicodedata.combining(chr(c))] + extra
    starters = [c for c in cps if unicodedata.category(chr(c)) == "Mn" and not unicodedata.combining(chr(c))]
    cased = [c for c in cps if chr(c).lower() != chr(c) or chr(c).upper() != chr(c)] + extra
    decomposed = [c for c in cps if unicodedata.decomposition(chr(c))[:1] not in ("", "<")] + extra
    words = (["a\U0001D16D" + chr(c) for c in marks] + ["a" + chr(c) + "\U0001D165" for c in marks]
             + ["a\U0001D16D" + chr(c) + "\U0001D165" for c in starters] + ["x" + chr(c) for c in cased + decomposed]
             + ["x" + chr(c) for c in range(0xAC00, 0xD7A4, 7)])
    j = json.loads((MODEL / "tokenizer.json").read_text())
    base = oracle(16)
    vocab = j["model"]["vocab"]
    lines = (MODEL / "vocab.txt").read_text().split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(vocab)
    lines.pop()
    for w in words:
        for piece, _ in base.pre_tokenizer.pre_tokenize_str(base.normalizer.normalize_str(w)):
            if piece not in vocab and not any(ch.isspace() for ch in piece):
                vocab[piece] = len(lines)
                lines.append(piece)
    (tmp_path / "vocab.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False))
    texts = [" ".join(words[i:i + 200]) for i in range(0, len(words), 200)]
    check(texts, 4096, model=tmp_path, tok=oracle(4096, tmp_path / "tokenizer.json"))


def test_invalid_utf8_and_nul():
    """Invalid bytes count as U+FFFD, which clean-up drops (as tokenizers does with a U+FFFD)."""
    raw = [b"ab\xffcd", b"\xc3(", b"\xe2\x82 x", b"\xf0\x9f\x98 smile \xf0\x9f\x98\x80", b"\xed\xa0\x80surrogate",
           b"\xc0\xafoverlong", b"\xf4\x90\x80\x80big", b"[CL\xffS] [CLS]\xff[SEP]", b"a\x00b\x00\x00c", b"\x80\x80\x80",
           b"caf\xc3", b"\xff" * 300 + b" end"]
    check(raw, oracle_texts=[r.decode("utf-8", "replace") for r in raw])


def test_vocab_only_folder(tmp_path):
    """Without tokenizer.json the BERT specials come from vocab.txt: the same ids."""
    shutil.copy(MODEL / "vocab.txt", tmp_path / "vocab.txt")
    check(CASES + random_strings(50, seed=99), model=tmp_path)


def test_added_tokens(tmp_path):
    """Added tokens of every kind in a tokenizer.json: raw and normalized, single_word, lstrip/rstrip,
    ids from the vocab or after it."""
    j = json.loads((MODEL / "tokenizer.json").read_text())

    def added(content, id, special=False, normalized=None, single_word=False, lstrip=False, rstrip=False):
        return {"id": id, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
                "normalized": (not special) if normalized is None else normalized, "special": special}

    j["added_tokens"] += [
        added("Lathe-Bot", 30522),                         # normalized: matches "lathe-bot", "LATHE-BOT"
        added("<defect>", 30523, special=True),            # raw
        added("conveyor", 30524, single_word=True),        # in the vocab? then its vocab id (fixed below)
        added("ÜBER", 30525),                              # normalizes to "uber"
        added("[BOX]", 30526, special=True, single_word=True),
        added("中文字", 30527),                             # normalizes to " 中  文  字 "
        added("<mask2>", 30528, special=True, lstrip=True, rstrip=True),
        added("ab", 30529, normalized=False),              # raw, inside words
        added("abc", 30530, normalized=True),              # normalized, longer: leftmost-longest
        added("abab", 30531, special=True, single_word=True),  # refused inside a word: no match starts
        added("bab", 30532, special=True),                     # inside it either (non-overlapping)
        added("CDCD", 30533, single_word=True),                # the same for normalized ones
        added("dcd", 30534),
    ]
    vocab = {line.rstrip(): i for i, line in enumerate((MODEL / "vocab.txt").read_text().split("\n"))}
    next_id = 30522
    for a in j["added_tokens"][5:]:  # tokenizers' ids: the vocab's, else the next free one
        a["id"] = vocab[a["content"]] if a["content"] in vocab else next_id
        next_id += a["content"] not in vocab
    shutil.copy(MODEL / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False))
    texts = ["Lathe-Bot found a <defect> on the conveyor", "LATHE-BOT lathe-bot lathe - bot Lathe-Botx",
             "conveyors conveyor xconveyor conveyor. _conveyor conveyor_ (conveyor)", "ÜBER uber über Über-Alles",
             "中文字 中文 字中文字", "a<mask2>b  <mask2>  c\t<mask2>", "[BOX] x[BOX] [BOX]y ([BOX]) [BOX][BOX]",
             "<defect><defect>Lathe-Bot<defect>", "abc ab abcd xabc ABC Abc a b c", "cafabé ab\u0301c",
             "xabab abab xababab bab abab.", "xabab-bab", "xcdcd cdcd CdCd dcd xcdcdcd"]
    tok = oracle(256, tmp_path / "tokenizer.json")
    classes = CLASSES[:5] + ["Lathe-Bot ", "<defect>", "conveyor", "ÜBER", "[BOX]", "中文字", "<mask2>", "abc"]
    check(texts + random_strings(100, seed=5, classes=classes), model=tmp_path, tok=tok)


def test_errors(tmp_path):
    def run(model):
        return subprocess.run([str(TOOL), str(model), "16"], input=b"x\n", capture_output=True)

    p = run(tmp_path / "absent")
    assert p.returncode == 1 and b"vocab.txt" in p.stderr
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    p = run(tmp_path)
    assert p.returncode == 1 and b"[CLS]" in p.stderr
    shutil.copy(MODEL / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / "tokenizer.json").write_text('{"added_tokens": [')
    p = run(tmp_path)
    assert p.returncode == 1 and b"JSON" in p.stderr
    (tmp_path / "tokenizer.json").write_text('{"normalizer": {"type": "BertNormalizer", "lowercase": false}}')
    p = run(tmp_path)
    assert p.returncode == 1 and b"lowercase" in p.stderr
