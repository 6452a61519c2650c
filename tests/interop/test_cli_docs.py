"""docs/CLI.md stays current: every long option each command's --help names is documented there,
and every command answers --help with exit 0 and rejects an unknown option with exit 2."""
import re
from pathlib import Path

import pytest

from fixtures import lathe

DOC = (Path(__file__).resolve().parents[2] / "docs" / "CLI.md").read_text()


@pytest.mark.parametrize("command", ["synth", "ingest", "info", "verify", "analyze", "train", "eval", "predict", "export",
                                     "embed", "notebook"])
def test_help_and_docs(command):
    p = lathe(command, "--help")
    options = set(re.findall(r"(--[a-z][a-z-]+)", p.stdout))
    assert options, p.stdout
    section = DOC.split(f"## lathe {command}\n", 1)[1].split("\n## ", 1)[0]
    missing = [o for o in options if o not in section]
    assert not missing, f"docs/CLI.md lacks {missing} for lathe {command}"
    bad = lathe(command, "--no-such-option", check=False)
    assert bad.returncode == 2


def test_version_and_unknown_command():
    assert lathe("--version").stdout.startswith("lathe ")
    assert lathe("frobnicate", check=False).returncode == 2
