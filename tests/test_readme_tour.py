"""The README's tour and its Python example run as written, in an empty folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xlgen.engine.libreoffice import soffice_path


def readme_block(after: str, language: str) -> str:
    """The first ```language block after the heading `after`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def xlgen_on_path(folder: Path) -> dict:
    """An environment whose `xlgen` is this checkout's, run by this Python."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "xlgen"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m xlgen.cli "$@"\n')
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.skipif(soffice_path() is None, reason="the tour's last command needs LibreOffice")
def test_the_tour_runs_top_to_bottom_in_an_empty_folder(tmp_path):
    block = readme_block("## A short tour", "bash")
    assert "xlgen build" in block and "xlgen verify" in block
    folder = tmp_path / "fresh"
    folder.mkdir()
    environment = xlgen_on_path(tmp_path)
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=folder, env=environment,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"the tour stopped:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert sorted(path.name for path in folder.iterdir()) == ["fast.xlsx", "out.xlsx"]


def test_the_python_example_runs(tmp_path, monkeypatch):
    block = readme_block("## From Python", "python")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md (From Python)", "exec"), namespace)
    assert namespace["report"].ok and (tmp_path / "fast.xlsx").exists()
