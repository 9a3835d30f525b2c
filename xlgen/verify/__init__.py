"""Verify: recompute a workbook's formulas and compare them with the NumPy reference.

Each layout checker recognises its sheets by their headers (so the course's own file
and files users edited are checked too), reads the inputs from the workbook and says
what every formula cell should hold.
"""

from __future__ import annotations

from xlgen.engine import calculate, read_xlsx
from xlgen.engine.book import ExcelError
from xlgen.engine.children import end_child
from xlgen.formula import cell_name
import os
import pickle
import re

from xlgen.errors import XlgenError
from xlgen.gcpause import paused_gc
from xlgen.lint import VOLATILE_FUNCTIONS, LintSurvey, lint_book
from xlgen.progress import phase
from xlgen.verify import adam, adam_ann, average_grad, basic, data, momentum, rmsprop, smoothing
from xlgen.verify import about, comparison, derivatives, model, runs
from xlgen.verify import convolution, cross_entropy, softmax
from xlgen.verify import collab, embeddings, titanic
from xlgen.verify.core import ComputedValues, Report, as_floats, compare, one_verification
from xlgen.verify.report import account, set_aside_volatile, workbook_lambdas

_MISSING = object()   # no computed value


# data first: the sheets that link to the data points need them
CHECKERS = [data, basic]
CHECKERS += [momentum, rmsprop, adam, adam_ann, average_grad, smoothing]
# the forum's two-neuron sheets; model last: the others hold model blocks too
CHECKERS += [derivatives, runs, comparison, model]
CHECKERS += [softmax, cross_entropy, convolution]  # softmax first: cross-entropy links to it
CHECKERS += [titanic, collab, embeddings]   # the course's Titanic and collab_filter sheets, and xlgen's
# the about sheet last: it sums up the others, as their checkers found them
CHECKERS += [about]


class Context:
    """What checkers share: the book, computed values, and the data set once known."""

    def __init__(self, book, values, volatile: set, skip_sheets: dict | None = None):
        self.book = book
        self.values = values
        # the same values, found a column at a time (`values` may be one already)
        self.computed = values if isinstance(values, ComputedValues) else ComputedValues(values)
        self.volatile = volatile
        self.dataset = None
        self.results = {}                     # sheet name -> SheetCheck, as the checkers finish
        self.skip_sheets = skip_sheets or {}  # sheet name -> why this engine leaves it out

    def value(self, sheet: str, row: int, col: int):
        found = self.computed.get((sheet, row, col), _MISSING)
        if found is not _MISSING:
            return found
        try:
            return self.book.sheet(sheet).constants.get((row, col))
        except KeyError:  # a defined name (learning_rate, target_b...) aimed at a sheet the file lacks
            from xlgen.errors import XlgenError
            raise XlgenError(f"{sheet}!{cell_name(row, col)} is named as an input, "
                             f"but the workbook has no sheet {sheet!r}") from None

    def column(self, sheet: str, rows, col: int) -> list:
        """`value` of the cells (row, col) of `rows`, as a list."""
        found, missing = self.computed.column(sheet, rows, col)
        return self._with_constants(found, missing, sheet, rows, col)

    def column_floats(self, sheet: str, rows, col: int) -> tuple[list, tuple]:
        """`column`, and core.as_floats of it (from the computed values read as floats once)."""
        found, missing, floats = self.computed.column_floats(sheet, rows, col)
        if missing:
            self._with_constants(found, missing, sheet, rows, col)
            floats[0][missing], floats[1][missing] = as_floats([found[index] for index in missing])
        return found, floats

    def _with_constants(self, found: list, missing: list, sheet: str, rows, col: int) -> list:
        if not missing:
            return found
        try:
            constants = self.book.sheet(sheet).constants
        except KeyError:   # `value` says why, for the first of them
            constants = None
        for index in missing:   # no computed value: as `value`, the sheet's constant
            found[index] = (self.value(sheet, rows[index], col) if constants is None
                            else constants.get((rows[index], col)))
        return found

    def numbers(self, sheet: str, cells, label: str):
        """Input cells read as a float array (an empty cell is nan); text or an error where a
        data point belongs is refused, naming the cell (a float() traceback before)."""
        import numpy as np
        out = []
        for row, col in cells:
            value = self.value(sheet, row, col)
            try:
                out.append(np.nan if value is None else float(value))
            except (TypeError, ValueError):
                shown = value.code if isinstance(value, ExcelError) else value
                raise XlgenError(f"{sheet}!{cell_name(row, col)} ({label}) should hold a number, "
                                 f"not {shown!r}") from None
        return np.array(out, dtype=np.float64)

    def is_volatile(self, sheet: str, row: int, col: int) -> bool:
        return (sheet, row, col) in self.volatile

    def input(self, result, label: str, cell):
        """The value of an input cell, recorded in the report; refused if not a number."""
        from xlgen.errors import XlgenError
        if cell is None:
            raise XlgenError(f"sheet {result.sheet}: cannot find its {label} input (no name, no label)")
        sheet, row, col = cell
        where = f"{sheet}!{cell_name(row, col)}"
        if not any(found.name.lower() == sheet.lower() for found in self.book.sheets):
            raise XlgenError(f"sheet {result.sheet}: its {label} input is {where}, "
                             f"but the workbook has no sheet {sheet!r} (a defined name points at it)")
        value = self.value(sheet, row, col)
        result.inputs[label] = {"cell": where, "value": value.code if isinstance(value, ExcelError) else value}
        if label == "derivative":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise XlgenError(f"{where} ({label}) should hold a number, not {value!r}")
        return float(value)


def check_book(report: Report, book, values: dict | ComputedValues, order, volatile: list,
               skip_sheets: dict | None = None, saved: list = (), constant: list = (),
               progress=None, lint_clean: bool = False, lint: LintBeside | None = None) -> Report:
    """Run every checker over the book and compare; `skip_sheets` {sheet: reason} are
    recognised but left out (a second engine that cannot compute them).

    `volatile`: cells where a volatile function ran, in calculation order (inputs, never
    checked); `saved`: those of them kept at the file's saved value; `constant`: formula
    cells that read no cell (constant inputs when no checker covers them). `values`: by
    (sheet, row, col), a dict or a ComputedValues; `order`: the formula cells in
    calculation order, any iterable (read only to order mismatches); `lint_clean`: the lint
    of `book` is known to find nothing, whichever sheets are deterministic; `lint`: a
    LintBeside of `book` already under way (else one starts once the checks are done)."""
    with one_verification():   # arrays of formula cells are kept for this one only
        return _check_book(report, book, values, order, volatile, skip_sheets, saved, constant, progress,
                           lint_clean, lint)


def _check_book(report: Report, book, values, order, volatile: list,
                skip_sheets: dict | None, saved, constant, progress, lint_clean: bool = False,
                lint: LintBeside | None = None) -> Report:
    import numpy as np
    volatile_list, volatile = list(volatile), set(volatile)
    context = Context(book, values, volatile, skip_sheets)
    matched = set()
    for checker in CHECKERS:
        for sheet in book.sheets:
            if sheet.name in matched:
                continue
            match = checker.recognise(book, sheet)
            if match is None:
                continue
            with np.errstate(all="ignore"):  # a reference fed a file's huge numbers gets inf and
                result = checker.check(sheet, match, context)  # nan (read as #NUM!): no news
            if result is None:
                continue
            matched.add(sheet.name)
            context.results[sheet.name] = result
            if progress is not None:
                progress(len(matched), len(book.sheets), "checking")
            report.skipped.extend(f"{sheet.name}!{cell_name(*cell)}: {why}" for cell, why in result.skipped.items())
            if skip_sheets and sheet.name in skip_sheets:
                report.skipped.append(f"{sheet.name}: {skip_sheets[sheet.name]}")
            else:
                report.checks.append(result)
    # the lint: sheets a checker verified must be deterministic; the course's data sheet
    # draws x with RANDBETWEEN on purpose, and says so by being checked as volatile input
    deterministic = {check.sheet for check in report.checks if not check.volatile}
    set_aside_volatile(report.checks, volatile)
    started_here = None if lint_clean or lint is not None else LintBeside(book)
    try:
        lint_result = (lambda: []) if lint_clean else (lint or started_here).start(deterministic)
        phase(progress, "comparing")
        second_engine = report.engine != "xlgen"
        compare(report, book, values, order, any_error=second_engine,
                ignore_sheets=set(skip_sheets or ()), volatile=volatile, check_stale=not second_engine,
                fifteen_digits=second_engine, computed=context.computed)
        if second_engine:  # where rows grow chaotically two engines part ways; each is checked on its own
            report.notes.append("saved values are compared with the recomputed ones by xlgen's engine only")
        report.notes.extend(book.notes)
        account(report, book, volatile_list, list(saved), list(constant), skip_sheets or {})
        report.lint = lint_result()
    finally:
        if started_here is not None:
            started_here.close()
    return report


def lint_problems(book, deterministic: set, survey: LintSurvey | None = None) -> list[str]:
    return [f"{problem.cell}: {problem.message}" for problem in lint_book(book, deterministic, survey)]


def lint_beside(book, deterministic: set):
    """Start the lint on the machine's other core; returns a function giving its result."""
    return LintBeside(book).start(deterministic)


class LintBeside:
    """The lint of a large book with its costly part in a forked child on the machine's other core.

    Made as soon as the book is read, the child surveys the book's formulas (each shape
    and what it says: about 0.15 s at 300,000 cells; `lint.LintSurvey`) while this process
    calculates, leaves the survey (small: no list of every cell) in an unnamed in-memory
    file and exits, so it shares the book's memory pages for that time only (each page this
    process writes while a child shares it is copied). Once the checkers say which sheets
    are deterministic, `start` returns a function that finishes the lint here from the
    survey, after the comparison, waiting for the child if it is still at work. The child
    reads the book as it was read (the engine never changes it). Where fork is missing, the
    book is small or the child fails, the whole lint runs here, with the same answers.
    `close` ends the child on any way out.
    """
    SMALL = 20_000   # formula cells: below, the lint takes less time than a fork

    def __init__(self, book):
        self.book = book
        self.child = self.survey_file = None
        if not hasattr(os, "fork") or sum(len(sheet.formulas) for sheet in book.sheets) < self.SMALL:
            return
        try:
            if hasattr(os, "memfd_create"):
                self.survey_file = os.memfd_create("xlgen-lint-survey")
            else:   # (an unnamed temporary file instead)
                import tempfile
                with tempfile.TemporaryFile() as unnamed:
                    self.survey_file = os.dup(unnamed.fileno())
        except OSError:
            return
        self.child = os.fork()
        if self.child == 0:  # the child: survey, leave it in the file, and leave without
            status = 1       # running the parent's exit code
            try:
                with os.fdopen(self.survey_file, "wb") as out:
                    pickle.dump(LintSurvey().prepare(book), out, protocol=pickle.HIGHEST_PROTOCOL)
                status = 0
            finally:
                os._exit(status)

    def start(self, deterministic: set):
        """The lint of the sheets `deterministic`; returns a function giving its problems."""
        deterministic = set(deterministic)
        if self.child is None:
            self.close()
            problems = lint_problems(self.book, deterministic)
            return lambda: problems

        def result() -> list[str]:
            return lint_problems(self.book, deterministic, self._survey())
        return result

    def _survey(self) -> LintSurvey | None:
        """The child's survey (None if it failed), once it has exited."""
        child, self.child = self.child, None
        _, status = os.waitpid(child, 0)
        survey = None
        if status == 0:
            try:
                os.lseek(self.survey_file, 0, os.SEEK_SET)
                with os.fdopen(os.dup(self.survey_file), "rb") as incoming:
                    survey = pickle.load(incoming)
            except (OSError, EOFError, pickle.UnpicklingError):
                survey = None
        self.close()
        return survey if isinstance(survey, LintSurvey) else None

    def close(self) -> None:
        """End the child if it is still there (the verify stopped on the way) and close its file."""
        end_child(self.child, self.survey_file)
        self.child = self.survey_file = None


def verify_file(path, progress=None, engine: str = "xlgen", calculate_book=calculate, keep: list | None = None) -> Report:
    """`calculate_book(book, progress=)`: xlgen's engine on the book read from `path`
    (`build --all` passes one that may hand back its own calculation of that very book,
    and, once called, says by a true `read_lints_clean` that the lint of that book is
    known to find nothing: build.BuiltCalculation).

    `keep`: a list the book and its calculation are added to, so they outlive the call
    (the command line leaves them to the process's end: freeing a 300,000-cell book object
    by object takes about 0.1 s)."""
    with paused_gc():
        return _verify_file(path, progress, engine, calculate_book, keep)


SECOND_ENGINES = ("libreoffice", "ironcalc")


def _verify_file(path, progress, engine: str, calculate_book=calculate, keep: list | None = None) -> Report:
    phase(progress, "reading")
    book = read_xlsx(path)
    if keep is not None:
        keep.append(book)
    if engine in SECOND_ENGINES:
        return verify_with_second_engine(path, book, engine, progress)
    # the lint's child starts now, beside the calculation, unless the calculation may say
    # the lint is known to find nothing (a build's own: build.BuiltCalculation)
    lint = LintBeside(book) if getattr(calculate_book, "read_lints_clean", None) is None else None
    try:
        calculation = calculate_book(book, progress=progress)
        if keep is not None:
            keep.append(calculation)
        report = Report(str(path))
        # the engine's cell codes serve verify's lookups: no (sheet, row, col) tuple per cell is
        # made unless a mismatch is to be placed in calculation order
        return check_book(report, book, ComputedValues.of(calculation), _Order(calculation), calculation.volatile,
                          saved=calculation.saved, constant=calculation.constant, progress=progress,
                          lint_clean=getattr(calculate_book, "read_lints_clean", False), lint=lint)
    finally:
        if lint is not None:
            lint.close()


class _Order:
    """A calculation's order of cells, made the first time it is iterated."""
    __slots__ = ("calculation",)

    def __init__(self, calculation):
        self.calculation = calculation

    def __iter__(self):
        return iter(self.calculation.order)


def lambda_sheets(book) -> dict:
    """Sheets whose formulas call a workbook LAMBDA, which LibreOffice cannot evaluate."""
    lambdas = set(workbook_lambdas(book))
    skipped = {}
    for sheet in book.sheets:
        used = sorted({name for name in lambdas for text in set(sheet.formulas.values())
                       if re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", text, re.I)})
        if used:
            skipped[sheet.name] = f"uses LAMBDA {', '.join(used)}; LibreOffice has no LAMBDA (its plain-formula twin is checked)"
    return skipped


def verify_with_second_engine(path, book, engine: str, progress=None) -> Report:
    """Another engine recomputes, our reference judges: LibreOffice (no LAMBDA: sheets that
    call one are skipped with the reason) or IronCalc (LAMBDA too).

    Volatile cells keep the file's saved values (as with xlgen's engine) only where the
    other engine recomputed the same cell; mismatches are listed in xlgen's dependency
    order, since neither engine tells its calculation order.
    """
    if engine == "libreoffice":
        from xlgen.engine.libreoffice import recalculate_with_libreoffice as recalculate
        skip_sheets = lambda_sheets(book)
    else:
        from xlgen.engine.ironcalc import recalculate_with_ironcalc as recalculate
        skip_sheets = {}
    phase(progress, f"recalculating in {'LibreOffice' if engine == 'libreoffice' else 'IronCalc'}")
    computed = recalculate(path)
    values = {}
    for sheet in book.sheets:
        sheet_values = computed.get(sheet.name, {})
        for cell in sheet.formulas:
            value = sheet_values.get(cell)
            if isinstance(value, str) and value.startswith("#"):
                value = ExcelError(value)
            values[(sheet.name, *cell)] = value
    report = Report(str(path), engine=engine)
    try:  # the other engine does not tell its calculation order; ours is the same dependency
        # order, and where a volatile function really runs (not in a branch not taken) is the same too
        calculation = calculate(book)
        order, volatile, constant = calculation.order, calculation.volatile, calculation.constant
    except XlgenError as error:
        order = [(sheet.name, *cell) for sheet in book.sheets for cell in sorted(sheet.formulas)]
        volatile, constant = volatile_cells(book), []
        report.notes.append(f"mismatches are listed in sheet order (xlgen's engine could not order them: {error})")
    return check_book(report, book, values, order, volatile=volatile, skip_sheets=skip_sheets,
                      constant=constant, progress=progress)


def volatile_cells(book) -> list:
    """Cells calling RAND, RANDBETWEEN, NOW... in their text: inputs, whatever value an
    engine drew (only where xlgen's engine cannot tell which of them really draw)."""
    pattern = re.compile(r"(?<![\w.])(?:_xlfn\.)?(" + "|".join(sorted(VOLATILE_FUNCTIONS)) + r")\s*\(", re.I)
    return [(sheet.name, *cell) for sheet in book.sheets
            for cell, text in sheet.formulas.items() if pattern.search(text)]
