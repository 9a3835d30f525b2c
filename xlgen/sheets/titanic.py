"""The course's Titanic `linear` sheet, trained by gradient descent instead of Solver.

Left: the course's layout, column for column (passengers A:H, features I:P, the
weights in R4:AA4, SUMPRODUCT predictions and squared errors in AC:AD), with the
weights now the last gradient-descent step's. Right: the descent itself, one row per
step: the weights, the loss and the gradient of the mean squared error at them, and the
next row's weights = these - learning_rate * gradient. `learning_rate` and `steps` are
named inputs (rows after `steps` keep their weights); the chart shows loss by step.

Full-batch gradient of the mean squared error of a linear model:
2/n * (X^T X w - X^T y). X^T X (10 x 10) and X^T y are computed once from the
passengers with SUMPRODUCT, so each step is ten SUMPRODUCTs of ten numbers instead of
a pass over 712 passengers, and its loss is w.g/2 + (y^T y - w.X^T y)/n.
"""

from __future__ import annotations

from xlgen.errors import TemplateError
from xlgen.formula import Here, Name, Range, Ref, RowTemplate, Text, call
from xlgen.reference.titanic import FEATURES, RAW_COLUMNS, passengers
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.options import number_list, positive_integer

USES_DATA = False
HEADER_ROW = 3
FIRST_ROW = 4
SURVIVED, EMBARKED, PCLASS, SEX, AGE, FARE, SIBSP, PARCH = range(1, 9)
FEATURE_COL = {name: SIBSP + i for i, name in enumerate(FEATURES)}   # G..P
PARAM_COL = 18                                   # R..AA: the weights, as in the course
PARAM_HEADERS = FEATURES[:-1] + ("Const",)
LINEAR_COL, LOSS_COL = 29, 30                    # AC, AD
TRAIN_COL = 33                                   # AG: the descent
GRAM_TOP = 4                                     # X^T X rows 4..13, X^T y row 14, y^T y and n row 15
STEP_HEADER_ROW = 17

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    "The course's linear model of survival, trained by {steps} full-batch "
    'gradient-descent steps (one row each) instead of Solver; the total loss beside '
    'its label.')
# the about sheet's numbers to look for
ABOUT_NUMBERS = (("Total loss:", None),)

OPTIONS = {"learning_rate": 0.1, "steps": 100, "initial_weights": [0.0] * len(FEATURES)}


def weight_list(key, value):
    weights = number_list(key, value)
    if len(weights) != len(FEATURES):
        raise TemplateError(f"{key} must list {len(FEATURES)} weights ({', '.join(FEATURES)}), got {len(weights)}")
    return weights


OPTION_CHECKS = {"steps": positive_integer, "initial_weights": weight_list}


def rows_needed(template, spec) -> int:
    return max(FIRST_ROW + len(passengers()), STEP_HEADER_ROW + 1 + spec.options["steps"])


def step_columns() -> dict:
    """Columns of the step table: step, loss, ten weights, ten gradients."""
    step, loss = TRAIN_COL, TRAIN_COL + 1
    weights = {name: TRAIN_COL + 2 + i for i, name in enumerate(FEATURES)}
    gradient = {name: TRAIN_COL + 2 + len(FEATURES) + i for i, name in enumerate(FEATURES)}
    return {"step": step, "loss": loss, "weights": weights, "gradient": gradient}


def passenger_column(col, sheet_name=None, count=None) -> Range:
    last = FIRST_ROW + (count if count is not None else len(passengers())) - 1
    return Range(Ref(FIRST_ROW, col, sheet_name, True, True), Ref(last, col, None, True, True))


def put_passengers(sheet, model_shapes: dict, model_cells: dict) -> int:
    """The course's left half: raw passenger columns A:H, the Max row, the feature
    formulas I:O and the Ones column P; `model_shapes` and then, after the Ones column,
    `model_cells` (each col -> Expr with Here) add each row's model columns. Returns the
    last row."""
    rows = passengers()
    last = FIRST_ROW + len(rows) - 1
    sheet.put(1, 1, "Data", "label")
    sheet.put(1, 4, "Max:", "label")
    sheet.put(1, AGE, call("MAX", passenger_column(AGE)), "number")
    sheet.put(1, FARE, call("MAX", passenger_column(FARE)), "number")
    for col, header in enumerate(RAW_COLUMNS + FEATURES[2:], start=1):  # SibSp, Parch are both
        sheet.put(HEADER_ROW, col, header, "header")
    shapes = {
        FEATURE_COL["Age_N"]: Here(AGE) / Ref(1, AGE, fixed_row=True, fixed_col=True),
        FEATURE_COL["log_Fare"]: call("LOG10", Here(FARE) + 1),
        FEATURE_COL["Pclass_1"]: call("IF", Here(PCLASS).eq(1), 1, 0),
        FEATURE_COL["Pclass_2"]: call("IF", Here(PCLASS).eq(2), 1, 0),
        FEATURE_COL["Embark_S"]: call("IF", Here(EMBARKED).eq(Text("S")), 1, 0),
        FEATURE_COL["Embark_C"]: call("IF", Here(EMBARKED).eq(Text("C")), 1, 0),
        FEATURE_COL["Male"]: call("IF", Here(SEX).eq(Text("male")), 1, 0),
    }
    shapes.update(model_shapes)
    # a column at a time (the writer orders the cells itself)
    row_numbers = range(FIRST_ROW, last + 1)
    put_column = sheet.put_column
    for col, values in enumerate(zip(*rows), start=1):
        put_column(row_numbers, col, values)
    for col, expr in shapes.items():
        put_column(row_numbers, col, RowTemplate(expr).column(row_numbers), "number")
    put_column(row_numbers, FEATURE_COL["Ones"], [1] * len(rows))
    for col, expr in model_cells.items():
        put_column(row_numbers, col, RowTemplate(expr).column(row_numbers), "number")
    return last


def passenger_features() -> Range:
    """A passenger's ten features, G:P of its row (a row shape, for put_passengers)."""
    return Range(Here(SIBSP), Here(FEATURE_COL["Ones"]))


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    sheet = workbook.add_sheet(spec.name)
    column = passenger_column
    params = Range(Ref(FIRST_ROW, PARAM_COL, fixed_row=True, fixed_col=True),
                   Ref(FIRST_ROW, PARAM_COL + len(FEATURES) - 1, fixed_row=True, fixed_col=True))
    put_passengers(sheet, {LOSS_COL: (Here(LINEAR_COL) - Here(SURVIVED)) ** 2},
                   {LINEAR_COL: call("SUMPRODUCT", passenger_features(), params)})
    sheet.put(1, PARAM_COL, "Params", "label")
    sheet.put(2, PARAM_COL, "the last gradient-descent step's weights (the course: Solver's)", "note")
    for i, header in enumerate(PARAM_HEADERS):
        sheet.put(HEADER_ROW, PARAM_COL + i, header, "header")
    sheet.put(1, LINEAR_COL, "Model", "label")
    sheet.put(HEADER_ROW, LINEAR_COL, "Linear", "header")
    sheet.put(HEADER_ROW, LOSS_COL, "Loss", "header")
    sheet.put(2, LINEAR_COL, "Total loss:", "label")
    sheet.put(2, LOSS_COL, call("AVERAGE", column(LOSS_COL)), "number")

    # --- the descent -----------------------------------------------------------------
    cols = step_columns()
    sheet.put(1, TRAIN_COL, "learning rate", "label")
    sheet.name_cell("learning_rate", 1, TRAIN_COL + 1, options["learning_rate"])
    sheet.put(1, TRAIN_COL + 2, "steps", "label")
    sheet.name_cell("steps", 1, TRAIN_COL + 3, options["steps"])
    sheet.put(1, TRAIN_COL + 5, "Gradient descent instead of Solver: each row below is one step on all "
                                "passengers. gradient = 2/n*(XᵀX·w - Xᵀy), next weights = weights - "
                                "learning_rate*gradient; loss = mean squared error. Rows past `steps` keep "
                                "their weights. Try learning_rate 0.2 (faster) or 0.25 (it diverges).", "note")
    sheet.put(GRAM_TOP - 1, TRAIN_COL, "XᵀX", "header")
    for i, name in enumerate(FEATURES):
        sheet.put(GRAM_TOP - 1, TRAIN_COL + 1 + i, name, "header")
        sheet.put(GRAM_TOP + i, TRAIN_COL, name, "header")
        for j, other in enumerate(FEATURES):
            sheet.put(GRAM_TOP + i, TRAIN_COL + 1 + j,
                      call("SUMPRODUCT", column(FEATURE_COL[name]), column(FEATURE_COL[other])), "number")
    xty_row, yty_row = GRAM_TOP + len(FEATURES), GRAM_TOP + len(FEATURES) + 1
    sheet.put(xty_row, TRAIN_COL, "Xᵀy", "header")
    for j, name in enumerate(FEATURES):
        sheet.put(xty_row, TRAIN_COL + 1 + j, call("SUMPRODUCT", column(FEATURE_COL[name]), column(SURVIVED)),
                  "number")
    sheet.put(yty_row, TRAIN_COL, "yᵀy", "header")
    sheet.put(yty_row, TRAIN_COL + 1, call("SUMSQ", column(SURVIVED)), "number")
    sheet.put(yty_row, TRAIN_COL + 2, "n", "header")
    sheet.put(yty_row, TRAIN_COL + 3, call("COUNT", column(SURVIVED)), "count")
    yty = Ref(yty_row, TRAIN_COL + 1, fixed_row=True, fixed_col=True)
    count = Ref(yty_row, TRAIN_COL + 3, fixed_row=True, fixed_col=True)
    xty = Range(Ref(xty_row, TRAIN_COL + 1, fixed_row=True, fixed_col=True),
                Ref(xty_row, TRAIN_COL + len(FEATURES), fixed_row=True, fixed_col=True))

    sheet.put(STEP_HEADER_ROW, cols["step"], "step", "header")
    sheet.put(STEP_HEADER_ROW, cols["loss"], "loss", "header")
    for name in FEATURES:
        sheet.put(STEP_HEADER_ROW, cols["weights"][name], f"w {name}", "header")
        sheet.put(STEP_HEADER_ROW, cols["gradient"][name], f"grad {name}", "header")
    first_w, last_w = cols["weights"][FEATURES[0]], cols["weights"][FEATURES[-1]]
    first_g, last_g = cols["gradient"][FEATURES[0]], cols["gradient"][FEATURES[-1]]
    learning_rate, steps = Name("learning_rate"), Name("steps")
    first_step_row = STEP_HEADER_ROW + 1
    last_step_row = first_step_row + options["steps"]
    # a step's weight: the row above's, stepped while the step number <= steps (one shape per column)
    stepped = {name: RowTemplate(call("IF", Here(cols["step"]).le(steps),
                                      Here(cols["weights"][name], -1) - learning_rate * Here(cols["gradient"][name], -1),
                                      Here(cols["weights"][name], -1)))
               for name in FEATURES}
    step_rows = range(first_step_row, last_step_row + 1)
    stepped_rows = step_rows[1:]
    sheet.put_column(step_rows, cols["step"], range(options["steps"] + 1), "count")
    # each row's weights, gradient and loss: one shape per column, made a column at a time
    weights = Range(Here(first_w), Here(last_w))
    gradient = Range(Here(first_g), Here(last_g))
    for i, name in enumerate(FEATURES):
        w_col, g_col = cols["weights"][name], cols["gradient"][name]
        sheet.put(first_step_row, w_col, options["initial_weights"][i], "input", "weight")
        sheet.put_column(stepped_rows, w_col, stepped[name].column(stepped_rows), "weight")
        gram_row = Range(Ref(GRAM_TOP + i, TRAIN_COL + 1, fixed_row=True, fixed_col=True),
                         Ref(GRAM_TOP + i, TRAIN_COL + len(FEATURES), fixed_row=True, fixed_col=True))
        xty_i = Ref(xty_row, TRAIN_COL + 1 + i, fixed_row=True, fixed_col=True)
        sheet.put_column(step_rows, g_col,
                         RowTemplate(2 * (call("SUMPRODUCT", gram_row, weights) - xty_i) / count).column(step_rows),
                         "weight")
    loss = call("SUMPRODUCT", weights, gradient) / 2 + (yty - call("SUMPRODUCT", weights, xty)) / count
    sheet.put_column(step_rows, cols["loss"], RowTemplate(loss).column(step_rows), "number")
    sheet.names["initial_weights"] = Range(Ref(first_step_row, first_w, spec.name, True, True),
                                           Ref(first_step_row, last_w, None, True, True))
    for i in range(len(FEATURES)):
        sheet.put(FIRST_ROW, PARAM_COL + i, Ref(last_step_row, first_w + i, fixed_row=True), "weight")

    sheet.charts.append(Chart(
        "line", "Mean squared error by gradient-descent step",
        [Series("loss", Range(Ref(first_step_row, cols["loss"], spec.name, True, True),
                              Ref(last_step_row, cols["loss"], None, True, True)),
                Range(Ref(first_step_row, cols["step"], spec.name, True, True),
                      Ref(last_step_row, cols["step"], None, True, True)))],
        anchor=(GRAM_TOP - 2, TRAIN_COL + len(FEATURES) + 2), x_title="step", y_title="loss (MSE)",
        size=(600, 270)))   # above the step table's header row
    widths = {col: 9 for col in range(1, LOSS_COL + 1)}
    widths.update({4: 7, 2: 9, SEX: 7})
    widths.update({col: 10 for col in range(TRAIN_COL, last_g + 1)})
    sheet.widths.update(widths)
    sheet.freeze = (HEADER_ROW, 0)
