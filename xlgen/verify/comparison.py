"""Checker for the comparison sheet (xlgen.sheets.compare): 'epoch' then one column per
model sheet, headed by its name, each cell the rmse of that epoch on that sheet.

Locally each cell must copy the model sheet's own rmse cell of that epoch; globally it
must be the reference's rmse of the model sheet's run (xlgen.verify.stepwise).
"""

from __future__ import annotations

from xlgen.verify import model
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, normal, text_constants
from xlgen.verify.neurons import find_blocks, header_cells
from xlgen.verify.stepwise import expect

LAYOUT = "compare"


def _model_sheets(book, sheet, row, col) -> dict:
    """Header cells right of 'epoch' that name model sheets: name -> column."""
    found = {}
    for header, c in header_cells(sheet, row, col).items():
        if c == col:
            continue
        matches = [s for s in book.sheets if normal(s.name) == header and s.name != sheet.name]
        if not matches or model.recognise(book, matches[0]) is None:
            return {}
        found[matches[0].name] = c
    return found


def recognise(book, sheet):
    if find_blocks(sheet):
        return None
    for (row, col), value in text_constants(sheet):
        if normal(value) == "epoch":
            sources = _model_sheets(book, sheet, row, col)
            if sources:
                return row, col, sources
    return None


def check(sheet, match, context) -> SheetCheck:
    row, col, sources = match
    result = SheetCheck(sheet.name, LAYOUT)
    for name, c in sources.items():
        checked = model.checked_sheet(context, name)
        source = context.book.sheet(name)
        table = find_header_row(source, ("epoch", "rmse"))
        rmse_rows = {}
        if table is not None:
            r, tc = table
            while isinstance(source.constants.get((r + 1, tc)), float):
                r += 1
                rmse_rows[source.constants[(r, tc)]] = (r, tc + 1)
        r = row
        result.inputs[name] = {"cell": f"{name} (model sheet)", "value": "linked"}
        while isinstance(sheet.constants.get((r + 1, col)), float):
            r += 1
            if (r, c) not in sheet.formulas and not isinstance(sheet.constants.get((r, c)), (bool, str)):
                continue   # (TRUE/FALSE or text typed over the link is checked as the link)
            epoch = sheet.constants[(r, col)]
            if checked is None or epoch not in rmse_rows or not (epoch.is_integer() and 1 <= epoch <= checked.epochs):
                result.expect(r, c, "(no rmse of this epoch on sheet " + name + ")")
                continue
            local = context.value(name, *rmse_rows[epoch])
            expect(result, r, c, checked.stepwise.link(local, checked.rmse(int(epoch))))
    return result
