"""Volatility is decided by evaluation: a cell is volatile when a volatile function ran
while computing it, not because a volatile name appears in its text, in a branch not
taken or in the body of a LAMBDA it calls. Only volatile cells keep the file's saved
value; everything else is computed."""

import pytest
from engine_cases import VALUE, book_of

from xlgen.engine import calculate
from xlgen.errors import UnsupportedFormula

# the forum's AVERAGE_GRAD, stored as Excel stores it (prefixes added, nothing else changed):
# RANDARRAY with six arguments, in an IF branch taken only when grad_avg is "None"
FORUM_AVERAGE_GRAD = (
    "_xlfn.LAMBDA(_xlpm.p.grad.data,_xlpm.mom,_xlpm.dampening,_xlpm.grad_avg,"
    "_xlfn.LET(_xlpm.ini_grad,IF(_xlpm.grad_avg=\"None\",_xlfn.RANDARRAY(ROWS(_xlpm.p.grad.data),"
    "COLUMNS(_xlpm.p.grad.data),,,,FALSE)*0,_xlpm.grad_avg),_xlpm.damp,"
    "IF(_xlpm.dampening=FALSE,1,1-_xlpm.mom),_xlpm.p.grad.data*_xlpm.mom+_xlpm.grad_avg*_xlpm.damp))")


def with_saved(book, sheet_index: int, saved: dict):
    from xlgen.engine.refs import parse_cell
    book.sheets[sheet_index].cached.update({parse_cell(ref): value for ref, value in saved.items()})
    return book


def test_a_branch_not_taken_is_computed():
    book = with_saved(book_of(("s", {"A1": 1.0, "B1": "=IF(A1>5,RAND(),A1*2)", "C1": "=B1+1"})),
                      0, {"B1": 99.0, "C1": 100.0})
    calc = calculate(book)
    assert calc.values[("s", 1, 2)] == 2.0 and calc.values[("s", 1, 3)] == 3.0
    assert calc.volatile == [] and calc.saved == []


def test_a_branch_taken_keeps_the_saved_value():
    book = with_saved(book_of(("s", {"A1": 10.0, "B1": "=IF(A1>5,RAND(),A1*2)", "C1": "=B1+1"})),
                      0, {"B1": 0.25, "C1": 100.0})
    calc = calculate(book)
    assert calc.values[("s", 1, 2)] == 0.25 and calc.values[("s", 1, 3)] == 1.25
    assert calc.volatile == calc.saved == [("s", 1, 2)]


def test_a_draw_without_a_saved_value_is_volatile_but_not_saved():
    calc = calculate(book_of(("s", {"A1": 10.0, "B1": "=IF(A1>5,RAND(),A1*2)"})))
    assert 0.0 <= calc.values[("s", 1, 2)] < 1.0
    assert calc.volatile == [("s", 1, 2)] and calc.saved == []


def test_a_lambda_with_a_volatile_branch_not_taken_is_computed_at_every_call():
    names = {(None, "SCALED"): "_xlfn.LAMBDA(_xlpm.x,IF(_xlpm.x=\"never\",RAND(),100*_xlpm.x))"}
    cells = {f"A{r}": float(r) for r in range(1, 6)}
    cells.update({f"B{r}": f"=SCALED(A{r})" for r in range(1, 6)})
    book = with_saved(book_of(("s", cells), names=names), 0, {f"B{r}": float(r) for r in range(1, 6)})
    calc = calculate(book)
    assert [calc.values[("s", r, 2)] for r in range(1, 6)] == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert calc.volatile == [] and calc.saved == []


def test_a_lambda_whose_volatile_call_runs_makes_its_callers_volatile():
    names = {(None, "NOISY"): "_xlfn.LAMBDA(_xlpm.x,_xlpm.x+0*RAND())"}
    book = with_saved(book_of(("s", {"A1": 3.0, "B1": "=NOISY(A1)", "B2": "=A1*2"}), names=names),
                      0, {"B1": 7.0, "B2": 6.0})
    calc = calculate(book)
    assert calc.values[("s", 1, 2)] == 7.0            # the saved value: not computed
    assert calc.saved == [("s", 1, 2)]


def test_the_forums_average_grad_is_computed_not_taken_as_volatile():
    names = {(None, "AVERAGE_GRAD"): FORUM_AVERAGE_GRAD}
    book = with_saved(book_of(("s", {"A1": 4.0, "B1": 0.0, "C1": "=AVERAGE_GRAD(A1,0.9,FALSE,B1)",
                                     "B2": "None", "C2": "=AVERAGE_GRAD(A1,0.9,FALSE,B2)"}), names=names),
                      0, {"C1": 123.0, "C2": 456.0})
    calc = calculate(book)
    assert calc.values[("s", 1, 3)] == pytest.approx(4.0 * 0.9)   # p*mom + grad_avg*damp: the forum's swap
    assert calc.values[("s", 2, 3)] == VALUE                       # "None" * damp
    assert calc.volatile == [] and calc.saved == []


@pytest.mark.parametrize("formula", [
    "=_xlfn.RANDARRAY(1,1,,,,FALSE)",     # RANDARRAY takes at most five
    "=RAND(1)", "=RANDBETWEEN(1)", "=RANDBETWEEN(1,2,3)", "=NOW(1)", "=TODAY(1)",
    "=OFFSET(A1)", "=OFFSET(A1,1,1,1,1,1)", "=INDIRECT()",
    "=ISERROR(_xlfn.RANDARRAY(1,1,,,,FALSE))*0+_xlfn.RANDARRAY(1,1,,,,FALSE)",
])
def test_an_impossible_number_of_arguments_is_an_error_not_a_draw(formula):
    book = with_saved(book_of(("s", {"A1": 1.0, "B1": formula})), 0, {"B1": 0.5})
    calc = calculate(book)
    assert calc.values[("s", 1, 2)] == VALUE
    assert calc.volatile == [] and calc.saved == []


def test_six_argument_randarray_in_a_branch_taken_is_value_error():
    calc = calculate(book_of(("s", {"A1": "None", "B1": "=IF(A1=\"None\",_xlfn.RANDARRAY(1,1,,,,FALSE)*0,A1)",
                                    "B2": "=IF(A1=\"x\",_xlfn.RANDARRAY(1,1,,,,FALSE)*0,5)"})))
    assert calc.values[("s", 1, 2)] == VALUE and calc.values[("s", 2, 2)] == 5.0


def test_indirect_of_a_text_only_where_it_runs_needs_a_saved_value():
    book = book_of(("s", {"A1": 1.0, "A2": 2.0, "B1": "=IF(A1>5,INDIRECT(\"A\"&(A1-4)),A1+10)"}))
    calc = calculate(book)
    assert calc.values[("s", 1, 2)] == 11.0 and calc.volatile == []
    book.sheets[0].constants[(1, 1)] = 6.0
    with pytest.raises(UnsupportedFormula) as info:
        calculate(book)
    assert info.value.cell == "s!B1" and "INDIRECT" in info.value.what
    book.sheets[0].cached[(1, 2)] = 2.0
    calc = calculate(book)
    assert calc.values[("s", 1, 2)] == 2.0 and calc.saved == [("s", 1, 2)]


def test_offset_is_computed_not_volatile():
    """OFFSET is volatile in Excel, but its inputs decide its result: computed, and checked."""
    book = book_of(("s", {"A1": 6.0, "A2": 2.0, "B1": "=IF(A1>5,OFFSET(A1,1,0),A1+10)"}))
    book.sheets[0].cached[(1, 2)] = 99.0
    calc = calculate(book)
    assert calc.values[("s", 1, 2)] == 2.0 and calc.volatile == [] and calc.saved == []


def test_a_volatile_cell_waits_for_its_inputs():
    """B1 reads A3, computed later in sheet order: it runs after it, then keeps its save."""
    book = with_saved(book_of(("s", {"A1": 10.0, "B1": "=IF(A3>5,RAND(),0)", "A3": "=A1*2", "C3": "=B1+1"})),
                      0, {"B1": 0.5})
    calc = calculate(book)
    assert calc.saved == [("s", 1, 2)] and calc.values[("s", 3, 3)] == 1.5
    assert calc.order.index(("s", 3, 1)) < calc.order.index(("s", 1, 2)) < calc.order.index(("s", 3, 3))


def test_formulas_that_read_no_cell_are_constants():
    names = {(None, "RATE"): "s!$A$1", (None, "HALF"): "0.5", (None, "TWICE"): "_xlfn.LAMBDA(_xlpm.x,2*_xlpm.x)"}
    book = book_of(("s", {"A1": 1.0, "B1": "=1/3", "B2": "=FALSE()", "B3": "=A1*2", "B4": "=RAND()",
                          "B5": "=RATE*2", "B6": "=HALF", "B7": "=TWICE(4)", "B8": "=TWICE(A1)",
                          "B9": "=ROW()", "B10": "=SUM(A1:A3)"}), names=names)
    calc = calculate(book)
    assert sorted(calc.constant) == [("s", r, 2) for r in (1, 2, 6, 7, 9)]
