"""fastai's average_grad and average_sqr_grad as named LAMBDA functions, and a sheet of
fastai's own tests for them.

The LAMBDAs are workbook-level defined names, stored the way Excel 365 needs them
(`_xlfn.LAMBDA`, `_xlpm.` parameters) with a Name Manager comment each:

    AVERAGE_GRAD(grad, mom, dampening, grad_avg)        grad_avg*mom + damp*grad
    AVERAGE_SQR_GRAD(grad, sqr_mom, dampening, sqr_avg) sqr_avg*sqr_mom + damp*grad^2
    with damp = 1-mom (1-sqr_mom) when dampening is TRUE, else 1.

Excel 2019 and LibreOffice have no LAMBDA, so every layout that calls them can be built
with `use_lambda = false` instead: the same cells with the body written out (the
"plain-formula twin").

The test sheet (layout "average_grad_tests") reproduces fastai's tests of these
functions (nbs/12_optimizer.ipynb): first and second call, with and without dampening,
average_sqr_grad likewise, sgd_step, and Adam's first two steps. Each row holds the
test's inputs, the call, fastai's expected value as a formula, fastai's tolerance and a
PASS/FAIL formula.
"""

from __future__ import annotations

from xlgen.formula import Expr, Name, Number, Param, Ref, call, lambda_
from xlgen.options import boolean
from xlgen.sheets.plan import WorkbookPlan

AVERAGE_GRAD = Name("AVERAGE_GRAD")
AVERAGE_SQR_GRAD = Name("AVERAGE_SQR_GRAD")

COMMENTS = {
    "AVERAGE_GRAD": (
        "fastai's average_grad: grad_avg*mom + damp*grad, damp = 1-mom if dampening else 1. "
        "grad: this step's gradient; mom: momentum (0.9); dampening: TRUE for an exponential "
        "moving average; grad_avg: the previous average (0 at first)."),
    "AVERAGE_SQR_GRAD": (
        "fastai's average_sqr_grad: sqr_avg*sqr_mom + damp*grad^2, damp = 1-sqr_mom if dampening "
        "else 1. grad: this step's gradient; sqr_mom: decay (0.99); dampening: TRUE (fastai's "
        "default); sqr_avg: the previous average (0 at first)."),
}
assert all(len(text) <= 255 for text in COMMENTS.values()), "Excel's Name Manager keeps 255 characters"


def damping(mom, dampening) -> Expr:
    """1-mom with dampening, else 1; written out when the flag is a fixed TRUE/FALSE."""
    if dampening is True:
        return 1 - mom
    if dampening is False:
        return Number(1)
    return call("IF", dampening, 1 - mom, 1)


def average_grad_body(grad, mom, dampening, grad_avg) -> Expr:
    return grad_avg * mom + damping(mom, dampening) * grad


def average_sqr_grad_body(grad, sqr_mom, dampening, sqr_avg) -> Expr:
    return sqr_avg * sqr_mom + damping(sqr_mom, dampening) * grad ** 2


def define(workbook: WorkbookPlan) -> None:
    """Add both LAMBDAs to the workbook (once)."""
    grad, mom, sqr_mom = Param("grad"), Param("mom"), Param("sqr_mom")
    dampening, grad_avg, sqr_avg = Param("dampening"), Param("grad_avg"), Param("sqr_avg")
    workbook.names.setdefault("AVERAGE_GRAD", (
        lambda_([grad, mom, dampening, grad_avg], average_grad_body(grad, mom, dampening, grad_avg)),
        COMMENTS["AVERAGE_GRAD"]))
    workbook.names.setdefault("AVERAGE_SQR_GRAD", (
        lambda_([grad, sqr_mom, dampening, sqr_avg], average_sqr_grad_body(grad, sqr_mom, dampening, sqr_avg)),
        COMMENTS["AVERAGE_SQR_GRAD"]))


def average_grad(workbook: WorkbookPlan, use_lambda: bool, grad, mom, dampening, grad_avg) -> Expr:
    """A call of AVERAGE_GRAD, or its plain-formula twin."""
    if use_lambda:
        define(workbook)
        return AVERAGE_GRAD(grad, mom, dampening, grad_avg)
    return average_grad_body(grad, mom, dampening, grad_avg)


def average_sqr_grad(workbook: WorkbookPlan, use_lambda: bool, grad, sqr_mom, dampening, sqr_avg) -> Expr:
    if use_lambda:
        define(workbook)
        return AVERAGE_SQR_GRAD(grad, sqr_mom, dampening, sqr_avg)
    return average_sqr_grad_body(grad, sqr_mom, dampening, sqr_avg)


def plain_twin(template, spec):
    """The sheet of the same layout built with use_lambda = false, if the template has one."""
    for other in template.sheets:
        if other.layout == spec.layout and other is not spec and not other.options.get("use_lambda"):
            return other
    return None


def banner(sheet, template, spec, at: tuple, link_at: tuple) -> None:
    """A visible line at the top of a sheet that calls the LAMBDAs, saying which Excel it
    needs, and below or beside it a link to its plain-formula twin (LibreOffice shows
    Err:509 in LAMBDA cells)."""
    sheet.put(*at, "Needs Excel 365 or Excel 2021+: this sheet calls LAMBDA functions.", "banner")
    twin = plain_twin(template, spec)
    if twin is not None:
        sheet.put(*link_at, f"Excel 2019, LibreOffice: sheet {twin.name}", "link")
        sheet.links[link_at] = twin.name
    else:
        sheet.put(*link_at, "Excel 2019 or LibreOffice: build it with use_lambda = false", "label")


# --- the test sheet ---------------------------------------------------------------------

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = "fastai's tests of average_grad, average_sqr_grad, sgd_step and Adam as PASS/FAIL cells."

OPTIONS = {"use_lambda": True}


OPTION_CHECKS = {"use_lambda": boolean}

AVERAGE_HEADERS = ("fastai test", "grad", "mom", "dampening", "grad_avg", "new grad_avg",
                   "expected", "tolerance", "result")
SQR_HEADERS = ("fastai test", "grad", "sqr_mom", "dampening", "sqr_avg", "new sqr_avg",
               "expected", "tolerance", "result")
SGD_HEADERS = ("fastai test", "p", "grad", "lr", "new p", "expected", "tolerance", "result")
ADAM_HEADERS = ("fastai test", "p", "grad", "lr", "mom", "sqr_mom", "eps", "step", "grad_avg",
                "sqr_avg", "new p", "expected", "tolerance", "result")

# fastai's tolerances: test_eq compares float32 tensors for equality; in double precision
# 1-0.9 is not exactly 0.1, so "equal" here allows 1e-12. test_close's default eps is 1e-5.
TEST_EQ, TEST_CLOSE = 1e-12, 1e-5
GRADS = (4, 5, 6)                                     # tst_param([1,2,3], [4,5,6])
ADAM_P, ADAM_GRADS = (1, 2, 3), (0.1, 0.2, 0.3)       # tst_param([1,2,3], [0.1,0.2,0.3])


def rows_needed(template, spec) -> int:
    return 60


def _verdict(result: Ref, expected: Ref, tolerance: Ref) -> Expr:
    return call("IF", call("ABS", result - expected).le(tolerance), "PASS", "FAIL")


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    use_lambda = spec.options["use_lambda"]
    sheet = workbook.add_sheet(spec.name)
    how = ("the named LAMBDAs AVERAGE_GRAD and AVERAGE_SQR_GRAD (Formulas > Name Manager)" if use_lambda else
           "plain formulas, the LAMBDAs' bodies written out (for Excel 2019 and LibreOffice)")
    note_at = (1, 1)
    if use_lambda:
        banner(sheet, template, spec, (1, 1), (2, 1))
        note_at = (1, 6)
    sheet.put(*note_at, f"fastai's tests of its optimiser pieces (nbs/12_optimizer.ipynb), computed with {how}. "
                           "Each row: the test's inputs, the call, fastai's expected value, fastai's tolerance "
                           "(test_eq / test_close) and PASS or FAIL.", "note")
    row = 3

    def block(title: str, headers: tuple) -> None:
        nonlocal row
        sheet.put(row, 1, title, "label")
        for col, header in enumerate(headers, start=1):
            sheet.put(row + 1, col, header, "header")
        row += 2

    # average_grad: grad_avg*mom + damp*grad
    block("average_grad(p, mom, dampening=False, grad_avg=None)", AVERAGE_HEADERS)
    for name, calls, damp, close in (
            ("first call", 1, False, False), ("second call", 2, False, False),
            ("first call, dampening", 1, True, False), ("second call, dampening", 2, True, True)):
        for grad in GRADS:
            r = row
            g = Ref(r, 2)
            sheet.put(r, 1, name)
            sheet.put(r, 2, grad, "number")
            sheet.put(r, 3, 0.9, "number")
            sheet.put(r, 4, damp)
            sheet.put(r, 5, 0 if calls == 1 else Ref(r - len(GRADS), 6), "number")
            sheet.put(r, 6, average_grad(workbook, use_lambda, g, Ref(r, 3), Ref(r, 4), Ref(r, 5)), "number")
            expected = {"first call": g, "second call": g * 1.9, "first call, dampening": 0.1 * g,
                        "second call, dampening": (Number(0.1) * 0.9 + 0.1) * g}[name]
            sheet.put(r, 7, expected, "number")
            sheet.put(r, 8, TEST_CLOSE if close else TEST_EQ)
            sheet.put(r, 9, _verdict(Ref(r, 6), Ref(r, 7), Ref(r, 8)), "pass")
            row += 1
    row += 1

    # average_sqr_grad: sqr_avg*sqr_mom + damp*grad^2
    block("average_sqr_grad(p, sqr_mom, dampening=True, sqr_avg=None)", SQR_HEADERS)
    for name, calls, damp, close in (
            ("first call", 1, False, False), ("second call", 2, False, False),
            ("first call, dampening", 1, True, True), ("second call, dampening", 2, True, True)):
        for grad in GRADS:
            r = row
            g2 = Ref(r, 2) ** 2
            sheet.put(r, 1, name)
            sheet.put(r, 2, grad, "number")
            sheet.put(r, 3, 0.99, "number")
            sheet.put(r, 4, damp)
            sheet.put(r, 5, 0 if calls == 1 else Ref(r - len(GRADS), 6), "number")
            sheet.put(r, 6, average_sqr_grad(workbook, use_lambda, Ref(r, 2), Ref(r, 3), Ref(r, 4), Ref(r, 5)), "number")
            expected = {("first call", False): g2, ("second call", False): g2 * 1.99,
                        ("first call, dampening", True): 0.01 * g2,
                        ("second call, dampening", True): (Number(0.01) * 0.99 + 0.01) * g2}[(name, damp)]
            sheet.put(r, 7, expected, "number")
            sheet.put(r, 8, TEST_CLOSE if close else TEST_EQ)
            sheet.put(r, 9, _verdict(Ref(r, 6), Ref(r, 7), Ref(r, 8)), "pass")
            row += 1
    row += 1

    # sgd_step: p - lr*grad
    block("sgd_step(p, lr)", SGD_HEADERS)
    r = row
    sheet.put(r, 1, "sgd_step")
    sheet.put(r, 2, 1, "number")
    sheet.put(r, 3, 0.1, "number")
    sheet.put(r, 4, 1, "number")
    sheet.put(r, 5, Ref(r, 2) - Ref(r, 4) * Ref(r, 3), "number")
    sheet.put(r, 6, 0.9, "number")
    sheet.put(r, 7, TEST_EQ)
    sheet.put(r, 8, _verdict(Ref(r, 5), Ref(r, 6), Ref(r, 7)), "pass")
    row += 2

    # Adam: damped averages, step count, bias-corrected step (wd=0)
    block("Adam(params, lr=0.1, wd=0): opt.step() twice", ADAM_HEADERS)
    fastai_step = Number(0.1) * 0.1 / (call("SQRT", Number(0.1) ** 2) + 1e-8)
    firsts = []
    for name, steps, tolerance in (("first step", 1, TEST_CLOSE), ("second step", 2, 1e-3)):
        for index, (p, grad) in enumerate(zip(ADAM_P, ADAM_GRADS)):
            r = row
            before = None if steps == 1 else r - len(ADAM_P)
            sheet.put(r, 1, name)
            sheet.put(r, 2, p if before is None else Ref(before, 11), "number")
            sheet.put(r, 3, grad, "number")
            sheet.put(r, 4, 0.1, "number")
            sheet.put(r, 5, 0.9, "number")
            sheet.put(r, 6, 0.99, "number")
            sheet.put(r, 7, 1e-5, "number")
            sheet.put(r, 8, 1 if before is None else Ref(before, 8) + 1, "count")
            g, lr, mom, sqr_mom, eps, step = (Ref(r, c) for c in range(3, 9))
            sheet.put(r, 9, average_grad(workbook, use_lambda, g, mom, True, 0 if before is None else Ref(before, 9)), "number")
            sheet.put(r, 10, average_sqr_grad(workbook, use_lambda, g, sqr_mom, True, 0 if before is None else Ref(before, 10)), "number")
            debias1 = (1 - mom) * (1 - mom ** step) / (1 - mom)
            debias2 = (1 - sqr_mom) * (1 - sqr_mom ** step) / (1 - sqr_mom)
            sheet.put(r, 11, Ref(r, 2) - lr / debias1 * (Ref(r, 9) / (call("SQRT", Ref(r, 10) / debias2) + eps)), "number")
            if steps == 1:
                firsts.append(r)
                sheet.put(r, 12, Ref(r, 2) - fastai_step, "number")
            else:
                sheet.put(r, 12, Ref(firsts[index], 2) - steps * fastai_step, "number")
            sheet.put(r, 13, tolerance)
            sheet.put(r, 14, _verdict(Ref(r, 11), Ref(r, 12), Ref(r, 13)), "pass")
            row += 1
    sheet.widths.update({1: 24, **{col: 12 for col in range(2, 15)}})
