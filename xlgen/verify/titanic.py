"""Checker for the course's Titanic sheets (linear, nnet, mmult) and xlgen's titanic sheet.

Recognised by the course's passenger header row (Survived .. Ones). Inputs: the raw
passenger columns A:H as the sheet holds them, and the weights where they are numbers
(Solver's, in the course's file). Checked: the maxima, the feature columns, each
passenger's model outputs and squared error, the total loss; in xlgen's sheet also the
XᵀX / Xᵀy block and every gradient-descent step (weights, gradient, loss), computed by
the reference straight from the passengers, and the weights shown in the course's place.
"""

from __future__ import annotations

import re

import numpy as np

from xlgen.formula import cell_name, column_number
from xlgen.reference.titanic import FEATURES, RAW_COLUMNS, features, gradient_descent_linear, gram, net_forward
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, input_cell, normal

LAYOUT = "titanic"
HEADERS = RAW_COLUMNS + FEATURES[2:]   # SibSp and Parch are raw columns and features
PARAM_HEADERS = FEATURES[:-1] + ("Const",)
LINEAR_MODEL = ("Linear", "Loss")
NET_MODEL = ("Lin1", "Lin2", "ReLU1", "ReLU2", "Preds", "Loss")
STEP_HEADERS = ("step", "loss") + tuple(f"w {name}" for name in FEATURES) + tuple(f"grad {name}" for name in FEATURES)


def recognise(book, sheet):
    header = find_header_row(sheet, HEADERS, max_row=10)
    if header is None:
        return None
    row, col = header
    model = find_in_row(sheet, row, NET_MODEL) or find_in_row(sheet, row, LINEAR_MODEL)
    if model is None:
        return None
    return header, model


def find_in_row(sheet, row: int, headers: tuple):
    """(first col, headers) where `headers` stand left to right in `row`."""
    wanted = [normal(h) for h in headers]
    cells = {col: normal(value) for (r, col), value in sheet.constants.items() if r == row}
    for col, text in cells.items():
        if text == wanted[0] and all(cells.get(col + i) == h for i, h in enumerate(wanted)):
            return col, headers
    return None


class Cells:
    """Collects expected values; only formula cells are expected (constants are inputs)."""

    def __init__(self, sheet, result):
        self.sheet, self.result = sheet, result

    def expect(self, row, col, value):
        if (row, col) in self.sheet.formulas:
            self.result.expect(row, col, value)


def check(sheet, match, context) -> SheetCheck | None:
    (header_row, c0), (model_col, model_headers) = match
    result = SheetCheck(sheet.name, LAYOUT)
    col = {h: c0 + i for i, h in enumerate(HEADERS)}
    rows = []
    row = header_row + 1
    while isinstance(context.value(sheet.name, row, col["Survived"]), (int, float)):
        rows.append(row)
        row += 1
    if not rows:
        return None
    cells = Cells(sheet, result)
    raw = [tuple(context.value(sheet.name, r, col[name]) for name in RAW_COLUMNS) for r in rows]
    result.inputs["passengers"] = {"cell": f"{sheet.name}!{cell_name(rows[0], c0)}:"
                                           f"{cell_name(rows[-1], col['Parch'])}", "value": len(rows)}
    data = features(raw)
    for name, maximum in (("Age", data["max_age"]), ("Fare", data["max_fare"])):
        for r in range(1, header_row):
            cells.expect(r, col[name], maximum)
    for name in FEATURES:
        cells.result.expect_many([(r, col[name]) for r in rows if (r, col[name]) in sheet.formulas],
                                 [v for r, v in zip(rows, data["columns"][name]) if (r, col[name]) in sheet.formulas])
    X, y = data["X"], data["y"]
    trained = check_steps(sheet, context, result, cells, X, y)
    weights = read_weights(sheet, context, result, header_row, 1 if model_headers == LINEAR_MODEL else 2, trained)
    if weights is None:
        return None
    model = {h: model_col + i for i, h in enumerate(model_headers)}
    if model_headers == LINEAR_MODEL:
        outputs = {"Linear": X @ weights[0]}
        outputs["Loss"] = (outputs["Linear"] - y) ** 2
    else:
        forward = net_forward(X, weights[0], weights[1])
        outputs = {"Lin1": forward["lin1"], "Lin2": forward["lin2"], "ReLU1": forward["relu1"],
                   "ReLU2": forward["relu2"], "Preds": forward["preds"]}
        outputs["Loss"] = (y - forward["preds"]) ** 2
    for header, values in outputs.items():
        c = model[header]
        result.expect_many([(r, c) for r in rows if (r, c) in sheet.formulas],
                           [v for r, v in zip(rows, values) if (r, c) in sheet.formulas])
    total = total_loss_cell(sheet, header_row)
    if total is not None:
        cells.expect(*total, float(np.mean(outputs["Loss"])))
    check_small_mmult(sheet, result)
    return result


_MMULT = re.compile(r"^MMULT\((\$?[A-Z]+\$?\d+):(\$?[A-Z]+\$?\d+),(\$?[A-Z]+\$?\d+):(\$?[A-Z]+\$?\d+)\)$", re.I)


def check_small_mmult(sheet, result):
    """The course's mmult sheet shows MMULT on two small typed-in matrices beside the
    model (AL4:AM6 = MMULT(AF4:AG6, AI4:AJ5)): the product's top-left cell, the one
    the formula is stored in, is checked."""
    for (r, c), text in sheet.formulas.items():
        match = _MMULT.match(text)
        if match is None or (r, c) in result.expected:
            continue
        corners = [parse_cell(ref) for ref in match.groups()]
        left, right = (constant_block(sheet, *corners[0], *corners[1]), constant_block(sheet, *corners[2], *corners[3]))
        if left is None or right is None or left.shape[1] != right.shape[0]:
            continue
        result.expect(r, c, float((left @ right)[0, 0]))


def parse_cell(text):
    letters = "".join(ch for ch in text if ch.isalpha())
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits), column_number(letters.upper())


def constant_block(sheet, r1, c1, r2, c2):
    values = [[sheet.constants.get((r, c)) for c in range(c1, c2 + 1)] for r in range(r1, r2 + 1)]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for row in values for v in row):
        return None
    return np.array(values, dtype=np.float64)


def total_loss_cell(sheet, header_row):
    for (r, c), value in sheet.constants.items():
        if normal(value) == "total loss:":
            for offset in (1, 2):
                if (r, c + offset) in sheet.formulas:
                    return r, c + offset
    return None


def read_weights(sheet, context, result, header_row, units: int, trained):
    """The weights as rows (one per unit): beside the course's headers, in a row
    (linear, nnet: SibSp .. Const) or in columns (mmult: Column, Param1, Param2)."""
    across = find_in_row(sheet, header_row, PARAM_HEADERS)
    if across is not None:
        first = across[0]
        positions = [[(header_row + 1 + unit, first + j) for j in range(len(FEATURES))] for unit in range(units)]
    else:
        down = find_in_row(sheet, header_row, ("Column",) + tuple(f"Param{u + 1}" for u in range(units)))
        if down is None:
            return None
        first = down[0]
        positions = [[(header_row + 1 + j, first + 1 + unit) for j in range(len(FEATURES))] for unit in range(units)]
    weights = []
    for unit, cells in enumerate(positions):
        values = []
        for j, (r, c) in enumerate(cells):
            if (r, c) in sheet.formulas:
                if trained is None:
                    return None  # weights computed by something this checker does not know
                value = trained[j]
                result.expect(r, c, value)
            else:
                value = context.input(result, f"weight {unit + 1} {FEATURES[j]}" if units > 1 else
                                      f"weight {FEATURES[j]}", (sheet.name, r, c))
            values.append(value)
        weights.append(np.array(values, dtype=np.float64))
    return weights


def check_steps(sheet, context, result, cells, X, y):
    """xlgen's gradient-descent block, if the sheet has one: its final weights, or None."""
    header = find_header_row(sheet, STEP_HEADERS)
    if header is None:
        return None
    step_header, c0 = header
    step_col, loss_col = c0, c0 + 1
    weight_col = c0 + 2
    grad_col = c0 + 2 + len(FEATURES)
    rows = []
    r = step_header + 1
    while (r, loss_col) in sheet.formulas:
        rows.append(r)
        r += 1
    if not rows:
        return None
    book = context.book
    learning_rate = context.input(result, "learning_rate", input_cell(book, sheet, ("learning_rate",), "learning rate"))
    steps = context.input(result, "steps", input_cell(book, sheet, ("steps",), "steps"))
    initial = [context.input(result, f"initial w {name}", (sheet.name, rows[0], weight_col + j))
               for j, name in enumerate(FEATURES)]
    step_numbers = [context.value(sheet.name, r, step_col) for r in rows]
    if any(isinstance(n, bool) or not isinstance(n, (int, float)) for n in step_numbers) or \
            step_numbers != [step_numbers[0] + i for i in range(len(rows))]:
        return None
    # a row's weights are the previous row's stepped while its step number <= steps (a prefix)
    applied = sum(1 for number in step_numbers[1:] if number <= steps)
    run = gradient_descent_linear(X, y, initial, learning_rate, len(rows), steps=applied)
    for i, r in enumerate(rows):
        cells.expect(r, loss_col, run["loss"][i])
        for j in range(len(FEATURES)):
            cells.expect(r, weight_col + j, run["weights"][i][j])
            cells.expect(r, grad_col + j, run["gradient"][i][j])
    check_gram(sheet, cells, c0, step_header, X, y)
    return run["weights"][-1]


def check_gram(sheet, cells, c0, step_header, X, y):
    """The XᵀX / Xᵀy / yᵀy / n block above the steps, found by its row labels."""
    totals = gram(X, y)
    labels = {normal(value): r for (r, c), value in sheet.constants.items() if c == c0 and r < step_header}
    for i, name in enumerate(FEATURES):
        r = labels.get(normal(name))
        if r is None:
            continue
        for j in range(len(FEATURES)):
            cells.expect(r, c0 + 1 + j, totals["xtx"][i][j])
    r = labels.get("xᵀy")
    if r is not None:
        for j in range(len(FEATURES)):
            cells.expect(r, c0 + 1 + j, totals["xty"][j])
    r = labels.get("yᵀy")
    if r is not None:
        cells.expect(r, c0 + 1, totals["yty"])
        cells.expect(r, c0 + 3, totals["n"])
