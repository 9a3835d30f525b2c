"""The engine's own reader of plain formula text (parse._fast_tree) must give exactly the
tree formulas' parser gives, or hand the text to formulas: a formula it read otherwise
would be computed otherwise. Every text here is read both ways and compared."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlgen.engine import parse


def _formulas_outcome(text: str):
    """What parse_tree did before the fast reader: formulas' tree, or how it refused."""
    try:
        if parse._unbalanced(text):
            return "unbalanced"
        return parse.formulas_tree(text)
    except parse.UnsupportedSyntax as exc:
        return ("unsupported", exc.what)
    except parse.ParseError:
        return "parse error"


def _agrees(text: str) -> bool:
    fast = parse._fast_tree(text)
    return fast is None or fast == _formulas_outcome(text)


PLAIN = [
    "A1+B2*3", "=A1+B2*3", "-2^2", "2^-3^2", "A1*-B1^2", "--A1", "A1--B1", "A1-+-B1", "A1*--B1",
    "A1^+-B1", "+A1", "-(1)", "(1)", "A1%", "-A1%", "2^3%^4", "1%-1", "2*3%", "A1&-B1", "1<2<3",
    "1-2-3", "2^3^2", "A1<=-B1", "A1>=B1", "A1<>B1", "A1=-1", "A1<B1", "A1>B1", '"a""b"&"c"',
    '""', "1E-8", "1e+5", ".5", "1.5e+3", "0.01", "TRUE", "false", "true+1", "TRUE()", "FALSE()",
    "SUM(A1:B2,,3)", "F()", "F(,)", "F(a,)", "F(,a)", "F(1, 2,  3)", "F(1, ,2)", "F(1, )",
    "F(-1,2)", "LOG10(100)", "ATAN2(1,2)", "COVARIANCE.P(A1:A2,B1:B2)", "_xlfn.STDEV.S(A1:A3)",
    "data!B5", "data!$C$1", "'my s'!$A$1:B2", "A1!B2", "Sheet1!A1:B2", "XYZ123", "XFD1048576",
    "$A$1", "A$1", "$A1", "x_step*2", "beta", "R", "C", "RC1", "run1_learning_rate", "conv1_filter2",
    "x.y", "_xlpm.x*_xlpm.y", "A1.5", "_xlfn.x",
    'IF(A1=0,"none",INDEX($Q$25:$Q$111,O111))', "IF(CU9>($GD$9+1.5), CU9, 0)",
    'C25-IF(derivative="finite",I25,K25)*learning_rate', "SQRT(SUM(F25:F53))",
    "(E25*MAX((C25+0.01)*A25+D25,0)+F25-B25)^2", 'AND(A1,B1)', "IF(A1,,1)",
]

NOT_PLAIN = [  # handed to formulas (whatever it makes of them)
    "A1 B1", "A1 +B1", "F(1 ,2)", "{1,2;3,4}", "LET(x,1,x)", "_xlfn.LAMBDA(_xlpm.a,_xlpm.a)",
    'INDIRECT("A1")', "_xlfn.ANCHORARRAY(A1)", "A1#", "#REF!", "s!#REF!", "a1", "A01", "R1C1",
    "r2c3", "A1:B2:C3", "A:A", "1:2", "TRUE!A1", "TRUE(1)", "TRUE_x", "A1%%",
    "SUM(1)2", "(1)(2)", "A1(", "@A1", "A1*/B1", "A1+", "", "=", "==A1", "(1,2)", "1.", "1E5",
    "2A1", "A1\n+B1", "'a''b'!A1", "[1]s!A1",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_is_read_as_formulas_reads_it(text):
    fast = parse._fast_tree(text)
    assert fast is not None, text
    assert fast == _formulas_outcome(text)
    assert parse.parse_tree(text) == fast


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_other_text_goes_to_formulas(text):
    assert parse._fast_tree(text) is None


def test_deep_nesting_goes_to_formulas():
    text = "(" * 3000 + "1" + ")" * 3000
    assert parse._fast_tree(text) is None
    assert parse.parse_tree(text) == ("lit", 1.0)


_PIECES = [
    "A1", "$B$2", "B2:C3", "C$3", "data!B5", "'my s'!A1", "Sheet1!", "x", "beta", "run1_rate",
    "a1", "R1C1", "RC1", "TRUE", "FALSE", "true", "1", "0.5", ".5", "1E-8", "1e5", "2.", "05",
    '"s"', '"a""b"', '""', "+", "-", "*", "/", "^", "&", "=", "<", ">", "<=", ">=", "<>", "%",
    "(", ")", ",", ", ", " ", "SUM(", "IF(", "F(", "LOG10(", "TRUE(", "LET(", "INDIRECT(",
    "_xlfn.STDEV.S(", "#REF!", "#", "{", "}", ";", ":", "!", "@", "$", "A", "XFD1048576", ".",
    "_", "é", "\n", "_xlpm.v", "a.b",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12))
def test_random_text_is_read_as_formulas_reads_it(pieces):
    assert _agrees("".join(pieces))


_PLAIN_PIECES = ["A1", "$B$2", "B2:C3", "s!C4", "x", "1", "0.5", '"t"', "TRUE", "+", "-", "*",
                 "/", "^", "&", "=", "<", "<=", "<>", "%", "(", ")", ",", "SUM(", "F("]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_PLAIN_PIECES), min_size=1, max_size=16))
def test_random_plain_text_is_read_as_formulas_reads_it(pieces):
    # mostly well-formed arithmetic: the reader takes many of these, each checked
    assert _agrees("".join(pieces))


_OPERANDS = st.sampled_from(["A1", "$B$2", "C$3:$D4", "s!E5", "'a b'!F6:G7", "x", "run1_rate",
                             "_xlpm.v", "1", "0.5", ".25", "2E-3", '"t"', '"q""q"', '""', "TRUE", "false", "F()"])
_BINARY = st.sampled_from(["+", "-", "*", "/", "^", "&", "=", "<", ">", "<=", ">=", "<>",
                           "+-", "--", "-+-", "*-", "^--", "<>+", "=-"])


def _formula_text():
    def extend(inner):
        binary = st.tuples(inner, _BINARY, inner).map("".join)
        unary = st.tuples(st.sampled_from(["-", "+", "--", "+-"]), inner).map("".join)
        percent = inner.map(lambda e: e + "%")
        grouped = inner.map(lambda e: f"({e})")
        args = st.lists(st.one_of(inner, st.just("")), min_size=1, max_size=3)
        call = st.tuples(st.sampled_from(["SUM", "IF", "_xlfn.STDEV.S", "LOG10"]), args,
                         st.sampled_from([",", ", "])).map(lambda c: f"{c[0]}({c[2].join(c[1])})")
        return st.one_of(binary, unary, percent, grouped, call)
    return st.recursive(_OPERANDS, extend, max_leaves=10)


@settings(max_examples=2000, deadline=None)
@given(_formula_text())
def test_random_formulas_are_read_as_formulas_reads_them(text):
    # well-formed text of the reader's grammar: precedence, sign runs, %, empty arguments
    # (each of them is read here, but for a doubled %, which formulas refuses)
    fast = parse._fast_tree(text)
    if "%%" in text:
        assert fast is None and _formulas_outcome(text) == "parse error"
    else:
        assert fast is not None and fast == _formulas_outcome(text)
