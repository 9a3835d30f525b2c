"""Formula shape -> generated Python functions (source compiled once per shape).

For every shape (a formula written relative to its cell) we generate two functions of
the cell's integer key k = sheet<<36 | row<<15 | col:

    run(k)   -> False if a formula cell it reads is still pending, else computes the
                cell, stores it in V[k] and returns True
    deps(k)  -> the keys of the cells it reads (for the dependency walk)

A relative reference is `k + constant`, so one function serves every cell of the shape.
Arithmetic on two floats runs inline (with Excel's #DIV/0! and #NUM!); anything else
goes to runtime helpers, and functions go to the `formulas` library's implementations.
"""

from __future__ import annotations

import importlib
import itertools
import math
import re
import sys
import warnings
from dataclasses import dataclass, field

from formulas.functions import not_implemented

from ..errors import UnsupportedFormula
from . import runtime as rt
from .parse import ParseError, UnsupportedSyntax, parse_tree
from .refs import MAX_COL, MAX_ROW

SHEET_SHIFT = 36  # rows take 21 bits: row 1,048,576 is 1 << 20
ROW_SHIFT = 15
COL_MASK = (1 << ROW_SHIFT) - 1
ROW_MASK = (1 << 21) - 1

VOLATILE = frozenset({"RAND", "RANDBETWEEN", "NOW", "TODAY", "OFFSET", "INDIRECT", "RANDARRAY"})
# volatile functions whose references are only known at run time
DYNAMIC = frozenset({"OFFSET", "INDIRECT"})

_BINARY_HELPERS = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "^": "_pow",
                   "&": "_concat", "=": "_eq", "<>": "_ne", "<": "_lt", ">": "_gt",
                   "<=": "_le", ">=": "_ge"}
_PY_COMPARE = {"=": "==", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_FOLD = {"+": rt.add, "-": rt.sub, "*": rt.mul, "/": rt.div, "^": rt.power, "&": rt.concat,
         "=": rt.eq, "<>": rt.ne, "<": rt.lt, ">": rt.gt, "<=": rt.le, ">=": rt.ge}


def cell_key(sheet: int, row: int, col: int) -> int:
    return (sheet << SHEET_SHIFT) | (row << ROW_SHIFT) | col


@dataclass
class Shape:
    """One compiled formula shape."""

    run: object
    deps: object
    volatile: bool = False
    dynamic: str | None = None  # e.g. "function OFFSET": cannot be computed, only read from cache
    source: str = ""


@dataclass
class _Scope:
    """What names mean where code is being generated."""

    variables: dict = field(default_factory=dict)  # LET / LAMBDA variable -> local name
    base_row: int = 0  # relative references count from here...
    base_col: int = 0
    checked: bool = False  # ...and are bounds-checked (defined names are relative to A1)


class _Unsupported(Exception):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


# formulas' submodules, cheapest to import first: `stat` and `comp` pull in scipy (~0.8 s),
# so they are imported only when a formula needs one of their functions. No name is
# defined in two submodules, so the search order does not change which one is found.
_SUBMODULES = (".math", ".logic", ".info", ".text", ".look", ".date", ".financial", ".eng",
               ".google", ".stat", ".comp")
_found: dict = {}


def library_function(name: str):
    """formulas' implementation of an Excel function (None if it has none)."""
    if name in _found:
        return _found[name]
    import formulas.functions as base
    candidates = (name, "_XLFN." + name, "_XLFN._XLWS." + name, "_XLWS." + name)
    found = None
    for table in itertools.chain([base.FUNCTIONS], (
            importlib.import_module(sub, "formulas.functions").FUNCTIONS for sub in _SUBMODULES)):
        hit = next((table[c] for c in candidates if c in table), None)
        if hit is not None and hit is not not_implemented:
            found = hit
            break
    _found[name] = found
    return found


class LazyFunction:
    """A formulas function looked up (and its module imported) on first call."""

    def __init__(self, name: str):
        self.name = name
        self.func = None

    def __call__(self, *args):
        if self.func is None:
            self.func = library_function(self.name)
        return self.func(*args)


class Compiler:
    """Compiles shapes for one Book; generated code shares one namespace (the value store)."""

    def __init__(self, book, sheet_index: dict[str, int], namespace: dict, formula_keys):
        self.book = book
        self.sheet_index = sheet_index  # lower-case sheet name -> index
        self.ns = namespace
        self.formula_keys = formula_keys
        self._consts: dict = {}
        self._counter = itertools.count()
        self._name_trees: dict = {}
        self._names = {}
        for (scope, name), text in book.names.items():
            self._names[(scope.lower() if scope else None, name)] = (scope, text)

    # --- constants shared by all generated code -------------------------------------
    def const(self, value) -> str:
        """A Python expression for a constant value."""
        t = type(value)
        if t is float:
            if not -math.inf < value < math.inf:
                return self.const(rt.E_NUM)
            return f"({value!r})" if value < 0 else repr(value)
        if t is bool:
            return repr(value)
        key = (t, value)
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = f"_k{len(self._consts)}"
            self.ns[name] = value
        return name

    def function_const(self, func) -> str:
        key = ("fn", id(func))
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = f"_f{len(self._consts)}"
            self.ns[name] = func
        return name

    # --- defined names -------------------------------------------------------------
    def lookup_name(self, name: str, sheet: str | None):
        """(scope sheet, text) of a defined name as seen from `sheet`; sheet scope first."""
        if sheet is not None:
            hit = self._names.get((sheet.lower(), name))
            if hit:
                return hit
        return self._names.get((None, name))

    def name_tree(self, scope, name, text):
        key = (scope, name)
        if key not in self._name_trees:
            length = len(_PREFIX_RE.sub("", text))
            if length > MAX_FORMULA_LENGTH:  # expanded into every formula using it
                raise _Unsupported(f"defined name {name} of {length:,} characters "
                                   f"(Excel's limit is {MAX_FORMULA_LENGTH:,})")
            try:
                self._name_trees[key] = parse_tree(text)
            except UnsupportedSyntax as exc:
                raise _Unsupported(f"{exc.what} in defined name {name}") from None
            except ParseError:
                raise _Unsupported(f"defined name {name} (unparseable: {shown(text)})") from None
        return self._name_trees[key]

    # --- shapes --------------------------------------------------------------------
    def compile(self, sheet: int, text: str, row: int, col: int, is_array: bool,
                cell_label: str, expected_refs: int | None = None):
        """Compile `text` as found at (row, col). Raises UnsupportedFormula naming cell_label.

        Returns (Shape, number of references in the text) so the caller can check that its
        shape key saw the same references as the parser.
        """
        length = len(_PREFIX_RE.sub("", text))
        if length > MAX_FORMULA_LENGTH:
            raise UnsupportedFormula(cell_label, f"a formula of {length:,} characters "
                                                 f"(Excel's limit is {MAX_FORMULA_LENGTH:,})")
        limit = sys.getrecursionlimit()
        # the emitter recurses once per operator: a chain of 2,700 additions fits in
        # Excel's 8,192 characters; pure-Python recursion does not use the C stack (3.11+)
        sys.setrecursionlimit(max(limit, _COMPILE_RECURSION_LIMIT))
        try:
            try:
                tree = parse_tree(text)
            except UnsupportedSyntax as exc:
                raise UnsupportedFormula(cell_label, exc.what) from None
            except ParseError:
                raise UnsupportedFormula(cell_label, f"formula ={shown(text)} (cannot be parsed)") from None
            try:
                emitter = _Emitter(self, sheet, row, col, is_array)
                shape = emitter.build(tree)
            except _Unsupported as exc:
                raise UnsupportedFormula(cell_label, exc.what) from None
            except (RecursionError, SyntaxError):  # nested past what Python compiles (100 blocks)
                raise UnsupportedFormula(cell_label, f"formula ={shown(text)} (nested too deeply "
                                                     "to compile)") from None
            return shape, _count_refs(tree)
        finally:
            sys.setrecursionlimit(limit)


MAX_FORMULA_LENGTH = 8192  # Excel's limit, counted without the _xlfn. prefixes it stores
_COMPILE_RECURSION_LIMIT = 30_000
_PREFIX_RE = re.compile(r"_xl(?:fn|ws|pm)\.", re.I)


def shown(text: str, width: int = 80) -> str:
    """Formula text for a one-line message: control characters escaped, long text cut."""
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= width else text[:width - 3] + "..."


def _count_refs(tree) -> int:
    """References written in the formula text itself (as refs.shape_key counts them)."""
    kind = tree[0]
    if kind in ("cell", "range"):
        return 1
    if kind == "op" or kind == "call":
        if kind == "call" and tree[1] == "INDIRECT" and tree[2] and tree[2][0][0] in ("cell", "range"):
            return 0  # INDIRECT("A1"): the reference sits in a string literal
        return sum(_count_refs(arg) for arg in tree[2])
    if kind == "let":
        return sum(_count_refs(v) for _, v in tree[1]) + _count_refs(tree[2])
    if kind == "lambda":
        return _count_refs(tree[2])
    return 0


class _Emitter:
    """Generates the source of one shape's run() and deps() functions."""

    def __init__(self, compiler: Compiler, sheet: int, row: int, col: int, is_array: bool):
        self.c = compiler
        self.sheet = sheet
        self.row, self.col = row, col
        self.is_array = is_array
        self.lines: list[str] = []
        self.indent = 1
        self.tmp_count = 0
        self.deps_single: list[str] = []
        self.deps_ranges: list[str] = []
        self.needs_rc = False
        self.volatile = False
        self.dynamic = None
        self.expanding: list = []  # defined names being expanded (recursion guard)

    # --- plumbing --------------------------------------------------------------------
    def tmp(self) -> str:
        self.tmp_count += 1
        return f"t{self.tmp_count}"

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def sheet_of(self, name):
        if name is None:
            return self.sheet
        return self.c.sheet_index.get(name.lower())

    def build(self, tree) -> Shape:
        scope = _Scope(base_row=self.row, base_col=self.col)
        self.line(f"res = {self.value(tree, scope)}")
        if self.is_array:
            self.line("res = _first(res)")
        self.line("if type(res) is not float: res = _final(res)")
        self.line("V[k] = res")
        self.line("return True")
        uid = next(self.c._counter)
        head = [f"def run_{uid}(k):"]
        if self.needs_rc:
            head.append(f"    r = (k >> {ROW_SHIFT}) & {ROW_MASK}")
            head.append(f"    c = k & {COL_MASK}")
        singles = list(dict.fromkeys(self.deps_single))
        checks = [f"({d}) in P" for d in singles] + [f"_rpending({d})" for d in dict.fromkeys(self.deps_ranges)]
        if checks:
            head.append(f"    if {' or '.join(checks)}: return False")
        deps = [f"def deps_{uid}(k):"]
        if self.needs_rc:
            deps.append(f"    r = (k >> {ROW_SHIFT}) & {ROW_MASK}")
            deps.append(f"    c = k & {COL_MASK}")
        parts = [f"({', '.join(singles)},)" if singles else "()"]
        parts += [f"_rdeps({d})" for d in dict.fromkeys(self.deps_ranges)]
        deps.append(f"    return {' + '.join(parts)}")
        source = "\n".join(head + self.lines + [""] + deps) + "\n"
        with warnings.catch_warnings():  # a warning about generated code is no news to the user
            warnings.simplefilter("ignore", SyntaxWarning)
            code = compile(source, f"<xlgen shape {uid}>", "exec")
        exec(code, self.c.ns)
        run, deps = self.c.ns.pop(f"run_{uid}"), self.c.ns.pop(f"deps_{uid}")
        run.deps = deps
        return Shape(run, deps, self.volatile, self.dynamic, source)

    # --- references ----------------------------------------------------------------------
    def _axis(self, absolute, value, base, var):
        """Code for a row or column number: a constant, or var + offset."""
        if absolute:
            return str(value)
        self.needs_rc = True
        d = value - base
        return var if d == 0 else f"({var} + {d})" if d > 0 else f"({var} - {-d})"

    def cell_key_code(self, target: int, part, scope: _Scope):
        """Code computing the key of a single cell; None if it can never be valid."""
        cabs, col, rabs, row = part
        if scope.checked and not (cabs and rabs):
            r_code = self._axis(rabs, row, scope.base_row, "r")
            c_code = self._axis(cabs, col, scope.base_col, "c")
            return f"_checked_key({target}, {r_code}, {c_code})"
        s_delta = (target - self.sheet) << SHEET_SHIFT
        if cabs and rabs:
            return str(cell_key(target, row, col))
        if not cabs and not rabs:
            off = s_delta + ((row - scope.base_row) << ROW_SHIFT) + (col - scope.base_col)
            return "k" if off == 0 else f"k + {off}" if off > 0 else f"k - {-off}"
        if cabs:  # $A5: keep sheet and row of k, set the column
            off = s_delta + ((row - scope.base_row) << ROW_SHIFT) + col
            return f"(k & {~COL_MASK}) + {off}" if off >= 0 else f"(k & {~COL_MASK}) - {-off}"
        off = (target << SHEET_SHIFT) + (row << ROW_SHIFT) + (col - scope.base_col)  # A$5
        return f"(k & {COL_MASK}) + {off}" if off >= 0 else f"(k & {COL_MASK}) - {-off}"

    def range_code(self, target: int, p1, p2, scope: _Scope) -> str:
        """'sheet, r1, c1, r2, c2' for the runtime range helpers."""
        (c1abs, c1, r1abs, r1), (c2abs, c2, r2abs, r2) = p1, p2
        if r1 is None:  # whole columns
            r1_code, r2_code = "1", str(MAX_ROW)
        else:
            r1_code = self._axis(r1abs, r1, scope.base_row, "r")
            r2_code = self._axis(r2abs, r2, scope.base_row, "r")
        if c1 is None:  # whole rows
            c1_code, c2_code = "1", str(MAX_COL)
        else:
            c1_code = self._axis(c1abs, c1, scope.base_col, "c")
            c2_code = self._axis(c2abs, c2, scope.base_col, "c")
        code = f"{target}, {r1_code}, {c1_code}, {r2_code}, {c2_code}"
        if scope.checked or (r1 is not None and r1abs != r2abs) or (c1 is not None and c1abs != c2abs):
            code = f"*_ordered({code})"  # mixed ends can cross over; Excel sorts them
        self.deps_ranges.append(code)
        return code

    # --- expressions --------------------------------------------------------------------
    def value(self, node, scope: _Scope) -> str:
        """Code for the node's value where one value is expected (ranges intersect)."""
        kind = node[0]
        if kind == "lit":
            return self.c.const(rt.to_internal(node[1]))
        if kind == "missing":
            return "0.0"
        if kind == "cell":
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            key = self.cell_key_code(target, node[2], scope)
            self.deps_single.append(key)
            t = self.tmp()
            self.line(f"{t} = g({key})")
            return t
        if kind == "range":
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            code = self.range_code(target, node[2], node[3], scope)
            t = self.tmp()
            if self.is_array:
                self.line(f"{t} = _range({code})")
            else:
                self.needs_rc = True
                self.line(f"{t} = _intersect({code}, r, c)")
            return t
        if kind == "name":
            return self.name(node, scope, self.value)
        if kind == "op":
            return self.operator(node, scope)
        if kind == "call":
            return self.call(node, scope)
        if kind == "let":
            inner = _Scope(dict(scope.variables), scope.base_row, scope.base_col, scope.checked)
            for var, expr in node[1]:
                inner.variables[var] = self.bind(expr, inner)
            return self.value(node[2], inner)
        if kind == "lambda":
            return self.c.const(rt.E_VALUE)  # a LAMBDA that is not called (#CALC! in Excel)
        if kind == "unsupported":
            raise _Unsupported(node[1])
        raise _Unsupported(f"expression {kind}")

    def bind(self, node, scope: _Scope) -> str:
        """Code for a LET/LAMBDA argument: ranges stay arrays, cells are their value."""
        if node[0] == "range":
            return self.arg(node, scope)
        if node[0] == "name" and not (node[2] is None and node[1] in scope.variables):
            return self.name(node, scope, self.bind)
        return self.value(node, scope)

    def arg(self, node, scope: _Scope) -> str:
        """Code for an argument of a `formulas` function: references as 2-D arrays."""
        kind = node[0]
        if kind == "cell":
            t = self.value(node, scope)
            self.line(f"{t} = _cell_array({t})")
            return t
        if kind == "range":
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            code = self.range_code(target, node[2], node[3], scope)
            t = self.tmp()
            self.line(f"{t} = _range({code})")
            return t
        if kind == "name" and not (node[2] is None and node[1] in scope.variables):
            return self.name(node, scope, self.arg)
        if kind == "missing":
            return "0"
        value = self.value(node, scope)
        if not value.startswith("t"):
            return value
        t = self.tmp()
        self.line(f"{t} = EMPTY if {value} is None else {value}")
        return t

    def name(self, node, scope: _Scope, how) -> str:
        """A defined name (or LET variable), expanded in place like Excel does."""
        _, name, sheet = node
        if sheet is None and name in scope.variables:
            return scope.variables[name]
        sheet_name = sheet if sheet is not None else self.c.book.sheets[self.sheet].name
        hit = self.c.lookup_name(name, sheet_name)
        if hit is None:
            return self.c.const(rt.E_NAME)
        name_scope, text = hit
        if (name_scope, name) in self.expanding:
            raise _Unsupported(f"defined name {name} that refers to itself")
        tree = self.c.name_tree(name_scope, name, text)
        self.expanding.append((name_scope, name))
        inner = _Scope({}, 1, 1, True)
        result = how(tree, inner)
        self.expanding.pop()
        return result

    # --- operators --------------------------------------------------------------------
    @staticmethod
    def _is_float(code: str) -> bool:
        return code[0].isdigit() or code.startswith("(-")

    def _float_check(self, *codes) -> str:
        names = [c for c in codes if not self._is_float(c)]
        if not names:
            return "True"
        if len(names) == 1:
            return f"type({names[0]}) is float"
        return f"type({names[0]}) is float is type({names[1]})"

    def _literal_value(self, code: str):
        if self._is_float(code):
            return float(code.strip("()"))
        if code in ("True", "False"):
            return code == "True"
        if code.startswith("_k"):
            return self.c.ns[code]
        return None

    def operator(self, node, scope: _Scope) -> str:
        _, symbol, args = node
        if symbol in (":", " ", ","):
            raise _Unsupported(f"reference operator '{symbol.strip() or 'intersection'}'")
        if symbol == "@":
            return self.implicit(args[0], scope)
        operands = [self.value(a, scope) for a in args]
        literal = [self._literal_value(o) for o in operands]
        if all(v is not None for v in literal):  # fold constants at compile time
            return self.c.const(self._fold(symbol, literal))
        t = self.tmp()
        if len(operands) == 1:
            a = operands[0]
            if symbol == "U-":
                self.line(f"{t} = -{a} if type({a}) is float else _neg({a})")
            elif symbol == "U+":
                return a
            elif symbol == "%":
                self.line(f"{t} = {a} / 100.0 if type({a}) is float else _percent({a})")
            else:
                raise _Unsupported(f"operator {symbol}")
            return t
        a, b = operands
        helper = _BINARY_HELPERS.get(symbol)
        if helper is None:
            raise _Unsupported(f"operator {symbol}")
        numeric = all(self._is_float(o) or o.startswith("t") for o in operands)
        if not numeric or symbol == "&":
            self.line(f"{t} = {helper}({a}, {b})")
            return t
        check = self._float_check(a, b)
        if symbol in _PY_COMPARE:
            self.line(f"{t} = ({a} {_PY_COMPARE[symbol]} {b}) if {check} else {helper}({a}, {b})")
            return t
        if symbol == "^":
            if b == "2.0":
                self.line(f"if {check}:")
                self.line(f"    {t} = {a} * {a}")
                self.line(f"    if {t} - {t}: {t} = E_NUM")
            else:
                self.line(f"if {check} and {a} > 0.0:")
                self.line("    try:")
                self.line(f"        {t} = {a} ** {b}")
                self.line("    except OverflowError:")
                self.line(f"        {t} = E_NUM")
            self.line("else:")
            self.line(f"    {t} = {helper}({a}, {b})")
            return t
        if symbol == "/":
            check = f"{check} and {b}" if check != "True" else b
        self.line(f"if {check}:")
        self.line(f"    {t} = {a} {symbol} {b}")
        self.line(f"    if {t} - {t}: {t} = E_NUM")
        self.line("else:")
        self.line(f"    {t} = {helper}({a}, {b})")
        return t

    @staticmethod
    def _fold(symbol, values):
        internal = [rt.to_internal(v) if not isinstance(v, rt.XlError) else v for v in values]
        if len(internal) == 1:
            x = internal[0]
            if symbol == "U-":
                return rt.neg(x)
            if symbol == "U+":
                return x
            if symbol == "%":
                return rt.percent(x)
            raise _Unsupported(f"operator {symbol}")
        return _FOLD[symbol](*internal)

    def implicit(self, node, scope: _Scope) -> str:
        """@ / SINGLE(): one value from a range (same row or column as the cell)."""
        if node[0] == "range":
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            code = self.range_code(target, node[2], node[3], scope)
            self.needs_rc = True
            t = self.tmp()
            self.line(f"{t} = _intersect({code}, r, c)")
            return t
        value = self.value(node, scope)
        if not value.startswith("t"):
            return value
        t = self.tmp()
        self.line(f"{t} = _first({value})")
        return t

    # --- function calls -----------------------------------------------------------------
    def call(self, node, scope: _Scope) -> str:
        _, name, args = node
        if name in VOLATILE:
            self.volatile = True
        native = getattr(self, "fn_" + name.replace(".", "_"), None)
        if native is not None:
            return native(args, scope)
        func = library_function(name)
        if func is not None:
            return self.library_call(name, func, args, scope)
        hit = self.c.lookup_name(name, self.c.book.sheets[self.sheet].name)
        if hit is not None:
            return self.lambda_call(name, hit, args, scope)
        raise _Unsupported(f"function {name}")

    def library_call(self, name, func, args, scope: _Scope) -> str:
        prefix = []
        if isinstance(func, dict):
            extra = list(func.get("extra_inputs", {}))
            if any(str(e) != "Run" for e in extra):
                raise _Unsupported(f"function {name}")
            prefix = ["False"] * len(extra)  # the 'still compiling?' flag formulas passes
            func = func["function"]
        codes = prefix + [self.arg(a, scope) for a in args]
        t = self.tmp()
        self.line(f"{t} = _call({', '.join([self.c.function_const(func)] + codes)})")
        return t

    def lambda_call(self, name, hit, args, scope: _Scope) -> str:
        name_scope, text = hit
        tree = self.c.name_tree(name_scope, name, text)
        if tree[0] != "lambda":
            raise _Unsupported(f"function {name} (a defined name that is not a LAMBDA)")
        if (name_scope, name) in self.expanding:
            raise _Unsupported(f"recursive LAMBDA {name}")
        params, body = tree[1], tree[2]
        if len(args) != len(params):
            return self.c.const(rt.E_VALUE)
        bound = {}
        for param, arg in zip(params, args):
            code = self.bind(arg, scope)
            bound[param] = code
        self.expanding.append((name_scope, name))
        result = self.value(body, _Scope(bound, 1, 1, True))
        self.expanding.pop()
        return result

    # natives: lazy IF / IFERROR, fast scalar math, and what needs the cell itself
    def fn_IF(self, args, scope):
        if not 1 <= len(args) <= 3:
            return self.c.const(rt.E_VALUE)  # Excel refuses this formula outright
        cond = self.value(args[0], scope)
        then_node = args[1] if len(args) > 1 else ("lit", True)
        else_node = args[2] if len(args) > 2 else ("lit", False)
        lit = self._literal_value(cond)
        if type(lit) in (float, bool):
            return self.value(then_node if lit else else_node, scope)
        # each branch is emitted once (nested IFs grow linearly, not 2**depth): computed
        # when a scalar condition picks it, both when formulas' IF gets an array condition
        pick, t = self.tmp(), self.tmp()
        self.line(f"if {cond} is None or type({cond}) is float or type({cond}) is bool:")
        self.line(f"    {pick} = 1 if {cond} else 2")
        self.line("else:")
        self.line(f"    {pick} = 0")
        branches = []
        for node, skip in ((then_node, 2), (else_node, 1)):
            self.line(f"if {pick} != {skip}:")
            self.indent += 1
            value = self.value(node, scope)
            if node[0] in ("cell", "range", "name", "missing"):  # as an argument it differs
                self.line(f"if {pick} == 0:")
                self.indent += 1
                argument = self.arg(node, scope)
                self.indent -= 1
            elif value.startswith("t"):
                argument = self.tmp()
                self.line(f"{argument} = EMPTY if {value} is None else {value}")
            else:
                argument = value
            self.line("pass")
            self.indent -= 1
            branches.append((value, argument))
        (then_value, then_arg), (else_value, else_arg) = branches
        func = self.c.function_const(library_function("IF")["function"])
        self.line(f"if {pick} == 1:")
        self.line(f"    {t} = {then_value}")
        self.line(f"elif {pick} == 2:")
        self.line(f"    {t} = {else_value}")
        self.line("else:")
        self.line(f"    {t} = _call({func}, {cond}, {then_arg}, {else_arg})")
        return t

    def _if_error(self, name, test, args, scope):
        if len(args) != 2:
            return self.c.const(rt.E_VALUE)
        value = self.value(args[0], scope)
        if not value.startswith("t"):  # a constant: decide now
            literal = self._literal_value(value)
            failed = literal is rt.E_NA if name == "IFNA" else type(literal) is rt.XlError
            return self.value(args[1], scope) if failed else value
        t = self.tmp()
        self.line(f"if {test.format(value)}:")
        self.indent += 1
        self.line(f"{t} = {self.value(args[1], scope)}")
        self.indent -= 1
        self.line(f"elif type({value}) is ndarray:")
        self.indent += 1
        alt = self.arg(args[1], scope)
        func = self.c.function_const(library_function(name)["function"])
        self.line(f"{t} = _call({func}, {value}, {alt})")
        self.indent -= 1
        self.line("else:")
        self.line(f"    {t} = {value}")
        return t

    def fn_IFERROR(self, args, scope):
        return self._if_error("IFERROR", "type({}) is XlError", args, scope)

    def fn_IFNA(self, args, scope):
        return self._if_error("IFNA", "{} is E_NA", args, scope)

    def _math(self, name, args, scope, fast: str):
        """One-argument math: inline for a float (fast uses {x} and {t}), else formulas."""
        if len(args) != 1 or args[0][0] == "range":
            return self.library_call(name, library_function(name), args, scope)
        x = self.value(args[0], scope)
        t = self.tmp()
        lines = fast.format(x=x, t=t).split("\n")
        self.line(f"if type({x}) is float:")
        for text in lines:
            self.line("    " + text)
        self.line("else:")
        self.indent += 1
        arg = f"_cell_array({x})" if args[0][0] == "cell" else f"_xl({x})"
        self.line(f"{t} = _call({self.c.function_const(library_function(name))}, {arg})")
        self.indent -= 1
        return t

    def fn_SQRT(self, args, scope):
        return self._math("SQRT", args, scope, "{t} = _sqrt({x}) if {x} >= 0.0 else E_NUM")

    def fn_ABS(self, args, scope):
        return self._math("ABS", args, scope, "{t} = abs({x})")

    def fn_EXP(self, args, scope):
        return self._math("EXP", args, scope,
                          "try:\n    {t} = _exp({x})\nexcept OverflowError:\n    {t} = E_NUM")

    def fn_LN(self, args, scope):
        return self._math("LN", args, scope, "{t} = _log({x}) if {x} > 0.0 else E_NUM")

    # SUM, SUMSQ, COUNT, AVERAGE, MAX, MIN over plain numbers run natively; anything
    # else (an error, text, a boolean in the data) goes to formulas' implementation,
    # whose module is imported only then.
    def _aggregate(self, name, args, scope):
        parts = []
        for arg in args:
            node, where = self.deref(arg, scope)
            if node is None:
                return self.library_call(name, LazyFunction(name), args, scope)
            if node[0] == "lit" and type(node[1]) is float:
                parts.append(f"({self.c.const(node[1])},)")
            elif node[0] in ("cell", "range"):
                target = self.sheet_of(node[1])
                if target is None:
                    return self.library_call(name, LazyFunction(name), args, scope)
                if node[0] == "cell":
                    key = self.cell_key_code(target, node[2], where)
                    self.deps_single.append(key)
                    parts.append(f"(g({key}),)")
                else:
                    parts.append(f"_values({self.range_code(target, node[2], node[3], where)})")
            else:
                return self.library_call(name, LazyFunction(name), args, scope)
        t = self.tmp()
        self.line(f"{t} = _agg_{name}({', '.join(parts)})")
        self.line(f"if {t} is FALLBACK:")
        self.indent += 1
        codes = [self.arg(a, scope) for a in args]
        self.line(f"{t} = _call({', '.join([self.c.function_const(LazyFunction(name))] + codes)})")
        self.indent -= 1
        return t

    def deref(self, node, scope):
        """Follow defined names to what they stand for: (node, scope), or (None, None)."""
        for _ in range(32):
            if node[0] != "name":
                return node, scope
            if node[2] is None and node[1] in scope.variables:
                return None, None
            hit = self.c.lookup_name(node[1], node[2] or self.c.book.sheets[self.sheet].name)
            if hit is None:
                return None, None
            node = self.c.name_tree(hit[0], node[1], hit[1])
            scope = _Scope({}, 1, 1, True)
        return None, None

    def fn_SUM(self, args, scope):
        return self._aggregate("SUM", args, scope)

    def fn_SUMSQ(self, args, scope):
        return self._aggregate("SUMSQ", args, scope)

    def fn_COUNT(self, args, scope):
        return self._aggregate("COUNT", args, scope)

    def fn_AVERAGE(self, args, scope):
        return self._aggregate("AVERAGE", args, scope)

    def fn_MAX(self, args, scope):
        return self._aggregate("MAX", args, scope)

    def fn_MIN(self, args, scope):
        return self._aggregate("MIN", args, scope)

    def _row_or_col(self, args, scope, axis):
        t = self.tmp()
        if not args:
            self.needs_rc = True
            self.line(f"{t} = float({'r' if axis == 'row' else 'c'})")
            return t
        node, scope = self.deref(args[0], scope)
        if node is None or node[0] not in ("cell", "range"):
            raise _Unsupported(f"{axis.upper()}() of something that is not a reference")
        cabs, col, rabs, row = node[2]
        if axis == "row":
            if row is None:
                return "1.0"
            code = self._axis(rabs, row, scope.base_row, "r")
        else:
            if col is None:
                return "1.0"
            code = self._axis(cabs, col, scope.base_col, "c")
        self.line(f"{t} = float({code})")
        return t

    def fn_ROW(self, args, scope):
        return self._row_or_col(args, scope, "row")

    def fn_COLUMN(self, args, scope):
        return self._row_or_col(args, scope, "col")

    def fn_ISFORMULA(self, args, scope):
        if len(args) != 1 or args[0][0] != "cell":
            raise _Unsupported("ISFORMULA of something that is not a cell reference")
        target = self.sheet_of(args[0][1])
        if target is None:
            return self.c.const(rt.E_REF)
        key = self.cell_key_code(target, args[0][2], scope)
        t = self.tmp()
        self.line(f"{t} = ({key}) in FORMULA_KEYS")
        return t

    def fn_SINGLE(self, args, scope):
        if len(args) != 1:
            return self.c.const(rt.E_VALUE)
        return self.implicit(args[0], scope)

    def _volatile_native(self, call_code, args, scope):
        codes = [self.value(a, scope) for a in args]
        t = self.tmp()
        self.line(f"{t} = {call_code}({', '.join(codes)})")
        return t

    def fn_RAND(self, args, scope):
        return self._volatile_native("_rand", args, scope)

    def fn_RANDBETWEEN(self, args, scope):
        return self._volatile_native("_randbetween", args, scope)

    def fn_RANDARRAY(self, args, scope):
        return self._volatile_native("_randarray", args, scope)

    def fn_NOW(self, args, scope):
        return self._volatile_native("_now", args, scope)

    def fn_TODAY(self, args, scope):
        return self._volatile_native("_today", args, scope)

    def fn_OFFSET(self, args, scope):
        return self._dynamic("OFFSET", args, scope)

    def fn_INDIRECT(self, args, scope):
        if len(args) == 1 and args[0][0] in ("cell", "range"):
            return self.value(args[0], scope)  # INDIRECT("B2"): a fixed reference
        return self._dynamic("INDIRECT", args, scope)

    def _dynamic(self, name, args, scope):
        for a in args:  # still record what it reads where that is static
            if a[0] in ("cell", "range"):
                self.bind(a, scope)
        self.dynamic = f"function {name}"
        t = self.tmp()
        self.line(f"{t} = _dynamic({name!r})")
        return t
