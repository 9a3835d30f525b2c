"""Checker for the course's `adam_ann` sheet (and xlgen's unrolled version).

Adam as the adam checker, plus the annealing. The course's file shows one epoch with
its saved state: avg_grad2 (N33) `=SQRT(L33)+SQRT(M33)` of the saved squared averages,
gradrat (N34) `=avg_grad2/prev_grad2` with prev_grad2 saved in N3, the gradient sizes
F33, G33 `=SQRT(SUMSQ(F4:F32))/COUNT(F4:F32)` and the reciprocals K34 `=1/K3`,
L34 `=1/L3`. xlgen's sheet writes the macro's rule as a table (epoch | rmse | lr |
avg_grad2 | prev_grad2 | gradrat): locally each entry is the rule applied to the
workbook's own previous entry and last row, and each epoch's rows step with the rate
the workbook's table holds; globally the reference replays it (run_annealed) with the
limit and divisor read from the named inputs (2 and 4 without them).
"""

from __future__ import annotations

import math

import numpy as np

from xlgen.reference.optimizers import annealed_lr, gradient_size, lowest_so_far
from xlgen.verify import optimizer_sheet as base
from xlgen.verify.adam import checked_rows, open_adam, rows_model
from xlgen.verify.stepwise import LOCAL_ULPS, numeric
from xlgen.verify.locate import find_header_row, name_target

LAYOUT = "adam_ann"
recognise = base.recogniser(LAYOUT)
TABLE = ("epoch", "rmse", "lr", "avg_grad2", "prev_grad2", "gradrat")


def check(sheet, match, context):
    opened = open_adam(sheet, match, context, LAYOUT)
    if opened is None:
        return None
    found, optimizer, state, debiased = opened
    book, result = context.book, found.result
    lr = found.inputs["lr"]
    prev_cell = name_target(book, sheet.name, "prev_grad2") or (sheet.name, found.header_row, found.c0 + 13)
    prev_grad2 = context.input(result, "prev_grad2", prev_cell)
    table = find_header_row(sheet, TABLE)
    epochs = base.epochs_in(found)
    if table is None:
        columns = checked_rows(found, optimizer, state, debiased, [lr] * epochs)
    else:
        limit = base.number_input(context, found, "gradrat_limit", ("gradrat_limit",), None) \
            if name_target(book, sheet.name, "gradrat_limit") else 2.0
        divisor = base.number_input(context, found, "lr_divisor", ("lr_divisor",), None) \
            if name_target(book, sheet.name, "lr_divisor") else 4.0
        rates = annealed_rates(rows_model(found, optimizer, state, debiased, [lr] * epochs), found.rows_per_epoch,
                               epochs, lr, prev_grad2, limit, divisor)
        row, c = table
        places = {epoch: r for r, epoch in base.epoch_rows(sheet, row, c) if 1 <= epoch <= epochs}
        if sorted(places) != list(range(1, epochs + 1)):
            result.notes.append("the annealing table does not list every epoch; the reference's rates are used")
            columns = checked_rows(found, optimizer, state, debiased, rates)
        else:
            table_value = {offset: [numeric(context.value(sheet.name, places[e], c + offset))
                                    for e in range(1, epochs + 1)] for offset in range(2, 6)}
            # locally each epoch's rows step with the workbook's own rate for that epoch
            local_lr = np.repeat(np.array(table_value[2], dtype=np.float64), found.rows_per_epoch)
            columns = checked_rows(found, optimizer, state, debiased, rates, local_lr)
            expect_annealing(found, columns, table_value, places, c, lr, prev_grad2, limit, divisor)
    base.expect_rows(found, columns)
    base.expect_rmse(found, columns)
    course_summary(sheet, found, state, prev_grad2, columns)
    return result


def annealed_rates(model, per_epoch: int, epochs: int, lr: float, prev_grad2: float, limit: float,
                   divisor: float) -> np.ndarray:
    """Each epoch's learning rate as the macro's rule sets it after the epoch before:
    reference.optimizer_runs.run_annealed's rates, bit for bit, from the rows' own run on
    plain floats (`model.step`, the run the global check carries), without the reference's
    record of every row."""
    state = {name: float(value) for name, value in model.initial.items()}
    rates = []
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            rates.append(lr)
            for index in range(epoch * per_epoch, (epoch + 1) * per_epoch):
                state["lr"] = lr
                state = model.step(state, index)
            size = gradient_size(np.array([state["sqr_avg b"], state["sqr_avg a"]], dtype=np.float64))
            lr = annealed_lr(lr, np.float64(size) / np.float64(prev_grad2), limit, divisor)
            prev_grad2 = lowest_so_far(prev_grad2, size)
    return np.array(rates, dtype=np.float64)


def expect_annealing(found, columns, table_value: dict, places: dict, c: int, lr: float,
                     prev_grad2: float, limit: float, divisor: float) -> None:
    """The table (lr | avg_grad2 | prev_grad2 | gradrat per epoch): locally the macro's rule
    applied to the workbook's own previous epoch and last row; globally the reference's."""
    per_epoch, epochs = found.rows_per_epoch, len(places)
    ends = np.arange(1, epochs + 1) * per_epoch - 1
    previous = {offset: [math.nan] + values[:-1] for offset, values in table_value.items()}
    with np.errstate(all="ignore"):
        local = {
            2: [lr if e == 0 else annealed_lr(previous[2][e], previous[5][e], limit, divisor) for e in range(epochs)],
            3: np.sqrt(columns.read("sqr_avg b")[ends]) + np.sqrt(columns.read("sqr_avg a")[ends]),
            4: [prev_grad2 if e == 0 else lowest_so_far(previous[4][e], previous[3][e]) for e in range(epochs)],
            5: np.array(table_value[3]) / np.array(table_value[4]),
        }
        sizes = np.sqrt(columns.runs["sqr_avg b"][ends]) + np.sqrt(columns.runs["sqr_avg a"][ends])
        # the rule replayed on each run's sizes (the plain one is the reference's annealing)
        rates, prevs, ratios = (np.empty((epochs, 2)) for _ in range(3))
        for copy in range(2):
            rate, prev = lr, prev_grad2
            for e in range(epochs):
                rates[e, copy], prevs[e, copy] = rate, prev
                ratios[e, copy] = sizes[e, copy] / prev
                rate = annealed_lr(rate, ratios[e, copy], limit, divisor)
                prev = lowest_so_far(prev, sizes[e, copy])
        runs = {2: rates, 3: sizes, 4: prevs, 5: ratios}
    for offset in range(2, 6):
        expected, bounds = columns.derived(np.asarray(local[offset], dtype=np.float64), LOCAL_ULPS, runs[offset])
        for e in range(epochs):
            if (places[e + 1], c + offset) in found.sheet.formulas:
                found.result.expect(places[e + 1], c + offset, float(expected[e]), bound=float(bounds[e]))


def course_summary(sheet, found, state: dict, prev_grad2: float, columns) -> None:
    """The course's cells under the rows, where they are formulas."""
    result, col, below = found.result, found.col, found.last + 1
    count = len(found.rows)
    with np.errstate(all="ignore"):
        size = np.float64(gradient_size(state["sqr_avg"]))
        norms = {}
        for weight in ("b", "a"):
            # F33 `=SQRT(SUMSQ(F4:F32))/COUNT(F4:F32)`: locally the column as SUMSQ and COUNT take it
            key = f"de/d{weight}"
            local, runs = columns.summed(key), columns.runs[key]
            counted = np.float64(np.count_nonzero(columns.counted(key)))
            norms[weight] = columns.derived(np.sqrt(np.sum(local * local)) / counted, count + LOCAL_ULPS,
                                            np.sqrt(np.sum(runs * runs, axis=0)) / count)
        expected = {
            (below, found.c0 + 13): size,                                  # N33 avg_grad2
            (below + 1, found.c0 + 13): size / np.float64(prev_grad2),     # N34 gradrat
            (below + 1, found.c0 + 10): 1 / state["grad_avg"][1],          # K34 =1/K3
            (below + 1, found.c0 + 11): 1 / state["sqr_avg"][0],           # L34 =1/L3
        }
    for weight in ("b", "a"):
        if (below, col[f"de/d{weight}"]) in sheet.formulas:
            value, bound = norms[weight]
            result.expect(below, col[f"de/d{weight}"], float(value[0]), bound=float(bound[0]))
    for (r, c), value in expected.items():
        if (r, c) in sheet.formulas:
            result.expect(r, c, value)
