"""Checking a per-row model (each row starts from the state the previous row left) twice:
step by step from the workbook's own previous row, and as a whole run from the inputs.

Why both. SGD on these sheets can be chaotic: in the forum's collapse model a difference
in the last bit of one weight early in the run is amplified until, a few rows later, the
two runs share no digit. Comparing only the whole run would then fail a correct sheet
because the engine rounded once differently from NumPy; comparing only single steps
would miss a sheet whose numbers drift slowly away from the truth.

- Local: row i is recomputed by the reference's single-step function from the values
  the workbook itself holds in row i-1 (its new weights, momentum, ...). Engine and
  reference then do the same IEEE double operations on the same numbers, perhaps in
  another order, so a cell may differ from its local expectation by at most LOCAL_ULPS
  units in the last place of the size of the numbers it was computed from (its
  "magnitude": a finite-difference derivative subtracts two nearly equal losses, so its
  rounding is a few ulps of the losses, not of their difference), plus the change a
  nudge of that many ulps in the previous row's state makes (a flag at a threshold).
  More than that is a different formula, and fails at its own cell, whatever happened
  before it.
- Global: the reference also runs from the inputs alone. Where that run is stable, the
  workbook's row must agree with it too. How stable is measured, not assumed: the run is
  repeated with every state value nudged after every row by NOISE times the size of the
  numbers it was computed from (a few hundred ulps, far more than one engine's rounding
  differs from another's), and the spread of those runs is the bound: it grows with the
  run's sensitivity, so a long run whose rounding drifts (rmsprop over 3,000 rows) is
  not failed by a fixed band, while one that drifts more than its own sensitivity
  explains is. Where the nudged runs split between finite and overflowed, or differ
  beyond LOST (relative: chaos has eaten the digits), the run says nothing and only the
  local check applies.

When the local and global expectations of a cell agree (within both bounds; the global
one within its row's own rounding too: ulps of everything the cell was computed from since
the previous row, even where the local check takes some of those operands from the
workbook), the cell is checked against the local one; when they do not (the workbook's previous rows have
drifted from the run more than rounding explains), against the global one, so the cell
is reported.

Anything that is a sequence of rows carrying a state can use this: describe it as a
`RowModel` and ask a `Stepwise` for expected values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from operator import itemgetter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from xlgen.engine.book import ExcelError
from xlgen.verify.core import ULP, as_floats

NOISE = 1e-13
LOST = 1e-4
# How many units in the last place of its operands' size a cell may differ from the
# reference fed the same operands: engine and reference may order a row's few operations
# differently (a*x+b against b+a*x, x^2 against x*x), each rounding by half an ulp.
# Measured on every workbook xlgen builds, the largest is 2 (see README); 16 leaves room.
LOCAL_ULPS = 16
LOCAL_NOISE = LOCAL_ULPS * ULP
# sign patterns for the nudges: all up, alternating, pairs; state values in declared order
PATTERNS = ((1, 1, 1, 1), (1, -1, 1, -1), (-1, -1, 1, 1))


@dataclass
class RowModel:
    """A per-row model.

    initial: state name -> its value before the first row.
    carry:   state name -> the key of the row value that holds it after the row (the cell
             the next row reads: "new a" holds weight a, "mom a" its momentum, ...).
    row:     (state, row index) -> every value the row shows, by key.
    noisy:   the state names that are continuous numbers (nudged to measure sensitivity);
             counters and flags are left alone.
    magnitude: (state, values) -> key -> the size of the numbers each value was computed
             from, where rounding can leave noise larger than the value itself (keys not
             given: the value's own size).
    """
    initial: dict
    carry: dict
    row: Callable[[dict, int], dict]
    noisy: tuple = ()
    magnitude: Callable[[dict, dict], dict] | None = None
    key: tuple | None = None   # everything `row` depends on, when known: equal keys give equal runs
    # (state, values, workbook value of a key in the same row) -> (values, magnitudes)
    # recomputed from the workbook's own operands in the row (the losses a finite
    # difference subtracts, the derivative a step uses): the local check then bounds a
    # step by its own operands, not by the cancellation noise of what it was computed from
    refine: Callable | None = None

    def magnitudes(self, state: dict, values: dict) -> dict:
        if self.magnitude is None:
            return {}
        return {key: size for key, size in self.magnitude(state, values).items()
                if isinstance(size, (float, np.floating)) and math.isfinite(size)}


def number(value) -> float | str | bool | ExcelError:
    """A workbook value as a summary or a copy of it takes it: empty is 0, a number a float;
    text, TRUE/FALSE and errors stay what they are (what a formula does with them depends
    on the formula: `numeric`, `in_a_sum`)."""
    if value is None:
        return 0.0
    if isinstance(value, (str, bool, ExcelError)):
        return value
    return float(value)


# How a check reads a workbook cell as a float, mirroring the formula it stands for (the
# rules are Excel's; LibreOffice 25.2 and xlgen's engine agree except where noted):
# - `numeric`, a direct reference in arithmetic (the next row's `=C5+D5*A5` on the copy
#   `=N4` of a weight): a number is itself, TRUE/FALSE are 1/0, an empty cell 0, text that
#   spells a number ("3", " 2.5", "50%") that number, other text #VALUE! and an error
#   itself (both NaN here: no number comes of them).
# - `in_a_sum`, a cell in a range that SUM, SUMSQ or COUNT reads (an epoch's rmse
#   `=SQRT(SUM(F4:F32))`): only numbers count; TRUE/FALSE, text (even "3") and empty cells
#   are skipped (0 in a sum, not counted), an error makes the result one (NaN).
#   LibreOffice stores TRUE/FALSE as the numbers 1/0 and so sums them, where Excel skips
#   them; verify follows Excel.

def numeric(value) -> float:
    """A cell as a direct reference in arithmetic reads it (see above)."""
    if type(value) is float:
        return value
    if isinstance(value, str):
        return _text_as_number(value)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, ExcelError):
        return math.nan
    return number(value)


def _text_as_number(text: str) -> float:
    """Text in arithmetic, as the engine coerces it (Excel's rule): its number, else NaN."""
    from xlgen.engine.runtime import text_to_number   # (the engine's coercion; loaded by then)
    found = text_to_number(text)
    return found if type(found) is float else math.nan


def in_a_sum(value) -> float:
    """A cell as SUM over a range takes it (see above): numbers count, an error is NaN,
    anything else (TRUE/FALSE, text, empty) is skipped as 0. A run's values are floats,
    which pass unchanged."""
    if type(value) is float:
        return value
    if isinstance(value, ExcelError):
        return math.nan
    if value is None or isinstance(value, (bool, str)):
        return 0.0
    if isinstance(value, (int, np.integer, np.floating)):
        return float(value)
    return math.nan


def first_error(values):
    """The first error among `values` (what SUM over them gives), None if there is none."""
    return next((value for value in values if isinstance(value, ExcelError)), None)


def is_counted(value) -> bool:
    """Does COUNT over a range count this cell (see above)? Numbers only."""
    return type(value) is float or isinstance(value, (int, np.integer, np.floating)) and not isinstance(value, bool)


def nudge(state: dict, noisy: tuple, pattern: tuple, sizes: dict | None = None, noise: float = NOISE) -> dict:
    """`state` with each noisy value moved by `noise` times its size (or `sizes[name]`, the
    size of the numbers it was computed from, when larger), up or down by `pattern`."""
    out = dict(state)
    for k, name in enumerate(noisy):
        value = out[name]
        if isinstance(value, (float, np.floating)) and math.isfinite(value):
            size = max(abs(value), (sizes or {}).get(name, 0.0), 1e-6)
            out[name] = value + pattern[k % len(pattern)] * noise * size
    return out


def run(model: RowModel, count: int, pattern: tuple | None = None) -> list[dict]:
    """The whole run from `model.initial`; with a `pattern`, nudged after every row by
    NOISE times the size of what each state value was computed from."""
    state, rows = dict(model.initial), []
    for index in range(count):
        values = model.row(state, index)
        rows.append(values)
        after = {name: values[key] for name, key in model.carry.items()}
        if pattern is not None:
            magnitudes = model.magnitudes(state, values)
            sizes = {name: magnitudes[key] for name, key in model.carry.items() if key in magnitudes}
            after = nudge(after, model.noisy, pattern, sizes)
        state = after
    return rows


def _finite(value) -> bool:
    if type(value) in _FLOATS:   # the usual case, without the isinstance tests
        return math.isfinite(value)
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _is_number(value) -> bool:
    return type(value) in _FLOATS or \
        isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


_FLOATS = (float, np.float64)
_FLOAT_TYPES = frozenset(_FLOATS)


def spread(base, others: list) -> float | None:
    """How far `others` are from `base`: 0 for equal text; None when they do not even agree
    on being finite (or on being text)."""
    if type(base) in _FLOATS and all(map(_FLOAT_TYPES.__contains__, map(type, others))):   # the usual case
        isfinite = math.isfinite
        if not isfinite(base):
            return None if any(isfinite(other) for other in others) else 0.0
        # on Python floats: the same IEEE subtraction as np.float64's, without its scalar objects
        base, largest = float(base), 0.0
        for other in others:
            if not isfinite(other):
                return None
            difference = abs(float(other) - base)
            if difference > largest:
                largest = difference
        return largest
    if not _is_number(base):
        return 0.0 if all(other == base for other in others) else None
    if not all(_is_number(other) for other in others):
        return None
    return spread(float(base), [float(other) for other in others])


def local_spread(value, others: list) -> float | None:
    """`spread` of the row recomputed from nudged previous rows. Where a nudge overflowed
    the row and the plain one did not, the engine, doing the same operations on the
    workbook's own (un-nudged) values, does not overflow either: the finite ones count."""
    found = spread(value, others)
    if found is None and _finite(value):
        return spread(value, [other for other in others if _finite(other)])
    return found


def close(local, reference, extra: float) -> bool:
    """Does a local expectation agree with the whole run's, given `extra` (both bounds)?
    An error (the workbook's) and a run that has no finite number there agree, as two
    numbers that are not finite do."""
    if isinstance(local, ExcelError) and _is_number(reference) and not _finite(reference):
        return True
    if not _is_number(local) or not _is_number(reference):
        return local == reference
    if not _finite(local) or not _finite(reference):
        return not _finite(local) and not _finite(reference)
    local, reference = float(local), float(reference)
    return abs(local - reference) <= LOCAL_ULPS * ULP * max(abs(local), abs(reference)) + extra


def combine(local, local_scale: float, local_bound: float, run_values: list,
            row_noise: float = 0.0) -> tuple[object, float, float]:
    """(expected value, scale, bound; see verify.core.agrees) of one cell, from its local
    expectation and the whole run's values (the plain run first, then the nudged ones).

    `row_noise`: how far rounding inside the row itself can move the cell, from the
    previous row's state (ulps of everything it was computed from, as `Stepwise.noise`);
    where the local expectation is refined from the workbook's own operands in the row,
    its bound is far tighter than that, but the run computed those operands itself, and
    rounded them its own way: the run's value is only known within the row's noise."""
    reference, others = run_values[0], run_values[1:]
    run_spread = spread(reference, others)
    noise = max(local_bound, row_noise)
    if run_spread is None or close(local, reference, noise + run_spread) or _lost(reference, others, run_spread):
        return local, local_scale, local_bound
    size = abs(float(reference)) if _finite(reference) else 0.0
    return reference, 0.0, noise + run_spread + LOCAL_ULPS * ULP * size


def _lost(reference, others: list, run_spread: float) -> bool:
    """Have the nudged runs lost the plain run's digits (no longer near copies of it)?"""
    if not run_spread:
        return False
    size = max(abs(float(value)) for value in [reference, *others])
    return run_spread > LOST * size


def local_bound(value, magnitude: float, local_spread: float | None, ulps: float = LOCAL_ULPS) -> float:
    """The bound of a local expectation: `ulps` units in the last place of the size of its
    operands (or its own, if larger), plus how far the row recomputed from a previous row
    nudged by as many ulps moved; unbounded where that nudge overflowed the row or flipped
    a value between number and text."""
    if local_spread is None:
        return math.inf
    size = abs(float(value)) if _finite(value) else 0.0
    return ulps * ULP * max(size, magnitude) + local_spread


_RUNS: dict = {}   # RowModel.key, count -> runs: a book verified again (mutation_score) reuses them


def runs_from_inputs(model: RowModel, count: int) -> list:
    """The plain run and the nudged ones; they depend on the inputs alone."""
    key = None if model.key is None else (model.key, count)
    if key is not None and key in _RUNS:
        return _RUNS[key]
    runs = [run(model, count)] + [run(model, count, p) for p in PATTERNS]
    if key is not None:
        if len(_RUNS) >= 32:
            _RUNS.pop(next(iter(_RUNS)))
        _RUNS[key] = runs
    return runs


class WorkbookRows(Mapping):
    """Row i of the workbook as a mapping key -> value (read on demand)."""

    def __init__(self, read: Callable[[int, str], object], index: int, keys):
        self.read, self.index, self.keys_ = read, index, list(keys)

    def __getitem__(self, key):
        return number(self.read(self.index, key))

    def __iter__(self):
        return iter(self.keys_)

    def __len__(self):
        return len(self.keys_)


@dataclass
class Stepwise:
    """Expected values for `count` rows of a per-row model held in a workbook.

    read(i, key): the workbook's (computed) value of row i's cell `key`.
    """
    model: RowModel
    count: int
    read: Callable[[int, str], object]
    runs: list = field(init=False)
    local: list = field(init=False)
    local_scale: list = field(init=False)
    local_bound: list = field(init=False)
    # per row, key -> the row's own rounding noise (see `noise`), for the keys `refine` recomputed
    row_noise: list = field(init=False)

    def __post_init__(self):
        self.runs = runs_from_inputs(self.model, self.count)
        self.local, self.local_scale, self.local_bound, self.row_noise = [], [], [], []
        self.refined_errors = []   # per row: (the refined keys, the error they read in the row), or None
        for index in range(self.count):
            state = dict(self.model.initial) if index == 0 else self.workbook_state(index - 1)
            values = self.model.row(state, index)
            nudged_states = [nudge(state, self.model.noisy, p, noise=LOCAL_NOISE) for p in PATTERNS]
            nudged = [self.model.row(other, index) for other in nudged_states]
            magnitudes = self.model.magnitudes(state, values)
            noise = {}
            refined_error = None
            if self.model.refine is not None:
                given, read = self.given(index), []
                updates, sizes = self.model.refine(state, values, lambda key: read.append(key) or given(key))
                refined_error = next((code for code in map(self._error_in_row(index), dict.fromkeys(read)) if code),
                                     None)
                refined_error = (set(updates), refined_error) if refined_error else None
                # before refining: the bound of the row computed from the previous row alone,
                # the noise the run's own value of each refined cell carries
                noise = {key: local_bound(values[key], magnitudes.get(key, 0.0),
                                          local_spread(values[key], [other[key] for other in nudged]))
                         for key in updates}
                values = {**values, **updates}
                magnitudes = {**magnitudes, **sizes}
                nudged = [{**other, **self.model.refine(other_state, other, given)[0]}
                          for other_state, other in zip(nudged_states, nudged)]
            self.local.append(values)
            self.refined_errors.append(refined_error)
            self.local_scale.append(magnitudes)
            self.local_bound.append({key: local_bound(value, magnitudes.get(key, 0.0),
                                                      local_spread(value, [other[key] for other in nudged]))
                                     for key, value in values.items()})
            self.row_noise.append(noise)

    def given(self, index: int) -> Callable[[str], float | None]:
        """The workbook's value of a key in row `index`; None where the block has no such column."""
        def value(key: str):
            try:
                return numeric(self.read(index, key))
            except KeyError:
                return None
        return value

    def workbook_state(self, index: int) -> dict:
        return {name: numeric(self.read(index, key)) for name, key in self.model.carry.items()}

    def workbook_rows(self) -> list[WorkbookRows]:
        keys = list(self.runs[0][0]) if self.runs and self.runs[0] else []
        return [WorkbookRows(self.read, index, keys) for index in range(self.count)]

    def noise(self, index: int, key: str) -> float:
        """How far rounding inside row `index` can move its cell `key`, given the previous
        row: its local bound, or for a cell the local check recomputes from the workbook's
        own operands in the row (a finite difference, a step), the bound it had before
        that (ulps of the losses behind a finite difference: in a blown-up row one ulp
        of them, over the step 0.01, is more than the weight the step moves)."""
        return max(self.local_bound[index][key], self.row_noise[index].get(key, 0.0))

    def cell(self, index: int, key: str) -> tuple[object, float, float]:
        """Expected value, scale and bound of row `index`'s cell `key` (an error the row
        reads from the row before where it is no number: `with_errors`)."""
        value, scale, bound = combine(self.local[index][key], self.local_scale[index].get(key, 0.0),
                                      self.local_bound[index][key], [rows[index][key] for rows in self.runs],
                                      self.noise(index, key))
        if _is_number(value) and not _finite(value):
            error = self.error_entering(index) if index > 0 else None
            refined = self.refined_errors[index]
            if error is None and refined is not None and key in refined[0]:
                error = refined[1]
            if error is not None:
                value = ExcelError(error)
        return value, scale, bound

    def _error_in_row(self, index: int):
        def error(key: str) -> str | None:
            try:
                return error_of(self.read(index, key))
            except KeyError:
                return None
        return error

    def error_entering(self, index: int) -> str | None:
        """`entering_errors` of row `index`, row by row."""
        for key in self.model.carry.values():
            code = error_of(self.read(index - 1, key))
            if code is not None:
                return code
        return None

    def derived(self, summarise: Callable[[list], object], ulps: float = LOCAL_ULPS,
                row_noise: float = 0.0) -> tuple[object, float, float]:
        """A cell computed from many rows (an rmse, the weights at the end of an epoch):
        `summarise` applied to the workbook's rows (local, within `ulps` units in the last
        place: a sum of n terms rounds n times) and to each run (global, within
        `row_noise`: that of the cell a copy copies, `noise`)."""
        local = summarise(self.workbook_rows())
        return combine(local, 0.0, local_bound(local, 0.0, 0.0, ulps), [summarise(rows) for rows in self.runs],
                       row_noise)

    def link(self, local_value, reference: Callable[[list], object], row_noise: float = 0.0) -> tuple[object, float, float]:
        """A cell that copies another (a chart table): locally it must equal the value it
        copies, `local_value`; globally `reference` applied to each run, within
        `row_noise` (that of the cell it copies, `noise`)."""
        return combine(number(local_value), 0.0, 0.0, [reference(rows) for rows in self.runs], row_noise)


def expect(result, row: int, col: int, expectation: tuple[object, float, float]) -> None:
    """Record an expectation from `Stepwise.cell/derived/link` in a SheetCheck."""
    value, scale, bound = expectation
    result.expect(row, col, value, scale, bound)


# --- a per-row model, every row at once ------------------------------------------------
# The same checks as Stepwise, faster: the local check's rows are independent (each starts
# from the workbook's previous row), so the model's row is computed for all of them at once
# (arrays, one element per row), and the runs from the inputs are carried row after row on
# plain floats, their rows then computed at once from the states entering them. Each
# element sees the same IEEE operations on the same numbers as Stepwise over the RowModel
# it mirrors, so the expected values and bounds are the same, bit for bit (tests hold them
# to it, on random and edge values).

@dataclass
class ArrayRowModel:
    """A RowModel given for many rows at once.

    initial, carry, noisy, key: as RowModel's (the state names are carry's).
    rows:      (state arrays, row indices) -> every value the rows show, by key, as arrays:
               RowModel.row, element by element.
    step:      (state, row index, sized) -> (the state after the row, on plain floats, a new
               dict; with `sized`, by state name the size of the numbers it was computed
               from: RowModel.magnitude of its carry key): the run's step.
    magnitude: (state arrays, values arrays) -> key -> array: RowModel.magnitude, element
               by element (where it is not a finite number, none).
    refine:    (state arrays, values arrays, given) -> (values, magnitudes): RowModel.refine,
               element by element; given(key) is the workbook's column `key` as floats
               (`numeric`), None where there is no such column.
    """
    initial: dict
    carry: dict
    rows: Callable[[dict, np.ndarray], dict]
    step: Callable[[dict, int, bool], tuple[dict, dict]]
    noisy: tuple = ()
    magnitude: Callable[[dict, dict], dict] | None = None
    key: tuple | None = None
    refine: Callable | None = None


def largest(first, *others):
    """Python's max() element by element: the first of the largest, where a later value
    is greater (so a NaN stays only where it comes first)."""
    for other in others:
        first = np.where(other > first, other, first)
    return first


def sizes(values: np.ndarray) -> np.ndarray:
    """|value|, 0 where it is not a finite number (an error cell has no rounding noise)."""
    return np.where(np.isfinite(values), np.abs(values), 0.0)


def numeric_column(values: list, read: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """`numeric` of each of a column's values, as a float array; `read`: as_floats of them."""
    floats, plain = as_floats(values) if read is None else read
    if plain.all():   # the usual case: all computed numbers
        return floats
    return np.array([numeric(value) for value in values], dtype=np.float64)


def summed_column(values: list, read: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """`in_a_sum` of each of a column's values, as a float array; `read`: as_floats of them."""
    floats, plain = as_floats(values) if read is None else read
    if plain.all():
        return floats
    return np.array([in_a_sum(value) for value in values], dtype=np.float64)


def entering_errors(carried: list, count: int, shift: int = 1) -> list | None:
    """For each row, the error Excel's formulas give where the state a row reads from the
    row before (`carried`: (floats as `numeric` reads them, the values) per carried column;
    with `shift` 0, what it reads in its own row) is no number: that error itself, or
    #VALUE! for text that spells none; None for a row that reads numbers (and None for all:
    the usual case)."""
    errors = None
    for floats, values in carried:
        bad = np.flatnonzero(np.isnan(floats[:count - shift]))
        for index in bad.tolist():
            code = error_of(values[index])
            if code is not None:
                if errors is None:
                    errors = [None] * count
                errors[index + shift] = errors[index + shift] or code
    return errors


def error_of(value) -> str | None:
    """The error a formula reading `value` in arithmetic gives: its own, #VALUE! for text
    that spells no number; None for anything arithmetic takes."""
    if isinstance(value, ExcelError):
        return value.code
    if isinstance(value, str) and math.isnan(numeric(value)):
        return "#VALUE!"
    return None


def with_errors(expected: np.ndarray, errors: list | None):
    """`expected` with the error a row's formulas give (`entering_errors`) where it is no
    number: a row computed from #VALUE! is #VALUE!, not the #NUM! a NaN would say."""
    if errors is None:
        return expected
    missing = ~np.isfinite(expected)
    if not any(errors[index] for index in np.flatnonzero(missing).tolist()):
        return expected
    out = expected.astype(object)
    for index in np.flatnonzero(missing).tolist():
        if errors[index]:
            out[index] = ExcelError(errors[index])
    return out


def _nudged(state: dict, noisy: tuple, pattern: tuple, noise: float, magnitudes: dict | None = None) -> dict:
    """`nudge` of every row's state at once."""
    out = dict(state)
    for k, name in enumerate(noisy):
        value = out[name]
        size = largest(np.abs(value), magnitudes.get(name, 0.0) if magnitudes else 0.0, 1e-6)
        out[name] = np.where(np.isfinite(value), value + pattern[k % len(pattern)] * noise * size, value)
    return out


def _spreads(base: np.ndarray, others: list, local: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`spread` (or with `local`, `local_spread`) of each row: (spread, unknown), where
    `unknown` marks the rows where it is None."""
    finite = np.isfinite(base)
    others_finite = [np.isfinite(other) for other in others]
    largest_difference = np.zeros(len(base))
    for other, other_finite in zip(others, others_finite):
        difference = np.abs(other - base)
        if local:   # local_spread: the finite ones count
            difference = np.where(other_finite, difference, 0.0)
        np.maximum(largest_difference, difference, out=largest_difference)
    any_other_finite = np.logical_or.reduce(others_finite) if others else np.zeros(len(base), dtype=bool)
    if local:
        unknown = ~finite & any_other_finite
    else:
        unknown = np.where(finite, ~np.logical_and.reduce(others_finite) if others else False, any_other_finite)
    return np.where(finite, largest_difference, 0.0), unknown


def _local_bounds(values: np.ndarray, magnitudes, nudged: list) -> np.ndarray:
    """`local_bound` of each row: LOCAL_ULPS of its operands' size, plus the spread of the
    rows recomputed from nudged previous rows; inf where that spread is unknown."""
    spread_, unknown = _spreads(values, nudged, local=True)
    return np.where(unknown, math.inf, LOCAL_ULPS * ULP * largest(sizes(values), magnitudes) + spread_)


def combine_rows(local, local_scale, local_bound, runs: np.ndarray, row_noise) -> tuple:
    """`combine` for every row at once: (expected values, scales, bounds); `runs` is
    (runs, rows): the plain run first, then the nudged ones."""
    reference, others = runs[0], list(runs[1:])
    run_spread, unknown = _spreads(reference, others)
    noise = largest(local_bound, row_noise)
    local_finite, reference_finite = np.isfinite(local), np.isfinite(reference)
    extra = noise + run_spread
    close_ = np.where(local_finite & reference_finite,
                      np.abs(local - reference) <= LOCAL_ULPS * ULP * np.maximum(np.abs(local), np.abs(reference))
                      + extra,
                      ~local_finite & ~reference_finite)
    size = np.abs(reference)
    for other in others:
        np.maximum(size, np.abs(other), out=size)
    lost = (run_spread != 0) & (run_spread > LOST * size)
    use_local = unknown | close_ | lost
    size = np.where(reference_finite, np.abs(reference), 0.0)
    return (np.where(use_local, local, reference), np.where(use_local, local_scale, 0.0),
            np.where(use_local, local_bound, extra + LOCAL_ULPS * ULP * size))


class _RunRows:
    """One run's rows, row i a mapping key -> value, from the runs' arrays (runs, rows)."""

    def __init__(self, columns: dict, run: int, count: int):
        self.columns, self.run, self.count = columns, run, count

    def __len__(self):
        return self.count

    def __getitem__(self, index: int):
        if not -self.count <= index < self.count:
            raise IndexError(index)
        return _RunRow(self.columns, self.run, index % self.count)


class _RunRow(Mapping):
    def __init__(self, columns: dict, run: int, index: int):
        self.columns, self.run, self.index = columns, run, index

    def __getitem__(self, key):
        return self.columns[key][self.run, self.index]

    def __iter__(self):
        return iter(self.columns)

    def __len__(self):
        return len(self.columns)


def runs_of_rows(model: ArrayRowModel, count: int) -> dict:
    """key -> (runs, rows) array: the plain run from `model.initial` and the nudged ones
    (`runs_from_inputs`), carried on plain floats, their rows computed at once."""
    key = None if model.key is None else ("rows", model.key, count)
    if key is not None and key in _RUNS:
        return _RUNS[key]
    names = list(model.carry)
    entering = {name: np.empty((1 + len(PATTERNS), count)) for name in names}
    step, inf = model.step, math.inf
    for number, pattern in enumerate((None, *PATTERNS)):
        state, states = {name: float(model.initial[name]) for name in names}, []
        if pattern is None:
            for index in range(count):
                states.append(state)
                state = step(state, index, False)[0]
        else:   # `nudge` by the finite magnitudes, on the floats a step gives
            nudges = [(name, pattern[k % len(pattern)] * NOISE) for k, name in enumerate(model.noisy)]
            for index in range(count):
                states.append(state)
                state, magnitudes = step(state, index, True)
                for name, signed_noise in nudges:
                    value = state[name]
                    if -inf < value < inf:
                        size, magnitude = abs(value), magnitudes.get(name, 0.0)
                        if -inf < magnitude < inf and magnitude > size:
                            size = magnitude
                        if 1e-6 > size:
                            size = 1e-6
                        state[name] = value + signed_noise * size
        for name in names:
            entering[name][number] = np.fromiter(map(itemgetter(name), states), dtype=np.float64, count=count)
    with np.errstate(all="ignore"):
        values = model.rows({name: column.reshape(-1) for name, column in entering.items()},
                            np.tile(np.arange(count), 1 + len(PATTERNS)))
    runs = {key_: np.broadcast_to(value, (1 + len(PATTERNS)) * count).reshape(1 + len(PATTERNS), count)
            for key_, value in values.items()}
    if key is not None:
        if len(_RUNS) >= 32:
            _RUNS.pop(next(iter(_RUNS)))
        _RUNS[key] = runs
    return runs


class StepwiseRows:
    """Stepwise's expected values for `count` rows of an ArrayRowModel held in a workbook,
    every row at once.

    columns: key -> the workbook's (computed) values of that column, row by row
    (KeyError: the block has no such column).
    """

    def __init__(self, model: ArrayRowModel, count: int, columns: Mapping):
        self.model, self.count, self.columns = model, count, columns
        self._numeric = {}
        columns_of_runs = runs_of_rows(model, count)
        self.runs = [_RunRows(columns_of_runs, run, count) for run in range(1 + len(PATTERNS))]
        self._run_columns = columns_of_runs
        indices = np.arange(count)
        state = {}
        for name, key in model.carry.items():
            state[name] = column = np.empty(count)
            column[:1] = model.initial[name]
        if count > 1:
            for name, key in model.carry.items():
                state[name][1:] = self.numbers(key)[:-1]
        with np.errstate(all="ignore"):
            nudged_states = [_nudged(state, model.noisy, pattern, LOCAL_NOISE) for pattern in PATTERNS]
            values_all = model.rows({name: np.concatenate([state[name], *(other[name] for other in nudged_states)])
                                     for name in state}, np.tile(indices, 1 + len(PATTERNS)))
            values_all = {key: np.broadcast_to(value, ((1 + len(PATTERNS)) * count,)) for key, value in values_all.items()}
            values = {key: value[:count] for key, value in values_all.items()}
            nudged = [{key: value[count * (k + 1):count * (k + 2)] for key, value in values_all.items()}
                      for k in range(len(PATTERNS))]
            magnitudes = {}
            if model.magnitude is not None:
                for key, size in model.magnitude(state, values).items():
                    size = np.broadcast_to(np.asarray(size, dtype=np.float64), (count,))
                    magnitudes[key] = np.where(np.isfinite(size), size, 0.0)
            self.row_noise = {}
            self.refined, read = set(), []
            if model.refine is not None:
                updates, refined_sizes = model.refine(state, values, lambda key: read.append(key) or self.given(key))
                self.refined = set(updates)
                # before refining: the bound of the row computed from the previous row alone,
                # the noise the run's own value of each refined cell carries
                self.row_noise = {key: _local_bounds(values[key], magnitudes.get(key, 0.0),
                                                     [other[key] for other in nudged])
                                  for key in updates}
                values = {**values, **updates}
                magnitudes = {**magnitudes, **refined_sizes}
                nudged = [{**other, **model.refine(other_state, other, self.given)[0]}
                          for other_state, other in zip(nudged_states, nudged)]
            self.local = values
            self.local_scale = magnitudes
            self.local_bound = {key: _local_bounds(value, magnitudes.get(key, 0.0), [other[key] for other in nudged])
                                for key, value in values.items()}
        self.errors = entering_errors([(self.numbers(key), self.columns[key]) for key in model.carry.values()],
                                      count)
        # what the refined cells read in their own row (`refine`'s given columns)
        given_errors = entering_errors([(self.numbers(key), self.columns[key]) for key in dict.fromkeys(read)
                                        if key in self.columns], count, shift=0)
        self.refined_errors = self.errors if given_errors is None else [
            entering or given for entering, given in zip(self.errors or [None] * count, given_errors)]

    @property
    def keys(self) -> list:
        """The keys of every row's values."""
        return list(self.local)

    def numbers(self, key: str) -> np.ndarray:
        """The workbook's column `key` as floats (`numeric`); KeyError where there is none."""
        if key not in self._numeric:
            self._numeric[key] = numeric_column(self.columns[key])
        return self._numeric[key]

    def given(self, key: str) -> np.ndarray | None:
        """`Stepwise.given` for every row: the workbook's column, None where there is none."""
        try:
            return self.numbers(key)
        except KeyError:
            return None

    def _noise(self, key: str):
        noise = self.row_noise.get(key)
        return self.local_bound[key] if noise is None else largest(self.local_bound[key], noise)

    def noise(self, index: int, key: str) -> float:
        """`Stepwise.noise`."""
        return self._noise(key)[index]

    def column(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`Stepwise.cell` of every row's cell `key`: (expected values, scales, bounds)."""
        with np.errstate(all="ignore"):
            expected, scales, bounds = combine_rows(self.local[key], self.local_scale.get(key, 0.0),
                                                    self.local_bound[key], self._run_columns[key], self._noise(key))
        return with_errors(expected, self.refined_errors if key in self.refined else self.errors), scales, bounds

    def workbook_rows(self) -> list[WorkbookRows]:
        keys = list(self._run_columns)
        read = lambda index, key: self.columns[key][index]   # noqa: E731
        return [WorkbookRows(read, index, keys) for index in range(self.count)]

    derived = Stepwise.derived
    link = Stepwise.link


# --- whole columns at once ------------------------------------------------------------
# Sheets whose rows are plain arithmetic (the course's basic and optimiser sheets, the
# smoothing demo) are checked the same way, column by column: the local check recomputes
# every row at once from the workbook's previous rows (NumPy arrays), the global run
# carries a second, nudged copy of the state beside the plain one.

@dataclass
class ColumnModel:
    """A per-row model whose `row` works on arrays.

    initial:   state name -> its value before the first row.
    carry:     state name -> the key of the row value that holds it after the row.
    row:       (state arrays, row indices) -> every value the row shows, by key, as arrays.
    magnitude: (state arrays, values, row indices) -> key -> array of the size of the numbers each value
               was computed from (keys not given: the value's own size).
    noisy:     the state names nudged to measure the run's sensitivity.
    step:      (state, row index) -> the state after the row, on plain floats (the part of
               `row` the run needs row by row; by default `row` itself).
    """
    initial: dict
    carry: dict
    row: Callable[[dict, np.ndarray], dict]
    magnitude: Callable[[dict, dict, np.ndarray], dict]
    noisy: tuple = ()
    step: Callable[[dict, int], dict] | None = None   # (state, row index) -> the next state, on floats
    key: tuple | None = None   # everything `row` depends on, when known: equal keys give equal runs
    # (count, nudges {state name: relative size}) -> state name -> float array of the states
    # entering each row: `step`'s run (nudged as run_columns nudges) in one loop, where the
    # reference has one
    entering: Callable[[int, dict], dict] | None = None


def run_columns(model: ColumnModel, count: int) -> dict:
    """key -> (count, 2) array: the run from `model.initial`, and beside it the same run
    with every noisy state value nudged after every row by NOISE times its size (up and
    down in turn, state by state). The states are carried row by row on plain floats (far
    faster than tiny arrays); every row's values then come from them at once."""
    key = None if model.key is None else ("columns", model.key, count)
    if key is not None and key in _RUNS:
        return _RUNS[key]
    runs = _run_columns(model, count)
    if key is not None:
        if len(_RUNS) >= 32:
            _RUNS.pop(next(iter(_RUNS)))
        _RUNS[key] = runs
    return runs


def _run_columns(model: ColumnModel, count: int) -> dict:
    names = list(model.carry)
    step = model.step or (lambda state, index: {name: model.row(state, index)[model.carry[name]] for name in names})
    entering = []
    # (name, +-NOISE): up and down in turn, state by state
    nudges = [(name, (-1) ** k * NOISE) for k, name in enumerate(model.noisy)]
    isfinite = math.isfinite
    for nudged in (False, True):
        if model.entering is not None:
            entering.append(model.entering(count, dict(nudges) if nudged else {}))
            continue
        state = {name: float(value) for name, value in model.initial.items()}
        states = []
        with np.errstate(all="ignore"):
            if not nudged:
                for index in range(count):
                    states.append(state)
                    state = step(state, index)
            else:
                for index in range(count):
                    states.append(state)
                    state = step(state, index)
                    for name, noise in nudges:
                        value = float(state[name])
                        if isfinite(value):
                            state[name] = value + noise * max(abs(value), 1e-6)
        entering.append({name: np.fromiter(map(itemgetter(name), states), dtype=np.float64, count=count)
                         for name in names})
    with np.errstate(all="ignore"):
        plain, nudged = (model.row(state, np.arange(count)) for state in entering)
    return {key: np.column_stack([np.broadcast_to(plain[key], (count,)), np.broadcast_to(nudged[key], (count,))])
            for key in plain}


# The nudged run's distance from the plain one at a single row can be small by chance (a
# step that overshoots flips the sign of a deviation, so it may pass through zero); the
# spread of a row is the largest over the rows within WINDOW of it, and at least the
# largest relative spread of any row before it times its own size.
WINDOW = 8


def windowed_max(values: np.ndarray, window: int = WINDOW) -> np.ndarray:
    out = values.copy()
    for shift in range(1, min(window, len(values) - 1) + 1):
        np.maximum(out[shift:], values[:-shift], out=out[shift:])
        np.maximum(out[:-shift], values[shift:], out=out[:-shift])
    return out


def combine_columns(local: np.ndarray, bound: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`combine` for whole columns: (expected values, bounds). `runs` is (n, 2): the plain
    run and the nudged one."""
    local = np.asarray(local, dtype=np.float64)
    reference, nudged = runs[:, 0], runs[:, 1]
    with np.errstate(all="ignore"):
        finite = np.isfinite(reference)
        both = finite & np.isfinite(nudged)
        raw = np.where(both, np.abs(nudged - reference), 0.0)
        # a run that has amplified a nudge to some relative spread keeps it: the largest
        # relative spread so far, times the value, bounds a row too
        relative = np.maximum.accumulate(np.where(both, raw / np.maximum(np.abs(reference), np.abs(nudged)), 0.0)
                                         if len(raw) else raw)
        relative = np.nan_to_num(relative, nan=0.0)
        run_spread = np.maximum(windowed_max(raw), relative * np.abs(np.where(finite, reference, 0.0)))
        unknown = finite != np.isfinite(nudged)
        lost = relative > LOST
        size = np.maximum(np.abs(local), np.abs(reference))
        close = np.where(np.isfinite(local) & finite,
                         np.abs(local - reference) <= bound + run_spread + LOCAL_ULPS * ULP * size,
                         ~np.isfinite(local) & ~finite)
        use_local = unknown | lost | close
        expected = np.where(use_local, local, reference)
        bounds = np.where(use_local, bound, bound + run_spread + LOCAL_ULPS * ULP * np.abs(reference))
    return expected, np.where(np.isfinite(bounds), bounds, 0.0)


class Columns:
    """Expected values for `count` rows of a ColumnModel held in a workbook.

    read: a column_reader; read(key) the workbook's (computed) values of the column `key`
    as floats, as arithmetic reads them (`numeric`). local_inputs: name -> one value per row, given to the local check's
    rows beside the state (adam_ann's rows use the rate the workbook's table holds).
    """

    def __init__(self, model: ColumnModel, count: int, read: Callable[[str], np.ndarray],
                 local_inputs: dict | None = None):
        self.model, self.count, self.read = model, count, read
        previous = dict(local_inputs or {})
        for name, key in model.carry.items():
            held = np.asarray(read(key), dtype=np.float64)
            previous[name] = np.concatenate([[model.initial[name]], held[:-1]])
        for name, value in model.initial.items():
            previous.setdefault(name, np.full(count, value, dtype=np.float64))
        with np.errstate(all="ignore"):
            self.local = model.row(previous, np.arange(count))
            magnitude = model.magnitude(previous, self.local, np.arange(count))
            self.scale = {key: np.nan_to_num(np.abs(np.asarray(magnitude.get(key, 0.0), dtype=np.float64)),
                                             nan=0.0, posinf=0.0) * np.ones(count)
                          for key in self.local}
            self.bound = {key: LOCAL_ULPS * ULP * np.maximum(np.nan_to_num(np.abs(value), nan=0.0, posinf=0.0),
                                                             self.scale[key])
                          for key, value in self.local.items()}
        self.runs = run_columns(model, count)
        raw = getattr(read, "values", None)
        self.errors = None if raw is None else entering_errors(
            [(read(key), raw(key)) for key in model.carry.values()], count)

    def summed(self, key: str) -> np.ndarray:
        """The workbook's column `key` as SUM over a range takes it (`in_a_sum`)."""
        return self.read.summed(key)

    def counted(self, key: str) -> np.ndarray:
        """Which cells of the workbook's column `key` COUNT counts (`is_counted`)."""
        return self.read.counted(key)

    def column(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(expected values, scales, bounds) of the column `key`, row by row."""
        expected, bounds = combine_columns(self.local[key], self.bound[key], self.runs[key])
        return with_errors(expected, self.errors), self.scale[key], bounds

    def derived(self, local: np.ndarray, ulps, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cells computed from many rows (an epoch's rmse): `local` from the workbook's rows,
        within `ulps` units in the last place of their size; `runs` (m, 2) from the runs."""
        local = np.atleast_1d(np.asarray(local, dtype=np.float64))
        with np.errstate(all="ignore"):
            bound = np.asarray(ulps, dtype=np.float64) * ULP * np.nan_to_num(np.abs(local), nan=0.0, posinf=0.0)
        return combine_columns(local, bound, np.atleast_2d(runs))


class column_reader:
    """read(key) for Columns: the values of a workbook column as floats, as a direct
    reference in arithmetic reads them (`numeric`: the next row computes with the weights
    this row leaves); read.summed(key) as SUM over a range takes them (`in_a_sum`), and
    read.counted(key) which of them COUNT counts. Each read once, never to be written: a
    checker asks for some columns twice."""

    def __init__(self, context, sheet_name: str, rows: list, col: dict):
        self.context, self.sheet_name, self.rows, self.col = context, sheet_name, rows, col
        self.found = {}   # key -> (values, as_floats of them)
        self.made = {}    # (rule, key) -> the float column

    def __call__(self, key: str) -> np.ndarray:
        return self._made("arithmetic", key, numeric_column)

    def summed(self, key: str) -> np.ndarray:
        return self._made("sum", key, summed_column)

    def values(self, key: str) -> list:
        """The column's values as the workbook holds them."""
        return self._read(key)[0]

    def counted(self, key: str) -> np.ndarray:
        """A mask: the column's cells COUNT counts (`is_counted`)."""
        values, (_, plain) = self._read(key)
        if plain.all():
            return plain
        return np.fromiter(map(is_counted, values), dtype=bool, count=len(values))

    def _read(self, key: str) -> tuple:
        if key not in self.found:
            self.found[key] = self.context.column_floats(self.sheet_name, self.rows, self.col[key])
        return self.found[key]

    def _made(self, rule: str, key: str, make) -> np.ndarray:
        if (rule, key) not in self.made:
            self.made[rule, key] = floats = make(*self._read(key))
            floats.flags.writeable = False
        return self.made[rule, key]
