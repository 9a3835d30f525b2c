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
from xlgen.reference.models import Linear, loss
from xlgen.reference.optimizers import debias
from xlgen.verify.core import SheetCheck
from xlgen.verify.stepwise import LOCAL_ULPS, ColumnModel, Columns, column_reader
from xlgen.verify.locate import (find_header_row, formula_rows, input_cell, name_target, normal,
                                 with_typed_non_numbers)

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
    result_context: object = None   # the verification's Context, to read the workbook's values

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
    found.result_context = context
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
        with_formulas = formula_rows(sheet)
        for c, column in ((x_col, xs), (y_col, ys)):
            present, indices = with_typed_non_numbers(sheet, rows, c, *with_formulas.of(rows, c))
            result.expect_column(present, c, column if indices is None else column[indices])
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


def row_model(found: Sheet, optimizer, state: dict, lrs, mom: float = None, sqr_mom: float = None,
              debiased: bool = False, step0: float = 0.0) -> ColumnModel:
    """The sheet's rows as a ColumnModel: the state is the weights, the optimiser's
    averages (and its step count, where the sheet shows one); a row predicts with the
    reference's linear model, takes its analytic gradient and lets the optimiser step at
    its epoch's learning rate (`lrs`, one per epoch)."""
    xs, ys, per_epoch = found.xs, found.ys, found.rows_per_epoch
    x_list, y_list = [float(x) for x in xs], [float(y) for y in ys]
    lrs = np.asarray(lrs, dtype=np.float64)
    stats = [stat.key for stat in found.stats]
    counted = "step" in found.col
    initial = {"b": found.inputs["b"], "a": found.inputs["a"]}
    carry = {"b": "new b", "a": "new a"}
    for key in stats:
        for i, weight in enumerate(GRAD_WEIGHTS):
            initial[f"{key} {weight}"] = float(state[key][i])
            carry[f"{key} {weight}"] = f"{key} {weight}"
    if counted:
        initial["step"], carry["step"] = float(step0), "step"

    def step(row_state: dict, index):
        """One row: (values shown, optimiser state after it) for scalars or arrays."""
        if isinstance(index, np.ndarray):
            x, y = xs[index % per_epoch], ys[index % per_epoch]
        else:
            x, y = x_list[index % per_epoch], y_list[index % per_epoch]
        w = {"b": row_state["b"], "a": row_state["a"]}
        gradient = Linear.gradient(w, x, y)
        p = np.stack([w["b"], w["a"]], axis=-1)
        g = np.stack([gradient["b"], gradient["a"]], axis=-1)
        averages = {key: np.stack([row_state[f"{key} b"], row_state[f"{key} a"]], axis=-1) for key in stats}
        steps = row_state["step"] if counted else step0 + index
        averages["step"] = np.asarray(steps, dtype=np.float64)[..., None]
        lr = row_state["lr"] if "lr" in row_state else lrs[np.minimum(index // per_epoch, len(lrs) - 1)]
        new_p, after = optimizer.step(p, g, averages, lr=np.asarray(lr)[..., None])
        return w, x, y, gradient, new_p, after

    def row(row_state: dict, index) -> dict:
        w, x, y, gradient, new_p, after = step(row_state, index)
        values = {"b": w["b"], "a": w["a"], "pred": Linear.predict(w, x), "err^2": loss(Linear, w, x, y),
                  "de/db": gradient["b"], "de/da": gradient["a"], "new b": new_p[..., 0], "new a": new_p[..., 1]}
        for key in stats:
            for i, weight in enumerate(GRAD_WEIGHTS):
                values[f"{key} {weight}"] = after[key][..., i]
        steps = after["step"][..., 0]
        values["step"] = steps
        ones = np.ones_like(steps)
        values["debias1"] = debias(mom, 1 - mom, steps) if debiased and mom is not None else ones
        values["debias2"] = debias(sqr_mom, 1 - sqr_mom, steps) if debiased and sqr_mom is not None else ones
        return values

    float_step = optimizer.float_step()
    named = [(weight, [(key, f"{key} {weight}") for key in stats]) for weight in GRAD_WEIGHTS]
    last_epoch = len(lrs) - 1
    lr_list = lrs.tolist()

    def next_state(row_state: dict, index: int) -> dict:
        """The row after, on plain floats one weight at a time (the optimiser works
        elementwise; `Optimizer.float_step`, the same arithmetic without its dicts): a
        run of rows takes a call per row, and stacking two-element arrays for each cost
        ~45 us a row (16 s of verify at 1,500 epochs)."""
        x, y = x_list[index % per_epoch], y_list[index % per_epoch]
        w = {"b": row_state["b"], "a": row_state["a"]}
        gradient = Linear.gradient(w, x, y)
        steps = float(row_state["step"] if counted else step0 + index)
        lr = float(row_state["lr"] if "lr" in row_state else lr_list[min(index // per_epoch, last_epoch)])
        out = {}
        for weight, keys in named:
            averages = {key: row_state[name] for key, name in keys}
            averages["step"] = steps
            try:
                if float_step is None:
                    raise ArithmeticError
                new_p, after = float_step(w[weight], gradient[weight], averages, lr)
            except (ArithmeticError, ValueError, TypeError, LookupError):   # where NumPy gives inf or nan
                new_p, after = optimizer.step(w[weight], gradient[weight], averages, lr=lr)
            out[weight] = float(new_p)
            for key, name in keys:
                out[name] = float(after[key])
            if counted:
                out["step"] = float(after["step"])
        return out

    def magnitude(row_state: dict, values: dict, index: np.ndarray) -> dict:
        """The size of the numbers behind each value: y - pred cancels; a step's relative
        rounding is that of the gradient (or average) and squared average it uses."""
        x, y = np.abs(xs[index % per_epoch]), np.abs(ys[index % per_epoch])
        out = {"pred": np.maximum(np.abs(row_state["a"]) * x, np.abs(row_state["b"]))}
        residual = np.maximum(out["pred"], y)
        error = np.abs(values["err^2"])
        out["err^2"] = np.maximum(error, 2 * np.sqrt(error) * residual)
        sizes = {"b": 2 * residual, "a": 2 * residual * x}
        out["de/db"], out["de/da"] = sizes["b"], sizes["a"]
        # debias = damp*(1 - mom^step)/(1 - mom): 1 - mom^step cancels, rounding as 1 does
        corrections = []
        for key, beta in (("debias1", mom), ("debias2", sqr_mom)):
            if debiased and beta is not None:
                out[key] = np.maximum(np.abs(values[key]), 1.0)
                corrections.append(ratio(out[key], np.abs(values[key])))
        for weight in GRAD_WEIGHTS:
            gradient = np.abs(values[f"de/d{weight}"])
            ratios = [ratio(sizes[weight], gradient), *corrections]
            for key in stats:
                beta = abs(mom if key == "grad_avg" else sqr_mom)
                previous = np.abs(row_state[f"{key} {weight}"]) * beta
                added = (1 - beta) * (sizes[weight] if key == "grad_avg" else 2 * gradient * sizes[weight])
                size = out[f"{key} {weight}"] = np.maximum(previous, added)
                ratios.append(ratio(size, np.maximum(np.abs(values[f"{key} {weight}"]),
                                                     np.abs(row_state[f"{key} {weight}"]))))
            moved = np.abs(values[f"new {weight}"] - row_state[weight])
            worst = np.max(np.stack(ratios), axis=0)
            out[f"new {weight}"] = np.maximum(np.abs(row_state[weight]),
                                              np.where(moved > 0, moved * np.maximum(worst, 1), 0))
        return out

    callbacks = tuple((getattr(f, "func", f).__name__, tuple(sorted(getattr(f, "keywords", {}).items())))
                      for f in optimizer.callbacks)
    key = ("optimizer", callbacks, tuple(sorted(optimizer.hypers.items())), tuple(sorted(initial.items())),
           tuple(lrs.tolist()), mom, sqr_mom, debiased, float(step0), counted, tuple(x_list), tuple(y_list))
    return ColumnModel(initial, carry, row, magnitude, noisy=tuple(name for name in carry if name != "step"),
                       step=next_state, key=key)


def betas(found: Sheet) -> dict:
    """The betas row_model needs for the sheet's averages (mom, sqr_mom), by keyword."""
    names = {"grad_avg": "mom", "sqr_avg": "sqr_mom"}
    return {names[stat.key]: found.inputs[stat.key + " beta"] for stat in found.stats}


def ratio(size, value):
    """size/|value|: how much larger than the value its rounding may be, relatively; 0
    where both are 0 (an exact zero); at most 2^52 (a value that cancelled to exactly 0)."""
    with np.errstate(all="ignore"):
        return np.minimum(np.where(value > 0, size / np.where(value > 0, value, 1.0), np.where(size > 0, np.inf, 0.0)),
                          2.0 ** 52)


def expect_rows(found: Sheet, columns: Columns) -> None:
    """Every formula cell of the rows, from the local and global checks."""
    sheet, result, col = found.sheet, found.result, found.col
    where = {col[header]: header for header in ("b", "a", "pred", "de/db", "de/da", "new b", "new a")}
    for stat in found.stats:
        for offset, weight in enumerate(GRAD_WEIGHTS):
            where[stat.col + offset] = f"{stat.key} {weight}"
    for header in ("err^2", "step", "debias1", "debias2"):
        if header in col:
            where[col[header]] = header
    with_formulas = formula_rows(sheet)
    for c, key in where.items():
        present, indices = with_typed_non_numbers(sheet, found.rows, c, *with_formulas.of(found.rows, c))
        if not len(present):
            continue
        expected, scales, bounds = columns.column(key)
        if indices is not None:
            expected, scales, bounds = expected[indices], scales[indices], bounds[indices]
        result.expect_column(present, c, expected, scales, bounds)


def checked_rows(found: Sheet, model: ColumnModel, local_inputs: dict | None = None) -> Columns:
    """The rows checked against the workbook: keys are read from their columns;
    `local_inputs` (name -> one value per row) are given to the local check's rows."""
    col = dict(found.col)
    for stat in found.stats:
        for offset, weight in enumerate(GRAD_WEIGHTS):
            col[f"{stat.key} {weight}"] = stat.col + offset
    col["new b"], col["new a"] = found.col["new b"], found.col["new a"]
    return Columns(model, len(found.rows), column_reader(found.result_context, found.sheet.name, found.rows, col),
                   local_inputs)


def expect_rmse(found: Sheet, columns: Columns) -> None:
    """The course's rmse under err^2 (momentum's L33 `=SQRT(SUM(L4:L32))`) and xlgen's
    table (epoch | rmse); locally the sheet's err^2 column as SUM over a range takes it."""
    sheet, per_epoch = found.sheet, found.rows_per_epoch
    epochs = len(found.rows) // per_epoch
    if "err^2" in found.col and (found.last + 1, found.col["err^2"]) in sheet.formulas:
        local = columns.summed("err^2")
        with np.errstate(all="ignore"):
            expected, bounds = columns.derived(np.sqrt(np.sum(local)), len(found.rows) + LOCAL_ULPS,
                                               np.sqrt(np.sum(columns.runs["err^2"], axis=0)))
        found.result.expect(found.last + 1, found.col["err^2"], float(expected[0]), bound=float(bounds[0]))
    table = epoch_table(sheet, found.header_row)
    if table is None:
        return
    # the table's rmse sums the sheet's err^2 column where it has one; else rmse is its own sum
    local = columns.summed("err^2") if "err^2" in found.col else columns.local["err^2"]
    with np.errstate(all="ignore"):
        local = np.sqrt(local[:epochs * per_epoch].reshape(epochs, per_epoch).sum(axis=1))
        runs = np.sqrt(columns.runs["err^2"][:epochs * per_epoch].reshape(epochs, per_epoch, 2).sum(axis=1))
    expected, bounds = columns.derived(local, per_epoch + LOCAL_ULPS, runs)
    row, c = table
    for r, epoch in epoch_rows(sheet, row, c):
        if 1 <= epoch <= epochs and (r, c + 1) in sheet.formulas:
            found.result.expect(r, c + 1, float(expected[epoch - 1]), bound=float(bounds[epoch - 1]))


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
