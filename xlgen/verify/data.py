"""Checker for the data sheet: y = const + slope * x for every point.

The x values are inputs (constants, or the course's RANDBETWEEN cells taken at their
saved values); the y formulas must match the line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlgen.formula import cell_name
from xlgen.reference.data import line
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, input_cell

LAYOUT = "data"


@dataclass
class Dataset:
    """The data points as the reference sees them, for sheets that link to them."""
    sheet: str
    x: np.ndarray
    y: np.ndarray


def recognise(book, sheet):
    header = find_header_row(sheet, ("x", "y"))
    if header is None:
        return None
    intercept = input_cell(book, sheet, ("target_b",), "const")
    slope = input_cell(book, sheet, ("target_a",), "slope")
    if intercept is None or slope is None:
        return None
    return header, intercept, slope


def check(sheet, match, context) -> SheetCheck:
    (header_row, x_col), intercept_cell, slope_cell = match
    result = SheetCheck(sheet.name, LAYOUT)
    intercept = context.input(result, "const", intercept_cell)
    slope = context.input(result, "slope", slope_cell)
    rows = []
    row = header_row + 1
    while (row, x_col) in sheet.constants or (row, x_col) in sheet.formulas:
        if (row, x_col) in sheet.formulas:
            if not context.is_volatile(sheet.name, row, x_col):
                break  # not a data point we can take as an input
            result.volatile.append(f"{sheet.name}!{cell_name(row, x_col)}")
        rows.append(row)
        row += 1
    if not rows:
        return None
    x = context.numbers(sheet.name, [(r, x_col) for r in rows], "x")
    line_y = line(x, intercept, slope)
    y = []
    for row, expected in zip(rows, line_y):
        if (row, x_col + 1) in sheet.formulas:
            result.expect(row, x_col + 1, expected)
            y.append(expected)
        else:  # a pasted y is an input like x
            y.append(context.numbers(sheet.name, [(row, x_col + 1)], "y")[0])
    y = np.array(y, dtype=np.float64)
    context.dataset = Dataset(sheet.name, x, y)
    return result
