"""The honest account of a verify run, and the text a person reads.

A cell counts as checked only if this run computed it and a checker judged it. Everything
else is said, with why: formulas that read no cell are constant inputs; cells where a
volatile function ran keep the file's saved value and are inputs; sheets of no known
layout, and sheets the second engine cannot compute, are not checked. Saved values that
disagree with what the formulas compute are grouped by what was saved, with a plain
reason where one can be shown (a LAMBDA the program that saved the file could not run).

`account` fills these fields of the Report once; `text_report` and `Report.as_json`
only render them.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass

from xlgen.engine.book import Book, ExcelError
from xlgen.errors import XlgenError
from xlgen.formula import cell_name

WIDTH = 100  # the text report's lines stay within this many columns (paths aside)
SHOWN = 5    # cells named in a list before "..."


def cell_names(cells) -> list[str]:
    return [f"{sheet}!{cell_name(row, col)}" for sheet, row, col in cells]


def workbook_lambdas(book) -> dict:
    """The workbook's named LAMBDAs: NAME -> its text."""
    return {name: text for (scope, name), text in book.names.items()
            if text.lstrip("=").upper().startswith(("_XLFN.LAMBDA(", "LAMBDA("))}


def calls(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", text, re.I) is not None


# --- volatile cells out of the checks, before comparing --------------------------------

def set_aside_volatile(checks: list, volatile: set) -> None:
    """Cells where a volatile function ran were not computed by this run (they keep the
    file's saved value, or a fresh draw): a checker's expectation of them is dropped and
    they are listed as the sheet's volatile inputs instead."""
    if not volatile:
        return
    volatile_of = {}   # sheet name -> its volatile cells
    for sheet, row, col in volatile:
        volatile_of.setdefault(sheet, set()).add((row, col))
    for check in checks:
        drawn = volatile_of.get(check.sheet)
        if not drawn:
            continue
        taken = [cell for cell in check.expected if cell in drawn]
        listed = set(check.volatile)
        for cell in taken:
            del check.expected[cell]
            check.scale.pop(cell, None)
            check.bound.pop(cell, None)
            name = f"{check.sheet}!{cell_name(*cell)}"
            if name not in listed:
                check.volatile.append(name)


# --- the account, after comparing ------------------------------------------------------

def account(report, book, volatile: list, saved: list, constant: list, skip_sheets: dict) -> None:
    """Sort the formula cells nobody checked by why, and explain the stale saves.

    `volatile`: cells where a volatile function ran (calculation order); `saved`: those
    kept at the file's saved value; `constant`: formula cells that read no cell;
    `skip_sheets`: {sheet: reason} the engine could not compute."""
    skipped = {name.lower() for name in skip_sheets}
    volatile_names = [name for name, (sheet, _, _) in zip(cell_names(volatile), volatile)
                      if sheet.lower() not in skipped]
    taken, constants = set(volatile_names), set(cell_names(constant))
    report.volatile = volatile_names
    report.volatile_saved = [name for name in cell_names(saved) if name in taken]
    report.constant_inputs = [name for name in report.unchecked if name in constants]
    report.unchecked = [name for name in report.unchecked if name not in taken and name not in constants]
    report.skipped_cells = sum(len(sheet.formulas) for sheet in book.sheets if sheet.name.lower() in skipped)
    report.formula_cells += report.skipped_cells
    report.stale_reasons = explain_stale(report.stale, book)


@dataclass
class StaleGroup:
    """Saved values of one kind that disagree with what the formulas compute."""
    saved: str            # the saved error ("#VALUE!"), or "numbers" / "values"
    cells: list           # Mismatch (expected = recomputed, actual = saved), sheet order
    reason: str | None = None

    def describe(self) -> str:
        count = len(self.cells)
        what = (f"{count:,} cells were saved as {self.saved}" if self.saved.startswith("#")
                else f"{count:,} cells were saved with other {self.saved} than their formulas give")
        return what + (f": {self.reason}" if self.reason else "")

    def as_json(self) -> dict:
        from xlgen.verify.core import json_value
        first = self.cells[0]
        return {"saved": self.saved, "count": len(self.cells), "reason": self.reason, "first": first.cell,
                "first_saved": json_value(first.actual), "first_computed": json_value(first.expected),
                "description": self.describe()}


def explain_stale(stale: list, book) -> list[StaleGroup]:
    """Group the stale saves by what was saved; name the LAMBDA the saving program could
    not compute where the file shows it: had the workbook's LAMBDAs failed, exactly these
    cells would have been errors (one more calculation, only for such files)."""
    groups: dict = {}
    for mismatch in stale:
        saved, computed = mismatch.actual, mismatch.expected
        if isinstance(saved, ExcelError):
            key = saved.code
        elif isinstance(saved, (int, float)) and not isinstance(saved, bool) and \
                isinstance(computed, (int, float)) and not isinstance(computed, bool):
            key = "numbers"
        else:
            key = "values"
        groups.setdefault(key, []).append(mismatch)
    result = []
    lambdas = workbook_lambdas(book)
    errors_if_failed = None
    for key, cells in groups.items():
        if not key.startswith("#") or not lambdas:
            result.append(StaleGroup(key, cells))
            continue
        if errors_if_failed is None:
            errors_if_failed = _errors_if_lambdas_failed(book, lambdas)
        explained = [m for m in cells if m.cell in errors_if_failed and not isinstance(m.expected, ExcelError)]
        if not explained:
            result.append(StaleGroup(key, cells))
            continue
        used = sorted(name for name in lambdas if any(calls(m.formula, name) for m in explained)) or sorted(lambdas)
        which = (f"the LAMBDA {used[0]}" if len(used) == 1
                 else "the LAMBDAs " + ", ".join(used[:-1]) + " and " + used[-1])
        result.append(StaleGroup(key, explained, f"the program that last saved this file could not compute {which}"))
        rest = [m for m in cells if m not in explained]
        if rest:
            result.append(StaleGroup(key, rest))
    return result


def _errors_if_lambdas_failed(book, lambdas: dict) -> set:
    """Cells ("sheet!A1") that would be errors if every workbook LAMBDA gave #VALUE!."""
    from xlgen.engine import calculate
    from xlgen.engine.parse import ParseError, UnsupportedSyntax, parse_tree
    names = dict(book.names)
    for (scope, name), text in book.names.items():
        if name not in lambdas:
            continue
        try:
            tree = parse_tree(text.lstrip("="))
        except (ParseError, UnsupportedSyntax):
            continue
        if tree[0] == "lambda":
            params = ",".join(f"_xlpm.p{i}" for i in range(len(tree[1])))
            names[(scope, name)] = f"_xlfn.LAMBDA({params},#VALUE!)"
    try:
        values = calculate(Book(sheets=book.sheets, names=names)).values
    except XlgenError:
        return set()
    return {f"{sheet}!{cell_name(row, col)}" for (sheet, row, col), value in values.items()
            if isinstance(value, ExcelError)}


# --- text ------------------------------------------------------------------------------

KEEP = "\u00a0"  # a space inside one item ("dampening E2 = FALSE"): lines do not break there


def wrapped(text: str, indent: int, hang: int = 2) -> list[str]:
    """`text` in lines of at most WIDTH columns, continuation lines indented `hang` more."""
    lines = textwrap.wrap(text, WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + hang),
                          break_on_hyphens=False) or [" " * indent]
    return [line.replace(KEEP, " ") for line in lines]


def shown_value(value) -> str:
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def input_items(check) -> list[str]:
    """'name cell = value'; cells on the checked sheet without the sheet's name."""
    items = []
    for name, info in check.inputs.items():
        cell = str(info["cell"])
        own = f"{check.sheet}!"
        if cell.startswith(own) and "!" not in cell[len(own):] and " " not in cell[len(own):]:
            cell = cell[len(own):]
        items.append(f"{name} {cell} = {shown_value(info['value'])}".replace(" ", KEEP))
    return items


def first_few(names: list) -> str:
    return ", ".join(names[:SHOWN]) + (" ..." if len(names) > SHOWN else "")


def summary_line(report, strict: bool = False) -> str:
    """One line for `build --all`."""
    verdict = verdict_word(report, strict)
    line = f"{verdict:4} {report.path}: {report.cells_checked:,} of {report.formula_cells:,} formula cells checked"
    if report.mismatches:
        line += f", {len(report.mismatches):,} disagree; first: {report.mismatches[0].cell}"
    elif report.ok and report.warnings:
        line += "; with warnings: " + "; ".join(report.warnings)
    return line


def verdict_word(report, strict: bool) -> str:
    if not report.ok or (strict and not report.strict_ok):
        return "FAIL"
    return "OK"


def text_report(report, strict: bool = False) -> str:
    from xlgen.verify.core import RELATIVE_TOLERANCE, json_value
    lines = [f"{report.path} (engine: {report.engine})"]
    for check in report.checks:
        lines.append(f"  {check.sheet}: {check.layout} layout, {check.count():,} cells checked")
        items = input_items(check)
        if items:
            lines.extend(wrapped("inputs: " + ", ".join(items), 4, 8))
        if check.volatile:
            lines.extend(wrapped(f"{len(check.volatile):,} volatile cells are inputs, taken as they are "
                                 f"(not checked): {first_few(check.volatile)}", 4))
        for note in check.notes:
            lines.extend(wrapped(f"note: {note}", 4, 6))
    for item in report.skipped:
        lines.extend(wrapped(f"skipped {item}", 2, 4))
    for note in report.notes:
        lines.extend(wrapped(f"note: {note}", 2, 6))
    if report.lint:
        lines.append(f"  lint: {len(report.lint):,} problems; Excel would not read these formulas as written.")
        lines.extend(wrapped(f"First: {report.lint[0]}", 4, 4))

    # the account: checked, constant inputs, not checked with why, stale saves
    lines.append("summary:")
    checked = f"checked: {report.cells_checked:,} of {report.formula_cells:,} formula cells"
    if report.mismatches:
        checked += f"; {len(report.mismatches):,} disagree with the NumPy reference"
    elif report.cells_checked:
        checked += ", all agree with the NumPy reference"
        if report.largest_bound_used:   # sequential sheets: bounds from their arithmetic
            checked += (f" (row-by-row cells within {report.largest_bound_used:.2g} of their bound; "
                        f"others within relative {RELATIVE_TOLERANCE:g}, largest {report.largest_difference:.1e})")
        else:
            checked += (f" (relative tolerance {RELATIVE_TOLERANCE:g}; "
                        f"largest difference {report.largest_difference:.1e})")
    lines.extend(wrapped(checked, 2, 4))
    if report.constant_inputs:
        lines.extend(wrapped(f"constant inputs: {len(report.constant_inputs):,} formulas read no cell "
                             f"(like =FALSE() or =1/3): {first_few(report.constant_inputs)}", 2, 4))
    if not any(report.not_checked.values()):
        lines.append("  not checked: none")
    if report.volatile:
        saved = len(report.volatile_saved)
        how = ("taken at their saved values" if saved == len(report.volatile) else
               f"{saved:,} taken at their saved values, {len(report.volatile) - saved:,} drawn afresh")
        lines.extend(wrapped(f"not checked: {len(report.volatile):,} cells where a volatile function ran "
                             f"(RAND, NOW, OFFSET...), {how}: {first_few(report.volatile)}", 2, 4))
    if report.unchecked:
        lines.extend(wrapped(f"not checked: {len(report.unchecked):,} formula cells belong to no known layout: "
                             f"{first_few(report.unchecked)}", 2, 4))
    if report.skipped_cells:
        lines.extend(wrapped(f"not checked: {report.skipped_cells:,} formula cells of the sheets the engine "
                             "skipped (above)", 2, 4))
    if report.stale:
        lines.extend(wrapped(f"stale: {len(report.stale):,} saved values disagree with what the formulas "
                             "compute (verify uses the computed ones)", 2, 4))
        for group in report.stale_reasons:
            first = group.cells[0]
            lines.extend(wrapped(f"{group.describe()}; first {first.cell}: saved {json_value(first.actual)!r}, "
                                 f"computed {json_value(first.expected)!r}", 4, 4))
    elif report.engine == "xlgen" and report.cached_missing < report.formula_cells:
        lines.append("  stale: none (every saved value is what the formulas compute)")
    if report.cached_missing:
        lines.extend(wrapped(f"{report.cached_missing:,} formula cells have no saved value (the file was "
                             "written without them); they were computed", 2, 4))

    # the verdict, last
    if report.ok:
        warnings = report.warnings
        if not warnings:
            lines.append(f"OK: {report.cells_checked:,} formula cells agree with the NumPy reference.")
        else:
            word = "FAIL (--strict)" if strict else "OK, with warnings"
            lines.append(f"{word}: {report.cells_checked:,} formula cells agree; " + "; ".join(
                _short(warning) for warning in warnings) + ".")
    elif not report.checks:
        lines.append("FAIL: no sheet of a known layout was found, so nothing was checked.")
    elif not report.mismatches:
        lines.append("FAIL: the values agree with the reference, but the formula lint found problems (above).")
    else:
        first = report.mismatches[0]
        lines.append(f"FAIL: {len(report.mismatches):,} of {report.cells_checked:,} cells disagree with the reference; "
                     f"the first in calculation order is {first.cell}")
        lines.extend(wrapped(f"formula   ={first.formula}", 2, 10))
        lines.append(f"  expected  {json_value(first.expected)!r}  (NumPy reference)")
        lines.append(f"  actual    {json_value(first.actual)!r}  (recomputed)")
        for other in report.mismatches[1:6]:
            lines.extend(wrapped(f"also {other.cell}: expected {json_value(other.expected)!r}, "
                                 f"actual {json_value(other.actual)!r}", 2, 4))
    return "\n".join(lines)


def _short(warning: str) -> str:
    """'29 formula cells not checked (volatile)' -> '29 not checked (volatile)' for the last line."""
    return (warning.replace(" formula cells not checked", " not checked")
            .replace(" saved values disagree with what the formulas compute", " stale saved values"))
