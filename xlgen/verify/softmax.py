"""Checker for a softmax sheet (the course's entropy_example.xlsx `softmax`, or xlgen's).

Recognised by its header row (output, exp, softmax). Inputs: each class's output in the
output column and, if there is an actuals column, the one-hot actuals. Every exp, the
sum of the exps, each softmax and the softmax sum are checked. The probabilities are
left in the context by class name for a cross-entropy sheet that links to them.
"""

from __future__ import annotations

from xlgen.reference.cross_entropy import softmax
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, normal

LAYOUT = "softmax"
HEADERS = ("output", "exp", "softmax")


def recognise(book, sheet):
    return find_header_row(sheet, HEADERS)


def check(sheet, match, context) -> SheetCheck | None:
    header_row, output_col = match
    exp_col, softmax_col = output_col + 1, output_col + 2
    actual_col = output_col + 3 if normal(sheet.constants.get((header_row, output_col + 3))) == "actuals" else None
    result = SheetCheck(sheet.name, LAYOUT)
    rows, outputs = [], []
    row = header_row + 1
    while (row, exp_col) in sheet.formulas and (row, output_col) in sheet.constants:
        rows.append(row)
        outputs.append(context.input(result, f"output {len(rows)}", (sheet.name, row, output_col)))
        row += 1
    if not rows:
        return None
    reference = softmax(outputs)
    for i, r in enumerate(rows):
        result.expect(r, exp_col, reference["exp"][i])
        if (r, softmax_col) in sheet.formulas:
            result.expect(r, softmax_col, reference["softmax"][i])
    total_row = rows[-1] + 1
    if (total_row, exp_col) in sheet.formulas:
        result.expect(total_row, exp_col, reference["exp_total"])
    if (total_row, softmax_col) in sheet.formulas:
        result.expect(total_row, softmax_col, reference["softmax_total"])
    classes = {}
    for i, r in enumerate(rows):
        label = normal(sheet.constants.get((r, output_col - 1)))
        actual = context.value(sheet.name, r, actual_col) if actual_col else None
        if label:
            classes[label] = (float(reference["softmax"][i]), actual)
    context.softmax_classes = classes
    return result
