"""Formula lint: the storage mistakes Excel punishes silently.

A formula that calculates fine in xlgen's engine (and in LibreOffice) can still open as
#NAME? in Excel, because Excel needs the file to spell newer functions with `_xlfn.`
(FILTER and SORT with `_xlfn._xlws.`) and LET/LAMBDA parameters with `_xlpm.`; XlsxWriter
adds neither inside defined names, never adds `_xlpm.`, and adds nothing at all once a
formula already contains `_xlfn.`. Volatile functions (RAND, NOW, INDIRECT...) make a sheet
change on every recalculation, which breaks verification against the NumPy reference.

The lint reads text only (formula cells and defined names of a Book) and never evaluates.
Each distinct formula text is analysed once, so 300,000-cell books stay fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from xlgen.engine.book import Book
from xlgen.engine.compiler import VOLATILE

# Functions newer than Excel 2007 and the prefix Excel stores them with. Copied from the
# installed XlsxWriter 3.3.1 (Worksheet._prepare_formula, the list its docs call "Formulas
# added in Excel 2010 and later"); tests/test_lint.py checks it still matches the
# installed XlsxWriter. Only FILTER and SORT take `_xlfn._xlws.`; SORTBY is plain `_xlfn.`.
_XLWS_FUNCTIONS = ("FILTER", "SORT")
_XLFN_FUNCTIONS = """
ACOT ACOTH AGGREGATE ANCHORARRAY ARABIC ARRAYTOTEXT BASE BETA.DIST BETA.INV BINOM.DIST
BINOM.DIST.RANGE BINOM.INV BITAND BITLSHIFT BITOR BITRSHIFT BITXOR BYCOL BYROW
CEILING.MATH CEILING.PRECISE CHISQ.DIST CHISQ.DIST.RT CHISQ.INV CHISQ.INV.RT CHISQ.TEST
CHOOSECOLS CHOOSEROWS COMBINA CONCAT CONFIDENCE.NORM CONFIDENCE.T COT COTH COVARIANCE.P
COVARIANCE.S CSC CSCH DAYS DECIMAL DROP ERF.PRECISE ERFC.PRECISE EXPAND EXPON.DIST
F.DIST F.DIST.RT F.INV F.INV.RT F.TEST FILTERXML FLOOR.MATH FLOOR.PRECISE FORECAST.ETS
FORECAST.ETS.CONFINT FORECAST.ETS.SEASONALITY FORECAST.ETS.STAT FORECAST.LINEAR
FORMULATEXT GAMMA GAMMA.DIST GAMMA.INV GAMMALN.PRECISE GAUSS HSTACK HYPGEOM.DIST IFNA IFS
IMAGE IMCOSH IMCOT IMCSC IMCSCH IMSEC IMSECH IMSINH IMTAN ISFORMULA ISOMITTED ISOWEEKNUM
LAMBDA LET LOGNORM.DIST LOGNORM.INV MAKEARRAY MAP MAXIFS MINIFS MODE.MULT MODE.SNGL MUNIT
NEGBINOM.DIST NORM.DIST NORM.INV NORM.S.DIST NORM.S.INV NUMBERVALUE PDURATION
PERCENTILE.EXC PERCENTILE.INC PERCENTRANK.EXC PERCENTRANK.INC PERMUTATIONA PHI
POISSON.DIST QUARTILE.EXC QUARTILE.INC QUERYSTRING RANDARRAY RANK.AVG RANK.EQ REDUCE RRI
SCAN SEC SECH SEQUENCE SHEET SHEETS SINGLE SKEW.P SORTBY STDEV.P STDEV.S SWITCH T.DIST
T.DIST.2T T.DIST.RT T.INV T.INV.2T T.TEST TAKE TEXTAFTER TEXTBEFORE TEXTJOIN TEXTSPLIT
TOCOL TOROW UNICHAR UNICODE UNIQUE VALUETOTEXT VAR.P VAR.S VSTACK WEBSERVICE WEIBULL.DIST
WRAPCOLS WRAPROWS XLOOKUP XMATCH XOR Z.TEST
""".split()

FUTURE_FUNCTION_PREFIX: dict[str, str] = {
    **{name: "_xlfn." for name in _XLFN_FUNCTIONS},
    **{name: "_xlfn._xlws." for name in _XLWS_FUNCTIONS},
}

# the functions whose value the inputs do not decide, as the engine knows them (OFFSET is
# volatile in Excel's recalculation, but its inputs decide its value: computed and checked)
VOLATILE_FUNCTIONS = VOLATILE

_PARAMETER_PREFIX = "_xlpm."
_KNOWN_PREFIXES = ("_xlfn._xlws.", "_xlfn.", "_xlws.", _PARAMETER_PREFIX)


@dataclass(frozen=True)
class LintProblem:
    cell: str  # "sheet!A1" or "name NAME" (a sheet-scoped name: "name sheet!NAME")
    message: str

    def __str__(self) -> str:
        return f"{self.cell}: {self.message}"


# One token of formula text. Strings, quoted sheet names and [bracketed] parts come first
# so nothing inside them is read as a function or a name. A cell reference is only a cell
# reference when no '(' or name character follows: LOG10( is a function, LOG10 a cell;
# likewise A:C is a column range, not the names A and C.
_TOKEN = re.compile(
    r"""
      (?P<string>"(?:[^"]|"")*"?)
    | (?P<quoted>'(?:[^']|'')*'?)
    | (?P<bracket>\[(?:[^\[\]]|\[[^\]]*\])*\]?)
    | (?P<error>\#(?:NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|GETTING_DATA|SPILL!|CALC!))
    | (?P<cellref>\$?[A-Za-z]{1,3}\$?[0-9]+(?![\w.\\(]))
    | (?P<columns>\$?[A-Za-z]{1,3}:\$?[A-Za-z]{1,3}(?![\w.\\(]))
    | (?P<call>[A-Za-z_\\][\w.\\?]*(?=\())
    | (?P<name>[A-Za-z_\\][\w.\\?]*)
    | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<comma>,)
    | (?P<brace_open>\{)
    | (?P<brace_close>\})
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


# Formulas copied down a sheet differ only in their cell references; the lint's findings
# never depend on which cell is referenced, so all of them share one analysis.
_CELL_REFERENCE = re.compile(r"(?<![\w.\\])\$?[A-Za-z]{1,3}\$?[0-9]+(?![\w.\\(])")


@dataclass(frozen=True)
class _FormulaFacts:
    """What one formula text says, independent of the cell it sits in."""

    problems: tuple[str, ...]
    volatile: frozenset[str]  # volatile functions it calls, upper case
    names: frozenset[str]  # upper-case identifiers it mentions (possible defined names)


@dataclass
class _Call:
    """An open '(' while parsing: a function call (name given) or a plain group."""

    name: str | None  # the function, upper case without prefix, e.g. "LET"; None for a group
    args: list[tuple[int, int]] = field(default_factory=list)  # token index ranges
    arg_start: int = 0


def _split_prefix(identifier: str) -> tuple[str, str]:
    """'_xlfn._xlws.SORT' -> ('_xlfn._xlws.', 'SORT'); prefix lower case, name upper case."""
    lowered = identifier.lower()
    for prefix in _KNOWN_PREFIXES:
        if lowered.startswith(prefix):
            return prefix, identifier[len(prefix):].upper()
    return "", identifier.upper()


def _analyse(text: str) -> _FormulaFacts:
    """Tokenize, match parentheses to find each call's arguments, then check the rules."""
    tokens = [
        (match.lastgroup, match.group())
        for match in _TOKEN.finditer(text)
        if match.lastgroup != "other" or not match.group().isspace()
    ]
    problems: list[str] = []
    volatile: set[str] = set()
    names: set[str] = set()

    # Pass 1: function prefixes, volatile calls, and the argument ranges of every call.
    binders: list[_Call] = []  # closed LET and LAMBDA calls
    stack: list[_Call] = []
    for index, (kind, token) in enumerate(tokens):
        if kind == "call":
            prefix, bare = _split_prefix(token)
            if prefix != _PARAMETER_PREFIX:  # _xlpm.f( calls a LAMBDA-valued parameter
                names.add(bare)
                required = FUTURE_FUNCTION_PREFIX.get(bare)
                if required is not None and prefix != required:
                    problems.append(
                        f"{token}( is newer than Excel 2007: store it as {required}{bare}("
                    )
                if bare in VOLATILE_FUNCTIONS:
                    volatile.add(bare)
            # arguments start after the '(' that follows the call name
            stack.append(_Call(name=bare if prefix != _PARAMETER_PREFIX else None,
                               arg_start=index + 2))
        elif kind in ("open", "brace_open"):
            # '(' after a call name was consumed with the call; this is a group or array
            if kind == "open" and index > 0 and tokens[index - 1][0] == "call":
                continue
            stack.append(_Call(name=None, arg_start=index + 1))
        elif kind in ("close", "brace_close"):
            if not stack:
                continue
            call = stack.pop()
            call.args.append((call.arg_start, index))
            if call.name in ("LET", "LAMBDA"):
                binders.append(call)
        elif kind == "comma" and stack:
            call = stack[-1]
            call.args.append((call.arg_start, index))
            call.arg_start = index + 1
        elif kind == "name":
            prefix, bare = _split_prefix(token)
            if prefix != _PARAMETER_PREFIX and not _is_sheet_name(tokens, index):
                names.add(bare)

    # Pass 2: LET/LAMBDA parameters, their declarations and their uses.
    declarations: set[int] = set()  # token indexes of parameter declarations
    scopes: list[tuple[int, int, str]] = []  # (first token, end token, bare name)
    for call in binders:
        body_start, body_end = call.args[-1]
        for position, (start, end) in enumerate(call.args[:-1]):
            if call.name == "LET" and position % 2 == 1:
                continue  # a LET value, not a name
            arg_tokens = tokens[start:end]
            if len(arg_tokens) != 1 or arg_tokens[0][0] not in ("name", "bracket"):
                problems.append(f"{call.name} argument {position + 1} should be a parameter name")
                continue
            declared = arg_tokens[0][1].strip("[]")  # [x]: an optional LAMBDA parameter
            declarations.add(start)
            prefix, bare = _split_prefix(declared)
            if prefix != _PARAMETER_PREFIX:
                problems.append(
                    f"{call.name} parameter {declared} must be stored as {_PARAMETER_PREFIX}{declared}"
                )
            # LET: a name is visible after its own value; LAMBDA: in the body only
            if call.name == "LET" and position + 2 < len(call.args):
                visible_from = call.args[position + 2][0]
            else:
                visible_from = body_start
            scopes.append((visible_from, body_end, bare))

    for index, (kind, token) in enumerate(tokens):
        if kind not in ("name", "call") or index in declarations:
            continue
        if _is_sheet_name(tokens, index) or (index > 0 and tokens[index - 1][1] == "!"):
            continue  # data!x: the sheet name, and a name qualified by it
        prefix, bare = _split_prefix(token)
        in_scope = any(first <= index < end and name == bare for first, end, name in scopes)
        if in_scope and prefix != _PARAMETER_PREFIX:
            problems.append(
                f"{token} refers to a LET/LAMBDA parameter: store it as {_PARAMETER_PREFIX}{token}"
            )
        elif prefix == _PARAMETER_PREFIX and not in_scope:
            problems.append(f"{token} is not a parameter of an enclosing LET or LAMBDA")

    return _FormulaFacts(
        problems=tuple(dict.fromkeys(problems)),  # once each, in order
        volatile=frozenset(volatile),
        names=frozenset(names),
    )


def _is_sheet_name(tokens: list[tuple[str | None, str]], index: int) -> bool:
    """True for `data` in data!A1."""
    return index + 1 < len(tokens) and tokens[index + 1][1] == "!"


_SEPARATOR = "\x00"   # XML cannot hold it, so no formula text does


def _shapes(formulas: dict) -> tuple[list, list, list]:
    """(cells, the distinct shapes of their formulas (cell references made A1), the index
    of each cell's shape among them).

    The regex runs once per *class* of texts, not once per text: texts that are equal once
    every ASCII digit reads 0 are matched at the same places (every class the pattern
    uses holds all ASCII digits or none, so the regex sees no difference between them),
    so their shapes differ at most in the digits outside those places (a constant 0.01
    against 0.02): the texts of a class that agree there share a shape. A column of
    20,000 formulas copied down is one class, one regex call and a NumPy comparison."""
    cells, texts = list(formulas), list(formulas.values())
    joined = _SEPARATOR.join(texts)
    whole = joined.count(_SEPARATOR) == len(texts) - 1   # else a text held the separator
    class_of = None
    if whole and len(texts) >= 2000 and joined.isascii():   # (a byte per character below)
        keys = joined.translate(_DIGITS_READ_0).split(_SEPARATOR)
        class_of = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    if class_of is None or 16 * len(class_of) > len(texts):   # few texts, or few alike: the regex on all
        if whole:   # one pass over the texts joined (the lookarounds see the separator as an end)
            shapes = _CELL_REFERENCE.sub("A1", joined).split(_SEPARATOR) if texts else []
        else:
            shapes = [_CELL_REFERENCE.sub("A1", text) for text in texts]
        number = {shape: index for index, shape in enumerate(dict.fromkeys(shapes))}
        return cells, list(number), list(map(number.__getitem__, shapes))
    classes = np.fromiter(map(class_of.__getitem__, keys), dtype=np.int64, count=len(keys))
    del keys
    data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    starts = np.zeros(len(texts), dtype=np.int64)   # where each text starts in `joined`: after a separator
    starts[1:] = np.flatnonzero(data == ord(_SEPARATOR)) + 1
    order = np.argsort(classes, kind="stable")
    bounds = np.flatnonzero(np.diff(classes[order])) + 1
    distinct, number = [], {}
    shape_of = np.empty(len(texts), dtype=np.int64)
    for members in np.split(order, bounds):
        first = texts[members[0]]
        # the digits of `first` that no cell reference covers: where a member's shape can differ
        covered = np.zeros(len(first), dtype=bool)
        for match in _CELL_REFERENCE.finditer(first):
            covered[match.start():match.end()] = True
        loose = np.flatnonzero(~covered & (np.frombuffer(first.encode("ascii"), dtype=np.uint8) - 48 < 10))
        digits = data[starts[members][:, None] + loose[None, :]] if len(loose) and len(members) > 1 else None
        if digits is not None and not (digits == digits[0]).all():
            _, group_first, groups = np.unique(digits, axis=0, return_index=True, return_inverse=True)
            groups = groups.reshape(-1)
        else:   # one group: no loose digits, or the same in every member (the 2 of 2*(...), IF's 0)
            group_first, groups = np.zeros(1, dtype=np.int64), np.zeros(len(members), dtype=np.int64)
        indices = []
        for member in members[group_first].tolist():
            shape = _CELL_REFERENCE.sub("A1", texts[member])
            if shape not in number:
                number[shape] = len(distinct)
                distinct.append(shape)
            indices.append(number[shape])
        shape_of[members] = np.asarray(indices, dtype=np.int64)[groups]
    return cells, distinct, shape_of.tolist()


_DIGITS_READ_0 = str.maketrans("123456789", "000000000")


class LintSurvey:
    """The lint's costly part, which needs no list of deterministic sheets: each sheet's
    distinct formula shapes, each shape's facts, and the cells of the shapes that have
    something to say (problems, or volatile calls), made once (`prepare`: all at once, as
    verify's lint child does while the engine calculates, before the checkers say which
    sheets are deterministic). Small (no list of every cell), so it can be handed over
    (pickled). A survey serves one book, unchanged since."""

    def __init__(self):
        self.facts_by_shape: dict[str, _FormulaFacts] = {}
        # sheet's place in the book -> (its distinct shapes, {shape's index: its cells} of
        # the shapes with problems or volatile calls)
        self._sheets: dict[int, tuple[list, dict]] = {}

    def prepare(self, book: Book) -> "LintSurvey":
        for index, sheet in enumerate(book.sheets):
            self.sheet_shapes(index, sheet)
        for text in book.names.values():
            self.facts(text)
        return self

    def sheet_shapes(self, index: int, sheet) -> tuple[list, dict]:
        found = self._sheets.get(index)
        if found is None:
            cells, distinct, shape_of = _shapes(sheet.formulas)
            loud = set()
            for shape_index, shape in enumerate(distinct):
                facts = self.facts_of_shape(shape)
                if facts.problems or facts.volatile:
                    loud.add(shape_index)
            cells_of = {}
            if loud:
                for cell, shape_index in zip(cells, shape_of):
                    if shape_index in loud:
                        cells_of.setdefault(shape_index, []).append(cell)
            found = self._sheets[index] = (distinct, cells_of)
        return found

    def facts_of_shape(self, shape: str) -> _FormulaFacts:
        found = self.facts_by_shape.get(shape)
        if found is None:
            found = self.facts_by_shape[shape] = _analyse(shape.removeprefix("="))
        return found

    def facts(self, text: str) -> _FormulaFacts:
        """The facts of any formula text (a defined name's)."""
        return self.facts_of_shape(_CELL_REFERENCE.sub("A1", text))


def lint_book(book: Book, deterministic_sheets: list[str] | set[str] | None = None,
              survey: LintSurvey | None = None) -> list[LintProblem]:
    """Check every formula cell and defined name of `book`; return the problems found.

    `deterministic_sheets`: sheets that must not call volatile functions (default: all).
    A sheet-scoped defined name follows its sheet; a workbook-wide name is checked when a
    deterministic sheet uses it (directly or through other names), or always by default.
    `survey`: the book's LintSurvey, if one was made already.
    """
    survey = LintSurvey() if survey is None else survey
    facts_of_shape, facts = survey.facts_of_shape, survey.facts

    if deterministic_sheets is None:
        deterministic = {sheet.name.lower() for sheet in book.sheets}
    else:
        deterministic = {name.lower() for name in deterministic_sheets}

    problems: list[LintProblem] = []
    used_by_deterministic: dict[int, _FormulaFacts] = {}  # distinct analyses, by id
    for sheet_index, sheet in enumerate(book.sheets):
        is_deterministic = sheet.name.lower() in deterministic
        # each distinct shape is analysed once; only cells of a shape with something to say
        # are visited one by one (in row order), so a clean sheet costs one regex pass
        distinct, cells_of = survey.sheet_shapes(sheet_index, sheet)
        flagged = set()
        for index, shape in enumerate(distinct):
            found = facts_of_shape(shape)
            if is_deterministic:
                used_by_deterministic[id(found)] = found
            if found.problems or (is_deterministic and found.volatile):
                flagged.add(index)
        if not flagged:
            continue
        # imported only to name a problem: verify's lint of a clean book never loads XlsxWriter
        from xlsxwriter.utility import quote_sheetname, xl_rowcol_to_cell
        sheet_prefix = quote_sheetname(sheet.name) + "!"
        for (row, col), index in sorted((cell, index) for index in flagged for cell in cells_of[index]):
            found = facts_of_shape(distinct[index])
            where = sheet_prefix + xl_rowcol_to_cell(row - 1, col - 1)
            problems.extend(LintProblem(where, message) for message in found.problems)
            if is_deterministic:
                for function in sorted(found.volatile):
                    problems.append(LintProblem(
                        where, _volatile_message(function, f"deterministic sheet {sheet.name!r}")))
    names_used_by_deterministic = {
        name for found in used_by_deterministic.values() for name in found.names
    }
    for (scope, _), text in book.names.items():  # a deterministic sheet's own names count too
        if scope is not None and scope.lower() in deterministic:
            names_used_by_deterministic |= facts(text).names

    # workbook names reached from deterministic sheets, also through other names
    global_names = {name: text for (scope, name), text in book.names.items() if scope is None}
    reached: set[str] = set()
    pending = [name for name in names_used_by_deterministic if name in global_names]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(n for n in facts(global_names[name]).names if n in global_names)

    for (scope, name), text in sorted(book.names.items(), key=lambda item: (item[0][0] or "", item[0][1])):
        found = facts(text)
        if scope is not None:
            reason = f"a name of deterministic sheet {scope!r}" if scope.lower() in deterministic else None
        elif deterministic_sheets is None:
            reason = "a workbook name (all sheets are deterministic)"
        else:
            reason = "a workbook name that deterministic sheets use" if name in reached else None
        messages = list(found.problems)
        if reason:
            messages += [_volatile_message(function, reason) for function in sorted(found.volatile)]
        if not messages:
            continue
        if scope:  # imported only to name a problem, as above
            from xlsxwriter.utility import quote_sheetname
        where = f"name {quote_sheetname(scope)}!{name}" if scope else f"name {name}"
        problems.extend(LintProblem(where, message) for message in messages)
    return problems


def _volatile_message(function: str, where: str) -> str:
    return f"volatile {function}() in {where}: its value changes on every recalculation"
