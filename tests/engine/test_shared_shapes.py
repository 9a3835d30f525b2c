"""Formulas that differ only in where their references point share one parse and one
compiled function (compiler._tree, the shape factories): each cell must still read its
own cells."""

from engine_cases import book_of

from xlgen.engine import calculate


def test_per_epoch_sums_read_their_own_rows():
    # rmse-like: each row of column C sums its own block of three rows of column A, so
    # every cell is a new shape with the same skeleton (offsets differ, extents equal)
    cells = {f"A{r}": float(r * r) for r in range(1, 31)}
    for i in range(10):
        cells[f"C{i + 1}"] = f"=SQRT(SUM(A{3 * i + 1}:A{3 * i + 3}))+$A$1*A{i + 1}"
    values = calculate(book_of(("s", cells))).values
    for i in range(10):
        block = sum(float(r * r) for r in range(3 * i + 1, 3 * i + 4))
        assert values[("s", i + 1, 3)] == block ** 0.5 + 1.0 * (i + 1) ** 2


def test_equal_rows_in_one_formula_and_different_in_the_next():
    # the first cell's references share a row (A2 and B2), the next ones' do not: the
    # shared code must not tie them together
    cells = {f"A{r}": float(r) for r in range(1, 11)}
    cells.update({f"B{r}": 100.0 * r for r in range(1, 11)})
    cells["D1"] = "=A2-B2"
    cells["D2"] = "=A4-B3"
    cells["D3"] = "=A6-B4"
    cells["D4"] = "=A2-B2"
    values = calculate(book_of(("s", cells))).values
    assert values[("s", 1, 4)] == 2.0 - 200.0
    assert values[("s", 2, 4)] == 4.0 - 300.0
    assert values[("s", 3, 4)] == 6.0 - 400.0
    assert values[("s", 4, 4)] == 2.0 - 200.0


def test_a_reference_inside_a_string_is_not_shifted():
    # "A1" in a string literal is text, not a reference: it stays in the skeleton while
    # the real reference beside it moves
    cells = {f"A{r}": float(r) for r in range(1, 11)}
    cells["C1"] = '=LEN("A1")+A2'
    cells["C2"] = '=LEN("A1")+A5'
    cells["C3"] = '=LEN("A1")+A9'
    values = calculate(book_of(("s", cells))).values
    assert [values[("s", r, 3)] for r in (1, 2, 3)] == [4.0, 7.0, 11.0]
