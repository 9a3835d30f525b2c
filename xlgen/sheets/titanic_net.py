"""The course's Titanic `nnet` sheet, trained by mini-batch gradient descent instead of Solver.

Left: the course's layout (passengers, features, the two units' weights in R4:AA5,
Lin1, Lin2, ReLU1, ReLU2, Preds and squared error per passenger, the total loss), with
the weights now the last step's. Right: the descent, one row per step: both units'
weights, the loss on the step's batch and its gradient; next row = these -
learning_rate * gradient. Each step uses the next `batch` passengers in file order
(89 divides the 712 into 8 batches, one epoch every 8 steps); the batch table further
right shows every batch passenger's Lin1, Lin2, error and the error passed back
through each ReLU (0 where the unit's input is not positive), from which the gradient is
2/batch * SUMPRODUCT(that column, a feature column). A full pass over all 712
passengers per step would make the sheet eight times larger and slower to recompute;
fastai trains in mini-batches too.
"""

from __future__ import annotations

from functools import reduce

from xlgen.errors import TemplateError
from xlgen.formula import Here, Name, Range, Ref, RowTemplate, call
from xlgen.reference.titanic import FEATURES, passengers
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.sheets.titanic import (FEATURE_COL, FIRST_ROW, HEADER_ROW, PARAM_COL, PARAM_HEADERS, SURVIVED,
                                  passenger_column, passenger_features, put_passengers)
from xlgen.options import number_list, positive_integer

USES_DATA = False
MODEL_COL = 29                                      # AC: Lin1, Lin2, ReLU1, ReLU2, Preds, Loss
MODEL_HEADERS = ("Lin1", "Lin2", "ReLU1", "ReLU2", "Preds", "Loss")
TRAIN_COL = 36                                      # AJ
STEP_HEADER_ROW = 3
BATCH_HEADERS = ("step", "passenger", "Lin1", "Lin2", "error", "dLin1", "dLin2")

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'Two linear units, ReLU and their sum, trained by {steps} mini-batch steps of '
    "{batch} passengers instead of Solver; each batch passenger's units shown.")
# the about sheet's numbers to look for
ABOUT_NUMBERS = (("Total loss:", None),)

OPTIONS = {"learning_rate": 0.1, "steps": 48, "batch": 89,
           "initial_weights1": [0.0] * len(FEATURES), "initial_weights2": [0.0] * len(FEATURES)}


def weight_list(key, value):
    weights = number_list(key, value)
    if len(weights) != len(FEATURES):
        raise TemplateError(f"{key} must list {len(FEATURES)} weights ({', '.join(FEATURES)}), got {len(weights)}")
    return weights


def batch_size(key, value):
    value = positive_integer(key, value)
    if len(passengers()) % value:
        raise TemplateError(f"{key} must divide the {len(passengers())} passengers into whole batches "
                            f"(1, 2, 4, 8, 89, 178, 356 or 712), got {value}")
    return value


OPTION_CHECKS = {"steps": positive_integer, "batch": batch_size,
                 "initial_weights1": weight_list, "initial_weights2": weight_list}


def step_columns() -> dict:
    n = len(FEATURES)
    first_w = TRAIN_COL + 3
    return {"step": TRAIN_COL, "from": TRAIN_COL + 1, "loss": TRAIN_COL + 2,
            "w1": first_w, "w2": first_w + n, "g1": first_w + 2 * n, "g2": first_w + 3 * n,
            "batch": first_w + 4 * n + 1}


def rows_needed(template, spec) -> int:
    return STEP_HEADER_ROW + (spec.options["steps"] + 1) * spec.options["batch"]


def total(terms):
    return reduce(lambda a, b: a + b, terms)


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    o = spec.options
    sheet = workbook.add_sheet(spec.name)
    n, count = len(FEATURES), len(passengers())
    units = [Range(Ref(FIRST_ROW + u, PARAM_COL, fixed_row=True, fixed_col=True),
                   Ref(FIRST_ROW + u, PARAM_COL + n - 1, fixed_row=True, fixed_col=True)) for u in range(2)]
    lin1, lin2, relu1, relu2, preds, loss = (MODEL_COL + i for i in range(6))
    put_passengers(sheet, {
        relu1: call("IF", Here(lin1).lt(0), 0, Here(lin1)),
        relu2: call("IF", Here(lin2).lt(0), 0, Here(lin2)),
        preds: Here(relu1) + Here(relu2),
        loss: (Here(SURVIVED) - Here(preds)) ** 2,
    }, {lin1: call("SUMPRODUCT", passenger_features(), units[0]),
        lin2: call("SUMPRODUCT", passenger_features(), units[1])})
    sheet.put(1, PARAM_COL, "Params", "label")
    sheet.put(2, PARAM_COL, "the last gradient-descent step's weights (the course: Solver's)", "note")
    for i, header in enumerate(PARAM_HEADERS):
        sheet.put(HEADER_ROW, PARAM_COL + i, header, "header")
    sheet.put(1, MODEL_COL, "Model", "label")
    for i, header in enumerate(MODEL_HEADERS):
        sheet.put(HEADER_ROW, MODEL_COL + i, header, "header")
    sheet.put(1, preds, "Total loss:", "label")
    sheet.put(1, loss, call("AVERAGE", passenger_column(loss)), "number")

    # --- the descent -----------------------------------------------------------------
    cols = step_columns()
    batch = o["batch"]
    sheet.put(1, TRAIN_COL, "learning rate", "label")
    sheet.name_cell("learning_rate", 1, TRAIN_COL + 1, o["learning_rate"])
    sheet.put(1, TRAIN_COL + 2, "steps", "label")
    sheet.name_cell("steps", 1, TRAIN_COL + 3, o["steps"])
    sheet.put(1, TRAIN_COL + 4, "batch", "label")
    sheet.put(1, TRAIN_COL + 5, batch, "count")
    batch_ref = Ref(1, TRAIN_COL + 5, fixed_row=True, fixed_col=True)
    sheet.put(2, TRAIN_COL, f"Mini-batch gradient descent instead of Solver: each row is one step on the next "
                            f"{batch} passengers (the batch table at the right shows them). gradient = 2/batch * "
                            "SUMPRODUCT(error passed back through the unit's ReLU, feature); next weights = "
                            "weights - learning_rate*gradient. Rows past `steps` keep their weights.", "note")
    header = {cols["step"]: "step", cols["from"]: "batch from", cols["loss"]: "batch loss"}
    for u in (1, 2):
        for j, name in enumerate(FEATURES):
            header[cols[f"w{u}"] + j] = f"w{u} {name}"
            header[cols[f"g{u}"] + j] = f"grad{u} {name}"
    for i, text in enumerate(BATCH_HEADERS):
        header[cols["batch"] + i] = text
    for col, text in header.items():
        sheet.put(STEP_HEADER_ROW, col, text, "header")
    b_step, b_passenger, b_lin1, b_lin2, b_error, b_d1, b_d2 = (cols["batch"] + i for i in range(7))
    learning_rate, steps = Name("learning_rate"), Name("steps")
    first_step = STEP_HEADER_ROW + 1
    # a step's weight: the row above's, stepped while the step number <= steps (one shape per column)
    stepped = {col + j: RowTemplate(call("IF", Here(cols["step"]).le(steps),
                                         Here(col + j, -1) - learning_rate * Here(cols[f"g{u}"] + j, -1),
                                         Here(col + j, -1)))
               for u, col in ((1, cols["w1"]), (2, cols["w2"])) for j in range(n)}
    last_step = first_step + o["steps"]
    step_rows = range(first_step, last_step + 1)
    put_column = sheet.put_column
    put_column(step_rows, cols["step"], range(o["steps"] + 1), "count")
    starts = [FIRST_ROW + (step * batch) % count for step in range(o["steps"] + 1)]   # each batch's first data row
    tops = [STEP_HEADER_ROW + 1 + step * batch for step in range(o["steps"] + 1)]     # its first batch table row
    put_column(step_rows, cols["from"], starts, "count")
    for u in (1, 2):
        for j in range(n):
            w_col, g_col = cols[f"w{u}"] + j, cols[f"g{u}"] + j
            sheet.put(first_step, w_col, o[f"initial_weights{u}"][j], "input", "weight")
            put_column(step_rows[1:], w_col, stepped[w_col].column(step_rows[1:]), "weight")
            passed_back = b_d1 if u == 1 else b_d2
            feature = FEATURE_COL[FEATURES[j]]
            put_column(step_rows, g_col, [
                2 * call("SUMPRODUCT", Range(Ref(top, passed_back, fixed_col=True),
                                             Ref(top + batch - 1, passed_back, fixed_col=True)),
                         Range(Ref(start, feature, fixed_row=True), Ref(start + batch - 1, feature, fixed_row=True)))
                / batch_ref for start, top in zip(starts, tops)], "weight")
    put_column(step_rows, cols["loss"], [call("SUMSQ", Range(Ref(top, b_error), Ref(top + batch - 1, b_error)))
                                         / batch_ref for top in tops], "number")
    for step, (r, start, top) in enumerate(zip(step_rows, starts, tops)):
        offset = start - top   # batch table row -> its passenger's data row
        shapes = {}
        for u, col in ((1, b_lin1), (2, b_lin2)):
            weights = [Ref(r, cols[f"w{u}"] + j, fixed_row=True, fixed_col=True) for j in range(n)]
            shapes[col] = total([Here(FEATURE_COL[name], offset) * w for name, w in zip(FEATURES, weights)])
        shapes[b_error] = (call("IF", Here(b_lin1).lt(0), 0, Here(b_lin1))
                           + call("IF", Here(b_lin2).lt(0), 0, Here(b_lin2)) - Here(SURVIVED, offset))
        shapes[b_d1] = call("IF", Here(b_lin1).gt(0), Here(b_error), 0)
        shapes[b_d2] = call("IF", Here(b_lin2).gt(0), Here(b_error), 0)
        table_rows = range(top, top + batch)
        put_column(table_rows, b_step, [step] * batch, "count")
        put_column(table_rows, b_passenger, range(start, start + batch), "count")
        for col, expr in shapes.items():
            put_column(table_rows, col, RowTemplate(expr).column(table_rows), "number")
    for u in range(2):
        for j in range(n):
            sheet.put(FIRST_ROW + u, PARAM_COL + j, Ref(last_step, cols[f"w{u + 1}"] + j, fixed_row=True), "weight")
    for u in (1, 2):
        sheet.names[f"initial_weights{u}"] = Range(Ref(first_step, cols[f"w{u}"], spec.name, True, True),
                                                   Ref(first_step, cols[f"w{u}"] + n - 1, None, True, True))
    sheet.charts.append(Chart(
        "line", f"Loss on each step's batch of {batch} passengers",
        [Series("batch loss", Range(Ref(first_step, cols["loss"], spec.name, True, True),
                                    Ref(last_step, cols["loss"], None, True, True)),
                Range(Ref(first_step, cols["step"], spec.name, True, True),
                      Ref(last_step, cols["step"], None, True, True)))],
        anchor=(last_step + 2, TRAIN_COL), x_title="step", y_title="batch loss (MSE)", size=(600, 300)))
    widths = {col: 9 for col in range(1, loss + 1)}
    widths.update({col: 10 for col in range(TRAIN_COL, b_d2 + 1)})
    sheet.widths.update(widths)
    sheet.freeze = (HEADER_ROW, 0)
