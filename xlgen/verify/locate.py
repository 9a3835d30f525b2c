"""Finding a layout's parts in a sheet someone else may have written: header rows,
named input cells, labelled input cells."""

from __future__ import annotations

import re

import numpy as np

from xlgen.formula import column_number
from xlgen.verify.core import CellGrid, formula_cells, kept_for_sheet

_CELL = re.compile(r"^(?:(?:'((?:[^']|'')+)'|([^!]+))!)?\$?([A-Z]{1,3})\$?(\d+)$", re.I)


def normal(text) -> str:
    return " ".join(str(text).split()).lower() if isinstance(text, str) else ""


def find_header_row(sheet, headers: tuple, max_row: int = 60):
    """(row, first col) of the first row whose cells read `headers` left to right."""
    wanted = [normal(h) for h in headers]
    by_row = _texts_by_row(sheet, max_row)
    for row in sorted(by_row):
        if row > max_row:
            break
        cells = by_row[row]
        for col, text in cells.items():
            if text == wanted[0] and all(cells.get(col + i) == h for i, h in enumerate(wanted)):
                return row, col
    return None


def texts_in_row(sheet, row: int) -> dict:
    """{col: normal(text)} of the texts in `row`, in the sheet's order (never to be written)."""
    return _texts_by_row(sheet, row).get(row, {})


_TOP_ROWS = 400   # the texts of the rows down to here are kept for the verification under way


def _texts_by_row(sheet, max_row: int) -> dict:
    """row -> {col: normal(text)} of the sheet's texts in rows down to `max_row` at least."""
    if max_row > _TOP_ROWS:
        return _texts_down_to(sheet, max_row)
    return kept_for_sheet(sheet, "texts by row", lambda sheet: _texts_down_to(sheet, _TOP_ROWS))


def _texts_down_to(sheet, max_row: int) -> dict:
    by_row = {}
    for (row, col), value in sheet.constants.items():
        if row <= max_row and isinstance(value, str):
            by_row.setdefault(row, {})[col] = normal(value)
    return by_row


def name_target(book, sheet_name: str, *names: str):
    """(sheet, row, col) a single-cell defined name points at, the sheet's own name first."""
    for name in names:
        for scope in (sheet_name, None):
            text = book.names.get((scope, name.upper()))
            if text is None:
                continue
            match = _CELL.match(text.lstrip("="))
            if match:
                target_sheet = (match.group(1) or "").replace("''", "'") or match.group(2) or sheet_name
                return target_sheet, int(match.group(4)), column_number(match.group(3))
    return None


def labelled_cell(sheet, label: str, max_row: int = 5):
    """(row, col) of the cell right of a text label near the top."""
    wanted = normal(label)
    for (row, col), value in _top_constants(sheet, max_row):
        if row > max_row:
            break
        if normal(value) == wanted:
            return row, col + 1
    return None


def text_constants(sheet) -> list:
    """((row, col), text) of the sheet's texts, in (row, col) order: all that `normal` reads
    as anything but "" (kept for the verification under way; never to be written)."""
    return kept_for_sheet(sheet, "texts", lambda sheet: sorted(item for item in sheet.constants.items()
                                                               if isinstance(item[1], str)))


def _top_constants(sheet, max_row: int) -> list:
    """The sheet's constants in rows down to `max_row` at least, sorted."""
    if max_row > _TOP_ROWS:
        return sorted(item for item in sheet.constants.items() if item[0][0] <= max_row)
    return kept_for_sheet(sheet, "top constants",
                          lambda sheet: sorted(item for item in sheet.constants.items() if item[0][0] <= _TOP_ROWS))


def formula_rows_below(sheet, header_row: int, col: int) -> list[int]:
    """The unbroken run of rows under `header_row` whose cell in `col` holds a formula:
    where a layout's table of steps ends."""
    if (header_row + 1, col) not in sheet.formulas or (header_row + 64, col) not in sheet.formulas:
        rows = []   # a short run: cell by cell
        row = header_row + 1
        while (row, col) in sheet.formulas:
            rows.append(row)
            row += 1
        return rows
    # a long run (a layout's 40,000 rows, asked for by several checkers): with NumPy
    return formula_rows(sheet).run_below(header_row, col)


def formula_rows(sheet) -> "FormulaRows":
    """The sheet's FormulaRows, kept for the verification under way (several checkers ask)."""
    return kept_for_sheet(sheet, "formula rows", FormulaRows)


def _run_below(column_rows: np.ndarray, header_row: int) -> list[int]:
    """The unbroken run from header_row + 1 among a column's formula rows."""
    below = np.sort(column_rows[column_rows > header_row].astype(np.int64))
    broken = np.flatnonzero(below != np.arange(header_row + 1, header_row + 1 + len(below)))
    return below[:broken[0] if len(broken) else len(below)].tolist()


class FormulaRows:
    """Which rows of each column of a sheet hold formulas, found for whole columns at once
    (a layout's columns of 20,000 rows each, without a dict lookup per cell): marked on a
    grid of the sheet's formula cells, or where they lie too far apart for one, sorted by column."""

    def __init__(self, sheet):
        rows, cols = formula_cells(sheet)
        self.grid = CellGrid.around([(rows, cols)])
        if self.grid is not None:
            self.marked = np.zeros(self.grid.size, dtype=bool)
            self.marked[self.grid.codes(rows, cols)] = True
        else:
            order = np.argsort(cols, kind="stable")
            self.rows, self.cols = rows[order], cols[order]

    def of(self, rows, col: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows of `rows` whose cell in `col` holds a formula, and their indices in
        `rows` (None when every row does: a column of a layout, a pasted value aside)."""
        rows = np.asarray(rows, dtype=np.int64)
        grid = self.grid
        if grid is None:
            first, last = np.searchsorted(self.cols, [col, col + 1])
            present = np.isin(rows, self.rows[first:last])
        else:
            present = np.zeros(len(rows), dtype=bool)
            if grid.col <= col < grid.col + grid.width:
                inside = (rows >= grid.row) & (rows < grid.row + grid.size // grid.width)
                present[inside] = self.marked[(rows[inside] - grid.row) * grid.width + (col - grid.col)]
        if present.all():
            return rows, None
        indices = np.flatnonzero(present)
        return rows[indices], indices

    def run_below(self, header_row: int, col: int) -> list[int]:
        """The unbroken run of rows under `header_row` whose cell in `col` holds a formula."""
        grid = self.grid
        if grid is None:
            first, last = np.searchsorted(self.cols, [col, col + 1])
            return _run_below(self.rows[first:last], header_row)
        first = header_row + 1 - grid.row
        if not (grid.col <= col < grid.col + grid.width) or not 0 <= first < grid.size // grid.width:
            return []
        held = self.marked.reshape(-1, grid.width)[first:, col - grid.col]
        ends = np.flatnonzero(~held)
        return list(range(header_row + 1, header_row + 1 + (int(ends[0]) if len(ends) else len(held))))


def input_cell(book, sheet, names: tuple, label: str | None):
    """Where an input lives: a defined name if the workbook has one, else beside its label."""
    target = name_target(book, sheet.name, *names)
    if target:
        return target
    if label:
        found = labelled_cell(sheet, label)
        if found:
            return (sheet.name, *found)
    return None


def with_typed_non_numbers(sheet, rows, col: int, present: np.ndarray, indices):
    """FormulaRows.of's (present, indices), with the rows whose cell in `col` holds no
    formula but TRUE/FALSE or text a user typed over it: such a cell is no input a number
    column takes (a pasted number is, and stays unchecked), so it is checked with the
    formulas, against what the formula there would give."""
    if indices is None:   # the usual case: a formula in every row
        return present, indices
    rows = np.asarray(rows, dtype=np.int64)
    held = np.zeros(len(rows), dtype=bool)
    held[indices] = True
    constants = sheet.constants
    typed = [index for index in np.flatnonzero(~held).tolist()
             if isinstance(constants.get((int(rows[index]), col)), (bool, str))]
    if not typed:
        return present, indices
    held[typed] = True
    indices = np.flatnonzero(held)
    return rows[indices], (None if held.all() else indices)
