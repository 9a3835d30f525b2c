"""One sheet per model of the forum's thread: linear (y = a*x + b), collapse
(y = c*(a*x + b) + d) or ReLU (y = c*max(a*x + b, 0) + d), trained by SGD one row at a
time with the forum's finite-difference derivatives or the analytic ones.

Top: the inputs (named cells), a note on what to look at, the error by epoch with the
weights at the end of each epoch, where the squared error first blew up, and charts.
Below: the rows (xlgen.sheets.neurons), blow-up rows in red and dead ReLU rows in amber.
"""

from __future__ import annotations

from xlgen.errors import TemplateError
from xlgen.formula import Name, Range, Ref
from xlgen.sheets import neurons
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.options import finite_number

# what the about sheet says of a sheet of this model (formatted with its options)
ABOUT = {
    'linear': "The course's model y = a*x + b, {epochs} epochs: the baseline the others are compared with.",
    'collapse': 'Two neurons without a ReLU, y = c*(a*x + b) + d: the squared error blows up (red rows).',
    'relu': 'A ReLU between the neurons, y = c*max(a*x + b, 0) + d: dead rows in amber; a, b, c freeze, d moves.',
}

OPTIONS = {"model": "collapse", "epochs": 3, "learning_rate": 0.0001, "derivative": "finite",
           "initial": {"a": 1.0, "b": 1.0}, "momentum": 0.0, "blowup_threshold": 1e6}


def momentum_value(key, value):
    number = finite_number(key, value)
    if not 0 <= number < 1:
        raise TemplateError(f"{key} must be at least 0 and below 1 (0: no momentum), got {value!r}")
    return number


OPTION_CHECKS = {"momentum": momentum_value}

TABLE_ROW = 5        # the epoch table's header
CHART_COL = 11       # K
NOTES = {
    "linear": "The course's model, one row per data point. Look at rmse by epoch (the course: 151 after "
              "epoch 1) and at how slowly b heads for 30: its derivative is small next to a's.",
    "collapse": "Two neurons with nothing between them: still a straight line, c*a*x + (c*b + d). Look at "
                "err^2 per row (log scale) and the red rows: the squared error passes the blow-up threshold "
                "near the end of epoch 1, the weights explode, then a+0.01 no longer changes anything, the "
                "finite-difference derivatives round to 0 and the weights freeze. Try learning rate 0.00001.",
    "relu": "A ReLU between the two neurons. Amber rows are dead: a*x+b < 0 there, so a, b and c get a zero "
            "derivative. Once a turns negative every row is dead and only d still moves: compare the weights "
            "at the end of each epoch, and rmse with the linear sheet's.",
}


def rows_needed(template, spec) -> int:
    return header_row(spec.options["epochs"]) + len(template.data["x"]) * spec.options["epochs"]


def header_row(epochs: int) -> int:
    return max(24, TABLE_ROW + epochs + 8)


def write_inputs(sheet, options: dict, weights: tuple, prefix: str = "", momentum: bool = False) -> neurons.BlockInputs:
    """Rows 1-2: model, learning rate, derivative switch, blow-up threshold, momentum, initial weights."""
    model = options["model"]
    sheet.put(1, 1, "model", "label")
    sheet.put(1, 2, model, "header")
    sheet.put(1, 3, neurons.FORMULAS[model], "label")
    sheet.widths[2] = 9
    sheet.put(1, 6, "learn", "label")
    sheet.name_cell(prefix + "learning_rate", 1, 7, options["learning_rate"])
    sheet.put(1, 8, "derivative", "label")
    sheet.name_cell(prefix + "derivative", 1, 9, options["derivative"])
    sheet.comments[(1, 9)] = ("finite: update with est de/da ... (the forum: (loss with the weight + 0.01 - loss) "
                              "/ 0.01). analytic: update with de/da ... (calculus). Type either.")
    sheet.put(1, 10, "blow-up above", "label")
    sheet.name_cell(prefix + "blowup_threshold", 1, 11, options["blowup_threshold"])
    sheet.comments[(1, 11)] = ("A row is a blow-up row (red) when its squared error is above this, or an Excel "
                               "error such as #NUM!.")
    beta = None
    if momentum:
        sheet.put(1, 12, "momentum", "label")
        sheet.name_cell(prefix + "momentum", 1, 13, options["momentum"])
        sheet.comments[(1, 13)] = "mom = momentum * previous mom + (1 - momentum) * derivative; the first mom is 0."
        beta = Name(prefix + "momentum")
    initial = neurons.initial_weights(model, options["initial"], "initial")
    sheet.put(2, 1, "initial", "label")
    for i, name in enumerate(weights):
        sheet.put(2, 2 + 2 * i, name, "label")
        sheet.name_cell(f"{prefix}initial_{name}", 2, 3 + 2 * i, initial[name])
    return neurons.BlockInputs(Name(prefix + "learning_rate"), Name(prefix + "derivative"),
                               {name: Name(f"{prefix}initial_{name}") for name in weights},
                               Name(prefix + "blowup_threshold"), beta)


def write_epoch_table(sheet, block: neurons.Block, row: int, col: int) -> int:
    """epoch | rmse | weights at its end | dead rows (ReLU); returns the last row used."""
    columns = ["epoch", *neurons.epoch_summary(block, 1)]
    for i, header in enumerate(columns):
        sheet.put(row, col + i, header, "header")
    for epoch in range(1, block.epochs + 1):
        r = row + epoch
        sheet.put(r, col, epoch, "count")
        for i, (header, expr) in enumerate(neurons.epoch_summary(block, epoch).items(), start=1):
            sheet.put(r, col + i, expr, "count" if header == "dead rows" else "general")
    return row + block.epochs


def write_blowup_summary(sheet, block: neurons.Block, row: int, col: int) -> None:
    sheet.put(row, col, "first blow-up: err^2 above the threshold, or an error (0: none)", "label")
    for i, (header, expr) in enumerate(neurons.blowup_summary(block).items()):
        sheet.put(row + 1, col + i, header, "header")
        sheet.put(row + 2, col + i, expr, "count")


def block_charts(sheet, block: neurons.Block, table_row: int, table_col: int, anchor_row: int, anchor_col: int,
                 name: str) -> None:
    """Error by epoch; squared error per row on a log axis; the weights over the rows."""
    epochs_x = Range(Ref(table_row + 1, table_col, name, True, True), Ref(table_row + block.epochs, table_col, None, True, True))
    rmse = Range(Ref(table_row + 1, table_col + 1, name, True, True), Ref(table_row + block.epochs, table_col + 1, None, True, True))
    steps = block.column("step", sheet=name)
    two_neurons = block.model != "linear"
    sheet.charts.append(Chart("line", "Error by epoch", [Series("rmse", rmse, epochs_x)],
                              anchor=(anchor_row, anchor_col), x_title="epoch", y_title="rmse",
                              log_y=two_neurons, size=(420, 300)))
    sheet.charts.append(Chart("line", "Squared error per row (log scale)",
                              [Series("err^2", block.column("err^2", sheet=name), steps)],
                              anchor=(anchor_row, anchor_col + 7), x_title="step (row of the table)",
                              y_title="err^2", log_y=True, size=(480, 300)))
    sheet.charts.append(Chart("line", "Weights over the rows",
                              [Series(f"new {w}", block.column(f"new {w}", sheet=name), steps)
                               for w in neurons.WEIGHTS[block.model]],
                              anchor=(anchor_row, anchor_col + 15), x_title="step", y_title="weight",
                              size=(480, 300)))


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    model = options["model"]
    weights = neurons.WEIGHTS[model]
    sheet = workbook.add_sheet(spec.name)
    momentum = options["momentum"] > 0
    inputs = write_inputs(sheet, options, weights, momentum=momentum)
    sheet.put(3, 1, NOTES[model] + (" With momentum: each weight moves by its mom, the damped running "
                                    "average of its derivative." if momentum else ""), "note")
    epochs = options["epochs"]
    block = neurons.write_block(sheet, model=model, epochs=epochs, data=data, inputs=inputs,
                                header_row=header_row(epochs))
    last = write_epoch_table(sheet, block, TABLE_ROW, 1)
    write_blowup_summary(sheet, block, last + 2, 1)
    block_charts(sheet, block, TABLE_ROW, 1, TABLE_ROW, CHART_COL, spec.name)


def block_of(spec, rows_per_epoch: int) -> neurons.Block:
    """Where a model sheet built from `spec` has its rows, without building it (for sheets
    that link to it)."""
    options = spec.options
    names = neurons.headers(options["model"], options["momentum"] > 0)
    return neurons.Block(options["model"], header_row(options["epochs"]), header_row(options["epochs"]) + 1,
                         rows_per_epoch, options["epochs"], {h: 1 + i for i, h in enumerate(names)})


def epoch_table_cell(epoch: int, header: str, block: neurons.Block) -> tuple[int, int]:
    """(row, col) of a model sheet's epoch-table cell, e.g. the rmse of epoch 2."""
    columns = ["epoch", *neurons.epoch_summary(block, 1)]
    return TABLE_ROW + epoch, 1 + columns.index(header)
