"""The course's `adam` sheet: momentum and RMSProp together.

J, K: the damped average of the gradients (as momentum, beta J1); L, M: the damped
average of their squares (beta L1); new b `=C4-J4*$D$2/SQRT(L4)`: no bias correction
and no epsilon, as the course. style = "fastai": fastai's Adam (sqr_mom 0.99, eps 1e-5,
bias correction): a step counter and debias1, debias2 columns, new b
`=C4-$D$2/P4*J4/(SQRT(L4/Q4)+eps)`; the named input `debias` (TRUE) switches the
correction off and on.
"""

from __future__ import annotations

from xlgen.formula import Name, Ref, call
from xlgen.sheets import optimizer_sheet as base
from xlgen.options import boolean, finite, fraction, non_negative, optional
from xlgen.sheets.optimizer_sheet import COMMON_CHECKS, COMMON_OPTIONS, STATE_COL, WEIGHT_BEFORE, Stat

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = 'Adam: momentum and RMSProp together ({style} style).'

OPTIONS = {**COMMON_OPTIONS, "learning_rate": 0.1, "mom": None, "sqr_mom": None, "eps": None, "debias": None,
           "initial_grad_avg": 0.0, "initial_sqr_avg": 0.0}
OPTION_CHECKS = {**COMMON_CHECKS, "mom": optional(fraction), "sqr_mom": optional(fraction),
                 "eps": optional(non_negative), "debias": optional(boolean),
                 "initial_grad_avg": finite, "initial_sqr_avg": non_negative}
DEFAULTS = {"mom": {"course": 0.9, "fastai": 0.9}, "sqr_mom": {"course": 0.9, "fastai": 0.99},
            "eps": {"course": 0.0, "fastai": 1e-5}, "debias": {"course": False, "fastai": True}}
FASTAI_ONLY = ("eps", "debias")
GRAD_COL, SQR_COL = STATE_COL, STATE_COL + 2      # J, L


def settings(spec, defaults=DEFAULTS) -> dict:
    return base.resolve(spec, defaults, fastai_only=FASTAI_ONLY)


def rows_needed(template, spec) -> int:
    settings(spec)
    return base.rows_needed(template, spec)


def course_step(layout, weight: str, row: int, lr):
    """new b = b - grad_avg*lr/SQRT(sqr_avg), both from this row."""
    return (Ref(row, WEIGHT_BEFORE[weight])
            - layout.state("grad_avg", weight, row) * lr / call("SQRT", layout.state("sqr_avg", weight, row)))


def fastai_step(layout, weight: str, row: int, lr):
    """adam_step: new b = b - lr/debias1*grad_avg/(SQRT(sqr_avg/debias2)+eps)."""
    debias1 = Ref(row, layout.extra_cols["debias1"])
    debias2 = Ref(row, layout.extra_cols["debias2"])
    return (Ref(row, WEIGHT_BEFORE[weight]) - lr / debias1 * layout.state("grad_avg", weight, row)
            / (call("SQRT", layout.state("sqr_avg", weight, row) / debias2) + Name("eps")))


def start(workbook, spec, options: dict, first_extra_col: int, more_inputs: list = ()):
    fastai = options["style"] == "fastai"
    stats = [Stat("grad_avg", "mom", GRAD_COL, True), Stat("sqr_avg", "sqr_mom", SQR_COL, True)]
    inputs = [("eps", "eps", options["eps"], "fastai's adam_step adds eps to the root of the corrected average."),
              ("debias", "debias", options["debias"],
               "TRUE: divide each average by debias(mom, 1-mom, step) = (1-mom)*(1-mom^step)/(1-mom), "
               "fastai's bias correction of averages that start at 0. FALSE: the course's Adam.")] if fastai else []
    headers = ["err^2", "step", "debias1", "debias2"] if fastai else ["err^2"]
    layout = base.start_sheet(workbook, spec, options, stats, inputs + list(more_inputs), headers, first_extra_col)
    return layout, (fastai_step if fastai else course_step), first_extra_col + len(headers) + 1


NOTE = ("Adam: J, K average the gradients (momentum), L, M their squares (RMSProp); each weight moves by "
        "its averaged gradient times learn over the root of its averaged square. ")


def build(workbook, template, spec, data) -> None:
    options = settings(spec)
    layout, step, table = start(workbook, spec, options, SQR_COL + 2)
    base.write_rows(workbook, layout, data, step, lambda epoch: base.LR)
    base.epoch_table(layout, table)
    base.finish(layout, NOTE + ("fastai: with bias correction (debias) and eps." if options["style"] == "fastai"
                                else "The course's Adam has no bias correction and no epsilon."), table, template, spec)
