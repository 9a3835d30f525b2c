"""Excel Tables' structured references, rewritten as the A1 references they stand for.

`Table1[Age]`, `Table1[[#This Row],[SibSp]:[Ones]]`, `Table1[#All]`... are resolved
against the tables the reader found (xl/tables/*.xml) before a formula is parsed, so
the rest of the engine only ever sees A1 references: `Table1[Age]` becomes
`'sheet'!$E$4:$E$715` and `Table1[[#This Row],[Age]]` at row 9 becomes `'sheet'!$E9`
(column fixed, row relative), so every row of a calculated column keeps one shape.

Rows: [#Data] (the default) is the table without its header and totals rows, [#All] all
of it, [#Headers] and [#Totals] one row each (#REF! if the table has none), [#This Row]
the formula's own row (#VALUE! outside the data rows, as in Excel).
"""

from __future__ import annotations

import re

from .refs import MAX_ROW, col_letters

# A string literal, a quoted sheet name, or Name[...] (brackets nest one level; ' escapes
# the next character) that does not continue a name, a cell or a sheet reference.
_STRUCTURED_RE = re.compile(
    r"""("(?:[^"]|"")*")|('(?:[^']|'')*')"""
    r"""|(?<![\w.$!\\])([^\W\d][\w.\\]*)\[((?:[^\[\]']|'.|\[(?:[^\[\]']|'.)*\])*)\]""", re.S)
_SPECIAL = {"#ALL", "#DATA", "#HEADERS", "#TOTALS", "#THIS ROW"}


class StructuredReferenceError(Exception):
    """A structured reference that cannot be read (it becomes #REF!)."""


def sheet_prefix(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'!"


class StructuredRefs:
    """Rewrites structured references for one workbook's tables; cached per formula text."""

    def __init__(self, tables: dict):
        self.tables = tables  # NAME (upper case) -> Table
        self._cache: dict = {}

    def rewrite(self, text: str, row: int | None):
        """The formula text with every structured reference as an A1 reference, as it reads
        in `row` (None: no row, e.g. a defined name); text itself if it has none."""
        if "[" not in text or not self.tables:
            return text
        cache = self._cache

        def replace(m):
            if m.group(3) is None:
                return m.group(0)  # a string literal or a quoted sheet name
            render = cache.get(m.group(0))
            if render is None:
                render = cache[m.group(0)] = self._reference(self.tables.get(m.group(3).upper()), m.group(4))
            return render(row)

        return _STRUCTURED_RE.sub(replace, text)

    def row_bounds(self, text: str, row: int) -> tuple[int, int]:
        """The rows around `row` where the text's [#This Row] references all stay inside
        (or all stay outside) their tables' data rows: there the rewriting only moves rows."""
        low, high = 1, MAX_ROW
        for m in _STRUCTURED_RE.finditer(text):
            table = self.tables.get(m.group(3).upper()) if m.group(3) is not None else None
            if table is None or "#this row" not in m.group(4).lower() and "@" not in m.group(4):
                continue
            first, last = table.first_row + table.header_rows, table.last_row - table.totals_rows
            if row < first:
                high = min(high, first - 1)
            elif row > last:
                low = max(low, last + 1)
            else:
                low, high = max(low, first), min(high, last)
        return low, high

    def table_data(self, name: str) -> str | None:
        """A bare table name used as a reference: its data rows, all columns."""
        table = self.tables.get(name.upper())
        if table is None:
            return None
        return self._reference(table, "#Data")(None)

    def _reference(self, table, inside: str):
        """Function row -> A1 text of Table[inside]."""
        if table is None:
            return lambda row: "#REF!"
        try:
            items, first, last = _parse_inside(inside)
            c1 = table.first_col + _column_index(table, first) if first is not None else table.first_col
            c2 = table.first_col + _column_index(table, last) if last is not None else (
                c1 if first is not None else table.last_col)
        except StructuredReferenceError:
            return lambda row: "#REF!"
        c1, c2 = min(c1, c2), max(c1, c2)
        prefix = sheet_prefix(table.sheet)
        cols = (f"${col_letters(c1)}", f"${col_letters(c2)}")
        data_first = table.first_row + table.header_rows
        data_last = table.last_row - table.totals_rows
        if "#THIS ROW" in items:
            if len(items) != 1:
                return lambda row: "#REF!"

            def this_row(row):
                if row is None or not data_first <= row <= data_last:
                    return "#VALUE!"
                if c1 == c2:
                    return f"{prefix}{cols[0]}{row}"
                return f"{prefix}{cols[0]}{row}:{cols[1]}{row}"
            return this_row
        rows = _rows(items, table, data_first, data_last)
        if rows is None:
            text = "#REF!"
        elif rows[0] == rows[1] and c1 == c2:
            text = f"{prefix}{cols[0]}${rows[0]}"
        else:
            text = f"{prefix}{cols[0]}${rows[0]}:{cols[1]}${rows[1]}"
        return lambda row: text


def _rows(items: set, table, data_first: int, data_last: int):
    """(first row, last row) the special items select, or None (#REF!)."""
    if not items or items == {"#DATA"}:
        return (data_first, data_last) if data_first <= data_last else None
    if "#ALL" in items:
        return table.first_row, table.last_row
    if items == {"#HEADERS"}:
        return (table.first_row, table.first_row) if table.header_rows else None
    if items == {"#TOTALS"}:
        return (table.last_row, table.last_row) if table.totals_rows else None
    if items == {"#HEADERS", "#DATA"}:
        return table.first_row, data_last
    if items == {"#DATA", "#TOTALS"}:
        return data_first, table.last_row
    return None


def _unescape(name: str) -> str:
    return re.sub(r"'(.)", r"\1", name)


def _parse_inside(inside: str):
    """What is between a table name's outer brackets -> (special items, first col, last col)."""
    s = inside.strip()
    if not s:
        return set(), None, None
    if s.startswith("@"):  # Excel's short form of [#This Row]
        rest = s[1:].strip()
        if not rest:
            return {"#THIS ROW"}, None, None
        if not rest.startswith("["):
            return {"#THIS ROW"}, _unescape(rest), None
        _, first, last = _parse_inside(rest)
        return {"#THIS ROW"}, first, last
    if not s.startswith("["):  # Table1[Age] or Table1[#Data]
        if s.startswith("#"):
            item = s.upper()
            if item not in _SPECIAL:
                raise StructuredReferenceError(s)
            return {item}, None, None
        return set(), _unescape(s), None
    items: set = set()
    columns: list = []
    spans = 0
    for kind, value in _bracket_parts(s):
        if kind == "item":
            if value.upper() not in _SPECIAL:
                raise StructuredReferenceError(value)
            items.add(value.upper())
        elif kind == "col":
            columns.append(value)
        else:
            spans += 1
    if len(columns) > 2 or spans > 1 or (len(columns) == 2) != (spans == 1):
        raise StructuredReferenceError(inside)
    first = columns[0] if columns else None
    last = columns[1] if len(columns) == 2 else None
    return items, first, last


def _bracket_parts(s: str):
    """'[#This Row],[A]:[B]' -> [("item", "#This Row"), ("col", "A"), (":", None), ("col", "B")]."""
    out = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in " ,":
            i += 1
        elif ch == ":":
            out.append((":", None))
            i += 1
        elif ch == "[":
            j = i + 1
            while j < n and s[j] != "]":
                j += 2 if s[j] == "'" else 1
            if j >= n:
                raise StructuredReferenceError(s)
            body = s[i + 1:j]
            if body.startswith("#"):
                out.append(("item", body))
            else:
                out.append(("col", _unescape(body)))
            i = j + 1
        else:
            raise StructuredReferenceError(s)
    return out


def _column_index(table, name: str) -> int:
    target = name.strip().upper()
    for index, column in enumerate(table.columns):
        if column.upper() == target:
            return index
    raise StructuredReferenceError(name)
