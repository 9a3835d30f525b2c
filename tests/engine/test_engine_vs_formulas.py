"""Our engine against formulas' ExcelModel, cell for cell.

ExcelModel is slow (milliseconds a cell), so the workbooks are small and its results are
kept in pytest's cache, keyed by the file's bytes and the formulas version. Volatile
cells keep their cached values in both engines, so what depends on them is compared.
"""

from pathlib import Path

import pytest
from engine_cases import (SHARED_STRINGS_FOR_MODEL, compare_with_excelmodel, formulas_cannot,
                          make_edge_workbook, trimmed_copy, write_package)

from xlgen.engine import calculate, read_xlsx

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT.parent / "shared" / "fixtures" / "graddesc-course.xlsx"
EXAMPLES = sorted((ROOT / "workbooks").glob("*.xlsx"))
EXAMPLE_BUDGET = 1200  # formula cells per example given to ExcelModel (~3 ms each)


@pytest.fixture
def cache(request):
    """pytest's cache (None when run with -p no:cacheprovider)."""
    return getattr(request.config, "cache", None)


def check(path, cache, skip=frozenset(), minimum=1):
    book = read_xlsx(path)
    calc = calculate(book)
    compared, mismatches = compare_with_excelmodel(path, book, calc, cache, skip)
    assert not mismatches, "\n".join(map(str, mismatches[:20]))
    assert compared >= minimum
    return compared


def test_edge_workbook(tmp_path, cache):
    path = make_edge_workbook(tmp_path / "edge.xlsx")
    check(path, cache, minimum=80)


def test_what_formulas_cannot_do_is_recognised(tmp_path):
    book = read_xlsx(make_edge_workbook(tmp_path / "edge.xlsx"))
    calc_sheet = book.sheet("calc")
    cannot = sorted(r for (r, c), text in calc_sheet.formulas.items()
                    if formulas_cannot(book, "calc", text))
    assert cannot == [38, 42, 43]  # calc-scoped 'rate'; AVERAGE_GRAD has a LET inside


def test_shared_formulas_by_hand(tmp_path, cache):
    """Shared formulas spanning rows and columns, as Excel writes them (openpyxl expands
    them for ExcelModel with its own Translator)."""
    rows = []
    for r in range(1, 9):
        cells = f'<c r="A{r}"><v>{r * 1.5}</v></c>'
        if r == 1:
            cells += ('<c r="B1"><f t="shared" ref="B1:D8" si="0">A1*$A$1+A$1-SQRT(ABS(A1))</f></c>'
                      '<c r="C1"><f t="shared" si="0"/></c><c r="D1"><f t="shared" si="0"/></c>')
        else:
            cells += "".join(f'<c r="{c}{r}"><f t="shared" si="0"/></c>' for c in "BCD")
        cells += f'<c r="E{r}" t="s"><v>{r % 2}</v></c><c r="F{r}"><f>IF(E{r}="odd",B{r},-C{r})</f></c>'
        rows.append(f'<row r="{r}">{cells}</row>')
    path = write_package(tmp_path / "shared.xlsx", [("s", "".join(rows))],
                         shared_strings=SHARED_STRINGS_FOR_MODEL)
    assert check(path, cache, minimum=32) == 32


def test_course_fixture(cache):
    if not COURSE.exists():
        pytest.skip("course fixture not present")
    check(COURSE, cache, minimum=1500)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_workbooks(path, cache, tmp_path):
    """Each example, trimmed to its first rows plus one row of every other formula shape."""
    book = read_xlsx(path)
    small = trimmed_copy(book, calculate(book), tmp_path / path.name, budget=EXAMPLE_BUDGET)
    check(small, cache, minimum=min(100, book.formula_count()))


def test_comparison_can_fail(tmp_path, cache):
    """The comparison notices a wrong value (guards against a vacuous test)."""
    path = make_edge_workbook(tmp_path / "edge.xlsx")
    book = read_xlsx(path)
    calc = calculate(book)
    calc.values[("calc", 1, 1)] += 1e-6
    _, mismatches = compare_with_excelmodel(path, book, calc, cache)
    assert [m[:3] for m in mismatches] == [("calc", 1, 1)]
