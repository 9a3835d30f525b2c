"""Checker for the course's `basic` sheet (and xlgen's unrolled version of it).

Recognised by its header row (x, y, intercept, ... new b). Inputs: the learning rate,
the initial weights, the derivative switch if the sheet has one, and the data points
(the sheet's own constants, or the data sheet's points when the x and y cells link to
it). The reference replays per-row SGD over the rows in sheet order and every formula
cell in the row block, the rmse table and the summary row is compared.
"""

from __future__ import annotations

import numpy as np

from xlgen.reference.models import Linear, bumped_losses, finite_gradient, loss
from xlgen.reference.sgd import linear_weights_entering
from xlgen.verify.core import SheetCheck
from xlgen.verify.stepwise import LOCAL_ULPS, ColumnModel, Columns, column_reader
from xlgen.verify.locate import (find_header_row, formula_rows, formula_rows_below, input_cell, normal,
                                 with_typed_non_numbers)

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
    rows = formula_rows_below(sheet, header_row, first_col + 2)   # the intercepts
    _, linked = formula_rows(sheet).of(rows, first_col)   # x as a formula: a link to the data sheet
    if linked is None:
        return rows
    is_formula = np.zeros(len(rows), dtype=bool)
    is_formula[linked] = True
    for index in np.flatnonzero(~is_formula).tolist():   # the others: pasted x, or none
        if (rows[index], first_col) not in sheet.constants:
            return rows[:index]
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

    with_formulas = formula_rows(sheet)
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
            for c, column in ((x_col, xs), (y_col, ys)):
                present, indices = with_typed_non_numbers(sheet, rows, c, *with_formulas.of(rows, c))
                result.expect_column(present, c, column if indices is None else column[indices])
    else:
        xs = context.numbers(sheet.name, [(r, x_col) for r in rows], "x")
        ys = context.numbers(sheet.name, [(r, y_col) for r in rows], "y")
        rows_per_epoch = len(rows)
    epochs = len(rows) // rows_per_epoch
    if epochs * rows_per_epoch != len(rows):
        result.notes.append(f"{len(rows)} rows is not a whole number of epochs of {rows_per_epoch} points")
        rows_per_epoch, epochs = len(rows), 1
        xs, ys = xs[:len(rows)], ys[:len(rows)]

    model = row_model(xs[:rows_per_epoch], ys[:rows_per_epoch], a0, b0, learning_rate, derivative)
    first = {header: c for header, c in col.items() if header not in ("x", "y")}
    columns = Columns(model, len(rows), column_reader(context, sheet.name, rows, col))
    for header, c in first.items():
        present, indices = with_typed_non_numbers(sheet, rows, c, *with_formulas.of(rows, c))
        expected, scales, bounds = columns.column(header)
        if indices is not None:  # a pasted number among the formulas is not checked
            expected, scales, bounds = expected[indices], scales[indices], bounds[indices]
        result.expect_column(present, c, expected, scales, bounds)

    check_rmse_table(sheet, result, columns, rows_per_epoch)
    check_summary_row(sheet, result, rows[-1] + 1, col, columns)
    return result


def row_model(xs, ys, a0: float, b0: float, learning_rate: float, derivative: str) -> ColumnModel:
    """The sheet's rows as a ColumnModel: the state is the weights; a row is one SGD step
    of the reference's linear model on one data point (the course's columns)."""
    x_list, y_list = [float(x) for x in xs], [float(y) for y in ys]   # plain floats: fast row by row

    def row(state: dict, index) -> dict:
        if isinstance(index, np.ndarray):
            x, y = xs[index % len(xs)], ys[index % len(xs)]
        else:
            x, y = x_list[index % len(xs)], y_list[index % len(xs)]
        w = {"a": state["a"], "b": state["b"]}
        base = loss(Linear, w, x, y)
        bumped = bumped_losses(Linear, w, x, y, FINITE_STEP)
        finite = finite_gradient(base, bumped, FINITE_STEP)
        analytic = Linear.gradient(w, x, y)
        used = finite if derivative == "finite" else analytic
        return {"intercept": w["b"], "slope": w["a"], "y_pred": Linear.predict(w, x), "err^2": base,
                "errb1": bumped["b"], "erra1": bumped["a"], "est de/db": finite["b"], "est de/da": finite["a"],
                "de/db": analytic["b"], "de/da": analytic["a"],
                "new a": w["a"] - used["a"] * learning_rate, "new b": w["b"] - used["b"] * learning_rate}

    def magnitude(state: dict, values: dict, index: np.ndarray) -> dict:
        """The size of the numbers behind each value: y - y_pred cancels, and the
        finite-difference estimates subtract two nearly equal losses."""
        x, y = np.abs(xs[index % len(xs)]), np.abs(ys[index % len(xs)])
        a, b = np.abs(state["a"]), np.abs(state["b"])
        out = {"y_pred": np.maximum(a * x, b)}
        residual = np.maximum(out["y_pred"], y)
        out["err^2"] = squared_size(values["err^2"], residual)
        out["errb1"] = squared_size(values["errb1"], np.maximum(np.abs(state["b"] + FINITE_STEP), residual))
        out["erra1"] = squared_size(values["erra1"], np.maximum(np.abs(state["a"] + FINITE_STEP) * x, residual))
        out["est de/db"] = np.maximum(out["errb1"], out["err^2"]) / FINITE_STEP
        out["est de/da"] = np.maximum(out["erra1"], out["err^2"]) / FINITE_STEP
        out["de/db"] = 2 * residual
        out["de/da"] = 2 * residual * x
        for weight in ("a", "b"):
            used = out[f"est de/d{weight}"] if derivative == "finite" else out[f"de/d{weight}"]
            out[f"new {weight}"] = np.maximum(np.abs(state[weight]), abs(learning_rate) * used)
        return out

    def step(state: dict, index: int) -> dict:
        x, y = x_list[index % len(xs)], y_list[index % len(xs)]
        if derivative == "finite":
            base = loss(Linear, state, x, y)
            used = finite_gradient(base, bumped_losses(Linear, state, x, y, FINITE_STEP), FINITE_STEP)
        else:
            used = Linear.gradient(state, x, y)
        return {"a": state["a"] - used["a"] * learning_rate, "b": state["b"] - used["b"] * learning_rate}

    def entering(count: int, nudge: dict) -> dict:
        return linear_weights_entering(x_list, y_list, float(a0), float(b0), learning_rate, count, nudge)

    return ColumnModel({"a": np.float64(a0), "b": np.float64(b0)}, {"a": "new a", "b": "new b"}, row, magnitude,
                       noisy=("a", "b"), step=step, entering=entering if derivative == "analytic" else None,
                       key=("basic", tuple(x_list), tuple(y_list), float(a0), float(b0), learning_rate, derivative))


def squared_size(square, residual_size):
    """Size of the numbers behind (u - v)^2 where u, v are of size `residual_size`."""
    return np.maximum(np.abs(square), 2 * np.sqrt(np.abs(square)) * residual_size)


def epoch_rmse(columns: Columns, rows_per_epoch: int):
    """(expected, bounds) of each epoch's rmse: the workbook's own squared errors summed
    (locally, as SUM over the range takes them) and the runs' (globally)."""
    epochs = columns.count // rows_per_epoch
    with np.errstate(all="ignore"):
        local = np.sqrt(columns.summed("err^2")[:epochs * rows_per_epoch].reshape(epochs, rows_per_epoch).sum(axis=1))
        runs = np.sqrt(columns.runs["err^2"][:epochs * rows_per_epoch].reshape(epochs, rows_per_epoch, 2).sum(axis=1))
    return columns.derived(local, rows_per_epoch + LOCAL_ULPS, runs)


def check_rmse_table(sheet, result: SheetCheck, columns: Columns, rows_per_epoch: int) -> None:
    """xlgen's table: 'epoch' and 'rmse' headers, epoch numbers below, rmse formulas beside."""
    found = find_header_row(sheet, ("epoch", "rmse"))
    if found is None:
        return
    expected, bounds = epoch_rmse(columns, rows_per_epoch)
    row, c = found
    while (row + 1, c) in sheet.constants and (row + 1, c + 1) in sheet.formulas:
        row += 1
        epoch = sheet.constants[(row, c)]
        if isinstance(epoch, float) and epoch.is_integer() and 1 <= epoch <= len(expected):
            result.expect(row, c + 1, expected[int(epoch) - 1], bound=bounds[int(epoch) - 1])


def check_summary_row(sheet, result: SheetCheck, row: int, col: dict, columns: Columns) -> None:
    """The course's row under the data: rmse under err^2 (`=SQRT(SUM(F4:F32))`), gradient
    norms under de/db, de/da (`=SQRT(SUMSQ(K4:K32))`); locally the workbook's column as
    SUM and SUMSQ over a range take it."""
    ulps = columns.count + LOCAL_ULPS
    for header, squared in (("err^2", False), ("de/db", True), ("de/da", True)):
        if (row, col[header]) not in sheet.formulas:
            continue
        with np.errstate(all="ignore"):
            local, runs = columns.summed(header), columns.runs[header]
            if squared:
                local, runs = local * local, runs * runs
            expected, bounds = columns.derived(np.sqrt(np.sum(local)), ulps, np.sqrt(np.sum(runs, axis=0)))
        result.expect(row, col[header], float(expected[0]), bound=float(bounds[0]))
