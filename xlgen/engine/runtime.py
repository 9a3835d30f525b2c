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
# The most cells one array may have: 16,777,216 cells of Python objects (8 bytes a pointer,
# 24 a float) are ~0.5 GiB, and a formula may hold two or three such arrays at once, within
# the 2 GiB a verify promises. A sheet-sized array (17 billion cells) is refused before it
# is allocated, naming its cell.
MAX_ARRAY_CELLS = 1 << 24


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


_NUMPY_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
              "=": np.equal, "<>": np.not_equal, "<": np.less, ">": np.greater,
              "<=": np.less_equal, ">=": np.greater_equal}
_COMPARISONS = frozenset({"=", "<>", "<", ">", "<=", ">="})


def _floats(value):
    """A float ndarray of the value when every entry is a float, else None."""
    if type(value) is float:
        return value
    if type(value) is not ndarray:
        return None
    entries = value.ravel().tolist()
    for v in entries:
        if type(v) is not float:
            return None
    return np.array(entries, dtype=np.float64).reshape(value.shape)


def _float_array_op(symbol, args):
    """Arrays of plain floats, shapes Excel and numpy broadcast alike, finite results:
    numpy does it (SUM(A2:C4*$AD$11:$AF$13) in a convolution); None sends it the slow way."""
    operation = _NUMPY_OPS.get(symbol)
    if operation is None or len(args) != 2:
        return None
    x, y = _floats(args[0]), _floats(args[1])
    if x is None or y is None:
        return None
    for a in (x, y):
        if type(a) is ndarray and a.ndim != 2:
            return None
    try:
        with np.errstate(all="ignore"):
            result = operation(x, y)
    except ValueError:  # shapes numpy does not broadcast: Excel pads with #N/A
        return None
    if symbol in _COMPARISONS:
        return result.astype(object)
    if not np.isfinite(result).all() or (symbol == "^" and ((x == 0) & (y == 0)).any()):
        return None  # #DIV/0!, #NUM!, 0^0: entry by entry below
    return result.astype(object)


def too_large(rows, cols, what: str) -> None:
    """Refuse an array result past MAX_ARRAY_CELLS before it is made."""
    if rows * cols > MAX_ARRAY_CELLS:
        size = f"{rows:,} x {cols:,}" if rows * cols < 1e15 else f"{float(rows):.3g} x {float(cols):.3g}"
        raise RuntimeUnsupported(f"{what} of {size} cells (xlgen's engine holds at most "
                                 f"{MAX_ARRAY_CELLS:,} in one array, ~0.5 GiB)")


def _array_op(symbol, *args):
    if len(args) == 2 and type(args[0]) is ndarray is type(args[1]) and args[0].ndim == 2 == args[1].ndim:
        # Excel pairs arrays entry by entry, a row or column stretched across the other
        too_large(max(args[0].shape[0], args[1].shape[0]), max(args[0].shape[1], args[1].shape[1]),
                  f"an array operation ({symbol})")
    fast = _float_array_op(symbol, args)
    if fast is not None:
        return fast
    try:
        from formulas.functions.operators import OPERATORS  # only here: it imports formulas' lookups
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


def _str(v):
    """formulas' text of a number, its module imported on first use (a sheet of floats never
    needs it); the first call puts formulas' function in this one's place."""
    global _str
    from formulas.functions.text import _str
    return _str(v)


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


def agg_by_excel_rules(name: str, kinds: str, *parts):
    """SUM, SUMSQ, COUNT, AVERAGE, MAX or MIN when the data holds more than numbers, by
    Excel's rules (formulas' versions count text in a range): in a reference or an
    array (kind "r", or an "e"xpression that gave an array: a list) only numbers count,
    text, TRUE/FALSE and blanks are skipped; a value given directly (a scalar
    "e"xpression, a "l"iteral) counts TRUE/FALSE as 1/0 and text that spells a number as
    that number, other text is #VALUE!. The first error met is the result, except
    COUNT's, which counts only numbers and passes over everything else."""
    counting = name == "COUNT"
    numbers = []
    for kind, part in zip(kinds, parts):
        direct = kind == "l" or (kind == "e" and type(part) is tuple)
        for v in part:
            t = type(v)
            if t is float:
                numbers.append(v)
            elif t is XlError:
                if not counting:
                    return v
            elif not direct or v is None:
                continue
            elif t is bool:
                numbers.append(1.0 if v else 0.0)
            elif t is str:
                x = text_to_number(v)
                if type(x) is float:
                    numbers.append(x)
                elif not counting:
                    return E_VALUE
    if counting:
        return float(len(numbers))
    if name == "AVERAGE":
        return E_DIV if not numbers else _finite(sum(numbers) / len(numbers))
    if name in ("MAX", "MIN"):
        return (max if name == "MAX" else min)(numbers) if numbers else 0.0
    total = 0.0
    if name == "SUMSQ":
        for v in numbers:
            total += v * v
    else:
        for v in numbers:
            total += v
    return total if -INF < total < INF else E_NUM


# --- arrays: flattening for the native aggregates, MMULT, SUMPRODUCT, TRANSPOSE, OFFSET ---
def flat(value):
    """An expression's value(s) for the native aggregates, in the engine's form."""
    if type(value) is ndarray:
        return [v if type(v) is float else from_xl(v) for v in value.flat]
    return (value,)


def _matrix(value):
    """A 2-D list of floats for MMULT, or the error MMULT gives (text, empty, booleans:
    #VALUE!; an error in the data: that error)."""
    if type(value) is not ndarray:
        value = np.array([[value]], dtype=object)
    elif value.ndim != 2:
        value = value.reshape(1, -1)
    rows = value.tolist()
    for row in rows:
        for j, v in enumerate(row):
            if type(v) is not float:
                if type(v) is XlError:
                    return v
                if isinstance(v, (int, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
                    row[j] = float(v)
                else:
                    return E_VALUE
    return rows


def _result(rows):
    """A 2-D list of values -> the engine's array (one value stays a scalar)."""
    if len(rows) == 1 and len(rows[0]) == 1:
        return from_xl(rows[0][0])
    out = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            out[i, j] = v if -INF < v < INF else E_NUM
    return out


_MMULT_PYTHON_LIMIT = 1 << 21  # multiply-adds done one by one in Excel's order below this


def mmult(a, b):
    """MMULT: each product summed left to right, as a spreadsheet does."""
    left, right = _matrix(a), _matrix(b)
    if type(left) is XlError:
        return left
    if type(right) is XlError:
        return right
    n = len(right)
    if len(left[0]) != n:
        return E_VALUE
    m = len(right[0])
    too_large(len(left), m, "MMULT")
    if len(left) * n * m > _MMULT_PYTHON_LIMIT:
        return _result(np.matmul(np.array(left), np.array(right)).tolist())
    columns = [[row[j] for row in right] for j in range(m)]
    out = []
    for row in left:
        line = []
        for column in columns:
            total = 0.0
            for x, y in zip(row, column):
                total += x * y
            line.append(total)
        out.append(line)
    return _result(out)


def sumproduct(*args):
    """SUMPRODUCT: arrays of one shape multiplied entry by entry and summed; entries that
    are not numbers count as 0; an error anywhere is the result."""
    arrays = []
    shape = None
    for a in args:
        if type(a) is not ndarray:
            if type(a) is XlError:
                return a
            a = np.array([[EMPTY if a is None else a]], dtype=object)
        elif a.ndim != 2:
            a = a.reshape(1, -1)
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            return E_VALUE
        arrays.append(a.ravel().tolist())
    return sum_of_products(arrays)


def sum_of_products(arrays):
    """SUMPRODUCT's sum over equally long flat lists (row by row, left to right)."""
    if len(arrays) == 2:  # the usual case, two lists of plain numbers
        total = 0.0
        for x, y in zip(*arrays):
            if type(x) is float is type(y):
                total += x * y
            else:
                break
        else:
            return total if -INF < total < INF else E_NUM
    for values in arrays:
        for v in values:
            if type(v) is not float and isinstance(v, XlError):
                return v
    total = 0.0
    if len(arrays) == 2:
        for x, y in zip(*arrays):
            if type(x) is float is type(y):
                total += x * y
            else:
                total += _sumproduct_term((x, y))
    else:
        for entries in zip(*arrays):
            total += _sumproduct_term(entries)
    return total if -INF < total < INF else E_NUM


def _sumproduct_term(entries) -> float:
    product = 1.0
    for v in entries:
        if type(v) is float:
            product *= v
        elif isinstance(v, (int, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            product *= float(v)
        else:
            return 0.0  # text, TRUE/FALSE and empty cells count as zero
    return product


def transpose(a):
    if type(a) is not ndarray:
        return a
    if a.ndim != 2:
        a = a.reshape(1, -1)
    return from_xl(a.T.copy())


def _whole(v):
    """OFFSET's rows/cols/height/width: a whole number (truncated), or the error."""
    x = number(v) if type(v) is not ndarray else E_VALUE
    if type(x) is XlError:
        return x
    return float(math.trunc(x)) if -INF < x < INF else E_NUM


def offset(base, rows, cols, height=None, width=None):
    """OFFSET's range as (sheet, r1, c1, r2, c2), or #REF! if it leaves the sheet.
    A negative height or width extends up or left from the moved corner, as in Excel."""
    if type(base) is not tuple:
        return base  # an error from an inner OFFSET
    sheet, r1, c1, r2, c2 = base
    moves = []
    for v in (rows, cols):
        x = _whole(v)
        if type(x) is XlError:
            return x
        moves.append(int(x))
    sizes = []
    for v, default in ((height, r2 - r1 + 1), (width, c2 - c1 + 1)):
        if v is None:
            sizes.append(default)
            continue
        x = _whole(v)
        if type(x) is XlError:
            return x
        if x == 0:
            return E_REF
        sizes.append(int(x))
    top, left = r1 + moves[0], c1 + moves[1]
    bottom, right = top + sizes[0] - 1, left + sizes[1] - 1
    if sizes[0] < 0:
        top, bottom = top + sizes[0] + 1, top
    if sizes[1] < 0:
        left, right = left + sizes[1] + 1, left
    if not (1 <= top and bottom <= 1_048_576 and 1 <= left and right <= 16_384):
        return E_REF
    return (sheet, top, left, bottom, right)
