"""The course's `basic` sheet: SGD on y = a*x + b, one row per data point.

Columns and headers are the course's (x .. new b); the epochs its macro ran are
unrolled here as rows, each epoch starting from the previous epoch's last new a, new b.
Beside them: rmse per epoch and the chart "Error by epoch".
"""

from __future__ import annotations

from xlgen.formula import Group, Here, Name, Range, Ref, RowTemplate, call
from xlgen.sheets.plan import Chart, Series, WorkbookPlan

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    "The course's SGD on y = a*x + b, one row per data point, {epochs} epochs "
    'unrolled as rows; rmse per epoch and its chart beside the rows.')

HEADERS = ("x", "y", "intercept", "slope", "y_pred", "err^2", "errb1", "est de/db",
           "erra1", "est de/da", "de/db", "de/da", "new a", "new b")
(X, Y, INTERCEPT, SLOPE, PRED, ERR2, ERRB1, EST_DEDB, ERRA1, EST_DEDA, DEDB, DEDA,
 NEW_A, NEW_B) = range(1, 15)
EPOCH = 15
HEADER_ROW = 3
FIRST_ROW = 4
TABLE_COL = 17            # Q: the rmse-per-epoch table
CHART_COL = 20            # T

OPTIONS = {"epochs": 5, "learning_rate": 0.0001, "derivative": "analytic",
           "initial": {"a": 1.0, "b": 1.0}}
FINITE_STEP = 0.01        # the course's and the forum's step, a literal in the formulas
OPTION_CHECKS = {}


def rows_needed(template, spec) -> int:
    return FIRST_ROW - 1 + len(template.data["x"]) * spec.options["epochs"]


def row_shapes() -> dict:
    """The course's formulas for one row (row 5 on), as templates: every row of a
    column is the same formula but for its row numbers."""
    x, y, b, a = Here(X), Here(Y), Here(INTERCEPT), Here(SLOPE)
    pred, err2, errb1, erra1 = Here(PRED), Here(ERR2), Here(ERRB1), Here(ERRA1)
    dedb, deda = Here(DEDB), Here(DEDA)
    learning_rate = Name("learning_rate")
    use_finite = Name("derivative").eq("finite")
    step = FINITE_STEP
    shapes = {
        INTERCEPT: Here(NEW_B, -1),
        SLOPE: Here(NEW_A, -1),
        PRED: b + a * x,
        ERR2: (y - pred) ** 2,
        ERRB1: Group(Group(Group(b + step) + x * a) - y) ** 2,
        EST_DEDB: (errb1 - err2) / step,
        ERRA1: Group(Group(Group(a + step) * x + b) - y) ** 2,
        EST_DEDA: (erra1 - err2) / step,
        DEDB: 2 * (pred - y),
        DEDA: dedb * x,
        NEW_A: a - call("IF", use_finite, Here(EST_DEDA), deda) * learning_rate,
        NEW_B: b - call("IF", use_finite, Here(EST_DEDB), dedb) * learning_rate,
    }
    return {col: RowTemplate(expr) for col, expr in shapes.items()}


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    sheet = workbook.add_sheet(spec.name)
    initial = options["initial"]
    if set(initial) != {"a", "b"}:
        from xlgen.errors import TemplateError
        raise TemplateError(f"sheets.{spec.name}.initial must give a and b for the linear model")
    sheet.put(1, 2, "intercept", "label")
    sheet.name_cell("initial_b", 1, 3, initial["b"])
    sheet.put(1, 5, "learn", "label")
    sheet.name_cell("learning_rate", 1, 6, options["learning_rate"])
    sheet.put(1, 9, "de/db=2(ax+b-y)", "label")
    sheet.put(2, 2, "slope", "label")
    sheet.name_cell("initial_a", 2, 3, initial["a"])
    sheet.put(2, 8, "e=(ax+b-y)^2", "label")
    sheet.put(2, 9, "de/da=x*2(ax+b-y)", "label")
    sheet.put(1, 11, "derivative", "label")
    sheet.name_cell("derivative", 1, 12, options["derivative"])
    sheet.comments[(1, 12)] = ("analytic: update with de/db, de/da (the course). finite: update with the "
                               "estimates est de/db, est de/da from a 0.01 step (the forum). Type either.")
    for col, header in enumerate(HEADERS, start=1):
        sheet.put(HEADER_ROW, col, header, "header")
    sheet.put(HEADER_ROW, EPOCH, "epoch", "header")

    rows_per_epoch = data.count
    shapes = row_shapes()
    first_row = {INTERCEPT: RowTemplate(Name("initial_b")), SLOPE: RowTemplate(Name("initial_a"))}
    styles = {col: ("weight" if col in (INTERCEPT, SLOPE, NEW_A, NEW_B) else "number",) for col in shapes}
    for epoch in range(options["epochs"]):
        for index in range(rows_per_epoch):
            r = FIRST_ROW + epoch * rows_per_epoch + index
            edge = ("epoch_start",) if index == 0 and epoch > 0 else ()
            sheet.put(r, X, data.x(index), "number", *edge)
            sheet.put(r, Y, data.y(index), "number", *edge)
            for col, shape in shapes.items():
                if r == FIRST_ROW and col in first_row:
                    shape = first_row[col]
                sheet.put(r, col, shape.at(r), *styles[col], *edge)
            sheet.put(r, EPOCH, epoch + 1, "count", *edge)

    sheet.put(HEADER_ROW, TABLE_COL, "epoch", "header")
    sheet.put(HEADER_ROW, TABLE_COL + 1, "rmse", "header")
    for epoch in range(options["epochs"]):
        first = FIRST_ROW + epoch * rows_per_epoch
        last = first + rows_per_epoch - 1
        sheet.put(FIRST_ROW + epoch, TABLE_COL, epoch + 1, "count")
        sheet.put(FIRST_ROW + epoch, TABLE_COL + 1, call("SQRT", call("SUM", Range(Ref(first, ERR2), Ref(last, ERR2)))), "number")
    last_epoch_row = FIRST_ROW + options["epochs"] - 1
    sheet.put(1, TABLE_COL, "Each row is one SGD step on one data point, using the derivatives chosen in "
                            "'derivative' (L1). Row 4 starts "
                            "from initial_a and initial_b; each epoch starts from the last row's new a, new b. "
                            "Change learn (learning_rate) or the initial weights and watch rmse per epoch.", "note")
    sheet.charts.append(Chart(
        "line", "Error by epoch",
        [Series("rmse", Range(Ref(FIRST_ROW, TABLE_COL + 1, spec.name, True, True), Ref(last_epoch_row, TABLE_COL + 1, None, True, True)),
                Range(Ref(FIRST_ROW, TABLE_COL, spec.name, True, True), Ref(last_epoch_row, TABLE_COL, None, True, True)))],
        anchor=(HEADER_ROW, CHART_COL), x_title="epoch", y_title="rmse"))
    sheet.widths.update({col: 10 for col in range(1, EPOCH + 1)})
    sheet.widths.update({X: 6, Y: 6, EPOCH: 6, TABLE_COL: 6, TABLE_COL + 1: 10})
    sheet.freeze = (HEADER_ROW, 0)
