"""The neutral workbook model: what a file holds, before any calculation.

Both the xlsx reader and the sheet builders produce a Book, so one engine computes the
cached values we write and recomputes the files we verify.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExcelError:
    """An Excel error value such as #NUM! or #DIV/0!; equal when the codes are equal."""

    code: str

    def __str__(self) -> str:
        return self.code


Cell = tuple[int, int]  # (row, col), both 1-based


@dataclass
class Sheet:
    name: str
    # constants: float | str | bool | ExcelError; formulas: text without the leading '=',
    # exactly as stored (with _xlfn./_xlpm. prefixes), shared formulas already expanded.
    constants: dict[Cell, object] = field(default_factory=dict)
    formulas: dict[Cell, str] = field(default_factory=dict)
    # cached values of formula cells, where the file has them (a built Book has none)
    cached: dict[Cell, object] = field(default_factory=dict)
    # array formulas (t="array"): anchor cell -> the range it fills, e.g. "A1:C3"
    array_refs: dict[Cell, str] = field(default_factory=dict)


@dataclass
class Book:
    sheets: list[Sheet] = field(default_factory=list)
    # defined names: (sheet name for a sheet-scoped name or None, NAME in upper case) -> text
    # e.g. ("basic", "LEARNING_RATE") -> "basic!$F$1"; (None, "AVERAGE_GRAD") -> "_xlfn.LAMBDA(...)"
    names: dict[tuple[str | None, str], str] = field(default_factory=dict)
    name_comments: dict[tuple[str | None, str], str] = field(default_factory=dict)
    # facts about the file the reader noticed (e.g. "macros ignored"), for the report
    notes: list[str] = field(default_factory=list)

    def sheet(self, name: str) -> Sheet:
        for sheet in self.sheets:
            if sheet.name.lower() == name.lower():
                return sheet
        raise KeyError(name)

    def formula_count(self) -> int:
        return sum(len(sheet.formulas) for sheet in self.sheets)
