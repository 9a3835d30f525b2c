"""Checker for model sheets (xlgen.sheets.model): one block of SGD rows of a linear,
collapse or ReLU model, its epoch table (rmse, weights at the end of each epoch, dead
rows) and where the squared error first blew up.

Other sheets that link to a model sheet (comparison, derivatives) ask `checked_sheet`
for its checked block, computed once per verification.
"""

from __future__ import annotations

import weakref

from xlgen.verify import neurons
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, name_target
from xlgen.verify.stepwise import expect

LAYOUT = "model"
SUMMARY = ("first blow-up step", "epoch", "row")

_checked = weakref.WeakKeyDictionary()   # context -> {sheet name: CheckedBlock or None}


def recognise(book, sheet):
    blocks = neurons.find_blocks(sheet)
    if len(blocks) != 1 or name_target(book, sheet.name, "learning_rate") is None:
        return None
    return blocks[0]


def checked_sheet(context, sheet_name: str, result: SheetCheck | None = None):
    """The model sheet's block, checked against the reference (None if it is not one)."""
    cache = _checked.setdefault(context, {})
    if sheet_name not in cache:
        try:
            sheet = context.book.sheet(sheet_name)
        except KeyError:
            cache[sheet_name] = None
            return None
        block = recognise(context.book, sheet)
        if block is None:
            cache[sheet_name] = None
            return None
        scratch = result if result is not None else SheetCheck(sheet.name, LAYOUT)
        inputs = neurons.read_inputs(context, scratch, sheet, block)
        cache[sheet_name] = neurons.prepare(context, scratch, sheet, block, inputs)
    return cache[sheet_name]


def check(sheet, block, context) -> SheetCheck:
    result = SheetCheck(sheet.name, LAYOUT)
    inputs = neurons.read_inputs(context, result, sheet, block)   # recorded in the report
    checked = _checked.get(context, {}).get(sheet.name)
    if checked is None:
        checked = neurons.prepare(context, result, sheet, block, inputs)
        _checked.setdefault(context, {})[sheet.name] = checked
    neurons.expect_rows(result, sheet, checked)
    check_epoch_table(sheet, result, checked)
    check_blowup_summary(sheet, result, checked)
    return result


def check_epoch_table(sheet, result, checked: neurons.CheckedBlock) -> None:
    """'epoch' | 'rmse' | weights | 'dead rows': one row per epoch under the header."""
    found = find_header_row(sheet, ("epoch", "rmse"))
    if found is None:
        return
    row, c = found
    columns = neurons.header_cells(sheet, row, c)
    stepwise = checked.stepwise
    while isinstance(sheet.constants.get((row + 1, c)), float):
        row += 1
        epoch = sheet.constants[(row, c)]
        if not (epoch.is_integer() and 1 <= epoch <= checked.epochs):
            continue
        epoch = int(epoch)
        for header, col in columns.items():
            if (row, col) not in sheet.formulas:
                continue
            if header == "rmse":
                expect(result, row, col, stepwise.derived(checked.rmse(epoch), checked.sum_ulps))
            elif header in checked.match.weights():
                key, last = f"new {header}", checked.epoch_range(epoch)[-1]
                expect(result, row, col, stepwise.derived(checked.at_end(epoch, key),
                                                          row_noise=stepwise.noise(last, key)))
            elif header == "dead rows" and checked.match.model == "relu":
                expect(result, row, col, stepwise.derived(checked.dead_rows(epoch)))


def check_blowup_summary(sheet, result, checked: neurons.CheckedBlock) -> None:
    found = find_header_row(sheet, SUMMARY)
    if found is None:
        return
    row, c = found
    summaries = (checked.first_blowup(), checked.where("epoch"), checked.where("row"))
    for i, summarise in enumerate(summaries):
        if (row + 1, c + i) in sheet.formulas:
            expect(result, row + 1, c + i, checked.stepwise.derived(summarise))
