"""Two builds at once, and verify while a build replaces the file.

The writer writes `.NAME.<random>.tmp` beside the output and renames it into place
(xlgen/writer.py), and the reader reads every part of a workbook through the one file
handle it opened. So two `xlgen build --force` racing for one output leave one of the
two complete workbooks (the last rename wins) and no temporary file, and a verify that
started before a rename reads the old file to its end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.test_nothing_lost import data_and_basic, temporary_files

# data + basic at these epochs: ~1,200 and ~1,500 formula rows, a second or two to write
EPOCHS = (40, 50)


def environment():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def build_process(template: Path, output: Path, epochs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "xlgen.cli", "build", str(template), "-o", str(output), "--force",
         "--set", f"epochs={epochs}", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The template, and each epochs' workbook built alone (builds are byte-reproducible)."""
    folder = tmp_path_factory.mktemp("concurrency")
    template = data_and_basic(folder)
    built = {}
    for epochs in EPOCHS:
        path = folder / f"alone-{epochs}.xlsx"
        code, _, err = run_cli("build", template, "-o", path, "--set", f"epochs={epochs}", "--quiet")
        assert code == 0, err
        built[epochs] = path.read_bytes()
    assert built[EPOCHS[0]] != built[EPOCHS[1]]
    return template, built


@pytest.mark.parametrize("round_", range(2))
def test_two_builds_at_once_leave_one_complete_workbook(references, tmp_path, round_):
    template, built = references
    output = tmp_path / "book.xlsx"
    if round_:  # the second round replaces an existing file
        output.write_bytes(built[EPOCHS[0]])
    processes = [build_process(template, output, epochs) for epochs in EPOCHS]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    data = output.read_bytes()
    assert data in built.values(), "the output is neither build's workbook: a mix"
    assert temporary_files(output) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["book.xlsx"]
    with zipfile.ZipFile(output) as archive:
        assert archive.testzip() is None
    code, out, err = run_cli("verify", output, "--quiet")
    assert code == 0, out + err


def test_verify_reads_the_old_file_when_it_is_replaced_midway(references, tmp_path, monkeypatch):
    """Deterministically: the file is renamed over after verify has read its first sheet;
    verify still sees the old workbook whole (its sheets, its cell counts)."""
    from xlgen.engine import reader
    template, built = references
    path, newer = tmp_path / "book.xlsx", tmp_path / ".book.new.tmp"
    path.write_bytes(built[EPOCHS[0]])
    newer.write_bytes(built[EPOCHS[1]])
    real_read_sheet = reader._read_sheet
    replaced = []

    def read_sheet_then_replace(pkg, member, sheet_reader):
        real_read_sheet(pkg, member, sheet_reader)
        if not replaced:
            os.replace(newer, path)
            replaced.append(member)

    monkeypatch.setattr(reader, "_read_sheet", read_sheet_then_replace)
    code, out, err = run_cli("verify", path, "--json")
    monkeypatch.undo()
    assert replaced and code == 0, err
    old = json.loads(out)["formula_cells"]
    code, out, _ = run_cli("verify", path, "--json")
    new = json.loads(out)["formula_cells"]
    assert code == 0 and old != new, "verify saw the new file, or both files are alike"


def test_verify_while_builds_replace_the_file(references, tmp_path):
    """Real processes: builds alternate epochs over one file while verify runs again and
    again; every verify reads one whole workbook (exit 0, one of the two cell counts)."""
    template, built = references
    output = tmp_path / "book.xlsx"
    output.write_bytes(built[EPOCHS[0]])
    counts = set()
    for epochs in EPOCHS:
        probe = tmp_path / f"probe-{epochs}.xlsx"
        probe.write_bytes(built[epochs])
        counts.add(json.loads(run_cli("verify", probe, "--json")[1])["formula_cells"])
        probe.unlink()
    builder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys\nfrom xlgen.build import build\n"
            "for i in range(int(sys.argv[3])):\n"
            "    build(sys.argv[1], sys.argv[2], [f'epochs={(40, 50)[i % 2]}'], force=True)\n"),
         str(template), str(output), "6"],
        cwd=ROOT, env=environment(), stderr=subprocess.PIPE, text=True)
    seen, overlapped = [], 0
    try:
        while builder.poll() is None or not seen:
            before = output.stat().st_ino
            result = subprocess.run([sys.executable, "-m", "xlgen.cli", "verify", str(output), "--json"],
                                    cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=300)
            overlapped += output.stat().st_ino != before
            assert result.returncode == 0, result.stderr
            seen.append(json.loads(result.stdout)["formula_cells"])
    finally:
        _, err = builder.communicate(timeout=600)
    assert builder.returncode == 0, err
    assert set(seen) <= counts, (seen, counts)
    assert temporary_files(output) == []
    print(f"{len(seen)} verifies, {overlapped} of them while the file was replaced")
