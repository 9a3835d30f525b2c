"""Nothing vouched for that was not computed, and a verdict that says everything at once.

A cell counts as checked only if this run computed it: volatility is decided by
evaluation, so a volatile call in a LAMBDA body or in a branch not taken does not turn
its callers into unchecked "volatile inputs", while cells where a volatile function did
run are listed as inputs, never as checked. The summary says together what was checked,
what was not and why, and which saved values are stale with a plain reason;
`--strict` fails on any of those warnings.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import COURSE_FIXTURE, ROOT, run_cli
from xlgen.build import build
from xlgen.engine.libreoffice import soffice_path
from xlgen.verify.report import WIDTH

BODY = "_xlpm.grad_avg*_xlpm.mom+IF(_xlpm.dampening,1-_xlpm.mom,1)*_xlpm.grad"
AVERAGE_GRAD = f"_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.dampening,_xlpm.grad_avg,{BODY})"
# the mutation: 100 times the right value, behind a volatile branch never taken
NEVER_RAND = ("_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.dampening,_xlpm.grad_avg,"
              f"IF(_xlpm.grad=\"never\",RAND(),100*({BODY})))")
# a volatile call that does run: the callers keep their saved values
ALWAYS_RAND = f"_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.dampening,_xlpm.grad_avg,{BODY}+0*RAND())"
# the forum's own AVERAGE_GRAD, as Excel would store it: RANDARRAY with six arguments (it
# takes at most five) in a branch taken only for grad_avg "None", and the terms swapped
FORUM = ("_xlfn.LAMBDA(_xlpm.p.grad.data,_xlpm.mom,_xlpm.dampening,_xlpm.grad_avg,"
         "_xlfn.LET(_xlpm.ini_grad,IF(_xlpm.grad_avg=\"None\",_xlfn.RANDARRAY(ROWS(_xlpm.p.grad.data),"
         "COLUMNS(_xlpm.p.grad.data),,,,FALSE)*0,_xlpm.grad_avg),_xlpm.damp,"
         "IF(_xlpm.dampening=FALSE,1,1-_xlpm.mom),_xlpm.p.grad.data*_xlpm.mom+_xlpm.grad_avg*_xlpm.damp))")
WORKBOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))


@pytest.fixture(scope="module")
def average_grad(tmp_path_factory):
    path = tmp_path_factory.mktemp("honest") / "average-grad.xlsx"
    build("average-grad", path)
    return path


def with_average_grad(source: Path, target: Path, definition: str) -> Path:
    """`source` with AVERAGE_GRAD's definition replaced, every saved value kept."""
    escaped = definition.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename == "xl/workbook.xml":
                xml = data.decode()
                assert f">{AVERAGE_GRAD}<" in xml
                data = xml.replace(f">{AVERAGE_GRAD}<", f">{escaped}<").encode()
            out.writestr(item, data)
    return target


def call_sites(report: dict) -> set:
    return {m["cell"] for m in report["mismatches"] if "AVERAGE_GRAD(" in m["formula"]}


def verify_json(path, *options):
    code, out, _ = run_cli("verify", path, "--json", *options)
    return code, json.loads(out)


def test_a_volatile_branch_never_taken_hides_nothing(average_grad, tmp_path):
    """The acceptance case: a LAMBDA 100x wrong behind IF(grad="never", RAND(), ...) fails
    on values at its call sites, not only in the lint."""
    path = with_average_grad(average_grad, tmp_path / "never.xlsx", NEVER_RAND)
    code, report = verify_json(path)
    assert code == 1 and report["first_divergence"] == "tests!F5"
    sites = call_sites(report)
    assert {"tests!F5", "tests!F6", "tests!F7"} <= sites
    assert any(cell.startswith("momentum!") for cell in sites)
    assert report["volatile_cells"] == [] and report["not_checked"]["volatile"] == 0
    assert all(not sheet["volatile_inputs"] for sheet in report["sheets"].values())
    assert report["cells_checked"] == report["formula_cells"]
    first = report["mismatches"][0]
    assert first["actual"] == pytest.approx(100 * first["expected"])


def test_the_forums_average_grad_is_computed_at_every_call(average_grad, tmp_path):
    path = with_average_grad(average_grad, tmp_path / "forum.xlsx", FORUM)
    code, report = verify_json(path)
    assert code == 1 and report["volatile_cells"] == []
    assert report["first_divergence"] == "tests!F5"
    assert report["mismatches"][0]["actual"] == pytest.approx(4 * 0.9)   # grad*mom + grad_avg*damp
    assert len(call_sites(report)) > 100                                   # not only the 3 literal calls


def test_cells_where_a_volatile_call_ran_are_inputs_never_checked(average_grad, tmp_path):
    path = with_average_grad(average_grad, tmp_path / "always.xlsx", ALWAYS_RAND)
    _, clean = verify_json(average_grad)
    code, report = verify_json(path)
    volatile = report["volatile_cells"]
    callers = {f"tests!F{row}" for row in (5, 6, 7)}
    assert callers <= set(volatile)
    assert report["volatile_cells_taken_at_saved_values"] == volatile
    assert report["not_checked"]["volatile"] == len(volatile)
    assert report["cells_checked"] == clean["cells_checked"] - len(volatile)
    listed = [cell for sheet in report["sheets"].values() for cell in sheet["volatile_inputs"]]
    assert sorted(listed) == sorted(volatile)
    assert report["mismatches"] == []         # downstream cells computed from the saved values agree
    assert code == 1 and any("volatile RAND()" in problem for problem in report["lint"])


def test_strict_on_a_clean_workbook(average_grad):
    code, report = verify_json(average_grad, "--strict")
    assert code == 0 and report["strict_ok"] and report["warnings"] == []
    code, out, _ = run_cli("verify", average_grad, "--strict")
    assert code == 0 and out.splitlines()[-1].startswith("OK: ")


def with_extra_formula(source: Path, target: Path, sheet_part: str, cell: str, formula: str, saved: float) -> Path:
    """`source` with one more formula cell in row 1 of a sheet (a cell no layout knows)."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename == sheet_part:
                xml = data.decode()
                xml, count = re.subn(r'(<row r="1"[^>]*>.*?)(</row>)',
                                     lambda m: f'{m.group(1)}<c r="{cell}"><f>{formula}</f><v>{saved!r}</v></c>{m.group(2)}',
                                     xml, count=1, flags=re.S)
                assert count == 1
                data = xml.encode()
            out.writestr(item, data)
    return target


def test_a_formula_reading_no_cell_is_a_constant_input(built_graddesc, tmp_path):
    from tests.workbook_files import sheet_part
    part = sheet_part(built_graddesc, "basic")
    constant = with_extra_formula(built_graddesc, tmp_path / "third.xlsx", part, "Z1", "1/3", 1 / 3)
    code, report = verify_json(constant, "--strict")
    assert code == 0 and report["constant_inputs"] == ["basic!Z1"] and report["unchecked_formula_cells"] == []
    reading = with_extra_formula(built_graddesc, tmp_path / "reads.xlsx", part, "Z1", "C1*3", 3.0)
    code, report = verify_json(reading)
    assert code == 0 and report["unchecked_formula_cells"] == ["basic!Z1"] and report["constant_inputs"] == []
    assert report["not_checked"]["no_known_layout"] == 1 and not report["strict_ok"]
    code, out, _ = run_cli("verify", reading)
    assert code == 0 and out.splitlines()[-1].startswith("OK, with warnings: ")
    assert "1 not checked (no known layout)" in out.splitlines()[-1]
    code, out, _ = run_cli("verify", reading, "--strict")
    assert code == 1 and out.splitlines()[-1].startswith("FAIL (--strict): ")


def test_a_stale_save_is_a_warning_and_fails_strict(built_graddesc, tmp_path):
    """basic!F5's saved value replaced by 12345 (a save from before some edit)."""
    from tests.workbook_files import sheet_part
    part = sheet_part(built_graddesc, "basic")
    with zipfile.ZipFile(built_graddesc) as archive, zipfile.ZipFile(tmp_path / "edited.xlsx", "w") as out:
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename == part:
                data = re.sub(rb'(<c r="F5"[^>]*><f>[^<]*</f><v>)[^<]*(</v>)', rb"\g<1>12345\g<2>", data, count=1)
            out.writestr(item, data)
    code, report = verify_json(tmp_path / "edited.xlsx")
    assert code == 0 and report["ok"] and not report["strict_ok"]
    assert [m["cell"] for m in report["stale_cached_values"]] == ["basic!F5"]
    group, = report["stale_reasons"]
    assert group["saved"] == "numbers" and group["count"] == 1 and group["first"] == "basic!F5"
    assert group["first_saved"] == 12345 and group["reason"] is None
    code, _, _ = run_cli("verify", tmp_path / "edited.xlsx", "--strict")
    assert code == 1


def report_lines(path, *options) -> list[str]:
    code, out, _ = run_cli("verify", path, *options)
    return out.splitlines()


@pytest.mark.parametrize("path", WORKBOOKS, ids=[p.name for p in WORKBOOKS])
def test_the_text_report_fits_in_100_columns_with_inputs_on_their_own_lines(path):
    lines = report_lines(path)
    assert all(len(line) <= WIDTH for line in lines[1:]), max(lines[1:], key=len)
    sheet_lines = [line for line in lines if re.match(r"  \S+: \S+ layout, ", line)]
    assert sheet_lines and not any("inputs" in line for line in sheet_lines)
    assert any(line.startswith("    inputs: ") for line in lines)
    assert lines[-1].startswith("OK: ")


@pytest.mark.skipif(not COURSE_FIXTURE.exists(), reason="the course fixture is not in ../shared")
def test_the_course_file_randbetween_cells_are_volatile_inputs_and_warnings():
    code, report = verify_json(COURSE_FIXTURE)
    assert code == 0 and report["not_checked"] == {"no_known_layout": 0, "engine_skipped": 0, "volatile": 29}
    assert report["volatile_cells"][0] == "data!B5" and report["volatile_cells_taken_at_saved_values"] == report["volatile_cells"]
    assert report["cells_checked"] + 29 == report["formula_cells"]
    lines = report_lines(COURSE_FIXTURE)
    assert all(len(line) <= WIDTH for line in lines[1:])
    assert lines[-1] == "OK, with warnings: 1,594 formula cells agree; 29 not checked (volatile)."
    code, _, _ = run_cli("verify", COURSE_FIXTURE, "--strict")
    assert code == 1


# --- the file as LibreOffice saves it ----------------------------------------------------

def convert_with_libreoffice(source: Path, out_dir: Path) -> Path:
    """`soffice --headless --convert-to xlsx` with a fresh profile, as a user would."""
    profile = out_dir / "profile"
    work = out_dir / "in"
    work.mkdir(parents=True)
    shutil.copyfile(source, work / source.name)
    process = subprocess.Popen(
        [soffice_path(), f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
         "--convert-to", "xlsx", "--outdir", str(out_dir / "out"), str(work / source.name)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        import os
        import signal
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    converted = out_dir / "out" / source.name
    assert converted.is_file()
    return converted


@pytest.fixture(scope="module")
def saved_by_libreoffice(average_grad, tmp_path_factory):
    if soffice_path() is None:
        pytest.skip("LibreOffice (soffice) is not installed; run scripts/install-libreoffice")
    return convert_with_libreoffice(average_grad, tmp_path_factory.mktemp("libreoffice"))


def test_saved_by_libreoffice_the_stale_values_are_named_with_their_reason(saved_by_libreoffice):
    code, report = verify_json(saved_by_libreoffice)
    assert code == 0 and report["ok"] and not report["strict_ok"]
    stale = report["stale_cached_values"]
    assert stale and all(m["actual"] == "#VALUE!" for m in stale)
    assert {"tests!F5", "momentum!H4"} & {m["cell"] for m in stale}
    group, = report["stale_reasons"]
    assert group["saved"] == "#VALUE!" and group["count"] == len(stale)
    assert "could not compute the LAMBDAs AVERAGE_GRAD and AVERAGE_SQR_GRAD" in group["reason"]
    # LibreOffice writes the constants FALSE as =FALSE(): inputs, not unchecked formulas
    false_cells = report["constant_inputs"]
    assert false_cells and report["unchecked_formula_cells"] == []
    assert report["cells_checked"] + len(false_cells) == report["formula_cells"]
    code, strict = verify_json(saved_by_libreoffice, "--strict")
    assert code == 1


def test_saved_by_libreoffice_the_text_says_it_all_together(saved_by_libreoffice):
    code, out, _ = run_cli("verify", saved_by_libreoffice)
    lines = out.splitlines()
    assert code == 0 and lines[-1].startswith("OK, with warnings: ") and "stale saved values" in lines[-1]
    summary = "\n".join(lines[lines.index("summary:"):])
    assert "checked: 4,775 of" in summary and "constant inputs: 50 formulas read no cell" in summary
    assert "cells were saved as #VALUE!: the program that last saved this file could not compute" in summary
    assert all(len(line) <= WIDTH for line in lines[1:])
    code, out, _ = run_cli("verify", saved_by_libreoffice, "--strict")
    assert code == 1 and out.splitlines()[-1].startswith("FAIL (--strict): ")
