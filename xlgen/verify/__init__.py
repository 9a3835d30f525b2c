"""Verify: recompute a workbook's formulas and compare them with the NumPy reference.

Each layout checker recognises its sheets by their headers (so the course's own file
and files users edited are checked too), reads the inputs from the workbook and says
what every formula cell should hold.
"""

from __future__ import annotations

from xlgen.engine import calculate, read_xlsx
from xlgen.engine.book import ExcelError
from xlgen.formula import cell_name
from xlgen.verify import basic, data
from xlgen.verify.core import Report, compare

# data first: the sheets that link to the data points need them
CHECKERS = [data, basic]


class Context:
    """What checkers share: the book, computed values, and the data set once known."""

    def __init__(self, book, values: dict, volatile: set):
        self.book = book
        self.values = values
        self.volatile = volatile
        self.dataset = None

    def value(self, sheet: str, row: int, col: int):
        key = (sheet, row, col)
        if key in self.values:
            return self.values[key]
        return self.book.sheet(sheet).constants.get((row, col))

    def is_volatile(self, sheet: str, row: int, col: int) -> bool:
        return (sheet, row, col) in self.volatile

    def input(self, result, label: str, cell):
        """The value of an input cell, recorded in the report; refused if not a number."""
        from xlgen.errors import XlgenError
        if cell is None:
            raise XlgenError(f"sheet {result.sheet}: cannot find its {label} input (no name, no label)")
        sheet, row, col = cell
        value = self.value(sheet, row, col)
        where = f"{sheet}!{cell_name(row, col)}"
        result.inputs[label] = {"cell": where, "value": value.code if isinstance(value, ExcelError) else value}
        if label == "derivative":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise XlgenError(f"{where} ({label}) should hold a number, not {value!r}")
        return float(value)


def check_book(report: Report, book, values: dict, order: list, volatile: set) -> Report:
    context = Context(book, values, volatile)
    matched = set()
    for checker in CHECKERS:
        for sheet in book.sheets:
            if sheet.name in matched:
                continue
            match = checker.recognise(book, sheet)
            if match is None:
                continue
            result = checker.check(sheet, match, context)
            if result is not None:
                report.checks.append(result)
                matched.add(sheet.name)
    compare(report, book, values, order)
    report.notes.extend(book.notes)
    return report


def verify_file(path, progress=None) -> Report:
    book = read_xlsx(path)
    calculation = calculate(book, progress=progress)
    report = Report(str(path))
    return check_book(report, book, calculation.values, calculation.order, set(calculation.volatile))
