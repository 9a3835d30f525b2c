"""calculate(book): every formula cell of a Book, in dependency order, without recursion.

Cells are grouped by shape (refs.shape_key, with refs.Template to recognise the next
cell of a column cheaply) and each shape is compiled once (compiler.py). Values live in
one dict keyed by k = sheet<<36 | row<<15 | col, where a formula cell not computed yet
holds PENDING (so reading an input is also checking it). Cells are visited in sheet/row
order; a cell whose inputs are ready is computed at once (the common case: rows chain
downwards), otherwise it waits for the last of its pending inputs and is tried again when
that one is computed (_settle). Cells still waiting at the end depend on a loop: an
explicit-stack depth-first walk names it in a CircularReference.
"""

from __future__ import annotations

import datetime as _dt
import gc
import math
import random
from bisect import bisect_left
from itertools import compress, islice, repeat
from operator import is_, is_not, itemgetter

import numpy as np

from ..errors import CircularReference, UnsupportedFormula
from . import runtime as rt
from .book import Book, range_bounds
from .compiler import COL_MASK, ROW_MASK, ROW_SHIFT, SHEET_SHIFT, Compiler
from .refs import MAX_COL, MAX_ROW, REF_RE, Template, qualified, shape_key
from .tables import StructuredRefs

_first, _second = itemgetter(0), itemgetter(1)
MISSING = object()  # a formula cell without a saved value


class _Pending:
    """What V holds for a formula cell not computed yet: reading a cell is also the check
    whether it is ready (one dict lookup per reference)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


PENDING = _Pending()
_BIG_RANGE = 1 << 16  # ranges with more cells than this are clipped to the used area
_MEMO_CELLS = 1 << 10  # ranges of at least this many cells are gathered once per calculation
_SCAN_CELLS = 8  # smaller ranges are scanned whenever asked whether they are pending
_TICK_CELLS = 1 << 14  # formulas set up between two progress calls
_MAX_ARRAY_CELLS = rt.MAX_ARRAY_CELLS  # a range passed whole to a function, an array made
_EXCEL_EPOCH = _dt.datetime(1899, 12, 30)


class SavedValueOnly(rt.RuntimeUnsupported):
    """A function whose reference is known only at run time (OFFSET, INDIRECT of a text):
    the cell can only keep the value the file saved."""


class CellCodes:
    """The formula cells of a calculation as the engine keys them, in calculation order,
    with their values: code = sheet << 36 | row << 15 | col (sheet: its index in `names`).

    The (sheet, row, col) tuples and the dict of values are made from these only when
    asked (Calculation.values, .order): verify finds a column's values in the sorted codes
    without them."""

    __slots__ = ("names", "codes", "values")
    SHEET_SHIFT, ROW_SHIFT, ROW_MASK, COL_MASK = SHEET_SHIFT, ROW_SHIFT, ROW_MASK, COL_MASK

    def __init__(self, names: list, codes: np.ndarray, values: list):
        self.names = names  # sheet names by index
        self.codes = codes  # int64, calculation order
        self.values = values  # values[i]: the value of the cell codes[i], as Calculation.values holds it

    def __len__(self) -> int:
        return len(self.codes)

    def cells(self) -> list:
        """The cells as (sheet, row, col) tuples, in calculation order."""
        codes = self.codes
        rows = (codes >> ROW_SHIFT) & ROW_MASK
        row_numbers = list(range(int(rows.max()) + 1 if len(rows) else 0))  # one int object per row, shared
        return list(zip(map(self.names.__getitem__, (codes >> SHEET_SHIFT).tolist()),
                        map(row_numbers.__getitem__, rows.tolist()), (codes & COL_MASK).tolist()))


def _public(names: list, keys: list) -> list:
    """A few engine keys as (sheet, row, col) tuples."""
    return [(names[k >> SHEET_SHIFT], (k >> ROW_SHIFT) & ROW_MASK, k & COL_MASK) for k in keys]


class Calculation:
    """The result of calculate(): values of every formula cell, and how they were reached.

    Made from a dict of values and their order (another engine's, a build's), or from
    the engine's CellCodes (`coded`), when values and order are made the first time asked
    (verify's lookups need neither: cell_codes())."""

    def __init__(self, book: Book, values: dict | None, order: list | None, volatile: list,
                 saved: list = (), constant: list = (), coded: CellCodes | None = None):
        self.book = book
        self._values = values  # (sheet, row, col) -> float | str | bool | None | ExcelError
        self._order = order  # formula cells, dependencies first
        # the same cells and values as the engine keys them (None: made from a dict)
        self._coded = coded
        if coded is None and (values is None or order is None):
            raise ValueError("a Calculation needs its values and order, or the engine's CellCodes")
        # cells where a volatile function ran (RAND, NOW, OFFSET...: not in a branch not
        # taken), in calculation order; their values are not reproducible
        self.volatile = volatile
        # those of them that keep the file's saved value instead of this run's draw: the
        # engine did not compute these
        self.saved = saved
        # formula cells that read no cell (=1/3, =FALSE()): constants written as formulas
        self.constant = constant

    @property
    def order(self) -> list:
        """Formula cells, (sheet, row, col), dependencies first."""
        if self._order is None:
            self._order = self._coded.cells()
        return self._order

    @property
    def values(self) -> dict:
        """(sheet, row, col) -> float | str | bool | None | ExcelError, for every formula cell."""
        if self._values is None:
            self._values = dict(zip(self.order, self._coded.values))
        return self._values

    def cell_codes(self) -> CellCodes | None:
        """The engine's CellCodes while they say what `values` says: None when the
        calculation was made from a dict, or once its dict was handed out (and may have
        been changed)."""
        return self._coded if self._values is None else None

    def value(self, sheet: str, row: int, col: int):
        """Computed value of a formula cell, the constant of a constant cell, else None."""
        key = (sheet, row, col)
        if key in self.values:
            return self.values[key]
        try:
            found = self.book.sheet(sheet)
        except KeyError:
            return None
        key = (found.name, row, col)
        if key in self.values:
            return self.values[key]
        return found.constants.get((row, col))


def calculate(book: Book, progress=None) -> Calculation:
    """Compute every formula cell of `book`.

    progress, if given, is called as progress(done, total, phase): phase "compiling" as
    the formulas are compiled (done, total: formula cells), then "computing" at most about
    300 times (the cells computed in sheet order, then those whose inputs came later).
    Raises UnsupportedFormula (first such cell in sheet/row order) or CircularReference.
    """
    # Millions of small objects and no reference cycles: the cyclic collector would only
    # rescan them again and again (it costs a third of the time on large chains).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Engine(book).run(progress)
    finally:
        if was_enabled:
            gc.enable()


def _without(keys: list, taken: list) -> list:
    """keys without `taken` (some of them, in their order in keys). keys are in sheet/row
    order, so each is found by bisection and the rest copied in slices; were a key not
    where bisection looks, every key is tested instead."""
    order, start = [], 0
    for key in taken:
        at = bisect_left(keys, key, start)
        if at == len(keys) or keys[at] != key:
            taken = set(taken)
            return [key for key in keys if key not in taken]
        order += keys[start:at]
        start = at + 1
    order += keys[start:]
    return order


class _KeySet:
    """The set of formula cells' keys, made from their list the first time it is asked
    (ISFORMULA, a range with more cells than there are formulas): most books never ask."""

    __slots__ = ("source", "keys")

    def __init__(self):
        self.source = ()
        self.keys = None

    def _made(self) -> set:
        if self.keys is None:
            self.keys = set(self.source)
        return self.keys

    def __contains__(self, key) -> bool:
        return key in self._made()

    def __iter__(self):
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())


class _Engine:
    def __init__(self, book: Book):
        self.book = book
        self.names = [sheet.name for sheet in book.sheets]
        self.sheet_index = {}
        for i, sheet in enumerate(book.sheets):
            self.sheet_index.setdefault(sheet.name.lower(), i)
        # every cell's value, PENDING for a formula cell not computed yet; -1: where an
        # out-of-sheet reference points
        self.V: dict = {-1: rt.E_REF}
        self.formula_keys = _KeySet()  # formula cells (ISFORMULA, sparse ranges): made if asked
        self.formula_count = 0
        self.max_row = []
        self.max_col = []
        self.run_of: dict = {}  # cell key -> its run function, for the cells a walk may visit
        self.arrays: dict = {}  # array formula anchor key -> its whole result (an ndarray)
        self.array_ranges: dict = {}  # anchor key -> (rows, cols, dynamic) of the range it fills
        self.spills: dict = {}  # dynamic-array anchor key -> (sheet, r1, c1, r2, c2) it spills to
        self.waiting: dict = {}  # cell key -> ranges found at run time (OFFSET) it waited for
        self.draws = [0]  # volatile functions run so far: a cell that ran one is volatile
        self.volatile: list[int] = []  # cells where one ran
        self.volatile_keys: set = set()  # the same, to look up
        self.saved: list[int] = []  # ...and that keep the file's saved value
        self.tick = None  # called every 4,096 cells a walk computes (progress)

    def label(self, k: int) -> str:
        return qualified(self.names[k >> SHEET_SHIFT], (k >> ROW_SHIFT) & ROW_MASK, k & COL_MASK)

    # --- helpers the generated code calls ------------------------------------------------
    def _namespace(self) -> dict:
        V = self.V
        get = V.get
        EMPTY = rt.EMPTY
        max_row, max_col = self.max_row, self.max_col

        def clip(t, r1, c1, r2, c2):
            if (r2 - r1 + 1) * (c2 - c1 + 1) > _BIG_RANGE:
                r2 = max(r1, min(r2, max_row[t]))
                c2 = max(c1, min(c2, max_col[t]))
            return r2, c2

        # A range is read only once none of its formula cells is pending, so its values
        # are final then: large ranges (whole columns on every row) are gathered once.
        memo_arrays, memo_lists, still_pending = {}, {}, {}

        def kept(memo, key, cells):
            """Whether to keep a gathered range: from its first use if it is large (and
            `once` may then key an aggregate by its list's id), from its second if it has
            a few cells (titanic's SUMPRODUCTs read the same weights 712 times)."""
            if cells >= _MEMO_CELLS:
                return True
            if cells < _SCAN_CELLS:
                return False
            if key in memo:
                return True
            memo[key] = None  # seen once
            return False

        def value_range(t, r1, c1, r2, c2):
            r2, c2 = clip(t, r1, c1, r2, c2)
            cells = (r2 - r1 + 1) * (c2 - c1 + 1)
            if cells > _MAX_ARRAY_CELLS:
                raise rt.RuntimeUnsupported(f"an array of {cells:,} cells "
                                            f"(more than {_MAX_ARRAY_CELLS:,} in use)")
            if cells >= _SCAN_CELLS:
                array = memo_arrays.get((t, r1, c1, r2, c2))
                if array is not None:
                    return array.copy()  # formulas' functions may write into it
            base = t << SHEET_SHIFT
            cols = range(c1, c2 + 1)
            rows = [[get(base | (r << ROW_SHIFT) | c, EMPTY) for c in cols]
                    for r in range(r1, r2 + 1)]
            array = np.array(rows, dtype=object)
            if cells >= _SCAN_CELLS and kept(memo_arrays, (t, r1, c1, r2, c2), cells):
                memo_arrays[(t, r1, c1, r2, c2)] = array.copy()
            return array

        def values_list(t, r1, c1, r2, c2, aligned=False):
            """A range's values, flat, in the engine's form (None for empty). Unless
            `aligned` (SUMPRODUCT pairs its lists entry by entry), a range with more cells
            than the book holds values lists only the cells that hold one."""
            r2, c2 = clip(t, r1, c1, r2, c2)
            cells = (r2 - r1 + 1) * (c2 - c1 + 1)
            memo_key = (t, r1, c1, r2, c2, aligned)
            if cells >= _SCAN_CELLS:
                values = memo_lists.get(memo_key)
                if values is not None:
                    return values  # the native aggregates and SUMPRODUCT only read it
            base = t << SHEET_SHIFT
            if not aligned and cells > len(V):  # sparse: the cells that hold values
                values = [V[key] for key in sorted(inside(V, t, r1, c1, r2, c2))]
            elif c1 == c2:
                values = [get(base | (r << ROW_SHIFT) | c1) for r in range(r1, r2 + 1)]
            else:
                cols = range(c1, c2 + 1)
                values = [get(base | (r << ROW_SHIFT) | c) for r in range(r1, r2 + 1) for c in cols]
            if cells >= _SCAN_CELLS and kept(memo_lists, memo_key, cells):
                memo_lists[memo_key] = values
            return values

        def intersect(t, r1, c1, r2, c2, r, c):
            base = t << SHEET_SHIFT
            if c1 == c2 and r1 <= r <= r2:
                return get(base | (r << ROW_SHIFT) | c1)
            if r1 == r2 and c1 <= c <= c2:
                return get(base | (r1 << ROW_SHIFT) | c)
            if r1 == r2 and c1 == c2:
                return get(base | (r1 << ROW_SHIFT) | c1)
            return rt.E_VALUE

        def inside(keys, t, r1, c1, r2, c2):
            """The keys (of any sheet) inside a range, in no particular order."""
            return [key for key in keys if key >> SHEET_SHIFT == t
                    and r1 <= (key >> ROW_SHIFT) & ROW_MASK <= r2 and c1 <= key & COL_MASK <= c2]

        def once(aggregate):
            """SUM(A:A) on every row: a large range's aggregate computed once (its gathered
            list is kept in memo_lists, so its id stays its own)."""
            results = {}

            def cached(*parts):
                if len(parts) != 1 or type(parts[0]) is not list or len(parts[0]) < _MEMO_CELLS:
                    return aggregate(*parts)
                hit = results.get(id(parts[0]))
                if hit is None:
                    hit = results[id(parts[0])] = aggregate(*parts)
                return hit
            return cached

        def by_rules_once(name, kinds, *parts):
            """The same for an aggregate by Excel's rules (text in a whole column's header)."""
            if len(parts) != 1 or type(parts[0]) is not list or len(parts[0]) < _MEMO_CELLS:
                return rt.agg_by_excel_rules(name, kinds, *parts)
            key = (name, kinds, id(parts[0]))
            hit = by_rules_results.get(key)
            if hit is None:
                hit = by_rules_results[key] = rt.agg_by_excel_rules(name, kinds, *parts)
            return hit
        by_rules_results = {}

        def pending_keys(t, r1, c1, r2, c2):
            """The formula cells of a range not computed yet, the last in sheet order first."""
            r2, c2 = min(r2, max_row[t]), min(c2, max_col[t])
            if r2 < r1 or c2 < c1:
                return []
            if (r2 - r1 + 1) * (c2 - c1 + 1) > self.formula_count:  # sparse: test the formula cells
                keys = [key for key in inside(self.formula_keys, t, r1, c1, r2, c2) if V[key] is PENDING]
                keys.sort(reverse=True)
                return keys
            base = t << SHEET_SHIFT
            return [key for r in range(r2, r1 - 1, -1) for c in range(c2, c1 - 1, -1)
                    if get(key := base | (r << ROW_SHIFT) | c) is PENDING]

        def range_pending(t, r1, c1, r2, c2):
            """Whether a formula cell of the range is not computed yet. A range of more than a
            few cells keeps the list of its cells pending when first asked: a cell once
            computed stays computed, so later questions only trim that list (looked up
            first: most questions are about a range asked before)."""
            keys = still_pending.get((t, r1, c1, r2, c2))
            if keys is not None:
                while keys and V[keys[-1]] is not PENDING:
                    keys.pop()
                return bool(keys)
            if (r2 - r1 + 1) * (c2 - c1 + 1) < _SCAN_CELLS:
                base = t << SHEET_SHIFT
                for r in range(r1, min(r2, max_row[t]) + 1):
                    row_base = base | (r << ROW_SHIFT)
                    for c in range(c1, min(c2, max_col[t]) + 1):
                        if get(row_base | c) is PENDING:
                            return True
                return False
            keys = still_pending[(t, r1, c1, r2, c2)] = pending_keys(t, r1, c1, r2, c2)
            while keys and V[keys[-1]] is not PENDING:
                keys.pop()
            return bool(keys)

        def range_deps(t, r1, c1, r2, c2):
            """The formula cells of a range a walk must compute first (those not computed yet)."""
            if (r2 - r1 + 1) * (c2 - c1 + 1) < _SCAN_CELLS:
                return tuple(pending_keys(t, r1, c1, r2, c2))
            range_pending(t, r1, c1, r2, c2)
            return tuple(still_pending[(t, r1, c1, r2, c2)])

        def ordered(t, r1, c1, r2, c2):
            r1, r2 = sorted((min(max(r1, 1), MAX_ROW), min(max(r2, 1), MAX_ROW)))
            c1, c2 = sorted((min(max(c1, 1), MAX_COL), min(max(c2, 1), MAX_COL)))
            return t, r1, c1, r2, c2

        def checked_key(t, r, c):
            if 1 <= r <= MAX_ROW and 1 <= c <= MAX_COL:
                return (t << SHEET_SHIFT) | (r << ROW_SHIFT) | c
            return -1

        def final(v):
            if v is None:
                return 0.0
            if isinstance(v, np.ndarray):
                v = rt.first_of(v)
                return 0.0 if v is None else v
            return v

        arrays, array_ranges, spills, waiting = self.arrays, self.array_ranges, self.spills, self.waiting

        def array_result(k, res):
            """An array formula's result: kept whole for its range, top-left for the anchor."""
            if type(res) is not np.ndarray:
                arrays.pop(k, None)
                return res
            arrays[k] = res
            fills = array_ranges.get(k)
            if fills is not None and fills[2] and (res.shape[0] > fills[0] or res.shape[1] > fills[1]):
                raise rt.RuntimeUnsupported(
                    f"a dynamic array that now spills to {res.shape[0]}x{res.shape[1]} cells, past the "
                    f"{fills[0]}x{fills[1]} the file saved (xlgen does not move spills)")
            return rt.first_of(res)

        def sumproduct_ranges(*refs):
            """SUMPRODUCT of ranges as written in the formula, without building arrays."""
            shape = None
            lists = []
            for t, r1, c1, r2, c2 in refs:
                if shape is None:
                    shape = (r2 - r1, c2 - c1)
                elif (r2 - r1, c2 - c1) != shape:
                    return rt.E_VALUE
                if (r2 - r1 + 1) * (c2 - c1 + 1) > _BIG_RANGE:  # clipped ranges: as arrays
                    return rt.sumproduct(*(value_range(*ref) for ref in refs))
                lists.append(values_list(t, r1, c1, r2, c2, True))
            return rt.sum_of_products(lists)

        def spill(k):
            found = spills.get(k)
            return found if found is not None else (0, 1, 1, 0, 0)  # no cells

        def wait(k, ref):
            waiting.setdefault(k, []).append(ref)
            return False

        def waited(k):
            refs = waiting.get(k)
            if not refs:
                return ()
            return tuple(d for ref in refs for d in range_deps(*ref))

        draws = self.draws

        def dynamic(name):
            draws[0] += 1
            raise SavedValueOnly(f"function {name} (a reference known only at run time) "
                                 "without a cached value")

        def rand():
            draws[0] += 1
            return random.random()

        def randbetween(bottom=0.0, top=0.0):
            draws[0] += 1
            lo, hi = rt.number(bottom), rt.number(top)
            if type(lo) is rt.XlError:
                return lo
            if type(hi) is rt.XlError:
                return hi
            lo, hi = math.ceil(lo), math.floor(hi)
            return rt.E_NUM if lo > hi else float(random.randint(lo, hi))

        def randarray(rows=1.0, cols=1.0, low=0.0, high=1.0, whole=False):
            """Excel's RANDARRAY (an omitted argument arrives as 0: one row, one column,
            up to 1). Its size is checked before anything is allocated."""
            draws[0] += 1
            numbers = [rt.E_VALUE if type(x) is np.ndarray else rt.number(x) for x in (rows, cols, low, high, whole)]
            for x in numbers:
                if type(x) is rt.XlError:
                    return x
            rows, cols, low, high, whole = numbers
            high = high if high != 0.0 else 1.0
            if not all(-math.inf < x < math.inf for x in numbers):  # int(inf) would raise
                return rt.E_NUM
            if rows < 0 or cols < 0 or low > high:
                return rt.E_VALUE
            n_rows, n_cols = int(rows) or 1, int(cols) or 1
            rt.too_large(n_rows, n_cols, "RANDARRAY")
            draw = np.random.random((n_rows, n_cols))
            with np.errstate(all="ignore"):  # bounds near the largest double overflow: #NUM!
                if whole:
                    low, high = math.ceil(low), math.floor(high)
                    if low > high:
                        return rt.E_VALUE
                    values = np.minimum(np.floor(low + (high - low + 1.0) * draw), high)
                else:
                    values = low + (high - low) * draw
            values = values.astype(object)
            values[~np.isfinite(values.astype(float))] = rt.E_NUM
            return rt.from_xl(values)

        def now():
            draws[0] += 1
            return (_dt.datetime.now() - _EXCEL_EPOCH).total_seconds() / 86400.0

        def today():
            return float(math.floor(now()))  # now() counts the draw

        return {
            "V": V, "PENDING": PENDING, "g": get, "FORMULA_KEYS": self.formula_keys,
            "E_NUM": rt.E_NUM, "E_NA": rt.E_NA, "E_REF": rt.E_REF, "XlError": rt.XlError, "ndarray": np.ndarray,
            "EMPTY": EMPTY, "_add": rt.add, "_sub": rt.sub, "_mul": rt.mul, "_div": rt.div,
            "_pow": rt.power, "_concat": rt.concat, "_eq": rt.eq, "_ne": rt.ne, "_lt": rt.lt,
            "_gt": rt.gt, "_le": rt.le, "_ge": rt.ge, "_neg": rt.neg, "_percent": rt.percent,
            "_call": rt.call, "_cell_array": rt.cell_array, "_xl": rt.to_xl,
            "_first": rt.first_of, "_final": final, "_range": value_range,
            "_intersect": intersect, "_rpending": range_pending, "_rdeps": range_deps,
            "_ordered": ordered, "_checked_key": checked_key, "_sqrt": math.sqrt,
            "_exp": math.exp, "_log": math.log, "_rand": rand,
            "_randbetween": randbetween, "_randarray": randarray, "_now": now,
            "_today": today, "_dynamic": dynamic, "_values": values_list,
            "FALLBACK": rt.FALLBACK, "_agg_SUM": once(rt.agg_SUM), "_agg_SUMSQ": once(rt.agg_SUMSQ),
            "_agg_COUNT": once(rt.agg_COUNT), "_agg_AVERAGE": once(rt.agg_AVERAGE),
            "_agg_MAX": once(rt.agg_MAX), "_agg_MIN": once(rt.agg_MIN),
            "_agg_by_excel_rules": by_rules_once,
            "_array_result": array_result, "_spill": spill, "SPILLS": spills, "_wait": wait, "_waited": waited,
            "_offset": rt.offset, "_flat": rt.flat, "_mmult": rt.mmult, "_sumproduct": rt.sumproduct,
            "_transpose": rt.transpose, "_log10": math.log10, "_sumproduct_ranges": sumproduct_ranges,
        }

    # --- the calculation -------------------------------------------------------------------
    def run(self, progress) -> Calculation:
        book, V = self.book, self.V
        for s, sheet in enumerate(book.sheets):
            base = s << SHEET_SHIFT
            for (r, c), value in sheet.constants.items():
                V[base | (r << ROW_SHIFT) | c] = rt.to_internal(value)
            # (one int per cell compared, not a tuple: max(formulas) took 15 ms at 300k cells)
            max_row = max(max(map(_first, sheet.constants), default=0), max(map(_first, sheet.formulas), default=0))
            max_col = max(max(map(_second, sheet.constants), default=0), max(map(_second, sheet.formulas), default=0))
            for (r, c), ref in sheet.array_refs.items():
                r1, c1, r2, c2 = range_bounds(ref)
                if (r1, c1) != (r, c):
                    raise UnsupportedFormula(qualified(sheet.name, r, c),
                                             f"an array formula whose range {ref} does not start at its cell")
                self.array_ranges[base | (r << ROW_SHIFT) | c] = (
                    r2 - r1 + 1, c2 - c1 + 1, (r, c) in sheet.dynamic_arrays)
                if (r, c) in sheet.dynamic_arrays:
                    self.spills[base | (r << ROW_SHIFT) | c] = (s, r1, c1, r2, c2)
                max_row, max_col = max(max_row, r2), max(max_col, c2)
            self.max_row.append(max_row)
            self.max_col.append(max_col)

        ns = self._namespace()
        structured = StructuredRefs(book.tables) if book.tables else None
        compiler = Compiler(book, self.sheet_index, ns, self.formula_keys, structured, self.spills)
        keys: list[int] = []  # formula cells to compute, in sheet/row order
        runs: list = []  # their shapes' run functions
        constant: list[int] = []  # formula cells that read no cell
        formula_count = sum(len(sheet.formulas) for sheet in book.sheets)
        for s, sheet in enumerate(book.sheets):
            tick = None
            if progress is not None:   # every 16,384 formulas within a sheet, and at its end
                so_far = len(keys)
                tick = lambda n, so_far=so_far: progress(so_far + n, formula_count, "compiling")  # noqa: E731
            self._setup_sheet(s, sheet, compiler, structured, keys, runs, constant, tick)
            if progress is not None:
                progress(len(keys), formula_count, "compiling")
        self.formula_keys.source = keys
        self.formula_count = total = len(keys)
        V.update(zip(keys, repeat(PENDING)))  # (no intermediate dict: a third faster)

        deferred = []  # (key, run) of the cells whose inputs were not ready in sheet order
        step = max(1, -(-total // 100))  # at most 100 progress calls, plus a last one
        defer = deferred.append
        k = None
        try:
            for start in range(0, total, step):
                # the common case: rows chain downwards, so inputs are ready in sheet order
                for k, run in zip(keys[start:start + step], runs[start:start + step]):
                    if not run(k):
                        defer((k, run))
                if progress is not None:
                    progress(min(start + step, total) - len(deferred), total, "computing")
            if deferred:
                # the cells computed so far, in sheet order: a few deferred are cut out of the
                # keys (each found by bisection); where most were (step rows reading their
                # row's end), the keys not left pending are picked in one C-level pass
                if len(deferred) * 8 < total:
                    order = _without(keys, [key for key, _ in deferred])
                else:
                    order = list(compress(keys, map(is_not, map(V.__getitem__, keys), repeat(PENDING))))
                k = self._settle(deferred, order, progress, total, step)
            else:
                order = keys
        except rt.RuntimeUnsupported as exc:
            raise UnsupportedFormula(self.label(getattr(exc, "key", k)), exc.what) from None
        if progress is not None and (not keys or deferred):
            progress(len(order), total, "computing")

        # what only the calculation needed goes before the results are gathered (peak memory)
        if order is not keys:
            keys.clear()
        runs.clear()
        self.run_of.clear()
        self.formula_keys.source = ()
        self.formula_keys.keys = None
        results = list(map(V.__getitem__, order))
        V.clear()
        codes = np.fromiter(order, dtype=np.int64, count=len(order))
        order.clear()
        if rt.XlError in set(map(type, results)):
            for i, v in enumerate(results):
                if type(v) is rt.XlError:
                    results[i] = rt.to_public(v)
        names = self.names
        return Calculation(book, None, None, _public(names, self.volatile), _public(names, self.saved),
                           _public(names, constant), coded=CellCodes(names, codes, results))

    def _settle(self, deferred, order, progress, total, step):
        """Compute the cells whose inputs came later in sheet order (a chain running upwards,
        a total at the top, a row whose first cells sum up its last), appending them to `order`.

        Each is tried in sheet order; one that is not ready waits for the last of its pending
        inputs in sheet order and is tried again once that input is computed, so every cell
        is tried about once per input it waited for. Cells still waiting at the end depend
        on a loop: a depth-first walk from the first of them finds it.

        A cell found not ready a second time keeps the list of its inputs pending then, in
        sheet order: pending cells only ever get computed, so once the one it waits for is
        computed, the last of that list still pending is the next it waits for, found
        without running the cell or listing its inputs again (on titanic's nnet sheet 1,424
        cells each wait in turn for ten weights computed last-first); it runs when none is
        left. A cell whose OFFSET found a range at run time is not listed: its inputs may
        grow when it runs.
        """
        V = self.V
        get = V.get
        append = order.append
        waiting: dict = {}  # pending cell -> [(key, run) of the cells waiting for it]
        release = waiting.pop
        inputs_of: dict = {}  # cell found not ready twice -> its inputs pending then, ascending
        found_at_run_time = self.waiting
        label = self.label

        def wait(k, run, last):
            if last < 0:
                raise RuntimeError(f"engine bug: {label(k)} not ready, with no input pending")
            if last in waiting:
                waiting[last].append((k, run))
            else:
                waiting[last] = [(k, run)]

        def last_pending(k, run):
            last = -1
            for d in run.deps(k):
                if d > last and get(d) is PENDING:
                    last = d
            return last

        k = None
        try:
            for n, (k, run) in enumerate(deferred, start=1):
                if run(k):
                    append(k)
                    stack = release(k, None)
                else:
                    wait(k, run, last_pending(k, run))
                    stack = None
                while stack:  # the cells that waited for those just computed: tried again
                    k, run = stack.pop()
                    inputs = inputs_of.get(k)
                    if inputs is not None:
                        while get(inputs[-1]) is not PENDING:
                            inputs.pop()
                            if not inputs:
                                break
                        else:
                            wait(k, run, inputs[-1])
                            continue
                        del inputs_of[k]
                    if run(k):
                        append(k)
                        waiters = release(k, None)
                        if waiters is not None:
                            stack += waiters
                    elif k in found_at_run_time:
                        wait(k, run, last_pending(k, run))
                    else:
                        deps = run.deps(k)
                        inputs = sorted(compress(deps, map(is_, map(get, deps), repeat(PENDING))))
                        inputs_of[k] = inputs
                        wait(k, run, inputs[-1] if inputs else -1)
                if progress is not None and not n % step:
                    progress(len(order), total, "computing")
        except rt.RuntimeUnsupported as exc:
            exc.key = k
            raise
        if waiting:  # a loop: name it as a walk from the first cell depending on it finds it
            self.run_of = {key: run for cells in waiting.values() for key, run in cells}
            waiting.clear()
            for k in sorted(self.run_of):
                if V[k] is PENDING:
                    self._walk(k, order)
        return k

    def _drew(self, k, saved_value):
        """Cell k ran a volatile function: it is volatile, and keeps the file's saved value
        when there is one (`saved_value` MISSING: it keeps this run's draw)."""
        self.volatile.append(k)
        self.volatile_keys.add(k)
        if saved_value is not MISSING:
            self.V[k] = rt.to_internal(saved_value)
            self.saved.append(k)

    def _volatile_run(self, run, saved_value):
        """run() for a cell whose formula can call a volatile function: the cell is volatile
        if one ran (not in a branch not taken)."""
        draws, drew = self.draws, self._drew

        def run_volatile(k):
            before = draws[0]
            try:
                if not run(k):
                    return False
            except SavedValueOnly:
                if saved_value is MISSING:
                    raise
            if draws[0] != before:
                drew(k, saved_value)
            return True
        run_volatile.deps = run.deps
        return run_volatile

    def _volatile_member_run(self, run, anchor_key, saved_value):
        """run() for a cell of a volatile array formula's range: volatile when its anchor
        drew, and then it keeps the file's saved value as the anchor does."""
        volatile_keys, drew = self.volatile_keys, self._drew

        def run_member(k):
            if not run(k):
                return False
            if anchor_key in volatile_keys:
                drew(k, saved_value)
            return True
        run_member.deps = run.deps
        return run_member

    def _setup_sheet(self, s, sheet, compiler, structured, keys, runs, constant, tick=None):
        """Compile the sheet's shapes (in row order) and register its cells."""
        base = s << SHEET_SHIFT
        formulas = sheet.formulas
        members = sheet.array_members() if sheet.array_refs else {}
        if members:  # a built Book lists only anchors; a read one lists the whole range
            formulas = dict(formulas)
            for member, anchor in members.items():
                formulas.setdefault(member, formulas.get(anchor, ""))
        items = formulas.items()
        previous = (0, 0)
        for cell in formulas:
            if cell <= previous:  # (keyed by the cell alone: int-led tuples compare twice as fast)
                items = sorted(formulas.items(), key=_first)
                break
            previous = cell
        arrays = sheet.array_refs
        cached = sheet.cached
        shapes: dict = {}
        # column -> (render(row), lowest row, highest row, shape, is_array, joined) of the last shape seen there
        last_in_col: dict = {}
        # column -> (d, pieces or render, lowest row, highest row, run) of that shape when its
        # cells need nothing more than its run function (not volatile, reading cells, no
        # array): its text at row r is str(r + d).join(pieces), or render(r) where d is None
        plain_in_col: dict = {}
        add_key, add_run = keys.append, runs.append
        member_runs: dict = {}  # anchor -> the run function its range's other cells share
        volatile_anchors: set = set()

        def register(k, r, c, text):
            """Any cell but the common one (a plain shape seen just above in its column)."""
            if members and (r, c) in members:
                anchor = members[(r, c)]
                run = member_runs.get(anchor)
                if run is None:
                    run = member_runs[anchor] = self._member_run(s, anchor)
                if anchor in volatile_anchors:  # volatile if its anchor drew
                    anchor_key = base | (anchor[0] << ROW_SHIFT) | anchor[1]
                    run = self._volatile_member_run(run, anchor_key, cached.get((r, c), MISSING))
                add_run(run)
                return
            hint = last_in_col.get(c)
            if hint is not None and hint[1] <= r <= hint[2] and hint[0](r) == text and (
                    hint[4] is ((r, c) in arrays if arrays else False)):
                shape = hint[3]
            else:
                if structured is not None and "[" in text:  # table references: as A1 first
                    shape, hint = self._shape_for(s, sheet, r, c, structured.rewrite(text, r, c, sheet.name),
                                                  compiler, shapes, text, structured.row_bounds(text, r, c, sheet.name))
                else:
                    shape, hint = self._shape_for(s, sheet, r, c, text, compiler, shapes)
                plain_in_col.pop(c, None)
                if hint is None:
                    last_in_col.pop(c, None)
                else:
                    last_in_col[c] = hint
                    if not shape.volatile and shape.reads_cells and not hint[4]:
                        joined = hint[5]
                        plain_in_col[c] = ((None, hint[0]) if joined is None else (joined[1], joined[0])) + (
                            hint[1], hint[2], shape.run)
            if shape.volatile and (r, c) in arrays:
                volatile_anchors.add((r, c))
            if shape.volatile:
                add_run(self._volatile_run(shape.run, cached.get((r, c), MISSING)))
            else:
                add_run(shape.run)
                if not shape.reads_cells:
                    constant.append(k)

        plain = plain_in_col.get
        special = bool(members or arrays)  # cells that a column's plain shape may not cover
        cells = iter(items)
        row = -1
        row_text = before = ""  # str(row), str(row - 1): made once per row, not once per cell
        row_base = 0
        for done in range(0, len(formulas), _TICK_CELLS):
            if done and tick is not None:
                tick(done)
            for (r, c), text in islice(cells, _TICK_CELLS):
                if r != row:
                    before = row_text if r == row + 1 else str(r - 1)
                    row, row_text, row_base = r, str(r), base | (r << ROW_SHIFT)
                add_key(row_base | c)
                # the common case: the plain shape of the cell above, rendered at this row
                hint = plain(c)
                if hint is not None and hint[2] <= r <= hint[3]:
                    d = hint[0]
                    if d == 0:
                        same = row_text.join(hint[1]) == text
                    elif d == -1:
                        same = before.join(hint[1]) == text
                    elif d is None:
                        same = hint[1](r) == text
                    else:
                        same = str(r + d).join(hint[1]) == text
                    if same and not (special and ((r, c) in arrays or (r, c) in members)):
                        add_run(hint[4])
                        continue
                register(row_base | c, r, c, text)

    def _member_run(self, s, anchor):
        """The run function of the cells an array formula fills besides its anchor.

        A legacy (Ctrl+Shift+Enter) range repeats a one-row or one-column result and shows
        #N/A where the result is smaller; a spilled range is empty past the result.
        """
        V, arrays = self.V, self.arrays
        anchor_key = (s << SHEET_SHIFT) | (anchor[0] << ROW_SHIFT) | anchor[1]
        rows, cols, dynamic = self.array_ranges[anchor_key]
        r0, c0 = anchor
        from_xl, E_NA = rt.from_xl, rt.E_NA

        def run(k):
            if V[anchor_key] is PENDING:
                return False
            i, j = ((k >> ROW_SHIFT) & ROW_MASK) - r0, (k & COL_MASK) - c0
            result = arrays.get(anchor_key)
            if result is None:  # one value: a legacy range repeats it, a spill is one cell
                V[k] = None if dynamic else V[anchor_key]
                return True
            height, width = result.shape
            if dynamic:
                if i < height and j < width:
                    value = from_xl(result[i, j])
                    V[k] = 0.0 if value is None else value
                else:
                    V[k] = None  # past the spill: an empty cell
                return True
            if height == 1:
                i = 0
            if width == 1:
                j = 0
            if i < height and j < width:
                value = from_xl(result[i, j])
                V[k] = 0.0 if value is None else value
            else:
                V[k] = E_NA
            return True

        run.deps = lambda k: (anchor_key,)
        return run

    @staticmethod
    def _shape_for(s, sheet, r, c, text, compiler, shapes, shown=None, rows=None):
        """(the compiled shape of the formula at (r, c), compiling it on first sight, and
        the hint recognising the next cells of its column: (render(row), lowest row,
        highest row, shape, is_array, (pieces, d) or None: Template.column_joined), or None).

        `shown` is the file's text when `text` is its rewriting with table references as
        A1; the next cells of the column are then recognised by the file's text, within
        `rows` (where [#This Row] keeps meaning the same relative row).
        """
        is_array = (r, c) in sheet.array_refs
        parts = REF_RE.split(text)  # one pass for the shape key, the compiler and the template
        key, nrefs = shape_key(text, r, c, parts)
        entry = shapes.get((key, is_array))
        if entry is None:
            shape, parsed_refs = compiler.compile(s, text, r, c, is_array, lambda: qualified(sheet.name, r, c),
                                                  shown if shown != text else None, parts)
            if parsed_refs != nrefs:  # shape key and parser disagree: this cell stands alone
                return shape, None
            entry = shapes[(key, is_array)] = (Template(text, r, c, parts), shape)
        template, shape = entry
        if shown is not None:
            template = Template(shown, r, c)
            renderer = template.column_renderer(c)
            if renderer is not None:
                renderer = (renderer[0], max(renderer[1], rows[0]), min(renderer[2], rows[1]))
        else:
            renderer = template.column_renderer(c)
        if renderer is None:
            return shape, None
        return shape, renderer + (shape, is_array, template.column_joined(c))

    def _walk(self, root, order):
        """Compute root after its pending inputs, depth first with an explicit stack."""
        get, run_of, tick = self.V.get, self.run_of, self.tick
        stack = [root]
        on_stack = {root}
        pending_inputs = [iter(run_of[root].deps(root))]
        push, push_inputs, mark = stack.append, pending_inputs.append, on_stack.add
        while stack:
            for d in pending_inputs[-1]:
                if get(d) is PENDING:
                    if d in on_stack:
                        loop = stack[stack.index(d):] + [d]
                        raise CircularReference([self.label(x) for x in loop])
                    push(d)
                    mark(d)
                    push_inputs(iter(run_of[d].deps(d)))
                    break
            else:
                k = stack[-1]
                try:
                    ready = run_of[k](k)
                except rt.RuntimeUnsupported as exc:
                    exc.key = k
                    raise
                if not ready:
                    # it found a range it reads only now (OFFSET's target): walk that too
                    more = [d for d in run_of[k].deps(k) if get(d) is PENDING]
                    if not more:
                        raise RuntimeError(f"engine bug: {self.label(k)} not ready after its inputs")
                    pending_inputs[-1] = iter(more)
                    continue
                stack.pop()
                pending_inputs.pop()
                on_stack.discard(k)
                order.append(k)
                if tick is not None and not len(order) & 0xFFF:
                    tick()
