"""Template -> plan -> engine -> file: the build pipeline.

The cached values written beside each formula are what the engine computes from the
very formula text being written, so a built file and a recomputation agree by
construction, and verify then checks both against the reference.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import re
from itertools import chain
from pathlib import Path

import numpy as np

from xlgen.engine.book import Book, ExcelError, Sheet
from xlgen.engine.evaluate import Calculation, calculate
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
        _build(template_name, output, overrides, force, progress)
    return Path(output)


def _build(template_name: str, output, overrides, force: bool, progress, keep: list | None = None):
    """Write the workbook; returns the Book the engine computed and its Calculation.
    `keep`: a list the template and plan are added to, so they outlive the call."""
    phase(progress, "planning")
    template = load_template(template_name, overrides)
    plan = plan_workbook(template, progress)
    if keep is not None:
        keep += (template, plan)
    book = plan.to_book(progress)
    phase(progress, "linting")
    problems = lint_book(book)
    if problems:  # a builder bug, caught before a file Excel would misread exists
        raise XlgenError(f"formula lint: {problems[0].cell}: {problems[0].message} "
                         f"({len(problems)} problems in all)")
    calculation = calculate(book, progress=progress)
    coded = calculation.cell_codes()    # taken before `values` hands out the dict
    if progress is not None:   # the sheets are written as XML one by one, then compressed
        progress(0, len(plan.sheets), "writing")
    write_workbook(plan, book, calculation.values, Path(output), force=force, progress=progress)
    if coded is not None:   # the writer only read the dict: the engine's codes still say the same
        calculation = Calculation(book, None, calculation.order, calculation.volatile, calculation.saved,
                                  calculation.constant, coded=coded)
    return book, calculation


class ExampleBuilds:
    """Build each template into workbooks/ and verify it. Iterating gives (ok, summary
    line) in the order of `names`, whatever order they finish in; `progress`, if set,
    hears how many have finished, as they finish.

    With two or more cores they are built and verified in worker processes, started
    here (before any thread of the caller's, such as a progress line's, exists), one a
    core, each taking the largest template left by the size of its last build: the
    largest (titanic, a third of all the work) starts first and runs on a core of its
    own while the other core works through the next ones, and the small ones fill in at
    the end. A worker more than the cores would share them by time-slicing instead, so
    the largest, slowed to two thirds of a core, would finish last and alone. A failure
    is raised when its turn in the order comes, after the results before it; templates
    not yet started are not started, and those under way finish whole (each file is
    written in one rename)."""

    def __init__(self, names: list):
        self.names = list(names)
        self.progress = None
        self.executor = None
        cores = _cores()
        workers = min(len(self.names), cores) if cores > 1 else 1
        if workers < 2:
            return
        import concurrent.futures
        import multiprocessing

        import xlgen.verify.report  # noqa: F401  (imported once here, not in each forked worker)
        context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        self.executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                               initializer=_worker_started)
        # what exists now (the modules imported) is left out of the workers' cyclic
        # collections, which would otherwise walk it, and copy its pages, in each worker
        gc.freeze()
        try:
            largest_first = sorted(self.names, key=lambda name: -_last_size(EXAMPLES_DIR / f"{name}.xlsx"))
            self.futures = {name: self.executor.submit(build_example, name) for name in largest_first}
        except BaseException:
            self.executor.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            gc.unfreeze()    # (the workers are forked by the first submit)

    def __iter__(self):
        if self.executor is None:
            for done, name in enumerate(self.names):
                self._finished(done)
                yield build_example(name)
            return
        import concurrent.futures
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


# in a worker of ExampleBuilds: what each build and verify made, left to the worker's end
_KEPT: list | None = None


def _worker_started() -> None:
    """In a worker of ExampleBuilds: its siblings take every core, so the reader checks
    every sheet here instead of forking a child to check a large one beside (a fork that
    would wait for a core, and pages both processes then copy): no part is that large.

    And what each build makes is kept (_KEPT), not freed: a forked worker ends with
    os._exit once the templates are built (multiprocessing's fork start), so those
    objects are never freed one by one (titanic's plan, books and calculations: about
    0.1 s of the worker's 1.9 s); a spawned worker frees them as its interpreter ends.
    The cost: each worker holds them all to its end (peak memory 93 -> 122 MiB)."""
    from xlgen.engine import reader
    reader.VALIDATE_BESIDE_FROM = math.inf
    global _KEPT
    _KEPT = []


def build_example(name: str) -> tuple[bool, str]:
    """Build one example into workbooks/ and verify the file written.

    The verify reads the file back as always; where what it read is exactly what the
    build computed (BuiltCalculation), the build's calculation stands for the verify's.
    A verdict other than OK is reached again with the file recomputed, so a failure is
    reported exactly as `xlgen verify` reports it."""
    with paused_gc():   # one pause for both; what they made is gone (but cycles) before it
        return _build_and_verify(name, _KEPT)    # ends, or, in a worker, kept and frozen


def _build_and_verify(name: str, keep: list | None = None) -> tuple[bool, str]:
    """`keep`: a list what is made is added to, to outlive the call; then all the objects
    the garbage collector tracks are frozen (gc.freeze) at the end, so no collection in
    this process walks them again (nor the cycles made, left to the process's end)."""
    from xlgen.verify import verify_file
    from xlgen.verify.report import summary_line
    path = EXAMPLES_DIR / f"{name}.xlsx"
    built = BuiltCalculation(*_build(name, path, (), True, None, keep), lint_clean=True)   # _build lints
    if keep is not None:
        keep += (built.book, built.calculation)
    report = verify_file(path, calculate_book=built, keep=keep)
    if built.reused and not report.ok:
        report = verify_file(path, keep=keep)
    if keep is not None:
        keep.append(report)
        gc.freeze()    # (collections are still paused here)
    return report.ok, summary_line(report)


class BuiltCalculation:
    """The engine's calculation of the book a build wrote, offered to the verify of the
    file: called with the Book read back from that file, it returns that calculation only
    if the engine would compute exactly the same from what was read, and otherwise
    calculates the read Book afresh.

    Exactly the same: the engine's result is a function of the Book's formulas (their
    text, cell by cell), constants (type and value, to the bit: -0.0 is not 0.0, and
    1.0, 1 and TRUE differ), sheets in order, defined names, tables and array ranges; the
    calculation drew no random number and kept no saved value (no volatile cell: the
    only use of a file's cached values). Not inputs: names' comments, the reader's notes
    and, among names, the print area and titles look.py sets, which no formula refers to
    (checked). A constant that did not survive the file (a writer rounding a builder's
    0.17956720059605877 to 16 digits, as XlsxWriter would) fails the test and the file
    is recomputed. So the values are the ones the verify would compute; the
    file is still read whole, and every cached value read back is still compared with
    them (stale saves).

    `lint_clean`: the built book passed `lint_book` with every sheet deterministic (as
    `_build` demands). Then, on reuse, `read_lints_clean` tells the verify that the read
    Book's lint finds nothing either, for any set of deterministic sheets: the lint reads
    only sheet names, formula text and defined names; the read Book's are the built
    Book's (just proven), plus print settings, which are linted here. Each problem the
    lint reports with fewer deterministic sheets it reports with all, so none."""

    def __init__(self, book: Book, calculation: Calculation, lint_clean: bool = False):
        self.book, self.calculation, self.lint_clean = book, calculation, lint_clean
        self.reused = False
        self.read_lints_clean = False

    def __call__(self, read: Book, progress=None) -> Calculation:
        built, calculation = self.book, self.calculation
        self.book = self.calculation = None   # offered once
        if (calculation is not None and not calculation.volatile and not calculation.saved
                and same_calculation_input(built, read)):
            self.reused = True
            if self.lint_clean:
                added = {key: text for key, text in read.names.items() if key not in built.names}
                self.read_lints_clean = not lint_book(Book(sheets=[Sheet(sheet.name) for sheet in read.sheets],
                                                           names=added))
            # the engine's codes where the build kept them: verify's lookups need no dict
            coded = calculation.cell_codes()
            return Calculation(read, None if coded is not None else calculation.values, calculation.order,
                               [], [], calculation.constant, coded=coded)
        return calculate(read, progress=progress)


# what in a Book is no input of the engine (text for people; cached values, which a
# calculation without volatile cells never reads)
_NOT_INPUT = {"name_comments", "notes", "cached"}
# Excel's print settings, as sheet-scoped defined names: look.py's, written beside the plan's
_PRINT_NAMES = frozenset({"_XLNM.PRINT_AREA", "_XLNM.PRINT_TITLES"})
_PRINT_NAME_USED = re.compile(r"_xlnm\.", re.I)


def same_calculation_input(built: Book, read: Book) -> bool:
    """Whether the engine is given exactly the same by `read` as by `built` (see
    BuiltCalculation); any field of Book or Sheet not named here is compared strictly,
    so a new one makes the answer False until it is equal, never True by oversight."""
    if type(built) is not type(read) or len(built.sheets) != len(read.sheets):
        return False
    for field in dataclasses.fields(built):
        if field.name in _NOT_INPUT or field.name in ("sheets", "names"):
            continue
        if not _same(getattr(built, field.name), getattr(read, field.name)):
            return False
    extra = {key: text for key, text in read.names.items() if key not in built.names}
    if not all(scope is not None and name in _PRINT_NAMES for scope, name in extra):
        return False
    if not _same(built.names, {key: text for key, text in read.names.items() if key not in extra}):
        return False
    for built_sheet, read_sheet in zip(built.sheets, read.sheets):
        if type(built_sheet) is not type(read_sheet):
            return False
        for field in dataclasses.fields(built_sheet):
            if field.name not in _NOT_INPUT and not _same(getattr(built_sheet, field.name),
                                                          getattr(read_sheet, field.name)):
                return False
    if extra:   # no formula or name may read a print setting
        texts = [text for sheet in read.sheets for text in sheet.formulas.values()]
        if _PRINT_NAME_USED.search("\n".join(texts + list(read.names.values()))):
            return False
    return True


def _same(a, b) -> bool:
    """a == b, and of the same types all the way down (1.0, 1 and True are not the same;
    nor are 0.0 and -0.0; a NaN is never the same as another NaN object)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if kind is dict:
        if a != b or not _same_key_types(a, b):
            return False
        # equal, so now the types of the values, key by key (at C speed: sheets of cells)
        types = set(map(type, a.values()))
        if not (len(types) <= 1 and types == set(map(type, b.values()))) and (
                list(map(type, a.values())) != list(map(type, map(b.__getitem__, a)))):
            return False
        if not _SCALARS.issuperset(types):
            return all(_same(value, b[key]) for key, value in a.items())
        if types == {float}:    # equal floats differ at most in a zero's sign: their bits, at once
            mine = np.fromiter(a.values(), np.float64, len(a))
            theirs = np.fromiter(map(b.__getitem__, a), np.float64, len(a))
            return bool(np.array_equal(mine.view(np.int64), theirs.view(np.int64)))
        return float not in types or all(math.copysign(1.0, value) == math.copysign(1.0, b[key])
                                         for key, value in a.items() if value == 0 and type(value) is float)
    if kind in (list, tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    if kind in (set, frozenset):
        return a == b and _same_key_types(dict.fromkeys(a), dict.fromkeys(b))
    if kind in (str, int, bool, type(None)):
        return a == b
    if dataclasses.is_dataclass(a):     # ExcelError, Table
        return all(_same(getattr(a, field.name), getattr(b, field.name)) for field in dataclasses.fields(a))
    return False                         # anything else: not known to be the same


_SCALARS = frozenset({str, float, int, bool, type(None), ExcelError})


def _same_key_types(a: dict, b: dict) -> bool:
    """The equal keys of two dicts are of the same types (cell (1, 2) is not (1.0, 2))."""
    if ({tuple} == set(map(type, a)) == set(map(type, b))
            and {int} == set(map(type, chain.from_iterable(a))) == set(map(type, chain.from_iterable(b)))):
        return True      # cells (row, col) on both sides: the usual case, at C speed
    read_keys = {key: key for key in b}
    return all(_key_type(key) == _key_type(read_keys[key]) for key in a)


def _key_type(key):
    return tuple(map(type, key)) if type(key) is tuple else type(key)


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
