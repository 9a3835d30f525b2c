"""The one place formula text is built.

Builders describe formulas as small expression trees (cells, names, numbers, operators,
function calls) and this module turns them into Excel text, adding parentheses only
where Excel's precedence needs them (or where a builder asks, to keep the course's own
spelling), `_xlfn.` before functions newer than Excel 2007 and `_xlpm.` before LET and
LAMBDA parameters. No builder ever concatenates formula strings itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Column letters as the engine reads them: one conversion for writing and reading.
from xlgen.engine.refs import col_letters as column_letter, col_number as column_number  # noqa: E402,F401

# The prefix Excel stores each function newer than Excel 2007 with (_xlfn., or
# _xlfn._xlws. for FILTER and SORT): the same table the lint checks files against.
from xlgen.lint import FUTURE_FUNCTION_PREFIX  # noqa: E402

# Excel operator precedence, higher binds tighter. Unary minus binds tighter than ^
# in Excel (-2^2 is 4), so negations are always rendered in parentheses when they
# stand as an operand of ^.
_PRECEDENCE = {"=": 1, "<>": 1, "<": 1, ">": 1, "<=": 1, ">=": 1, "&": 2,
               "+": 3, "-": 3, "*": 4, "/": 4, "^": 5}
_ATOM = 9


def cell_name(row: int, col: int) -> str:
    return f"{column_letter(col)}{row}"


def quote_sheet(sheet: str) -> str:
    """Sheet names with anything but letters, digits and _ need single quotes."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet) and not re.fullmatch(r"[A-Za-z]{1,3}\d+", sheet):
        return sheet
    return "'" + sheet.replace("'", "''") + "'"


class Expr:
    """An Excel expression; Python operators build bigger ones."""

    precedence = _ATOM

    def text(self) -> str:
        raise NotImplementedError

    def __add__(self, other): return Binary("+", self, lift(other))
    def __radd__(self, other): return Binary("+", lift(other), self)
    def __sub__(self, other): return Binary("-", self, lift(other))
    def __rsub__(self, other): return Binary("-", lift(other), self)
    def __mul__(self, other): return Binary("*", self, lift(other))
    def __rmul__(self, other): return Binary("*", lift(other), self)
    def __truediv__(self, other): return Binary("/", self, lift(other))
    def __rtruediv__(self, other): return Binary("/", lift(other), self)
    def __pow__(self, other): return Binary("^", self, lift(other))
    def __rpow__(self, other): return Binary("^", lift(other), self)
    def __neg__(self): return Negate(self)

    def lt(self, other): return Binary("<", self, lift(other))
    def gt(self, other): return Binary(">", self, lift(other))
    def le(self, other): return Binary("<=", self, lift(other))
    def ge(self, other): return Binary(">=", self, lift(other))
    def eq(self, other): return Binary("=", self, lift(other))
    def ne(self, other): return Binary("<>", self, lift(other))
    def concat(self, other): return Binary("&", self, lift(other))

    def __str__(self) -> str:
        return self.text()


def lift(value) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, bool):
        return Literal("TRUE" if value else "FALSE")
    if isinstance(value, (int, float)):
        return Number(value)
    if isinstance(value, str):
        return Text(value)
    raise TypeError(f"cannot use {value!r} in a formula")


@dataclass(eq=False, slots=True)
class Number(Expr):
    value: float

    def text(self) -> str:
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("a formula cannot hold a non-finite number")
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(float(value)).replace("e-0", "E-").replace("e+", "E+").replace("e-", "E-")

    @property
    def precedence(self):  # a negative literal must be bracketed like a negation
        return _PRECEDENCE["+"] if self.value < 0 else _ATOM


@dataclass(eq=False, slots=True)
class Text(Expr):
    value: str

    def text(self) -> str:
        return '"' + self.value.replace('"', '""') + '"'


@dataclass(eq=False, slots=True)
class Literal(Expr):
    """TRUE, FALSE, or an error literal such as #N/A."""
    word: str

    def text(self) -> str:
        return self.word


TRUE = Literal("TRUE")
FALSE = Literal("FALSE")


@dataclass(eq=False, slots=True)
class Ref(Expr):
    """A cell reference; `fixed_row`/`fixed_col` render the `$`."""
    row: int
    col: int
    sheet: str | None = None
    fixed_row: bool = False
    fixed_col: bool = False

    def text(self) -> str:
        prefix = quote_sheet(self.sheet) + "!" if self.sheet else ""
        return (prefix + ("$" if self.fixed_col else "") + column_letter(self.col)
                + ("$" if self.fixed_row else "") + str(self.row))

    def absolute(self) -> "Ref":
        return Ref(self.row, self.col, self.sheet, True, True)

    def to(self, last: "Ref") -> "Range":
        return Range(self, last)


@dataclass(eq=False, slots=True)
class Range(Expr):
    first: Ref
    last: Ref

    def text(self) -> str:
        last = self.last
        if type(last) is Ref:   # its sheet is the first's, said once
            last = Ref(last.row, last.col, None, last.fixed_row, last.fixed_col)
        return f"{self.first.text()}:{last.text()}"   # (Here ends: a RowTemplate's row range)


@dataclass(eq=False, slots=True)
class Name(Expr):
    """A defined name (an input cell such as learning_rate, or a LAMBDA)."""
    name: str

    def text(self) -> str:
        return self.name

    def __call__(self, *args) -> "Call":
        return Call(self.name, tuple(lift(a) for a in args), user_defined=True)


@dataclass(eq=False, slots=True)
class Param(Expr):
    """A LET or LAMBDA parameter: stored as _xlpm.name."""
    name: str

    def text(self) -> str:
        return "_xlpm." + self.name


@dataclass(eq=False, slots=True)
class Call(Expr):
    function: str
    args: tuple
    user_defined: bool = False

    def text(self) -> str:
        name = self.function if self.user_defined else self.function.upper()
        if not self.user_defined:
            name = FUTURE_FUNCTION_PREFIX.get(name, "") + name
        return name + "(" + ",".join(arg.text() for arg in self.args) + ")"


@dataclass(eq=False, slots=True)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr

    @property
    def precedence(self):
        return _PRECEDENCE[self.op]

    def text(self) -> str:
        mine = self.precedence
        left = self.left.text()
        if self.left.precedence < mine:
            left = f"({left})"
        right = self.right.text()
        # Excel's binary operators are all left-associative: an equal-precedence
        # right operand needs brackets (a-(b-c), a/(b*c), a^(b^c)).
        if self.right.precedence <= mine:
            right = f"({right})"
        return f"{left}{self.op}{right}"


@dataclass(eq=False, slots=True)
class Negate(Expr):
    operand: Expr
    precedence = _PRECEDENCE["+"]  # so that -x is bracketed as an operand of * / ^

    def text(self) -> str:
        inner = self.operand.text()
        if self.operand.precedence < _ATOM:
            inner = f"({inner})"
        return f"-{inner}"


@dataclass(eq=False, slots=True)
class Group(Expr):
    """Explicit parentheses, to keep a formula spelled as the course spells it."""
    inner: Expr

    def text(self) -> str:
        return f"({self.inner.text()})"


_ROW_MARK = "\x00"


@dataclass(eq=False, slots=True)
class Here(Expr):
    """A cell `offset` rows from the row a RowTemplate is written in (0: the same row)."""
    col: int
    offset: int = 0
    fixed_col: bool = False

    def text(self) -> str:
        return ("$" if self.fixed_col else "") + column_letter(self.col) + f"{_ROW_MARK}{self.offset}{_ROW_MARK}"


@dataclass(eq=False, slots=True)
class Rendered(Expr):
    """Formula text a RowTemplate already made; it is only ever a whole formula."""
    rendered: str
    precedence = 0

    def text(self) -> str:
        return self.rendered


class RowTemplate:
    """One formula shape for many rows, rendered once: down a column of thousands of
    rows only the row numbers change, so they are all that is filled in per row."""

    def __init__(self, expr: Expr):
        parts = expr.text().split(_ROW_MARK)
        self.literals = parts[0::2]
        self.offsets = [int(offset) for offset in parts[1::2]]
        # the text as a str.format pattern, one field per distinct offset: {0}, {1}...
        self.distinct = sorted(set(self.offsets))
        fields = [f"{{{self.distinct.index(offset)}}}" for offset in self.offsets] + [""]
        self.fill = "".join(literal.replace("{", "{{").replace("}", "}}") + field
                            for literal, field in zip(self.literals, fields)).format

    def at(self, row: int) -> Rendered:
        if len(self.distinct) == 1:
            return Rendered(self.fill(row + self.distinct[0]))
        return Rendered(self.fill(*[row + offset for offset in self.distinct]))

    def column(self, rows) -> list[Rendered]:
        """`at` of each of `rows` (a column's formulas, without a call per row)."""
        fill = self.fill
        if len(self.distinct) == 1:
            shift = self.distinct[0]
            return [Rendered(fill(row + shift)) for row in rows]
        return [Rendered(fill(*[row + offset for offset in self.distinct])) for row in rows]


def call(function: str, *args) -> Call:
    return Call(function, tuple(lift(a) for a in args))


def let(*bindings_and_body) -> Call:
    """LET(name1, value1, ..., body) with Param names."""
    return call("LET", *bindings_and_body)


def lambda_(params: list[Param], body: Expr) -> Call:
    return Call("LAMBDA", tuple(params) + (body,))


def formula(expr: Expr) -> str:
    """The text stored in the cell, with its leading '='."""
    return "=" + expr.text()
