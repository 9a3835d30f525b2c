"""`build --all`'s verify may take the build's own calculation (xlgen/build.py:
BuiltCalculation) only where the file read back gives the engine exactly what the build
computed; anywhere else it recomputes the file, and the verdict is the same either way."""

from __future__ import annotations

import json
import math

import pytest

from tests.workbook_files import read_formula, replace_formula
from xlgen.build import BuiltCalculation, _build, same_calculation_input
from xlgen.engine import calculate, read_xlsx
from xlgen.engine.book import Book, ExcelError, Sheet
from xlgen.lint import lint_book
from xlgen.verify import verify_file


def built(name: str, path):
    return BuiltCalculation(*_build(name, path, (), True, None))


def same_report(first, second) -> bool:
    return json.dumps(first.as_json(), sort_keys=True) == json.dumps(second.as_json(), sort_keys=True)


def test_a_file_read_back_as_built_takes_the_build_calculation_and_the_same_verdict(tmp_path):
    path = tmp_path / "graddesc.xlsx"
    offered = built("graddesc", path)
    report = verify_file(path, calculate_book=offered)
    assert offered.reused and report.ok
    assert same_report(report, verify_file(path))


def test_constants_the_file_rounds_are_recomputed(tmp_path):
    """A constant the file does not hold to the bit (as when the writer wrote 16 digits of
    a 17-digit number) makes the build's calculation unfit: the file is recomputed."""
    path = tmp_path / "cross-entropy.xlsx"
    book, calculation = _build("cross-entropy", path, (), True, None)
    sheet = next(sheet for sheet in book.sheets
                 if any(type(value) is float and value % 1 for value in sheet.constants.values()))
    cell, value = next((cell, value) for cell, value in sheet.constants.items() if type(value) is float and value % 1)
    sheet.constants[cell] = math.nextafter(value, math.inf)   # the build computed from another number
    offered = BuiltCalculation(book, calculation)
    report = verify_file(path, calculate_book=offered)
    assert not offered.reused and report.ok


def test_every_constant_survives_the_file(tmp_path):
    """17 significant digits are written where 16 would round (0.17956720059605877), so a
    build's constants read back to the bit and its calculation is the file's."""
    path = tmp_path / "cross-entropy.xlsx"
    offered = built("cross-entropy", path)
    built_constants = [value for sheet in offered.book.sheets for value in sheet.constants.values()
                       if type(value) is float and float(f"{value:.16G}") != value]
    assert built_constants   # the softmax sheet's inputs have 17 significant digits
    report = verify_file(path, calculate_book=offered)
    assert offered.reused and report.ok


def test_a_formula_changed_in_the_file_is_recomputed_and_fails_as_verify_says(tmp_path):
    path, edited = tmp_path / "graddesc.xlsx", tmp_path / "edited.xlsx"
    offered = built("graddesc", path)
    assert read_formula(path, "basic", "E5") == "C5+D5*A5"
    replace_formula(path, edited, "basic", "E5", "C5+D5*A5*1.5")
    report = verify_file(edited, calculate_book=offered)
    assert not offered.reused and not report.ok
    assert report.mismatches[0].cell == "basic!E5"
    assert same_report(report, verify_file(edited))


def test_a_calculation_is_offered_once(tmp_path):
    path = tmp_path / "graddesc.xlsx"
    offered = built("graddesc", path)
    book = read_xlsx(path)
    assert offered(book).values is not None and offered.reused
    offered.reused = False
    again = offered(read_xlsx(path))
    assert not offered.reused and again.values == calculate(book).values


def book(constants=None, formulas=None, names=None) -> Book:
    sheet = Sheet("s", constants=dict(constants or {(1, 1): 2.0}), formulas=dict(formulas or {(1, 2): "A1*2"}))
    return Book(sheets=[sheet], names=dict(names or {}))


@pytest.mark.parametrize("built_value, read_value", [
    (1.0, True), (1.0, 1), (0.0, -0.0), (float("nan"), float("nan")), (0.1, math.nextafter(0.1, 1)),
    ("1", 1.0), (ExcelError("#N/A"), ExcelError("#NUM!")), (ExcelError("#N/A"), "#N/A")])
def test_constants_must_match_in_type_and_every_bit(built_value, read_value):
    assert not same_calculation_input(book({(1, 1): built_value}), book({(1, 1): read_value}))


@pytest.mark.parametrize("value", [1.0, -0.0, "text", True, ExcelError("#DIV/0!")])
def test_equal_constants_are_the_same(value):
    assert same_calculation_input(book({(1, 1): value}), book({(1, 1): value}))


def test_formulas_cells_sheets_and_names_must_match():
    assert same_calculation_input(book(), book())
    assert not same_calculation_input(book(), book(formulas={(1, 2): "A1*3"}))
    assert not same_calculation_input(book(), book(formulas={(2, 2): "A1*2"}))
    assert not same_calculation_input(book(), book(formulas={(1, 2.0): "A1*2"}))
    assert not same_calculation_input(book(names={(None, "RATE"): "s!$A$1"}), book(names={(None, "RATE"): "s!$A$2"}))
    assert not same_calculation_input(book(), book(names={(None, "RATE"): "s!$A$1"}))   # a name the build lacked
    renamed = book()
    renamed.sheets[0].name = "t"
    assert not same_calculation_input(book(), renamed)
    arrays = book()
    arrays.sheets[0].array_refs[(1, 2)] = "B1:B2"
    assert not same_calculation_input(book(), arrays)


def test_print_settings_may_be_added_unless_a_formula_reads_them():
    printed = {("s", "_XLNM.PRINT_AREA"): "s!$A$1:$B$1", ("s", "_XLNM.PRINT_TITLES"): "s!$1:$1"}
    assert same_calculation_input(book(), book(names=printed))
    reads_it = {(1, 2): "SUM(_xlnm.Print_Area)"}
    assert not same_calculation_input(book(formulas=reads_it), book(formulas=reads_it, names=printed))
    assert not same_calculation_input(book(), book(names={(None, "_XLNM.PRINT_AREA"): "s!$A$1"}))


def test_a_volatile_calculation_is_never_reused():
    volatile = book(formulas={(1, 2): "RAND()"})
    offered = BuiltCalculation(volatile, calculate(volatile))
    offered(book(formulas={(1, 2): "RAND()"}))
    assert not offered.reused


def test_a_reused_calculation_says_the_read_book_lints_clean_only_when_it_does(tmp_path):
    """The verify after a build skips its lint only where the lint would find nothing: the
    read Book is the built one (which `_build` linted with every sheet deterministic) plus
    print settings, which are linted on their own."""
    path = tmp_path / "graddesc.xlsx"
    offered = BuiltCalculation(*_build("graddesc", path, (), True, None), lint_clean=True)
    read = read_xlsx(path)
    offered(read)
    assert offered.reused and offered.read_lints_clean
    assert lint_book(read) == [] and lint_book(read, set()) == []
    never_linted = built("graddesc", path)   # not said to be linted: the verify lints
    never_linted(read_xlsx(path))
    assert never_linted.reused and not never_linted.read_lints_clean
    recomputed = BuiltCalculation(*_build("graddesc", path, (), True, None), lint_clean=True)
    recomputed(book())
    assert not recomputed.reused and not recomputed.read_lints_clean


def test_a_print_setting_the_lint_flags_makes_the_verify_lint():
    volatile_print_area = {("s", "_XLNM.PRINT_AREA"): "OFFSET(s!$A$1,RANDBETWEEN(0,1),0)"}
    plain = book()
    offered = BuiltCalculation(plain, calculate(plain), lint_clean=True)
    offered(book(names=volatile_print_area))
    assert offered.reused and not offered.read_lints_clean
    assert lint_book(book(names=volatile_print_area))


def test_the_verify_after_a_build_reports_the_lint_of_a_file_as_verify_does(tmp_path):
    path = tmp_path / "two-neuron.xlsx"
    offered = BuiltCalculation(*_build("two-neuron", path, (), True, None), lint_clean=True)
    report = verify_file(path, calculate_book=offered)
    assert offered.read_lints_clean and report.ok and report.lint == []
    assert same_report(report, verify_file(path))


def test_a_worker_keeps_what_a_build_made_frozen_and_says_the_same(tmp_path, monkeypatch):
    """A worker of `build --all` keeps (never frees) the plan, books, calculations and
    report of each build, frozen from the collector; its verdict is the one without."""
    import gc

    import xlgen.build
    from xlgen.sheets import WorkbookPlan
    monkeypatch.setattr(xlgen.build, "EXAMPLES_DIR", tmp_path)
    plain = xlgen.build._build_and_verify("cross-entropy")
    kept = []
    try:
        assert xlgen.build._build_and_verify("cross-entropy", kept) == plain
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert plain[0] and sum(isinstance(item, WorkbookPlan) for item in kept) == 1
    assert sum(isinstance(item, Book) for item in kept) == 2   # the built one, the one read back
    assert [type(item).__name__ for item in kept][-1] == "Report"
