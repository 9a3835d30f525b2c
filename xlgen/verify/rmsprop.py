"""Checker for the course's `rmsprop` sheet (and xlgen's, either style).

Course semantics (no named `eps`): the step divides by the root of the *previous* row's
squared average, with no epsilon, then the average is updated (course_rmsprop: fastai's
rms_prop_step before average_sqr_grad). With a named `eps` (style fastai): fastai's
RMSProp, the average first, then the step with eps.
"""

from __future__ import annotations

from xlgen.reference.optimizers import RMSProp, course_rmsprop
from xlgen.verify import optimizer_sheet as base
from xlgen.verify.locate import name_target

LAYOUT = "rmsprop"
recognise = base.recogniser(LAYOUT)


def check(sheet, match, context):
    c0 = match[1]
    stat = base.Stat("sqr_avg", ("sqr_mom", "beta"), c0 + base.STATE_OFFSET)
    found = base.open_sheet(sheet, match, context, LAYOUT, [stat])
    if found is None:
        return None
    base.read_common(context, found)
    base.expect_damp(context, found, stat, True)
    state = {"sqr_avg": base.read_state(context, found, stat)}
    lr, sqr_mom = found.inputs["lr"], found.inputs["sqr_avg beta"]
    if name_target(context.book, sheet.name, "eps"):
        eps = base.number_input(context, found, "eps", ("eps",), None)
        optimizer = RMSProp(lr, sqr_mom=sqr_mom, eps=eps)
    else:
        optimizer = course_rmsprop(lr, sqr_mom)
    columns = base.checked_rows(found, base.row_model(found, optimizer, state, [lr] * base.epochs_in(found),
                                                      **base.betas(found)))
    base.expect_rows(found, columns)
    base.expect_rmse(found, columns)
    return found.result
