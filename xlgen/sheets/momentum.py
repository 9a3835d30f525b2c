"""The course's `momentum` sheet: SGD with momentum, one row per data point.

J and K keep the running average of de/db and de/da, J4 `=J3*$J$1+$K$1*F4` (beta 0.9
in J1, 1-beta in K1: the course damps the average), and the weights move by that average:
new b `=C4-J4*$D$2`. style = "fastai": fastai's SGD with mom, whose average_grad does
not damp by default (K1 `=IF(dampening,1-J1,1)` with the named input `dampening`
FALSE). use_lambda = true writes the averages as AVERAGE_GRAD(F4,$J$1,dampening,J3).
"""

from __future__ import annotations

from xlgen.formula import Name, Ref
from xlgen.sheets import optimizer_sheet as base
from xlgen.options import boolean, finite, fraction, optional
from xlgen.sheets.optimizer_sheet import COMMON_CHECKS, COMMON_OPTIONS, STATE_COL, WEIGHT_BEFORE, Stat

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'SGD with momentum: a and b move by a running average of their derivatives '
    '({style} style).')

OPTIONS = {**COMMON_OPTIONS, "mom": None, "dampening": None, "initial_grad_avg": 0.0}
OPTION_CHECKS = {**COMMON_CHECKS, "mom": optional(fraction), "dampening": optional(boolean),
                 "initial_grad_avg": finite}
DEFAULTS = {"mom": {"course": 0.9, "fastai": 0.9}, "dampening": {"course": True, "fastai": False}}


def settings(spec) -> dict:
    return base.resolve(spec, DEFAULTS, fastai_only=("dampening",))


def rows_needed(template, spec) -> int:
    settings(spec)
    return base.rows_needed(template, spec)


def step(layout, weight: str, row: int, lr):
    """momentum_step: new weight = weight - grad_avg*lr."""
    return Ref(row, WEIGHT_BEFORE[weight]) - layout.state("grad_avg", weight, row) * lr


def build(workbook, template, spec, data) -> None:
    options = settings(spec)
    fastai = options["style"] == "fastai"
    stats = [Stat("grad_avg", "mom", STATE_COL, Name("dampening") if fastai else True)]
    inputs = [("dampening", "dampening", options["dampening"],
               "TRUE: average_grad damps (grad_avg*mom + (1-mom)*grad, an exponential moving average). "
               "FALSE (fastai's SGD default): grad_avg*mom + grad.")] if fastai else []
    layout = base.start_sheet(workbook, spec, options, stats, inputs, ["err^2"], STATE_COL + 2)
    base.write_rows(workbook, layout, data, step, lambda epoch: base.LR)
    table = STATE_COL + 4
    base.epoch_table(layout, table)
    base.finish(layout, (
        "Momentum: each row updates the running average of the gradients (J, K) and moves b and a by "
        "that average times learn (D2). Row 3 holds the averages entering the first row; each epoch "
        "starts from the row above it. Change beta (J1), learn or the start values and watch rmse per epoch."),
        table, template, spec)
