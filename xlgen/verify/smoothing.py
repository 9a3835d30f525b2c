"""Checker for the smoothing demo (xlgen's smoothing layout, LAMBDA or plain).

Recognised by its header row (n, x, sin(x), smoothed, debiased). Inputs: beta, start
and x step (named cells, or beside their labels), the first n. The reference: x =
(n-1)*x_step, sin(x), fastai's average_grad with dampening from `start` (as
AVERAGE_GRAD(sin(x), beta, TRUE, previous) or its plain twin computes it), and the
average divided by debias(beta, 1-beta, n).
"""

from __future__ import annotations

import numpy as np

from xlgen.reference.smoothing import debiased, moving_average
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, input_cell

LAYOUT = "smoothing"
HEADERS = ("n", "x", "sin(x)", "smoothed", "debiased")


def recognise(book, sheet):
    return find_header_row(sheet, HEADERS)


def check(sheet, match, context) -> SheetCheck | None:
    header_row, c0 = match
    col = {h: c0 + i for i, h in enumerate(HEADERS)}
    result = SheetCheck(sheet.name, LAYOUT)
    rows = []
    row = header_row + 1
    while (row, col["smoothed"]) in sheet.formulas:
        rows.append(row)
        row += 1
    if not rows:
        return None
    book = context.book
    beta = context.input(result, "beta", input_cell(book, sheet, ("beta",), "beta"))
    start = context.input(result, "start", input_cell(book, sheet, ("start",), "start"))
    x_step = context.input(result, "x step", input_cell(book, sheet, ("x_step",), "x step"))
    n0 = context.input(result, "first n", (sheet.name, rows[0], col["n"])) \
        if (rows[0], col["n"]) not in sheet.formulas else 1.0
    n = n0 + np.arange(len(rows), dtype=np.float64)
    x = (n - 1) * x_step
    y = np.sin(x)
    smoothed = moving_average(y, beta, start)
    columns = {"n": n, "x": x, "sin(x)": y, "smoothed": smoothed, "debiased": debiased(smoothed, beta, n)}
    for header, values in columns.items():
        for i, r in enumerate(rows):
            if (r, col[header]) in sheet.formulas:
                result.expect(r, col[header], values[i])
    return result
