"""The course's entropy sheet: categorical and binary cross-entropy, each computed with
the course's LOG (base 10) beside the natural log PyTorch uses.

The categorical block links to the softmax sheet's probabilities and actuals, so a
changed output there changes the loss here. The binary block keeps the course's two
forms, -y*LOG(p)-(1-y)*LOG(1-p) and -IF(y=1,LOG(p),LOG(1-p)), and adds their natural-log
twins, the batch total and PyTorch's mean. A small table and chart show -log(p) against
p in both bases: the same curve scaled by ln(10) ~ 2.3026.
"""

from __future__ import annotations

from xlgen.errors import TemplateError
from xlgen.formula import Range, Ref, call
from xlgen.sheets import softmax
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.options import number_list, positive_integer

USES_DATA = False
CATEGORICAL_HEADERS = ("softmax", "actuals", "x-entropy", "x-entropy (ln)")
BINARY_HEADERS = ("isCat", "isNotCat", "PredCat", "PredNotCat",
                  "BCE (LOG)", "BCE, IF form (LOG)", "BCE (LN)", "BCE, IF form (LN)")
CURVE_HEADERS = ("p", "-LOG(p)", "-LN(p)")
CLASS, PROB, ACTUAL, TERM_LOG, TERM_LN = range(1, 6)
IS, IS_NOT, PRED, PRED_NOT, BCE_LOG, IF_LOG, BCE_LN, IF_LN = range(2, 10)
CURVE_P = 2


def zero_or_one(key, value):
    values = number_list(key, value)
    if any(v not in (0.0, 1.0) for v in values):
        raise TemplateError(f"{key} must hold only 0 and 1")
    return values


def probabilities(key, value):
    values = number_list(key, value)
    if any(not 0 < v < 1 for v in values):
        raise TemplateError(f"{key} must hold probabilities strictly between 0 and 1")
    return values


def sheet_name(key, value):
    if not isinstance(value, str) or not value:
        raise TemplateError(f"{key} must name a sheet of layout softmax")
    return value


# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    'Cross-entropy of the softmax and of a batch of cat/not-cat predictions, with the '
    "course's LOG (base 10) beside LN, the natural log PyTorch uses.")
# the about sheet's numbers to look for: (row label, column header) of each
ABOUT_NUMBERS = (("loss", "x-entropy"), ("loss", "x-entropy (ln)"), ("total", "BCE (LOG)"),
                 ("total", "BCE (LN)"), ("mean (PyTorch's default)", "BCE (LN)"))

OPTIONS = {"softmax_sheet": "softmax", "is_cat": [1, 1, 0, 0, 1], "pred_cat": [0.5, 0.98, 0.9, 0.5, 0.9],
           "curve_points": 19}
OPTION_CHECKS = {"softmax_sheet": sheet_name, "is_cat": zero_or_one, "pred_cat": probabilities,
                 "curve_points": positive_integer}


def softmax_spec(template, spec):
    for other in template.sheets:
        if other.name == spec.options["softmax_sheet"] and other.layout == "softmax":
            return other
    raise TemplateError(f"sheets.{spec.name}.softmax_sheet: no sheet {spec.options['softmax_sheet']!r} "
                        "of layout softmax in this template")


def positions(template, spec) -> dict:
    classes = len(softmax_spec(template, spec).options["classes"])
    items = len(spec.options["is_cat"])
    binary_header = classes + 6
    curve_header = binary_header + items + 5
    return {"classes": classes, "loss": classes + 2, "ratio": classes + 3, "binary_header": binary_header,
            "items": items, "curve_header": curve_header}


def rows_needed(template, spec) -> int:
    if len(spec.options["is_cat"]) != len(spec.options["pred_cat"]):
        raise TemplateError(f"sheets.{spec.name}: is_cat and pred_cat must be the same length")
    where = positions(template, spec)
    return where["curve_header"] + spec.options["curve_points"]


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    source = softmax_spec(template, spec)
    where = positions(template, spec)
    sheet = workbook.add_sheet(spec.name)
    # categorical cross-entropy over the softmax sheet's classes
    for col, header in enumerate(CATEGORICAL_HEADERS, start=PROB):
        sheet.put(1, col, header, "header")
    first, last = 2, 1 + where["classes"]
    for index, name in enumerate(source.options["classes"]):
        r = first + index
        source_row = softmax.HEADER_ROW + 1 + index
        sheet.put(r, CLASS, name, "label")
        sheet.put(r, PROB, Ref(source_row, softmax.SOFTMAX, source.name), "number")
        sheet.put(r, ACTUAL, Ref(source_row, softmax.ACTUAL, source.name), "count")
        sheet.put(r, TERM_LOG, Ref(r, ACTUAL) * call("LOG", Ref(r, PROB)), "number")
        sheet.put(r, TERM_LN, Ref(r, ACTUAL) * call("LN", Ref(r, PROB)), "number")
    loss, ratio = where["loss"], where["ratio"]
    sheet.put(loss, CLASS, "loss", "label")
    sheet.put(loss, TERM_LOG, -call("SUM", Range(Ref(first, TERM_LOG), Ref(last, TERM_LOG))), "number")
    sheet.put(loss, TERM_LN, -call("SUM", Range(Ref(first, TERM_LN), Ref(last, TERM_LN))), "number")
    sheet.put(ratio, CLASS, "ln loss / LOG loss", "label")
    sheet.put(ratio, TERM_LN, Ref(loss, TERM_LN) / Ref(loss, TERM_LOG), "number")
    note_col = 11
    sheet.put(1, note_col, "Why two numbers? Excel's LOG is base 10 (the course's sheet uses it); PyTorch's "
                           "cross_entropy and binary_cross_entropy use the natural log, LN.", "note")
    sheet.put(2, note_col, "LN(p) = LOG(p) * LN(10), so every natural-log loss is 2.3026 times the base-10 one "
                           "(the ratio row): the same best prediction, a different scale, gradients 2.3 times larger.",
              "note")
    sheet.put(3, note_col, "Only the actual class's term counts: the loss is -log(probability of the right class).",
              "note")
    # binary cross-entropy: the course's two forms, each in both bases
    header = where["binary_header"]
    sheet.put(header - 1, CLASS, "Binary cross-entropy: is it a cat? (yellow cells are inputs)", "note")
    for col, title in enumerate(BINARY_HEADERS, start=IS):
        sheet.put(header, col, title, "header")
    item_first = header + 1
    item_last = header + where["items"]
    for index, (y, p) in enumerate(zip(options["is_cat"], options["pred_cat"])):
        r = item_first + index
        sheet.put(r, IS, int(y), "input")
        sheet.put(r, IS_NOT, 1 - Ref(r, IS), "count")
        sheet.put(r, PRED, p, "input")
        sheet.put(r, PRED_NOT, 1 - Ref(r, PRED), "number")
        for col, log in ((BCE_LOG, "LOG"), (BCE_LN, "LN")):
            sheet.put(r, col, (-Ref(r, IS)) * call(log, Ref(r, PRED)) - Ref(r, IS_NOT) * call(log, Ref(r, PRED_NOT)),
                      "number")
        for col, log in ((IF_LOG, "LOG"), (IF_LN, "LN")):
            sheet.put(r, col, -call("IF", Ref(r, IS).eq(1), call(log, Ref(r, PRED)), call(log, 1 - Ref(r, PRED))),
                      "number")
    total, mean = item_last + 1, item_last + 2
    sheet.put(total, CLASS, "total", "label")
    sheet.put(mean, CLASS, "mean (PyTorch's default)", "label")
    for col in (BCE_LOG, IF_LOG, BCE_LN, IF_LN):
        column = Range(Ref(item_first, col), Ref(item_last, col))
        sheet.put(total, col, call("SUM", column), "number")
        sheet.put(mean, col, call("AVERAGE", column), "number")
    sheet.put(mean + 1, CLASS, "Both forms agree whenever isCat is 0 or 1; a confident wrong prediction (0.9 for a "
                               "non-cat) costs far more than a confident right one earns.", "note")
    # the loss of one positive item as its prediction moves, in both bases
    curve = where["curve_header"]
    for col, title in enumerate(CURVE_HEADERS, start=CURVE_P):
        sheet.put(curve, col, title, "header")
    sheet.put(curve - 1, CLASS, "The loss of a cat predicted with probability p", "note")
    points = options["curve_points"]
    for index in range(points):
        r = curve + 1 + index
        sheet.put(r, CURVE_P, round((index + 1) / (points + 1), 6), "input")
        sheet.put(r, CURVE_P + 1, -call("LOG", Ref(r, CURVE_P)), "number")
        sheet.put(r, CURVE_P + 2, -call("LN", Ref(r, CURVE_P)), "number")
    curve_last = curve + points

    def column(col):
        return Range(Ref(curve + 1, col, spec.name, True, True), Ref(curve_last, col, None, True, True))

    sheet.charts.append(Chart(
        "scatter", "-log(p): base 10 (course) and ln (PyTorch)",
        [Series("-LOG(p), base 10", column(CURVE_P + 1), column(CURVE_P)),
         Series("-LN(p), PyTorch", column(CURVE_P + 2), column(CURVE_P))],
        anchor=(curve, 6), x_title="p, the predicted probability of cat", y_title="loss", size=(560, 320)))
    sheet.widths.update({CLASS: 22, PROB: 10, ACTUAL: 10, TERM_LOG: 11, TERM_LN: 13,
                         BCE_LOG: 12, IF_LOG: 17, BCE_LN: 11, IF_LN: 16})
