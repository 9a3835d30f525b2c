"""The derivative sheet: dE/dd per row for no ReLU / ReLU / ReLU with momentum ("under
mom") and the momentum itself ("mom"), as the forum plotted them.

"no ReLU" and "ReLU" link to the collapse and ReLU model sheets; "under mom" and "mom"
come from this sheet's own rows, a ReLU model whose weights move by the damped running
average of their derivatives (mom = momentum*previous mom + (1-momentum)*derivative,
starting at 0).
"""

from __future__ import annotations

from xlgen.errors import TemplateError
from xlgen.formula import Range, Ref
from xlgen.sheets import model, neurons
from xlgen.sheets.plan import Chart, Series, WorkbookPlan

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = 'dE/dd of the {no_relu} and {relu} models, with and without momentum {momentum:g}.'

OPTIONS = {"model": "relu", "epochs": 3, "learning_rate": 0.0001, "derivative": "finite",
           "initial": {"a": 1.0, "b": 1.0}, "momentum": 0.9, "blowup_threshold": 1e6,
           "no_relu": "collapse", "relu": "relu"}


def sheet_name(key, value):
    if not isinstance(value, str) or not value:
        raise TemplateError(f"{key} must be the name of a model sheet")
    return value


def momentum_on(key, value):
    number = model.momentum_value(key, value)
    if number == 0:
        raise TemplateError(f"{key} must be above 0: this sheet shows momentum")
    return number


OPTION_CHECKS = {"momentum": momentum_on, "no_relu": sheet_name, "relu": sheet_name}
PLOT = ("step", "no ReLU", "ReLU", "under mom", "mom")
HEADER_ROW = 24
BLOCK_COL = len(PLOT) + 2
NOTE = ("dE/dd per row, as the forum plotted it. no ReLU: the collapse model (right axis: it explodes near the end "
        "of epoch 1, then freezes at 0). ReLU: the ReLU model. under mom: this sheet's ReLU model, whose weights "
        "move by their mom; mom: the momentum of d, a smoothed 'under mom' (0.9 of the previous mom plus 0.1 of "
        "the derivative, from 0). Once the ReLU is dead only d learns, and dE/dd = 2(d - y) follows the data.")


def source(template, spec, key: str):
    name = spec.options[key]
    matches = [s for s in template.sheets if s.name == name]
    if not matches or matches[0].layout != "model" or neurons.WEIGHTS[matches[0].options["model"]][-1] != "d":
        raise TemplateError(f"sheets.{spec.name}.{key}: {name!r} is not a two-neuron sheet of layout 'model' in this template")
    return matches[0]


def rows_needed(template, spec) -> int:
    return HEADER_ROW + len(template.data["x"]) * spec.options["epochs"]


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    if options["model"] != "relu":
        raise TemplateError(f"sheets.{spec.name}.model must be relu: this sheet shows a ReLU model with momentum")
    sources = {key: source(template, spec, key) for key in ("no_relu", "relu")}
    sheet = workbook.add_sheet(spec.name)
    inputs = model.write_inputs(sheet, options, neurons.WEIGHTS["relu"], momentum=True)
    sheet.put(3, 1, NOTE, "note")
    sheet.put(4, 1, "no ReLU from sheet", "label")
    sheet.put(4, 2, sources["no_relu"].name, "header")
    sheet.put(4, 3, "ReLU from sheet", "label")
    sheet.put(4, 4, sources["relu"].name, "header")
    block = neurons.write_block(sheet, model="relu", epochs=options["epochs"], data=data, inputs=inputs,
                                header_row=HEADER_ROW, left=BLOCK_COL)
    for i, header in enumerate(PLOT, start=1):
        sheet.put(HEADER_ROW, i, header, "header")
    linked = {key: model.block_of(spec_, data.count) for key, spec_ in sources.items()}
    for step in range(block.rows_per_epoch * block.epochs):
        r = block.first_row + step
        sheet.put(r, 1, step + 1, "count")
        for c, key in ((2, "no_relu"), (3, "relu")):
            other = linked[key]
            if step < other.rows_per_epoch * other.epochs:
                sheet.put(r, c, Ref(other.first_row + step, other.col["est de/dd"], sources[key].name), "general")
        sheet.put(r, 4, Ref(r, block.col["est de/dd"]), "general")
        sheet.put(r, 5, Ref(r, block.col["mom d"]), "general")
    last = block.last_row
    steps = Range(Ref(block.first_row, 1, spec.name, True, True), Ref(last, 1, None, True, True))
    # after the ReLU dies "ReLU" and "under mom" nearly coincide: a wide see-through line
    # and a thin dashed one keep both visible, whichever a program draws on top
    looks = {"ReLU": {"width": 5, "transparency": 55}, "under mom": {"dash": "dash", "width": 1.25}}
    series = [Series(name, Range(Ref(block.first_row, c, spec.name, True, True), Ref(last, c, None, True, True)), steps,
                     secondary=(c == 2), **looks.get(name, {}))
              for c, name in enumerate(PLOT[1:], start=2)]
    sheet.charts.append(Chart("line", "dE/dd per row", series, anchor=(5, 1), x_title="step (row of the table)",
                              y_title="dE/dd", y2_title="no ReLU", size=(960, 340)))
    sheet.widths.update({1: 17, 2: 12, 3: 15, 4: 12, 5: 12})
