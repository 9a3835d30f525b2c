"""What a builder produces: cells, names, charts and looks, before any file exists.

A plan holds formulas as expression trees (xlgen.formula), never as computed numbers:
the cached values written beside them come from the engine, so the builders cannot
smuggle in hand-computed results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import NamedTuple

from xlgen.engine.book import Book, Sheet
from xlgen.formula import Expr, Range, Ref, Rendered


@dataclass
class Series:
    name: str
    values: Range
    categories: Range | None = None
    secondary: bool = False   # plot against a second y axis on the right
    dash: str | None = None   # a line style (XlsxWriter's dash_type), to tell apart lines that may meet
    width: float | None = None   # line width in points (default: by the number of points)
    transparency: int = 0        # percent: a wide line that others may run over, seen through


@dataclass
class Chart:
    kind: str                 # "line" or "scatter"
    title: str
    series: list[Series]
    anchor: tuple[int, int]   # (row, col) of the top-left cell
    x_title: str = ""
    y_title: str = ""
    log_y: bool = False
    size: tuple[int, int] = (560, 320)
    log_x: bool = False       # a logarithmic x axis (scatter charts: x is a value axis)
    y2_title: str = ""        # title of the secondary y axis, when a series uses it
    # log axes are drawn only where the values span decades (xlgen.writer decides from the
    # cached values); log_x/log_y say a log axis is wanted then


@dataclass
class Highlight:
    """Conditional formatting: cells in `area` take `style` where `rule` (relative to the
    area's top-left cell) is true."""
    area: Range
    rule: Expr
    style: str


@dataclass
class ColorScale:
    """A heat map: cells in `area` shaded from `low` (smallest value) to `high` (largest)."""
    area: Range
    low: str = "#FCFCFF"
    high: str = "#F8696B"


class Entry(NamedTuple):
    """A cell of a plan (a tuple: hundreds of thousands are made per build)."""
    content: object           # a constant (number, text, bool) or an Expr
    style: tuple = ()


_new_entry = tuple.__new__     # an Entry without NamedTuple's Python-level __new__


@dataclass
class SheetPlan:
    name: str
    cells: dict = field(default_factory=dict)        # (row, col) -> Entry
    names: dict = field(default_factory=dict)        # sheet-scoped name -> Ref | Range
    widths: dict = field(default_factory=dict)       # col -> width in characters
    freeze: tuple[int, int] | None = None            # rows, cols kept in view
    charts: list[Chart] = field(default_factory=list)
    highlights: list[Highlight] = field(default_factory=list)
    color_scales: list[ColorScale] = field(default_factory=list)
    comments: dict = field(default_factory=dict)     # (row, col) -> text of a cell note
    links: dict = field(default_factory=dict)        # (row, col) of a text cell -> sheet it links to
    merges: list = field(default_factory=list)       # (row, first col, last col): one cell across columns
    title: str = ""                                  # what the sheet shows, in the printed page header
    # the last column a printed page shows, besides its charts (None: every used column); a
    # table of every step's parameters, hundreds of columns wide, stays on the screen
    print_columns: int | None = None

    def put(self, row: int, col: int, content, *style: str) -> None:
        self.cells[(row, col)] = _new_entry(Entry, (content, style))

    def put_column(self, rows, col: int, contents, *style: str) -> None:
        """`put` down a column: contents[i] at (rows[i], col), in that order."""
        self.cells.update(zip(zip(rows, repeat(col)), map(_new_entry, repeat(Entry), zip(contents, repeat(style)))))

    def name_cell(self, name: str, row: int, col: int, content, *style: str) -> Ref:
        """An input cell with a sheet-scoped name, so formulas and Name Manager say what it is."""
        self.put(row, col, content, "input", *style)
        self.names[name] = Ref(row, col, self.name, True, True)
        return Ref(row, col)

    def ref(self, row: int, col: int, **fixed) -> Ref:
        return Ref(row, col, **fixed)


@dataclass
class WorkbookPlan:
    title: str
    description: str
    sheets: list[SheetPlan] = field(default_factory=list)
    # workbook-scoped names: name -> (Expr, comment)
    names: dict = field(default_factory=dict)

    def add_sheet(self, name: str, first: bool = False) -> SheetPlan:
        sheet = SheetPlan(name)
        self.sheets.insert(0, sheet) if first else self.sheets.append(sheet)
        return sheet

    def to_book(self, progress=None) -> Book:
        """The engine's view: formula text exactly as it will be stored in the file.
        progress(done, total, "preparing") after each sheet, if given."""
        book = Book()
        for number, plan in enumerate(self.sheets):
            if progress is not None:
                progress(number, len(self.sheets), "preparing")
            sheet = Sheet(plan.name)
            formulas, constants = sheet.formulas, sheet.constants
            for cell, entry in plan.cells.items():
                content = entry.content
                kind = type(content)
                if kind is Rendered:                   # a RowTemplate's row: its text, made already
                    formulas[cell] = content.rendered
                elif kind is float:
                    constants[cell] = content
                elif isinstance(content, Expr):
                    formulas[cell] = content.text()    # formula(content) without its "="
                elif isinstance(content, (int, float)) and kind is not bool:
                    constants[cell] = float(content)
                else:
                    constants[cell] = content
            book.sheets.append(sheet)
            for name, target in plan.names.items():
                book.names[(plan.name, name.upper())] = target.text()
        if progress is not None:
            progress(len(self.sheets), len(self.sheets), "preparing")
        for name, (expr, comment) in self.names.items():
            book.names[(None, name.upper())] = expr.text()
            book.name_comments[(None, name.upper())] = comment
        return book
