"""The course's softmax sheet (entropy_example.xlsx): a network's outputs for five
classes, exp of each, and each exp over their sum.

Laid out as the course lays it out (output, exp, softmax, actuals, index from B1), so
the same checker reads both; the outputs and the one-hot actuals are named inputs.
"""

from __future__ import annotations

from xlgen.errors import TemplateError
from xlgen.formula import Range, Ref, call
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.options import number_list

# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    "A network's outputs for five classes, through exp to softmax: the probabilities "
    'sum to 1 and the largest output wins.')

HEADERS = ("output", "exp", "softmax", "actuals", "index")
HEADER_ROW = 1
CLASS, OUTPUT, EXP, SOFTMAX, ACTUAL, INDEX = range(1, 7)
USES_DATA = False


def text_list(key, value):
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise TemplateError(f"{key} must be a non-empty list of names")
    if len(set(value)) != len(value):
        raise TemplateError(f"{key} must not repeat a name")
    return value


def known_class(key, value):
    if not isinstance(value, str):
        raise TemplateError(f"{key} must be the name of one of the classes, got {value!r}")
    return value


OPTIONS = {"classes": ["cat", "dog", "plane", "fish", "building"],
           "outputs": [-4.89, 2.60, 0.59, -2.07, -4.57],
           "actual": "dog"}
OPTION_CHECKS = {"classes": text_list, "outputs": number_list, "actual": known_class}


def rows_needed(template, spec) -> int:
    options = spec.options
    if len(options["outputs"]) != len(options["classes"]):
        raise TemplateError(f"sheets.{spec.name}: {len(options['classes'])} classes but "
                            f"{len(options['outputs'])} outputs")
    if options["actual"] not in options["classes"]:
        raise TemplateError(f"sheets.{spec.name}.actual must be one of {', '.join(options['classes'])}; "
                            f"got {options['actual']!r}")
    return HEADER_ROW + len(options["classes"]) + 1


def total_row(spec) -> int:
    return HEADER_ROW + len(spec.options["classes"]) + 1


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    options = spec.options
    sheet = workbook.add_sheet(spec.name)
    for col, header in enumerate(HEADERS, start=OUTPUT):
        sheet.put(HEADER_ROW, col, header, "header")
    first, last = HEADER_ROW + 1, HEADER_ROW + len(options["classes"])
    total = total_row(spec)
    for index, (name, output) in enumerate(zip(options["classes"], options["outputs"])):
        r = first + index
        sheet.put(r, CLASS, name, "label")
        sheet.put(r, OUTPUT, output, "input")
        sheet.put(r, EXP, call("EXP", Ref(r, OUTPUT)), "number")
        sheet.put(r, SOFTMAX, Ref(r, EXP) / Ref(total, EXP, fixed_row=True, fixed_col=True), "number")
        sheet.put(r, ACTUAL, 1 if name == options["actual"] else 0, "input")
        sheet.put(r, INDEX, index, "count")
    sheet.put(total, CLASS, "sum", "label")
    sheet.put(total, EXP, call("SUM", Range(Ref(first, EXP), Ref(last, EXP))), "number")
    sheet.put(total, SOFTMAX, call("SUM", Range(Ref(first, SOFTMAX), Ref(last, SOFTMAX))), "number")
    sheet.names["outputs"] = Range(Ref(first, OUTPUT, spec.name, True, True), Ref(last, OUTPUT, None, True, True))
    sheet.names["actuals"] = Range(Ref(first, ACTUAL, spec.name, True, True), Ref(last, ACTUAL, None, True, True))
    sheet.put(1, 8, "The yellow cells are inputs: a network's outputs (activations) for each class, and the "
                    "actual class as a one-hot column.", "note")
    sheet.put(2, 8, "softmax = EXP(output) / the sum of every EXP: each is between 0 and 1 and they add up to 1 "
                    "(D7). exp makes the largest output stand out: raise dog's output by 1 and its share grows "
                    "about 2.7 times relative to each other class.", "note")
    sheet.put(3, 8, "The entropy sheet turns these probabilities into the loss.", "note")
    sheet.comments[(first, OUTPUT)] = ("The network's raw outputs (activations) for each class. "
                                       "Try changing them; softmax follows.")
    sheet.charts.append(Chart(
        "line", "softmax: the share of each class",
        [Series("softmax", Range(Ref(first, SOFTMAX, spec.name, True, True), Ref(last, SOFTMAX, None, True, True)),
                Range(Ref(first, CLASS, spec.name, True, True), Ref(last, CLASS, None, True, True)))],
        anchor=(total + 2, 2), x_title="class", y_title="probability", size=(480, 260)))
    sheet.widths.update({CLASS: 10, OUTPUT: 9, EXP: 10, SOFTMAX: 10, ACTUAL: 8, INDEX: 6})
