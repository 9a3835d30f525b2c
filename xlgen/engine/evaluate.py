"""calculate(book): every formula cell of a Book, in dependency order, without recursion.

Cells are grouped by shape (refs.shape_key, with refs.Template to recognise the next
cell of a column cheaply) and each shape is compiled once (compiler.py). Values live in
one dict keyed by k = sheet<<36 | row<<15 | col. Cells are visited in sheet/row order;
a cell whose inputs are ready is computed at once (the common case: rows chain
downwards), otherwise an explicit-stack depth-first walk computes its inputs first and
reports a loop as a CircularReference.
"""

from __future__ import annotations

import datetime as _dt
import gc
import math
import random

import numpy as np

from ..errors import CircularReference, UnsupportedFormula
from . import runtime as rt
from .book import Book
from .compiler import COL_MASK, ROW_MASK, ROW_SHIFT, SHEET_SHIFT, Compiler
from .refs import MAX_COL, MAX_ROW, Template, qualified, shape_key

_BIG_RANGE = 1 << 16  # ranges with more cells than this are clipped to the used area
_MEMO_CELLS = 1 << 10  # ranges of at least this many cells are gathered once per calculation
_MAX_ARRAY_CELLS = 1 << 24  # a range passed whole to a function: 16M cells of objects is ~1 GiB
_EXCEL_EPOCH = _dt.datetime(1899, 12, 30)


class Calculation:
    """The result of calculate(): values of every formula cell, and how they were reached."""

    def __init__(self, book: Book, values: dict, order: list, volatile: list):
        self.book = book
        self.values = values  # (sheet, row, col) -> float | str | bool | None | ExcelError
        self.order = order  # formula cells, dependencies first
        self.volatile = volatile  # cells with a volatile function

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

    progress, if given, is called as progress(done, total) at most about 100 times.
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


class _Engine:
    def __init__(self, book: Book):
        self.book = book
        self.names = [sheet.name for sheet in book.sheets]
        self.sheet_index = {}
        for i, sheet in enumerate(book.sheets):
            self.sheet_index.setdefault(sheet.name.lower(), i)
        self.V: dict = {-1: rt.E_REF}  # -1: where an out-of-sheet reference points
        self.P: set = set()  # formula cells not computed yet
        self.formula_keys: set = set()
        self.max_row = []
        self.max_col = []
        self.run_of: dict = {}

    def label(self, k: int) -> str:
        return qualified(self.names[k >> SHEET_SHIFT], (k >> ROW_SHIFT) & ROW_MASK, k & COL_MASK)

    # --- helpers the generated code calls ------------------------------------------------
    def _namespace(self) -> dict:
        V, P = self.V, self.P
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
        memo_arrays, memo_lists, memo_keys, first_pending = {}, {}, {}, {}

        def value_range(t, r1, c1, r2, c2):
            r2, c2 = clip(t, r1, c1, r2, c2)
            if (r2 - r1 + 1) * (c2 - c1 + 1) > _MAX_ARRAY_CELLS:
                raise rt.RuntimeUnsupported(f"an array of {(r2 - r1 + 1) * (c2 - c1 + 1):,} cells "
                                            f"(more than {_MAX_ARRAY_CELLS:,} in use)")
            big = (r2 - r1 + 1) * (c2 - c1 + 1) >= _MEMO_CELLS
            if big and (t, r1, c1, r2, c2) in memo_arrays:
                return memo_arrays[(t, r1, c1, r2, c2)].copy()  # formulas' functions may write into it
            base = t << SHEET_SHIFT
            cols = range(c1, c2 + 1)
            rows = [[get(base | (r << ROW_SHIFT) | c, EMPTY) for c in cols]
                    for r in range(r1, r2 + 1)]
            array = np.array(rows, dtype=object)
            if big:
                memo_arrays[(t, r1, c1, r2, c2)] = array.copy()
            return array

        def values_list(t, r1, c1, r2, c2):
            """A range's values, flat, in the engine's form (None for empty)."""
            r2, c2 = clip(t, r1, c1, r2, c2)
            big = (r2 - r1 + 1) * (c2 - c1 + 1) >= _MEMO_CELLS
            if big and (t, r1, c1, r2, c2) in memo_lists:
                return memo_lists[(t, r1, c1, r2, c2)]  # the native aggregates only read it
            base = t << SHEET_SHIFT
            if (r2 - r1 + 1) * (c2 - c1 + 1) > len(V):  # sparse: the cells that hold values
                values = [V[key] for key in sorted(inside(V, t, r1, c1, r2, c2))]
            elif c1 == c2:
                values = [get(base | (r << ROW_SHIFT) | c1) for r in range(r1, r2 + 1)]
            else:
                cols = range(c1, c2 + 1)
                values = [get(base | (r << ROW_SHIFT) | c) for r in range(r1, r2 + 1) for c in cols]
            if big:
                memo_lists[(t, r1, c1, r2, c2)] = values
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

        def range_formula_keys(t, r1, c1, r2, c2):
            """Formula cells inside a range (only the used area of the sheet can hold any)."""
            r2, c2 = min(r2, max_row[t]), min(c2, max_col[t])
            base = t << SHEET_SHIFT
            formula_keys = self.formula_keys
            if (r2 - r1 + 1) * (c2 - c1 + 1) > len(formula_keys):  # sparse: test the formula cells
                return sorted(inside(formula_keys, t, r1, c1, r2, c2))
            return [key for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)
                    if (key := base | (r << ROW_SHIFT) | c) in formula_keys]

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

        def big_range_keys(t, r1, c1, r2, c2):
            keys = memo_keys.get((t, r1, c1, r2, c2))
            if keys is None:
                keys = memo_keys[(t, r1, c1, r2, c2)] = tuple(range_formula_keys(t, r1, c1, r2, c2))
            return keys

        def range_pending(t, r1, c1, r2, c2):
            if not P:
                return False
            if (min(r2, max_row[t]) - r1 + 1) * (min(c2, max_col[t]) - c1 + 1) >= _MEMO_CELLS:
                # P only shrinks: the cells before the first pending one stay computed
                keys = big_range_keys(t, r1, c1, r2, c2)
                first = first_pending.get((t, r1, c1, r2, c2), 0)
                while first < len(keys) and keys[first] not in P:
                    first += 1
                first_pending[(t, r1, c1, r2, c2)] = first
                return first < len(keys)
            r2, c2 = min(r2, max_row[t]), min(c2, max_col[t])
            base = t << SHEET_SHIFT
            for r in range(r1, r2 + 1):
                row_base = base | (r << ROW_SHIFT)
                for c in range(c1, c2 + 1):
                    if row_base | c in P:
                        return True
            return False

        def range_deps(t, r1, c1, r2, c2):
            if (min(r2, max_row[t]) - r1 + 1) * (min(c2, max_col[t]) - c1 + 1) >= _MEMO_CELLS:
                return big_range_keys(t, r1, c1, r2, c2)
            return tuple(range_formula_keys(t, r1, c1, r2, c2))

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

        def dynamic(name):
            raise rt.RuntimeUnsupported(f"function {name} (a reference known only at run time) "
                                        "without a cached value")

        def randbetween(bottom=0.0, top=0.0):
            lo, hi = rt.number(bottom), rt.number(top)
            if type(lo) is rt.XlError:
                return lo
            if type(hi) is rt.XlError:
                return hi
            lo, hi = math.ceil(lo), math.floor(hi)
            return rt.E_NUM if lo > hi else float(random.randint(lo, hi))

        def randarray(rows=1.0, cols=1.0, low=0.0, high=1.0, whole=False):
            n_rows, n_cols = int(rt.number(rows) or 1), int(rt.number(cols) or 1)
            low = rt.number(low)
            high = rt.number(high) if high != 0.0 else 1.0
            if whole:
                values = np.random.randint(math.ceil(low), math.floor(high) + 1, (n_rows, n_cols))
            else:
                values = low + (high - low) * np.random.random((n_rows, n_cols))
            return rt.from_xl(values.astype(float).astype(object))

        def now():
            return (_dt.datetime.now() - _EXCEL_EPOCH).total_seconds() / 86400.0

        def today():
            return float(math.floor(now()))

        return {
            "V": V, "P": P, "g": get, "FORMULA_KEYS": self.formula_keys,
            "E_NUM": rt.E_NUM, "E_NA": rt.E_NA, "XlError": rt.XlError, "ndarray": np.ndarray,
            "EMPTY": EMPTY, "_add": rt.add, "_sub": rt.sub, "_mul": rt.mul, "_div": rt.div,
            "_pow": rt.power, "_concat": rt.concat, "_eq": rt.eq, "_ne": rt.ne, "_lt": rt.lt,
            "_gt": rt.gt, "_le": rt.le, "_ge": rt.ge, "_neg": rt.neg, "_percent": rt.percent,
            "_call": rt.call, "_cell_array": rt.cell_array, "_xl": rt.to_xl,
            "_first": rt.first_of, "_final": final, "_range": value_range,
            "_intersect": intersect, "_rpending": range_pending, "_rdeps": range_deps,
            "_ordered": ordered, "_checked_key": checked_key, "_sqrt": math.sqrt,
            "_exp": math.exp, "_log": math.log, "_rand": random.random,
            "_randbetween": randbetween, "_randarray": randarray, "_now": now,
            "_today": today, "_dynamic": dynamic, "_values": values_list,
            "FALLBACK": rt.FALLBACK, "_agg_SUM": once(rt.agg_SUM), "_agg_SUMSQ": once(rt.agg_SUMSQ),
            "_agg_COUNT": once(rt.agg_COUNT), "_agg_AVERAGE": once(rt.agg_AVERAGE),
            "_agg_MAX": once(rt.agg_MAX), "_agg_MIN": once(rt.agg_MIN),
        }

    # --- the calculation -------------------------------------------------------------------
    def run(self, progress) -> Calculation:
        book, V, P = self.book, self.V, self.P
        for s, sheet in enumerate(book.sheets):
            base = s << SHEET_SHIFT
            for (r, c), value in sheet.constants.items():
                V[base | (r << ROW_SHIFT) | c] = rt.to_internal(value)
            rows = [r for r, _ in sheet.constants] + [r for r, _ in sheet.formulas]
            cols = [c for _, c in sheet.constants] + [c for _, c in sheet.formulas]
            self.max_row.append(max(rows, default=0))
            self.max_col.append(max(cols, default=0))

        ns = self._namespace()
        compiler = Compiler(book, self.sheet_index, ns, self.formula_keys)
        keys: list[int] = []  # formula cells to compute, in sheet/row order
        runs: list = []  # their shapes' run functions
        prefilled: list[int] = []  # volatile cells that keep the file's cached value
        volatile: list = []
        for s, sheet in enumerate(book.sheets):
            self._setup_sheet(s, sheet, compiler, keys, runs, prefilled, volatile)
        self.formula_keys.update(keys)
        self.formula_keys.update(prefilled)
        P.update(keys)
        self.run_of = run_of = dict(zip(keys, runs))

        total = len(keys) + len(prefilled)
        order = list(prefilled)
        deferred = []
        step = max(1, -(-total // 100))  # at most 100 progress calls, plus a last one
        discard, append, defer = P.discard, order.append, deferred.append
        k = None
        try:
            for start in range(0, len(keys), step):
                # the common case: rows chain downwards, so inputs are ready in sheet order
                for k, run in zip(keys[start:start + step], runs[start:start + step]):
                    if run(k):
                        discard(k)
                        append(k)
                    else:
                        defer(k)
                if progress is not None:
                    progress(total - len(P), total)
            # cells whose inputs come later in sheet order (a chain running upwards, a
            # total at the top): one pass backwards settles the usual cases cheaply...
            still = []
            for k in reversed(deferred):
                if run_of[k](k):
                    discard(k)
                    append(k)
                else:
                    still.append(k)
            # ...and a depth-first walk settles the rest, or finds a loop
            for k in reversed(still):
                if k in P:
                    self._walk(k, order)
        except rt.RuntimeUnsupported as exc:
            raise UnsupportedFormula(self.label(getattr(exc, "key", k)), exc.what) from None
        if progress is not None and (not keys or deferred):
            progress(total - len(P), total)

        names = self.names
        values = {}
        cells = [(names[k >> SHEET_SHIFT], (k >> ROW_SHIFT) & ROW_MASK, k & COL_MASK) for k in order]
        results = [V[k] for k in order]
        for i, v in enumerate(results):
            if type(v) is rt.XlError:
                results[i] = rt.to_public(v)
        values = dict(zip(cells, results))
        return Calculation(book, values, cells, volatile)

    def _setup_sheet(self, s, sheet, compiler, keys, runs, prefilled, volatile):
        """Compile the sheet's shapes (in row order) and register its cells."""
        V = self.V
        base = s << SHEET_SHIFT
        formulas = sheet.formulas
        items = formulas.items()
        previous = (0, 0)
        for cell in formulas:
            if cell <= previous:
                items = sorted(formulas.items())
                break
            previous = cell
        arrays = sheet.array_refs
        cached = sheet.cached
        shapes: dict = {}
        # column -> (render(row), lowest row, highest row, shape) of the last shape seen there
        last_in_col: dict = {}
        overlap = not sheet.constants.keys().isdisjoint(formulas.keys())
        add_key, add_run = keys.append, runs.append
        for (r, c), text in items:
            k = base | (r << ROW_SHIFT) | c
            hint = last_in_col.get(c)
            if hint is not None and hint[1] <= r <= hint[2] and hint[0](r) == text and (
                    not arrays or (r, c) not in arrays):
                shape = hint[3]
            else:
                shape = self._shape_for(s, sheet, r, c, text, compiler, shapes, last_in_col)
            if overlap:
                V.pop(k, None)
            if shape.volatile:
                volatile.append((sheet.name, r, c))
                if (r, c) in cached:
                    V[k] = rt.to_internal(cached[(r, c)])
                    prefilled.append(k)
                    continue
                if shape.dynamic:
                    raise UnsupportedFormula(qualified(sheet.name, r, c),
                                             f"{shape.dynamic} without a cached value")
            add_key(k)
            add_run(shape.run)

    @staticmethod
    def _shape_for(s, sheet, r, c, text, compiler, shapes, last_in_col):
        """The compiled shape of the formula at (r, c), compiling it on first sight."""
        is_array = (r, c) in sheet.array_refs
        key, nrefs = shape_key(text, r, c)
        entry = shapes.get((key, is_array))
        if entry is None:
            shape, parsed_refs = compiler.compile(s, text, r, c, is_array, qualified(sheet.name, r, c))
            if parsed_refs != nrefs:  # shape key and parser disagree: this cell stands alone
                last_in_col.pop(c, None)
                return shape
            entry = shapes[(key, is_array)] = (Template(text, r, c), shape)
        template, shape = entry
        renderer = None if is_array else template.column_renderer(c)
        if renderer is None:
            last_in_col.pop(c, None)
        else:
            last_in_col[c] = renderer + (shape,)
        return shape

    def _walk(self, root, order):
        """Compute root after its pending inputs, depth first with an explicit stack."""
        P, run_of = self.P, self.run_of
        stack = [root]
        on_stack = {root}
        pending_inputs = [iter(run_of[root].deps(root))]
        push, push_inputs, mark = stack.append, pending_inputs.append, on_stack.add
        while stack:
            for d in pending_inputs[-1]:
                if d in P:
                    if d in on_stack:
                        loop = stack[stack.index(d):] + [d]
                        raise CircularReference([self.label(x) for x in loop])
                    push(d)
                    mark(d)
                    push_inputs(iter(run_of[d].deps(d)))
                    break
            else:
                k = stack.pop()
                pending_inputs.pop()
                on_stack.discard(k)
                try:
                    ready = run_of[k](k)
                except rt.RuntimeUnsupported as exc:
                    exc.key = k
                    raise
                if not ready:
                    raise RuntimeError(f"engine bug: {self.label(k)} not ready after its inputs")
                P.discard(k)
                order.append(k)
