"""Checker for the course's `basic` sheet (and xlgen's unrolled version of it).

Recognised by its header row (x, y, intercept, ... new b). Inputs: the learning rate,
the initial weights, the derivative switch if the sheet has one, and the data points
(the sheet's own constants, or the data sheet's points when the x and y cells link to
it). The reference replays per-row SGD over the rows in sheet order and every formula
cell in the row block, the rmse table and the summary row is compared.
"""

from __future__ import annotations

import numpy as np

from xlgen.formula import cell_name
from xlgen.reference.sgd import per_row_sgd
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, input_cell, normal

LAYOUT = "basic"
HEADERS = ("x", "y", "intercept", "slope", "y_pred", "err^2", "errb1", "est de/db",
           "erra1", "est de/da", "de/db", "de/da", "new a", "new b")
FINITE_STEP = 0.01  # the course's step, written as a literal in its formulas


def recognise(book, sheet):
    header = find_header_row(sheet, HEADERS)
    if header is None:
        return None
    return header


def data_rows(sheet, header_row: int, first_col: int) -> list[int]:
    """Rows under the header where x is filled in and the intercept is a formula."""
    rows = []
    row = header_row + 1
    while ((row, first_col) in sheet.constants or (row, first_col) in sheet.formulas) \
            and (row, first_col + 2) in sheet.formulas:
        rows.append(row)
        row += 1
    return rows


def check(sheet, match, context) -> SheetCheck | None:
    header_row, c0 = match
    col = {header: c0 + i for i, header in enumerate(HEADERS)}
    result = SheetCheck(sheet.name, LAYOUT)
    rows = data_rows(sheet, header_row, c0)
    if not rows:
        return None
    learning_rate = context.input(result, "learning_rate", input_cell(context.book, sheet, ("learning_rate", "lr"), "learn"))
    a0 = context.input(result, "initial a", input_cell(context.book, sheet, ("initial_a", "slope"), "slope"))
    b0 = context.input(result, "initial b", input_cell(context.book, sheet, ("initial_b", "const"), "intercept"))
    switch = input_cell(context.book, sheet, ("derivative",), None)
    derivative = "analytic"
    if switch is not None:
        derivative = "finite" if normal(context.input(result, "derivative", switch)) == "finite" else "analytic"

    # the data points: linked rows follow the data sheet, pasted ones are inputs
    x_col, y_col = col["x"], col["y"]
    linked = any((r, x_col) in sheet.formulas or (r, y_col) in sheet.formulas for r in rows)
    if linked:
        dataset = context.dataset
        if dataset is None:
            result.notes.append("x and y link to a data sheet that was not recognised; their values are taken as inputs")
            xs = context.numbers(sheet.name, [(r, x_col) for r in rows], "x")
            ys = context.numbers(sheet.name, [(r, y_col) for r in rows], "y")
            rows_per_epoch = len(rows)
        else:
            rows_per_epoch = len(dataset.x)
            reps = -(-len(rows) // rows_per_epoch)
            xs = np.tile(dataset.x, reps)[:len(rows)]
            ys = np.tile(dataset.y, reps)[:len(rows)]
            for r, x, y in zip(rows, xs, ys):
                for c, value in ((x_col, x), (y_col, y)):
                    if (r, c) in sheet.formulas:
                        result.expect(r, c, value)
    else:
        xs = context.numbers(sheet.name, [(r, x_col) for r in rows], "x")
        ys = context.numbers(sheet.name, [(r, y_col) for r in rows], "y")
        rows_per_epoch = len(rows)
    epochs = len(rows) // rows_per_epoch
    if epochs * rows_per_epoch != len(rows):
        result.notes.append(f"{len(rows)} rows is not a whole number of epochs of {rows_per_epoch} points")
        rows_per_epoch, epochs = len(rows), 1
        xs, ys = xs[:len(rows)], ys[:len(rows)]

    trace = per_row_sgd(xs[:rows_per_epoch], ys[:rows_per_epoch], model="linear",
                        initial={"a": a0, "b": b0}, learning_rate=learning_rate,
                        epochs=epochs, derivative=derivative, finite_step=FINITE_STEP)
    columns = {
        "intercept": trace.before["b"], "slope": trace.before["a"], "y_pred": trace.prediction,
        "err^2": trace.loss, "errb1": trace.bumped_loss["b"], "erra1": trace.bumped_loss["a"],
        "est de/db": trace.finite["b"], "est de/da": trace.finite["a"],
        "de/db": trace.analytic["b"], "de/da": trace.analytic["a"],
        "new a": trace.after["a"], "new b": trace.after["b"],
    }
    # finite-difference estimates subtract two nearly equal losses: rounding noise
    # scales with the losses, not with their difference
    noisy = {"est de/db": trace.bumped_loss["b"] / FINITE_STEP, "est de/da": trace.bumped_loss["a"] / FINITE_STEP}
    for header, values in columns.items():
        c = col[header]
        indices = [i for i, r in enumerate(rows) if (r, c) in sheet.formulas]
        if len(indices) != len(rows):  # a pasted value among the formulas is not checked
            values = values[indices]
        cells = [(rows[i], c) for i in indices]
        scales = np.abs(noisy[header][indices]) if header in noisy else None
        result.expect_many(cells, values, scales)

    check_rmse_table(sheet, result, trace.rmse)
    check_summary_row(sheet, result, rows[-1] + 1, col, trace)
    return result


def check_rmse_table(sheet, result: SheetCheck, rmse) -> None:
    """xlgen's table: 'epoch' and 'rmse' headers, epoch numbers below, rmse formulas beside."""
    found = find_header_row(sheet, ("epoch", "rmse"))
    if found is None:
        return
    row, c = found
    while (row + 1, c) in sheet.constants and (row + 1, c + 1) in sheet.formulas:
        row += 1
        epoch = sheet.constants[(row, c)]
        if isinstance(epoch, float) and epoch.is_integer() and 1 <= epoch <= len(rmse):
            result.expect(row, c + 1, rmse[int(epoch) - 1])


def check_summary_row(sheet, result: SheetCheck, row: int, col: dict, trace) -> None:
    """The course's row under the data: rmse under err^2, gradient norms under de/db, de/da."""
    sums = {"err^2": np.sqrt(np.sum(trace.loss)),
            "de/db": np.sqrt(np.sum(trace.analytic["b"] ** 2)),
            "de/da": np.sqrt(np.sum(trace.analytic["a"] ** 2))}
    for header, expected in sums.items():
        if (row, col[header]) in sheet.formulas:
            result.expect(row, col[header], expected)
