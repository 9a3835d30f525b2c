"""The comparison sheet: rmse per epoch of several model sheets side by side, linked to
their epoch tables (change a model sheet's input and this follows), on one chart."""

from __future__ import annotations

from xlgen.errors import TemplateError
from xlgen.formula import Range, Ref
from xlgen.sheets import model
from xlgen.sheets.plan import Chart, Series, WorkbookPlan

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = 'rmse per epoch of {sheet_list} side by side, on one chart.'

OPTIONS = {"sheets": ["linear", "collapse", "relu"]}
TABLE_ROW = 3
NOTE = ("rmse per epoch of each model sheet (linked: change an input there and this follows). Same data, same "
        "learning rate, every weight starting at 1. The collapse model, mathematically a line like the linear one, "
        "blows up; the ReLU sandwich never blows up but stalls far above the linear model once its ReLU is dead. "
        "Log scale: an error (#NUM!) leaves a gap. The second chart leaves out the model that blows up, so the "
        "others can be told apart on their own scale.")


def sheet_list(key, value):
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise TemplateError(f"{key} must be a non-empty list of sheet names")
    return value


OPTION_CHECKS = {"sheets": sheet_list}


def sources(template, spec) -> list:
    found = []
    for name in spec.options["sheets"]:
        matches = [s for s in template.sheets if s.name == name]
        if not matches or matches[0].layout != "model":
            raise TemplateError(f"sheets.{spec.name}.sheets: {name!r} is not a sheet of layout 'model' in this template")
        found.append(matches[0])
    return found


def rows_needed(template, spec) -> int:
    return TABLE_ROW + max(s.options["epochs"] for s in sources(template, spec))


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    specs = sources(template, spec)
    sheet = workbook.add_sheet(spec.name)
    sheet.put(1, 1, NOTE, "note")
    sheet.put(TABLE_ROW, 1, "epoch", "header")
    epochs = max(s.options["epochs"] for s in specs)
    for e in range(1, epochs + 1):
        sheet.put(TABLE_ROW + e, 1, e, "count")
    series = []
    for i, source in enumerate(specs, start=2):
        sheet.put(TABLE_ROW, i, source.name, "header")
        block = model.block_of(source, data.count)
        for e in range(1, source.options["epochs"] + 1):
            row, col = model.epoch_table_cell(e, "rmse", block)
            sheet.put(TABLE_ROW + e, i, Ref(row, col, source.name), "general")
        last = TABLE_ROW + source.options["epochs"]
        series.append(Series(source.name, Range(Ref(TABLE_ROW + 1, i, spec.name, True, True), Ref(last, i, None, True, True)),
                             Range(Ref(TABLE_ROW + 1, 1, spec.name, True, True), Ref(last, 1, None, True, True))))
        sheet.widths[i] = 14
    sheet.charts.append(Chart("line", "Error by epoch: every model (log scale)", series,
                              anchor=(TABLE_ROW, len(specs) + 3), x_title="epoch", y_title="rmse", log_y=True,
                              size=(640, 360)))
    # the model that blows up squashes the others on a shared axis: they get a chart of their own
    steady = [s for s, source in zip(series, specs) if source.options["model"] != "collapse"]
    if steady and len(steady) < len(series):
        sheet.charts.append(Chart("line", "Error by epoch: " + ", ".join(s.name for s in steady)
                                  + " on their own scale", steady,
                                  anchor=(TABLE_ROW + 19, len(specs) + 3), x_title="epoch", y_title="rmse",
                                  size=(640, 360)))
