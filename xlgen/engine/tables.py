"""Excel Tables' structured references, rewritten as the A1 references they stand for.

`Table1[Age]`, `Table1[[#This Row],[SibSp]:[Ones]]`, `Table1[#All]`... are resolved
against the tables the reader found (xl/tables/*.xml) before a formula is parsed, so
the rest of the engine only ever sees A1 references: `Table1[Age]` becomes
`'sheet'!$E$4:$E$715` and `Table1[[#This Row],[Age]]` at row 9 becomes `'sheet'!$E9`
(column fixed, row relative), so every row of a calculated column keeps one shape.

Rows: [#Data] (the default) is the table without its header and totals rows, [#All] all
of it, [#Headers] and [#Totals] one row each (#REF! if the table has none), [#This Row]
(or @) the formula's own row (#VALUE! outside the data rows, as in Excel). A reference
without a table name (`[Price]`, `[@Qty]`) means the table the formula sits in. Column
names are case-insensitive; ' escapes [ ] # ' in them.
"""

from __future__ import annotations

import re

from .refs import MAX_ROW, col_letters

# A string literal, a quoted sheet name, or [Name][...] (brackets nest one level; '
# escapes the next character) that does not continue a name, a cell or a sheet reference
# and is not an external workbook's [1]Sheet!A1.
_STRUCTURED_RE = re.compile(
    r"""("(?:[^"]|"")*")|('(?:[^']|'')*')"""
    r"""|(?<![\w.$!\\\]])([^\W\d][\w.\\]*)?\[((?:[^\[\]']|'.|\[(?:[^\[\]']|'.)*\])*)\](?![\w'!])""",
    re.S)
_SPECIAL = {"#ALL", "#DATA", "#HEADERS", "#TOTALS", "#THIS ROW"}


class StructuredReferenceError(Exception):
    """A structured reference that cannot be read (it becomes #REF!)."""


def sheet_prefix(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'!"


class StructuredRefs:
    """Rewrites structured references for one workbook's tables."""

    def __init__(self, tables: dict):
        self.tables = tables  # NAME (upper case) -> Table
        self._cache: dict = {}  # (table name, inside) -> function row -> A1 text
        self._by_sheet: dict = {}
        for table in tables.values():
            self._by_sheet.setdefault(table.sheet.lower(), []).append(table)

    def containing(self, sheet: str | None, row: int | None, col: int | None):
        """The table whose range holds the cell (for references without a table name)."""
        if sheet is None or row is None or col is None:
            return None
        for table in self._by_sheet.get(sheet.lower(), ()):
            if table.first_row <= row <= table.last_row and table.first_col <= col <= table.last_col:
                return table
        return None

    def _table_of(self, m, sheet, row, col):
        if m.group(3) is None:
            return self.containing(sheet, row, col)
        return self.tables.get(m.group(3).upper())

    def rewrite(self, text: str, row: int | None, col: int | None = None, sheet: str | None = None):
        """The formula text with every structured reference as an A1 reference, as it reads
        at (row, col) of `sheet` (row None: no cell, e.g. a defined name); the text itself
        when it has none."""
        if "[" not in text or not self.tables:
            return text
        cache = self._cache

        def replace(m):
            if m.group(1) is not None or m.group(2) is not None:
                return m.group(0)  # a string literal or a quoted sheet name
            table = self._table_of(m, sheet, row, col)
            key = (table.name if table is not None else None, m.group(4))
            render = cache.get(key)
            if render is None:
                render = cache[key] = self._reference(table, m.group(4))
            return render(row)

        return _STRUCTURED_RE.sub(replace, text)

    def row_bounds(self, text: str, row: int, col: int, sheet: str) -> tuple[int, int]:
        """The rows around `row` (same column) where rewriting the text only moves its
        [#This Row] references along: each stays inside, or outside, its table's data
        rows, and a reference without a table name stays in the same table."""
        low, high = 1, MAX_ROW
        for m in _STRUCTURED_RE.finditer(text):
            if m.group(1) is not None or m.group(2) is not None:
                continue
            table = self._table_of(m, sheet, row, col)
            if m.group(3) is None:
                if table is None:
                    return row, row
                low, high = max(low, table.first_row), min(high, table.last_row)
            inside = m.group(4)
            if table is None or not ("#this row" in inside.lower() or inside.lstrip().startswith("@")):
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
        return (table.first_row, data_last) if table.header_rows else None
    if items == {"#DATA", "#TOTALS"}:
        return (data_first, table.last_row) if table.totals_rows else None
    return None


def _unescape(name: str) -> str:
    return re.sub(r"'(.)", r"\1", name).strip()


def _parse_inside(inside: str):
    """What is between a table reference's outer brackets -> (special items, first column,
    last column). Forms: '' | '#Data' | 'Age' | '@Age' | '@[Age]' | '@' |
    '[#This Row],[SibSp]:[Ones]' | '[#This Row],Price' | '[Price]:[Qty]'."""
    s = inside.strip()
    if not s:
        return set(), None, None
    items: set = set()
    if s.startswith("@"):  # Excel's short form of [#This Row],
        items.add("#THIS ROW")
        s = s[1:].strip()
        if not s:
            return items, None, None
        if not s.startswith("["):
            return items, _unescape(s), None
    elif not s.startswith("["):  # Table1[Age] or Table1[#Data]
        if s.startswith("#"):
            if s.upper() not in _SPECIAL:
                raise StructuredReferenceError(s)
            return {s.upper()}, None, None
        return items, _unescape(s), None
    columns: list = []
    spans = 0
    for kind, value in _parts(s):
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


def _parts(s: str):
    """'[#This Row],[A]:[B]' -> [("item", "#This Row"), ("col", "A"), (":", None), ("col", "B")];
    a column may also be written without brackets ('[#This Row],Price')."""
    out = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in " ,":
            i += 1
        elif ch == ":":
            out.append((":", None))
            i += 1
        else:
            if ch == "[":
                j = i + 1
                while j < n and s[j] != "]":
                    j += 2 if s[j] == "'" else 1
                if j >= n:
                    raise StructuredReferenceError(s)
                body, i = s[i + 1:j], j + 1
            else:  # a simple column name, up to the next , or :
                j = i
                while j < n and s[j] not in ",:[]":
                    j += 2 if s[j] == "'" else 1
                body, i = s[i:j], j
            if body.strip().startswith("#"):
                out.append(("item", body.strip()))
            else:
                out.append(("col", _unescape(body)))
    return out


def _column_index(table, name: str) -> int:
    target = name.strip().upper()
    for index, column in enumerate(table.columns):
        if column.upper() == target:
            return index
    raise StructuredReferenceError(name)
