"""The formula lint inside build and verify, not only as a library.

A formula can compute right in xlgen's engine (and LibreOffice) and still open as #NAME?
in Excel: newer functions must be stored as `_xlfn.NAME(`, LET/LAMBDA parameters as
`_xlpm.x`. Verify fails such a file (exit 1, report.lint) even when every value agrees;
build refuses to write one. Volatile functions fail a sheet that must be deterministic,
but not the course's data sheet, whose RANDBETWEEN x values are inputs.
"""

from __future__ import annotations

import json
import re
import zipfile

import pytest

from tests.conftest import COURSE_FIXTURE, run_cli
from tests.workbook_files import replace_formula


def verify_json(path):
    code, out, err = run_cli("verify", path, "--json")
    assert err == "", err
    return code, json.loads(out)


@pytest.mark.parametrize("formula, problem", [
    ("LET(x,(B4-E4)^2,x)", "basic!F4: LET( is newer than Excel 2007: store it as _xlfn.LET("),
    ("_xlfn.LET(x,(B4-E4)^2,x)", "basic!F4: LET parameter x must be stored as _xlpm.x"),
    ("(B4-E4)^2+XLOOKUP(1,{1},{0})", "basic!F4: XLOOKUP( is newer than Excel 2007: store it as _xlfn.XLOOKUP("),
    ("IFS(TRUE,(B4-E4)^2)", "basic!F4: IFS( is newer than Excel 2007: store it as _xlfn.IFS("),
    ("(B4-E4)^2+0*RAND()", "basic!F4: volatile RAND() in deterministic sheet 'basic'"),
    ("(B4-E4)^2+0*RANDBETWEEN(1,2)", "basic!F4: volatile RANDBETWEEN() in deterministic sheet 'basic'"),
])
def test_verify_fails_on_a_lint_problem_even_when_every_value_agrees(built_graddesc, tmp_path, formula, problem):
    path = tmp_path / "lint.xlsx"
    replace_formula(built_graddesc, path, "basic", "F4", formula)

    code, report = verify_json(path)
    assert code == 1 and not report["ok"]
    assert report["mismatches"] == [], "the value is right; only the storage is wrong"
    assert any(line.startswith(problem) for line in report["lint"]), report["lint"]

    code, out, _ = run_cli("verify", path)
    assert code == 1
    assert "FAIL: the values agree with the reference, but the formula lint found problems" in out
    assert f"First: {problem}" in out


@pytest.mark.parametrize("formula", [
    "_xlfn.LET(_xlpm.x,(B4-E4)^2,_xlpm.x)",
    "(B4-E4)^2+_xlfn.XLOOKUP(1,{1},{0})",
])
def test_the_same_formulas_stored_right_pass(built_graddesc, tmp_path, formula):
    """The control: with the prefixes Excel needs, the same edits verify."""
    path = tmp_path / "prefixed.xlsx"
    replace_formula(built_graddesc, path, "basic", "F4", formula)
    code, report = verify_json(path)
    assert code == 0 and report["ok"] and report["lint"] == []


def test_verify_lints_defined_names(built_graddesc, tmp_path):
    """A workbook LAMBDA stored without its prefixes, though no cell uses it."""
    path = tmp_path / "name.xlsx"
    with zipfile.ZipFile(built_graddesc) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "xl/workbook.xml":
                data, count = re.subn(rb"<definedNames>", rb'<definedNames><definedName name="SQUARE">'
                                      rb"LAMBDA(x,x^2)</definedName>", data)
                assert count == 1
            copy.writestr(info, data)
    code, report = verify_json(path)
    assert code == 1 and report["mismatches"] == []
    assert "name SQUARE: LAMBDA( is newer than Excel 2007: store it as _xlfn.LAMBDA(" in report["lint"]
    assert "name SQUARE: LAMBDA parameter x must be stored as _xlpm.x" in report["lint"]


def test_course_file_randbetween_is_an_input_not_a_lint_failure():
    """The course's data sheet draws x with RANDBETWEEN(1,100): volatile on purpose. Its
    saved values are taken as inputs, and the lint does not fail the file for it."""
    with zipfile.ZipFile(COURSE_FIXTURE) as archive:
        xml = "".join(archive.read(name).decode() for name in archive.namelist()
                      if name.startswith("xl/worksheets/sheet"))
    assert "RANDBETWEEN(" in xml.upper()

    code, report = verify_json(COURSE_FIXTURE)
    assert code == 0 and report["ok"]
    assert report["lint"] == []
    data = report["sheets"]["data"]
    assert len(data["volatile_inputs"]) == 29
    assert data["volatile_inputs"][0] == "data!B5"


def test_build_refuses_to_write_a_formula_excel_would_misread(tmp_path, monkeypatch):
    """A builder bug (a LET without its prefixes) is caught before a file exists."""
    import xlgen.build
    real_plan_workbook = xlgen.build.plan_workbook

    def plan_with_a_bare_let(template, progress=None):
        plan = real_plan_workbook(template, progress)
        real_to_book = plan.to_book

        def to_book(progress=None):
            book = real_to_book(progress)
            book.sheet("basic").formulas[(4, 6)] = "LET(x,(B4-E4)^2,x)"
            return book

        plan.to_book = to_book
        return plan

    monkeypatch.setattr(xlgen.build, "plan_workbook", plan_with_a_bare_let)
    code, out, err = run_cli("build", "graddesc", "-o", tmp_path / "never.xlsx", "--set", "epochs=1", "--quiet")
    assert code == 2
    assert err.startswith("xlgen: error: formula lint: basic!F4: LET( is newer than Excel 2007") and \
        len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_forked_lint_gives_what_the_inline_lint_gives(tmp_path):
    """Large books are linted in a forked child beside the comparison; same answers."""
    import xlgen.verify as verify
    from xlgen.build import build
    from xlgen.engine import read_xlsx
    path = tmp_path / "big.xlsx"
    build("graddesc", path, ["epochs=60"])
    book = read_xlsx(path)
    assert book.formula_count() >= 20_000          # large enough to fork
    book.sheet("basic").formulas[(4, 5)] = "_xlfn.LET(x,1,x)+RAND()"   # two lint problems
    forked = verify.lint_beside(book, {"basic"})()
    assert forked == verify.lint_problems(book, {"basic"})
    assert len(forked) >= 2 and all(problem.startswith("basic!E4") for problem in forked)


def test_lint_child_started_before_the_calculation(tmp_path):
    """verify starts the lint's child as soon as the book is read (its costly part runs beside
    the calculation) and tells it the deterministic sheets later: the same problems as inline,
    a lint problem in a large file still fails it, and a child never told is ended, not left."""
    import os
    import xlgen.verify as verify
    from xlgen.build import build
    from xlgen.engine import read_xlsx
    path = tmp_path / "big.xlsx"
    build("graddesc", path, ["epochs=60"])
    book = read_xlsx(path)
    book.sheet("basic").formulas[(4, 5)] = "_xlfn.LET(x,1,x)+RAND()"
    early = verify.LintBeside(book)
    assert early.child is not None                 # large enough to fork
    for deterministic in ({"basic"}, set()):       # the sheets arrive after the survey
        forked = verify.LintBeside(book).start(deterministic)()
        assert forked == verify.lint_problems(book, deterministic)
    assert early.start({"basic"})() == verify.lint_problems(book, {"basic"})
    abandoned = verify.LintBeside(book)
    child = abandoned.child
    abandoned.close()                              # as when the calculation raises
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)              # reaped, not left as a zombie

    edited = tmp_path / "let.xlsx"
    replace_formula(path, edited, "basic", "F4", "LET(x,(B4-E4)^2,x)")
    code, report = verify_json(edited)
    assert code == 1 and report["lint"][0] == "basic!F4: LET( is newer than Excel 2007: store it as _xlfn.LET("
    assert all(problem.startswith("basic!F4: ") for problem in report["lint"])
