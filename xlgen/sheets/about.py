"""The `about` sheet, first in every workbook: what a learner sees before anything else.

What the workbook teaches (the template's `about` lines); each sheet with a link and one
line, and the named inputs to change there; the numbers to look for, as live formulas
that link to the cells they name (rmse after the first and last epoch, the final
weights, where a model first blew up, how many of fastai's tests pass); and how the file
was made. Those formulas are checked by xlgen/verify/about.py like every other cell.

The builder finds the cells it links to in the other sheets' plans by what they are
(the epoch/rmse table, the last row of a `new a` column, the blow-up summary, the
`result` columns of the test tables), never by computing a number.
"""

from __future__ import annotations

import re

from xlgen.formula import Range, Ref, call
from xlgen.sheets import data
from xlgen.sheets.plan import SheetPlan, WorkbookPlan

SHEET = "about"
SHEETS_HEADERS = ("sheet", "what it shows", "inputs to change (named cells)")
NUMBERS_HEADERS = ("sheet", "look at", "value")
SHEET_COL, TEXT_COL, VALUE_COL, LAST_COL = 1, 2, 3, 4
# General in a narrow value column: spreadsheets show as many digits as fit
WIDTHS = {SHEET_COL: 14, TEXT_COL: 66, VALUE_COL: 16, LAST_COL: 40}

def sheet_line(spec, template, layout) -> str:
    """One line on a sheet, from its layout module's ABOUT (a dict by model for the models)."""
    options = dict(spec.options)
    if spec.layout == "model":
        line = layout.ABOUT[options["model"]].format(**options)
        return line + (f" With momentum {options['momentum']:g}." if options.get("momentum") else "")
    options["sheet_list"] = ", ".join(options.get("sheets", []))
    options["runs"] = len(options.get("learning_rates") or options.get("initials") or [])
    line = layout.ABOUT.format(**options)
    if options.get("use_lambda"):
        line += " Calls the LAMBDAs: needs Excel 365 or 2021."
    elif any(other.layout == spec.layout and other.options.get("use_lambda") for other in template.sheets):
        line += " The same with plain formulas, for Excel 2019 and LibreOffice."
    return line


def input_list(sheet: SheetPlan) -> str:
    """The sheet's named input cells, e.g. `learning_rate F1, initial_a C2`; a sweep's
    per-run names once, as runN_learning_rate."""
    singles, runs, rows = [], [], set()
    def first_cell(target):  # a name is a cell or a range (a kernel, an image)
        return target.first if isinstance(target, Range) else target

    for name, target in sorted(sheet.names.items(), key=lambda item: (first_cell(item[1]).row, first_cell(item[1]).col)):
        match = re.fullmatch(r"run(\d+)_(.+)", name)
        if match:
            rows.add(first_cell(target).row)
            if f"runN_{match.group(2)}" not in runs:
                runs.append(f"runN_{match.group(2)}")
            continue
        if isinstance(target, Range):
            singles.append(f"{name} {Range(Ref(target.first.row, target.first.col), Ref(target.last.row, target.last.col)).text()}")
        else:
            singles.append(f"{name} {Ref(target.row, target.col).text()}")
    if runs:
        singles.append(f"{', '.join(runs)} (N = 1 to {len(rows)}: one table row per run, "
                       f"rows {min(rows)}-{max(rows)})")
    return ", ".join(singles) or "-"


# --- the cells the numbers link to, found in the other sheets' plans ---------------------

def _text(sheet: SheetPlan, row: int, col: int) -> str:
    entry = sheet.cells.get((row, col))
    return entry.content if entry is not None and isinstance(entry.content, str) else ""


def _is_formula(sheet: SheetPlan, row: int, col: int) -> bool:
    entry = sheet.cells.get((row, col))
    return entry is not None and not isinstance(entry.content, (str, int, float, bool))


def _header(sheet: SheetPlan, text: str, right_of: str | None = None):
    """(row, col) of the first header cell reading `text` (with `right_of` to its left)."""
    for (row, col) in sorted(sheet.cells):
        if _text(sheet, row, col) == text and (right_of is None or _text(sheet, row, col - 1) == right_of):
            return row, col
    return None


def _column_below(sheet: SheetPlan, row: int, col: int) -> list[int]:
    rows = []
    while _is_formula(sheet, row + 1, col):
        row += 1
        rows.append(row)
    return rows


def rmse_cells(sheet: SheetPlan) -> dict:
    """epoch -> (row, col) of its rmse in the sheet's epoch | rmse table."""
    found = _header(sheet, "rmse", right_of="epoch")
    if found is None:
        return {}
    row, col = found
    cells = {}
    while isinstance((sheet.cells.get((row + 1, col - 1)) or _NONE).content, int) and _is_formula(sheet, row + 1, col):
        row += 1
        cells[sheet.cells[(row, col - 1)].content] = (row, col)
    return cells


class _Nothing:
    content = None


_NONE = _Nothing()


def labelled_value(sheet: SheetPlan, row_label: str | None, header: str):
    """(row, col) of the formula under `header` in the row labelled `row_label`, of the
    first formula below `header` when `row_label` is None, of the formula beside
    `row_label` when `header` is None."""
    if header is None:   # the first such label in (row, col) order: the least, without sorting every cell
        labels = [cell for cell, entry in sheet.cells.items()
                  if (entry.content if isinstance(entry.content, str) else "") == row_label
                  and _is_formula(sheet, cell[0], cell[1] + 1)]
        if not labels:
            return None
        row, col = min(labels)
        return row, col + 1
    found = _header(sheet, header)
    if found is None:
        return None
    if row_label is None:
        below = [row for row in range(found[0] + 1, found[0] + 11) if _is_formula(sheet, row, found[1])]
        return (below[0], found[1]) if below else None
    for (row, col) in sorted(sheet.cells):
        if row > found[0] and _text(sheet, row, col) == row_label and _is_formula(sheet, row, found[1]):
            return row, found[1]
    return None


def numbers(sheet: SheetPlan, spec, layout) -> list[tuple[str, object]]:
    """(label, formula) of the numbers to look for on one sheet; labels are what the
    checker reads to know what each value must be. A layout may name its own in
    ABOUT_NUMBERS: (row label, column header) pairs, (None, header) for the first
    formula within ten rows below a header, (label, None) for the formula beside a label."""
    out = []
    for row_label, header in getattr(layout, "ABOUT_NUMBERS", ()):
        cell = labelled_value(sheet, row_label, header)
        if cell is not None:
            if header is None:
                label = f"{row_label.rstrip(':')} (beside its label)"
            else:
                label = f"{row_label}, {header}" if row_label else f"{header} (below its header)"
            out.append((label, Ref(*cell, sheet.name, True, True)))
    if spec.layout in ("basic", "momentum", "rmsprop", "adam", "adam_ann", "model"):
        rmse = rmse_cells(sheet)
        if rmse:
            first, last = min(rmse), max(rmse)
            out.append((f"rmse after epoch {first}", Ref(*rmse[first], sheet.name, True, True)))
            if last != first:
                out.append((f"rmse after epoch {last} (the last)", Ref(*rmse[last], sheet.name, True, True)))
    if spec.layout in ("basic", "momentum", "rmsprop", "adam", "adam_ann"):
        for weight in ("a", "b"):
            found = _header(sheet, f"new {weight}")
            rows = _column_below(sheet, *found) if found else []
            if rows:
                out.append((f"final {weight} (new {weight}, last row)", Ref(rows[-1], found[1], sheet.name, True, True)))
    if spec.layout == "model":
        found = _header(sheet, "epoch", right_of="first blow-up step")
        if found and _is_formula(sheet, found[0] + 1, found[1]):
            row, col = found[0] + 1, found[1]
            out.append(("first blow-up: epoch (none: never)", Ref(row, col, sheet.name, True, True)))
            out.append(("first blow-up: data row", Ref(row, col + 1, sheet.name, True, True)))
    if spec.layout == "average_grad_tests":
        ranges = []
        for (row, col) in sorted(sheet.cells):
            if _text(sheet, row, col) == "result":
                rows = _column_below(sheet, row, col)
                if rows:
                    ranges.append(Range(Ref(rows[0], col, sheet.name, True, True), Ref(rows[-1], col, None, True, True)))
        for verdict in ("PASS", "FAIL"):
            if ranges:
                total = call("COUNTIF", ranges[0], verdict)
                for extra in ranges[1:]:
                    total = total + call("COUNTIF", extra, verdict)
                out.append((f"fastai tests: {verdict}", total))
    return out


def build(workbook: WorkbookPlan, template, layouts: dict) -> SheetPlan:
    """The about sheet, put first; call after every other sheet is planned. `layouts`:
    layout name -> builder module, whose ABOUT says what a sheet of it shows."""
    specs = {spec.name: spec for spec in template.sheets}
    sheet = workbook.add_sheet(SHEET, first=True)
    sheet.put(1, 1, template.title, "title")
    row = 3
    sheet.put(row, 1, "What this workbook teaches", "section")
    for line in (template.about or template.description).strip().splitlines():
        row += 1
        sheet.put(row, 1, line.strip(), "prose")
    row += 1
    sheet.put(row, 1, "Yellow cells are inputs, each with a name (Formulas > Name Manager): change one and "
                      "every formula that depends on it follows.", "prose")

    row += 2
    sheet.put(row, 1, "The sheets (click a name to go there)", "section")
    row += 1
    for col, header in enumerate(SHEETS_HEADERS, start=1):
        sheet.put(row, col, header, "header")
    sheet.merges.append((row, VALUE_COL, LAST_COL))
    for other in workbook.sheets[1:]:
        row += 1
        spec = specs.get(other.name)
        sheet.put(row, SHEET_COL, other.name, "link")
        sheet.links[(row, SHEET_COL)] = other.name
        line = data.ABOUT if spec is None else sheet_line(spec, template, layouts[spec.layout])
        sheet.put(row, TEXT_COL, line, "wrap")
        sheet.put(row, VALUE_COL, input_list(other), "wrap")
        sheet.merges.append((row, VALUE_COL, LAST_COL))

    row += 2
    sheet.put(row, 1, "Numbers to look for (live: they follow the inputs)", "section")
    row += 1
    for col, header in enumerate(NUMBERS_HEADERS, start=1):
        sheet.put(row, col, header, "header")
    for other in workbook.sheets[1:]:
        spec = specs.get(other.name)
        for label, expr in numbers(other, spec, layouts[spec.layout]) if spec is not None else []:
            row += 1
            sheet.put(row, SHEET_COL, other.name, "link")
            sheet.links[(row, SHEET_COL)] = other.name
            sheet.put(row, TEXT_COL, label)
            sheet.put(row, VALUE_COL, expr, "value")

    row += 2
    sheet.put(row, 1, "How it was made", "section")
    from xlgen import __version__
    sheet.put(row + 1, 1, f"Built by xlgen {__version__} with: {template.made_with or 'xlgen build ' + template.name}",
              "prose")
    sheet.put(row + 2, 1, "Check it: xlgen verify FILE recomputes every formula, this sheet's too, and compares "
                          "each cell with an independent NumPy reference.", "prose")
    sheet.widths.update(WIDTHS)
    return sheet
