"""The course's `adam_ann` sheet: Adam with the learning rate annealed once per epoch.

The course's macro, after each epoch, looked at avg_grad2 `=SQRT(L33)+SQRT(M33)` (the
size of the squared-gradient averages it had just saved) and gradrat
`=avg_grad2/prev_grad2`: when gradrat > 2 it divided lr by 4, and when avg_grad2 fell
below prev_grad2 (N3) it kept it there. Here that rule is a table of formulas, one row
per epoch (lr, avg_grad2, prev_grad2, gradrat), and each epoch's rows step with that
epoch's lr. The limit 2 and the divisor 4 are named inputs.
"""

from __future__ import annotations

from xlgen.formula import Name, Ref, call
from xlgen.sheets import adam, optimizer_sheet as base
from xlgen.options import finite, positive
from xlgen.sheets.optimizer_sheet import FIRST_ROW, STATE_ROW

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'Adam with annealing: after each epoch the learning rate is divided by '
    "{lr_divisor:g} when the gradient ratio passes {gradrat_limit:g} (the course's "
    'macro, as formulas).')

OPTIONS = {**adam.OPTIONS, "learning_rate": 1.0, "prev_grad2": 3000.0, "gradrat_limit": 2.0, "lr_divisor": 4.0}
OPTION_CHECKS = {**adam.OPTION_CHECKS, "prev_grad2": positive, "gradrat_limit": finite, "lr_divisor": positive}
DEFAULTS = {**adam.DEFAULTS, "sqr_mom": {"course": 0.95, "fastai": 0.99}}
PREV_COL = 14                     # N: the course's N3 holds prev_grad2
TABLE_HEADERS = ("lr", "avg_grad2", "prev_grad2", "gradrat")


def rows_needed(template, spec) -> int:
    adam.settings(spec, DEFAULTS)
    return base.rows_needed(template, spec)


def build(workbook, template, spec, data) -> None:
    options = adam.settings(spec, DEFAULTS)
    more = [("gradrat >", "gradrat_limit", options["gradrat_limit"],
             "After each epoch: when gradrat (avg_grad2/prev_grad2) passes this, the next epoch's lr is divided."),
            ("lr ÷", "lr_divisor", options["lr_divisor"], "What lr is divided by when gradrat passes the limit.")]
    layout, step, table = adam.start(workbook, spec, options, PREV_COL + 1, more)
    sheet = layout.sheet
    sheet.put(2, PREV_COL, "prev_grad2", "label")
    sheet.name_cell("prev_grad2", STATE_ROW, PREV_COL, options["prev_grad2"])
    lr_col, size_col, prev_col, ratio_col = range(table + 2, table + 6)

    def lr_for_epoch(epoch: int):
        return base.LR if epoch == 0 else Ref(FIRST_ROW + epoch, lr_col, fixed_row=True, fixed_col=True)

    base.write_rows(workbook, layout, data, step, lr_for_epoch)
    base.epoch_table(layout, table, TABLE_HEADERS)
    sqr = layout.stat("sqr_avg")
    for epoch in range(options["epochs"]):
        r = FIRST_ROW + epoch
        last = base.last_row(layout, epoch)
        if epoch == 0:
            sheet.put(r, lr_col, Ref(2, 4), "number")
            sheet.put(r, prev_col, Ref(STATE_ROW, PREV_COL), "number")
        else:
            ratio, lr, size, prev = Ref(r - 1, ratio_col), Ref(r - 1, lr_col), Ref(r - 1, size_col), Ref(r - 1, prev_col)
            sheet.put(r, lr_col, call("IF", ratio.gt(Name("gradrat_limit")), lr / Name("lr_divisor"), lr), "number")
            sheet.put(r, prev_col, call("IF", size.lt(prev), size, prev), "number")
        sheet.put(r, size_col, call("SQRT", Ref(last, sqr.column("b"))) + call("SQRT", Ref(last, sqr.column("a"))),
                  "number")
        sheet.put(r, ratio_col, Ref(r, size_col) / Ref(r, prev_col), "number")
    base.finish(layout, (
        "Adam with annealing: after each epoch avg_grad2 = SQRT(last sqr_avg b)+SQRT(last sqr_avg a); "
        "gradrat = avg_grad2/prev_grad2. When gradrat passes the limit (E2 or G2) the next epoch's lr is divided "
        "(the course's macro divided by 4 above 2); prev_grad2 (N3 to start) follows avg_grad2 down. "
        "Rows use their epoch's lr from the table."), table, template, spec)
