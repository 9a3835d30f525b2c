"""Builders: each layout lays out cells and formulas for one kind of sheet.

They describe formulas only; numbers come from the engine, truth from xlgen.reference.
"""

from __future__ import annotations

from xlgen.sheets import about, adam, adam_ann, average_grad, basic, data, momentum, rmsprop, smoothing
from xlgen.sheets import compare, derivatives, init_sweep, lr_sweep, model
from xlgen.sheets import convolution, cross_entropy, softmax
from xlgen.sheets import collab, titanic, titanic_mmult, titanic_net
from xlgen.sheets.plan import WorkbookPlan

# layout name -> module with OPTIONS, OPTION_CHECKS, rows_needed(template, spec), build(...)
LAYOUTS = {"basic": basic, "model": model, "compare": compare, "lr_sweep": lr_sweep,
           "init_sweep": init_sweep, "derivatives": derivatives}
LAYOUTS.update({"momentum": momentum, "rmsprop": rmsprop, "adam": adam, "adam_ann": adam_ann,
                "average_grad_tests": average_grad, "smoothing": smoothing})
LAYOUTS.update({"softmax": softmax, "cross_entropy": cross_entropy, "convolution": convolution})
LAYOUTS.update({"titanic": titanic, "titanic_net": titanic_net, "titanic_mmult": titanic_mmult,
                "collab_filter": collab})


def plan_workbook(template, progress=None) -> WorkbookPlan:
    """progress(done, total, "planning") after each sheet, if given."""
    count = len(template.sheets) + 2
    workbook = WorkbookPlan(template.title, template.description)
    refs = data.build(workbook, template.data) if template.data is not None else None
    for spec in template.sheets:
        if progress is not None:
            progress(len(workbook.sheets), count, "planning")
        LAYOUTS[spec.layout].build(workbook, template, spec, refs)
    about.build(workbook, template, LAYOUTS)   # first in the workbook, made last: it links to the others
    if progress is not None:
        progress(count, count, "planning")
    return workbook
