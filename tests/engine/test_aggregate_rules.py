"""SUM, SUMSQ, COUNT, AVERAGE, MAX and MIN over data holding more than numbers, by Excel's
documented rules: in a reference or an array only numbers count (text, even text that
spells a number, TRUE/FALSE and blanks are skipped); a value given directly counts
TRUE/FALSE as 1/0 and number-text as its number. formulas' implementations, which the
engine used before, counted the text "3" in a range (SUM 8, COUNT 2, MAX "3" below).
LibreOffice 25.2 (soffice --convert-to csv of these cases) agrees except on TRUE/FALSE in
a range, which it counts (it has no boolean type), and on number-text given directly,
which it refuses (#VALUE!); Excel's SUM help: SUM("5", 15, TRUE) is 21."""

import math

import pytest
from engine_cases import book_of

from xlgen.engine import ExcelError, calculate
from xlgen.engine.refs import parse_cell

DATA = {"A1": True, "A2": "3", "A3": "abc", "A4": 5.0, "A5": False}

# formula, Excel's result
CASES = [
    ("SUM(A1:A5)", 5.0),
    ("SUMSQ(A1:A5)", 25.0),
    ("COUNT(A1:A5)", 1.0),
    ("AVERAGE(A1:A5)", 5.0),
    ("MAX(A1:A5)", 5.0),
    ("MIN(A1:A5)", 5.0),
    ("SUM(A2)", 0.0),          # a single-cell reference is a reference
    ("COUNT(A2)", 0.0),
    ("SUM(A1:A2,A4)", 5.0),
    ("SUM(A4,A2)", 5.0),
    ("SUMSQ(A2:A4)", 25.0),
    ("MAX(A1:A3)", 0.0),     # no number at all: 0
    ("MIN(A1:A3)", 0.0),
    ("AVERAGE(A1:A3)", "#DIV/0!"),
    ("COUNT(A1:A3)", 0.0),
    ("SUM(TRUE)", 1.0),        # given directly: TRUE is 1
    ("COUNT(\"3\",TRUE)", 2.0),
    ("SUM(A4,A2*1)", 8.0),     # an expression's value is given directly
    ("SUM(A4,A1*1)", 6.0),
    ("SUM(A4,IF(A4>0,\"3\"))", 8.0),
    ("SUM(A4,IF(A4>0,\"x\"))", "#VALUE!"),
    ("COUNT(A4,IF(A4>0,\"x\"))", 1.0),
    ("SUM(A4,A3*1)", "#VALUE!"),
    ("COUNT(A4,A3*1)", 1.0),   # COUNT passes over errors
    ("SUM(A1:A5*1)", "#VALUE!"),  # an array holding an error: the error
    ("MAX(A1:A5,7)", 7.0),
]


def _calculated():
    cells = dict(DATA)
    for row, (formula, _excel) in enumerate(CASES, start=1):
        cells[f"C{row}"] = "=" + formula
    calculation = calculate(book_of(("S", cells)))
    return {formula: calculation.values[("S", *parse_cell(f"C{row}"))]
            for row, (formula, _excel) in enumerate(CASES, start=1)}


@pytest.mark.parametrize("formula, excel", CASES)
def test_aggregates_follow_excels_rules(formula, excel):
    got = _calculated()[formula]
    if isinstance(excel, str):
        assert got == ExcelError(excel)
    else:
        assert type(got) is float and got == excel


def test_a_whole_column_with_a_text_header_is_summed_once_and_right():
    cells = {"A1": "x", **{f"A{r}": float(r) for r in range(2, 3002)}}
    cells.update({f"B{r}": f"=A{r}/SUM(A:A)" for r in range(2, 3002)})
    calculation = calculate(book_of(("S", cells)))
    total = sum(range(2, 3002))
    assert calculation.values[("S", 2, 2)] == 2 / total
    assert math.isclose(sum(calculation.values[("S", r, 2)] for r in range(2, 3002)), 1.0)
