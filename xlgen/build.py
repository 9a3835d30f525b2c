"""Template -> plan -> engine -> file: the build pipeline.

The cached values written beside each formula are what the engine computes from the
very formula text being written, so a built file and a recomputation agree by
construction, and verify then checks both against the reference.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
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


class ExampleBuilds:
    """Build each template into workbooks/ and verify it. Iterating gives (ok, summary
    line) in the order of `names`, whatever order they finish in; `progress`, if set,
    hears how many have finished, as they finish.

    With two or more cores they are built and verified in worker processes, started
    here (before any thread of the caller's, such as a progress line's, exists), the
    largest first by the size of the last build, so the longest does not start last. A
    failure is raised when its turn in the order comes, after the results before it;
    templates not yet started are not started, and those under way finish whole (each
    file is written in one rename)."""

    def __init__(self, names: list):
        self.names = list(names)
        self.progress = None
        self.executor = None
        workers = min(len(self.names), _cores())
        if workers < 2:
            return
        import xlgen.verify.report  # noqa: F401  (imported once here, not in each forked worker)
        context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        self.executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)
        try:
            largest_first = sorted(self.names, key=lambda name: -_last_size(EXAMPLES_DIR / f"{name}.xlsx"))
            self.futures = {name: self.executor.submit(build_example, name) for name in largest_first}
        except BaseException:
            self.executor.shutdown(wait=True, cancel_futures=True)
            raise

    def __iter__(self):
        if self.executor is None:
            for done, name in enumerate(self.names):
                self._finished(done)
                yield build_example(name)
            return
        try:
            pending = set(self.futures.values())
            for name in self.names:
                future = self.futures[name]
                while not future.done():
                    self._finished(len(self.names) - len(pending))
                    _done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                yield future.result()
        finally:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def _finished(self, count: int) -> None:
        if self.progress is not None:
            self.progress(count, len(self.names), "building")


def build_example(name: str) -> tuple[bool, str]:
    """Build one example into workbooks/ and verify the file written."""
    from xlgen.verify import verify_file
    from xlgen.verify.report import summary_line
    path = EXAMPLES_DIR / f"{name}.xlsx"
    build(name, path, force=True)
    report = verify_file(path)
    return report.ok, summary_line(report)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:     # not on Linux
        return os.cpu_count() or 1


def _last_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
