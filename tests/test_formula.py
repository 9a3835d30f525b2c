"""Formula text: Excel precedence, the course's spelling, prefixes."""

import pytest

from xlgen.formula import (Group, Name, Number, Param, Ref, call, column_letter, column_number,
                           formula, lambda_, quote_sheet)

A, B, C = Ref(4, 1), Ref(4, 2), Ref(4, 3)


@pytest.mark.parametrize("expr, text", [
    (C + Ref(4, 4) * A, "=C4+D4*A4"),
    ((B - Ref(4, 5)) ** 2, "=(B4-E4)^2"),
    (Group(Group(Group(C + 0.01) + A * Ref(4, 4)) - B) ** 2, "=(((C4+0.01)+A4*D4)-B4)^2"),
    (A - (B - C), "=A4-(B4-C4)"),
    (A - B - C, "=A4-B4-C4"),
    (A / (B * C), "=A4/(B4*C4)"),
    (-A ** 2, "=-(A4^2)"),
    ((-A) ** 2, "=(-A4)^2"),
    (A ** B ** C, "=A4^(B4^C4)"),
    (A * -0.5, "=A4*(-0.5)"),
    (Number(1e-5) * A, "=1E-5*A4"),
    (Number(0.0001) * A, "=0.0001*A4"),
    (call("sqrt", call("SUM", A.to(Ref(32, 1)))), "=SQRT(SUM(A4:A32))"),
    (Ref(5, 2, "data"), "=data!B5"),
    (Ref(5, 2, "my data", True, True), "='my data'!$B$5"),
    (Name("derivative").eq("finite"), '=derivative="finite"'),
])
def test_rendering(expr, text):
    assert formula(expr) == text


def test_future_functions_and_parameters_get_their_prefixes():
    grad, mom = Param("grad"), Param("mom")
    assert formula(lambda_([grad, mom], grad * mom)) == "=_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.grad*_xlpm.mom)"
    assert formula(call("LET", Param("x"), 1, Param("x") + 1)) == "=_xlfn.LET(_xlpm.x,1,_xlpm.x+1)"
    assert formula(Name("AVERAGE_GRAD")(A, 0.9)) == "=AVERAGE_GRAD(A4,0.9)"


def test_columns_round_trip():
    for col in (1, 26, 27, 52, 703, 16384):
        assert column_number(column_letter(col)) == col
    assert column_letter(16384) == "XFD"


def test_sheet_names_that_need_quotes():
    assert quote_sheet("basic") == "basic"
    assert quote_sheet("two neuron") == "'two neuron'"
    assert quote_sheet("AB12") == "'AB12'"   # would read as a cell
    assert quote_sheet("it's") == "'it''s'"


def test_non_finite_numbers_are_refused():
    with pytest.raises(ValueError):
        formula(Number(float("inf")) * A)
