"""Checker for the `about` sheet (xlgen.sheets.about): its "numbers to look for".

Recognised by the header row (sheet, look at, value). Each row names a sheet and, in
words, what the value is; the checker works out from those words what the value must
be, never from the formula:

- "rmse after epoch N": the sheet's epoch | rmse table, the row of epoch N; expected is
  what the NumPy reference says that cell holds (the sheet's own checker's expectation).
- "final a" / "final b": the last row of the sheet's `new a` / `new b` column, likewise.
- "first blow-up: epoch" / "data row": found again here from the workbook's values: the
  first row of the model block whose err^2 is above the sheet's blow-up threshold or an
  error, counted in epochs of the data set's length ("none" when no row is).
- "fastai tests: PASS" / "FAIL": how many of the `result` cells under the test tables'
  headers the reference says should read PASS (FAIL).
- "ROW LABEL, HEADER": the cell under HEADER in the row labelled ROW LABEL, and
  "HEADER (below its header)": the first formula within ten rows under HEADER; expected is the
  reference's value for that cell (a layout's ABOUT_NUMBERS); "LABEL (beside its label)":
  the formula right of the text LABEL (a trailing colon aside).

The sheet's other cells are text. A number whose sheet is skipped (LibreOffice cannot
compute a LAMBDA) is skipped with it, with the reason.
"""

from __future__ import annotations

import math
import re

from xlgen.engine.book import ExcelError
from xlgen.formula import cell_name
from xlgen.reference.neurons import blown_up
from xlgen.verify.core import SheetCheck, kept_for_sheet
from xlgen.verify.locate import find_header_row, formula_rows_below, input_cell, normal, text_constants

LAYOUT = "about"
HEADERS = ("sheet", "look at", "value")


def recognise(book, sheet):
    return find_header_row(sheet, HEADERS)


def _sheet(book, name: str):
    try:
        return book.sheet(name)
    except KeyError:
        return None


def _constants(sheet, wanted: str) -> list:
    """The sheet's constants in row order, that `normal(value) == wanted` may hold for: its
    texts alone unless `wanted` is empty (what `normal` makes of anything else)."""
    if wanted:
        return text_constants(sheet)
    return kept_for_sheet(sheet, "constants", lambda sheet: sorted(sheet.constants.items()))


def _header_cell(sheet, text: str, right_of: str | None = None):
    wanted = normal(text)
    for (row, col), value in _constants(sheet, wanted):
        if normal(value) == wanted and (right_of is None or normal(sheet.constants.get((row, col - 1))) == normal(right_of)):
            return row, col
    return None


def _formulas_below(sheet, row: int, col: int) -> list[int]:
    return formula_rows_below(sheet, row, col)


def _from_source(source_check, cell, what: str):
    """The reference's value for a cell of another sheet, with its scale; a sentence
    (which no cell can equal) when that sheet's checker did not check the cell."""
    found = None if source_check is None or cell is None else source_check.lookup(cell)
    if found is None:
        return f"({what}: not a cell the reference checks)", 0.0
    return found[0], found[1]


def rmse_cell(sheet, epoch: int):
    found = find_header_row(sheet, ("epoch", "rmse"))
    if found is None:
        return None
    row, col = found
    while isinstance(sheet.constants.get((row + 1, col)), float):
        row += 1
        if sheet.constants[(row, col)] == epoch:
            return row, col + 1
    return None


def final_cell(sheet, weight: str):
    """The last row's cell under `new WEIGHT`: the run of formulas below the header, and on
    past TRUE/FALSE or text typed over one of them (the checkers check those too)."""
    found = _header_cell(sheet, f"new {weight}")
    rows = _formulas_below(sheet, *found) if found else []
    if not rows:
        return None
    row, col = rows[-1], found[1]
    while (row + 1, col) in sheet.formulas or isinstance(sheet.constants.get((row + 1, col)), (bool, str)):
        row += 1
    return row, col


def first_blowup(context, sheet, what: str):
    """Epoch or data row of the first row whose err^2 passes the threshold, from the
    workbook's computed values; "none" when none does."""
    from xlgen.verify.neurons import find_blocks
    blocks = find_blocks(sheet)
    if not blocks:
        return "(no model rows on this sheet)"
    block = blocks[0]
    where = input_cell(context.book, sheet, ("blowup_threshold",), "blow-up above")
    if where is None:
        return "(no blow-up threshold on this sheet)"
    threshold = context.value(*where)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        return "(the blow-up threshold is not a number)"
    per_epoch = len(context.dataset.x) if context.dataset is not None else len(block.rows)
    for index, row in enumerate(block.rows):
        loss = context.value(sheet.name, row, block.col["err^2"])
        # as the sheet's IF(ISERROR(F27),P27,IF(F27>blowup_threshold,P27,0)): an error is a
        # blow-up, and so is text or TRUE/FALSE, which Excel ranks above every number
        loss = math.nan if isinstance(loss, (ExcelError, str, bool)) or loss is None else float(loss)
        if blown_up(loss, threshold):
            return float(index // per_epoch + 1 if what == "epoch" else index % per_epoch + 1)
    return "none"


def test_verdicts(sheet, source_check, verdict: str):
    """How many result cells of the test tables the reference says read `verdict`."""
    count = 0
    for (row, col), value in _constants(sheet, "result"):
        if normal(value) != "result":
            continue
        for r in _formulas_below(sheet, row, col):
            found = None if source_check is None else source_check.lookup((r, col))
            if found is None:
                return f"({sheet.name}!{cell_name(r, col)}: a test result the reference does not check)"
            count += found[0] == verdict
    return float(count)


def expectation(context, label: str, source, source_check):
    """(expected value, scale) of the about cell described by `label` on sheet `source`."""
    if source is None:
        return "(no such sheet)", 0.0
    if (match := re.match(r"rmse after epoch (\d+)", label)):
        return _from_source(source_check, rmse_cell(source, int(match.group(1))), label)
    if (match := re.match(r"final ([a-z]\w*)", label)):
        return _from_source(source_check, final_cell(source, match.group(1)), label)
    if (match := re.match(r"first blow-up: (epoch|data row)", label)):
        return first_blowup(context, source, "epoch" if match.group(1) == "epoch" else "row"), 0.0
    if (match := re.match(r"fastai tests: (pass|fail)", label)):
        return test_verdicts(source, source_check, match.group(1).upper()), 0.0
    if (match := re.fullmatch(r"(.+) \(below its header\)", label)):
        found = _header_cell(source, match.group(1))
        below = [row for row in range(found[0] + 1, found[0] + 11) if (row, found[1]) in source.formulas] if found else []
        return _from_source(source_check, (below[0], found[1]) if below else None, label)
    if (match := re.fullmatch(r"(.+) \(beside its label\)", label)):
        wanted = normal(match.group(1))
        beside = next(((row, col + 1) for (row, col), value in _constants(source, wanted)
                       if normal(value).rstrip(":") == wanted and (row, col + 1) in source.formulas), None)
        return _from_source(source_check, beside, label)
    if (match := re.fullmatch(r"(.+?), (.+)", label)):
        return _from_source(source_check, labelled_cell(source, match.group(1), match.group(2)), label)
    return None


def labelled_cell(sheet, row_label: str, header: str):
    """The formula cell under `header` in the row labelled `row_label`, as found here."""
    found = _header_cell(sheet, header)
    if found is None:
        return None
    for (row, col), value in _constants(sheet, normal(row_label)):
        if row > found[0] and normal(value) == normal(row_label) and (row, found[1]) in sheet.formulas:
            return row, found[1]
    return None


def check(sheet, match, context) -> SheetCheck:
    header_row, c0 = match
    sheet_col, label_col, value_col = c0, c0 + 1, c0 + 2
    result = SheetCheck(sheet.name, LAYOUT)
    row = header_row
    while isinstance(sheet.constants.get((row + 1, sheet_col)), str):
        row += 1
        if (row, value_col) not in sheet.formulas:
            continue
        name = sheet.constants[(row, sheet_col)]
        label = normal(sheet.constants.get((row, label_col)))
        if name in context.skip_sheets:
            result.skipped[(row, value_col)] = f"sums up {name}, which is skipped: {context.skip_sheets[name]}"
            continue
        expected = expectation(context, label, _sheet(context.book, name), context.results.get(name))
        if expected is None:   # words this checker does not know: the cell stays unchecked
            continue
        result.expect(row, value_col, *expected)
    return result
