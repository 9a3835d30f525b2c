"""verify's comparison: whole columns at once, with the per-cell rules of `agrees`.

The checkers hand over column expectations as arrays (SheetCheck.expect_column /
expect_many) and compare judges them with NumPy; these tests pin what must not change
on the way: text is never a number, a cell expected twice holds its last value, and the
dicts (`expected`, `scale`, `bound`) still read as before.
"""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from tests.conftest import run_cli
from xlgen.build import build
from xlgen.verify.core import Report, SheetCheck, disagreeing


def test_text_is_not_the_number_it_spells():
    """NumPy reads the text "1.5" as 1.5; verify must not (a false OK before)."""
    report = Report("x")
    scale = np.zeros(3)
    assert disagreeing([1.5, 2.0, 3.0], ["1.5", 2.0, "3"], scale, False, report) == [0, 2]
    assert disagreeing(["a", 2.0], ["a", 2.0], scale[:2], False, report) == []


def test_a_boolean_is_judged_as_agrees_does():
    report = Report("x")
    assert disagreeing([False, True], [1e-12, 1.0], np.zeros(2), False, report) == [0]


def test_blocks_read_as_the_dicts():
    check = SheetCheck("s", "layout")
    check.expect(1, 1, 5.0, scale=2.0)
    check.expect_column([2, 3, 4], 1, np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0]), np.array([1e-9, 1e-9, 1e-9]))
    check.expect_many([(2, 2), (3, 2)], [7.0, "text"])
    assert check.count() == 6
    assert check.lookup((3, 1)) == (2.0, 1.0, 1e-9)
    assert check.lookup((3, 2))[0] == "text" and check.lookup((9, 9)) is None
    assert check.expected == {(1, 1): 5.0, (2, 1): 1.0, (3, 1): 2.0, (4, 1): 3.0, (2, 2): 7.0, (3, 2): "text"}
    assert check.scale[(1, 1)] == 2.0 and check.scale[(3, 1)] == 1.0 and check.scale[(2, 2)] == 0.0
    assert math.isnan(check.bound[(1, 1)]) and check.bound[(4, 1)] == 1e-9
    check.expect(5, 1, 4.0)   # after the dicts were asked for, they are filled directly
    assert check.count() == 7 and check.lookup((5, 1))[0] == 4.0


def test_a_cell_expected_twice_holds_its_last_value():
    check = SheetCheck("s", "layout")
    check.expect_column([1, 2], 1, [1.0, 2.0])
    check.expect(1, 1, 9.0)
    assert check.count() == 2
    assert check.lookup((1, 1))[0] == 9.0
    assert list(check.expected.items()) == [((1, 1), 9.0), ((2, 1), 2.0)]


@pytest.fixture(scope="module")
def small_graddesc(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "graddesc.xlsx"
    build("graddesc", path, ["epochs=2"])
    return path


def with_formula(source, target, old: str, new: str):
    """`source` with the first formula `old` of the basic sheet made `new`, saved values kept."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        names = {item.filename for item in archive.infolist()}
        done = False
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet") and not done and f"<f>{old}</f>".encode() in data:
                data = data.replace(f"<f>{old}</f>".encode(), f"<f>{new}</f>".encode(), 1)
                done = True
            out.writestr(item, data)
    assert done and names
    return target


def test_a_number_made_text_fails_at_its_cell(small_graddesc, tmp_path):
    """basic!C5 =N4 made ="" & N4: the weight as text (Excel shows it left-aligned, and
    arithmetic still reads it), which the reference says is a number."""
    mutated = with_formula(small_graddesc, tmp_path / "text.xlsx", "N4", '""&amp;N4')
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1
    assert report["first_divergence"] == "basic!C5"


def test_formula_cells_are_matched_to_checked_cells_one_to_one():
    """Cells past any fixed column width still match only themselves."""
    from xlgen.verify.core import _checked_positions, cell_codes
    checked = (np.array([1, 2, 1]), np.array([40_000, 1, 2]), ["a", "b", "c"], [], np.array([1.0, 2.0, 3.0]),
               (np.full(3, np.nan), np.zeros(3, dtype=bool)))
    where, actual, scales, _ = _checked_positions(cell_codes([(2, 1), (1, 40_000), (1, 40_001), (0, 2), (1, 2)]),
                                               [checked])
    assert where.tolist() == [1, 0, -1, -1, 2]
    assert actual == ["a", "b", "c"] and scales.tolist() == [1.0, 2.0, 3.0]


def test_a_book_edited_between_two_verifications_is_judged_as_edited(small_graddesc):
    """A notebook user may move a formula between two checks of one Book (same count of
    formulas): the second check must see the cells where they are now, not the first's."""
    from xlgen.engine import calculate, read_xlsx
    from xlgen.verify import check_book
    from xlgen.verify.core import formula_cells

    book = read_xlsx(small_graddesc)
    calculation = calculate(book)
    first = check_book(Report("first"), book, calculation.values, calculation.order, calculation.volatile)
    assert first.ok
    sheet = next(sheet for sheet in book.sheets if sheet.name == "basic")
    last = max(sheet.formulas)
    text = sheet.formulas.pop(last)
    sheet.formulas[(last[0] + 5, last[1])] = text
    cells = set(zip(*(array.tolist() for array in formula_cells(sheet))))
    assert (last[0] + 5, last[1]) in cells and last not in cells


@pytest.mark.parametrize("spread", [3, 100_000])   # a block of cells (on a grid) and a few far apart (sorted)
def test_formula_cells_find_their_checked_cell_wherever_they_lie(spread):
    from xlgen.verify.core import _checked_positions, cell_codes
    rng = np.random.default_rng(spread)
    cells = sorted({(int(r), int(c)) for r, c in zip(rng.integers(1, 40 * spread, 300), rng.integers(1, 12, 300))})
    checked = [cells[i] for i in rng.permutation(len(cells))[:200]] + [(0, 99), (2 * 40 * spread, 1)]
    rows, cols = cell_codes(checked)
    part = (rows, cols, list(range(len(checked))), [], np.arange(len(checked), dtype=np.float64),
            (np.zeros(len(checked)), np.ones(len(checked), dtype=bool)))
    where, _, _, _ = _checked_positions(cell_codes(cells), [part])
    position = {cell: index for index, cell in enumerate(checked)}
    assert where.tolist() == [position.get(cell, -1) for cell in cells]


@pytest.mark.parametrize("far", [False, True])
def test_a_cell_expected_twice_in_blocks_is_seen(far):
    check = SheetCheck("s", "layout")
    check.expect_column(np.arange(1, 1001), 2, np.ones(1000))
    check.expect_column([5, 10**6 if far else 7], 3, [1.0, 2.0])
    assert check._is_distinct()
    check.expect_column([1000], 2, [4.0])
    assert not check._is_distinct()
    assert check.count() == 1002 and check.lookup((1000, 2))[0] == 4.0


@pytest.mark.parametrize("spread", [3, 100_000])   # on a grid, and sorted by column
def test_formula_rows_are_the_rows_holding_formulas(spread):
    from types import SimpleNamespace
    from xlgen.verify.locate import FormulaRows
    rng = np.random.default_rng(spread)
    formulas = {(int(r), int(c)): "1" for r, c in zip(rng.integers(1, 40 * spread, 400), rng.integers(1, 9, 400))}
    found = FormulaRows(SimpleNamespace(formulas=formulas))
    asked = rng.integers(0, 45 * spread, 300)
    for col in range(0, 11):
        rows = asked if col % 2 else np.array(sorted({row for row, c in formulas if c == col}) or [1])
        present, indices = found.of(rows, col)
        held = [index for index, row in enumerate(rows.tolist()) if (row, col) in formulas]
        if len(held) == len(rows):
            assert indices is None and present.tolist() == rows.tolist()
        else:
            assert indices.tolist() == held and present.tolist() == rows[held].tolist()


def test_numbers_among_other_values_are_read_as_numbers():
    from xlgen.engine.book import ExcelError
    from xlgen.verify.core import as_floats
    items = [1.5, "2", True, None, ExcelError("#NUM!"), 3, np.float64(4.5), np.float32(0.5), 2 ** 2000, -0.0, np.int64(7)]
    floats, numeric = as_floats(items)
    assert numeric.tolist() == [True, False, False, False, False, True, True, True, False, True, True]
    assert np.array_equal(floats, [1.5, np.nan, np.nan, np.nan, np.nan, 3.0, 4.5, 0.5, np.nan, -0.0, 7.0], equal_nan=True)
    assert np.signbit(floats[9])
    floats, numeric = as_floats(items[:8])   # no int past a double's range: all at once
    assert numeric.tolist() == [True, False, False, False, False, True, True, True]
    assert np.array_equal(floats, [1.5, np.nan, np.nan, np.nan, np.nan, 3.0, 4.5, 0.5], equal_nan=True)
