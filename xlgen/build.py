"""Template -> plan -> engine -> file: the build pipeline.

The cached values written beside each formula are what the engine computes from the
very formula text being written, so a built file and a recomputation agree by
construction, and verify then checks both against the reference.
"""

from __future__ import annotations

from pathlib import Path

from xlgen.engine import calculate
from xlgen.errors import XlgenError
from xlgen.gcpause import paused_gc
from xlgen.lint import lint_book
from xlgen.progress import phase
from xlgen.sheets import plan_workbook
from xlgen.templates import load_template
from xlgen.writer import write_workbook

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "workbooks"


def build(template_name: str, output, overrides=(), force: bool = False, progress=None) -> Path:
    with paused_gc():
        return _build(template_name, output, overrides, force, progress)


def _build(template_name: str, output, overrides, force: bool, progress) -> Path:
    phase(progress, "planning")
    template = load_template(template_name, overrides)
    plan = plan_workbook(template, progress)
    book = plan.to_book(progress)
    phase(progress, "linting")
    problems = lint_book(book)
    if problems:  # a builder bug, caught before a file Excel would misread exists
        raise XlgenError(f"formula lint: {problems[0].cell}: {problems[0].message} "
                         f"({len(problems)} problems in all)")
    calculation = calculate(book, progress=progress)
    if progress is not None:   # the sheets are written as XML one by one, then compressed
        progress(0, len(plan.sheets), "writing")
    write_workbook(plan, book, calculation.values, Path(output), force=force, progress=progress)
    return Path(output)
