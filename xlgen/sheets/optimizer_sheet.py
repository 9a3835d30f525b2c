"""What the course's optimiser sheets share (momentum, rmsprop, adam, adam_ann).

The course's columns and formulas, row by row: x, y, b, a, pred, de/db, de/da, new b,
new a, then the optimiser's state (running averages of de/db and de/da, and of their
squares), each row's state computed from the row above. Row 3 holds the state entering
the first row (the course's J3 `=J33`, the macro's saved state, becomes a named input),
row 1 the hyper-parameters (beta in J1 and its complement `=1-J1` in K1, as the course).
Epochs are unrolled: the next epoch's first row reads the last row above it, weights and
state alike, which is what the course's macro did by copying. Beside the rows: the
squared error, rmse per epoch and the chart "Error by epoch".

style = "course" keeps the course's formulas and quirks; style = "fastai" writes
fastai's versions (optimizer.py): epsilon, bias correction, dampening as named inputs.
The layout modules (momentum.py, ...) say which statistics and which step they use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xlgen.errors import TemplateError
from xlgen.options import boolean
from xlgen.formula import Expr, Name, Range, Ref, call
from xlgen.sheets import average_grad as lambdas
from xlgen.sheets.plan import Chart, Series, WorkbookPlan

HEADERS = ("x", "y", "b", "a", "pred", "de/db", "de/da", "new b", "new a")
X, Y, B, A, PRED, DEDB, DEDA, NEW_B, NEW_A = range(1, 10)
STATE_COL = 10            # J: the first state column
HEADER_ROW = 3
STATE_ROW = 3             # the state entering the first row sits in the header row, as in the course
FIRST_ROW = 4
INPUT_LABEL_ROW, INPUT_ROW = 1, 2   # extra inputs (eps, dampening, ...) in E..H: label above value
EXTRA_INPUT_COL = 5       # E
GRADIENT = {"b": DEDB, "a": DEDA}
WEIGHT_BEFORE = {"b": B, "a": A}
WEIGHT_AFTER = {"b": NEW_B, "a": NEW_A}


def style(key, value):
    if value not in ("course", "fastai"):
        raise TemplateError(f'{key} must be one of course, fastai; got {value!r}')
    return value


COMMON_OPTIONS = {"style": "course", "epochs": 5, "learning_rate": 0.0001,
                  "initial": {"a": 1.0, "b": 1.0}, "use_lambda": False}
COMMON_CHECKS = {"style": style, "use_lambda": boolean}


def resolve(spec, defaults: dict, course_only: tuple = (), fastai_only: tuple = ()) -> dict:
    """The sheet's options with the style's defaults filled in; keys the style does not
    have are refused with one line."""
    options = dict(spec.options)
    chosen = options["style"]
    for key in course_only if chosen == "fastai" else fastai_only:
        if options.get(key) is not None:
            raise TemplateError(f"sheets.{spec.name}.{key} is not a setting of style = \"{chosen}\"")
    for key, by_style in defaults.items():
        if options.get(key) is None:
            options[key] = by_style[chosen]
    if set(options["initial"]) != {"a", "b"}:
        raise TemplateError(f"sheets.{spec.name}.initial must give a and b for the linear model")
    return options


# --- the sheet ----------------------------------------------------------------------

@dataclass
class Stat:
    """A running average kept per weight: grad_avg (of de/db, de/da) or sqr_avg (of their
    squares). Its two columns start at `col` (b, then a); its beta sits in row 1 above the
    first column and the weight of the new value (1-beta) beside it."""
    key: str
    beta_name: str
    col: int
    dampening: object = True        # True, False, or an Expr (a named input cell)

    def column(self, weight: str) -> int:
        return self.col + (0 if weight == "b" else 1)

    @property
    def beta(self) -> Ref:
        return Ref(1, self.col, fixed_row=True, fixed_col=True)

    @property
    def damp(self) -> Ref:
        return Ref(1, self.col + 1, fixed_row=True, fixed_col=True)


@dataclass
class Layout:
    """One sheet being built: where things are, for the step formulas."""
    sheet: object
    options: dict
    stats: list
    extra_cols: dict = field(default_factory=dict)   # header -> column (err^2, step, debias1, debias2)
    rows_per_epoch: int = 0

    def stat(self, key: str) -> Stat:
        return next(s for s in self.stats if s.key == key)

    def state(self, key: str, weight: str, row: int) -> Ref:
        return Ref(row, self.stat(key).column(weight))


LR = Ref(2, 4, fixed_row=True, fixed_col=True)   # the course's $D$2


def rows_needed(template, spec) -> int:
    return FIRST_ROW - 1 + len(template.data["x"]) * spec.options["epochs"]


def start_sheet(workbook: WorkbookPlan, spec, options: dict, stats: list, extra_inputs: list,
                extra_headers: list, first_extra_col: int) -> Layout:
    """Inputs, headers and the state row; the caller writes the rows."""
    sheet = workbook.add_sheet(spec.name)
    layout = Layout(sheet, options, stats)
    initial = options["initial"]
    sheet.put(1, 2, "b", "label")
    sheet.name_cell("initial_b", 1, 3, initial["b"])
    sheet.put(1, 4, "learn", "label")
    sheet.put(2, 2, "a", "label")
    sheet.name_cell("initial_a", 2, 3, initial["a"])
    sheet.name_cell("learning_rate", 2, 4, options["learning_rate"])
    sheet.put(1, 9, "beta", "label")
    for col, (label, name, value, note) in enumerate(extra_inputs, start=EXTRA_INPUT_COL):
        sheet.put(INPUT_LABEL_ROW, col, label, "label")
        sheet.name_cell(name, INPUT_ROW, col, value)
        if note:
            sheet.comments[(INPUT_ROW, col)] = note
    for stat in stats:
        sheet.name_cell(stat.beta_name, 1, stat.col, options[stat.beta_name])
        beta = Ref(1, stat.col)
        if isinstance(stat.dampening, Expr):
            sheet.put(1, stat.col + 1, call("IF", stat.dampening, 1 - beta, 1), "number")
        else:
            sheet.put(1, stat.col + 1, 1 - beta, "number")
        start = options[f"initial_{stat.key}"]
        for weight in ("b", "a"):
            col = stat.column(weight)
            sheet.put(2, col, f"{stat.key} {weight}", "label")
            sheet.name_cell(f"initial_{stat.key}_{weight}", STATE_ROW, col, start)
        sheet.comments[(STATE_ROW, stat.col)] = (
            f"{stat.key}: the running average entering the first row (the course's macro kept the last "
            f"row's value here between epochs). Below, each row updates it from the row above.")
    for header in HEADERS:
        sheet.put(HEADER_ROW, HEADERS.index(header) + 1, header, "header")
    for offset, header in enumerate(extra_headers):
        col = first_extra_col + offset
        layout.extra_cols[header] = col
        if header == "step":   # a counter carried like the state: steps taken before the first row
            sheet.put(2, col, "step", "label")
            sheet.name_cell("initial_step", STATE_ROW, col, 0)
        else:
            sheet.put(HEADER_ROW, col, header, "header")
    return layout


def average_formula(layout: Layout, stat: Stat, weight: str, row: int) -> Expr:
    """The stat's new value on `row`: the course's J3*$J$1+$K$1*F4 (or F4^2), or the
    named LAMBDA AVERAGE_GRAD / AVERAGE_SQR_GRAD with the same arguments."""
    grad = Ref(row, GRADIENT[weight])
    previous = Ref(row - 1, stat.column(weight))
    if layout.options["use_lambda"]:
        function = lambdas.AVERAGE_GRAD if stat.key == "grad_avg" else lambdas.AVERAGE_SQR_GRAD
        return function(grad, stat.beta, stat.dampening, previous)
    value = grad if stat.key == "grad_avg" else grad ** 2
    return previous * stat.beta + stat.damp * value


def write_rows(workbook: WorkbookPlan, layout: Layout, data, step_formula, lr_for_epoch) -> None:
    """Every row: data, weights from the row above, prediction, gradients, the stats, the
    step (`step_formula(layout, weight, row, lr)`) and the extra columns."""
    sheet, options = layout.sheet, layout.options
    if options["use_lambda"]:
        lambdas.define(workbook)
    layout.rows_per_epoch = data.count
    for epoch in range(options["epochs"]):
        lr = lr_for_epoch(epoch)
        for index in range(data.count):
            r = FIRST_ROW + epoch * data.count + index
            edge = ("epoch_start",) if index == 0 and epoch > 0 else ()
            first = r == FIRST_ROW
            x, y, b, a = Ref(r, X), Ref(r, Y), Ref(r, B), Ref(r, A)
            row = {
                X: data.x(index),
                Y: data.y(index),
                B: Ref(1, 3) if first else Ref(r - 1, NEW_B),       # the course's C4 =C1, C5 =H4
                A: Ref(2, 3) if first else Ref(r - 1, NEW_A),
                PRED: b + a * x,
                DEDB: 2 * (a * x + b - y),
                DEDA: Ref(r, DEDB) * x,
            }
            for weight in ("b", "a"):
                row[WEIGHT_AFTER[weight]] = step_formula(layout, weight, r, lr)
            for stat in layout.stats:
                for weight in ("b", "a"):
                    row[stat.column(weight)] = average_formula(layout, stat, weight, r)
            cols = layout.extra_cols
            if "err^2" in cols:
                row[cols["err^2"]] = (y - Ref(r, PRED)) ** 2
            if "step" in cols:
                row[cols["step"]] = Ref(r - 1, cols["step"]) + 1
            if "debias1" in cols:
                row[cols["debias1"]] = debias_formula(layout.stat("grad_avg"), Ref(r, cols["step"]))
                row[cols["debias2"]] = debias_formula(layout.stat("sqr_avg"), Ref(r, cols["step"]))
            for col, content in row.items():
                weighty = col in (B, A, NEW_B, NEW_A)
                sheet.put(r, col, content, "weight" if weighty else "number", *edge)


def debias_formula(stat: Stat, step: Ref) -> Expr:
    """fastai's debias(mom, 1-mom, step) = damp*(1-mom^step)/(1-mom), or 1 without bias
    correction (the named input `debias`)."""
    return call("IF", Name("debias"), stat.damp * (1 - stat.beta ** step) / (1 - stat.beta), 1)


def last_row(layout: Layout, epoch: int) -> int:
    return FIRST_ROW + (epoch + 1) * layout.rows_per_epoch - 1


def epoch_table(layout: Layout, col: int, extra_headers: tuple = ()) -> None:
    """epoch | rmse (| the caller's columns), one row per epoch, and the chart."""
    sheet, epochs = layout.sheet, layout.options["epochs"]
    err = layout.extra_cols["err^2"]
    headers = ("epoch", "rmse") + extra_headers
    for offset, header in enumerate(headers):
        sheet.put(HEADER_ROW, col + offset, header, "header")
    for epoch in range(epochs):
        first = FIRST_ROW + epoch * layout.rows_per_epoch
        sheet.put(FIRST_ROW + epoch, col, epoch + 1, "count")
        sheet.put(FIRST_ROW + epoch, col + 1,
                  call("SQRT", call("SUM", Range(Ref(first, err), Ref(last_row(layout, epoch), err)))), "number")
    last = FIRST_ROW + epochs - 1
    sheet.charts.append(Chart(
        "line", "Error by epoch",
        [Series("rmse", Range(Ref(FIRST_ROW, col + 1, sheet.name, True, True), Ref(last, col + 1, None, True, True)),
                Range(Ref(FIRST_ROW, col, sheet.name, True, True), Ref(last, col, None, True, True)))],
        anchor=(HEADER_ROW + 1, col + len(headers) + 1), x_title="epoch", y_title="rmse"))
    sheet.widths.update({col: 6, col + 1: 10})
    sheet.widths.update({col + 2 + i: 11 for i in range(len(extra_headers))})


def finish(layout: Layout, note: str, table_col: int, template=None, spec=None) -> None:
    """The note above the epoch table; on a LAMBDA sheet a banner first: beside the inputs
    where two columns of rows 1-2 are free, else above the note."""
    sheet = layout.sheet
    note_col = table_col
    if layout.options["use_lambda"] and template is not None:
        free = [col for col in range(EXTRA_INPUT_COL, STATE_COL - 1)
                if (1, col) not in sheet.cells and (2, col) not in sheet.cells]
        if len(free) >= 2 and free[1] == free[0] + 1:
            lambdas.banner(sheet, template, spec, (1, free[0]), (2, free[0]))
        else:
            lambdas.banner(sheet, template, spec, (1, table_col), (2, table_col))
            note_col = table_col + 4
    sheet.put(1, note_col, note, "note")
    sheet.widths.update({col: 10 for col in range(1, table_col - 1)})
    sheet.widths.update({X: 6, Y: 6})
    sheet.freeze = (HEADER_ROW, 0)
