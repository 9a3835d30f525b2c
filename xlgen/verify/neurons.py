"""Reading and checking a block of SGD rows of the forum's models (linear, collapse,
ReLU), wherever a sheet holds one: model sheets, sweep sheets, the derivative sheet.

A block is found by its header row (x, y, a, b, ...); which model it is follows from
its headers (ax+b: two neurons; dead: a ReLU). Its inputs are named cells (the sheet's
learning_rate, derivative, initial_a, ... or a sweep run's run1_learning_rate, ...).
Each row is checked with xlgen.verify.stepwise: from the workbook's own previous row,
and as part of the whole run from the inputs. `row_model` is a block as a per-row model
(the definition); `array_model` is the same model for every row at once, which verify
uses: the same operations on the same numbers, so the same expectations bit for bit
(tests hold it to `row_model` on random and edge values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xlgen.reference.models import finite_gradient
from xlgen.reference.neurons import FINITE_STEP, blown_up, rmse, sgd_row, sgd_row_floats
from xlgen.verify.core import formula_cells, kept_for_sheet
from xlgen.verify.locate import formula_rows_below, input_cell, normal, text_constants
from xlgen.verify.stepwise import (LOCAL_ULPS, ArrayRowModel, RowModel, StepwiseRows, first_error,
                                   in_a_sum, largest, numeric, sizes)

HEAD = ("x", "y", "a", "b")
WEIGHTS = {"linear": ("a", "b"), "collapse": ("a", "b", "c", "d"), "relu": ("a", "b", "c", "d")}


@dataclass
class BlockMatch:
    sheet: str
    header_row: int
    col: dict            # header -> column
    rows: list           # sheet rows of the block, in order
    model: str
    momentum: bool

    def weights(self):
        return WEIGHTS[self.model]


def header_cells(sheet, row: int, col: int) -> dict:
    """The header row from `col` rightwards, up to the first blank."""
    out = {}
    while isinstance(sheet.constants.get((row, col)), str) and normal(sheet.constants[(row, col)]):
        out.setdefault(normal(sheet.constants[(row, col)]), col)
        col += 1
    return out


def find_blocks(sheet) -> list[BlockMatch]:
    """Every block in a sheet, top to bottom (found once per verification: the model,
    sweep, derivative, comparison and about checkers all ask; never to be changed)."""
    return kept_for_sheet(sheet, "neuron blocks", _find_blocks)


def _find_blocks(sheet) -> list[BlockMatch]:
    found = []
    for (row, col), value in text_constants(sheet):
        if normal(value) != "x":
            continue
        if not all(normal(sheet.constants.get((row, col + i))) == h for i, h in enumerate(HEAD)):
            continue
        cols = header_cells(sheet, row, col)
        model = "relu" if "dead" in cols else "collapse" if "ax+b" in cols else "linear"
        needed = ["y_pred", "err^2", *(f"new {w}" for w in WEIGHTS[model])]
        if model == "linear" and "c" in cols:
            continue
        if not all(h in cols for h in needed):
            continue
        rows = formula_rows_below(sheet, row, cols["a"])
        if rows:
            found.append(BlockMatch(sheet.name, row, cols, rows, model, "mom a" in cols))
    return found


@dataclass
class BlockInputs:
    learning_rate: float
    derivative: str
    initial: dict
    threshold: float
    momentum: float | None


def read_inputs(context, result, sheet, block: BlockMatch, prefix: str = "", label_prefix: str = "") -> BlockInputs:
    """The block's settings, from named cells (prefix + learning_rate, initial_a, ...)."""
    book = context.book

    def named(name, label=None):
        return context.input(result, label_prefix + name, input_cell(book, sheet, (prefix + name,), label))

    learning_rate = named("learning_rate", "learn" if not prefix else None)
    switch = input_cell(book, sheet, (prefix + "derivative", "derivative"), "derivative")
    derivative = "finite"
    if switch is not None:
        derivative = "finite" if normal(context.input(result, "derivative", switch)) == "finite" else "analytic"
    threshold = context.input(result, "blowup_threshold",
                              input_cell(book, sheet, (prefix + "blowup_threshold", "blowup_threshold"), "blow-up above"))
    momentum = None
    if block.momentum:
        momentum = context.input(result, "momentum",
                                 input_cell(book, sheet, (prefix + "momentum", "momentum"), "momentum"))
    initial = {w: named(f"initial_{w}") for w in block.weights()}
    return BlockInputs(learning_rate, derivative, initial, threshold, momentum)


def data_points(context, result, sheet, block: BlockMatch):
    """x and y per row: the data sheet's points when the block links to them, else the
    block's own values taken as inputs. Also (rows per epoch)."""
    x_col, y_col = block.col["x"], block.col["y"]
    linked = any((r, x_col) in sheet.formulas or (r, y_col) in sheet.formulas for r in block.rows)
    dataset = context.dataset
    if linked and dataset is not None:
        per_epoch = len(dataset.x)
        reps = -(-len(block.rows) // per_epoch)
        return np.tile(dataset.x, reps)[:len(block.rows)], np.tile(dataset.y, reps)[:len(block.rows)], per_epoch
    if linked:
        result.notes.append("x and y link to a data sheet that was not recognised; their values are taken as inputs")
    xs = np.array([numeric(value) for value in context.column(sheet.name, block.rows, x_col)])
    ys = np.array([numeric(value) for value in context.column(sheet.name, block.rows, y_col)])
    # rows per epoch: where the 'row' counter starts again at 1, if the block has one
    per_epoch = len(block.rows)
    if "row" in block.col:
        counters = [sheet.constants.get((r, block.col["row"])) for r in block.rows]
        restarts = [i for i, value in enumerate(counters) if value == 1]
        if len(restarts) > 1:
            per_epoch = restarts[1] - restarts[0]
    return xs, ys, per_epoch


def _carry_and_initial(weights: tuple, inputs: BlockInputs) -> tuple[dict, dict]:
    """A block's state (the weights, their momentum, the running blow-up step): the row
    value each part is carried by, and its value before the first row."""
    carry = {w: f"new {w}" for w in weights}
    initial = {w: np.float64(inputs.initial[w]) for w in weights}
    if inputs.momentum is not None:
        carry.update({f"mom {w}": f"mom {w}" for w in weights})
        initial.update({f"mom {w}": np.float64(0.0) for w in weights})
    carry["blow-up"] = "blow-up"
    initial["blow-up"] = 0.0
    return carry, initial


def _shown(out: dict, x, y, weights) -> dict:
    """What a row shows of the reference's sgd_row `out` (floats or arrays), by column key."""
    values = {"x": x, "y": y, "y_pred": out["prediction"], "err^2": out["loss"]}
    for w in weights:
        values[w] = out["before"][w]
        values[f"err{w}1"] = out["bumped"][w]
        values[f"est de/d{w}"] = out["finite"][w]
        values[f"de/d{w}"] = out["analytic"][w]
        values[f"new {w}"] = out["after"][w]
        if "mom" in out:
            values[f"mom {w}"] = out["mom"][w]
    if "hidden" in out:
        values["ax+b"] = out["hidden"]
    return values


def row_model(block: BlockMatch, inputs: BlockInputs, xs, ys) -> RowModel:
    """The block as a per-row model for xlgen.verify.stepwise: the state is the weights,
    their momentum and the running blow-up step; a row is the reference's sgd_row."""
    weights = block.weights()
    carry, initial = _carry_and_initial(weights, inputs)

    def row(state: dict, index: int) -> dict:
        mom = {w: state[f"mom {w}"] for w in weights} if inputs.momentum is not None else None
        out = sgd_row(block.model, {w: state[w] for w in weights}, xs[index], ys[index],
                      learning_rate=inputs.learning_rate, derivative=inputs.derivative,
                      finite_step=FINITE_STEP, momentum=inputs.momentum, mom_before=mom)
        values = _shown(out, xs[index], ys[index], weights)
        previous = state["blow-up"]
        if previous > 0:
            values["blow-up"] = previous
        else:
            values["blow-up"] = float(index + 1) if blown_up(out["loss"], inputs.threshold) else 0.0
        if block.model == "relu":
            hidden = out["hidden"]
            values["dead"] = math.nan if not math.isfinite(hidden) else float(hidden < 0)
        return values

    def magnitude(state: dict, values: dict) -> dict:
        """The size of the numbers behind each value (where rounding noise comes from)."""
        size = {w: _size(state[w]) for w in weights}
        x = _size(values["x"])
        out = {}
        if block.model == "linear":
            out["y_pred"] = max(size["a"] * x, size["b"])
        else:
            out["ax+b"] = max(size["a"] * x, size["b"])
            hidden = max(_size(values["ax+b"]), out["ax+b"])
            out["y_pred"] = max(size["c"] * hidden, size["d"])
        both = max(out["y_pred"], _size(values["y_pred"]), _size(values["y"]))   # y - y_pred cancels
        for key in ("err^2", *(f"err{w}1" for w in weights)):
            error = _size(values[key])
            out[key] = max(error, 2 * math.sqrt(error) * both)
        for w in weights:
            out[f"est de/d{w}"] = max(out[f"err{w}1"], out["err^2"]) / FINITE_STEP
        residual = 2 * both
        if block.model == "linear":
            out.update({"de/db": residual, "de/da": residual * x})
        else:
            out.update({"de/dd": residual, "de/db": residual * size["c"], "de/da": residual * size["c"] * x,
                        "de/dc": residual * hidden})
        for w in weights:
            used = out[f"est de/d{w}"] if inputs.derivative == "finite" else out[f"de/d{w}"]
            if inputs.momentum is not None:
                beta = abs(inputs.momentum)
                used = out[f"mom {w}"] = max(_size(state[f"mom {w}"]) * beta, (1 - beta) * used)
            out[f"new {w}"] = max(size[w], abs(inputs.learning_rate) * used)
        return out

    def refine(state: dict, values: dict, given) -> tuple[dict, dict]:
        """The finite differences from the workbook's own losses in the row, the momentum
        and the step from the workbook's own derivative (and momentum) in the row."""
        updates, sizes = {}, {}
        with np.errstate(all="ignore"):
            base = given("err^2")
            for w in weights:
                bumped = given(f"err{w}1")
                if base is not None and bumped is not None:
                    updates[f"est de/d{w}"] = finite_gradient(base, {w: bumped}, FINITE_STEP)[w]
                    sizes[f"est de/d{w}"] = max(_size(bumped), _size(base)) / FINITE_STEP
                used = given(f"est de/d{w}") if inputs.derivative == "finite" else given(f"de/d{w}")
                if used is None:
                    continue
                if inputs.momentum is not None:
                    beta = np.float64(inputs.momentum)
                    previous = np.float64(state[f"mom {w}"])
                    updates[f"mom {w}"] = previous * beta + (1 - beta) * used
                    sizes[f"mom {w}"] = max(_size(previous * beta), _size((1 - beta) * used))
                    used = given(f"mom {w}")
                    if used is None:
                        continue
                updates[f"new {w}"] = np.float64(state[w]) - used * inputs.learning_rate
                sizes[f"new {w}"] = max(_size(state[w]), _size(used * inputs.learning_rate))
        return updates, sizes

    noisy = tuple(w for w in weights) + tuple(f"mom {w}" for w in weights if inputs.momentum is not None)
    key = (block.model, inputs.learning_rate, inputs.derivative, inputs.threshold, inputs.momentum,
           tuple(sorted(inputs.initial.items())), tuple(np.asarray(xs).tolist()), tuple(np.asarray(ys).tolist()))
    return RowModel(initial, carry, row, noisy, magnitude, key, refine)


def array_model(block: BlockMatch, inputs: BlockInputs, xs, ys) -> ArrayRowModel:
    """`row_model` for every row at once (arrays, one element per row), its run stepped
    on plain floats (reference.neurons.sgd_row_floats)."""
    weights = block.weights()
    momentum = inputs.momentum
    carry, initial = _carry_and_initial(weights, inputs)
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    x_floats, y_floats = xs.tolist(), ys.tolist()
    settings = dict(learning_rate=inputs.learning_rate, derivative=inputs.derivative, finite_step=FINITE_STEP,
                    momentum=momentum)

    def rows(state: dict, indices: np.ndarray) -> dict:
        x, y = xs[indices], ys[indices]
        mom = {w: state[f"mom {w}"] for w in weights} if momentum is not None else None
        out = sgd_row(block.model, {w: state[w] for w in weights}, x, y, mom_before=mom, **settings)
        values = _shown(out, x, y, weights)
        previous, loss = state["blow-up"], out["loss"]
        blown = ~np.isfinite(loss) | (loss > inputs.threshold)   # blown_up
        values["blow-up"] = np.where(previous > 0, previous, np.where(blown, indices + 1.0, 0.0))
        if block.model == "relu":
            hidden = out["hidden"]
            values["dead"] = np.where(np.isfinite(hidden), (hidden < 0).astype(np.float64), np.nan)
        return values

    def step(state: dict, index: int, sized: bool) -> tuple[dict, dict]:
        mom = {w: state[f"mom {w}"] for w in weights} if momentum is not None else None
        out = sgd_row_floats(block.model, state, x_floats[index], y_floats[index], mom_before=mom, **settings)
        after = {w: out["after"][w] for w in weights}
        if mom is not None:
            after.update({f"mom {w}": out["mom"][w] for w in weights})
        previous = state["blow-up"]
        after["blow-up"] = previous if previous > 0 else float(index + 1) if blown_up(out["loss"], inputs.threshold) \
            else 0.0
        if not sized:
            return after, {}
        return after, _carried_sizes(block.model, inputs, state, x_floats[index], y_floats[index], out)

    def magnitude(state: dict, values: dict) -> dict:
        return _magnitude(block.model, inputs, state, values)

    def refine(state: dict, values: dict, given) -> tuple[dict, dict]:
        """row_model's refine, every row at once."""
        updates, refined = {}, {}
        base = given("err^2")
        for w in weights:
            bumped = given(f"err{w}1")
            if base is not None and bumped is not None:
                updates[f"est de/d{w}"] = finite_gradient(base, {w: bumped}, FINITE_STEP)[w]
                refined[f"est de/d{w}"] = largest(sizes(bumped), sizes(base)) / FINITE_STEP
            used = given(f"est de/d{w}") if inputs.derivative == "finite" else given(f"de/d{w}")
            if used is None:
                continue
            if momentum is not None:
                beta = np.float64(momentum)
                previous = state[f"mom {w}"]
                updates[f"mom {w}"] = previous * beta + (1 - beta) * used
                refined[f"mom {w}"] = largest(sizes(previous * beta), sizes((1 - beta) * used))
                used = given(f"mom {w}")
                if used is None:
                    continue
            updates[f"new {w}"] = state[w] - used * inputs.learning_rate
            refined[f"new {w}"] = largest(sizes(state[w]), sizes(used * inputs.learning_rate))
        return updates, refined

    noisy = tuple(weights) + tuple(f"mom {w}" for w in weights if momentum is not None)
    key = (block.model, inputs.learning_rate, inputs.derivative, inputs.threshold, momentum,
           tuple(sorted(inputs.initial.items())), tuple(x_floats), tuple(y_floats))
    return ArrayRowModel(initial, carry, rows, step, noisy, magnitude, key, refine)


def _magnitude(model: str, inputs: BlockInputs, state: dict, values: dict) -> dict:
    """row_model's magnitude, every row at once (stepwise.sizes for _size, stepwise.largest for max)."""
    size = {w: sizes(state[w]) for w in WEIGHTS[model]}
    x = sizes(values["x"])
    out = {}
    if model == "linear":
        out["y_pred"] = largest(size["a"] * x, size["b"])
    else:
        out["ax+b"] = largest(size["a"] * x, size["b"])
        hidden = largest(sizes(values["ax+b"]), out["ax+b"])
        out["y_pred"] = largest(size["c"] * hidden, size["d"])
    both = largest(out["y_pred"], sizes(values["y_pred"]), sizes(values["y"]))   # y - y_pred cancels
    error = sizes(values["err^2"])
    base = out["err^2"] = largest(error, 2 * np.sqrt(error) * both)
    for w, (bumped, estimate, _, _, _) in _KEYS[model]:
        error = sizes(values[bumped])
        out[bumped] = largest(error, 2 * np.sqrt(error) * both)
        out[estimate] = largest(out[bumped], base) / FINITE_STEP
    residual = 2 * both
    if model == "linear":
        out.update({"de/db": residual, "de/da": residual * x})
    else:
        out.update({"de/dd": residual, "de/db": residual * size["c"], "de/da": residual * size["c"] * x,
                    "de/dc": residual * hidden})
    finite, momentum, rate = inputs.derivative == "finite", inputs.momentum, abs(inputs.learning_rate)
    for w, (_, estimate, analytic, new, mom) in _KEYS[model]:
        used = out[estimate] if finite else out[analytic]
        if momentum is not None:
            beta = abs(momentum)
            used = out[mom] = largest(sizes(state[mom]) * beta, (1 - beta) * used)
        out[new] = largest(size[w], rate * used)
    return out


def _carried_sizes(model: str, inputs: BlockInputs, state: dict, x: float, y: float, out: dict) -> dict:
    """_magnitude of the values a run carries (new weights, their momentum) for one row on
    floats (`out`: its sgd_row_floats), computing only what they need. Python's max(a, b)
    is spelled `b if b > a else a` (the same value, NaN included) to save its calls."""
    inf = math.inf
    weights = WEIGHTS[model]
    size = {w: abs(v) if -inf < (v := state[w]) < inf else 0.0 for w in weights}
    x = abs(x) if -inf < x < inf else 0.0
    inner = size["a"] * x
    inner = size["b"] if size["b"] > inner else inner                    # max(|a|*x, |b|)
    if model == "linear":
        predicted = inner
    else:
        hidden = out["hidden"]
        hidden = abs(hidden) if -inf < hidden < inf else 0.0
        hidden = inner if inner > hidden else hidden                     # max(|ax+b|, that)
        predicted = size["c"] * hidden
        predicted = size["d"] if size["d"] > predicted else predicted    # max(|c|*hidden, |d|)
    both = predicted
    for value in (out["prediction"], y):                                 # max(that, |y_pred|, |y|)
        value = abs(value) if -inf < value < inf else 0.0
        both = value if value > both else both
    if inputs.derivative == "finite":
        error = out["loss"]
        error = abs(error) if -inf < error < inf else 0.0
        base = 2 * math.sqrt(error) * both
        base = base if base > error else error                           # max(err, 2*sqrt(err)*both)
        used = {}
        for w in weights:
            error = out["bumped"][w]
            error = abs(error) if -inf < error < inf else 0.0
            bumped = 2 * math.sqrt(error) * both
            bumped = bumped if bumped > error else error
            used[w] = (base if base > bumped else bumped) / FINITE_STEP   # max(bumped, base) / step
    else:
        residual = 2 * both
        if model == "linear":
            used = {"b": residual, "a": residual * x}
        else:
            used = {"d": residual, "b": residual * size["c"], "a": residual * size["c"] * x, "c": residual * hidden}
    carried = {}
    momentum, rate = inputs.momentum, abs(inputs.learning_rate)
    for w, (_, _, _, _, mom) in _KEYS[model]:
        step = used[w]
        if momentum is not None:
            beta = abs(momentum)
            before = state[mom]
            before = (abs(before) if -inf < before < inf else 0.0) * beta
            step = (1 - beta) * step
            step = carried[mom] = step if step > before else before       # max(|mom|*beta, (1-beta)*used)
        step = rate * step
        carried[w] = step if step > size[w] else size[w]                 # max(|w|, |lr|*used)
    return carried


# per model, per weight: the keys of its (bumped loss, finite and analytic derivative, new weight, momentum)
_KEYS = {model: tuple((w, (f"err{w}1", f"est de/d{w}", f"de/d{w}", f"new {w}", f"mom {w}")) for w in weights)
         for model, weights in WEIGHTS.items()}


def _size(value) -> float:
    """|value|, 0 for anything not a finite number (an error cell has no rounding noise)."""
    try:
        value = abs(float(value))
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


@dataclass
class CheckedBlock:
    match: BlockMatch
    stepwise: StepwiseRows
    rows_per_epoch: int

    @property
    def epochs(self) -> int:
        return len(self.match.rows) // self.rows_per_epoch

    @property
    def sum_ulps(self) -> int:
        """The local bound of an epoch's rmse, in ulps: a sum of its rows rounds once per row."""
        return self.rows_per_epoch + LOCAL_ULPS

    def epoch_range(self, epoch: int) -> range:
        return range((epoch - 1) * self.rows_per_epoch, epoch * self.rows_per_epoch)

    # summaries of a run (the workbook's rows or a reference run), for sheets that sum up a block
    def rmse(self, epoch: int):
        return lambda rows: self._summed(rows, epoch, "err^2", rmse)

    def at_end(self, epoch: int, key: str):
        return lambda rows: rows[self.epoch_range(epoch)[-1]][key]

    def dead_rows(self, epoch: int):
        return lambda rows: self._summed(rows, epoch, "dead", lambda values: float(np.sum(values)))

    def _summed(self, rows, epoch: int, key: str, total):
        """`total` of the epoch's column `key` as SUM over its range takes it: an error in
        the range is the sum's (the first), else text and TRUE/FALSE are skipped."""
        values = [rows[i][key] for i in self.epoch_range(epoch)]
        error = first_error(values)
        return error if error is not None else total([in_a_sum(value) for value in values])

    def first_blowup(self):
        return lambda rows: rows[len(rows) - 1]["blow-up"]

    def where(self, what: str):
        """epoch or data row of the first blow-up step; 'none' when there is none."""
        def find(rows):
            step = rows[len(rows) - 1]["blow-up"]
            if not isinstance(step, float) or not math.isfinite(step):
                return math.nan
            if step == 0:
                return "none"
            index = int(step) - 1
            return float(index // self.rows_per_epoch + 1 if what == "epoch" else index % self.rows_per_epoch + 1)
        return find


def prepare(context, result, sheet, block: BlockMatch, inputs: BlockInputs) -> CheckedBlock:
    """The block's model checked against the workbook (xlgen.verify.stepwise), every row at once."""
    xs, ys, per_epoch = data_points(context, result, sheet, block)
    if len(block.rows) % per_epoch:
        result.notes.append(f"{len(block.rows)} rows is not a whole number of epochs of {per_epoch} points")
        per_epoch = len(block.rows)

    # every column of the block read at once (not cell by cell: single lookups past a few
    # thousand make the engine's values into a dict); the block keeps no reference to the
    # context, so a context's cached blocks (model.checked_sheet) do not keep it alive
    columns = {key: context.column(sheet.name, block.rows, col) for key, col in block.col.items()}
    stepwise = StepwiseRows(array_model(block, inputs, xs, ys), len(block.rows), columns)
    return CheckedBlock(block, stepwise, per_epoch)


def expect_rows(result, sheet, checked: CheckedBlock) -> None:
    """Expect every formula cell of the block's rows (row by row, as the block reads)."""
    block, stepwise = checked.match, checked.stepwise
    keys = [key for key in stepwise.keys if key in block.col]
    if not keys:
        return
    rows = np.asarray(block.rows, dtype=np.int64)
    cols = np.array([block.col[key] for key in keys], dtype=np.int64)
    # which of the (row, key) cells hold formulas, read row by row: each cell as one code
    formula_rows, formula_cols = formula_cells(sheet)
    if not len(formula_rows):
        return
    width = int(max(cols.max(), formula_cols.max())) + 1
    wanted = np.isin((rows[:, None] * width + cols[None, :]).reshape(-1),
                     formula_rows.astype(np.int64) * width + formula_cols)
    if not wanted.all():   # TRUE/FALSE or text typed over a formula is checked as the formula (a number is an input)
        constants = sheet.constants
        for index in np.flatnonzero(~wanted).tolist():
            row, col = int(rows[index // len(keys)]), int(cols[index % len(keys)])
            wanted[index] = isinstance(constants.get((row, col)), (bool, str))
    expectations = [stepwise.column(key) for key in keys]
    values, scales, bounds = (np.column_stack([e[part] for e in expectations]).reshape(-1)[wanted] for part in range(3))
    cells = list(zip(np.repeat(rows, len(keys))[wanted].tolist(), np.tile(cols, len(rows))[wanted].tolist()))
    result.expect_many(cells, values, scales, bounds)
