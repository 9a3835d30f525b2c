"""The engine hands its result over as cell codes (Calculation.cell_codes()); the dict of values,
the order of (sheet, row, col) tuples and verify's lookups (ComputedValues) made from
them say what the dict the engine built before said."""

import numpy as np
import pytest
from engine_cases import book_of

from xlgen.engine import ExcelError, calculate
from xlgen.engine.evaluate import Calculation
from xlgen.engine.refs import parse_cell
from xlgen.verify.core import ComputedValues, as_floats


def mixed_book():
    """Errors, text, booleans, a constant formula, volatile cells (one keeping its saved
    value), a chain running upwards, two sheets and a third without
    formulas."""
    book = book_of(
        ("first", {"A1": 2.0, "B1": "=A1/0", "C1": "=NA()", "D1": "=1/3", "E1": '="a"&"b"',
                   "F1": "=A1>1", "G1": "=RAND()", "H1": "=IF(A1>5,RAND(),A1*2)",
                   "A3": "=A4+1", "A4": "=A5+1", "A5": "=second!B2*2", "B5": "=IFERROR(B1,-1)"}),
        ("second", {"A2": 5.0, "B2": "=A2+first!A1", "C2": "=SUM(A2:B2)", "Z900": "=ROW()"}),
        ("inputs", {"A1": 1.0}),
    )
    book.sheets[0].cached[parse_cell("G1")] = 0.5   # RAND keeps the file's saved value
    return book


def test_the_values_and_order_made_from_the_codes_are_the_engines():
    book = mixed_book()
    calc = calculate(book)
    assert calc.cell_codes() is not None and len(calc.cell_codes()) == 14
    first = {ref: calc.values[("first", *parse_cell(ref))] for ref in ("B1", "C1", "D1", "E1", "F1", "G1", "H1")}
    assert first == {"B1": ExcelError("#DIV/0!"), "C1": ExcelError("#N/A"), "D1": 1 / 3, "E1": "ab",
                     "F1": True, "G1": 0.5, "H1": 4.0}
    assert [calc.values[("first", row, 1)] for row in (3, 4, 5)] == [16.0, 15.0, 14.0]
    assert calc.values[("first", 5, 2)] == -1.0 and calc.values[("second", 900, 26)] == 900.0
    assert list(calc.values) == calc.order   # one cell each, in calculation order
    assert set(calc.order) == {(sheet.name, *cell) for sheet in book.sheets for cell in sheet.formulas}
    assert calc.order.index(("second", 2, 2)) < calc.order.index(("first", 5, 1)) < calc.order.index(("first", 3, 1))
    assert calc.volatile == calc.saved == [("first", 1, 7)]
    assert calc.constant == [("first", 1, 3), ("first", 1, 4), ("first", 1, 5), ("second", 900, 26)]
    # a Calculation made from a dict (another engine's, a build's) holds what it was given
    again = Calculation(book, dict(calc.values), list(calc.order), calc.volatile, calc.saved, calc.constant)
    assert again.cell_codes() is None and calc.cell_codes() is None   # a dict was handed out
    assert again.values == calc.values and again.order == calc.order
    assert again.value("inputs", 1, 1) == calc.value("inputs", 1, 1) == 1.0


def test_lookups_in_the_codes_agree_with_the_dict():
    calc = calculate(mixed_book())
    coded = ComputedValues.of(calc)
    coded.column("first", [1, 2], 2)
    assert calc._values is None   # nothing asked for the dict
    plain = ComputedValues(dict(calc.values))
    calc._values = None
    rows = np.array([-1, 0, 1, 2, 3, 4, 5, 900, 2 ** 21 + 3, 2 ** 24 + 1] * 8)
    for sheet in ("first", "second", "inputs", "nowhere", "FIRST"):
        for cols in (1, 2, 26, np.resize(np.array([0, 1, 2, 3, 7, 26, 2 ** 15, 2 ** 20 + 1, -2]), len(rows))):
            assert coded.column(sheet, rows, cols) == plain.column(sheet, rows, cols)
            for computed in (coded, plain):   # the values as floats: as_floats of what `column` finds
                found, missing, (floats, numeric) = computed.column_floats(sheet, rows, cols)
                assert (found, missing) == computed.column(sheet, rows, cols)
                expected_floats, expected_numeric = as_floats(found)
                np.testing.assert_array_equal(floats, expected_floats)
                np.testing.assert_array_equal(numeric, expected_numeric)
            assert coded.column(sheet, rows[:3], cols if np.ndim(cols) == 0 else cols[:3]) == \
                plain.column(sheet, rows[:3], cols if np.ndim(cols) == 0 else cols[:3])
    cells = list(plain) + [("first", 1, 1), ("second", np.int64(2), np.int64(2)), ("second", True, 2),
                           ("first", 2 ** 21 + 1, 2), ("nowhere", 1, 1), ("first", -3, 1), ("first", 1, 2 ** 15)]
    for cell in cells:
        assert coded.get(cell, "none") == plain.get(cell, "none")
        assert (cell in coded) == (cell in plain)
    assert coded["second", 2, 3] == 12.0 and len(coded) == len(plain) == 14
    with pytest.raises(KeyError):
        coded["second", 9, 9]
    assert calc._values is None   # still not: all found in the codes
    for cell in (("second", 2, 2.0), ("second", 2, 2.5), "first", ("first", 1)):   # not as the engine keys cells:
        assert coded.get(cell, "none") == plain.get(cell, "none")   # the dict says
    assert calc._values is not None and list(coded) == list(plain)


def test_many_single_lookups_are_answered_by_the_dict():
    calc = calculate(mixed_book())
    coded = ComputedValues.of(calc)
    cells = [("first", row, col) for row in range(6) for col in range(10)]
    coded._single_limit = 10
    found = [coded.get(cell, "none") for cell in cells]
    assert calc._values is not None   # made past the limit
    assert found == [calc.values.get(cell, "none") for cell in cells]


def test_a_book_without_formulas():
    calc = calculate(book_of(("only", {"A1": 1.0})))
    computed = ComputedValues.of(calc)
    assert calc.values == {} and calc.order == [] and len(computed) == 0
    assert computed.column("only", [1, 2], 1) == ([None, None], [0, 1])
    assert computed.get(("only", 1, 1)) is None


def test_a_dict_handed_out_is_what_verify_reads():
    """A caller may change the dict it was given: lookups made after that read the dict."""
    calc = calculate(mixed_book())
    calc.values[("second", 2, 3)] = "changed"
    computed = ComputedValues.of(calc)
    assert computed.get(("second", 2, 3)) == "changed"
    assert computed.column("second", [2] * 100, 3)[0] == ["changed"] * 100


def test_verify_of_a_good_book_makes_no_tuple_per_cell(tmp_path, monkeypatch):
    """verify's lookups read the engine's codes: the (sheet, row, col) order and dict are
    made only to place a mismatch or past many single lookups, neither of which a good
    graddesc book needs."""
    from xlgen.build import build
    from xlgen.engine.evaluate import CellCodes
    from xlgen.verify import verify_file
    path = tmp_path / "graddesc.xlsx"
    build("graddesc", path, ["epochs=2"])
    made = []
    cells = CellCodes.cells
    monkeypatch.setattr(CellCodes, "cells", lambda self: made.append(len(self)) or cells(self))
    assert verify_file(path).ok
    assert made == []
