"""A block of SGD rows for the forum's models (linear, collapse, ReLU), shared by the
model, sweep and derivative sheets.

One row per data point, epochs unrolled: the weights the row starts with, a*x+b (two
neurons), the prediction and squared error, the forum's finite-difference derivatives
(loss with the weight + 0.01, minus the loss, over 0.01, the 0.01 a literal in the
formulas), the analytic derivatives, optionally the momentum of each derivative, the
new weights, and a running "blow-up" column: the step at which the squared error first
passed the threshold or turned into an Excel error (0 until then). ReLU blocks add a
"dead" column (1 where a*x+b < 0: a, b and c get no derivative from that point).

The builder writes formulas only; no number here is an expected result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xlgen.errors import TemplateError
from xlgen.formula import Expr, Group, Here, Name, Range, Ref, RowTemplate, call
from xlgen.sheets.plan import Highlight, SheetPlan

FINITE_STEP = 0.01   # the forum's step, a literal in the formulas
WEIGHTS = {"linear": ("a", "b"), "collapse": ("a", "b", "c", "d"), "relu": ("a", "b", "c", "d")}
FORMULAS = {"linear": "y = a*x + b", "collapse": "y = c*(a*x + b) + d", "relu": "y = c*max(a*x + b, 0) + d"}


def headers(model: str, momentum: bool) -> list[str]:
    """The block's header row, left to right (verify finds blocks by these)."""
    weights = WEIGHTS[model]
    cols = ["x", "y", *weights]
    if model != "linear":
        cols.append("ax+b")
    cols += ["y_pred", "err^2"]
    cols += [f"err{w}1" for w in weights]
    cols += [f"est de/d{w}" for w in weights]
    cols += [f"de/d{w}" for w in weights]
    if momentum:
        cols += [f"mom {w}" for w in weights]
    cols += [f"new {w}" for w in weights]
    cols.append("blow-up")
    if model == "relu":
        cols.append("dead")
    cols += ["step", "epoch", "row"]
    return cols


@dataclass
class BlockInputs:
    """Where a block reads its settings: expressions (usually names of input cells)."""
    learning_rate: Expr
    derivative: Expr           # a cell holding "finite" or "analytic"
    initial: dict              # weight -> Expr
    threshold: Expr
    momentum: Expr | None = None


@dataclass
class Block:
    model: str
    header_row: int
    first_row: int
    rows_per_epoch: int
    epochs: int
    col: dict = field(default_factory=dict)    # header -> column

    @property
    def last_row(self) -> int:
        return self.first_row + self.rows_per_epoch * self.epochs - 1

    def epoch_rows(self, epoch: int) -> tuple[int, int]:
        """First and last sheet row of epoch `epoch` (1-based)."""
        first = self.first_row + (epoch - 1) * self.rows_per_epoch
        return first, first + self.rows_per_epoch - 1

    def column(self, header: str, first: int | None = None, last: int | None = None, sheet: str | None = None) -> Range:
        """The cells of one column (all rows by default), absolute, for charts and sums."""
        c = self.col[header]
        first = self.first_row if first is None else first
        last = self.last_row if last is None else last
        return Range(Ref(first, c, sheet, True, True), Ref(last, c, None, True, True))

    def cell(self, header: str, row: int, **fixed) -> Ref:
        return Ref(row, self.col[header], **fixed)


def initial_weights(model: str, given: dict, where: str) -> dict:
    """Every weight of the model starts at 1 unless the template says otherwise."""
    weights = WEIGHTS[model]
    unknown = set(given) - set(weights)
    if unknown:
        raise TemplateError(f"{where}: the {model} model has weights {', '.join(weights)}, not {', '.join(sorted(unknown))}")
    return {w: float(given.get(w, 1.0)) for w in weights}


def prediction(model: str, w: dict, x: Expr, hidden: Expr | None) -> Expr:
    if model == "linear":
        return w["b"] + w["a"] * x
    if model == "collapse":
        return w["c"] * hidden + w["d"]
    return w["c"] * call("MAX", hidden, 0) + w["d"]


def bumped_error(model: str, w: dict, bump: str, x: Expr, y: Expr, hidden: Expr | None) -> Expr:
    """The squared error with weight `bump` + 0.01, spelled out as the forum did."""
    up = Group(w[bump] + FINITE_STEP)
    if model == "linear":   # the course's own spelling (basic's errb1, erra1)
        if bump == "b":
            return Group(Group(up + x * w["a"]) - y) ** 2
        return Group(Group(up * x + w["b"]) - y) ** 2
    if bump == "a":
        inner = up * x + w["b"]
    elif bump == "b":
        inner = w["a"] * x + up
    else:
        inner = hidden
    if model == "relu":
        activated = call("MAX", inner, 0)
    else:
        activated = inner if inner is hidden else Group(inner)
    if bump == "c":
        value = up * activated + w["d"]
    elif bump == "d":
        value = w["c"] * activated + up
    else:
        value = w["c"] * activated + w["d"]
    return Group(value - y) ** 2


def analytic(model: str, w: dict, x: Expr, y: Expr, pred: Expr, hidden: Expr | None, d: dict) -> dict:
    """Calculus: d(err^2)/d(weight), each written from the cell to its right as the course does."""
    if model == "linear":
        return {"b": 2 * (pred - y), "a": d["b"] * x}
    through = d["d"] * w["c"]
    if model == "relu":
        through = call("IF", hidden.gt(0), through, 0)      # the ReLU passes a slope of 1 or 0
        activated = call("MAX", hidden, 0)
    else:
        activated = hidden
    return {"d": 2 * (pred - y), "b": through, "a": d["b"] * x, "c": d["d"] * activated}


def write_block(sheet: SheetPlan, *, model: str, epochs: int, data, inputs: BlockInputs,
                header_row: int, left: int = 1) -> Block:
    """Header at `header_row`, columns from `left`; returns where everything is."""
    names = headers(model, inputs.momentum is not None)
    block = Block(model, header_row, header_row + 1, data.count, epochs,
                  {h: left + i for i, h in enumerate(names)})
    col = block.col
    for header, c in col.items():
        sheet.put(header_row, c, header, "header")

    # each column's contents made at once (a RowTemplate fills its rows in one go), then
    # put row by row, left to right
    shapes = {first: row_shapes(model, col, inputs, first) for first in (True, False)}
    steps = range(epochs * data.count)
    rows = [block.first_row + step for step in steps]
    indices = [step % data.count for step in steps]
    columns = []
    for header, shape in (shapes[False] if rows else {}).items():
        if header == "x":
            contents = [data.x(index) for index in indices]
        elif header == "y":
            contents = [data.y(index) for index in indices]
        else:   # the first row's shape starts from the initial weights
            first = shapes[True][header]
            contents = ([first.at(rows[0]) if isinstance(first, RowTemplate) else first] +
                        (shape.column(rows[1:]) if isinstance(shape, RowTemplate) else [shape] * (len(rows) - 1)))
        columns.append((col[header], "count" if header in ("blow-up", "dead") else "general", contents))
    counters = [(col["step"], [step + 1 for step in steps]), (col["epoch"], [step // data.count + 1 for step in steps]),
                (col["row"], [index + 1 for index in indices])]
    put = sheet.put
    for step, r in enumerate(rows):
        edge = ("epoch_start",) if indices[step] == 0 and step > 0 else ()
        for c, style, contents in columns:
            put(r, c, contents[step], style, *edge)
        for c, contents in counters:
            put(r, c, contents[step], "count", *edge)
    highlight(sheet, block, inputs.threshold)
    for header, c in col.items():
        sheet.widths.setdefault(c, 6 if header in ("x", "y", "step", "epoch", "row", "dead") else 10)
    return block


def row_shapes(model: str, col: dict, inputs: BlockInputs, first: bool) -> dict:
    """Header -> the formula of a row of the block (the first row's, which starts from the
    initial weights, or any later row's), as a RowTemplate: rows differ only in their row
    numbers, so each shape is rendered once. "x" and "y" link to the data sheet's rows (the
    caller fills them in)."""
    weights = WEIGHTS[model]
    x, y = Here(col["x"]), Here(col["y"])
    w = {name: Here(col[name]) for name in weights}
    hidden = Here(col["ax+b"]) if model != "linear" else None
    pred, err2 = Here(col["y_pred"]), Here(col["err^2"])
    d = {name: Here(col[f"de/d{name}"]) for name in weights}
    use_finite = inputs.derivative.eq("finite")
    lr = inputs.learning_rate
    cells = {"x": None, "y": None}
    for name in weights:
        cells[name] = inputs.initial[name] if first else Here(col[f"new {name}"], -1)
    if hidden is not None:
        cells["ax+b"] = w["a"] * x + w["b"]
    cells["y_pred"] = prediction(model, w, x, hidden)
    cells["err^2"] = (y - pred) ** 2
    for name in weights:
        cells[f"err{name}1"] = bumped_error(model, w, name, x, y, hidden)
        cells[f"est de/d{name}"] = (Here(col[f"err{name}1"]) - err2) / FINITE_STEP
    for name, expr in analytic(model, w, x, y, pred, hidden, d).items():
        cells[f"de/d{name}"] = expr
    for name in weights:
        used = call("IF", use_finite, Here(col[f"est de/d{name}"]), d[name])
        if inputs.momentum is not None:
            beta = inputs.momentum
            mom = Here(col[f"mom {name}"])
            cells[f"mom {name}"] = (Group(1 - beta) * used if first
                                    else Here(col[f"mom {name}"], -1) * beta + Group(1 - beta) * used)
            cells[f"new {name}"] = w[name] - mom * lr
        else:
            cells[f"new {name}"] = w[name] - used * lr
    step_ref = Here(col["step"])
    passed = call("IF", call("ISERROR", err2), step_ref, call("IF", err2.gt(inputs.threshold), step_ref, 0))
    if first:
        cells["blow-up"] = passed
    else:
        before = Here(col["blow-up"], -1)
        cells["blow-up"] = call("IF", before.gt(0), before, passed)
    if model == "relu":
        cells["dead"] = call("IF", hidden.lt(0), 1, 0)
    return {header: RowTemplate(expr) if isinstance(expr, Expr) else expr for header, expr in cells.items()}


def highlight(sheet: SheetPlan, block: Block, threshold: Expr) -> None:
    """Blow-up rows (squared error above the threshold, or an Excel error) in red; dead
    ReLU rows (a*x+b < 0) in amber. Rules are formulas relative to the block's top-left."""
    left, right = min(block.col.values()), max(block.col.values())
    area = Range(Ref(block.first_row, left), Ref(block.last_row, right))
    err2 = Ref(block.first_row, block.col["err^2"], fixed_col=True)
    sheet.highlights.append(Highlight(
        area, call("IF", call("ISERROR", err2), True, err2.gt(threshold)), "blowup"))
    if block.model == "relu":
        hidden = Ref(block.first_row, block.col["ax+b"], fixed_col=True)
        sheet.highlights.append(Highlight(
            area, call("IF", call("ISERROR", hidden), False, hidden.lt(0)), "dead"))


def epoch_summary(block: Block, epoch: int) -> dict:
    """Formulas that sum up one epoch of a block: rmse (square root of the SUM of squared
    errors, the course's definition), the weights at its end, and dead ReLU rows."""
    first, last = block.epoch_rows(epoch)
    out = {"rmse": call("SQRT", call("SUM", Range(Ref(first, block.col["err^2"]), Ref(last, block.col["err^2"]))))}
    for name in WEIGHTS[block.model]:
        out[name] = Ref(last, block.col[f"new {name}"])
    if block.model == "relu":
        out["dead rows"] = call("SUM", Range(Ref(first, block.col["dead"]), Ref(last, block.col["dead"])))
    return out


def blowup_summary(block: Block) -> dict:
    """The first blow-up step (from the block's running column) and its epoch and data row."""
    step = Ref(block.last_row, block.col["blow-up"])
    where = {}
    for header in ("epoch", "row"):
        where[header] = call("IF", step.eq(0), "none", call("INDEX", block.column(header), step))
    return {"first blow-up step": step, "epoch": where["epoch"], "row": where["row"]}


def input_names(prefix: str, model: str) -> dict:
    """Sheet-scoped names for a block's inputs: prefix + learning_rate, initial_a, ..."""
    return {"learning_rate": Name(prefix + "learning_rate"),
            **{w: Name(f"{prefix}initial_{w}") for w in WEIGHTS[model]}}
