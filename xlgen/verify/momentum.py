"""Checker for the course's `momentum` sheet (and xlgen's, either style).

The reference is fastai's SGD with momentum built from its pieces: average_grad (damped
as the course's K1 `=1-J1`, or as the named input `dampening` says) then
momentum_step. Inputs and state come from the sheet (see optimizer_sheet).
"""

from __future__ import annotations

from xlgen.reference.optimizers import SGD
from xlgen.verify import optimizer_sheet as base

LAYOUT = "momentum"
recognise = base.recogniser(LAYOUT)


def check(sheet, match, context):
    c0 = match[1]
    stat = base.Stat("grad_avg", ("mom", "beta"), c0 + base.STATE_OFFSET)
    found = base.open_sheet(sheet, match, context, LAYOUT, [stat])
    if found is None:
        return None
    base.read_common(context, found)
    dampening = base.flag_input(context, found, "dampening", "dampening", True)
    base.expect_damp(context, found, stat, dampening)
    state = {"grad_avg": base.read_state(context, found, stat)}
    lr, mom = found.inputs["lr"], found.inputs["grad_avg beta"]
    optimizer = SGD(lr, mom=mom, dampening=dampening)
    columns = base.checked_rows(found, base.row_model(found, optimizer, state, [lr] * base.epochs_in(found),
                                                      **base.betas(found)))
    base.expect_rows(found, columns)
    base.expect_rmse(found, columns)
    return found.result
