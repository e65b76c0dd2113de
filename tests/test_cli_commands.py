"""The CLI as an operator meets it: `--help` and what a command says when it has nothing to do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import COMMANDS, main
from tests.support.server import ROOT


def test_help_lists_each_command_with_a_sentence() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    text = " ".join(result.stdout.split())  # argparse wraps long lines
    assert "`" not in result.stdout
    assert "{serve,migrate" not in result.stdout  # no bare list of names
    for name, sentence in COMMANDS.items():
        assert re.search(rf"\b{re.escape(name)} {re.escape(sentence)}", text), name
        assert sentence[0].isupper() and sentence.endswith(".")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_help_starts_with_its_sentence(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert COMMANDS[name].split()[0] in capsys.readouterr().out


def test_feedback_without_rows_says_so_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    assert main(["feedback"]) == 0
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if not line.startswith('{"timestamp"')]
    assert lines == []
    assert err.strip() == "chatkit-backend feedback: no feedback recorded matches"
