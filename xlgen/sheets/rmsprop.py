"""The course's `rmsprop` sheet: each weight's step divided by the root of a running
average of its squared gradients.

J and K keep the average of de/db^2 and de/da^2, J4 `=J3*$J$1+$K$1*F4^2`; the course's
step divides by the *previous* row's average with no epsilon, new b `=C4-F4*$D$2/SQRT(J3)`,
which is why its reset starts the averages at 10000 rather than 0. style = "fastai":
fastai's RMSProp (sqr_mom 0.99, the step after the update, + eps 1e-8, averages from 0):
new b `=C4-$D$2*F4/(SQRT(J4)+eps)`.
"""

from __future__ import annotations

from xlgen.formula import Name, Ref, call
from xlgen.sheets import optimizer_sheet as base
from xlgen.options import fraction, non_negative, optional
from xlgen.sheets.optimizer_sheet import COMMON_CHECKS, COMMON_OPTIONS, GRADIENT, STATE_COL, WEIGHT_BEFORE, Stat

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'RMSProp: each step divided by the root of a running average of squared '
    'derivatives ({style} style).')

OPTIONS = {**COMMON_OPTIONS, "sqr_mom": None, "eps": None, "initial_sqr_avg": None}
OPTION_CHECKS = {**COMMON_CHECKS, "sqr_mom": optional(fraction), "eps": optional(non_negative),
                 "initial_sqr_avg": optional(non_negative)}
DEFAULTS = {"sqr_mom": {"course": 0.9, "fastai": 0.99}, "eps": {"course": 0.0, "fastai": 1e-8},
            "initial_sqr_avg": {"course": 10000.0, "fastai": 0.0}}


def settings(spec) -> dict:
    return base.resolve(spec, DEFAULTS, fastai_only=("eps",))


def rows_needed(template, spec) -> int:
    settings(spec)
    return base.rows_needed(template, spec)


def course_step(layout, weight: str, row: int, lr):
    """new b = b - de/db*lr/SQRT(previous row's average): no epsilon."""
    grad = Ref(row, GRADIENT[weight])
    return Ref(row, WEIGHT_BEFORE[weight]) - grad * lr / call("SQRT", layout.state("sqr_avg", weight, row - 1))


def fastai_step(layout, weight: str, row: int, lr):
    """rms_prop_step: new b = b - lr*de/db/(SQRT(this row's average)+eps)."""
    grad = Ref(row, GRADIENT[weight])
    return Ref(row, WEIGHT_BEFORE[weight]) - lr * grad / (call("SQRT", layout.state("sqr_avg", weight, row)) + Name("eps"))


def build(workbook, template, spec, data) -> None:
    options = settings(spec)
    fastai = options["style"] == "fastai"
    stats = [Stat("sqr_avg", "sqr_mom", STATE_COL, True)]
    inputs = [("eps", "eps", options["eps"], "fastai's rms_prop_step adds eps to the root of the average "
                                             "so a zero average cannot divide by zero.")] if fastai else []
    layout = base.start_sheet(workbook, spec, options, stats, inputs, ["err^2"], STATE_COL + 2)
    base.write_rows(workbook, layout, data, fastai_step if fastai else course_step, lambda epoch: base.LR)
    table = STATE_COL + 4
    base.epoch_table(layout, table)
    base.finish(layout, (
        "RMSProp: J, K keep a running average of the squared gradients; each weight's step is its gradient "
        "times learn divided by the root of that average, so big gradients take small steps. "
        + ("fastai: the step uses this row's average plus eps." if fastai else
           "The course divides by the previous row's average (row 3 for the first row), with no epsilon.")),
        table, template, spec)
