"""Checker for the derivative sheet (xlgen.sheets.derivatives): its own ReLU block with
momentum, and the plot table: step | no ReLU | ReLU | under mom | mom.

"no ReLU" and "ReLU" copy est de/dd of the model sheets named beside their labels;
"under mom" and "mom" copy this sheet's est de/dd and mom d. Each cell must equal the
cell it should copy (local) and the reference's value for that row (global).
"""

from __future__ import annotations

from xlgen.verify import model, neurons
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, labelled_cell
from xlgen.verify.stepwise import expect

LAYOUT = "derivatives"
PLOT = ("step", "no ReLU", "ReLU", "under mom", "mom")
SOURCES = {"no ReLU": "no ReLU from sheet", "ReLU": "ReLU from sheet"}


def recognise(book, sheet):
    table = find_header_row(sheet, PLOT)
    if table is None:
        return None
    blocks = [b for b in neurons.find_blocks(sheet) if b.header_row == table[0] and b.model == "relu" and b.momentum]
    if len(blocks) != 1:
        return None
    return table, blocks[0]


def check(sheet, match, context) -> SheetCheck:
    (row, col), block = match
    result = SheetCheck(sheet.name, LAYOUT)
    inputs = neurons.read_inputs(context, result, sheet, block)
    own = neurons.prepare(context, result, sheet, block, inputs)
    neurons.expect_rows(result, sheet, own)

    # where each plotted column comes from: (checked block, its sheet name, key)
    sources = {"under mom": (own, sheet.name, "est de/dd"), "mom": (own, sheet.name, "mom d")}
    for header, label in SOURCES.items():
        cell = labelled_cell(sheet, label)
        name = sheet.constants.get(cell) if cell else None
        checked = model.checked_sheet(context, name) if isinstance(name, str) else None
        result.inputs[header] = {"cell": f"{sheet.name}!{label}", "value": name}
        if checked is not None:
            sources[header] = (checked, name, "est de/dd")
        else:
            result.notes.append(f"{header}: {name!r} is not a model sheet of this workbook")
    for i, header in enumerate(PLOT[1:], start=1):
        c = col + i
        index = 0
        r = row
        while isinstance(sheet.constants.get((r + 1, col)), float):
            r += 1
            index = int(sheet.constants[(r, col)]) - 1
            if (r, c) not in sheet.formulas:
                continue
            if header not in sources or not 0 <= index < len(sources[header][0].match.rows):
                result.expect(r, c, f"(nothing to plot for step {index + 1})")
                continue
            checked, name, key = sources[header]
            local = context.value(name, checked.match.rows[index], checked.match.col[key])
            expect(result, r, c, checked.stepwise.link(local, lambda rows, i=index, k=key: rows[i][k],
                                                       checked.stepwise.noise(index, key)))
    return result
