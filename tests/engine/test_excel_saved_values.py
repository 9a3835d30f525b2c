"""Excel agrees: xlgen's engine recomputes the values Excel saved, on the course's own files.

The four course22 workbooks and the course's graddesc were last saved by Excel, so their
cached values are Excel's results: an oracle nobody here wrote. For every formula cell
that does not draw random numbers, the value the engine computes (never reading the
cache) must agree with the saved one by verify's own rule, the rule that lists stale
saved values. The example workbooks are held to the same, and `xlgen verify --json`
must report no stale values and never exit 2 on any of them.
"""

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from xlgen.engine import calculate, read_xlsx
from xlgen.verify.core import agrees

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "fixtures"
# file -> (formula cells, volatile cells: RAND / RANDBETWEEN, taken at their saved draws)
COURSE = {
    "course22/titanic.xlsx": (24_935, 0),  # 3 Excel Tables, a spilled MMULT
    "course22/collab_filter.xlsx": (3_666, 0),  # MMULT, SUMXMY2, MATCH + OFFSET array formulas
    "course22/conv-example.xlsx": (9_336, 1_200),  # legacy array formulas; a RAND() dropout mask
    "course22/entropy_example.xlsx": (39, 0),  # EXP, LOG
    "graddesc-course.xlsx": (1_623, 29),  # RANDBETWEEN data
}
EXAMPLES = sorted((ROOT / "workbooks").glob("*.xlsx"))
FILES = [SHARED / name for name in COURSE] + EXAMPLES


def saved_value_check(book, calc):
    """(cells compared, cells whose saved value the engine does not reproduce)."""
    volatile = set(calc.volatile)
    compared, differing = 0, []
    for sheet in book.sheets:
        for cell in sheet.formulas:
            key = (sheet.name, *cell)
            if key in volatile:
                continue
            assert cell in sheet.cached, f"{key} has no saved value"
            compared += 1
            if not agrees(sheet.cached[cell], calc.values[key]):
                differing.append((key, sheet.formulas[cell], sheet.cached[cell], calc.values[key]))
    return compared, differing


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_engine_reproduces_the_saved_values(path):
    if not path.exists():
        pytest.skip(f"{path} is not in ../shared")
    book = read_xlsx(path)
    calc = calculate(book)
    compared, differing = saved_value_check(book, calc)
    assert differing == [], differing[:10]
    name = path.relative_to(SHARED).as_posix() if path.is_relative_to(SHARED) else None
    if name in COURSE:
        cells, volatile = COURSE[name]
        assert book.formula_count() == cells and len(calc.volatile) == volatile
        assert compared == cells - volatile


@pytest.mark.parametrize("name", ["course22/titanic.xlsx", "course22/collab_filter.xlsx",
                                  "course22/entropy_example.xlsx"])
def test_saved_values_are_not_read(name):
    """With every saved value of its formula cells removed, a file computes the same:
    tables, spills, array ranges and OFFSET all come from the engine."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not in ../shared")
    book = read_xlsx(path)
    saved = {sheet.name: dict(sheet.cached) for sheet in book.sheets}
    for sheet in book.sheets:
        sheet.cached.clear()
    calc = calculate(book)
    for sheet in book.sheets:
        sheet.cached.update(saved[sheet.name])
    compared, differing = saved_value_check(book, calc)
    assert differing == [] and compared == COURSE[name][0]


def test_a_changed_input_is_seen_as_stale():
    """The comparison is sharp: one passenger's age changed in memory (titanic's linear
    sheet, row 5) makes that row's features, prediction and loss, the mean loss, and
    the nnet sheet's row 5 (it reads linear's Table13 by [#This Row]) disagree with Excel."""
    path = SHARED / "course22/titanic.xlsx"
    if not path.exists():
        pytest.skip(f"{path} is not in ../shared")
    book = read_xlsx(path)
    book.sheet("linear").constants[(5, 5)] += 1.0  # E5: Age, 38 -> 39
    _, differing = saved_value_check(book, calculate(book))
    cells = {key for key, *_ in differing}
    assert {("linear", 5, 9), ("linear", 5, 29), ("linear", 7, 27), ("nnet", 5, 29)} <= cells
    assert {row for _, row, _ in cells} == {5, 7, 1}  # row 5, the mean loss (AA7), nnet's (AH1)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_verify_reports_no_stale_values(path):
    if not path.exists():
        pytest.skip(f"{path} is not in ../shared")
    code, out, err = run_cli("verify", path, "--json")
    assert code in (0, 1), err
    report = json.loads(out)
    assert report["stale_cached_values"] == []
