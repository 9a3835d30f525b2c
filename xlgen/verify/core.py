"""Compare what the formulas computed with what the reference says, and report.

Layout checkers (one module per kind of sheet) recognise their sheets by headers, read
the inputs, run the reference and return the value each formula cell should hold. This
module does the comparing: the same tolerance for every checker, mismatches ordered by
the engine's calculation order so the first one named is the cell where things went
wrong, not one of its consequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass
class SheetCheck:
    """What one layout checker expects of one sheet."""
    sheet: str
    layout: str
    expected: dict = field(default_factory=dict)   # (row, col) -> expected value
    scale: dict = field(default_factory=dict)      # (row, col) -> magnitude of its operands
    bound: dict = field(default_factory=dict)      # (row, col) -> largest difference rounding explains
    inputs: dict = field(default_factory=dict)     # input name -> "sheet!A1 = value", for the report
    volatile: list = field(default_factory=list)   # cells taken as inputs because they are volatile
    notes: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)    # (row, col) -> why it is not checked here

    def expect(self, row: int, col: int, value, scale: float = 0.0, bound: float | None = None) -> None:
        self.expected[(row, col)] = value
        if scale:
            self.scale[(row, col)] = scale
        if bound is not None:
            self.bound[(row, col)] = float(bound)

    def expect_many(self, cells: list, values, scales=None, bounds=None) -> None:
        """A column's worth at once: `values` (and `scales`, `bounds`) line up with `cells`."""
        values = values.tolist() if hasattr(values, "tolist") else values
        self.expected.update(zip(cells, values))
        if scales is not None:
            scales = scales.tolist() if hasattr(scales, "tolist") else scales
            self.scale.update((cell, size) for cell, size in zip(cells, scales) if size)
        if bounds is not None:
            bounds = bounds.tolist() if hasattr(bounds, "tolist") else bounds
            self.bound.update(zip(cells, bounds))


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
        return sum(len(check.expected) for check in self.checks)

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
            "sheets": {check.sheet: {"layout": check.layout, "cells_checked": len(check.expected),
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


def as_floats(items: list) -> tuple[np.ndarray, np.ndarray]:
    """Items as a float array and a mask of those that were plain numbers."""
    try:
        array = np.asarray(items, dtype=np.float64)
        if array.ndim == 1:
            return array, np.ones(len(items), dtype=bool)
    except (TypeError, ValueError):
        pass
    array = np.full(len(items), np.nan)
    numeric = np.zeros(len(items), dtype=bool)
    for index, item in enumerate(items):
        if isinstance(item, NUMBER) and not isinstance(item, bool):
            array[index] = item
            numeric[index] = True
    return array, numeric


def disagreeing(expected: list, actual: list, scale: np.ndarray, any_error: bool, report: Report,
                bound: np.ndarray | None = None) -> list[int]:
    """Indices where `actual` does not agree with `expected`; `bound` (NaN: none) as in `agrees`.

    Plain numbers are judged all at once; everything else (errors, text, booleans, and
    numbers that fail the quick test) goes through `agrees`, so the rules stay in one place.
    """
    e, e_numeric = as_floats(expected)
    a, a_numeric = as_floats(actual)
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.maximum(np.abs(a), np.abs(e))
        difference = np.abs(a - e)
        relative_rule = RELATIVE_TOLERANCE * np.maximum(size, scale) + ABSOLUTE_TOLERANCE
        bounded = np.zeros(len(expected), dtype=bool) if bound is None else ~np.isnan(bound)
        limit = relative_rule if bound is None else np.where(bounded, bound, relative_rule)
        accepted = e_numeric & a_numeric & np.isfinite(e) & np.isfinite(a) & (difference <= limit)
        used = accepted & bounded & (difference > 0)
        if used.any():
            report.largest_bound_used = max(report.largest_bound_used, float((difference[used] / bound[used]).max()))
        # relative to the size the tolerance uses, over the cells where the relative rule
        # (not the absolute floor) decides
        judged = accepted & ~bounded & (np.maximum(size, scale) > ABSOLUTE_TOLERANCE / RELATIVE_TOLERANCE)
        if judged.any():
            relative = difference[judged] / np.maximum(size, scale)[judged]
            report.largest_difference = max(report.largest_difference, float(relative.max()))
    return [int(i) for i in np.flatnonzero(~accepted)
            if not agrees(expected[i], actual[i], float(scale[i]), any_error,
                          math.nan if bound is None else float(bound[i]))]


def compare(report: Report, book, values: dict, order: list, any_error: bool = False,
            ignore_sheets: set = frozenset(), volatile: set = frozenset(), check_stale: bool = True,
            fifteen_digits: bool = False) -> None:
    """Fill the report's mismatches (calculation order), unchecked cells and stale caches.

    `any_error`: an error where the reference has one agrees whatever its code (LibreOffice
    says #VALUE! where Excel says #NUM!); `ignore_sheets` were skipped on purpose;
    `check_stale` compares the saved values with the recomputed ones; `fifteen_digits`: the
    values were read back rounded to 15 significant digits (LibreOffice)."""
    checked = set()
    found = []
    for check in report.checks:
        sheet = book.sheet(check.sheet)
        cells = list(check.expected)
        keys = [(check.sheet, row, col) for row, col in cells]
        checked.update(keys)
        actual = [values[key] if key in values else sheet.constants.get(cell) for key, cell in zip(keys, cells)]
        expected = [check.expected[cell] for cell in cells]
        scale = np.array([check.scale.get(cell, 0.0) for cell in cells], dtype=np.float64)
        bound = np.array([check.bound.get(cell, math.nan) for cell in cells], dtype=np.float64) if check.bound else None
        if bound is not None and fifteen_digits:
            sizes = np.abs(np.array([value if isinstance(value, float) else 0.0 for value in expected]))
            bound = bound + FIFTEEN_DIGITS * np.nan_to_num(np.maximum(sizes, scale), nan=0.0, posinf=0.0)
        for index in disagreeing(expected, actual, scale, any_error, report, bound):
            row, col = cells[index]
            found.append((keys[index], Mismatch(f"{check.sheet}!{cell_name(row, col)}", sheet.formulas.get((row, col), ""),
                                                as_expected(expected[index]), actual[index])))
    if found:
        position = {cell: index for index, cell in enumerate(order)}
        found.sort(key=lambda item: (position.get(item[0], len(position)), item[0][1], item[0][2]))
    report.mismatches = [mismatch for _, mismatch in found]
    taken_as_inputs = {cell for check in report.checks for cell in check.volatile}
    taken_as_inputs |= {f"{check.sheet}!{cell_name(*cell)}" for check in report.checks for cell in check.skipped}
    # a saved value is judged as the reference is: cells whose operands dwarf them carry
    # rounding noise of the operands' size, whichever engine saved them
    scales = {(check.sheet, *cell): size for check in report.checks for cell, size in check.scale.items()}
    for sheet in book.sheets:
        if sheet.name in ignore_sheets:
            continue
        report.formula_cells += len(sheet.formulas)
        report.unchecked.extend(name for name in (f"{sheet.name}!{cell_name(row, col)}" for row, col in sheet.formulas
                                                  if (sheet.name, row, col) not in checked)
                                if name not in taken_as_inputs)
        report.cached_missing += sum(1 for cell in sheet.formulas if cell not in sheet.cached)
        if not check_stale:
            continue
        cached_cells = [cell for cell in sheet.formulas
                        if cell in sheet.cached and (sheet.name, *cell) not in volatile]
        saved = [sheet.cached[cell] for cell in cached_cells]
        recomputed = [values.get((sheet.name, *cell)) for cell in cached_cells]
        stale_report = Report(report.path)  # differences of saved values are not the reference's
        saved_scale = np.array([scales.get((sheet.name, *cell), 0.0) for cell in cached_cells], dtype=np.float64)
        for index in disagreeing(saved, recomputed, saved_scale, any_error, stale_report):
            row, col = cached_cells[index]
            report.stale.append(Mismatch(f"{sheet.name}!{cell_name(row, col)}", sheet.formulas[(row, col)],
                                         recomputed[index], saved[index]))
