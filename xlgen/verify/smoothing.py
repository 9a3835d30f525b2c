"""Checker for the smoothing demo (xlgen's smoothing layout, LAMBDA or plain).

Recognised by its header row (n, x, sin(x), smoothed, debiased). Inputs: beta, start
and x step (named cells, or beside their labels), the first n. The reference: x =
(n-1)*x_step, sin(x), fastai's average_grad with dampening from `start` (as
AVERAGE_GRAD(sin(x), beta, TRUE, previous) or its plain twin computes it), and the
average divided by debias(beta, 1-beta, n).
"""

from __future__ import annotations

import numpy as np

from xlgen.reference.optimizers import average_grad, debias
from xlgen.reference.smoothing import debiased
from xlgen.verify.core import SheetCheck
from xlgen.verify.stepwise import ColumnModel, Columns, column_reader
from xlgen.verify.locate import (find_header_row, formula_rows, formula_rows_below, input_cell,
                                 with_typed_non_numbers)

LAYOUT = "smoothing"
HEADERS = ("n", "x", "sin(x)", "smoothed", "debiased")


def recognise(book, sheet):
    return find_header_row(sheet, HEADERS)


def check(sheet, match, context) -> SheetCheck | None:
    header_row, c0 = match
    col = {h: c0 + i for i, h in enumerate(HEADERS)}
    result = SheetCheck(sheet.name, LAYOUT)
    rows = formula_rows_below(sheet, header_row, col["smoothed"])
    if not rows:
        return None
    book = context.book
    beta = context.input(result, "beta", input_cell(book, sheet, ("beta",), "beta"))
    start = context.input(result, "start", input_cell(book, sheet, ("start",), "start"))
    x_step = context.input(result, "x step", input_cell(book, sheet, ("x_step",), "x step"))
    n0 = context.input(result, "first n", (sheet.name, rows[0], col["n"])) \
        if (rows[0], col["n"]) not in sheet.formulas else 1.0
    model = row_model(beta, start, x_step, n0)
    columns = Columns(model, len(rows), column_reader(context, sheet.name, rows, col))
    with_formulas = formula_rows(sheet)
    for header in HEADERS:
        present, indices = with_typed_non_numbers(sheet, rows, col[header], *with_formulas.of(rows, col[header]))
        if len(present):
            expected, scales, bounds = columns.column(header)
            if indices is not None:
                expected, scales, bounds = expected[indices], scales[indices], bounds[indices]
            result.expect_column(present, col[header], expected, scales, bounds)
    return result


def row_model(beta: float, start: float, x_step: float, n0: float) -> ColumnModel:
    """Each row: n counts on from the previous row's, x = (n-1)*x_step, sin(x), the
    moving average (fastai's average_grad, dampened) from the previous row's, and it
    debiased by debias(beta, 1-beta, n)."""
    def row(state: dict, index) -> dict:
        n = state["n"] + 1
        x = (n - 1) * x_step
        y = np.sin(x)
        smoothed = moving_average_step(y, beta, state["smoothed"])
        return {"n": n, "x": x, "sin(x)": y, "smoothed": smoothed,
                "debiased": debiased(smoothed, beta, n)}

    def step(state: dict, index: int) -> dict:
        values = row(state, index)
        return {"n": float(values["n"]), "smoothed": float(values["smoothed"])}

    def magnitude(state: dict, values: dict, index) -> dict:
        """sin(x) rounds with x (its slope is at most 1); 1 - beta^n in debias cancels."""
        sine = np.maximum(np.abs(values["sin(x)"]), np.abs(values["x"]))
        smoothed = np.maximum(np.abs(state["smoothed"] * beta), abs(1 - beta) * sine)
        correction = np.abs(debias(beta, 1 - beta, values["n"]))
        return {"sin(x)": sine, "smoothed": smoothed,
                "debiased": (np.abs(values["debiased"]) + smoothed) / np.minimum(correction, 1.0)}

    return ColumnModel({"n": float(n0) - 1, "smoothed": float(start)}, {"n": "n", "smoothed": "smoothed"}, row,
                       magnitude, noisy=("smoothed",), step=step,
                       key=("smoothing", beta, start, x_step, float(n0)))


def moving_average_step(value, beta: float, previous):
    return average_grad(None, value, beta, dampening=True, grad_avg=previous)["grad_avg"]
