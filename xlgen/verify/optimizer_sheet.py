"""What the checkers of the course's optimiser sheets share (momentum, rmsprop, adam, adam_ann).

All four sheets carry the same header row (x, y, b, a, pred, de/db, de/da, new b,
new a); which optimiser a sheet runs is told by its sheet-scoped names: the course names
its momentum state `momtarget`/`momlast` and its squared averages `ms_last` (a name
pointing at #REF! does not count), adam_ann has `prev_grad2`; xlgen names the betas
`mom` and `sqr_mom`. Without names, xlgen's row-2 labels (grad_avg b, sqr_avg b) or the
sheet's name decide.

Inputs are read from the workbook: learn (the named lr/learning_rate, or the cell under
the label "learn"), the start weights (const/slope, initial_b/initial_a, or beside the
labels b and a), the betas (named mom/sqr_mom, else J1 and L1 as in the course), and the
state entering the first row: row 3's value, or, where row 3 is a formula (the course's
J3 `=J33`), the saved state under the last row that it reads (J33). fastai's settings
(eps, debias, dampening, the step count) are named input cells when present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xlgen.errors import XlgenError
from xlgen.formula import cell_name
from xlgen.reference.optimizers import debias
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, input_cell, labelled_cell, name_target, normal

HEADERS = ("x", "y", "b", "a", "pred", "de/db", "de/da", "new b", "new a")
COLUMNS = {header: i for i, header in enumerate(HEADERS)}      # offset from the first column
STATE_OFFSET = 9                                                # J, relative to x in A
GRAD_WEIGHTS = ("b", "a")


def sheet_names(book, sheet) -> set:
    """Upper-case sheet-scoped names of `sheet` whose target is not #REF!."""
    return {name for (scope, name), text in book.names.items()
            if scope is not None and scope.lower() == sheet.name.lower() and "#REF!" not in text.upper()}


def kind(book, sheet, header_row: int, c0: int) -> str | None:
    """momentum, rmsprop, adam or adam_ann."""
    names = sheet_names(book, sheet)
    grad = bool(names & {"MOM", "MOMTARGET", "MOMLAST"})
    sqr = bool(names & {"SQR_MOM", "MS_LAST"})
    if not (grad or sqr):
        labels = {normal(sheet.constants.get((header_row - 1, c0 + STATE_OFFSET + i))) for i in range(4)}
        grad, sqr = "grad_avg b" in labels, "sqr_avg b" in labels
    if not (grad or sqr):
        lowered = sheet.name.lower()
        grad = "momentum" in lowered or "adam" in lowered
        sqr = "rmsprop" in lowered or "adam" in lowered
    if grad and sqr:
        return "adam_ann" if "PREV_GRAD2" in names or "ann" in sheet.name.lower() else "adam"
    if grad:
        return "momentum"
    if sqr:
        return "rmsprop"
    return None


def recogniser(layout: str):
    def recognise(book, sheet):
        found = find_header_row(sheet, HEADERS)
        if found is None or kind(book, sheet, *found) != layout:
            return None
        return found
    return recognise


@dataclass
class Stat:
    key: str            # grad_avg | sqr_avg
    beta_names: tuple   # names its beta may have
    col: int            # its b column (a beside it)


@dataclass
class Sheet:
    """A recognised optimiser sheet: where its parts are and what its inputs hold."""
    sheet: object
    result: SheetCheck
    header_row: int
    c0: int
    rows: list
    stats: list
    names: set
    col: dict = field(default_factory=dict)       # header -> column, the course's and the extra ones
    inputs: dict = field(default_factory=dict)    # read values
    xs: np.ndarray = None
    ys: np.ndarray = None
    rows_per_epoch: int = 0

    @property
    def last(self) -> int:
        return self.rows[-1]


def open_sheet(sheet, match, context, layout: str, stats: list) -> Sheet | None:
    header_row, c0 = match
    result = SheetCheck(sheet.name, layout)
    rows = []
    row = header_row + 1
    while ((row, c0) in sheet.constants or (row, c0) in sheet.formulas) and (row, c0 + 2) in sheet.formulas:
        rows.append(row)
        row += 1
    if not rows:
        return None
    found = Sheet(sheet, result, header_row, c0, rows, stats, sheet_names(context.book, sheet))
    found.col = {header: c0 + offset for header, offset in COLUMNS.items()}
    for (r, c), value in sheet.constants.items():   # extra columns: headers in row 3, step's label in row 2
        if c >= c0 + STATE_OFFSET and normal(value) in ("err^2", "debias1", "debias2") and r == header_row:
            found.col[normal(value)] = c
        if c >= c0 + STATE_OFFSET and normal(value) == "step" and r in (header_row - 1, header_row):
            found.col["step"] = c
    return found


# --- inputs ---------------------------------------------------------------------------

def below_label(sheet, label: str, max_row: int = 5):
    """(row, col) of the cell under a text label near the top (the course's 'learn' over D2)."""
    wanted = normal(label)
    for (row, col), value in sorted(sheet.constants.items()):
        if row <= max_row and normal(value) == wanted:
            return row + 1, col
    return None


def number_input(context, found: Sheet, label: str, names: tuple, fallback):
    """A number input: a named cell, else `fallback` ((row, col) on the sheet or None)."""
    cell = name_target(context.book, found.sheet.name, *names)
    if cell is None and fallback is not None:
        cell = (found.sheet.name, *fallback)
    value = context.input(found.result, label, cell)
    found.inputs[label] = value
    return value


def flag_input(context, found: Sheet, label: str, name: str, default: bool) -> bool:
    """A TRUE/FALSE named input (dampening, debias); `default` when the sheet has none."""
    cell = name_target(context.book, found.sheet.name, name)
    if cell is None:
        return default
    value = context.value(*cell)
    found.result.inputs[label] = {"cell": f"{cell[0]}!{cell_name(cell[1], cell[2])}", "value": value}
    if isinstance(value, str) and normal(value) in ("true", "false"):
        value = normal(value) == "true"
    if not isinstance(value, (bool, int, float)):
        raise XlgenError(f"{cell[0]}!{cell_name(cell[1], cell[2])} ({label}) should hold TRUE or FALSE, not {value!r}")
    return bool(value)


def read_common(context, found: Sheet) -> None:
    sheet = found.sheet
    found.inputs["lr"] = number_input(context, found, "learning_rate", ("learning_rate", "lr"), below_label(sheet, "learn"))
    b_cell = input_cell(context.book, sheet, ("initial_b", "const"), "b")
    a_cell = input_cell(context.book, sheet, ("initial_a", "slope"), "a")
    found.inputs["b"] = context.input(found.result, "initial b", b_cell)
    found.inputs["a"] = context.input(found.result, "initial a", a_cell)
    for stat in found.stats:
        found.inputs[stat.key + " beta"] = number_input(context, found, stat.beta_names[0], stat.beta_names,
                                                        (1, stat.col))
    read_data(context, found)


def read_state(context, found: Sheet, stat: Stat) -> np.ndarray:
    """The state entering the first row, per weight: row 3's value, or the course's saved
    state under the last row where row 3 is a formula (J3 `=J33`)."""
    sheet, values = found.sheet, []
    for offset, weight in enumerate(GRAD_WEIGHTS):
        col = stat.col + offset
        where = (found.header_row, col)
        label = f"{stat.key} {weight} entering row {found.rows[0]}"
        if where in sheet.formulas:
            saved = (found.last + 1, col)
            if saved in sheet.constants:
                value = context.input(found.result, label + " (saved)", (sheet.name, *saved))
                found.result.expect(*where, value)
            else:
                value = context.input(found.result, label, (sheet.name, *where))
                found.result.notes.append(f"{sheet.name}!{cell_name(*where)} is a formula with no saved state "
                                          f"below the rows; its value is taken as the starting {stat.key}")
                found.result.expect(*where, value)
        else:
            value = context.input(found.result, label, (sheet.name, *where))
        values.append(value)
    return np.array(values, dtype=np.float64)


def read_data(context, found: Sheet) -> None:
    """x and y: linked to the data sheet (then checked against it) or pasted (inputs)."""
    sheet, rows, result = found.sheet, found.rows, found.result
    x_col, y_col = found.col["x"], found.col["y"]
    linked = any((r, x_col) in sheet.formulas or (r, y_col) in sheet.formulas for r in rows)
    dataset = context.dataset if linked else None
    if dataset is not None:
        found.rows_per_epoch = len(dataset.x)
        reps = -(-len(rows) // found.rows_per_epoch)
        xs, ys = np.tile(dataset.x, reps)[:len(rows)], np.tile(dataset.y, reps)[:len(rows)]
        for r, x, y in zip(rows, xs, ys):
            for c, value in ((x_col, x), (y_col, y)):
                if (r, c) in sheet.formulas:
                    result.expect(r, c, value)
    else:
        if linked:
            result.notes.append("x and y link to a data sheet that was not recognised; their values are taken as inputs")
        xs = context.numbers(sheet.name, [(r, x_col) for r in rows], "x")
        ys = context.numbers(sheet.name, [(r, y_col) for r in rows], "y")
        found.rows_per_epoch = len(rows)
    if len(rows) % found.rows_per_epoch:
        result.notes.append(f"{len(rows)} rows is not a whole number of epochs of {found.rows_per_epoch} points")
        found.rows_per_epoch = len(rows)
    found.xs, found.ys = xs[:found.rows_per_epoch], ys[:found.rows_per_epoch]


# --- expectations -------------------------------------------------------------------

def expect_damp(context, found: Sheet, stat: Stat, dampening: bool) -> float:
    """The cell beside beta (the course's K1 `=1-J1`): the weight of the new value."""
    beta = found.inputs[stat.key + " beta"]
    damp = 1 - beta if dampening else 1.0
    if (1, stat.col + 1) in found.sheet.formulas:
        found.result.expect(1, stat.col + 1, damp)
    return damp


def expect_rows(found: Sheet, trace, mom: float = None, sqr_mom: float = None, debiased: bool = True) -> None:
    """Every formula cell of the rows, from the reference's trace."""
    sheet, result, col = found.sheet, found.result, found.col
    columns = {
        col["b"]: trace.before["b"], col["a"]: trace.before["a"], col["pred"]: trace.prediction,
        col["de/db"]: trace.gradient["b"], col["de/da"]: trace.gradient["a"],
        col["new b"]: trace.after["b"], col["new a"]: trace.after["a"],
    }
    for stat in found.stats:
        for offset, weight in enumerate(GRAD_WEIGHTS):
            columns[stat.col + offset] = trace.state[stat.key][weight]
    if "err^2" in col:
        columns[col["err^2"]] = trace.loss
    if "step" in col and "step" in trace.state:
        columns[col["step"]] = trace.state["step"]
        if "debias1" in col:
            steps = trace.state["step"]
            ones = np.ones(len(steps))
            columns[col["debias1"]] = debias(mom, 1 - mom, steps) if debiased else ones
            columns[col["debias2"]] = debias(sqr_mom, 1 - sqr_mom, steps) if debiased else ones
    for c, values in columns.items():
        for i, r in enumerate(found.rows):
            if (r, c) in sheet.formulas:
                result.expect(r, c, values[i])


def expect_rmse(found: Sheet, trace) -> None:
    """The course's rmse under err^2 (momentum's L33) and xlgen's table (epoch | rmse)."""
    sheet = found.sheet
    if "err^2" in found.col and (found.last + 1, found.col["err^2"]) in sheet.formulas:
        found.result.expect(found.last + 1, found.col["err^2"], np.sqrt(np.sum(trace.loss)))
    table = epoch_table(sheet, found.header_row)
    if table is None:
        return
    row, c = table
    for r, epoch in epoch_rows(sheet, row, c):
        if 1 <= epoch <= len(trace.rmse) and (r, c + 1) in sheet.formulas:
            found.result.expect(r, c + 1, trace.rmse[epoch - 1])


def epoch_table(sheet, header_row: int):
    return find_header_row(sheet, ("epoch", "rmse"))


def epoch_rows(sheet, header_row: int, c: int):
    """(row, epoch number) under the table's header while epoch numbers continue."""
    row = header_row + 1
    while isinstance(sheet.constants.get((row, c)), float) and sheet.constants[(row, c)].is_integer():
        yield row, int(sheet.constants[(row, c)])
        row += 1


def epochs_in(found: Sheet) -> int:
    return len(found.rows) // found.rows_per_epoch
