"""Checker for sweep sheets (xlgen.sheets.runs: the learning-rate sweep and the
initialisation sheet): a table with one row per run, whose learning rate and initial
weights are that run's inputs (run1_learning_rate, run1_initial_a, ...), and one block
of SGD rows per run below it, in the table's order.
"""

from __future__ import annotations

from xlgen.verify import neurons
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row
from xlgen.verify.stepwise import LOCAL_ULPS, expect

LAYOUT = "runs"


def recognise(book, sheet):
    table = find_header_row(sheet, ("run", "learning rate"))
    if table is None:
        return None
    blocks = neurons.find_blocks(sheet)
    if not blocks:
        return None
    return table, blocks


def check(sheet, match, context) -> SheetCheck | None:
    (row, c), blocks = match
    result = SheetCheck(sheet.name, LAYOUT)
    columns = neurons.header_cells(sheet, row, c)
    runs = []
    while isinstance(sheet.constants.get((row + 1, c)), float):
        row += 1
        runs.append((row, int(sheet.constants[(row, c)])))
    if len(runs) != len(blocks):
        result.notes.append(f"{len(runs)} runs in the table but {len(blocks)} blocks of rows; checking the first "
                            f"{min(len(runs), len(blocks))}")
    for (t, number), block in zip(runs, blocks):
        prefix = f"run{number}_"
        inputs = neurons.read_inputs(context, result, sheet, block, prefix=prefix, label_prefix=prefix)
        checked = neurons.prepare(context, result, sheet, block, inputs)
        neurons.expect_rows(result, sheet, checked)
        summaries = {"first blow-up step": checked.first_blowup(), "epoch": checked.where("epoch"),
                     "row": checked.where("row")}
        for epoch in range(1, checked.epochs + 1):
            summaries[f"rmse {epoch}"] = checked.rmse(epoch)
        for header, summarise in summaries.items():
            col = columns.get(header)
            if col is not None and (t, col) in sheet.formulas:
                ulps = checked.sum_ulps if header.startswith("rmse") else LOCAL_ULPS
                expect(result, t, col, checked.stepwise.derived(summarise, ulps))
    return result
