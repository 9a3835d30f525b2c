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
from functools import lru_cache

from formulas.functions import not_implemented

from ..errors import UnsupportedFormula
from . import runtime as rt
from .library_names import FORMULAS_VERSION, HEAVY_NAMES, LIGHT_NAMES
from .parse import ParseError, UnsupportedSyntax, parse_tree
from .refs import MAX_COL, MAX_ROW, REF_RE, col_letters, col_number, row_skeleton

SHEET_SHIFT = 36  # rows take 21 bits: row 1,048,576 is 1 << 20
ROW_SHIFT = 15
COL_MASK = (1 << ROW_SHIFT) - 1
ROW_MASK = (1 << 21) - 1

# functions whose value the inputs do not determine: a cell where one ran keeps the file's
# saved value (OFFSET is volatile in Excel but computed here: its inputs decide its result)
VOLATILE = frozenset({"RAND", "RANDBETWEEN", "NOW", "TODAY", "INDIRECT", "RANDARRAY"})
# how many arguments each volatile function takes (Excel's syntax): a call with any other
# number is refused by Excel as it is typed, so it can never compute (#VALUE! here, as a
# wrong number of arguments is for every other function)
VOLATILE_ARGUMENTS = {"RAND": (0, 0), "RANDBETWEEN": (2, 2), "RANDARRAY": (0, 5), "NOW": (0, 0),
                      "TODAY": (0, 0), "INDIRECT": (1, 2)}

# Functions whose parameters are arrays: their argument expressions are evaluated whole
# (SUMPRODUCT((A1:A3>0)*B1:B3) needs no Ctrl+Shift+Enter), other functions' see one cell
# of a range in an ordinary formula. None: every argument; else the argument positions.
ARRAY_PARAMETERS = {
    "SUMPRODUCT": None, "MMULT": None, "SUMXMY2": None, "SUMX2MY2": None, "SUMX2PY2": None,
    "MDETERM": None, "MINVERSE": None, "TRANSPOSE": None, "FREQUENCY": None,
    "INDEX": (0,), "MATCH": (1,), "LOOKUP": (1, 2), "XLOOKUP": (1, 2), "XMATCH": (1,),
    "CORREL": None, "PEARSON": None, "COVAR": None, "COVARIANCE.P": None, "COVARIANCE.S": None,
    "RSQ": None, "SLOPE": None, "INTERCEPT": None, "STEYX": None, "FORECAST": (1, 2),
    "FORECAST.LINEAR": (1, 2), "LARGE": (0,), "SMALL": (0,), "PERCENTILE": (0,),
    "QUARTILE": (0,), "LINEST": None, "LOGEST": None, "TREND": None, "GROWTH": None,
}

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
    # its code can call a volatile function (perhaps only in a branch that is not taken):
    # whether a cell really is volatile is decided when it runs (evaluate.py)
    volatile: bool = False
    dynamic: str | None = None  # e.g. "function OFFSET": cannot be computed, only read from cache
    source: str = ""
    reads_cells: bool = True  # False: the formula reads no cell (=1/3, =FALSE()), a constant


@dataclass
class _Scope:
    """What names mean where code is being generated."""

    variables: dict = field(default_factory=dict)  # LET / LAMBDA variable -> local name
    base_row: int = 0  # relative references count from here...
    base_col: int = 0
    checked: bool = False  # ...and are bounds-checked (defined names are relative to A1)
    array: bool = False  # ranges are whole arrays (an array formula, an array parameter)

    def inner(self, variables=None, relative_to_a1: bool = False) -> "_Scope":
        """A scope for a LET body, a defined name or a LAMBDA body, keeping `array`."""
        if relative_to_a1:
            return _Scope(dict(variables or {}), 1, 1, True, self.array)
        return _Scope(dict(self.variables if variables is None else variables),
                      self.base_row, self.base_col, self.checked, self.array)

    def whole(self) -> "_Scope":
        return self if self.array else _Scope(self.variables, self.base_row, self.base_col,
                                              self.checked, True)


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


def _modules_holding(candidates: tuple) -> tuple:
    """The submodules, in search order, whose tables may hold one of these names: under the
    recorded formulas version only those whose recorded names include one (a module whose
    table holds none of them cannot change the search's result), else every one."""
    import formulas
    if formulas.__version__ != FORMULAS_VERSION:
        return _SUBMODULES
    heavy = any(c in HEAVY_NAMES for c in candidates)
    return tuple(sub for sub in _SUBMODULES
                 if (heavy if sub in (".stat", ".comp") else any(c in LIGHT_NAMES[sub] for c in candidates)))


def library_function(name: str):
    """formulas' implementation of an Excel function (None if it has none), importing
    only the modules that may hold it."""
    if name in _found:
        return _found[name]
    import formulas.functions as base
    candidates = (name, "_XLFN." + name, "_XLFN._XLWS." + name, "_XLWS." + name)
    found = None
    for table in itertools.chain([base.FUNCTIONS], (
            importlib.import_module(sub, "formulas.functions").FUNCTIONS for sub in _modules_holding(candidates))):
        hit = next((table[c] for c in candidates if c in table), None)
        if hit is not None and hit is not not_implemented:
            found = hit
            break
    _found[name] = found
    return found


def may_be_library_function(name: str) -> bool:
    """False only if formulas surely has no function `name` (a workbook LAMBDA's name,
    say), found without importing its scipy-backed modules when their names are known."""
    if name in _found:
        return _found[name] is not None
    import formulas
    import formulas.functions as base
    if formulas.__version__ != FORMULAS_VERSION or "formulas.functions.stat" in sys.modules:
        return library_function(name) is not None
    candidates = (name, "_XLFN." + name, "_XLFN._XLWS." + name, "_XLWS." + name)
    if any(c in HEAVY_NAMES for c in candidates):
        return library_function(name) is not None
    for table in itertools.chain([base.FUNCTIONS], (
            importlib.import_module(sub, "formulas.functions").FUNCTIONS for sub in _modules_holding(candidates))):
        hit = next((table[c] for c in candidates if c in table), None)
        if hit is not None and hit is not not_implemented:
            return True
    return False


class LazyFunction:
    """A formulas function looked up (and its module imported) on first call: a native
    function's fallback for non-float inputs (IF, SQRT...) mostly never runs, and
    formulas' math module alone imports numpy.random (40 ms). `part`: the entry to
    take when formulas describes the function as a dict (IF's "function")."""

    def __init__(self, name: str, part: str | None = None):
        self.name = name
        self.part = part
        self.func = None

    def __call__(self, *args):
        if self.func is None:
            found = library_function(self.name)
            self.func = found if self.part is None else found[self.part]
        return self.func(*args)


MAX_FORMULA_LENGTH = 8192  # Excel's limit, counted without the _xlfn. prefixes it stores
_COMPILE_RECURSION_LIMIT = 30_000
_PREFIX_RE = re.compile(r"_xl(?:fn|ws|pm)\.", re.I)


def shown(text: str, width: int = 80) -> str:
    """Formula text for a one-line message: control characters escaped, long text cut."""
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= width else text[:width - 3] + "..."


class Compiler:
    """Compiles shapes for one Book; generated code shares one namespace (the value store)."""

    def __init__(self, book, sheet_index: dict[str, int], namespace: dict, formula_keys,
                 structured=None, spills=None):
        self.book = book
        self.structured = structured  # tables.StructuredRefs, or None (no tables)
        self.spills = spills if spills is not None else {}  # dynamic-array anchor key -> its range
        self.sheet_index = sheet_index  # lower-case sheet name -> index
        self.ns = namespace
        self.formula_keys = formula_keys
        self._consts: dict = {}
        self._skeletons: dict = {}  # row_skeleton -> its tree with rows 1, 2, ... (None: not yet, False: no)
        self._reference_probes: dict = {}  # _reference_skeleton -> its probe's tree (None: not yet, False: no)
        self._factories: dict = {}  # shape source, references' numbers as names -> its factory
        self._families: dict = {}  # (row skeleton, sheet, col, is_array) -> _Family
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
        # one LazyFunction per name, so shapes calling the same function share their code
        key = ("lazy", func.name, func.part) if type(func) is LazyFunction else ("fn", id(func))
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
        hit = self._names.get((None, name))
        if hit is None and self.structured is not None:  # a table's name stands for its data
            data = self.structured.table_data(name)
            if data is not None:
                return None, data
        return hit

    def name_tree(self, scope, name, text):
        key = (scope, name)
        if key not in self._name_trees:
            if self.structured is not None:
                text = self.structured.rewrite(text, None)
            length = len(_PREFIX_RE.sub("", text))
            if length > MAX_FORMULA_LENGTH:  # expanded into every formula using it
                raise _Unsupported(f"defined name {name} of {length:,} characters "
                                   f"(Excel's limit is {MAX_FORMULA_LENGTH:,})")
            try:
                self._name_trees[key] = _parsed(text)
            except UnsupportedSyntax as exc:
                raise _Unsupported(f"{exc.what} in defined name {name}") from None
            except ParseError:
                raise _Unsupported(f"defined name {name} (unparseable: {shown(text)})") from None
        return self._name_trees[key]

    # --- shapes --------------------------------------------------------------------
    def compile(self, sheet: int, text: str, row: int, col: int, is_array: bool,
                cell_label, shown_text: str | None = None, parts: list | None = None):
        """Compile `text` as found at (row, col). Raises UnsupportedFormula naming cell_label
        (the cell's name, or a function giving it: made only for an error).

        `shown_text` is the formula as the file has it, when `text` is its rewriting (table
        references as A1). Returns (Shape, number of references in the text) so the caller
        can check that its shape key saw the same references as the parser. `parts`:
        refs.REF_RE.split(text), when the caller has it.
        """
        if len(text) > MAX_FORMULA_LENGTH:  # (taking the prefixes out only shortens it)
            length = len(_PREFIX_RE.sub("", text))
            if length > MAX_FORMULA_LENGTH:
                raise UnsupportedFormula(_label(cell_label), f"a formula of {length:,} characters "
                                                           f"(Excel's limit is {MAX_FORMULA_LENGTH:,})")
        skeleton, rows = row_skeleton(text, parts)
        if not rows or not all(1 <= r <= MAX_ROW for r in rows):
            rows = None
        family_key = (skeleton, sheet, col, is_array) if rows is not None and shown_text is None else None
        if family_key is not None:
            family = self._families.get(family_key)
            if family is not None:
                hit = family.bind(rows, row)
                if hit is not None:
                    return hit
        limit = sys.getrecursionlimit()
        # the emitter recurses once per operator: a chain of 2,700 additions fits in
        # Excel's 8,192 characters; pure-Python recursion does not use the C stack (3.11+)
        sys.setrecursionlimit(max(limit, _COMPILE_RECURSION_LIMIT))
        try:
            try:
                tree, tagged = self._tree(text, skeleton, rows, parts)
            except UnsupportedSyntax as exc:
                raise UnsupportedFormula(_label(cell_label), exc.what) from None
            except ParseError:
                raise UnsupportedFormula(_label(cell_label), f"formula ={shown(shown_text or text)} "
                                                             "(cannot be parsed)") from None
            try:
                emitter = _Emitter(self, sheet, row, col, is_array, tagged and family_key is not None)
                shape = emitter.build(tree)
            except _Unsupported as exc:
                raise UnsupportedFormula(_label(cell_label), exc.what) from None
            except (RecursionError, SyntaxError):  # nested past what Python compiles (100 blocks)
                raise UnsupportedFormula(_label(cell_label), f"formula ={shown(shown_text or text)} (nested too deeply "
                                                             "to compile)") from None
            count = _count_refs(tree)
            if emitter.family is not None:
                self._families[family_key] = _Family(emitter.family, emitter.factory, rows, row, shape, count)
            return shape, count
        finally:
            sys.setrecursionlimit(limit)

    def _tree(self, text: str, skeleton: str, rows: list | None, parts: list | None = None):
        """(parse_tree(text), whether its rows are tagged), parsing once per skeleton:
        formulas that differ only in their references' rows (each epoch's rmse over its
        own 29 rows) reuse the first one's tree with their rows put in. The reuse is proven
        per skeleton: a probe with the rows 1, 2, 3... must parse to a tree holding exactly
        those rows in that order. A reused tree's rows are _Rows (they know their place in
        `rows`), so the code generated from it can be re-bound to the skeleton's next
        formulas (_Family)."""
        if rows is None:
            return self._parsed_by_references(text, parts), False
        probe = self._skeletons.get(skeleton, _UNSEEN)
        if probe is _UNSEEN:  # first sight: most skeletons have one shape, so no probe yet
            self._skeletons[skeleton] = None
            return self._parsed_by_references(text, parts), False
        if probe is None:
            numbered = list(range(1, len(rows) + 1))
            pieces = skeleton.split("\x00")
            probe_text = "".join(piece + str(n) for piece, n in zip(pieces, numbered)) + pieces[-1]
            try:
                probe = _parsed(probe_text)
            except ParseError:
                probe = False
            else:
                found: list = []
                _rows_of(probe, found)
                if found != numbered:
                    probe = False
            self._skeletons[skeleton] = probe
        if probe is False:
            return _parsed(text), False
        return _with_rows(probe, [_Row(value, i) for i, value in enumerate(rows)]), True


    def _parsed_by_references(self, text: str, parts: list | None):
        """parse_tree(text), parsing once per reference skeleton (the text with its
        references' columns and rows taken out): formulas that differ in where they point
        (collab-filter's gradients, one per column, 389 parses in its build) reuse the
        tree of a probe with references A1, B2, C3... with theirs put in. The probe is
        checked the second time its skeleton is seen: it must hold exactly those
        references in that order, and with that formula's references put in it must be
        the formula's own parse tree."""
        found = _reference_skeleton(text, parts)
        if found is None:
            return _parsed(text)
        skeleton, ends = found
        probe = self._reference_probes.get(skeleton, _UNSEEN)
        if probe is _UNSEEN:  # first sight: no probe yet
            self._reference_probes[skeleton] = None
            return _parsed(text)
        if probe is None:
            probe = self._reference_probes[skeleton] = _reference_probe(skeleton, len(ends))
            if probe is not False:
                tree = _parsed(text)
                if _with_references(probe, ends) != tree:
                    self._reference_probes[skeleton] = False
                return tree
        if probe is False:
            return _parsed(text)
        return _with_references(probe, ends)


_UNSEEN = object()
_COLUMN, _ROW_NUMBER, _COLUMN_ONLY, _ROW_ONLY = "\x00", "\x01", "\x02", "\x03"
_REFERENCE_MARK = re.compile("[\x00-\x03]")


def _reference_skeleton(text: str, parts: list | None):
    """(the text with each reference end's column letters and row digits marked, the ends'
    (column, row) in text order, None where a whole-column or whole-row range has none),
    or None: no references, or one a probe's A1-style reference could not stand for
    (lower case, a leading zero, off the sheet, marks in the text)."""
    if parts is None:
        parts = REF_RE.split(text)
    if len(parts) == 1 or _REFERENCE_MARK.search(text):
        return None
    out = [parts[0]]
    ends: list = []
    for i in range(1, len(parts), 19):  # literal, 18 groups, literal, ... (refs.REF_RE)
        g = parts[i:i + 18]
        if g[3] is not None:
            for at in (2, 6) if g[7] is not None else (2,):
                letters, digits = g[at + 1], g[at + 3]
                if not letters.isupper() or digits[0] == "0":
                    return None
                col, row = col_number(letters), int(digits)
                if col > MAX_COL or not 1 <= row <= MAX_ROW:
                    return None
                ends.append((col, row))
                if at == 6:
                    out.append(":")
                out.append(f"{g[at]}{_COLUMN}{g[at + 2]}{_ROW_NUMBER}")
        elif g[11] is not None:
            for letters in (g[11], g[13]):
                if not letters.isupper() or col_number(letters) > MAX_COL:
                    return None
                ends.append((col_number(letters), None))
            out.append(f"{g[10]}{_COLUMN_ONLY}:{g[12]}{_COLUMN_ONLY}")
        elif g[15] is not None:
            for digits in (g[15], g[17]):
                if digits[0] == "0" or not 1 <= int(digits) <= MAX_ROW:
                    return None
                ends.append((None, int(digits)))
            out.append(f"{g[14]}{_ROW_ONLY}:{g[16]}{_ROW_ONLY}")
        else:
            out.append(g[0] if g[0] is not None else g[1])
        out.append(parts[i + 18])
    if len(ends) >= MAX_COL:
        return None
    return "".join(out), ends


def _reference_probe(skeleton: str, count: int):
    """The parse tree of the skeleton with end i (from 0) as column i + 1 and row i + 1,
    if it holds exactly those references in that order, else False."""
    end = iter(range(1, count + 1))
    current = [0]

    def fill(mark) -> str:
        kind = mark.group()
        if kind != _ROW_NUMBER:
            current[0] = next(end)
        if kind in (_COLUMN, _COLUMN_ONLY):
            return col_letters(current[0])
        return str(current[0])
    try:
        probe = _parsed(_REFERENCE_MARK.sub(fill, skeleton))
    except (ParseError, UnsupportedSyntax):
        return False
    found: list = []
    if not _references_of(probe, found):
        return False
    expected = []
    for i, (col, row) in enumerate(_skeleton_kinds(skeleton), start=1):
        expected.append((i if col else None, i if row else None))
    return probe if found == expected else False


def _skeleton_kinds(skeleton: str):
    """(has a column, has a row) of each reference end of a skeleton, in text order."""
    kinds = []
    for mark in _REFERENCE_MARK.findall(skeleton):
        if mark == _COLUMN:
            kinds.append((True, True))
        elif mark == _COLUMN_ONLY:
            kinds.append((True, False))
        elif mark == _ROW_ONLY:
            kinds.append((False, True))
    return kinds


def _references_of(tree, out: list) -> bool:
    """The (column, row) of every reference end in a tree, in _with_references' order;
    False if the tree holds a node whose meaning could rest on a reference's text."""
    kind = tree[0]
    if kind in ("cell", "spill"):
        out.append((tree[2][1], tree[2][3]))
    elif kind == "range":
        out.append((tree[2][1], tree[2][3]))
        out.append((tree[3][1], tree[3][3]))
    elif kind in ("op", "call"):
        return all(_references_of(arg, out) for arg in tree[2])
    elif kind == "let":
        return all(_references_of(value, out) for _, value in tree[1]) and _references_of(tree[2], out)
    elif kind == "lambda":
        return _references_of(tree[2], out)
    elif kind == "unsupported":
        return False
    return True


def _with_references(tree, ends: list):
    """A probe tree with ends[i - 1] in place of the end with column or row i."""
    kind = tree[0]
    if kind in ("cell", "spill"):
        return (kind, tree[1], _end(tree[2], ends))
    if kind == "range":
        return (kind, tree[1], _end(tree[2], ends), _end(tree[3], ends))
    if kind in ("op", "call"):
        return (kind, tree[1], tuple(_with_references(arg, ends) for arg in tree[2]))
    if kind == "let":
        return (kind, tuple((var, _with_references(value, ends)) for var, value in tree[1]),
                _with_references(tree[2], ends))
    if kind == "lambda":
        return (kind, tree[1], _with_references(tree[2], ends))
    return tree


def _end(part, ends: list):
    col, row = ends[(part[1] if part[1] is not None else part[3]) - 1]
    return (part[0], col, part[2], row)


def _label(cell_label) -> str:
    """A cell's name as Compiler.compile was given it (or a function making it)."""
    return cell_label() if callable(cell_label) else cell_label


class _Row(int):
    """A row number written in a formula's text, knowing its place among them (i: the
    i-th in text order), so the emitter can say how each parameter follows from it."""

    def __new__(cls, value: int, index: int):
        row = int.__new__(cls, value)
        row.index = index
        return row


class _Family:
    """A compiled shape that serves every formula of its skeleton (the text with its
    references' rows taken out) in the same sheet, column and kind: the code is the same,
    only its parameters (where references point) follow from the new rows.

    Each parameter is either a constant or its value at the recorded formula plus
    coefficient * (how far the row it came from moved: the row itself for an absolute
    row, its distance from the formula's row for a relative one). Where the recorded
    code has no parameter (a reference to the formula's own row reads `k`, `r`), the new
    formula must keep that distance, or it is compiled afresh.
    """

    __slots__ = ("params", "zero", "rows", "row", "factory", "shape", "count")

    def __init__(self, recipe, factory, rows: list, row: int, shape: "Shape", count: int):
        self.params, self.zero = recipe  # [(value, None | (coef, i, relative))], [(i, relative)]
        self.rows, self.row = list(map(int, rows)), row
        self.factory = factory
        self.shape = shape
        self.count = count

    def bind(self, rows: list, row: int):
        """(Shape, references) for the formula of this family with `rows` at `row`, or None
        when its code would differ (a distance the code took as zero is not zero here)."""
        old_rows, old_row = self.rows, self.row
        if len(rows) != len(old_rows):
            return None
        for i, relative in self.zero:
            if (rows[i] - row != old_rows[i] - old_row) if relative else rows[i] != old_rows[i]:
                return None
        values = []
        for value, origin in self.params:
            if origin is not None:
                coef, i, relative = origin
                moved = (rows[i] - row) - (old_rows[i] - old_row) if relative else rows[i] - old_rows[i]
                value += coef * moved
            values.append(value)
        run, deps = self.factory(*values)
        run.deps = deps
        shape = self.shape
        return Shape(run, deps, shape.volatile, shape.dynamic, shape.source, shape.reads_cells), self.count


def _rows_of(tree, out: list) -> None:
    """The row numbers written in a tree's references, in the order _with_rows fills them."""
    kind = tree[0]
    if kind in ("cell", "spill"):
        if tree[2][3] is not None:
            out.append(tree[2][3])
    elif kind == "range":
        for part in tree[2:4]:
            if part[3] is not None:
                out.append(part[3])
    elif kind in ("op", "call"):
        for arg in tree[2]:
            _rows_of(arg, out)
    elif kind == "let":
        for _, value in tree[1]:
            _rows_of(value, out)
        _rows_of(tree[2], out)
    elif kind == "lambda":
        _rows_of(tree[2], out)


def _with_rows(tree, rows: list):
    """A probe tree (rows 1, 2, 3...) with rows[i - 1] in place of row i."""
    kind = tree[0]
    if kind in ("cell", "spill"):
        part = tree[2]
        if part[3] is None:
            return tree
        return (kind, tree[1], (part[0], part[1], part[2], rows[part[3] - 1]))
    if kind == "range":
        p1, p2 = tree[2], tree[3]
        if p1[3] is not None:
            p1 = (p1[0], p1[1], p1[2], rows[p1[3] - 1])
        if p2[3] is not None:
            p2 = (p2[0], p2[1], p2[2], rows[p2[3] - 1])
        return (kind, tree[1], p1, p2)
    if kind in ("op", "call"):
        return (kind, tree[1], tuple(_with_rows(arg, rows) for arg in tree[2]))
    if kind == "let":
        return (kind, tuple((var, _with_rows(value, rows)) for var, value in tree[1]), _with_rows(tree[2], rows))
    if kind == "lambda":
        return (kind, tree[1], _with_rows(tree[2], rows))
    return tree


@lru_cache(maxsize=4096)
def _factory_code(source: str, params: tuple):
    """The compiled module code defining shape_factory(params) -> (run, deps) for a shape's
    source. Kept for the process: the same source means the same code in any engine's
    namespace (a build's calculation and its verify read-back compile the same shapes)."""
    body = "".join("    " + line + "\n" if line else "\n" for line in source.split("\n"))
    code = f"def shape_factory({', '.join(params)}):\n{body}    return run, deps\n"
    with warnings.catch_warnings():  # a warning about generated code is no news to the user
        warnings.simplefilter("ignore", SyntaxWarning)
        return compile(code, "<xlgen shape>", "exec")


@lru_cache(maxsize=8192)
def _parsed(text: str):
    """parse_tree(text), kept for the process (trees are immutable tuples)."""
    return parse_tree(text)


def _count_refs(tree) -> int:
    """References written in the formula text itself (as refs.shape_key counts them)."""
    kind = tree[0]
    if kind in ("cell", "range", "spill"):
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

    def __init__(self, compiler: Compiler, sheet: int, row: int, col: int, is_array: bool,
                 tracking: bool = False):
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
        self.waits = False  # reads a range known only at run time (OFFSET): deps grow then
        self.expanding: list = []  # defined names being expanded (recursion guard)
        self.params: dict = {}  # integer from where a reference points -> its name in the code
        self.reads: dict = {}  # code of a cell's key -> the variable its value is read into
        # tracking (the tree's rows are _Rows): how each parameter follows from the rows
        self.tracking = tracking
        self.origins: dict = {}  # parameter value -> None (constant) | (coef, row index, relative)
        self.zero: list = []  # (row index, relative) of the distances the code took as zero
        self.family = None  # after build(), if tracking and every parameter's origin is known
        self.factory = None

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
        scope = _Scope(base_row=self.row, base_col=self.col, array=self.is_array)
        self.line(f"res = {self.value(tree, scope)}")
        if self.is_array:
            self.line("res = _array_result(k, res)")
        self.line("if type(res) is not float: res = _final(res)")
        self.line("V[k] = res")
        self.line("return True")
        head = ["def run(k):"]
        if self.needs_rc:
            head.append(f"    r = (k >> {ROW_SHIFT}) & {ROW_MASK}")
            head.append(f"    c = k & {COL_MASK}")
        singles = list(dict.fromkeys(self.deps_single))
        # every cell it reads is read once, up front: a formula cell not computed yet holds
        # PENDING, so the read is also the check (one dict lookup per reference), and a cell
        # not ready stops at its first pending input (a step row's cell reading the row's
        # end, not computed yet in sheet order, reads one cell, not seventeen)
        checks = [f"({variable} := g({key})) is PENDING" for key, variable in self.reads.items()]
        checks += [f"_rpending({d})" for d in dict.fromkeys(self.deps_ranges)]
        if checks:
            head.append(f"    if {' or '.join(checks)}: return False")
        deps = ["def deps(k):"]
        if self.needs_rc:
            deps.append(f"    r = (k >> {ROW_SHIFT}) & {ROW_MASK}")
            deps.append(f"    c = k & {COL_MASK}")
        parts = [f"({', '.join(singles)},)" if singles else "()"]
        parts += [f"_rdeps({d})" for d in dict.fromkeys(self.deps_ranges)]
        if self.waits:
            parts.append("_waited(k)")
        deps.append(f"    return {' + '.join(parts)}")
        source = "\n".join(head + self.lines + [""] + deps) + "\n"
        # Where references point (offsets, absolute rows) are the factory's arguments, so
        # shapes that differ only there (a per-epoch SUM over the next 29 rows) share code.
        factory = self.c._factories.get(source)
        if factory is None:
            exec(_factory_code(source, tuple(self.params.values())), self.c.ns)
            factory = self.c._factories[source] = self.c.ns.pop("shape_factory")
        run, deps = factory(*self.params)
        run.deps = deps
        self.factory = factory
        if self.tracking and self.origins is not None:
            self.family = ([(value, self.origins[value]) for value in self.params], self.zero)
        return Shape(run, deps, self.volatile, self.dynamic, source, bool(singles or self.deps_ranges))

    def number(self, value: int, origin=None) -> str:
        """The name standing for an integer that depends on where a reference points
        (`origin`: how it follows from the formula's rows, see _Family)."""
        value = int(value)
        name = self.params.get(value)
        if name is None:
            name = self.params[value] = f"_p{len(self.params)}"
            if self.origins is not None:
                self.origins[value] = origin
        elif self.origins is not None and self.origins[value] != origin:
            self.origins = None  # two references' numbers share a name here, perhaps not elsewhere
        return name

    def origin(self, row, coef: int, relative: bool, base: int):
        """How a number made from `row` (times coef) follows from the formula's rows: None
        if it does not (a row of a defined name, counted from A1), else (coef, which row,
        relative). Anything else stops this shape's re-binding."""
        if not self.tracking or self.origins is None:
            return None
        if type(row) is _Row and (not relative or base == self.row):
            return coef, row.index, relative
        if type(row) is not _Row and (not relative or base != self.row):
            return None
        self.origins = None  # a formula's row without its tag, or measured from elsewhere
        return None

    def zero_distance(self, origin) -> None:
        """The code reads the formula's own row (`k`, `r`): a re-bound formula must too."""
        if origin is not None:
            self.zero.append(origin[1:])

    # --- references ----------------------------------------------------------------------
    def _axis(self, absolute, value, base, var, is_row=False):
        """Code for a row or column number: a constant, or var + offset."""
        origin = self.origin(value, 1, not absolute, base) if is_row else None
        if absolute:
            return self.number(value, origin)
        self.needs_rc = True
        d = value - base
        if d == 0:
            self.zero_distance(origin)
            return var
        return f"({var} + {self.number(d, origin)})"

    def read(self, key: str) -> str:
        """The variable holding the value of the cell whose key `key` computes (read at the
        top of run(); never assigned again, so callers must not write to it)."""
        variable = self.reads.get(key)
        if variable is None:
            variable = self.reads[key] = f"tc{len(self.reads)}"
            self.deps_single.append(key)
        return variable

    def cell_key_code(self, target: int, part, scope: _Scope):
        """Code computing the key of a single cell; None if it can never be valid."""
        cabs, col, rabs, row = part
        if scope.checked and not (cabs and rabs):
            r_code = self._axis(rabs, row, scope.base_row, "r", is_row=True)
            c_code = self._axis(cabs, col, scope.base_col, "c")
            return f"_checked_key({target}, {r_code}, {c_code})"
        s_delta = (target - self.sheet) << SHEET_SHIFT
        origin = self.origin(row, 1 << ROW_SHIFT, not rabs, scope.base_row)
        if cabs and rabs:
            return self.number(cell_key(target, row, col), origin)
        if not cabs and not rabs:
            off = s_delta + ((row - scope.base_row) << ROW_SHIFT) + (col - scope.base_col)
            if off == 0:
                self.zero_distance(origin)
                return "k"
            return f"k + {self.number(off, origin)}"
        if cabs:  # $A5: keep sheet and row of k, set the column
            off = s_delta + ((row - scope.base_row) << ROW_SHIFT) + col
            return f"(k & {~COL_MASK}) + {self.number(off, origin)}"
        off = (target << SHEET_SHIFT) + (row << ROW_SHIFT) + (col - scope.base_col)  # A$5
        return f"(k & {COL_MASK}) + {self.number(off, origin)}"

    def range_code(self, target: int, p1, p2, scope: _Scope, track: bool = True) -> str:
        """'sheet, r1, c1, r2, c2' for the runtime range helpers; `track`: the cell reads it."""
        (c1abs, c1, r1abs, r1), (c2abs, c2, r2abs, r2) = p1, p2
        if r1 is None:  # whole columns
            r1_code, r2_code = "1", str(MAX_ROW)
        else:
            r1_code = self._axis(r1abs, r1, scope.base_row, "r", is_row=True)
            r2_code = self._axis(r2abs, r2, scope.base_row, "r", is_row=True)
        if c1 is None:  # whole rows
            c1_code, c2_code = "1", str(MAX_COL)
        else:
            c1_code = self._axis(c1abs, c1, scope.base_col, "c")
            c2_code = self._axis(c2abs, c2, scope.base_col, "c")
        code = f"{target}, {r1_code}, {c1_code}, {r2_code}, {c2_code}"
        if scope.checked or (r1 is not None and r1abs != r2abs) or (c1 is not None and c1abs != c2abs):
            code = f"*_ordered({code})"  # mixed ends can cross over; Excel sorts them
        if track:
            self.deps_ranges.append(code)
        return code

    def spill(self, node, scope: _Scope, mode: str) -> str:
        """A1#: the range the dynamic array anchored at A1 fills (looked up at run time;
        #REF! where A1 anchors none). mode: 'whole' array, 'one' value of the cell's row or
        column (implicit intersection)."""
        target = self.sheet_of(node[1])
        if target is None or not self.c.spills:
            return self.c.const(rt.E_REF)
        key = self.cell_key_code(target, node[2], scope)
        self.deps_ranges.append(f"*_spill({key})")
        t = self.tmp()
        if mode == "whole":
            self.line(f"{t} = _range(*_spill({key})) if ({key}) in SPILLS else E_REF")
        else:
            self.needs_rc = True
            self.line(f"{t} = _intersect(*_spill({key}), r, c) if ({key}) in SPILLS else E_REF")
        return t

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
            return self.read(self.cell_key_code(target, node[2], scope))
        if kind == "range":
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            code = self.range_code(target, node[2], node[3], scope)
            t = self.tmp()
            if scope.array:
                self.line(f"{t} = _range({code})")
            else:
                self.needs_rc = True
                self.line(f"{t} = _intersect({code}, r, c)")
            return t
        if kind == "spill":
            return self.spill(node, scope, "whole" if scope.array else "one")
        if kind == "name":
            return self.name(node, scope, self.value)
        if kind == "op":
            return self.operator(node, scope)
        if kind == "call":
            return self.call(node, scope)
        if kind == "let":
            inner = scope.inner()
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
            t = self.tmp()
            self.line(f"{t} = _cell_array({self.value(node, scope)})")
            return t
        if kind == "range":
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            code = self.range_code(target, node[2], node[3], scope)
            t = self.tmp()
            self.line(f"{t} = _range({code})")
            return t
        if kind == "spill" or (kind == "call" and node[1] in ("OFFSET", "ANCHORARRAY")):
            return self.value(node, scope.whole())
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
        inner = scope.inner({}, relative_to_a1=True)
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
        if symbol in _PY_COMPARE and type(literal[0]) is str is not type(literal[1]) and b.startswith("t"):
            # text against a cell (derivative="finite"): Excel compares text ignoring case
            self.line(f"{t} = ({self.c.const(literal[0].upper())} {_PY_COMPARE[symbol]} {b}.upper()) "
                      f"if type({b}) is str else {helper}({a}, {b})")
            return t
        if symbol in _PY_COMPARE and type(literal[1]) is str is not type(literal[0]) and a.startswith("t"):
            self.line(f"{t} = ({a}.upper() {_PY_COMPARE[symbol]} {self.c.const(literal[1].upper())}) "
                      f"if type({a}) is str else {helper}({a}, {b})")
            return t
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
        if node[0] == "spill":
            return self.spill(node, scope, "one")
        if node[0] == "range":
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            code = self.range_code(target, node[2], node[3], scope)
            self.needs_rc = True
            t = self.tmp()
            self.line(f"{t} = _intersect({code}, r, c)")
            return t
        if node[0] == "call" and node[1] == "ANCHORARRAY" and len(node[2]) == 1 and node[2][0][0] == "cell":
            return self.spill(("spill",) + tuple(node[2][0][1:]), scope, "one")
        value = self.value(node, scope.whole() if node[0] == "call" and node[1] == "OFFSET" else scope)
        if not value.startswith("t"):
            return value
        t = self.tmp()
        self.line(f"{t} = _first({value})")
        return t

    # --- function calls -----------------------------------------------------------------
    def call(self, node, scope: _Scope) -> str:
        _, name, args = node
        if name in VOLATILE:
            fewest, most = VOLATILE_ARGUMENTS[name]
            if not fewest <= len(args) <= most:
                return self.c.const(rt.E_VALUE)
        native = getattr(self, "fn_" + name.replace(".", "_"), None)
        if native is not None:
            return native(args, scope)
        hit = self.c.lookup_name(name, self.c.book.sheets[self.sheet].name)
        func = library_function(name) if hit is None or may_be_library_function(name) else None
        if func is not None:  # a library function comes before a workbook name
            return self.library_call(name, func, args, scope)
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
        positions = ARRAY_PARAMETERS.get(name, ())
        whole = scope.whole()
        codes = prefix + [self.arg(a, whole if positions is None or i in positions else scope)
                          for i, a in enumerate(args)]
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
        result = self.value(body, scope.inner(bound, relative_to_a1=True))
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
        func = self.c.function_const(LazyFunction("IF", "function"))
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
        func = self.c.function_const(LazyFunction(name, "function"))
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
        self.line(f"{t} = _call({self.c.function_const(LazyFunction(name))}, {arg})")
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

    def fn_LOG10(self, args, scope):
        return self._math("LOG10", args, scope, "{t} = _log10({x}) if {x} > 0.0 else E_NUM")

    def fn_LOG(self, args, scope):
        if len(args) == 1:  # Excel's LOG is base 10 unless told otherwise
            return self._math("LOG", args, scope, "{t} = _log10({x}) if {x} > 0.0 else E_NUM")
        return self.library_call("LOG", library_function("LOG"), args, scope)

    # array functions natively: plain float arrays go fast, anything else as Excel does
    def _array_function(self, helper, args, scope):
        whole = scope.whole()
        codes = [self.arg(a, whole) for a in args]
        t = self.tmp()
        self.line(f"{t} = {helper}({', '.join(codes)})")
        return t

    def fn_MMULT(self, args, scope):
        if len(args) != 2:
            return self.c.const(rt.E_VALUE)
        return self._array_function("_mmult", args, scope)

    def fn_SUMPRODUCT(self, args, scope):
        if not args:
            return self.c.const(rt.E_VALUE)
        refs = []
        for arg in args:  # ranges as written (titanic's 2,136 of them): read as flat lists
            node, where = self.deref(arg, scope)
            target = self.sheet_of(node[1]) if node is not None and node[0] == "range" else None
            if target is None or node[2][1] is None or node[2][3] is None:
                return self._array_function("_sumproduct", args, scope)
            refs.append((target, node, where))
        codes = [f"({self.range_code(target, node[2], node[3], where)},)" for target, node, where in refs]
        t = self.tmp()
        self.line(f"{t} = _sumproduct_ranges({', '.join(codes)})")
        return t

    def fn_ANCHORARRAY(self, args, scope):
        """How files store A1#: _xlfn.ANCHORARRAY(A1)."""
        if len(args) != 1 or args[0][0] != "cell":
            raise _Unsupported("ANCHORARRAY of something that is not a cell reference")
        return self.spill(("spill",) + tuple(args[0][1:]), scope, "whole" if scope.array else "one")

    def fn_COUNTIF(self, args, scope):
        # formulas' COUNTIF, without importing its `stat` module (and scipy, ~1 s)
        import functools

        from formulas.functions import wrap_func, xfilter
        if "COUNTIF" not in _found or _found["COUNTIF"] is None:
            _found["COUNTIF"] = wrap_func(functools.partial(xfilter, len, operating_range=None))
        return self.library_call("COUNTIF", _found["COUNTIF"], args, scope)

    def fn_TRANSPOSE(self, args, scope):
        if len(args) != 1:
            return self.c.const(rt.E_VALUE)
        return self._array_function("_transpose", args, scope)

    # SUM, SUMSQ, COUNT, AVERAGE, MAX, MIN over plain numbers run natively; data holding
    # more (an error, text, a boolean) goes to runtime's version of Excel's rules, and
    # arguments the native form does not take (a name it cannot follow, a text or
    # boolean literal) to formulas' implementation, whose module is imported only then.
    def _aggregate(self, name, args, scope):
        parts = []
        kinds = []  # per part: "r" a reference, "l" a literal, "e" an expression
        for arg in args:
            node, where = self.deref(arg, scope)
            if node is None:
                return self.library_call(name, LazyFunction(name), args, scope)
            if node[0] == "lit" and type(node[1]) is float:
                parts.append(f"({self.c.const(node[1])},)")
                kinds.append("l")
            elif node[0] in ("cell", "range"):
                target = self.sheet_of(node[1])
                if target is None:
                    return self.library_call(name, LazyFunction(name), args, scope)
                if node[0] == "cell":
                    parts.append(f"({self.read(self.cell_key_code(target, node[2], where))},)")
                else:
                    parts.append(f"_values({self.range_code(target, node[2], node[3], where)})")
                kinds.append("r")
            elif node[0] in ("call", "op", "spill"):  # an expression: its value(s), flat
                if node[0] == "spill" or (node[0] == "call" and node[1] in ("OFFSET", "ANCHORARRAY")):
                    value = self.value(node, where.whole())
                    kinds.append("r")  # these give a reference in Excel
                else:
                    value = self.value(node, where)
                    kinds.append("e")
                parts.append(f"_flat({value})")
            else:
                return self.library_call(name, LazyFunction(name), args, scope)
        t = self.tmp()
        self.line(f"{t} = _agg_{name}({', '.join(parts)})")
        self.line(f"if {t} is FALLBACK:")
        # (an expression's value is a variable, not emitted again: SUM(SUM(SUM(...)))
        # stays linear in its nesting, not 2^levels)
        self.line(f"    {t} = _agg_by_excel_rules({name!r}, {''.join(kinds)!r}, {', '.join(parts)})")
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
            scope = scope.inner({}, relative_to_a1=True)
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
            code = self._axis(rabs, row, scope.base_row, "r", is_row=True)
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
        self.volatile = True
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
        """OFFSET(reference, rows, cols, [height], [width]): the range is computed, and the
        cell waits (returns False, its deps grow) while a formula cell in it is pending."""
        ref = self.reference_code(("call", "OFFSET", args), scope)
        t = self.tmp()
        self.line(f"if type({ref}) is tuple:")
        self.line(f"    if _rpending(*{ref}): return _wait(k, {ref})")
        if scope.array:
            self.line(f"    {t} = _range(*{ref})")
        else:
            self.needs_rc = True
            self.line(f"    {t} = _intersect(*{ref}, r, c)")
        self.line("else:")
        self.line(f"    {t} = {ref}")
        self.waits = True
        return t

    def reference_code(self, node, scope) -> str:
        """Code for a reference as (sheet, r1, c1, r2, c2), or an error value: a cell or range
        written in the formula (not read: OFFSET does not depend on its base's values), a
        defined name for one, or OFFSET of one of these."""
        node, where = self.deref(node, scope)
        if node is not None and node[0] in ("cell", "range"):
            target = self.sheet_of(node[1])
            if target is None:
                return self.c.const(rt.E_REF)
            p1, p2 = (node[2], node[2]) if node[0] == "cell" else (node[2], node[3])
            t = self.tmp()
            self.line(f"{t} = ({self.range_code(target, p1, p2, where, track=False)},)")
            return t
        if node is not None and node[0] == "call" and node[1] == "OFFSET":
            args = node[2]
            if not 3 <= len(args) <= 5:
                return self.c.const(rt.E_VALUE)
            base = self.reference_code(args[0], where)
            numbers = [self.value(a, where) if a[0] != "missing" else "None" for a in args[1:]]
            numbers += ["None"] * (4 - len(numbers))
            t = self.tmp()
            self.line(f"{t} = _offset({base}, {', '.join(numbers)})")
            return t
        if node is not None and node[0] == "lit":
            return self.c.const(rt.E_VALUE)  # OFFSET(5, 1, 1): not a reference
        raise _Unsupported("OFFSET of something that is not a cell or range reference")

    def fn_INDIRECT(self, args, scope):
        if len(args) == 1 and args[0][0] in ("cell", "range"):
            return self.value(args[0], scope)  # INDIRECT("B2"): a fixed reference
        return self._dynamic("INDIRECT", args, scope)

    def _dynamic(self, name, args, scope):
        for a in args:  # still record what it reads where that is static
            if a[0] in ("cell", "range"):
                self.bind(a, scope)
        self.volatile = True
        self.dynamic = f"function {name}"
        t = self.tmp()
        self.line(f"{t} = _dynamic({name!r})")
        return t
