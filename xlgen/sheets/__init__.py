"""Builders: each layout lays out cells and formulas for one kind of sheet.

They describe formulas only; numbers come from the engine, truth from xlgen.reference.
"""

from __future__ import annotations

from xlgen.sheets import basic, data
from xlgen.sheets.plan import WorkbookPlan

# layout name -> module with OPTIONS, OPTION_CHECKS, rows_needed(template, spec), build(...)
LAYOUTS = {"basic": basic}


def plan_workbook(template) -> WorkbookPlan:
    workbook = WorkbookPlan(template.title, template.description)
    refs = data.build(workbook, template.data)
    for spec in template.sheets:
        LAYOUTS[spec.layout].build(workbook, template, spec, refs)
    return workbook
