"""Checker for the course's `adam_ann` sheet (and xlgen's unrolled version).

Adam as the adam checker, plus the annealing. The course's file shows one epoch with
its saved state: avg_grad2 (N33) `=SQRT(L33)+SQRT(M33)` of the saved squared averages,
gradrat (N34) `=avg_grad2/prev_grad2` with prev_grad2 saved in N3, the gradient sizes
F33, G33 `=SQRT(SUMSQ(F4:F32))/COUNT(F4:F32)` and the reciprocals K34 `=1/K3`,
L34 `=1/L3`. xlgen's sheet writes the macro's rule as a table (epoch | rmse | lr |
avg_grad2 | prev_grad2 | gradrat): the reference replays it (run_annealed) with the
limit and divisor read from the named inputs (2 and 4 without them).
"""

from __future__ import annotations

import numpy as np

from xlgen.reference.optimizer_runs import run, run_annealed
from xlgen.reference.optimizers import gradient_size
from xlgen.verify import optimizer_sheet as base
from xlgen.verify.adam import open_adam
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
    if table is not None:
        limit = base.number_input(context, found, "gradrat_limit", ("gradrat_limit",), None) \
            if name_target(book, sheet.name, "gradrat_limit") else 2.0
        divisor = base.number_input(context, found, "lr_divisor", ("lr_divisor",), None) \
            if name_target(book, sheet.name, "lr_divisor") else 4.0
        trace, annealing = run_annealed(found.xs, found.ys, optimizer, found.inputs, state, epochs, lr,
                                        prev_grad2, limit, divisor)
        row, c = table
        for r, epoch in base.epoch_rows(sheet, row, c):
            if 1 <= epoch <= epochs:
                for offset, values in enumerate((annealing.lr, annealing.avg_grad2, annealing.prev_grad2,
                                                 annealing.gradrat), start=2):
                    if (r, c + offset) in sheet.formulas:
                        result.expect(r, c + offset, values[epoch - 1])
    else:
        trace = run(found.xs, found.ys, optimizer, found.inputs, state, epochs, lr)
    base.expect_rows(found, trace, found.inputs["grad_avg beta"], found.inputs["sqr_avg beta"], debiased)
    base.expect_rmse(found, trace)
    course_summary(sheet, found, state, prev_grad2, trace)
    return result


def course_summary(sheet, found, state: dict, prev_grad2: float, trace) -> None:
    """The course's cells under the rows, where they are formulas."""
    result, col, below = found.result, found.col, found.last + 1
    with np.errstate(all="ignore"):
        size = np.float64(gradient_size(state["sqr_avg"]))
        expected = {
            (below, col["de/db"]): np.sqrt(np.sum(trace.gradient["b"] ** 2)) / len(found.rows),
            (below, col["de/da"]): np.sqrt(np.sum(trace.gradient["a"] ** 2)) / len(found.rows),
            (below, found.c0 + 13): size,                                  # N33 avg_grad2
            (below + 1, found.c0 + 13): size / np.float64(prev_grad2),     # N34 gradrat
            (below + 1, found.c0 + 10): 1 / state["grad_avg"][1],          # K34 =1/K3
            (below + 1, found.c0 + 11): 1 / state["sqr_avg"][0],           # L34 =1/L3
        }
    for (r, c), value in expected.items():
        if (r, c) in sheet.formulas:
            result.expect(r, c, value)
