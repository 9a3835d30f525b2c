"""The course's Titanic `mmult` sheet: the nnet computed with matrix multiplication.

The course's layout: the weights as a 10 x 2 matrix (R3 "Column", S "Param1", T
"Param2"), each passenger's two linear units as MMULT of its feature row and a
weight column, then ReLU, their sum and the squared error. The weights are the ones
gradient descent found on the sheet named by `weights_from` (the nnet sheet), so the two
sheets show one network computed two ways and their total losses agree. The course's
one MMULT over all passengers (a spilled 712 x 2 array) is written here one cell per
passenger and unit, which every spreadsheet program computes the same way.
"""

from __future__ import annotations

from xlgen.formula import Here, Range, Ref, call
from xlgen.reference.titanic import FEATURES
from xlgen.sheets.plan import WorkbookPlan
from xlgen.sheets.titanic import FIRST_ROW, HEADER_ROW, PARAM_COL, PARAM_HEADERS, SURVIVED, passenger_features
from xlgen.sheets.titanic import passenger_column, put_passengers
from xlgen.options import text

USES_DATA = False
MODEL_COL = 22                                      # V: Lin1, Lin2, ReLU1, ReLU2, Preds, Loss
MODEL_HEADERS = ("Lin1", "Lin2", "ReLU1", "ReLU2", "Preds", "Loss")
# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    "The same network with MMULT, on the nnet sheet's weights.")
# the about sheet's numbers to look for
ABOUT_NUMBERS = (("Total loss:", None),)

OPTIONS = {"weights_from": "nnet"}
OPTION_CHECKS = {"weights_from": text}


def rows_needed(template, spec) -> int:
    return FIRST_ROW + 712


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    source = spec.options["weights_from"]
    if not any(other.name == source and other.layout == "titanic_net" for other in template.sheets):
        from xlgen.errors import TemplateError
        raise TemplateError(f"sheets.{spec.name}.weights_from must name a titanic_net sheet, got {source!r}")
    sheet = workbook.add_sheet(spec.name)
    n = len(FEATURES)
    units = [Range(Ref(FIRST_ROW, PARAM_COL + 1 + u, fixed_row=True, fixed_col=True),
                   Ref(FIRST_ROW + n - 1, PARAM_COL + 1 + u, fixed_row=True, fixed_col=True)) for u in range(2)]
    lin1, lin2, relu1, relu2, preds, loss = (MODEL_COL + i for i in range(6))
    put_passengers(sheet, {
        relu1: call("IF", Here(lin1).lt(0), 0, Here(lin1)),
        relu2: call("IF", Here(lin2).lt(0), 0, Here(lin2)),
        preds: Here(relu1) + Here(relu2),
        loss: (Here(SURVIVED) - Here(preds)) ** 2,
    }, {lin1: call("MMULT", passenger_features(), units[0]), lin2: call("MMULT", passenger_features(), units[1])})
    sheet.put(1, PARAM_COL, "Params", "label")
    sheet.put(2, PARAM_COL, f"the weights gradient descent found on sheet {source}", "note")
    for i, header in enumerate(("Column", "Param1", "Param2")):
        sheet.put(HEADER_ROW, PARAM_COL + i, header, "header")
    for j in range(n):
        sheet.put(FIRST_ROW + j, PARAM_COL, PARAM_HEADERS[j] if j < n - 1 else "Ones", "header")
        for u in range(2):
            sheet.put(FIRST_ROW + j, PARAM_COL + 1 + u, Ref(FIRST_ROW + u, PARAM_COL + j, source, True, True), "weight")
    sheet.put(1, MODEL_COL, "Model", "label")
    for i, header in enumerate(MODEL_HEADERS):
        sheet.put(HEADER_ROW, MODEL_COL + i, header, "header")
    sheet.put(1, preds, "Total loss:", "label")
    sheet.put(1, loss, call("AVERAGE", passenger_column(loss)), "number")
    widths = {col: 9 for col in range(1, loss + 1)}
    widths[PARAM_COL] = 10
    sheet.widths.update(widths)
    sheet.freeze = (HEADER_ROW, 0)
