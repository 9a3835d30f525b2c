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
from itertools import compress, repeat

import numpy as np

from xlgen.engine.book import ExcelError
from xlgen.errors import XlgenError
from xlgen.formula import cell_name, column_number
from xlgen.reference.titanic import (FEATURES, RAW_COLUMNS, features, gradient_descent_linear, gram,
                                     minibatch_descent_net, net_forward)
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, formula_rows_below, input_cell, normal, texts_in_row

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
    cells = texts_in_row(sheet, row)   # only texts can read as a header
    for col, text in cells.items():
        if text == wanted[0] and all(cells.get(col + i) == h for i, h in enumerate(wanted)):
            return col, headers
    return None


_PLAIN_NUMBERS = {float, int, type(None)}


class Cells:
    """Collects expected values; only formula cells are expected (constants are inputs)."""

    def __init__(self, sheet, result):
        self.sheet, self.result = sheet, result

    def expect(self, row, col, value):
        if (row, col) in self.sheet.formulas:
            self.result.expect(row, col, value)

    def expect_many(self, cells: list, values) -> None:
        """values[i] expected of cells[i] where that cell holds a formula, in one call."""
        formulas = self.sheet.formulas
        if len(cells) != len(values):
            cells, values = cells[:len(values)], values[:len(cells)]   # as zip() pairs them
        held = list(map(formulas.__contains__, cells))
        if all(held):   # the usual case: the values as given (an array)
            self.result.expect_many(cells, values)
        else:
            self.result.expect_many(list(compress(cells, held)), list(compress(values, held)))

    def expect_column(self, rows: list, col: int, values) -> None:
        """values[i] expected of (rows[i], col) where that cell holds a formula, in one call."""
        formulas = self.sheet.formulas
        if all(map(formulas.__contains__, zip(rows, repeat(col)))):   # the usual case: the values as given
            self.result.expect_column(rows, col, values)
        else:
            self.expect_many([(r, col) for r in rows], values)


def check(sheet, match, context) -> SheetCheck | None:
    (header_row, c0), (model_col, model_headers) = match
    result = SheetCheck(sheet.name, LAYOUT)
    col = {h: c0 + i for i, h in enumerate(HEADERS)}
    rows = passenger_rows(context, sheet.name, header_row + 1, col["Survived"])
    if not rows:
        return None
    cells = Cells(sheet, result)
    # a column at a time: `Context.column` is `value` of each cell, without a lookup per cell
    columns = [context.column(sheet.name, rows, col[name]) for name in RAW_COLUMNS]
    for name in ("Survived", "Pclass", "Age", "Fare", "SibSp", "Parch"):   # numbers, or blank (0)
        values = columns[RAW_COLUMNS.index(name)]
        if set(map(type, values)) <= _PLAIN_NUMBERS:   # the usual case, at once
            continue
        for r, value in zip(rows, values):
            if isinstance(value, bool) or not (value is None or value == "" or isinstance(value, (int, float))):
                shown = value.code if isinstance(value, ExcelError) else value
                raise XlgenError(f"{sheet.name}!{cell_name(r, col[name])} ({name}) should hold a number, "
                                 f"not {shown!r}")
    result.inputs["passengers"] = {"cell": f"{sheet.name}!{cell_name(rows[0], c0)}:"
                                           f"{cell_name(rows[-1], col['Parch'])}", "value": len(rows)}
    data = features(columns)
    for name, maximum in (("Age", data["max_age"]), ("Fare", data["max_fare"])):
        for r in range(1, header_row):
            cells.expect(r, col[name], maximum)
    for name in FEATURES:
        cells.expect_column(rows, col[name], data["columns"][name])
    X, y = data["X"], data["y"]
    trained = check_steps(sheet, context, result, cells, X, y)
    if trained is None:
        trained = check_net_steps(sheet, context, result, cells, X, y, rows)
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
        cells.expect_column(rows, model[header], values)
    total = total_loss_cell(sheet, header_row)
    if total is not None:
        cells.expect(*total, float(np.mean(outputs["Loss"])))
    check_small_mmult(sheet, result, set(model.values()), set(rows))
    return result


def passenger_rows(context, sheet_name: str, first: int, survived_col: int) -> list:
    """The rows from `first` down whose Survived cell holds a number (a bool counts, as
    isinstance says), up to the first that does not: read a column a chunk at a time."""
    rows, start, chunk = [], first, 256
    while True:
        span = list(range(start, start + chunk))
        for row, value in zip(span, context.column(sheet_name, span, survived_col)):
            if not isinstance(value, (int, float)):
                return rows
            rows.append(row)
        start, chunk = start + chunk, chunk * 4


_MMULT = re.compile(r"^MMULT\((\$?[A-Z]+\$?\d+):(\$?[A-Z]+\$?\d+),(\$?[A-Z]+\$?\d+):(\$?[A-Z]+\$?\d+)\)$", re.I)


def check_small_mmult(sheet, result, model_cols=(), model_rows=()):
    """The course's mmult sheet shows MMULT on two small typed-in matrices beside the
    model (AL4:AM6 = MMULT(AF4:AG6, AI4:AJ5)): each of its formula cells is checked
    against its element of the product. Cells of `model_cols` in `model_rows` (the
    passengers' units, their MMULT formulas expected already) are passed over at once."""
    anchors = {}
    for (ar, ac), ref in sheet.array_refs.items():
        first, _, last = ref.partition(":")
        (r1, c1), (r2, c2) = parse_cell(first), parse_cell(last or first)
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                anchors[(r, c)] = (ar, ac)
    made = {}

    def block(first: str, last: str):   # a block of constants, read once however many products name it
        if (first, last) not in made:
            made[(first, last)] = constant_block(sheet, *parse_cell(first), *parse_cell(last))
        return made[(first, last)]

    formulas = sheet.formulas
    # what _MMULT needs first, without the regex (or a Python step) per formula: an M first
    for (r, c), text in compress(formulas.items(), map(str.startswith, formulas.values(), repeat(("M", "m")))):
        if text[:6].upper() != "MMULT(" or (c in model_cols and r in model_rows):
            continue
        match = _MMULT.match(text)
        if match is None or (r, c) in result.expected:
            continue
        refs = match.groups()
        left, right = block(refs[0], refs[1]), block(refs[2], refs[3])
        if left is None or right is None or left.shape[1] != right.shape[0]:
            continue
        ar, ac = anchors.get((r, c), (r, c))   # a cell of a spilled or array-entered product: its element
        product = left @ right
        if 0 <= r - ar < product.shape[0] and 0 <= c - ac < product.shape[1]:
            result.expect(r, c, float(product[r - ar, c - ac]))


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
    sources = {}   # sheet name -> its weights' first cell (or None): found once, not per weight
    for unit, cells in enumerate(positions):
        values, typed = [], []
        for j, (r, c) in enumerate(cells):
            if (r, c) in sheet.formulas:
                link = linked_cell(sheet, r, c)
                if trained is not None:
                    value = trained[unit][j]
                elif link is not None and link[0] != sheet.name:
                    # a weight from another sheet of the course's layout (checked there): the
                    # one of the same unit and feature, whichever cell the formula names
                    if link[0] not in sources:
                        sources[link[0]] = first_weight(context, link[0])
                    source = sources[link[0]]
                    source = None if source is None else (source[0], source[1] + unit, source[2] + j)
                    if source is None:
                        return None
                    value = context.value(*source)
                    if not isinstance(value, (int, float)) or isinstance(value, bool):
                        return None
                    result.inputs.setdefault("weights from", {"cell": f"{source[0]}!{cell_name(source[1], source[2])}",
                                                              "value": "that sheet's weights"})
                else:
                    return None  # weights computed by something this checker does not know
                result.expect(r, c, value)
            else:
                value = context.value(sheet.name, r, c)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    from xlgen.errors import XlgenError
                    raise XlgenError(f"{sheet.name}!{cell_name(r, c)} (weight {FEATURES[j]}) should hold a number, "
                                     f"not {value!r}")
                typed.append((r, c))
            values.append(value)
        if typed:  # Solver's weights, in the course's file: one line in the report per unit
            result.inputs[f"weights of unit {unit + 1}" if units > 1 else "weights"] = {
                "cell": f"{sheet.name}!{cell_name(*typed[0])}:{cell_name(*typed[-1])}",
                "value": f"{len(typed)} numbers"}
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
    rows = formula_rows_below(sheet, step_header, loss_col)
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
    # in the order of a cell-by-cell `cells.expect`: each row's loss, then each feature's
    # weight and gradient; handed over in one call
    n = len(FEATURES)
    row_cols = [loss_col] + [c for j in range(n) for c in (weight_col + j, grad_col + j)]
    values = np.empty((len(rows), 1 + 2 * n))
    values[:, 0], values[:, 1::2], values[:, 2::2] = run["loss"], run["weights"], run["gradient"]
    cells.expect_many([(r, c) for r in rows for c in row_cols], values.ravel())
    check_gram(sheet, cells, c0, step_header, X, y)
    return [run["weights"][-1]]


def first_weight(context, sheet_name):
    """(sheet, row, col) of weight 0 of unit 0 in another sheet's SibSp..Const rows (weight
    j of unit u is u rows below and j columns right of it)."""
    try:
        source = context.book.sheet(sheet_name)
    except KeyError:
        return None
    header = find_header_row(source, HEADERS, max_row=10)
    across = find_in_row(source, header[0], PARAM_HEADERS) if header else None
    if across is None:
        return None
    return source.name, header[0] + 1, across[0]


_LINK = re.compile(r"^(?:'((?:[^']|'')+)'|([A-Za-z_][\w.]*))!\$?([A-Z]{1,3})\$?(\d+)$")


def linked_cell(sheet, r, c):
    """(sheet, row, col) when the formula is nothing but a reference to another sheet's cell."""
    match = _LINK.match(sheet.formulas[(r, c)])
    if match is None:
        return None
    name = (match.group(1) or "").replace("''", "'") or match.group(2)
    return name, int(match.group(4)), column_number(match.group(3))


NET_STEP_HEADERS = (("step", "batch from", "batch loss") + tuple(f"w1 {n}" for n in FEATURES)
                    + tuple(f"w2 {n}" for n in FEATURES) + tuple(f"grad1 {n}" for n in FEATURES)
                    + tuple(f"grad2 {n}" for n in FEATURES))
BATCH_HEADERS = ("step", "passenger", "Lin1", "Lin2", "error", "dLin1", "dLin2")


def check_net_steps(sheet, context, result, cells, X, y, data_rows):
    """xlgen's mini-batch descent on the nnet, if the sheet has it: the final weights of
    both units, or None. Batches are consecutive passengers in file order."""
    header = find_header_row(sheet, NET_STEP_HEADERS)
    batch_header = find_header_row(sheet, BATCH_HEADERS, max_row=10)
    if header is None or batch_header is None:
        return None
    step_header, c0 = header
    n = len(FEATURES)
    col = {"step": c0, "from": c0 + 1, "loss": c0 + 2, "w1": c0 + 3, "w2": c0 + 3 + n,
           "g1": c0 + 3 + 2 * n, "g2": c0 + 3 + 3 * n}
    rows = formula_rows_below(sheet, step_header, col["loss"])
    if not rows:
        return None
    numbers = [context.value(sheet.name, r, col["step"]) for r in rows]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers) or \
            numbers != [numbers[0] + i for i in range(len(rows))]:
        return None
    book = context.book
    learning_rate = context.input(result, "learning_rate", input_cell(book, sheet, ("learning_rate",), "learning rate"))
    steps = context.input(result, "steps", input_cell(book, sheet, ("steps",), "steps"))
    batch = context.input(result, "batch", input_cell(book, sheet, ("batch",), "batch"))
    if not batch.is_integer() or batch < 1 or len(y) % int(batch):
        return None
    batch = int(batch)
    initial = [[context.input(result, f"initial w{u} {name}", (sheet.name, rows[0], col[f"w{u}"] + j))
                for j, name in enumerate(FEATURES)] for u in (1, 2)]
    applied = sum(1 for number in numbers[1:] if number <= steps)
    run = minibatch_descent_net(X, y, initial[0], initial[1], learning_rate, batch, len(rows), steps=applied)
    b_row, b_col = batch_header
    # the cells in the order of a cell-by-cell `cells.expect`, handed over in one call: per
    # step its row's loss, each feature's weight and gradient of unit 1 then of unit 2, then
    # its batch table rows (Lin1, Lin2, error, dLin1, dLin2 of each), made as arrays
    count = len(rows)
    step_cols = [col["loss"]] + [c for u in (1, 2) for j in range(n) for c in (col[f"w{u}"] + j, col[f"g{u}"] + j)]
    step_values = np.empty((count, 1 + 4 * n))
    step_values[:, 0] = run["loss"]
    for unit, u in enumerate((1, 2)):
        first = 1 + 2 * n * unit
        step_values[:, first:first + 2 * n:2], step_values[:, first + 1:first + 2 * n:2] = run[f"w{u}"], run[f"g{u}"]
    keys = ("lin1", "lin2", "error", "d1", "d2")
    batch_values = np.stack([run[key] for key in keys], axis=-1).reshape(count, batch * len(keys))
    values = np.concatenate([step_values, batch_values], axis=1).ravel()
    tops = b_row + 1 + batch * np.arange(count)
    batch_rows = (tops[:, None] + np.repeat(np.arange(batch), len(keys))[None, :])
    cell_rows = np.concatenate([np.repeat(np.asarray(rows)[:, None], len(step_cols), axis=1), batch_rows], axis=1)
    cell_cols = np.tile(np.concatenate([step_cols, np.tile(b_col + np.arange(2, 2 + len(keys)), batch)]), count)
    cells.expect_many(list(zip(cell_rows.ravel().tolist(), cell_cols.tolist())), values)
    return [run["w1"][-1], run["w2"][-1]]


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
