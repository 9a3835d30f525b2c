"""`xlgen build --all`: the examples built and verified in worker processes, reported
in template order whatever order they finish in, a failure reported in its turn, and
nothing half-written (xlgen/build.py: ExampleBuilds)."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, run_cli

# small templates; titanic's 51,000 formula cells would take most of the test's time
NAMES = ["cross-entropy", "convolution", "graddesc"]


@pytest.fixture()
def examples(tmp_path, monkeypatch):
    import xlgen.build
    monkeypatch.setattr(xlgen.build, "EXAMPLES_DIR", tmp_path)   # forked workers inherit it
    return tmp_path


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if not path.name.endswith(".xlsx"))


@pytest.mark.parametrize("cores", [1, 2])
def test_results_come_in_template_order_and_the_files_are_the_examples(examples, monkeypatch, cores):
    import xlgen.build
    monkeypatch.setattr(xlgen.build, "_cores", lambda: cores)
    # the largest last build is started first: graddesc, though it is reported last
    (examples / "graddesc.xlsx").write_bytes(b"x" * 10_000_000)
    builds, heard = xlgen.build.ExampleBuilds(NAMES), []
    builds.progress = lambda done, total, phase: heard.append((done, total, phase))
    results = list(builds)
    assert heard and heard == sorted(heard) and {total for _, total, _ in heard} == {len(NAMES)}
    assert {phase for _, _, phase in heard} == {"building"} and heard[-1][0] < len(NAMES)
    assert [line.split()[1] for _ok, line in results] == [f"{examples / name}.xlsx:" for name in NAMES]
    assert all(ok and line.startswith("OK ") for ok, line in results)
    for name in NAMES:
        assert (examples / f"{name}.xlsx").read_bytes() == (ROOT / "workbooks" / f"{name}.xlsx").read_bytes()
    assert leftovers(examples) == []


def test_a_failure_is_raised_in_its_turn_after_the_results_before_it(examples, monkeypatch):
    import xlgen.build
    from xlgen.errors import XlgenError
    monkeypatch.setattr(xlgen.build, "_cores", lambda: 2)
    results = iter(xlgen.build.ExampleBuilds(["cross-entropy", "no-such-template", "graddesc"]))
    ok, line = next(results)
    assert ok and "cross-entropy.xlsx" in line
    with pytest.raises(XlgenError, match="unknown template 'no-such-template'"):
        next(results)
    assert leftovers(examples) == []          # graddesc, if it started, was finished whole
    for path in examples.iterdir():
        assert path.read_bytes() == (ROOT / "workbooks" / path.name).read_bytes()


def test_the_command_prints_one_line_per_template_in_order(examples, monkeypatch):
    import xlgen.templates
    monkeypatch.setattr(xlgen.templates, "available_templates", lambda: NAMES)
    code, out, err = run_cli("build", "--all", "--quiet")
    assert code == 0, err
    assert out.splitlines() == [f"OK   {examples / name}.xlsx: {count} of {count} formula cells checked"
                                for name, count in zip(NAMES, ["116", "2,794", "9,670"])]


def test_the_command_reports_a_failure_in_one_line(examples, monkeypatch):
    import xlgen.templates
    monkeypatch.setattr(xlgen.templates, "available_templates", lambda: ["cross-entropy", "no-such-template"])
    code, out, err = run_cli("build", "--all", "--quiet")
    assert code == 2
    assert out.splitlines() == [f"OK   {examples / 'cross-entropy.xlsx'}: 116 of 116 formula cells checked"]
    assert err.startswith("xlgen: error: unknown template 'no-such-template'") and err.count("\n") == 1
    assert leftovers(examples) == []


def where_the_reader_checks(name):
    """A worker's stand-in for build_example: whether its reader would fork expat's check."""
    from xlgen.engine import reader
    return True, f"{name}: check beside from {reader.VALIDATE_BESIDE_FROM}"


def test_the_workers_check_large_sheets_themselves(examples, monkeypatch):
    """The workers take every core: a child forked to check a sheet beside the reading
    would only wait for one (and make both copy pages), so each worker checks in line."""
    import xlgen.build
    from xlgen.engine import reader
    monkeypatch.setattr(xlgen.build, "_cores", lambda: 2)
    monkeypatch.setattr(xlgen.build, "build_example", where_the_reader_checks)
    import gc
    frozen = gc.get_freeze_count()
    results = list(xlgen.build.ExampleBuilds(NAMES))
    assert results == [(True, f"{name}: check beside from inf") for name in NAMES]
    assert reader.VALIDATE_BESIDE_FROM < 1 << 30    # this process still checks beside
    assert gc.get_freeze_count() == frozen   # and collects what it froze for the fork again


def test_a_large_sheet_checked_in_line_reads_as_when_checked_beside(monkeypatch):
    from xlgen.engine import reader
    from xlgen.engine.reader import read_xlsx
    import math
    import zipfile
    path = ROOT / "workbooks" / "titanic.xlsx"
    assert max(info.file_size for info in zipfile.ZipFile(path).infolist()) >= reader.VALIDATE_BESIDE_FROM
    beside = read_xlsx(path)

    def no_fork():
        raise AssertionError("forked")
    monkeypatch.setattr(reader, "VALIDATE_BESIDE_FROM", math.inf)    # as in build --all's workers
    monkeypatch.setattr(reader.os, "fork", no_fork)
    in_line = read_xlsx(path)
    assert [(sheet.name, sheet.formulas, sheet.constants) for sheet in in_line.sheets] == \
        [(sheet.name, sheet.formulas, sheet.constants) for sheet in beside.sheets]


def test_a_single_build_loads_no_worker_or_reader_machinery(tmp_path):
    """`xlgen build NAME` writes one file: the worker pool (`--all`'s) and the reader
    (verify's) are imported only where they are used."""
    import subprocess
    import sys
    code = ("import sys; from xlgen.cli import main; main(['build', 'cross-entropy', '-o', sys.argv[1], '--quiet'], "
            "standalone_mode=False); print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('concurrent', 'multiprocessing') or m in ('xlgen.engine.reader', 'xlgen.verify')))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "one.xlsx")], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert (tmp_path / "one.xlsx").read_bytes() == (ROOT / "workbooks" / "cross-entropy.xlsx").read_bytes()
