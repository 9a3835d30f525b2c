"""Builders: each layout lays out cells and formulas for one kind of sheet.

They describe formulas only; numbers come from the engine, truth from xlgen.reference.
"""

from __future__ import annotations

from xlgen.sheets import adam, adam_ann, average_grad, basic, data, momentum, rmsprop, smoothing
from xlgen.sheets import compare, derivatives, init_sweep, lr_sweep, model
from xlgen.sheets import collab, titanic, titanic_mmult, titanic_net
from xlgen.sheets.plan import WorkbookPlan

# layout name -> module with OPTIONS, OPTION_CHECKS, rows_needed(template, spec), build(...)
LAYOUTS = {"basic": basic, "model": model, "compare": compare, "lr_sweep": lr_sweep,
           "init_sweep": init_sweep, "derivatives": derivatives}
LAYOUTS.update({"momentum": momentum, "rmsprop": rmsprop, "adam": adam, "adam_ann": adam_ann,
                "average_grad_tests": average_grad, "smoothing": smoothing})
LAYOUTS.update({"titanic": titanic, "titanic_net": titanic_net, "titanic_mmult": titanic_mmult,
                "collab_filter": collab})


def plan_workbook(template) -> WorkbookPlan:
    workbook = WorkbookPlan(template.title, template.description)
    refs = data.build(workbook, template.data) if template.data is not None else None
    for spec in template.sheets:
        LAYOUTS[spec.layout].build(workbook, template, spec, refs)
    return workbook
