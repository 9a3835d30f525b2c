"""Values and the slow paths the generated cell functions fall back to.

Inside the engine a value is a Python float, str or bool, None for an empty cell, a
`formulas` XlError for an error (so ranges can go to `formulas`' functions unconverted),
or a 2-D numpy object array (a range or an array result) in `formulas`' own form
(schedula's EMPTY for empty cells). Generated code handles float-with-float itself and
calls these helpers for everything else; they follow Excel: errors first (left, then
right), empty is 0 (or "" next to text), TRUE is 1, numeric text is a number.
"""

from __future__ import annotations

import math
import re

import numpy as np
import schedula as sh
from formulas.errors import BaseError as FormulasError
from formulas.functions import _text2num
from formulas.functions.operators import OPERATORS
from formulas.functions.text import _str
from formulas.tokens.operand import XlError, Error

from .book import ExcelError

EMPTY = sh.EMPTY
ERRORS = Error.errors  # '#DIV/0!' -> XlError
E_DIV = ERRORS["#DIV/0!"]
E_NUM = ERRORS["#NUM!"]
E_VALUE = ERRORS["#VALUE!"]
E_REF = ERRORS["#REF!"]
E_NAME = ERRORS["#NAME?"]
E_NA = ERRORS["#N/A"]
E_NULL = ERRORS["#NULL!"]
INF = math.inf
ndarray = np.ndarray


class RuntimeUnsupported(Exception):
    """Raised while evaluating a cell that needs something the engine cannot do."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def to_internal(value):
    """A Book value (constant or cached) -> the engine's form."""
    t = type(value)
    if t is float or t is str or t is bool or value is None:
        return value
    if t is ExcelError or isinstance(value, ExcelError):
        return ERRORS.get(value.code) or XlError(value.code)
    if isinstance(value, (int, np.integer, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)


_EXCEL_ERRORS: dict = {}


def to_public(value):
    """The engine's value -> the API's: float | str | bool | None | ExcelError."""
    if type(value) is XlError:
        err = _EXCEL_ERRORS.get(value)
        if err is None:
            err = _EXCEL_ERRORS[value] = ExcelError(str(value))
        return err
    return value


def from_xl(value):
    """A `formulas` function result -> engine value (1x1 arrays become scalars)."""
    t = type(value)
    if t is float:
        return value if -INF < value < INF else E_NUM
    if isinstance(value, ndarray):
        if value.size != 1:
            # formulas' Array subclass -> plain ndarray, so `type(x) is ndarray` finds it
            return value if type(value) is ndarray else value.view(ndarray)
        value = value.flat[0]
        t = type(value)
        if t is float:
            return value if -INF < value < INF else E_NUM
    if t is XlError:
        return value
    if value is EMPTY or value is None:
        return None
    if t is bool or t is np.bool_:
        return bool(value)
    if t is str:
        return value
    if isinstance(value, XlError):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value)
        return value if -INF < value < INF else E_NUM
    if isinstance(value, str):
        return str(value)
    if isinstance(value, complex):
        return E_NUM
    return E_VALUE


def to_xl(value):
    """Engine value -> argument for a `formulas` function (empty becomes EMPTY)."""
    return EMPTY if value is None else value


def cell_array(value):
    """A single-cell reference as `formulas` functions receive it: a 1x1 array."""
    arr = np.empty((1, 1), object)
    arr[0, 0] = EMPTY if value is None else value
    return arr


_NUMBER_RE = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(%?)\s*$")


def text_to_number(text: str):
    """Excel's coercion of text in arithmetic: '3' -> 3.0, '50%' -> 0.5, dates; else #VALUE!."""
    m = _NUMBER_RE.match(text)
    if m:
        x = float(m.group(1))
        if m.group(2):
            x /= 100.0
        return x if -INF < x < INF else E_NUM
    if not any(ch.isdigit() for ch in text):
        return E_VALUE
    try:
        x = _text2num(text)
    except Exception:  # formulas' date parser raises several kinds for non-dates
        return E_VALUE
    if isinstance(x, (float, int)) and not isinstance(x, bool) and -INF < x < INF:
        return float(x)
    return E_VALUE


def number(v):
    """Scalar -> float, or the XlError that stops the arithmetic."""
    t = type(v)
    if t is float:
        return v
    if v is None:
        return 0.0
    if t is bool:
        return 1.0 if v else 0.0
    if t is XlError:
        return v
    if t is str:
        return text_to_number(v)
    if isinstance(v, (int, np.integer, np.floating)):
        return float(v)
    return E_VALUE


def _array_op(symbol, *args):
    try:
        return from_xl(OPERATORS[symbol](*(to_xl(a) for a in args)))
    except (FormulasError, ValueError, TypeError, ArithmeticError, IndexError):
        return E_VALUE  # e.g. arrays of shapes that do not broadcast


def _operands(a, b):
    """Errors first, left to right; then numbers. Returns (x, y, error)."""
    if type(a) is XlError:
        return None, None, a
    if type(b) is XlError:
        return None, None, b
    x = number(a)
    if type(x) is XlError:
        return None, None, x
    y = number(b)
    if type(y) is XlError:
        return None, None, y
    return x, y, None


def _finite(x):
    return x if -INF < x < INF else E_NUM


def add(a, b):
    if type(a) is ndarray or type(b) is ndarray:
        return _array_op("+", a, b)
    x, y, err = _operands(a, b)
    return err if err is not None else _finite(x + y)


def sub(a, b):
    if type(a) is ndarray or type(b) is ndarray:
        return _array_op("-", a, b)
    x, y, err = _operands(a, b)
    return err if err is not None else _finite(x - y)


def mul(a, b):
    if type(a) is ndarray or type(b) is ndarray:
        return _array_op("*", a, b)
    x, y, err = _operands(a, b)
    return err if err is not None else _finite(x * y)


def div(a, b):
    if type(a) is ndarray or type(b) is ndarray:
        return _array_op("/", a, b)
    x, y, err = _operands(a, b)
    if err is not None:
        return err
    if not y:
        return E_DIV
    return _finite(x / y)


def power(a, b):
    """Excel's ^: 0^0 and (negative)^(fraction) are #NUM!, 0^(negative) is #DIV/0!."""
    if type(a) is ndarray or type(b) is ndarray:
        return _array_op("^", a, b)
    x, y, err = _operands(a, b)
    if err is not None:
        return err
    if x == 0.0:
        if y == 0.0:
            return E_NUM
        if y < 0.0:
            return E_DIV
    if x < 0.0 and not y.is_integer():
        return E_NUM
    try:
        r = x ** y
    except (OverflowError, ZeroDivisionError):
        return E_NUM
    if type(r) is complex:
        return E_NUM
    return _finite(r)


def neg(a):
    if type(a) is ndarray:
        return _array_op("U-", a)
    x = number(a)
    return x if type(x) is XlError else -x


def plus(a):
    return a  # unary + changes nothing in Excel, not even text


def percent(a):
    if type(a) is ndarray:
        return _array_op("%", a)
    x = number(a)
    return x if type(x) is XlError else x / 100.0


def _text(v):
    if v is None:
        return ""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "TRUE" if v else "FALSE"
    return _str(v)


def concat(a, b):
    if type(a) is ndarray or type(b) is ndarray:
        return _array_op("&", a, b)
    if type(a) is XlError:
        return a
    if type(b) is XlError:
        return b
    return _text(a) + _text(b)


def _rank(v):
    t = type(v)
    if t is str:
        return 1
    if t is bool:
        return 2
    return 0


def _compare(symbol, a, b):
    """Excel comparison: numbers < text < booleans; text ignores case; empty is 0/""/FALSE."""
    if type(a) is ndarray or type(b) is ndarray:
        return _array_op(symbol, a, b)
    if type(a) is XlError:
        return a
    if type(b) is XlError:
        return b
    if a is None:
        a = "" if type(b) is str else (False if type(b) is bool else 0.0)
    if b is None:
        b = "" if type(a) is str else (False if type(a) is bool else 0.0)
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        x, y = ra, rb
    elif ra == 1:
        x, y = a.upper(), b.upper()
    else:
        x, y = float(a), float(b)
    if symbol == "=":
        return x == y
    if symbol == "<>":
        return x != y
    if symbol == "<":
        return x < y
    if symbol == ">":
        return x > y
    if symbol == "<=":
        return x <= y
    return x >= y


def eq(a, b):
    return _compare("=", a, b)


def ne(a, b):
    return _compare("<>", a, b)


def lt(a, b):
    return _compare("<", a, b)


def gt(a, b):
    return _compare(">", a, b)


def le(a, b):
    return _compare("<=", a, b)


def ge(a, b):
    return _compare(">=", a, b)


def call(func, *args):
    """Call a `formulas` function implementation and bring its result back."""
    try:
        result = func(*args)
    except NotImplementedError:
        raise RuntimeUnsupported("a form of this function that formulas does not implement") from None
    except (FormulasError, ValueError, TypeError, ArithmeticError, IndexError):
        return E_VALUE
    return from_xl(result)


def first_of(value):
    """Top-left value of an array result (what an array formula's anchor cell shows)."""
    if isinstance(value, ndarray):
        if value.size == 0:
            return E_VALUE
        return from_xl(value.flat[0])
    return value


# --- native aggregates: plain numbers only; FALLBACK sends the call to formulas ----------
FALLBACK = object()


def agg_SUM(*parts):
    total = 0.0
    for part in parts:
        for v in part:
            if type(v) is float:
                total += v
            elif v is not None:
                return FALLBACK
    return total if -INF < total < INF else E_NUM


def agg_SUMSQ(*parts):
    total = 0.0
    for part in parts:
        for v in part:
            if type(v) is float:
                total += v * v
            elif v is not None:
                return FALLBACK
    return total if -INF < total < INF else E_NUM


def _numbers(parts):
    out = []
    for part in parts:
        for v in part:
            if type(v) is float:
                out.append(v)
            elif v is not None:
                return None
    return out


def agg_COUNT(*parts):
    numbers = _numbers(parts)
    return FALLBACK if numbers is None else float(len(numbers))


def agg_AVERAGE(*parts):
    numbers = _numbers(parts)
    if not numbers:
        return FALLBACK
    total = 0.0
    for v in numbers:
        total += v
    return _finite(total / len(numbers))


def agg_MAX(*parts):
    numbers = _numbers(parts)
    return max(numbers) if numbers else FALLBACK


def agg_MIN(*parts):
    numbers = _numbers(parts)
    return min(numbers) if numbers else FALLBACK
