"""The smoothing demo: average_grad as an exponential moving average of sin(x).

fastai's lesson on momentum smooths a curve with beta 0.9 from a start of 0: each
point is `AVERAGE_GRAD(sin(x), beta, TRUE, previous)` = previous*beta + (1-beta)*sin(x).
The average starts at 0 and lags behind the curve; "debiased" divides it by
1-beta^n (fastai's debias with damp = 1-beta), which removes the pull towards the start
value. With use_lambda = false the same cells use plain formulas.
"""

from __future__ import annotations

from xlgen.formula import Name, Range, Ref, call
from xlgen.sheets import average_grad as lambdas
from xlgen.options import boolean, finite, fraction, positive, positive_integer
from xlgen.sheets.plan import Chart, Series, WorkbookPlan

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = 'sin(x) smoothed by average_grad with beta {beta:g}, and the debiased average beside it.'

HEADERS = ("n", "x", "sin(x)", "smoothed", "debiased")
N, X, SIN, SMOOTHED, DEBIASED = range(1, 6)
HEADER_ROW = 5
FIRST_ROW = 6

OPTIONS = {"use_lambda": True, "beta": 0.9, "start": 0.0, "points": 100, "x_step": 0.1}
OPTION_CHECKS = {"use_lambda": boolean, "beta": fraction, "start": finite, "points": positive_integer,
                 "x_step": positive}


def rows_needed(template, spec) -> int:
    return FIRST_ROW - 1 + spec.options["points"]


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    sheet = workbook.add_sheet(spec.name)
    sheet.put(1, 1, "beta", "label")
    sheet.name_cell("beta", 1, 2, options["beta"])
    sheet.put(2, 1, "start", "label")
    sheet.name_cell("start", 2, 2, options["start"])
    sheet.put(3, 1, "x step", "label")
    sheet.name_cell("x_step", 3, 2, options["x_step"])
    how = "AVERAGE_GRAD(sin(x), beta, TRUE, previous)" if options["use_lambda"] else \
        "previous*beta + (1-beta)*sin(x), the plain twin of AVERAGE_GRAD(sin(x), beta, TRUE, previous)"
    note_row = 1
    if options["use_lambda"]:
        lambdas.banner(sheet, template, spec, (1, 4), (2, 4))
        note_row = 3
    sheet.put(note_row, 4, f"smoothed = {how}: an exponential moving average starting from 'start'. It lags behind "
                    "sin(x) and, from 0, starts too low; debiased = smoothed/(1-beta^n) corrects the start "
                    "(fastai's debias). Try beta 0.5 or 0.99.", "note")
    for col, header in enumerate(HEADERS, start=1):
        sheet.put(HEADER_ROW, col, header, "header")
    beta, x_step = Name("beta"), Name("x_step")
    for index in range(options["points"]):
        r = FIRST_ROW + index
        previous = Name("start") if index == 0 else Ref(r - 1, SMOOTHED)
        sheet.put(r, N, 1 if index == 0 else Ref(r - 1, N) + 1, "count")
        sheet.put(r, X, (Ref(r, N) - 1) * x_step, "number")
        sheet.put(r, SIN, call("SIN", Ref(r, X)), "number")
        sheet.put(r, SMOOTHED, lambdas.average_grad(workbook, options["use_lambda"], Ref(r, SIN), beta, True, previous),
                  "number")
        sheet.put(r, DEBIASED, Ref(r, SMOOTHED) / (1 - beta ** Ref(r, N)), "number")
    # LibreOffice cannot compute LAMBDA cells, so a LAMBDA sheet's chart draws its plain
    # twin's columns (same layout, same cells) where the template has one
    drawn, beta_shown, title_tail = spec, options["beta"], ""
    twin = lambdas.plain_twin(template, spec) if options["use_lambda"] else None
    if twin is not None and twin.options["points"] == options["points"]:
        drawn, beta_shown = twin, twin.options["beta"]
        title_tail = f" (from sheet {twin.name}, which any spreadsheet computes)"
    last = FIRST_ROW + options["points"] - 1

    def column(col):
        return Range(Ref(FIRST_ROW, col, drawn.name, True, True), Ref(last, col, None, True, True))

    sheet.charts.append(Chart(
        "line", f"sin(x) smoothed with beta {beta_shown:g}{title_tail}",
        # debiased meets smoothed once 1-beta^n is near 1: a wide see-through line under a dashed one
        [Series("sin(x)", column(SIN), column(X)),
         Series("smoothed", column(SMOOTHED), column(X), width=5, transparency=55),
         Series("debiased", column(DEBIASED), column(X), dash="dash", width=1.5)],
        anchor=(3, 7), x_title="x", y_title="value", size=(720, 360)))
    sheet.widths.update({N: 6, X: 8, SIN: 10, SMOOTHED: 10, DEBIASED: 10})
    sheet.freeze = (HEADER_ROW, 0)
