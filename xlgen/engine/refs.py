"""A1 references in formula text: finding them, shifting them, and keying formula shapes.

One regular expression finds every cell or range reference outside string literals and
quoted sheet names. The reader uses it to expand shared formulas (shift the relative
parts), the calculator uses it to group cells whose formulas are the same once written
relative to the cell (the "shape"), so each shape is parsed and compiled once.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_ROW = 1_048_576
MAX_COL = 16_384

# Group layout of REF_RE (each match is exactly one of these alternatives):
#   1 string literal "..."            2 quoted sheet name '...'!
#   3-10 cell or cell range:  $ COL $ ROW [: $ COL $ ROW]
#   11-14 whole columns:      $ COL : $ COL
#   15-18 whole rows:         $ ROW : $ ROW
REF_RE = re.compile(
    r"""("(?:[^"]|"")*")"""
    r"""|('(?:[^']|'')*'!)"""
    r"""|(?<![\w.$])(\$?)([A-Za-z]{1,3})(\$?)([0-9]{1,7})"""
    r"""(?::(\$?)([A-Za-z]{1,3})(\$?)([0-9]{1,7}))?(?![\w.(!\[])"""
    r"""|(?<![\w.$])(\$?)([A-Za-z]{1,3}):(\$?)([A-Za-z]{1,3})(?![\w.(!\[])"""
    r"""|(?<![\w.$:])(\$?)([0-9]{1,7}):(\$?)([0-9]{1,7})(?![\w.(!:\[])"""
)
CELL_RE = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]+)$")


@lru_cache(maxsize=None)
def col_number(letters: str) -> int:
    """'A' -> 1, 'AB' -> 28 (case-insensitive)."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


@lru_cache(maxsize=None)
def col_letters(n: int) -> str:
    """1 -> 'A', 28 -> 'AB'."""
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def parse_cell(ref: str) -> tuple[int, int]:
    """'$B$7' -> (7, 2). Raises ValueError for anything else."""
    m = CELL_RE.match(ref)
    if not m:
        raise ValueError(ref)
    return int(m.group(2)), col_number(m.group(1))


def cell_name(row: int, col: int) -> str:
    return f"{col_letters(col)}{row}"


def qualified(sheet: str, row: int, col: int) -> str:
    """How errors name a cell: basic!A1, or 'my sheet'!A1."""
    if re.fullmatch(r"[A-Za-z_][\w.]*", sheet):
        return f"{sheet}!{cell_name(row, col)}"
    return "'%s'!%s" % (sheet.replace("'", "''"), cell_name(row, col))


def _shift_cell(cabs, col, rabs, row, dr, dc):
    """Shift one A1 cell reference; None when it leaves the sheet."""
    c = col_number(col) if cabs else col_number(col) + dc
    r = int(row) if rabs else int(row) + dr
    if not (1 <= c <= MAX_COL and 1 <= r <= MAX_ROW):
        return None
    return f"{cabs}{col_letters(c)}{rabs}{r}"


def shift_formula(text: str, dr: int, dc: int) -> str:
    """The formula text as it reads dr rows down and dc columns right (shared formulas).

    `$` parts stay; a reference pushed off the sheet becomes #REF! as Excel writes it.
    """
    if dr == 0 and dc == 0:
        return text

    def repl(m: re.Match) -> str:
        g = m.groups()
        if g[0] is not None or g[1] is not None:
            return m.group(0)
        if g[3] is not None:
            first = _shift_cell(g[2], g[3], g[4], g[5], dr, dc)
            if g[7] is None:
                return first or "#REF!"
            second = _shift_cell(g[6], g[7], g[8], g[9], dr, dc)
            return f"{first}:{second}" if first and second else "#REF!"
        if g[11] is not None:
            cols = []
            for dollar, letters in ((g[10], g[11]), (g[12], g[13])):
                c = col_number(letters) if dollar else col_number(letters) + dc
                if not 1 <= c <= MAX_COL:
                    return "#REF!"
                cols.append(f"{dollar}{col_letters(c)}")
            return ":".join(cols)
        rows = []
        for dollar, digits in ((g[14], g[15]), (g[16], g[17])):
            r = int(digits) if dollar else int(digits) + dr
            if not 1 <= r <= MAX_ROW:
                return "#REF!"
            rows.append(f"{dollar}{r}")
        return ":".join(rows)

    return REF_RE.sub(repl, text)


def shape_key(text: str, row: int, col: int, parts: list | None = None) -> tuple[str, int]:
    """The formula written relative to (row, col), plus how many references it has.

    Two cells with equal keys have formulas that differ only in where their relative
    references point, by the same offsets from each cell: one compiled shape serves both.
    `parts`: REF_RE.split(text), when the caller has it.
    """
    if parts is None:
        parts = REF_RE.split(text)
    if len(parts) == 1:
        return text, 0
    out = [parts[0]]
    append = out.append
    nrefs = 0
    # split() yields: literal, 18 groups, literal, 18 groups, ...
    for i in range(1, len(parts), 19):
        g = parts[i:i + 18]
        if g[3] is not None:
            nrefs += 1
            append("\x00")
            append(_rel(g[2], col_number(g[3]), col, "C"))
            append(_rel(g[4], int(g[5]), row, "R"))
            if g[7] is not None:
                append(":")
                append(_rel(g[6], col_number(g[7]), col, "C"))
                append(_rel(g[8], int(g[9]), row, "R"))
        elif g[11] is not None:
            nrefs += 1
            append("\x00")
            append(_rel(g[10], col_number(g[11]), col, "C"))
            append(":")
            append(_rel(g[12], col_number(g[13]), col, "C"))
        elif g[15] is not None:
            nrefs += 1
            append("\x00")
            append(_rel(g[14], int(g[15]), row, "R"))
            append(":")
            append(_rel(g[16], int(g[17]), row, "R"))
        else:
            append(g[0] if g[0] is not None else g[1])
        append(parts[i + 18])
    return "".join(out), nrefs


def row_skeleton(text: str, parts: list | None = None) -> tuple[str, list[int]]:
    """The formula with the row numbers of its references taken out, and those rows in
    text order. Formulas with equal skeletons parse to the same tree but for those rows.
    `parts`: REF_RE.split(text), when the caller has it."""
    if parts is None:
        parts = REF_RE.split(text)
    rows: list[int] = []
    if len(parts) == 1:
        return text, rows
    out = [parts[0]]
    append = out.append
    for i in range(1, len(parts), 19):  # literal, 18 groups, literal, ... as in shape_key
        g = parts[i:i + 18]
        if g[3] is not None:
            rows.append(int(g[5]))
            if g[7] is None:
                append(f"{g[2]}{g[3]}{g[4]}\x00")
            else:
                rows.append(int(g[9]))
                append(f"{g[2]}{g[3]}{g[4]}\x00:{g[6]}{g[7]}{g[8]}\x00")
        elif g[15] is not None:
            rows.append(int(g[15]))
            rows.append(int(g[17]))
            append(f"{g[14]}\x00:{g[16]}\x00")
        elif g[11] is not None:
            append(f"{g[10]}{g[11]}:{g[12]}{g[13]}")
        else:
            append(g[0] if g[0] is not None else g[1])
        append(parts[i + 18])
    return "".join(out), rows


def _rel(dollar: str, value: int, base: int, axis: str) -> str:
    return f"{axis}{value}" if dollar else f"{axis}[{value - base}]"


_MAX_COMPILED_REFS = 64


def _joined_renderer(pieces: list[str], offsets: tuple):
    """render(row) for a formula with very many relative rows (a fuzzed 4,000-reference
    shared formula compiled one 35 ms f-string per column it was used in)."""
    tail = list(zip(offsets, pieces[1:]))

    def render(r: int) -> str:
        out = [pieces[0]]
        for d, piece in tail:
            out.append(str(r + d))
            out.append(piece)
        return "".join(out)
    return render


def _one_row_renderer(pieces: list[str], offset: int):
    """render(row) for a formula whose relative rows are all the same row (most of a
    row-by-row sheet's columns): one str.join, about half an f-string's time."""
    if offset == 0:
        return lambda r: str(r).join(pieces)
    return lambda r: str(r + offset).join(pieces)


_ROW = "\x00"  # where a relative row goes in a column's text (XML holds no NUL)


class Template:
    """Renders a formula's text at another cell, fast, to recognise cells of the same shape.

    Built once from one cell's text; `render(row, col)` gives the text the same shape has
    at (row, col), or None if a relative reference would leave the sheet. Comparing a
    cell's text with the rendering of its neighbour's shape is far cheaper than keying it.
    """

    __slots__ = ("row", "col", "literals", "refs", "_by_col", "_joined")

    def __init__(self, text: str, row: int, col: int, parts: list | None = None):
        self.row, self.col = row, col
        if parts is None:  # REF_RE.split(text), when the caller has it
            parts = REF_RE.split(text)
        self.literals = [parts[0]]
        self.refs = []
        for i in range(1, len(parts), 19):
            g = parts[i:i + 18]
            if g[3] is not None:
                ends = [(g[2], g[3], g[4], g[5])]
                if g[7] is not None:
                    ends.append((g[6], g[7], g[8], g[9]))
                self.refs.append(("cell", ends))
            elif g[11] is not None:
                self.refs.append(("cols", [(g[10], g[11]), (g[12], g[13])]))
            elif g[15] is not None:
                self.refs.append(("rows", [(g[14], g[15]), (g[16], g[17])]))
            else:
                self.refs.append(("text", g[0] if g[0] is not None else g[1]))
            self.literals.append(parts[i + 18])
        self._by_col: dict = {}
        self._joined: dict = {}

    def _column_format(self, col: int):
        """(the text with NUL where a relative row goes, those rows' offsets) for cells in
        this column, or False. (NUL: no formula holds one; braces in the text stay as they are.)"""
        dc = col - self.col
        out = [self.literals[0]]
        offsets = []
        for (kind, data), literal in zip(self.refs, self.literals[1:]):
            if kind == "text":
                out.append(data)
            elif kind == "cols":
                pieces = []
                for dollar, letters in data:
                    c = col_number(letters) + (0 if dollar else dc)
                    if not 1 <= c <= MAX_COL:
                        return False
                    pieces.append(dollar + col_letters(c))
                out.append(":".join(pieces))
            elif kind == "rows":
                pieces = []
                for dollar, digits in data:
                    if dollar:
                        pieces.append("$" + digits.lstrip("0"))
                    else:
                        pieces.append(_ROW)
                        offsets.append(int(digits) - self.row)
                out.append(":".join(pieces))
            else:
                pieces = []
                for cdollar, letters, rdollar, digits in data:
                    c = col_number(letters) + (0 if cdollar else dc)
                    if not 1 <= c <= MAX_COL:
                        return False
                    if rdollar:
                        row_text = "$" + digits.lstrip("0")
                    else:
                        row_text = _ROW
                        offsets.append(int(digits) - self.row)
                    pieces.append(cdollar + col_letters(c) + row_text)
                out.append(":".join(pieces))
            out.append(literal)
        return "".join(out), tuple(offsets)

    def column_renderer(self, col: int):
        """(render(row) -> text, lowest row, highest row) for this column, or None.

        render is a compiled f-string, so recognising the next cell of a column costs
        one call and one string comparison.
        """
        entry = self._by_col.get(col)
        if entry is None:
            entry = self._by_col[col] = self._compile_renderer(col)
        return entry or None

    def _compile_renderer(self, col: int):
        """column_renderer's entry (False: none), also filling column_joined's."""
        self._joined[col] = False
        layout = self._column_format(col)
        if layout is False:
            return False
        text, offsets = layout
        pieces = text.split(_ROW)  # as many as offsets + 1, whatever braces the text holds
        if len(pieces) != len(offsets) + 1:  # a NUL of its own: no fast rendering
            return False
        if len(set(offsets)) <= 1:
            self._joined[col] = (pieces, offsets[0] if offsets else 0)
        low = 1 - min(offsets, default=0)
        high = MAX_ROW - max(offsets, default=0)
        if len(offsets) > _MAX_COMPILED_REFS:  # compiling a huge f-string costs more than it saves
            return _joined_renderer(pieces, offsets), max(low, 1), min(high, MAX_ROW)
        if len(offsets) > 1 and len(set(offsets)) == 1:  # C5+D5*A5: one row number, joined
            return _one_row_renderer(pieces, offsets[0]), max(low, 1), min(high, MAX_ROW)
        render = _renderer_factory(len(offsets))(*pieces, *offsets)
        return render, max(low, 1), min(high, MAX_ROW)

    def column_joined(self, col: int):
        """(pieces, d) when every relative row of this column's text is the cell's row + d
        (or it has none), else None: the text at row r is then str(r + d).join(pieces),
        which the engine checks without a call, the row's text made once per row."""
        if col not in self._joined:
            self.column_renderer(col)
        return self._joined[col] or None

    def render(self, row: int, col: int) -> str | None:
        """The text this shape has at (row, col); None if it would leave the sheet."""
        entry = self.column_renderer(col)
        if entry is None or not entry[1] <= row <= entry[2]:
            return None
        return entry[0](row)


@lru_cache(maxsize=None)
def _renderer_factory(n_offsets: int):
    """make(piece0, ..., piece_n, offset1, ..., offset_n) -> render(row): an f-string
    compiled once per number of row references, so shapes share it."""
    pieces = [f"_{i}" for i in range(n_offsets + 1)]
    offsets = [f"_d{i}" for i in range(1, n_offsets + 1)]
    body = "{_0}" + "".join("{r + _d%d}{_%d}" % (i, i) for i in range(1, n_offsets + 1))
    source = f'def make({", ".join(pieces + offsets)}):\n    return lambda r: f"{body}"\n'
    namespace: dict = {}
    exec(compile(source, "<xlgen renderer>", "exec"), namespace)  # noqa: S102 - our own source
    return namespace["make"]
