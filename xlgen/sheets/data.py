"""The data sheet: fixed x values and y computed from a known line, as the course's
`data` sheet does (with the course's RANDBETWEEN x replaced by the template's numbers, so
every build is the same)."""

from __future__ import annotations

from dataclasses import dataclass

from xlgen.formula import Name, Range, Ref
from xlgen.sheets.plan import Chart, Series, WorkbookPlan

SHEET = "data"
FIRST_ROW = 5   # the course's data rows start at row 5, under headers in row 4
X_COL, Y_COL = 2, 3


@dataclass
class DataRefs:
    """Where the data points are, for the sheets that read them."""
    count: int

    def x(self, index: int) -> Ref:
        return Ref(FIRST_ROW + index, X_COL, SHEET)

    def y(self, index: int) -> Ref:
        return Ref(FIRST_ROW + index, Y_COL, SHEET)


# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = 'The data points: x, and y = const + slope*x. Every other sheet reads them.'

def build(workbook: WorkbookPlan, data: dict) -> DataRefs:
    sheet = workbook.add_sheet(SHEET)
    sheet.put(1, 1, "b", "label")
    sheet.put(1, 2, "const", "label")
    sheet.name_cell("target_b", 1, 3, data["intercept"])
    sheet.put(2, 1, "a", "label")
    sheet.put(2, 2, "slope", "label")
    sheet.name_cell("target_a", 2, 3, data["slope"])
    sheet.put(1, 5, "The data: y = const + slope * x. Change const or slope and every sheet that "
                    "reads these points follows.", "note")
    sheet.put(4, 2, "x", "header")
    sheet.put(4, 3, "y", "header")
    target_b, target_a = Name("target_b"), Name("target_a")
    for index, x in enumerate(data["x"]):
        row = FIRST_ROW + index
        sheet.put(row, X_COL, x, "number")
        sheet.put(row, Y_COL, target_b + Ref(row, X_COL) * target_a, "number")
    last = FIRST_ROW + len(data["x"]) - 1
    sheet.widths.update({1: 4, 2: 8, 3: 10})
    sheet.freeze = (4, 0)
    sheet.charts.append(Chart(
        "scatter", "The data", [Series("y", Range(Ref(FIRST_ROW, Y_COL, SHEET, True, True), Ref(last, Y_COL, None, True, True)),
                                       Range(Ref(FIRST_ROW, X_COL, SHEET, True, True), Ref(last, X_COL, None, True, True)))],
        anchor=(3, 5), x_title="x", y_title="y"))
    return DataRefs(len(data["x"]))
