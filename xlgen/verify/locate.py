"""Finding a layout's parts in a sheet someone else may have written: header rows,
named input cells, labelled input cells."""

from __future__ import annotations

import re

import numpy as np

from xlgen.formula import column_number
from xlgen.verify.core import formula_cells

_CELL = re.compile(r"^(?:(?:'((?:[^']|'')+)'|([^!]+))!)?\$?([A-Z]{1,3})\$?(\d+)$", re.I)


def normal(text) -> str:
    return " ".join(str(text).split()).lower() if isinstance(text, str) else ""


def find_header_row(sheet, headers: tuple, max_row: int = 60):
    """(row, first col) of the first row whose cells read `headers` left to right."""
    wanted = [normal(h) for h in headers]
    by_row = {}
    for (row, col), value in sheet.constants.items():
        if row <= max_row and isinstance(value, str):
            by_row.setdefault(row, {})[col] = normal(value)
    for row in sorted(by_row):
        cells = by_row[row]
        for col, text in cells.items():
            if text == wanted[0] and all(cells.get(col + i) == h for i, h in enumerate(wanted)):
                return row, col
    return None


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
    for (row, col), value in sorted(item for item in sheet.constants.items() if item[0][0] <= max_row):
        if normal(value) == wanted:
            return row, col + 1
    return None


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
    all_rows, all_cols = formula_cells(sheet)
    below = np.sort(all_rows[(all_cols == col) & (all_rows > header_row)].astype(np.int64))
    broken = np.flatnonzero(below != np.arange(header_row + 1, header_row + 1 + len(below)))
    return below[:broken[0] if len(broken) else len(below)].tolist()


class FormulaRows:
    """Which rows of each column of a sheet hold formulas, found for whole columns at once
    (a layout's columns of 20,000 rows each, without a dict lookup per cell)."""

    def __init__(self, sheet):
        rows, cols = formula_cells(sheet)
        order = np.lexsort((rows, cols))
        self.rows, self.cols = rows[order], cols[order]

    def of(self, rows, col: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows of `rows` whose cell in `col` holds a formula, and their indices in
        `rows` (None when every row does: a column of a layout, a pasted value aside)."""
        rows = np.asarray(rows, dtype=np.int64)
        first, last = np.searchsorted(self.cols, [col, col + 1])
        present = np.isin(rows, self.rows[first:last])
        if present.all():
            return rows, None
        indices = np.flatnonzero(present)
        return rows[indices], indices


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
