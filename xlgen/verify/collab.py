"""Checker for the course's collab_filter `dotprod` and `bias` sheets and xlgen's collab_filter.

Recognised by the course's layout: "movieId" with movie ids across row 1, user ids
down the same column with their ratings, a second "userId" row of movie ids heading
the predictions, the movie factors (and a bias row above them) between the two, the
user factors (and a bias column left of them) beside the predictions. Whether the
sheet has biases is read from how many rows its MMULT spans. Inputs: the ratings, and
the factors where they are numbers (the course's); checked: every prediction
(0 where not rated) and the rmse. xlgen's sheet also has a gradient-descent table (a
header row starting "step", "rmse"): its parameters, errors, gradients and rmse at every
step are checked against the reference, and the factors above are the last step's.
"""

from __future__ import annotations

import re

import numpy as np

from xlgen.formula import cell_name
from xlgen.reference.collab import gradient_descent, predictions, rmse
from xlgen.verify.core import SheetCheck, formula_cells
from xlgen.verify.locate import formula_rows_below, input_cell, normal

LAYOUT = "collab_filter"
_MMULT = re.compile(r"MMULT\(\$?[A-Z]+\$?\d+:\$?[A-Z]+\$?\d+,\$?[A-Z]+\$?(\d+):\$?[A-Z]+\$?(\d+)\)", re.I)


INPUT_LABELS = {"users": "user factors", "movies": "movie factors", "user_bias": "user biases",
                "movie_bias": "movie biases"}


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number_input(context, result, label, cell) -> float:
    """An input cell's number (refused with a clear message if it is not one), reported
    with its group rather than one report line per cell."""
    value = context.value(*cell)
    if not number(value):
        from xlgen.errors import XlgenError
        raise XlgenError(f"{cell[0]}!{cell_name(cell[1], cell[2])} ({label}) should hold a number, not {value!r}")
    return float(value)


def recognise(book, sheet):
    id_cell = next(((r, c) for (r, c), v in sheet.constants.items() if r == 1 and normal(v) == "movieid"), None)
    if id_cell is None:
        return None
    _, id_col = id_cell
    movies = 0
    while number(sheet.constants.get((1, id_col + 1 + movies))):
        movies += 1
    users = 0
    while number(sheet.constants.get((2 + users, id_col))):
        users += 1
    if not movies or not users:
        return None
    first = id_col + 1
    header = next((r for r in range(2 + users, 2 + users + 20)
                   if normal(sheet.constants.get((r, id_col - 1))) == "userid"
                   and number(sheet.constants.get((r, first)))), None)
    if header is None or (header + 1, first) not in sheet.formulas:
        return None
    match = _MMULT.search(sheet.formulas[(header + 1, first)])
    if match is None:
        return None
    factors = int(match.group(2)) - int(match.group(1)) + 1
    above = 0  # parameter rows right above the prediction header (factors, and a bias row)
    while (header - 1 - above, first) in sheet.formulas or number(sheet.constants.get((header - 1 - above, first))):
        above += 1
    if above == factors:
        biases = False
    elif above == factors + 1:
        biases = True
    else:
        return None
    return {"id_col": id_col, "users": users, "movies": movies, "factors": factors, "biases": biases,
            "pred_top": header + 1, "factor_top": header - factors}


def check(sheet, match, context) -> SheetCheck | None:
    m = match
    U, M, K, biases = m["users"], m["movies"], m["factors"], m["biases"]
    first = m["id_col"] + 1
    result = SheetCheck(sheet.name, LAYOUT)
    ratings = np.zeros((U, M))
    rated = np.zeros((U, M), dtype=bool)
    for i in range(U):
        for j in range(M):
            value = context.value(sheet.name, 2 + i, first + j)
            if number(value):
                ratings[i, j], rated[i, j] = float(value), True
            elif value not in (None, ""):
                return None
    count = int(rated.sum())
    result.inputs["ratings"] = {"cell": f"{sheet.name}!{cell_name(2, first)}:{cell_name(1 + U, first + M - 1)}",
                                "value": f"{count} rated of {U * M}"}
    trained = check_steps(sheet, context, result, ratings, rated, m)
    user_col = m["id_col"] - K
    positions = {
        "users": [[(m["pred_top"] + i, user_col + k) for k in range(K)] for i in range(U)],
        "movies": [[(m["factor_top"] + k, first + j) for j in range(M)] for k in range(K)],
    }
    if biases:
        positions["user_bias"] = [(m["pred_top"] + i, user_col - 1) for i in range(U)]
        positions["movie_bias"] = [(m["factor_top"] - 1, first + j) for j in range(M)]
    params = {}
    for kind, cells in positions.items():
        inputs = []
        flat = np.array(cells, dtype=object).reshape(-1, 2) if kind in ("users", "movies") else cells
        values = []
        for index, (r, c) in enumerate(map(tuple, flat)):
            if (r, c) in sheet.formulas:
                if trained is None:
                    return None
                value = float(np.ravel(trained[kind])[index])
                result.expect(r, c, value)
            else:
                value = number_input(context, result, f"{kind} {index + 1}", (sheet.name, r, c))
                inputs.append((r, c))
            values.append(value)
        if inputs:
            result.inputs[INPUT_LABELS[kind]] = \
                {"cell": f"{sheet.name}!{cell_name(*inputs[0])}:{cell_name(*inputs[-1])}", "value": f"{len(inputs)} numbers"}
        shape = (U, K) if kind == "users" else (K, M) if kind == "movies" else (-1,)
        params[kind] = np.array(values, dtype=np.float64).reshape(shape)
    bias_args = (params["user_bias"], params["movie_bias"]) if biases else ()
    predicted = np.where(rated, predictions(params["users"], params["movies"], *bias_args), 0.0)
    for i in range(U):
        for j in range(M):
            if (m["pred_top"] + i, first + j) in sheet.formulas:
                result.expect(m["pred_top"] + i, first + j, predicted[i, j])
    error = np.where(rated, predicted - ratings, 0.0)
    rows, cols = formula_cells(sheet)   # the formula cells of the few rows under the predictions
    for index in np.flatnonzero((rows > m["pred_top"] + U - 1) & (rows < m["pred_top"] + U + 4)).tolist():
        r, c = int(rows[index]), int(cols[index])
        if "SUMXMY2" in sheet.formulas[(r, c)].upper():
            result.expect(r, c, rmse(error, count))
    return result


def check_steps(sheet, context, result, ratings, rated, m):
    """xlgen's gradient-descent table, if any: its last row's parameters, or None."""
    U, M, K, biases = m["users"], m["movies"], m["factors"], m["biases"]
    header_row = next((r for (r, c), v in sheet.constants.items()
                       if c == 1 and normal(v) == "step" and normal(sheet.constants.get((r, 2))) == "rmse"), None)
    if header_row is None:
        return None
    columns = {normal(v): c for (r, c), v in sheet.constants.items() if r == header_row and isinstance(v, str)}
    names = {"users": [f"user {i + 1} f{k + 1}" for i in range(U) for k in range(K)],
             "movies": [f"movie {j + 1} f{k + 1}" for k in range(K) for j in range(M)]}
    if biases:
        names["user_bias"] = [f"user {i + 1} bias" for i in range(U)]
        names["movie_bias"] = [f"movie {j + 1} bias" for j in range(M)]
    errors = [f"error u{i + 1} m{j + 1}" for i in range(U) for j in range(M)]
    wanted = [n for group in names.values() for n in group] + [f"grad {n}" for group in names.values() for n in group]
    if any(normal(n) not in columns for n in wanted + errors):
        return None
    rows = formula_rows_below(sheet, header_row, 2)
    if not rows:
        return None
    step_numbers = [context.value(sheet.name, r, 1) for r in rows]
    if any(not number(n) for n in step_numbers) or step_numbers != [step_numbers[0] + i for i in range(len(rows))]:
        return None
    book = context.book
    learning_rate = context.input(result, "learning_rate", input_cell(book, sheet, ("learning_rate",), None))
    steps = context.input(result, "steps", input_cell(book, sheet, ("steps",), None))
    initial = {}
    for kind, group in names.items():
        values = [number_input(context, result, f"initial {n}", (sheet.name, rows[0], columns[normal(n)]))
                  for n in group]
        shape = (U, K) if kind == "users" else (K, M) if kind == "movies" else (-1,)
        initial[kind] = np.array(values).reshape(shape)
    first_col, last_col = columns[normal(names["users"][0])], columns[normal(next(reversed(names.values()))[-1])]
    result.inputs["initial parameters"] = {"cell": f"{sheet.name}!{cell_name(rows[0], first_col)}:"
                                                   f"{cell_name(rows[0], last_col)}",
                                           "value": f"{last_col - first_col + 1} numbers"}
    applied = sum(1 for n in step_numbers[1:] if n <= steps)
    history = gradient_descent(ratings, rated, initial, learning_rate, len(rows), applied, biases)
    for (lr, lc), v in sheet.constants.items():
        if normal(v) == "rated" and lr < header_row and (lr, lc + 1) in sheet.formulas:
            result.expect(lr, lc + 1, float(rated.sum()))
    # column by column (a column's rows at once): every step's rmse, parameters (where
    # formulas), gradients and errors
    at = np.asarray(rows, dtype=np.int64)
    result.expect_column(at, 2, np.array([state["rmse"] for state in history]))
    parameters = [n for group in names.values() for n in group]
    for key, labels in (("params", parameters), ("gradient", ["grad " + n for n in parameters])):
        table = np.array([np.concatenate([np.ravel(state[key][kind]) for kind in names]) for state in history])
        for index, label in enumerate(labels):
            col = columns[normal(label)]
            if key == "params":
                kept = [step for step, r in enumerate(rows) if (r, col) in sheet.formulas]
                result.expect_column(at[kept], col, table[kept, index])
            else:
                result.expect_column(at, col, table[:, index])
    table = np.array([np.ravel(state["error"]) for state in history])
    for index, label in enumerate(errors):
        result.expect_column(at, columns[normal(label)], table[:, index])
    return history[-1]["params"]
