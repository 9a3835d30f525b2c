"""Checker for the sheets of fastai's tests (xlgen's average_grad_tests layout, LAMBDA or plain).

A sheet is recognised by its test tables' header rows (average_grad, average_sqr_grad,
sgd_step, Adam). Each row's inputs (grad, mom, dampening, p, lr, ...) are read from the
sheet; the test's name says how many calls it makes ("second call" chains from the
first). The reference computes, with fastai's pieces, every formula cell: the state a
chained row starts from, the call itself (AVERAGE_GRAD or its plain twin, as the engine
evaluated it), fastai's expected value for the named test, and PASS/FAIL from the
tolerance in the row. A broken AVERAGE_GRAD (say grad*mom + grad_avg*damp, the forum's
slip) changes the calls: they and their PASS cells disagree with the reference.
"""

from __future__ import annotations

from xlgen.errors import XlgenError
from xlgen.formula import cell_name
from xlgen.reference import fastai_tests as fastai
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import normal, text_constants

LAYOUT = "average_grad_tests"
AVERAGE = ("fastai test", "grad", "mom", "dampening", "grad_avg", "new grad_avg", "expected", "tolerance", "result")
SQR = ("fastai test", "grad", "sqr_mom", "dampening", "sqr_avg", "new sqr_avg", "expected", "tolerance", "result")
SGD = ("fastai test", "p", "grad", "lr", "new p", "expected", "tolerance", "result")
ADAM = ("fastai test", "p", "grad", "lr", "mom", "sqr_mom", "eps", "step", "grad_avg", "sqr_avg", "new p",
        "expected", "tolerance", "result")
TABLES = {"grad_avg": AVERAGE, "sqr_avg": SQR, "sgd": SGD, "adam": ADAM}


def header_rows(sheet, headers: tuple, max_row: int = 500, texts=None) -> list:
    """(row, first col) of every row whose cells read `headers` left to right; `texts`:
    the sheet's ((row, col), text) constants, if found already (no other reads as a header)."""
    wanted = [normal(h) for h in headers]
    found = []
    for (row, col), value in (sheet.constants.items() if texts is None else texts):
        if row <= max_row and isinstance(value, str) and normal(value) == wanted[0] and all(
                normal(sheet.constants.get((row, col + i))) == h for i, h in enumerate(wanted)):
            found.append((row, col))
    return sorted(found)


def recognise(book, sheet):
    texts = text_constants(sheet)
    tables = {kind: header_rows(sheet, headers, texts=texts) for kind, headers in TABLES.items()}
    return tables if any(tables.values()) else None


class Rows:
    """One table's rows: cells by header, values as the engine computed them."""

    def __init__(self, sheet, context, result, header_row, c0, headers):
        self.sheet, self.context, self.result = sheet, context, result
        self.col = {h: c0 + i for i, h in enumerate(headers)}
        self.rows = []
        row = header_row + 1
        while isinstance(sheet.constants.get((row, c0)), str) and normal(sheet.constants[(row, c0)]):
            self.rows.append(row)
            row += 1

    def name(self, row) -> str:
        return normal(self.sheet.constants[(row, self.col["fastai test"])])

    def is_formula(self, row, header) -> bool:
        return (row, self.col[header]) in self.sheet.formulas

    def value(self, row, header):
        return self.context.value(self.sheet.name, row, self.col[header])

    def number(self, row, header) -> float:
        value = self.value(row, header)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise XlgenError(f"{self.sheet.name}!{cell_name(row, self.col[header])} ({header}) should hold a "
                             f"number, not {value!r}")
        return float(value)

    def flag(self, row, header) -> bool:
        value = self.value(row, header)
        if isinstance(value, str):
            return normal(value) == "true"
        return bool(value)

    def expect(self, row, header, value) -> None:
        if self.is_formula(row, header):
            self.result.expect(row, self.col[header], value)


def expected_value(rows: Rows, row, header, reference):
    """fastai's expectation where the cell is a formula (and the test is known), else the cell."""
    if rows.is_formula(row, header):
        if reference is None:
            return None
        rows.expect(row, header, reference)
        return reference
    return rows.number(row, header)


def verdict(rows: Rows, row, result: float, expected) -> None:
    """PASS/FAIL from the reference's result, the expected value and the row's tolerance."""
    if expected is None or not rows.is_formula(row, "result"):
        return
    tolerance = rows.number(row, "tolerance")
    rows.expect(row, "result", "PASS" if abs(result - expected) <= tolerance else "FAIL")


def check_averages(rows: Rows, kind: str, beta_header: str, state_header: str, new_header: str) -> None:
    table = fastai.EXPECTED_AVERAGE_GRAD if kind == "grad_avg" else fastai.EXPECTED_AVERAGE_SQR_GRAD
    for row in rows.rows:
        name = rows.name(row)
        grad, beta = rows.number(row, "grad"), rows.number(row, beta_header)
        dampening = rows.flag(row, "dampening")
        if rows.is_formula(row, state_header):   # chained: fastai's state starts empty (zeros)
            values = fastai.running_averages(kind, grad, beta, dampening, 0.0, fastai.calls_of(name))
            rows.expect(row, state_header, values[-2] if len(values) > 1 else 0.0)
            result = values[-1]
        else:
            result = fastai.running_averages(kind, grad, beta, dampening, rows.number(row, state_header), 1)[-1]
        rows.expect(row, new_header, result)
        known = table.get(name)
        verdict(rows, row, result, expected_value(rows, row, "expected", known(grad) if known else None))


def check_sgd(rows: Rows) -> None:
    for row in rows.rows:
        result = fastai.sgd(rows.number(row, "p"), rows.number(row, "grad"), rows.number(row, "lr"))
        rows.expect(row, "new p", result)
        verdict(rows, row, result, expected_value(rows, row, "expected", fastai.SGD_EXPECTED))


def check_adam(rows: Rows) -> None:
    starts = {}          # position within its test -> p before the first step
    position, previous = 0, None
    for row in rows.rows:
        name = rows.name(row)
        position = position + 1 if name == previous else 0
        previous = name
        if rows.is_formula(row, "p"):       # a later step, chained from the first step's row
            if position not in starts:
                continue
            p0, steps = starts[position], fastai.calls_of(name)
        else:                               # a first step from the p written in the row
            p0, steps = rows.number(row, "p"), 1
            starts[position] = p0
        history = fastai.adam_steps(p0, rows.number(row, "grad"), rows.number(row, "lr"), rows.number(row, "mom"),
                                    rows.number(row, "sqr_mom"), rows.number(row, "eps"), steps)
        if steps > 1:
            rows.expect(row, "p", history[-2][0])
        p, grad_avg, sqr_avg, step = history[-1]
        for header, value in (("step", step), ("grad_avg", grad_avg), ("sqr_avg", sqr_avg), ("new p", p)):
            rows.expect(row, header, value)
        verdict(rows, row, p, expected_value(rows, row, "expected", fastai.adam_expected(p0, steps)))


def lambda_notes(book, sheet) -> list:
    """Which workbook-level LAMBDAs the sheet calls, with their stored text."""
    notes = []
    for (scope, name), text in sorted(book.names.items(), key=lambda item: item[0][1]):
        if scope is None and "LAMBDA(" in text.upper() and any(name + "(" in f.upper() for f in sheet.formulas.values()):
            notes.append(f"calls {name}, a named LAMBDA the engine evaluated: ={text}")
    return notes


def check(sheet, match, context) -> SheetCheck:
    result = SheetCheck(sheet.name, LAYOUT)
    result.notes.extend(lambda_notes(context.book, sheet))
    for kind, places in match.items():
        for header_row, c0 in places:
            rows = Rows(sheet, context, result, header_row, c0, TABLES[kind])
            if kind == "grad_avg":
                check_averages(rows, kind, "mom", "grad_avg", "new grad_avg")
            elif kind == "sqr_avg":
                check_averages(rows, kind, "sqr_mom", "sqr_avg", "new sqr_avg")
            elif kind == "sgd":
                check_sgd(rows)
            else:
                check_adam(rows)
    return result
