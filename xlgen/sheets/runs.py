"""Several runs of one model on one sheet, one setting changed between them: the
learning-rate sweep and the initialisation sheet are both this.

Top: a table with one row per run. Its learning rate and initial weights are the run's
input cells (named run1_learning_rate, run1_initial_a, ...; change one and that run
follows), then the run's rmse per epoch and where its squared error first blew up.
Below the chart: each run's rows (xlgen.sheets.neurons), one block after another.
"""

from __future__ import annotations

from xlgen.errors import TemplateError
from xlgen.formula import Name, Range, Ref
from xlgen.sheets import neurons
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.options import number_table, positive_number

TABLE_ROW = 4
GAP = 2            # blank rows between blocks (one holds the run's title)


def learning_rate_list(key, value):
    if not isinstance(value, list) or not value:
        raise TemplateError(f"{key} must be a non-empty list of learning rates")
    return [positive_number(f"{key}[{i}]", v) for i, v in enumerate(value)]


def initial_list(key, value):
    if not isinstance(value, list) or not value:
        raise TemplateError(f"{key} must be a non-empty list of tables such as {{ a = 1, b = 1, c = 1, d = 1 }}")
    return [number_table(f"{key}[{i}]", v) for i, v in enumerate(value)]


def table_columns(model: str, epochs: int) -> list[str]:
    return ["run", "learning rate", *neurons.WEIGHTS[model], *(f"rmse {e}" for e in range(1, epochs + 1)),
            "first blow-up step", "epoch", "row"]


def first_block_row(runs: int) -> int:
    """Blocks start under the summary table and the chart below it (340 px, 17 rows)."""
    return TABLE_ROW + runs + 21


def rows_needed(template, spec, runs: int) -> int:
    per_block = len(template.data["x"]) * spec.options["epochs"] + 1 + GAP
    return first_block_row(runs) + runs * per_block


def build_runs(workbook: WorkbookPlan, spec, data, runs: list[tuple[float, dict]], note: str, chart: str) -> None:
    """`runs`: (learning rate, initial weights) per run; `chart`: "learning_rate" for rmse
    against the learning rate on log axes, "epoch" for rmse by epoch, a line per run."""
    options = spec.options
    model, epochs = options["model"], options["epochs"]
    weights = neurons.WEIGHTS[model]
    sheet = workbook.add_sheet(spec.name)
    sheet.put(1, 1, "model", "label")
    sheet.put(1, 2, model, "header")
    sheet.put(1, 3, neurons.FORMULAS[model], "label")
    sheet.put(1, 6, "derivative", "label")
    sheet.name_cell("derivative", 1, 7, options["derivative"])
    sheet.comments[(1, 7)] = "finite (the forum's 0.01 step) or analytic, for every run below."
    sheet.put(1, 8, "blow-up above", "label")
    sheet.name_cell("blowup_threshold", 1, 9, options["blowup_threshold"])
    sheet.put(2, 1, note, "note")

    columns = table_columns(model, epochs)
    col = {h: 1 + i for i, h in enumerate(columns)}
    for header, c in col.items():
        sheet.put(TABLE_ROW, c, header, "header")
    row = first_block_row(len(runs))
    blocks = []
    for number, (learning_rate, initial) in enumerate(runs, start=1):
        prefix = f"run{number}_"
        t = TABLE_ROW + number
        sheet.put(t, col["run"], number, "count")
        sheet.name_cell(prefix + "learning_rate", t, col["learning rate"], learning_rate)
        start = neurons.initial_weights(model, initial, f"sheets.{spec.name} run {number}")
        for w in weights:
            sheet.name_cell(f"{prefix}initial_{w}", t, col[w], start[w])
        sheet.put(row, 1, f"run {number}: learning rate and initial weights in row {t} of the table above", "label")
        inputs = neurons.BlockInputs(Name(prefix + "learning_rate"), Name("derivative"),
                                     {w: Name(f"{prefix}initial_{w}") for w in weights}, Name("blowup_threshold"))
        block = neurons.write_block(sheet, model=model, epochs=epochs, data=data, inputs=inputs, header_row=row + 1)
        blocks.append(block)
        for epoch in range(1, epochs + 1):
            sheet.put(t, col[f"rmse {epoch}"], neurons.epoch_summary(block, epoch)["rmse"], "general")
        for header, expr in neurons.blowup_summary(block).items():
            sheet.put(t, col[header], expr, "count")
        row = block.last_row + GAP

    last = TABLE_ROW + len(runs)
    anchor = (last + 2, 1)
    if chart == "learning_rate":
        x = Range(Ref(TABLE_ROW + 1, col["learning rate"], spec.name, True, True), Ref(last, col["learning rate"], None, True, True))
        series = [Series(f"epoch {e}", Range(Ref(TABLE_ROW + 1, col[f"rmse {e}"], spec.name, True, True),
                                             Ref(last, col[f"rmse {e}"], None, True, True)), x)
                  for e in range(1, epochs + 1)]
        sheet.charts.append(Chart("scatter", "rmse by learning rate (log axes)", series,
                                  anchor=anchor, x_title="learning rate", y_title="rmse", log_x=True, log_y=True,
                                  size=(640, 340)))
    else:
        epochs_x = Range(Ref(TABLE_ROW, col["rmse 1"], spec.name, True, True), Ref(TABLE_ROW, col[f"rmse {epochs}"], None, True, True))
        series = [Series(f"run {n}", Range(Ref(TABLE_ROW + n, col["rmse 1"], spec.name, True, True),
                                           Ref(TABLE_ROW + n, col[f"rmse {epochs}"], None, True, True)), epochs_x)
                  for n in range(1, len(runs) + 1)]
        sheet.charts.append(Chart("line", "rmse by epoch, one line per run (log scale)", series,
                                  anchor=anchor, x_title="epoch", y_title="rmse", log_y=True, size=(640, 340)))
    sheet.widths.update({col["learning rate"]: 12, col["first blow-up step"]: 10})
