"""What calculate() gives: Excel semantics, shapes, names, LET/LAMBDA, order, failures."""

import math
import random

import pytest
from engine_cases import (DIV0, EDGE_FORMULAS, NAME, NUM, REF, VALUE, book_of,
                          edge_chain_values, make_edge_workbook, same_value)

from xlgen.engine import Book, Calculation, ExcelError, Sheet, calculate, read_xlsx
from xlgen.errors import CircularReference, UnsupportedFormula


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    path = make_edge_workbook(tmp_path_factory.mktemp("edge") / "edge.xlsx")
    book = read_xlsx(path)
    return book, calculate(book)


@pytest.mark.parametrize("row", range(1, len(EDGE_FORMULAS) + 1),
                         ids=[f for f, _ in EDGE_FORMULAS])
def test_edge_formula_gives_excels_value(edge, row):
    _, calc = edge
    formula, expected = EDGE_FORMULAS[row - 1]
    value = calc.values[("calc", row, 1)]
    if expected is None:
        return  # checked by test_row_chain
    if isinstance(expected, ExcelError):
        assert value == expected
    else:
        assert same_value(value, expected, rel_tol=1e-12), (formula, value, expected)
        assert type(value) is type(expected)


def test_row_chain_and_mixed_references(edge):
    _, calc = edge
    for cell, expected in edge_chain_values().items():
        assert calc.values[cell] == pytest.approx(expected, rel=1e-14)
    assert calc.values[("calc", 51, 1)] == pytest.approx(32.0)


def test_volatile_cell_keeps_cached_value(edge):
    _, calc = edge
    assert calc.volatile == [("calc", 1, 7)]
    assert calc.values[("calc", 1, 7)] == 4.0
    assert calc.values[("calc", 52, 1)] == 8.0


def test_value_of_constant_empty_and_formula_cells(edge):
    book, calc = edge
    assert calc.value("data", 5, 1) == "abc"
    assert calc.value("data", 7, 1) is None
    assert calc.value("calc", 100, 100) is None
    assert calc.value("calc", 1, 1) == -4.5
    assert calc.value("CALC", 1, 1) == -4.5  # sheet names are case-insensitive in Excel
    assert len(calc.values) == book.formula_count()


def test_order_puts_inputs_first(edge):
    _, calc = edge
    position = {cell: i for i, cell in enumerate(calc.order)}
    assert set(position) == set(calc.values)
    for r in range(2, 11):
        assert position[("calc", r - 1, 5)] < position[("calc", r, 5)]
        assert position[("calc", r, 4)] < position[("calc", r, 5)]
    assert position[("calc", 2, 1)] < position[("calc", 3, 1)]


# --- Books built in memory ------------------------------------------------------------------
def values_of(book):
    return calculate(book).values


def test_errors_overflow_and_division():
    book = book_of(("s", {"A1": 0.0, "A2": 1e200, "B1": "=1/A1", "B2": "=A2*A2", "B3": "=10^400",
                          "B4": "=0^0", "B5": "=0^-1", "B6": "=(-8)^(1/3)", "B7": "=(-8)^3",
                          "B8": "=EXP(1000)", "B9": "=LN(0)", "B10": "=B1*0",
                          "B11": "=A2/1E-200", "B12": "=-A2*A2"}))
    v = values_of(book)
    assert v[("s", 1, 2)] == DIV0
    assert v[("s", 2, 2)] == NUM
    assert v[("s", 3, 2)] == NUM
    assert v[("s", 4, 2)] == NUM
    assert v[("s", 5, 2)] == DIV0
    assert v[("s", 6, 2)] == NUM
    assert v[("s", 7, 2)] == -512.0
    assert v[("s", 8, 2)] == NUM
    assert v[("s", 9, 2)] == NUM
    assert v[("s", 10, 2)] == DIV0
    assert v[("s", 11, 2)] == NUM
    assert v[("s", 12, 2)] == NUM


def test_booleans_text_and_empty_cells():
    book = book_of(("s", {"A1": True, "A2": "2.5", "A3": " 7 ", "A4": "x", "A5": ExcelError("#N/A"),
                          "B1": "=A1*3", "B2": "=A2*2", "B3": "=A3+0", "B4": "=A4&A1", "B5": "=Z9*2",
                          "B6": "=A5+A4", "B7": '=A4=""', "B8": '=Z9=""', "B9": "=Z9=0",
                          "B10": "=A1=1", "B11": "=A1>1E+100", "B12": '=A2&"%"', "B13": '="50%"*2',
                          "B14": "=+A4", "B15": "=IF(A5,1,2)"}))
    v = values_of(book)
    assert v[("s", 1, 2)] == 3.0
    assert v[("s", 2, 2)] == 5.0
    assert v[("s", 3, 2)] == 7.0
    assert v[("s", 4, 2)] == "xTRUE"
    assert v[("s", 5, 2)] == 0.0
    assert v[("s", 6, 2)] == ExcelError("#N/A")
    assert v[("s", 7, 2)] is False
    assert v[("s", 8, 2)] is True
    assert v[("s", 9, 2)] is True
    assert v[("s", 10, 2)] is False  # TRUE is not the number 1 in a comparison
    assert v[("s", 11, 2)] is True  # booleans sort after numbers
    assert v[("s", 12, 2)] == "2.5%"
    assert v[("s", 13, 2)] == 1.0
    assert v[("s", 14, 2)] == "x"
    assert v[("s", 15, 2)] == ExcelError("#N/A")


def test_absolute_mixed_and_cross_sheet_references():
    cells = {"A1": 10.0, "B1": 100.0}
    for r in range(2, 8):
        cells[f"A{r}"] = float(r)
        cells[f"B{r}"] = f"=A{r}*$A$1+A$1+$A{r}+'other sheet'!$B{r}+'other sheet'!C$1"
    other = {f"B{r}": float(r * r) for r in range(1, 8)}
    other["C1"] = 0.5
    v = values_of(book_of(("main", cells), ("other sheet", other)))
    for r in range(2, 8):
        assert v[("main", r, 2)] == r * 10 + 10 + r + r * r + 0.5


def test_names_scope_and_ref_errors():
    book = book_of(("s1", {"A1": 2.0, "B1": "=lr*3", "B2": "=SUM(span)", "B3": "=s2!lr"}),
                   ("s2", {"A1": 5.0, "B1": "=lr*3", "B2": "=broken", "B3": "=nosuchname+1"}),
                   names={(None, "LR"): "s1!$A$1", ("s2", "LR"): "s2!$A$1",
                          (None, "SPAN"): "s1!$A$1:$A$3", ("s2", "BROKEN"): "s2!#REF!",
                          ("s1", "UNUSED"): "s1!#REF!"})
    v = values_of(book)
    assert v[("s1", 1, 2)] == 6.0
    assert v[("s2", 1, 2)] == 15.0
    assert v[("s1", 2, 2)] == 2.0
    assert v[("s1", 3, 2)] == 5.0
    assert v[("s2", 2, 2)] == REF
    assert v[("s2", 3, 2)] == NAME


def test_let_and_named_lambda():
    lam = ("_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.reset,_xlpm.prev,"
           "_xlfn.LET(_xlpm.m,_xlpm.mom*_xlpm.prev+(1-_xlpm.mom)*_xlpm.grad,"
           "IF(_xlpm.reset,_xlpm.grad,_xlpm.m)))")
    cells = {"J1": 0.9, "J3": 0.0}
    for r in range(4, 10):
        cells[f"F{r}"] = float(r)
        cells[f"J{r}"] = f"=AVERAGE_GRAD(F{r},$J$1,FALSE,J{r - 1})"
    cells["K1"] = "=_xlfn.LET(_xlpm.x,J1,_xlpm.y,_xlpm.x*2,_xlfn.LET(_xlpm.x,10,_xlpm.x+_xlpm.y))"
    cells["K2"] = "=AVERAGE_GRAD(F4,$J$1,TRUE,J3)"
    cells["K3"] = "=AVERAGE_GRAD(F4,$J$1)"  # too few arguments
    cells["K4"] = "=_xlfn.LET(_xlpm.r,F4:F6,SUM(_xlpm.r))"
    v = values_of(book_of(("s", cells), names={(None, "AVERAGE_GRAD"): lam}))
    expected = 0.0
    for r in range(4, 10):
        expected = 0.9 * expected + 0.1 * r
        assert v[("s", r, 10)] == pytest.approx(expected, rel=1e-15)
    assert v[("s", 1, 11)] == 11.8
    assert v[("s", 2, 11)] == 4.0
    assert v[("s", 3, 11)] == VALUE
    assert v[("s", 4, 11)] == 15.0


def test_iferror_and_ifna_on_constants_and_cells():
    v = values_of(book_of(("s", {"A1": ExcelError("#N/A"), "A2": 1.0, "B1": "=IFNA(2.5,1)",
                                 "B2": "=IFNA(#N/A,1)", "B3": "=IFERROR(#DIV/0!,7)",
                                 "B4": '=IFERROR("x",7)', "B5": "=IFNA(#DIV/0!,1)",
                                 "B6": "=IFNA(A1,A2*3)", "B7": "=IFERROR(A2/0,-1)",
                                 "B8": "=IFERROR(A2,1/0)"})))
    assert [v[("s", r, 2)] for r in range(1, 9)] == [2.5, 1.0, 7.0, "x", DIV0, 3.0, -1.0, 1.0]


def test_circular_reference_lists_one_loop():
    book = book_of(("basic", {"A1": "=B1+1", "B1": "=C1*2", "C1": "=A1", "D1": "=1"}))
    with pytest.raises(CircularReference) as info:
        calculate(book)
    cells = info.value.cells
    assert cells[0] == cells[-1]
    assert sorted(set(cells)) == ["basic!A1", "basic!B1", "basic!C1"]
    assert "circular reference" in str(info.value)


def test_self_reference_and_range_loop():
    with pytest.raises(CircularReference) as info:
        calculate(book_of(("s", {"A1": "=A1+1"})))
    assert info.value.cells == ["s!A1", "s!A1"]
    with pytest.raises(CircularReference):
        calculate(book_of(("s", {"A1": 1.0, "A2": "=SUM(A1:A3)", "A3": "=A2"})))


@pytest.mark.parametrize("formula, what", [
    ("=NOSUCHFUNCTION(1)", "function NOSUCHFUNCTION"),
    ("=_xlfn.LAMBDA(_xlpm.x,_xlpm.x+1)(2)", "inline LAMBDA"),
    ("=SUM(1,", "cannot be parsed"),
    ("=OFFSET(INDEX(A1:A3,2),1,1)", "OFFSET"),
])
def test_unsupported_names_the_first_cell(formula, what):
    book = book_of(("a", {"A1": 1.0, "B2": "=A1+1"}),
                   ("b", {"C3": formula, "D9": "=NOSUCHFUNCTION(2)", "A1": "=1+1"}))
    with pytest.raises(UnsupportedFormula) as info:
        calculate(book)
    assert info.value.cell == "b!C3"
    assert what in info.value.what


def test_unsupported_order_is_sheet_then_row():
    book = book_of(("first", {"B5": "=FOO(1)", "A2": "=BAR(1)"}), ("second", {"A1": "=BAZ(1)"}))
    with pytest.raises(UnsupportedFormula) as info:
        calculate(book)
    assert info.value.cell == "first!A2"


def test_volatile_without_cache_is_computed():
    book = book_of(("s", {"A1": "=RANDBETWEEN(3,5)", "A2": "=RAND()", "A3": "=A1*2",
                          "A4": "=_xlfn.RANDARRAY()", "A5": "=NOW()-TODAY()"}))
    calc = calculate(book)
    assert set(calc.volatile) == {("s", r, 1) for r in (1, 2, 4, 5)}
    assert calc.values[("s", 1, 1)] in (3.0, 4.0, 5.0)
    assert 0.0 <= calc.values[("s", 2, 1)] < 1.0
    assert calc.values[("s", 3, 1)] == 2 * calc.values[("s", 1, 1)]
    assert 0.0 <= calc.values[("s", 4, 1)] < 1.0
    assert 0.0 <= calc.values[("s", 5, 1)] < 1.0


def test_volatile_with_cache_keeps_it():
    book = book_of(("s", {"A1": "=RANDBETWEEN(1,100)", "A2": "=A1+1",
                          "A3": "=OFFSET(A1,1,0)", "A4": "=A3*10"}))
    book.sheets[0].cached.update({(1, 1): 42.0, (3, 1): 43.0})
    calc = calculate(book)
    assert calc.values[("s", 1, 1)] == 42.0
    assert calc.values[("s", 2, 1)] == 43.0
    assert calc.values[("s", 4, 1)] == 430.0
    assert calc.order.index(("s", 1, 1)) < calc.order.index(("s", 2, 1))


def test_progress_is_called_a_bounded_number_of_times():
    cells = {f"A{r}": f"=A{r - 1}+1" for r in range(2, 5001)}
    cells["A1"] = 1.0
    calls = []
    calc = calculate(book_of(("s", cells)), progress=lambda done, total, phase: calls.append((done, total, phase)))
    compiling = [call for call in calls if call[2] == "compiling"]
    computing = [call for call in calls if call[2] == "computing"]
    assert calls == compiling + computing and compiling[-1] == (4999, 4999, "compiling")
    assert 1 <= len(computing) <= 302
    assert computing[-1] == (4999, 4999, "computing")
    assert all(a[0] <= b[0] for a, b in zip(computing, computing[1:]))
    assert calc.values[("s", 5000, 1)] == 5000.0


def test_shapes_are_compiled_once_per_shape(monkeypatch):
    from xlgen.engine import compiler
    compiled = []
    original = compiler.Compiler.compile

    def counting(self, *args, **kwargs):
        compiled.append(args[1])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(compiler.Compiler, "compile", counting)
    cells = {"F1": 0.001, "C1": 1.0}
    for r in range(2, 402):
        cells[f"A{r}"] = float(r)
        cells[f"B{r}"] = f"=A{r}*$F$1+B{r - 1}" if r > 2 else "=$C$1"
        cells[f"D{r}"] = f"=SQRT(ABS(B{r}))+SUM(A$2:A{r})"
    calc = calculate(book_of(("s", cells)))
    assert len(compiled) == 3
    assert calc.values[("s", 401, 4)] == pytest.approx(
        math.sqrt(1.0 + 0.001 * sum(range(3, 402))) + sum(range(2, 402)))


def test_empty_book_and_book_without_formulas():
    assert calculate(Book()).values == {}
    calc = calculate(book_of(("s", {"A1": 1.0})))
    assert isinstance(calc, Calculation)
    assert calc.values == {} and calc.order == [] and calc.value("s", 1, 1) == 1.0


def test_array_formula_anchor_takes_top_left():
    book = book_of(("s", {"A1": 1.0, "A2": 2.0, "A3": 3.0, "B1": "=A1:A3*10", "C2": "=A1:A3*10",
                          "D2": "=A1:A3", "D9": "=A1:A3"}))
    book.sheets[0].array_refs[(1, 2)] = "B1:B3"
    v = values_of(book)
    assert v[("s", 1, 2)] == 10.0  # array formula: the anchor shows the first element
    assert v[("s", 2, 4)] == 2.0  # plain formula: implicit intersection with row 2
    assert v[("s", 9, 4)] == VALUE  # no row 9 in A1:A3


def test_million_cell_chain_without_recursion():
    """A chain of 999,999 formulas that runs down column A, up B, down C and up D.

    Neither sheet order nor its reverse computes it, so most of it goes through the
    explicit-stack walk, half a million cells deep.
    """
    n = 250_000
    sheet = Sheet("chain")
    sheet.constants[(1, 1)] = 0.0
    for r in range(2, n + 1):
        sheet.formulas[(r, 1)] = f"A{r - 1}+1"
    for r in range(1, n + 1):
        sheet.formulas[(r, 2)] = f"B{r + 1}+1" if r < n else f"A{n}+1"
        sheet.formulas[(r, 3)] = f"C{r - 1}+1" if r > 1 else "B1+1"
        sheet.formulas[(r, 4)] = f"D{r + 1}+1" if r < n else f"C{n}+1"
    calc = calculate(Book(sheets=[sheet]))
    assert len(calc.values) == 4 * n - 1
    assert calc.values[("chain", 1, 4)] == float(4 * n - 1)
    assert calc.values[("chain", 1, 2)] == float(2 * n - 1)
    position = {cell: i for i, cell in enumerate(calc.order)}
    assert position[("chain", n, 4)] < position[("chain", 1, 4)]
    assert position[("chain", 1, 3)] < position[("chain", n, 3)]


def test_random_arithmetic_matches_python():
    """Random +,-,*,/ trees over cells: the compiled fast paths agree with plain floats."""
    rng = random.Random(7)
    cells = {f"A{r}": rng.uniform(-10, 10) for r in range(1, 11)}
    expected = {}
    for r in range(1, 201):
        refs = [rng.randint(1, 10) for _ in range(4)]
        ops = [rng.choice("+-*/") for _ in range(3)]
        text = f"((A{refs[0]}{ops[0]}A{refs[1]}){ops[1]}A{refs[2]}){ops[2]}A{refs[3]}"
        cells[f"B{r}"] = "=" + text
        env = {f"A{i}": cells[f"A{i}"] for i in range(1, 11)}
        expected[r] = eval(text, {}, env)  # noqa: S307 - our own expression
    v = values_of(book_of(("s", cells)))
    for r, value in expected.items():
        assert v[("s", r, 2)] == value


def test_inline_float_paths_agree_with_the_helpers():
    """Compiled float-with-float code gives what the general helpers give, for any floats."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from xlgen.engine import runtime as rt

    helpers = {"+": rt.add, "-": rt.sub, "*": rt.mul, "/": rt.div, "^": rt.power, "=": rt.eq,
               "<>": rt.ne, "<": rt.lt, ">": rt.gt, "<=": rt.le, ">=": rt.ge}
    floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                       st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -8.0, 1e308, 1e-308]))

    @settings(max_examples=60, deadline=None)
    @given(floats, floats)
    def check(x, y):
        cells = {"A1": x, "B1": y}
        for i, op in enumerate(helpers, 1):
            cells[f"C{i}"] = f"=A1{op}B1"
            cells[f"D{i}"] = f"=A1{op}2"
        values = values_of(book_of(("s", cells)))
        for i, (op, helper) in enumerate(helpers.items(), 1):
            for col, right in ((3, y), (4, 2.0)):
                expected = rt.to_public(helper(x, right))
                got = values[("s", i, col)]
                assert got == expected or (got != got and expected != expected), (x, op, right)

    check()


def test_sumproduct_of_ranges_larger_than_the_book_pairs_entries_by_position():
    """A range with more cells than the book holds values used to be gathered as its
    filled cells only, so SUMPRODUCT paired A3 with B5 (850 here, not 500)."""
    sheet = Sheet("s")
    for r in range(1, 6):
        sheet.constants[(r, 1)] = float(r)  # A1:A5
    for r in range(3, 8):
        sheet.constants[(r, 2)] = 10.0 * r  # B3:B7
    sheet.formulas[(1, 4)] = "SUMPRODUCT(A1:A100,B1:B100)"
    sheet.formulas[(2, 4)] = "SUM(A1:A100)"
    values = calculate(Book(sheets=[sheet])).values
    assert values[("s", 1, 4)] == 3 * 30.0 + 4 * 40.0 + 5 * 50.0
    assert values[("s", 2, 4)] == 15.0


def test_cells_that_wait_are_ordered_after_the_rest_in_sheet_order():
    # B1 and B3 read cells below them: they wait, and come after every cell computed in
    # sheet order, in the order they became ready; the others keep sheet order
    cells = {"A1": 1.0, "B1": "=B4*2", "C1": "=A1+1", "B2": "=C1+1", "B3": "=B5+B2",
             "B4": "=B2+1", "B5": "=B4+1", "C5": "=B5+1"}
    calc = calculate(book_of(("s", cells)))
    assert calc.order == [("s", 1, 3), ("s", 2, 2), ("s", 4, 2), ("s", 5, 2), ("s", 5, 3),
                          ("s", 1, 2), ("s", 3, 2)]
    assert calc.values[("s", 3, 2)] == 5.0 + 3.0 and calc.values[("s", 1, 2)] == 8.0


def test_keys_without_the_waiting_ones_whatever_their_order():
    import random

    from xlgen.engine.evaluate import _without
    rng = random.Random(7)
    for _ in range(500):
        keys = sorted(rng.sample(range(10_000), rng.randint(0, 60)))
        if rng.random() < 0.3:  # not in sheet order: found by testing every key instead
            rng.shuffle(keys)
        taken = [key for key in keys if rng.random() < 0.2]
        assert _without(keys, taken) == [key for key in keys if key not in taken]
