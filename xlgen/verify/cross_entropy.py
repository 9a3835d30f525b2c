"""Checker for a cross-entropy sheet (the course's entropy_example.xlsx `entropy`, or xlgen's).

Three parts, each found by its header row, any of them may be missing:
- categorical (softmax, actuals, x-entropy[, x-entropy (ln)]): per class actual*log(p),
  and under the classes the loss, minus their sum (and, in xlgen's sheet, the ratio of the
  natural-log loss to the base-10 one). Probabilities and actuals typed in are inputs;
  linked ones must equal the softmax sheet's reference values for the class of that row.
- binary (isCat, isNotCat, PredCat, PredNotCat, then the loss columns): isCat and PredCat
  are inputs; 1-y, 1-p and each row's loss are checked. Loss columns are told apart by
  their headers (an "IF" form, "LN" natural log); without headers, as the course's file
  has them, the first is the two-term form and the second the IF form, both with LOG.
  Under the rows, a cell labelled "mean" holds the mean; an unlabelled one is the batch's
  total loss, a positive number (the sum of the rows' losses).
- a curve table (p, -LOG(p), -LN(p)).
"""

from __future__ import annotations

from xlgen.reference import cross_entropy as ce
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import find_header_row, normal

LAYOUT = "cross_entropy"
CATEGORICAL = ("softmax", "actuals", "x-entropy")
BINARY = ("isCat", "isNotCat", "PredCat", "PredNotCat")
CURVE = ("p", "-LOG(p)", "-LN(p)")


def recognise(book, sheet):
    parts = (find_header_row(sheet, CATEGORICAL), find_header_row(sheet, BINARY, max_row=200),
             find_header_row(sheet, CURVE, max_row=400))
    return parts if any(parts) else None


def check(sheet, match, context) -> SheetCheck | None:
    categorical, binary, curve = match
    result = SheetCheck(sheet.name, LAYOUT)
    if categorical:
        check_categorical(sheet, categorical, context, result)
    if binary:
        check_binary(sheet, binary, context, result)
    if curve:
        check_curve(sheet, curve, context, result)
    return result if result.expected else None


def has(sheet, row, col) -> bool:
    return (row, col) in sheet.formulas or (row, col) in sheet.constants


def linked_or_input(sheet, row, col, context, result, label, from_softmax):
    """A typed-in value is an input; a formula must give the softmax sheet's value."""
    if (row, col) in sheet.formulas and from_softmax is not None:
        result.expect(row, col, from_softmax)
        return from_softmax
    return context.input(result, label, (sheet.name, row, col))


def check_categorical(sheet, match, context, result) -> None:
    header_row, prob_col = match
    actual_col, log_col = prob_col + 1, prob_col + 2
    ln_col = prob_col + 3 if normal(sheet.constants.get((header_row, prob_col + 3))) == "x-entropy (ln)" else None
    classes = getattr(context, "softmax_classes", None) or {}
    rows, probabilities, actuals = [], [], []
    row = header_row + 1
    while has(sheet, row, prob_col) and (row, log_col) in sheet.formulas:
        label = normal(sheet.constants.get((row, prob_col - 1)))
        known = classes.get(label, (None, None))
        probabilities.append(linked_or_input(sheet, row, prob_col, context, result, f"softmax {label or row}",
                                             known[0]))
        actuals.append(linked_or_input(sheet, row, actual_col, context, result, f"actual {label or row}",
                                       None if known[1] is None else float(known[1])))
        rows.append(row)
        row += 1
    if not rows:
        return
    losses = {}
    for col, log in ((log_col, "log10"), (ln_col, "ln")):
        if col is None:
            continue
        terms = ce.categorical_terms(probabilities, actuals, log)
        for r, term in zip(rows, terms):
            result.expect(r, col, term)
        losses[log] = ce.categorical_loss(probabilities, actuals, log)
        if (row, col) in sheet.formulas:
            result.expect(row, col, losses[log])
    if ln_col is not None and (row + 1, ln_col) in sheet.formulas:
        result.expect(row + 1, ln_col, losses["ln"] / losses["log10"])


def loss_columns(sheet, header_row, first_col) -> list:
    """(col, form, log) of each loss column right of PredNotCat."""
    columns = []
    col = first_col
    while (header_row + 1, col) in sheet.formulas:
        title = normal(sheet.constants.get((header_row, col)))
        if title:
            words = title.replace("(", " ").replace(")", " ").replace(",", " ").split()
            form = "if" if "if" in words else "two_terms"
            log = "ln" if "ln" in words else "log10"
        else:  # the course's unlabelled columns: two-term form, then the IF form, with LOG
            form = "two_terms" if col == first_col else "if"
            log = "log10"
        columns.append((col, form, log))
        col += 1
    return columns


def check_binary(sheet, match, context, result) -> None:
    header_row, y_col = match
    not_y_col, p_col, not_p_col = y_col + 1, y_col + 2, y_col + 3
    rows, ys, ps = [], [], []
    row = header_row + 1
    while (row, y_col) in sheet.constants and (row, p_col) in sheet.constants:
        rows.append(row)
        ys.append(context.input(result, f"isCat {len(rows)}", (sheet.name, row, y_col)))
        ps.append(context.input(result, f"PredCat {len(rows)}", (sheet.name, row, p_col)))
        row += 1
    if not rows:
        return
    for r, y, p in zip(rows, ys, ps):
        if (r, not_y_col) in sheet.formulas:
            result.expect(r, not_y_col, 1 - y)
        if (r, not_p_col) in sheet.formulas:
            result.expect(r, not_p_col, 1 - p)
    for col, form, log in loss_columns(sheet, header_row, y_col + 4):
        losses = (ce.binary_if_form if form == "if" else ce.binary_two_terms)(ys, ps, log)
        for r, loss in zip(rows, losses):
            result.expect(r, col, loss)
        for below in range(rows[-1] + 1, rows[-1] + 4):
            if (below, col) not in sheet.formulas:
                continue
            label = normal(sheet.constants.get((below, 1)))
            result.expect(below, col, ce.mean(losses) if label.startswith("mean") else ce.total(losses))


def check_curve(sheet, match, context, result) -> None:
    header_row, p_col = match
    row = header_row + 1
    while isinstance(p := sheet.constants.get((row, p_col)), float):  # the table's p are inputs
        if (row, p_col + 1) in sheet.formulas:
            result.expect(row, p_col + 1, -ce.LOGS["log10"](p))
        if (row, p_col + 2) in sheet.formulas:
            result.expect(row, p_col + 2, -ce.LOGS["ln"](p))
        row += 1
