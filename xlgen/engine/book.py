"""The neutral workbook model: what a file holds, before any calculation.

Both the xlsx reader and the sheet builders produce a Book, so one engine computes the
cached values we write and recomputes the files we verify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .refs import col_number


@dataclass(frozen=True)
class ExcelError:
    """An Excel error value such as #NUM! or #DIV/0!; equal when the codes are equal."""

    code: str

    def __str__(self) -> str:
        return self.code


Cell = tuple[int, int]  # (row, col), both 1-based

_RANGE_RE = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})(?::\$?([A-Za-z]{1,3})\$?([0-9]{1,7}))?$")


def range_bounds(ref: str) -> tuple[int, int, int, int]:
    """'B2:D5' -> (2, 2, 5, 4); 'B2' -> (2, 2, 2, 2). Raises ValueError for anything else."""
    m = _RANGE_RE.match(ref.strip())
    if not m:
        raise ValueError(f"not a cell range: {ref!r}")
    r1, c1 = int(m.group(2)), col_number(m.group(1))
    if m.group(3) is None:
        return r1, c1, r1, c1
    r2, c2 = int(m.group(4)), col_number(m.group(3))
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


@dataclass
class Sheet:
    name: str
    # constants: float | str | bool | ExcelError; formulas: text without the leading '=',
    # exactly as stored (with _xlfn./_xlpm. prefixes), shared formulas already expanded.
    constants: dict[Cell, object] = field(default_factory=dict)
    formulas: dict[Cell, str] = field(default_factory=dict)
    # cached values of formula cells, where the file has them (a built Book has none)
    cached: dict[Cell, object] = field(default_factory=dict)
    # array formulas (t="array"): anchor cell -> the range it fills, e.g. "A1:C3". The
    # reader also lists the range's other cells in `formulas`, with the anchor's text (as
    # Excel shows them) and their saved values in `cached`: the anchor's formula computes them.
    array_refs: dict[Cell, str] = field(default_factory=dict)
    # anchors of dynamic-array formulas (Excel 365's spills; the file marks them with
    # dynamic-array cell metadata): the rest are legacy Ctrl+Shift+Enter array formulas
    dynamic_arrays: set = field(default_factory=set)

    def array_members(self) -> dict[Cell, Cell]:
        """Cell of an array formula's range (other than its anchor) -> the anchor."""
        members = {}
        for anchor, ref in self.array_refs.items():
            r1, c1, r2, c2 = range_bounds(ref)
            if (r1, c1) != anchor or (r1 == r2 and c1 == c2):
                continue
            for r in range(r1, r2 + 1):
                for c in range(c1, c2 + 1):
                    members[(r, c)] = anchor
        for anchor in self.array_refs:  # an anchor is never another formula's member
            members.pop(anchor, None)
        return members


@dataclass(frozen=True)
class Table:
    """An Excel Table (xl/tables/tableN.xml): what structured references are resolved with."""

    name: str  # displayName, as formulas write it
    sheet: str
    first_row: int  # the table's range, header and totals rows included
    first_col: int
    last_row: int
    last_col: int
    columns: tuple[str, ...]  # column names, left to right
    header_rows: int = 1
    totals_rows: int = 0


@dataclass
class Book:
    sheets: list[Sheet] = field(default_factory=list)
    # defined names: (sheet name for a sheet-scoped name or None, NAME in upper case) -> text
    # e.g. ("basic", "LEARNING_RATE") -> "basic!$F$1"; (None, "AVERAGE_GRAD") -> "_xlfn.LAMBDA(...)"
    names: dict[tuple[str | None, str], str] = field(default_factory=dict)
    name_comments: dict[tuple[str | None, str], str] = field(default_factory=dict)
    # Excel Tables, by name in upper case
    tables: dict[str, Table] = field(default_factory=dict)
    # facts about the file the reader noticed (e.g. "macros ignored"), for the report
    notes: list[str] = field(default_factory=list)

    def sheet(self, name: str) -> Sheet:
        for sheet in self.sheets:
            if sheet.name.lower() == name.lower():
                return sheet
        raise KeyError(name)

    def formula_count(self) -> int:
        return sum(len(sheet.formulas) for sheet in self.sheets)
