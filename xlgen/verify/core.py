"""Compare what the formulas computed with what the reference says, and report.

Layout checkers (one module per kind of sheet) recognise their sheets by headers, read
the inputs, run the reference and return the value each formula cell should hold. This
module does the comparing: the same tolerance for every checker, mismatches ordered by
the engine's calculation order so the first one named is the cell where things went
wrong, not one of its consequences.
"""

from __future__ import annotations

import math
import operator
import re
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import countOf, is_, itemgetter

import numpy as np

from xlgen.engine.book import ExcelError
from xlgen.formula import cell_name

# Relative tolerance for a cell to agree with the reference. Engine and reference do
# the same IEEE double operations, mostly in the same order; measured differences on
# the example workbooks are at most a few units in the 15th digit (see README), so 1e-9
# leaves six orders of margin while any real formula change (a 0.01 made 0.02, a
# factor 1.5, a wrong cell) moves values by far more.
RELATIVE_TOLERANCE = 1e-9
# Below this magnitude two numbers agree whatever their ratio: differences of nearly
# equal numbers (y - y_pred near convergence) leave rounding noise of about 1e-13.
ABSOLUTE_TOLERANCE = 1e-11
# One unit in the last place of 1.0: sequential sheets (xlgen.verify.stepwise) give each
# cell an absolute bound of a few of these times the size of its operands instead.
ULP = 2.0 ** -52

# LibreOffice hands its values back with 15 significant digits (xlgen.engine.libreoffice):
# every number a row reads is off by up to half a unit in the 15th digit, 5e-15 of its
# size, and a row combines a few; bounds in ulps widen by this much of the operands' size.
FIFTEEN_DIGITS = 5e-14

NUMBER = (int, float, np.floating, np.integer)


def as_expected(value):
    """Reference numbers that are not finite are what Excel shows as #NUM!."""
    if isinstance(value, NUMBER) and not isinstance(value, bool):
        value = float(value)
        return value if math.isfinite(value) else ExcelError("#NUM!")
    return value


def agrees(expected, actual, scale: float = 0.0, any_error: bool = False, bound: float = math.nan) -> bool:
    """`scale` is the size of the numbers the cell was computed from, when a checker
    knows that cancellation can leave rounding noise larger than the result itself;
    `bound`, when given, is the largest difference rounding explains (absolute), and
    replaces the relative rule."""
    expected = as_expected(expected)
    if isinstance(expected, ExcelError):
        return isinstance(actual, ExcelError) and (any_error or expected.code == actual.code)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual == expected
    if isinstance(expected, float):
        if not isinstance(actual, NUMBER):
            return False
        actual = float(actual)
        if not math.isfinite(actual):
            return False
        if not math.isnan(bound):
            return abs(actual - expected) <= bound
        return abs(actual - expected) <= RELATIVE_TOLERANCE * max(abs(actual), abs(expected), scale) + ABSOLUTE_TOLERANCE
    return expected == actual


def cell_codes(cells) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of (row, col) cells as integer arrays."""
    count = len(cells)
    pairs = np.fromiter(chain.from_iterable(cells), dtype=np.int64, count=2 * count).reshape(count, 2)
    return pairs[:, 0], pairs[:, 1]


_KEPT: dict = {}   # (id(sheet), what) -> (weak reference to it, its formula and constant counts, what was made)
_VERIFYING: list[bool] = [False]


@contextmanager
def one_verification():
    """What is kept of a sheet (`kept_for_sheet`) is made and used only within one
    verification, during which no sheet changes (a notebook user may edit a Book between
    two), and dropped at its start and end."""
    _KEPT.clear()
    _VERIFYING[0] = True
    try:
        yield
    finally:
        _VERIFYING[0] = False
        _KEPT.clear()


def kept_for_sheet(sheet, what: str, make):
    """make(sheet), kept for the verification under way (the checkers and the comparison
    ask for the same facts of a sheet); made afresh outside one."""
    key = (id(sheet), what)
    kept = _KEPT.get(key)
    counts = (len(sheet.formulas), len(getattr(sheet, "constants", ())))
    if kept is not None and kept[0]() is sheet and kept[1] == counts:
        return kept[2]
    made = make(sheet)
    if _VERIFYING[0]:
        try:
            _KEPT[key] = (weakref.ref(sheet), counts, made)
        except TypeError:   # a sheet that cannot be referenced weakly: not kept
            pass
    return made


def formula_cells(sheet) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a sheet's formula cells in its dict's order, as arrays (never to be
    written). Kept for the verification under way: its checkers and the comparison each ask."""
    return kept_for_sheet(sheet, "formula cells", _formula_cells)


def _formula_cells(sheet) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = cell_codes(sheet.formulas)
    if len(rows) and max(int(rows.max()), int(cols.max())) < 2 ** 31 and min(int(rows.min()), int(cols.min())) >= 0:
        rows, cols = rows.astype(np.int32), cols.astype(np.int32)   # half the memory
    return rows, cols


class _Block:
    """Expectations of many cells at once (a column), as arrays: no dict per cell.
    `values`: a float array when the checker gave one (no Python float per cell), else a list."""
    __slots__ = ("rows", "cols", "values", "scales", "bounds")

    def __init__(self, rows, cols, values, scales, bounds):
        self.rows, self.cols, self.values, self.scales, self.bounds = rows, cols, values, scales, bounds


@dataclass
class SheetCheck:
    """What one layout checker expects of one sheet.

    `expected`, `scale` and `bound` are dicts by (row, col); checkers that expect whole
    columns at once (`expect_many`, `expect_column`) are kept as arrays until someone
    asks for the dicts, so `compare` matches them with the computed values without a dict
    per cell. Scale 0 and bound NaN mean none."""
    sheet: str
    layout: str
    inputs: dict = field(default_factory=dict)     # input name -> "sheet!A1 = value", for the report
    volatile: list = field(default_factory=list)   # cells taken as inputs because they are volatile
    notes: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)    # (row, col) -> why it is not checked here
    # in the order expected: dicts (row, col) -> (value, scale, bound) of single cells, and
    # _Blocks; None once `expected` was asked for (then the three dicts below hold everything)
    _parts: list | None = field(default_factory=list, repr=False)
    _expected: dict = field(default_factory=dict, repr=False)
    _scale: dict = field(default_factory=dict, repr=False)
    _bound: dict = field(default_factory=dict, repr=False)
    _distinct: bool | None = field(default=None, repr=False)
    _blocks: list | None = field(default=None, repr=False, compare=False)   # _parts as _Blocks, once made

    # --- filling -----------------------------------------------------------------------
    def expect(self, row: int, col: int, value, scale: float = 0.0, bound: float | None = None) -> None:
        cell = (row, col)
        scale = scale or 0.0
        bound = math.nan if bound is None else float(bound)
        if self._parts is None:
            self._expected[cell], self._scale[cell], self._bound[cell] = value, scale, bound
            return
        if not self._parts or not isinstance(self._parts[-1], dict):
            self._parts.append({})
        self._parts[-1][cell] = (value, scale, bound)
        self._distinct = self._blocks = None

    def expect_many(self, cells: list, values, scales=None, bounds=None) -> None:
        """Many cells at once: `values` (and `scales`, `bounds`) line up with `cells`."""
        rows, cols = cell_codes(cells)
        self._add(rows, cols, values, scales, bounds)

    def expect_column(self, rows, col: int, values, scales=None, bounds=None) -> None:
        """Cells (row, col) for each of `rows`: `values` (and `scales`, `bounds`) line up with `rows`."""
        rows = np.asarray(rows, dtype=np.int64)
        self._add(rows, np.full(len(rows), col, dtype=np.int64), values, scales, bounds)

    def _add(self, rows, cols, values, scales, bounds) -> None:
        if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.ndim == 1:
            values = values.copy()   # (as tolist() did: the checker's array may change later)
        else:
            values = values.tolist() if hasattr(values, "tolist") else list(values)
        count = min(len(rows), len(values))   # as zip() pairs them
        rows, cols, values = rows[:count], cols[:count], values[:count]
        scales = _column(scales, count, 0.0)
        bounds = _column(bounds, count, math.nan)
        if self._parts is None:
            cells = list(zip(rows.tolist(), cols.tolist()))
            self._expected.update(zip(cells, _plain(values)))
            self._scale.update(zip(cells, scales.tolist()))
            self._bound.update(zip(cells, bounds.tolist()))
            return
        self._parts.append(_Block(rows, cols, values, scales, bounds))
        self._distinct = self._blocks = None

    # --- the dicts (built on demand) ----------------------------------------------------
    def _materialise(self) -> None:
        if self._parts is None:
            return
        for part in self._parts:
            if isinstance(part, dict):
                for cell, (value, scale, bound) in part.items():
                    self._expected[cell], self._scale[cell], self._bound[cell] = value, scale, bound
            else:
                cells = list(zip(part.rows.tolist(), part.cols.tolist()))
                self._expected.update(zip(cells, _plain(part.values)))
                self._scale.update(zip(cells, part.scales.tolist()))
                self._bound.update(zip(cells, part.bounds.tolist()))
        self._parts = None

    @property
    def expected(self) -> dict:
        """(row, col) -> expected value."""
        self._materialise()
        return self._expected

    @property
    def scale(self) -> dict:
        """(row, col) -> magnitude of its operands (0: none given)."""
        self._materialise()
        return self._scale

    @property
    def bound(self) -> dict:
        """(row, col) -> largest difference rounding explains (NaN: none given)."""
        self._materialise()
        return self._bound

    # --- reading without the dicts ------------------------------------------------------
    def lookup(self, cell) -> tuple | None:
        """(expected value, scale, bound) of `cell`, or None if it is not expected."""
        if self._parts is None:
            if cell not in self._expected:
                return None
            return self._expected[cell], self._scale.get(cell, 0.0), self._bound.get(cell, math.nan)
        row, col = cell
        for part in reversed(self._parts):   # a cell expected twice holds its last value
            if isinstance(part, dict):
                if cell in part:
                    return part[cell]
                continue
            found = np.flatnonzero((part.rows == row) & (part.cols == col))
            if len(found):
                i = int(found[-1])
                value = part.values[i]
                return (float(value) if isinstance(part.values, np.ndarray) else value), float(part.scales[i]), \
                    float(part.bounds[i])
        return None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, list | np.ndarray, np.ndarray, np.ndarray]:
        """Every expected cell, in order: rows, cols, values (a float array when every
        one is a plain float, else a list), scales, bounds."""
        if self._parts is not None and self._is_distinct():
            blocks = self._part_blocks()
            if not blocks:
                empty = np.zeros(0, dtype=np.int64)
                return empty, empty, [], np.zeros(0), np.zeros(0)
            if len(blocks) == 1:   # its own arrays (read, never written)
                block = blocks[0]
                return block.rows, block.cols, block.values, block.scales, block.bounds
            return (np.concatenate([block.rows for block in blocks]), np.concatenate([block.cols for block in blocks]),
                    _joined([block.values for block in blocks]),
                    np.concatenate([block.scales for block in blocks]), np.concatenate([block.bounds for block in blocks]))
        cells = list(self.expected)
        rows, cols = cell_codes(cells)
        return (rows, cols, list(self._expected.values()), _floats(self._scale, cells, 0.0),
                _floats(self._bound, cells, math.nan))

    def _part_blocks(self) -> list:
        """The parts as _Blocks (a dict of single cells made one), made once while no cell is added."""
        if self._blocks is None:
            self._blocks = [part if isinstance(part, _Block) else _single_block(part) for part in self._parts]
        return self._blocks

    def _is_distinct(self) -> bool:
        """Is no cell expected twice? (Else the dicts, where the last value counts, decide.)"""
        if self._distinct is None:
            blocks = self._part_blocks()
            if not blocks:
                self._distinct = True
                return True
            rows = np.concatenate([block.rows for block in blocks])
            cols = np.concatenate([block.cols for block in blocks])
            grid = CellGrid.around([(rows, cols)])
            if grid is not None:   # a sheet's block of cells: each marked once on a grid of them
                seen = np.zeros(grid.size, dtype=bool)
                seen[grid.codes(rows, cols)] = True
                self._distinct = int(np.count_nonzero(seen)) == len(rows)
                return self._distinct
            order = np.lexsort((cols, rows))   # (np.unique hashes: far slower at 300k cells)
            rows, cols = rows[order], cols[order]
            self._distinct = not bool(((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])).any())
        return self._distinct

    def count(self) -> int:
        """How many cells are expected."""
        if self._parts is not None and self._is_distinct():
            return sum(len(part) if isinstance(part, dict) else len(part.values) for part in self._parts)
        return len(self.expected)


def _column(given, count: int, default: float) -> np.ndarray:
    """`given` (scales or bounds) as `count` floats; `default` where none is given."""
    out = np.full(count, default, dtype=np.float64)
    if given is not None:
        given = np.asarray(given, dtype=np.float64).reshape(-1)[:count]
        out[:len(given)] = given
    return out


def _plain(values):
    """Values as Python objects (floats, not NumPy's)."""
    return values.tolist() if isinstance(values, np.ndarray) else values


def _joined(parts: list):
    """Blocks' values back to back: one float array if each is one, else one list."""
    if all(isinstance(part, np.ndarray) for part in parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    if len(parts) == 1:
        return parts[0]
    return [value for part in parts for value in _plain(part)]


class CellGrid:
    """Cells as one integer each, (row - low row) * width + (column - low column), on the
    smallest rectangle holding them: an index into arrays the size of that rectangle, in
    place of sorting the cells."""
    __slots__ = ("row", "col", "width", "size")

    def __init__(self, row: int, col: int, width: int, size: int):
        self.row, self.col, self.width, self.size = row, col, width, size

    @staticmethod
    def around(cells: list) -> "CellGrid | None":
        """The grid of the (rows, cols) arrays in `cells`; None where that rectangle is far
        larger than the cells (a few cells far apart) or holds none."""
        cells = [(rows, cols) for rows, cols in cells if len(rows)]
        if not cells:
            return None
        row_low = min(int(rows.min()) for rows, _ in cells)
        row_high = max(int(rows.max()) for rows, _ in cells)
        col_low = min(int(cols.min()) for _, cols in cells)
        col_high = max(int(cols.max()) for _, cols in cells)
        width = col_high - col_low + 1
        size = (row_high - row_low + 1) * width
        if size > 4 * sum(len(rows) for rows, _ in cells) + 2 ** 16:
            return None
        return CellGrid(row_low, col_low, width, size)

    def codes(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        codes = rows.astype(np.int64)   # (in place: few arrays the size of a sheet at once)
        codes -= self.row
        codes *= self.width
        codes += cols
        codes -= self.col
        return codes


_FLOAT_TYPES = frozenset({float, np.float64})


def _single_block(part: dict) -> _Block:
    rows, cols = cell_codes(list(part))
    entries = list(part.values())
    values = [entry[0] for entry in entries]
    if values and set(map(type, values)) <= _FLOAT_TYPES:   # as the columns beside it: one float array
        values = np.array(values, dtype=np.float64)
    return _Block(rows, cols, values,
                  np.array([entry[1] for entry in entries], dtype=np.float64).reshape(len(entries)),
                  np.array([entry[2] for entry in entries], dtype=np.float64).reshape(len(entries)))


@dataclass
class Mismatch:
    cell: str
    formula: str
    expected: object
    actual: object

    def as_json(self) -> dict:
        return {"cell": self.cell, "formula": "=" + self.formula,
                "expected": json_value(self.expected), "actual": json_value(self.actual)}


@dataclass
class Report:
    path: str
    engine: str = "xlgen"
    checks: list = field(default_factory=list)         # SheetCheck
    mismatches: list = field(default_factory=list)     # Mismatch, in calculation order
    formula_cells: int = 0
    unchecked: list = field(default_factory=list)      # "sheet!A1" of formula cells no checker covered
    stale: list = field(default_factory=list)          # Mismatch of cached vs recomputed values
    cached_missing: int = 0
    skipped: list = field(default_factory=list)        # "sheet: reason"
    # the honest account (xlgen.verify.report.account): what was not computed or not judged
    volatile: list = field(default_factory=list)       # "sheet!A1" where a volatile function ran: inputs, not checked
    volatile_saved: list = field(default_factory=list)  # those of them taken at the file's saved value
    constant_inputs: list = field(default_factory=list)  # "sheet!A1" of formulas reading no cell (=FALSE())
    skipped_cells: int = 0                             # formula cells of the skipped sheets
    stale_reasons: list = field(default_factory=list)  # StaleGroup: the stale saves by kind, with a reason
    notes: list = field(default_factory=list)
    lint: list = field(default_factory=list)           # "cell: problem" from xlgen.lint
    largest_difference: float = 0.0                    # relative, over the cells that agree
    largest_bound_used: float = 0.0                    # difference / bound, over bounded cells that agree

    @property
    def cells_checked(self) -> int:
        return sum(check.count() for check in self.checks)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.lint and self.cells_checked > 0

    @property
    def not_checked(self) -> dict:
        """Formula cells no one judged, by why (constants that read no cell are inputs, not here)."""
        return {"no_known_layout": len(self.unchecked), "engine_skipped": self.skipped_cells,
                "volatile": len(self.volatile)}

    @property
    def warnings(self) -> list[str]:
        """What keeps an OK from vouching for the whole file; `--strict` fails on any."""
        found = [f"{count:,} formula cells not checked ({why.replace('_', ' ')})"
                 for why, count in self.not_checked.items() if count]
        if self.stale:
            found.append(f"{len(self.stale):,} saved values disagree with what the formulas compute")
        return found

    @property
    def strict_ok(self) -> bool:
        return self.ok and not self.warnings

    def as_json(self) -> dict:
        return {
            "file": self.path,
            "engine": self.engine,
            "ok": self.ok,
            "cells_checked": self.cells_checked,
            "formula_cells": self.formula_cells,
            "first_divergence": self.mismatches[0].cell if self.mismatches else None,
            "mismatches": [m.as_json() for m in self.mismatches],
            "sheets": {check.sheet: {"layout": check.layout, "cells_checked": check.count(),
                                     "inputs": check.inputs, "volatile_inputs": check.volatile}
                       for check in self.checks},
            "unchecked_formula_cells": self.unchecked,
            "not_checked": self.not_checked,
            "volatile_cells": self.volatile,
            "volatile_cells_taken_at_saved_values": self.volatile_saved,
            "constant_inputs": self.constant_inputs,
            "warnings": self.warnings,
            "strict_ok": self.strict_ok,
            "stale_cached_values": [m.as_json() for m in self.stale],
            "stale_reasons": [group.as_json() for group in self.stale_reasons],
            "formula_cells_without_cached_value": self.cached_missing,
            "skipped": self.skipped,
            "lint": self.lint,
            "tolerance": {"relative": RELATIVE_TOLERANCE, "absolute": ABSOLUTE_TOLERANCE},
            "largest_relative_difference": self.largest_difference,
            "largest_fraction_of_bound": self.largest_bound_used,
            "notes": self.notes,
        }


def json_value(value):
    if isinstance(value, ExcelError):
        return value.code
    if isinstance(value, NUMBER) and not isinstance(value, bool):
        value = float(value)
        return value if math.isfinite(value) else "#NUM!"
    return value


# element types judged all at once; anything else (bool, text, errors, None) goes through
# `agrees` one by one (NumPy would read the text "1.5" as the number 1.5)
_PLAIN_NUMBERS = frozenset({float, int, np.float64})
_ABSENT = object()   # no computed value: the cell is a constant


def as_floats(items: list | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items as a float array and a mask of those that were plain numbers."""
    if isinstance(items, np.ndarray) and items.dtype == np.float64:
        return items, np.ones(len(items), dtype=bool)
    if countOf(map(type, items), float) == len(items):   # the usual case: Python floats alone
        return np.fromiter(items, dtype=np.float64, count=len(items)), np.ones(len(items), dtype=bool)
    if set(map(type, items)) <= _PLAIN_NUMBERS:
        try:
            return np.array(items, dtype=np.float64), np.ones(len(items), dtype=bool)
        except OverflowError:  # an int past a double's range
            pass
    # numbers among text, errors, booleans: picked by their type (a look-up per cell, no Python loop)
    types = list(map(type, items))
    is_number = {kind: issubclass(kind, NUMBER) and not issubclass(kind, bool) for kind in set(types)}
    flags = list(map(is_number.__getitem__, types))
    numeric = np.array(flags, dtype=bool)
    array = np.full(len(items), np.nan)
    try:
        array[numeric] = np.fromiter(compress(items, flags), dtype=np.float64, count=int(numeric.sum()))
        return array, numeric
    except OverflowError:   # an int past a double's range: one by one
        array[:] = np.nan
    numeric = np.zeros(len(items), dtype=bool)
    for index, item in enumerate(items):
        if isinstance(item, NUMBER) and not isinstance(item, bool):
            try:
                array[index] = item
            except OverflowError:
                continue
            numeric[index] = True
    return array, numeric


def disagreeing(expected: list, actual: list, scale: np.ndarray, any_error: bool, report: Report,
                bound: np.ndarray | None = None, actual_floats: tuple | None = None) -> list[int]:
    """Indices where `actual` does not agree with `expected`; `bound` (NaN: none) as in `agrees`.

    Plain numbers are judged all at once; everything else (errors, text, booleans, and
    numbers that fail the quick test) goes through `agrees`, so the rules stay in one place.
    """
    e, e_numeric = as_floats(expected)
    a, a_numeric = as_floats(actual) if actual_floats is None else actual_floats   # (as_floats of `actual`)
    with np.errstate(invalid="ignore", over="ignore"):   # (in place: few arrays the size of a sheet at once)
        wide = np.abs(a)   # the size the tolerance uses: the larger number, or the scale
        np.maximum(wide, np.abs(e), out=wide)
        np.maximum(wide, scale, out=wide)
        difference = np.subtract(a, e)
        np.abs(difference, out=difference)
        limit = np.multiply(wide, RELATIVE_TOLERANCE)   # the relative rule
        limit += ABSOLUTE_TOLERANCE
        bounded = np.zeros(len(expected), dtype=bool) if bound is None else ~np.isnan(bound)
        if bound is not None:
            np.copyto(limit, bound, where=bounded)
        accepted = difference <= limit
        del limit
        accepted &= np.isfinite(e)
        accepted &= np.isfinite(a)
        accepted &= e_numeric
        accepted &= a_numeric
        used = accepted & bounded & (difference > 0)
        if used.any():
            report.largest_bound_used = max(report.largest_bound_used, float((difference[used] / bound[used]).max()))
        # relative to the size the tolerance uses, over the cells where the relative rule
        # (not the absolute floor) decides
        judged = accepted & ~bounded & (wide > ABSOLUTE_TOLERANCE / RELATIVE_TOLERANCE)
        if judged.any():
            relative = difference[judged] / wide[judged]
            report.largest_difference = max(report.largest_difference, float(relative.max()))
    return [int(i) for i in np.flatnonzero(~accepted)
            if not agrees(expected[i], actual[i], float(scale[i]), any_error,
                          math.nan if bound is None else float(bound[i]))]


def _floats(mapping: dict, cells: list, default: float) -> np.ndarray:
    """mapping.get(cell, default) for each cell, as a float array."""
    if not mapping:
        return np.full(len(cells), default, dtype=np.float64)
    if _same_keys(mapping, cells):   # filled alongside (expect_many): no lookups
        return np.fromiter(mapping.values(), dtype=np.float64, count=len(cells))
    return np.fromiter(map(mapping.get, cells, repeat(default)), dtype=np.float64, count=len(cells))


def _same_keys(mapping: dict, keys) -> bool:
    """Are the mapping's keys `keys` (a list, or another dict's keys), in that order?
    (Cheap when they are the same objects.)"""
    return len(mapping) == len(keys) and (all(map(is_, mapping, keys)) or list(mapping) == list(keys))


class ComputedValues:
    """The computed values by (sheet, row, col), found a column at a time.

    A lookup per cell hashes a fresh (sheet, row, col) tuple and misses the cache: 0.2 s
    for 300,000 cells, and verify looks most cells up twice (the checkers' reads and the
    comparison). Here the cells are sorted integer codes and a column's cells are found
    with NumPy (`searchsorted`): the engine's own codes (`of` a Calculation that has them:
    no tuple and no dict is made), or codes read once from a dict of values (another
    engine's). The values are the calculation's own objects. Single cells (`get`, `in`,
    `[]`) are found in the codes too, until they are so many that the dict is cheaper."""

    def __init__(self, values: dict):
        self._values = values
        self._calculation = None   # a Calculation (its dict made if asked) and its engine CellCodes
        self._coded = None
        self._sorted = None   # (sheet -> id, sorted codes, their values, coding); False: no arrays
        self._positions = None   # where each sorted code stood in the values' order
        self._floats = None   # as_floats of the sorted values: (floats, which are numbers), made once
        self._single = 0   # single cells looked up in the codes, and how many before the dict pays
        self._single_limit = 0

    @classmethod
    def of(cls, calculation) -> "ComputedValues":
        """A Calculation's values, found by its engine codes when it has them."""
        coded = calculation.cell_codes()
        if coded is None or len(set(coded.names)) != len(coded.names):
            return cls(calculation.values)
        found = cls(None)
        found._calculation, found._coded = calculation, coded
        # a cell found in the codes costs about ten cells of the dict made: past n/16 of them, it is made
        found._single_limit = 256 + len(coded) // 16
        return found

    @property
    def values(self) -> dict:
        """The values as a dict by (sheet, row, col) (made from the codes if need be)."""
        if self._values is None:
            self._values = self._calculation.values
        return self._values

    def _arrays(self):
        if self._sorted is None:
            self._sorted = False
            if self._coded is not None:
                coded = self._coded
                sheet_ids = {name: index for index, name in enumerate(coded.names)}
                self._sorted, self._positions = _sorted_codes(
                    sheet_ids, coded.codes, coded.values,
                    (coded.SHEET_SHIFT, coded.ROW_SHIFT, coded.ROW_MASK + 1, coded.COL_MASK + 1))
                return self._sorted
            values, count = self.values, len(self.values)
            sheet_ids = {name: index for index, name in enumerate(dict.fromkeys(map(itemgetter(0), values)))}
            try:   # a cell as one integer: sheet, row, column in bits 44-63, 20-43, 0-19
                codes = np.fromiter(map(sheet_ids.__getitem__, map(itemgetter(0), values)), dtype=np.int64, count=count)
                codes <<= 24
                for index, bits in ((1, 24), (2, 20)):
                    part = np.fromiter(map(itemgetter(index), values), dtype=np.int64, count=count)
                    if count and (part.min() < 0 or part.max() >= 2 ** bits):
                        return self._sorted
                    codes |= part
                    if index == 1:
                        codes <<= 20
                    del part
            except (TypeError, ValueError, OverflowError):   # cells not as the engine keys them
                return self._sorted
            self._sorted, self._positions = _sorted_codes(sheet_ids, codes, values.values(), (44, 20, 2 ** 24, 2 ** 20))
        return self._sorted

    def _float_items(self) -> tuple[np.ndarray, np.ndarray]:
        """as_floats of every value, in the sorted codes' order: each value read once, for
        the checkers' column reads and the comparison alike."""
        if self._floats is None:
            floats, numeric = as_floats(self._coded.values if self._coded is not None else list(self.values.values()))
            self._floats = floats[self._positions], numeric[self._positions]
        return self._floats

    def release(self) -> None:
        """Drop the arrays (they are built again if asked for)."""
        self._sorted = self._positions = self._floats = None

    def column(self, sheet: str, rows, cols) -> tuple[list, list]:
        """The values of the cells (sheet, rows[i], cols[i]) (`cols` may be one column),
        None where there is none, and the indices of those."""
        return self._column(sheet, rows, cols, False)[:2]

    def column_floats(self, sheet: str, rows, cols) -> tuple[list, list, tuple[np.ndarray, np.ndarray]]:
        """`column`, and as_floats of what it found (None where there is none), taken from
        the values read as floats once."""
        return self._column(sheet, rows, cols, True)

    def _column(self, sheet: str, rows, cols, floats: bool) -> tuple:
        rows = np.asarray(rows, dtype=np.int64)
        count = len(rows)
        arrays = self._arrays() if count > 64 or self._coded is not None else False
        cols = np.broadcast_to(np.asarray(cols, dtype=np.int64), (count,))
        if not arrays:
            found = list(map(self.values.get, [(sheet, row, col) for row, col in zip(rows.tolist(), cols.tolist())],
                             repeat(_MISSING)))
            missing = [index for index, value in enumerate(found) if value is _MISSING]
            for index in missing:
                found[index] = None
            return found, missing, (as_floats(found) if floats else None)
        sheet_ids, codes, items, (sheet_shift, row_shift, row_end, col_end) = arrays
        if sheet not in sheet_ids or not len(codes):
            return [None] * count, list(range(count)), (_no_numbers(count) if floats else None)
        wanted = (np.int64(sheet_ids[sheet]) << sheet_shift) | (rows << row_shift) | cols
        if count and (rows.min() < 0 or cols.min() < 0 or rows.max() >= row_end or cols.max() >= col_end):
            wanted[(rows < 0) | (cols < 0) | (rows >= row_end) | (cols >= col_end)] = -1   # no cell's code
        at = np.searchsorted(codes, wanted)
        at[at == len(codes)] = 0
        hit = codes[at] == wanted
        found = items[at]
        read = None
        if floats:
            every, numeric = self._float_items()
            read = every[at], numeric[at]
        if hit.all():
            return found.tolist(), [], read
        missing = np.flatnonzero(~hit)
        found[missing] = None
        if floats:   # as as_floats reads None
            read[0][missing], read[1][missing] = np.nan, False
        return found.tolist(), missing.tolist(), read

    def get(self, cell, default=None):
        """The value of cell (sheet, row, col), `default` where there is none."""
        if self._coded is None or self._single >= self._single_limit:
            return self.values.get(cell, default)
        try:
            sheet, row, col = cell
            row, col = operator.index(row), operator.index(col)
        except (TypeError, ValueError):   # no cell as the engine keys them: as the dict says
            return self.values.get(cell, default)
        self._single += 1
        sheet_ids, codes, items, (sheet_shift, row_shift, row_end, col_end) = self._arrays()
        sheet_id = sheet_ids.get(sheet)
        if sheet_id is None or not (0 <= row < row_end and 0 <= col < col_end):
            return default
        code = (sheet_id << sheet_shift) | (row << row_shift) | col
        at = int(np.searchsorted(codes, code))
        if at < len(codes) and codes[at] == code:
            return items[at]
        return default

    def __contains__(self, cell) -> bool:
        return self.get(cell, _MISSING) is not _MISSING

    def __getitem__(self, cell):
        found = self.get(cell, _MISSING)
        if found is _MISSING:
            raise KeyError(cell)
        return found

    def __len__(self) -> int:
        return len(self._coded) if self._coded is not None else len(self._values)

    def __iter__(self):
        return iter(self.values)


def _sorted_codes(sheet_ids: dict, codes: np.ndarray, values, coding: tuple) -> tuple:
    """ComputedValues' arrays: the codes sorted, the values in that order (an object array:
    a column's are gathered in one step, the objects themselves), and the coding (sheet
    shift, row shift, rows' and columns' end)."""
    positions = np.argsort(codes, kind="stable")
    items = np.fromiter(values, dtype=object, count=len(codes))[positions]
    return (sheet_ids, codes[positions], items, coding), positions


def _no_numbers(count: int) -> tuple[np.ndarray, np.ndarray]:
    """as_floats of `count` Nones."""
    return np.full(count, np.nan), np.zeros(count, dtype=bool)


_MISSING = object()


def compare(report: Report, book, values: dict, order: list, any_error: bool = False,
            ignore_sheets: set = frozenset(), volatile: set = frozenset(), check_stale: bool = True,
            fifteen_digits: bool = False, computed: ComputedValues | None = None) -> None:
    """Fill the report's mismatches (calculation order), unchecked cells and stale caches.

    `any_error`: an error where the reference has one agrees whatever its code (LibreOffice
    says #VALUE! where Excel says #NUM!); `ignore_sheets` were skipped on purpose;
    `check_stale` compares the saved values with the recomputed ones; `fifteen_digits`: the
    values were read back rounded to 15 significant digits (LibreOffice).

    Column-wise: each check's expectations come as arrays, its cells' computed values are
    looked up once (and reused for the saved values), and everything is judged with NumPy
    (`disagreeing`); the per-cell rules stay in `agrees`. `computed`: `values` as a
    ComputedValues, when the caller has one."""
    computed = computed if computed is not None else ComputedValues(values)
    found = []
    judged = {}   # sheet name -> per check: (rows, cols, computed values, which came from constants, scales)
    expected = bound = None
    for check in report.checks:
        sheet = book.sheet(check.sheet)
        name = check.sheet
        rows, cols, expected, scale, bound = check._arrays()
        actual, constants, floats = computed.column_floats(name, rows, cols)
        for index in constants:
            actual[index] = sheet.constants.get((int(rows[index]), int(cols[index])))
        if constants:   # the constants read as floats where the computed values' are
            constant_floats, constant_numeric = as_floats([actual[index] for index in constants])
            floats[0][constants], floats[1][constants] = constant_floats, constant_numeric
        if np.isnan(bound).all():   # no bound given: the relative rule for every cell
            bound = None
        if bound is not None and fifteen_digits:
            sizes = np.abs(expected if isinstance(expected, np.ndarray) else
                           np.array([value if isinstance(value, float) else 0.0 for value in expected]))
            bound = bound + FIFTEEN_DIGITS * np.nan_to_num(np.maximum(sizes, scale), nan=0.0, posinf=0.0)
        for index in disagreeing(expected, actual, scale, any_error, report, bound, floats):
            row, col = int(rows[index]), int(cols[index])
            found.append(((name, row, col), Mismatch(f"{name}!{cell_name(row, col)}", sheet.formulas.get((row, col), ""),
                                                     as_expected(expected[index]), actual[index])))
        judged.setdefault(name, []).append((rows, cols, actual, constants, scale, floats))
    del expected, bound
    computed.release()   # its arrays are not needed below
    if found:
        position = {cell: index for index, cell in enumerate(order)}
        places = _typed_places(book, [cell for cell, _ in found], position)
        end = len(position)
        found.sort(key=lambda item: (places.get(item[0], end) if item[0] not in position else position[item[0]],
                                     item[0][1], item[0][2]))
    report.mismatches = [mismatch for _, mismatch in found]
    volatile_of = {}   # sheet name -> its volatile cells
    for name, row, col in volatile:
        volatile_of.setdefault(name, set()).add((row, col))
    taken_as_inputs = None
    for sheet in book.sheets:
        if sheet.name in ignore_sheets:
            continue
        name, formulas, cached = sheet.name, sheet.formulas, sheet.cached
        report.formula_cells += len(formulas)
        cells = _Keys(formulas)   # (a list of a sheet's cells made only where one is named)
        where, actual, scales, floats = _checked_positions(formula_cells(sheet), judged.get(name, ()))
        unchecked = range(len(cells)) if where is None else np.flatnonzero(where < 0).tolist()
        if len(unchecked):
            if taken_as_inputs is None:
                taken_as_inputs = {cell for check in report.checks for cell in check.volatile}
                taken_as_inputs |= {f"{check.sheet}!{cell_name(*cell)}" for check in report.checks
                                    for cell in check.skipped}
            report.unchecked.extend(cell for cell in (f"{name}!{cell_name(*cells[index])}" for index in unchecked)
                                    if cell not in taken_as_inputs)
        aligned = _same_keys(cached, formulas)   # the reader saves them in the same order
        without_saved = 0 if aligned else len(formulas.keys() - cached.keys())
        report.cached_missing += without_saved
        if not check_stale:
            continue
        kept = None   # indices into cells of the formula cells with a saved value (None: all)
        if without_saved:
            kept = [index for index, cell in enumerate(cells) if cell in cached]
        if name in volatile_of:
            drawn = volatile_of[name]
            kept = [index for index in (range(len(cells)) if kept is None else kept) if cells[index] not in drawn]
        cached_cells = cells if kept is None else [cells[index] for index in kept]
        saved = list(cached.values()) if kept is None and aligned else list(map(cached.__getitem__, cached_cells))
        # the values computed for the checked cells were looked up above; the rest here
        if where is None:
            recomputed = list(map(values.get, [(name, row, col) for row, col in cached_cells]))
            recomputed_floats = None
            saved_scale = np.zeros(len(cached_cells))
        else:
            at = where if kept is None else where[kept]
            recomputed_floats = None
            if len(at) > 1 and at.min() >= 0:   # every one checked: read where they stand (no list)
                recomputed = _Gathered(actual, at)
                recomputed_floats = floats[0][at], floats[1][at]
            else:
                recomputed = [actual[index] if index >= 0 else _ABSENT for index in at.tolist()]
                for index in [index for index, value in enumerate(recomputed) if value is _ABSENT]:
                    row, col = cached_cells[index]
                    recomputed[index] = values.get((name, row, col))
            # a saved value is judged as the reference is: cells whose operands dwarf them
            # carry rounding noise of the operands' size, whichever engine saved them
            saved_scale = np.zeros(len(at))
            judged_here = at >= 0   # (a sheet whose checks judged no cell has no scales to index)
            saved_scale[judged_here] = scales[at[judged_here]]
        stale_report = Report(report.path)  # differences of saved values are not the reference's
        for index in disagreeing(saved, recomputed, saved_scale, any_error, stale_report, None, recomputed_floats):
            row, col = cached_cells[index]
            report.stale.append(Mismatch(f"{name}!{cell_name(row, col)}", formulas[(row, col)],
                                         recomputed[index], saved[index]))


def _typed_places(book, cells: list, position: dict) -> dict:
    """Where the disagreeing `cells` that hold no formula (a value typed over one) stand in
    the calculation order: just before the first disagreeing formula cell in their row or
    below in their sheet, or elsewhere that names them (in a sheet of steps, row by row,
    what is computed from a value lies in its row, a column to its left too, or below; the
    engine's order itself is only row by row where no typed value breaks a column), else
    just after the formula cell before them. Others are not placed."""
    places = {}
    for cell in cells:
        if cell in position:
            continue
        name, row, col = cell
        try:
            sheet = book.sheet(name)
        except KeyError:
            continue
        if (row, col) in sheet.formulas:
            continue
        # (a cell of another sheet that links to it, as the about sheet's numbers do, does
        # not wait for a constant: the engine may compute it first)
        letters, digits = _split_name(cell_name(row, col))
        link = re.compile(rf"(?<![A-Za-z0-9_.]){re.escape(name)}'?!\$?{letters}\$?{digits}(?![0-9])", re.IGNORECASE)
        after = [position[other] for other in cells
                 if other in position and (other[0] == name and other[1] >= row
                                           or other[0] != name and link.search(book.sheet(other[0]).formulas.get(
                                               (other[1], other[2]), "")))]
        if after:
            places[cell] = min(after) - 0.5
            continue
        rows, cols = formula_cells(sheet)
        before = (rows < row) | ((rows == row) & (cols < col))
        if before.any():
            rows, cols = rows[before], cols[before]
            last = int(np.lexsort((cols, rows))[-1])
            at = position.get((name, int(rows[last]), int(cols[last])))
            if at is not None:
                places[cell] = at + 0.5
    return places


def _split_name(name: str) -> tuple[str, str]:
    """'AB12' -> ('AB', '12')."""
    digits = name.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return name[:len(name) - len(digits)], digits


class _Keys:
    """A dict's keys, indexed as a list (made when first indexed)."""
    __slots__ = ("mapping", "keys")

    def __init__(self, mapping: dict):
        self.mapping, self.keys = mapping, None

    def __len__(self) -> int:
        return len(self.mapping)

    def __iter__(self):
        return iter(self.mapping if self.keys is None else self.keys)

    def __getitem__(self, index):
        if self.keys is None:
            self.keys = list(self.mapping)
        return self.keys[index]


class _Gathered:
    """values[at[i]] for each i, read on demand (a list of a sheet's values not built)."""
    __slots__ = ("values", "at")

    def __init__(self, values: list, at: np.ndarray):
        self.values, self.at = values, at

    def __len__(self) -> int:
        return len(self.at)

    def __getitem__(self, index):
        return self.values[self.at[index]]


def _checked_positions(cells: tuple[np.ndarray, np.ndarray], parts: list) -> tuple:
    """For each of a sheet's formula `cells` ((rows, cols)), where it stands among the cells its checks
    judged (-1: not checked; None: no check), with those cells' computed values (None where
    the cell is no computed one), scales, and the values as_floats reads them. A cell two
    checks judge takes the later one's."""
    if not parts:
        return None, [], np.zeros(0), None
    if len(parts) > 1:
        actual = [value for part in parts for value in part[2]]
    else:   # one check: its list as it is, unless constants are to be set aside
        actual = list(parts[0][2]) if len(parts[0][3]) else parts[0][2]
    offset = 0
    for part in parts:   # the cells looked up in the constants are not computed ones
        for index in part[3]:
            actual[offset + index] = None
        offset += len(part[2])
    scales = np.concatenate([part[4] for part in parts])
    floats = [np.concatenate([part[5][i] for part in parts]) if len(parts) > 1 or len(parts[0][3]) else parts[0][5][i]
              for i in range(2)]
    offset = 0
    for part in parts:   # as_floats reads None as no number
        if len(part[3]):
            constants = np.asarray(part[3], dtype=np.int64) + offset
            floats[0][constants], floats[1][constants] = np.nan, False
        offset += len(part[2])
    rows, cols = cells
    if not sum(len(part[0]) for part in parts) or not len(rows):
        return np.full(len(rows), -1, dtype=np.int64), actual, scales, floats
    if len(parts) == 1:   # one check (its cells distinct, as SheetCheck._arrays gives them): on a grid
        grid = CellGrid.around([cells, parts[0][:2]])
        if grid is not None:
            checked = grid.codes(parts[0][0], parts[0][1])
            position = np.full(grid.size, -1, dtype=np.int64)
            position[checked] = np.arange(len(checked))
            if (position[checked] == np.arange(len(checked))).all():   # (else a cell came twice: sorted below)
                del checked
                return position[grid.codes(rows, cols)], actual, scales, floats
    # a cell as one integer: row * width + column (from the smallest), one to one; (in
    # place: few arrays the size of a sheet at once)
    low = min(int(cols.min()), *(int(part[1].min()) for part in parts if len(part[1])))
    width = max(int(cols.max()), *(int(part[1].max()) for part in parts if len(part[1]))) - low + 1
    wanted = rows.astype(np.int64)
    wanted *= width
    wanted += cols
    wanted -= low
    del rows, cols
    codes = np.concatenate([part[0] * width + (part[1] - low) for part in parts])
    sorter = np.argsort(codes, kind="stable")
    codes = codes[sorter]
    at = np.searchsorted(codes, wanted, side="right")
    at -= 1   # the last of equal codes: the later check
    where = np.full(len(at), -1, dtype=np.int64)
    hit = at >= 0
    hit[hit] = codes[at[hit]] == wanted[hit]
    del codes, wanted
    where[hit] = sorter[at[hit]]
    return where, actual, scales, floats
