"""Checker for the course's `adam` sheet (and xlgen's, either style).

Course semantics (no named `eps`): damped averages of the gradients and their squares,
new b = b - grad_avg*lr/SQRT(sqr_avg): no bias correction, no epsilon (course_adam).
With a named `eps` (style fastai): fastai's Adam, a step count from the named
`initial_step`, and bias correction as the named `debias` says.
"""

from __future__ import annotations

import numpy as np

from xlgen.reference.optimizers import Adam, course_adam
from xlgen.verify import optimizer_sheet as base
from xlgen.verify.locate import name_target

LAYOUT = "adam"
recognise = base.recogniser(LAYOUT)


def open_adam(sheet, match, context, layout: str):
    """The sheet, its inputs and state, and the optimiser they describe, or None."""
    c0 = match[1]
    grad = base.Stat("grad_avg", ("mom", "beta"), c0 + base.STATE_OFFSET)
    sqr = base.Stat("sqr_avg", ("sqr_mom",), c0 + base.STATE_OFFSET + 2)
    found = base.open_sheet(sheet, match, context, layout, [grad, sqr])
    if found is None:
        return None
    base.read_common(context, found)
    for stat in (grad, sqr):
        base.expect_damp(context, found, stat, True)
    state = {"grad_avg": base.read_state(context, found, grad), "sqr_avg": base.read_state(context, found, sqr)}
    lr, mom, sqr_mom = found.inputs["lr"], found.inputs["grad_avg beta"], found.inputs["sqr_avg beta"]
    fastai = name_target(context.book, sheet.name, "eps") is not None
    debiased = False
    if fastai:
        eps = base.number_input(context, found, "eps", ("eps",), None)
        debiased = base.flag_input(context, found, "debias", "debias", True)
        optimizer = Adam(lr, mom=mom, sqr_mom=sqr_mom, eps=eps, debiased=debiased)
        state["step"] = np.float64(base.number_input(context, found, "initial_step", ("initial_step",), None))
    else:
        optimizer = course_adam(lr, mom, sqr_mom)
    return found, optimizer, state, debiased


def check(sheet, match, context):
    opened = open_adam(sheet, match, context, LAYOUT)
    if opened is None:
        return None
    found, optimizer, state, debiased = opened
    columns = checked_rows(found, optimizer, state, debiased, [found.inputs["lr"]] * base.epochs_in(found))
    base.expect_rows(found, columns)
    base.expect_rmse(found, columns)
    return found.result


def checked_rows(found, optimizer, state: dict, debiased: bool, lrs, local_lr=None):
    """The rows as the optimiser steps them (lrs: one per epoch), against the workbook;
    `local_lr` (one per row): the rates the workbook's rows use, for the local check."""
    return base.checked_rows(found, rows_model(found, optimizer, state, debiased, lrs),
                             {} if local_lr is None else {"lr": local_lr})


def rows_model(found, optimizer, state: dict, debiased: bool, lrs):
    """The sheet's rows as a ColumnModel, at the rates `lrs` (one per epoch)."""
    state = dict(state)
    step0 = float(state.pop("step", 0.0))
    return base.row_model(found, optimizer, state, lrs, found.inputs["grad_avg beta"], found.inputs["sqr_avg beta"],
                          debiased, step0)
