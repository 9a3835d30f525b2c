"""How a sheet looks when opened or printed: number formats, column widths, notes,
where charts sit, the print set-up.

Everything here is decided from the plan and the engine's values at write time (the
cached values a reader sees first), so it applies to every sheet of every layout,
including sheets written by other builders. Nothing here changes a cell's content:
formulas, constants and their positions are the builders'.

Widths are measured in Excel's unit (the width of a digit). LibreOffice draws Calibri
with a wider fallback font (DejaVu Sans) and sizes its columns by that font's digits, so
text is measured with DejaVu Sans's advances, the wider of the two: a width that fits
there fits in Excel.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from xlgen.engine.book import ExcelError
from xlgen.formula import Expr

NUMERIC_STYLES = ("number", "weight", "general")
SCIENTIFIC = "0.000E+00"
INTEGER = "General"          # integers show as integers, and a later fraction still shows
GENERAL = "General"

# DejaVu Sans advance widths (units of 1/2048 em), ASCII 32..126; a digit is 1303.
_ADVANCES = (
    651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716, 1087,
    2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604, 604, 1343, 1141, 1767, 1532, 1612,
    1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690, 799, 1716, 1024,
    1024, 1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569, 1995, 1298, 1253,
    1300, 1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1303, 690, 1303, 1716)
_DIGIT = 1303
BOLD = 1.1
PADDING = 1.5                 # units beside the text: the cell's margins
MIN_WIDTH, MAX_WIDTH = 4.0, 60.0
DEFAULT_WIDTH = 8.43          # Excel's, for columns nothing sets
DEFAULT_ROW_POINTS = 15.0
NOTE_WIDTH = 110.0            # units a note is wrapped to (about 110 digits)


def text_units(text: str, bold: bool = False) -> float:
    """Width of `text` in digit widths, in DejaVu Sans (wider than Calibri)."""
    total = 0
    for char in text:
        code = ord(char)
        total += _ADVANCES[code - 32] if 32 <= code < 127 else 1.2 * _DIGIT
    return total / _DIGIT * (BOLD if bold else 1.0)


# --- number formats -----------------------------------------------------------------------

def is_number(value) -> bool:
    kind = type(value)
    return (kind is float or kind is int) and value - value == 0


def fitted_format(values: list, weight: bool = False) -> str:
    """One number format for a column's numbers, fitted to their magnitudes: integers as
    integers (General), scientific when any passes 1e9 or most are below 1e-4, otherwise
    fixed decimals enough for the largest to keep 5 significant digits (7 for weights,
    which change in the 5th) and for the small ones to keep 2."""
    return fitted_to_numbers(finite_numbers(values), weight)


def fitted_to_numbers(numbers: list, weight: bool = False) -> str:
    """fitted_format of numbers known to be finite floats."""
    magnitudes = sorted(map(abs, numbers))
    magnitudes = magnitudes[bisect.bisect_right(magnitudes, 0.0):]    # the zeros left out
    if not magnitudes:
        return INTEGER
    largest = magnitudes[-1]
    if largest >= 1e9:
        return SCIENTIFIC
    if all(map(float.is_integer, numbers)):
        return INTEGER
    typical = magnitudes[len(magnitudes) // 2]
    small = magnitudes[len(magnitudes) // 10]
    if typical < 1e-4:
        return SCIENTIFIC
    significant = 7 if weight else 5
    lead = math.floor(math.log10(largest))
    decimals = max(significant - 1 - lead, 1 - math.floor(math.log10(max(small, 1e-4))), 0)
    if decimals > 8 or lead + 1 + decimals > 14:
        return SCIENTIFIC
    decimals = decimals_needed(numbers, decimals)
    return "#,##0" + ("." + "0" * decimals if decimals else "")


def decimals_needed(numbers: list, most: int) -> int:
    """The fewest decimals (up to `most`) that show every number exactly: 0.9 as 0.9, not
    0.90000; a computed column needs them all."""
    needed = 0
    for value in numbers:
        while needed < most and abs(round(value, needed) - value) > 1e-9 * max(1.0, abs(value)):
            needed += 1
        if needed == most:
            break
    return needed


def display(value, num_format: str) -> str:
    """The text a cell shows for `value` in `num_format` (the formats this module writes)."""
    if isinstance(value, ExcelError):
        return value.code
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    value = float(value)
    if not math.isfinite(value):
        return "#NUM!"
    if num_format in ("General", "", None):
        return general(value)
    if num_format == "0":
        return f"{value:.0f}"
    if "E+" in num_format:
        decimals = len(num_format.split(".")[1].split("E")[0]) if "." in num_format else 0
        return f"{value:.{decimals}E}"
    if num_format.startswith("#,##0") or num_format.startswith("0"):
        decimals = len(num_format.split(".")[1]) if "." in num_format else 0
        comma = "," if num_format.startswith("#,##") else ""
        return f"{value:{comma}.{decimals}f}"
    return general(value)


def general(value: float) -> str:
    """Excel's General: up to 11 characters, scientific for very large or small numbers."""
    if value == 0:
        return "0"
    if 1e-9 <= abs(value) < 1e11:
        for digits in range(10, 0, -1):
            text = f"{value:.{digits}G}"
            if "E" not in text and len(text) <= 11:
                return text
    mantissa, exponent = f"{value:.5E}".split("E")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E{exponent[0]}{int(exponent[1:]):02d}"


# --- a sheet's look -----------------------------------------------------------------------

@dataclass
class Merge:
    """A note or banner wrapped in merged cells."""
    first_row: int
    first_col: int
    last_row: int
    last_col: int


@dataclass
class Look:
    """What the writer needs beyond the plan: per-cell number formats, widths, merges,
    row heights, chart positions (row, col, x offset, y offset) and print settings."""
    formats: dict = field(default_factory=dict)          # (row, col) of a numeric cell -> num_format
    widths: dict = field(default_factory=dict)           # col -> width
    merges: dict = field(default_factory=dict)           # (row, col) of a note -> Merge
    heights: dict = field(default_factory=dict)          # row -> points
    charts: list = field(default_factory=list)           # (row, col) anchors, in plan order
    print_area: tuple = (1, 1, 1, 1)
    scale: int = 100
    breaks: list = field(default_factory=list)           # rows a page starts at (1-based)
    repeat_row: int | None = None
    values: dict = field(default_factory=dict)           # (row, col) of a numeric formula cell -> its value


def cell_value(sheet_plan, values: dict, row: int, col: int):
    content = sheet_plan.cells[(row, col)].content
    if isinstance(content, Expr):
        return values.get((sheet_plan.name, row, col))
    return content


def numeric_kind(style: tuple) -> str | None:
    for name in style:
        if name in NUMERIC_STYLES:
            return name
    return None


def finite_numbers(values) -> list:
    """The finite numbers among `values` (booleans, text, errors and None left out)."""
    if not hasattr(values, "__len__"):
        values = list(values)
    floats = [value for value in values if type(value) is float and value - value == 0]
    if len(floats) == len(values):          # the usual column: every value a finite float
        return floats
    out = []
    for value in values:
        kind = type(value)
        if kind is float:
            if value - value == 0:          # not inf, not nan
                out.append(value)
        elif kind is int:
            out.append(float(value))
    return out


@dataclass
class Survey:
    """One pass over a sheet's cells: what each is, for the steps after."""
    groups: dict          # (col, numeric style, header row) -> {(row, col): value}
    others: list          # (row, col, entry) of cells in no numeric style
    notes: set            # cells in a note style
    headers: dict         # row -> header cells in it
    last_row: int = 1
    last_col: int = 1
    numbers: dict = field(default_factory=dict)   # group -> its finite numbers
    wrapped: list = field(default_factory=list)   # (row, col) of wrapped cells that are no note
    chosen: dict = field(default_factory=dict)    # group -> its fitted format
    blown_up: set = field(default_factory=set)    # groups with a number past 1e9
    values: dict = field(default_factory=dict)    # (row, col) of a numeric formula cell -> its value


def survey(sheet_plan, values: dict, note_styles: tuple, styles: dict | None = None) -> Survey:
    """Group a column's cells in one numeric style under one header (an epoch table and
    the rows below it, in the same column, get formats of their own)."""
    kinds = {}           # style -> (numeric kind, is a header, is a note, wraps)
    header_rows = {}     # col -> rows of its header cells
    by_kind = {}         # numeric kind -> col -> {(row, col): value}, split by header below
    others, notes, headers, wrapped = [], set(), {}, []
    formula_values = {}  # (row, col) -> value, kept for the writer (one look-up in the engine's dict)
    name = sheet_plan.name
    cells = sheet_plan.cells
    last_col = 1
    for cell, entry in cells.items():
        style = entry.style
        facts = kinds.get(style)
        if facts is None:
            facts = kinds[style] = _style_facts(style, note_styles, styles)
        kind, is_header, is_note, wraps = facts
        col = cell[1]
        if col > last_col:
            last_col = col
        if wraps:
            wrapped.append(cell)
        if kind is None:
            others.append((cell[0], col, entry))
            if is_note:
                notes.add(cell)
            if is_header:
                headers[cell[0]] = headers.get(cell[0], 0) + 1
                header_rows.setdefault(col, []).append(cell[0])
            continue
        if is_header:        # a numeric header (no such style today) heads its column too
            header_rows.setdefault(col, []).append(cell[0])
        content = entry.content
        if isinstance(content, Expr):
            value = formula_values[cell] = values.get((name, cell[0], col))
        else:
            value = content
        columns = by_kind.get(kind)
        if columns is None:
            columns = by_kind[kind] = {}
        group = columns.get(col)
        if group is None:
            group = columns[col] = {}
        group[cell] = value
    groups = {}
    for kind, columns in by_kind.items():
        for col, column in columns.items():
            _split_by_header(groups, col, kind, column, header_rows.get(col))
    last_row = max(cells)[0] if cells else 1
    return Survey(groups, others, notes, headers, last_row, last_col, wrapped=wrapped, values=formula_values)


def _style_facts(style: tuple, note_styles: tuple, styles: dict | None) -> tuple:
    """(numeric kind, is a header, is a note, wraps and is no plain note) of a style."""
    kind = numeric_kind(style)
    is_note = any(name in note_styles for name in style)
    wraps = styles is not None and any(styles.get(name, {}).get("text_wrap") for name in style)
    return kind, "header" in style, is_note, wraps and not (kind is None and is_note)


def _split_by_header(groups: dict, col: int, kind: str, column: dict, header_rows: list | None) -> None:
    """groups[(col, kind, header)]: the column's cells under each of its header rows
    (header 0: above them all, or a column without headers)."""
    if header_rows:
        header_rows.sort()
        low = bisect.bisect_right(header_rows, min(column)[0]) - 1
        # no header below the first cell (the usual column): none below the last either
        high = low if low == len(header_rows) - 1 else bisect.bisect_right(header_rows, max(column)[0]) - 1
        if low != high:          # cells under more than one header: walked down in row order
            at, group, next_row = low, None, None
            for cell in sorted(column):
                if group is None or cell[0] >= next_row:
                    while at + 1 < len(header_rows) and header_rows[at + 1] <= cell[0]:
                        at += 1
                    key = (col, kind, header_rows[at] if at >= 0 else 0)
                    group = groups.get(key)
                    if group is None:
                        group = groups[key] = {}
                    next_row = header_rows[at + 1] if at + 1 < len(header_rows) else math.inf
                group[cell] = column[cell]
            return
        header = header_rows[low] if low >= 0 else 0
    else:
        header = 0
    groups[(col, kind, header)] = column


def group_formats(found: Survey) -> dict:
    """(row, col) -> number format: each group's fitted format, fitted to its numbers below
    1e9; a number past 1e9 (a blow-up) in scientific in its own cell."""
    formats = {}
    for key, cells in found.groups.items():
        kind = key[1]
        numbers = found.numbers[key] = finite_numbers(cells.values())
        blown_up = bool(numbers) and (max(numbers) >= 1e9 or min(numbers) <= -1e9)
        ordinary = [v for v in numbers if abs(v) < 1e9] if blown_up else numbers
        chosen = found.chosen[key] = fitted_to_numbers(ordinary, weight=kind == "weight")
        formats.update(dict.fromkeys(cells, chosen))
        if blown_up:
            found.blown_up.add(key)
            for cell, value in cells.items():
                if type(value) in (int, float) and abs(value) >= 1e9:
                    formats[cell] = SCIENTIFIC
    return formats


def style_format(style: tuple, styles: dict) -> str:
    fmt = GENERAL
    for name in style:
        fmt = styles.get(name, {}).get("num_format", fmt)
    return fmt


def is_bold(style: tuple, styles: dict) -> bool:
    return any(styles.get(name, {}).get("bold") for name in style)


class ShownWidths(dict):
    """text_units(display(value, num_format), bold), remembered: a column shows the same
    few values many times."""

    def __call__(self, value, num_format: str, bold: bool = False) -> float:
        kind = type(value)
        if kind is float and value == 0:     # 0.0 and -0.0 are equal but show differently
            return text_units(display(value, num_format), bold)
        key = (kind, value, num_format, bold)
        try:
            return self[key]
        except KeyError:
            units = self[key] = text_units(display(value, num_format), bold)
            return units
        except TypeError:                    # an unhashable value
            return text_units(display(value, num_format), bold)


def column_widths(sheet_plan, values: dict, found: Survey, formats: dict, styles: dict) -> dict:
    """col -> width that shows every cell's formatted value whole. Numbers never spill:
    their column fits the longest (the largest and the most negative, in the column's
    fitted format; errors by their code). Text spills into an empty neighbour, so only
    text with a filled right neighbour counts; headers always do. Notes (wrapped in
    merged cells) do not count."""
    need = {}
    shown = ShownWidths()

    def fit(col, units):
        need[col] = max(need.get(col, MIN_WIDTH), min(units + PADDING, MAX_WIDTH))

    for key, column in found.groups.items():
        col = key[0]
        numbers = found.numbers[key]
        for value in set(column.values()) if len(numbers) < len(column) else ():
            if not (type(value) in (int, float) and value - value == 0) and value is not None:
                fit(col, shown(value, GENERAL))
        if not numbers:
            continue
        high, low = max(numbers), min(numbers)
        # those in the group's format
        ordinary = numbers if high < 1e9 and low > -1e9 else [v for v in numbers if abs(v) < 1e9]
        extremes = {high, low, *((max(ordinary), min(ordinary)) if ordinary else ())}
        chosen = found.chosen.get(key)
        if chosen is None or chosen == SCIENTIFIC or key in found.blown_up:
            measured = {}                          # format -> values (each distinct one measured once)
            for cell, value in column.items():     # a blow-up cell's own format, else the group's
                cell_format = formats[cell]
                if value in extremes or cell_format == SCIENTIFIC and type(value) in (int, float):
                    if cell_format in measured:
                        measured[cell_format].append(value)
                    else:
                        measured[cell_format] = [value]
            for cell_format, measured_values in measured.items():
                fit(col, widest(measured_values, cell_format, False, shown))
        else:                                      # every cell in the group's format
            matching = [value for value in column.values() if value in extremes]
            if matching:                           # (each distinct value measured once)
                fit(col, widest(matching, chosen, False, shown))
    name, cells = sheet_plan.name, sheet_plan.cells
    facts = {}
    shown_in = {}      # (col, num_format, bold) -> the values shown so in that column
    notes = found.notes
    for row, col, entry in found.others:
        if notes and (row, col) in notes:
            continue
        style = entry.style
        style_facts = facts.get(style)
        if style_facts is None:
            style_facts = facts[style] = (any(styles.get(name, {}).get("text_wrap") for name in style),
                                          "header" in style, style_format(style, styles), is_bold(style, styles))
        wraps, is_header, num_format, bold = style_facts
        if wraps:
            # wrapped text fits its column, not the other way round: the builder's width
            if col in sheet_plan.widths:
                need[col] = max(need.get(col, MIN_WIDTH), sheet_plan.widths[col])
            continue
        content = entry.content
        value = values.get((name, row, col)) if isinstance(content, Expr) else content
        if isinstance(value, str) and not is_header and (row, col + 1) not in cells:
            continue
        key = (col, num_format, bold)
        if key in shown_in:
            shown_in[key].append(value)
        else:
            shown_in[key] = [value]
    for (col, num_format, bold), shown_values in shown_in.items():
        fit(col, widest(shown_values, num_format, bold, shown))
    return {col: round(width, 2) for col, width in need.items()}


def widest(values: list, num_format: str, bold: bool, shown: ShownWidths) -> float:
    """The largest shown(value, num_format, bold) of `values` (some), each distinct value
    measured once: equal values of one type show alike, but for a zero's sign."""
    try:
        distinct = dict.fromkeys(zip(map(type, values), values))
    except TypeError:                        # an unhashable value
        return max(shown(value, num_format, bold) for value in values)
    units = max(shown(value, num_format, bold) for _kind, value in distinct)
    if (float, 0.0) in distinct:             # 0.0 and -0.0 are one key
        signs = {math.copysign(1.0, value) for value in values if type(value) is float and value == 0}
        units = max(units, *(shown(math.copysign(0.0, sign), num_format, bold) for sign in signs))
    return units


def column_pixels(width: float) -> int:
    """Excel's (and XlsxWriter's) pixel width of a column `width` digits wide (Calibri 11)."""
    if width < 1:
        return int(width * 12 + 0.5)
    return int(width * 7 + 0.5) + 5


class Grid:
    """Pixel geometry of a sheet from its widths and row heights."""

    def __init__(self, widths: dict, heights: dict):
        self.widths, self.heights = widths, heights

    def col_px(self, col: int) -> int:
        return column_pixels(self.widths.get(col, DEFAULT_WIDTH))

    def row_px(self, row: int) -> int:
        return int(self.heights.get(row, DEFAULT_ROW_POINTS) * 4 / 3 + 0.5)

    def cols_spanned(self, col: int, pixels: int) -> int:
        """The last column an object `pixels` wide starting at `col` reaches."""
        while pixels > self.col_px(col):
            pixels -= self.col_px(col)
            col += 1
        return col

    def rows_spanned(self, row: int, pixels: int) -> int:
        while pixels > self.row_px(row):
            pixels -= self.row_px(row)
            row += 1
        return row


def wrap_notes(sheet_plan, values: dict, widths: dict, styles: dict, notes: set,
               last_col: int | None = None) -> tuple[dict, dict]:
    """Each note (or banner) in a merged, wrapped block: rightwards over empty cells up to
    about NOTE_WIDTH digits, downwards over empty rows as the text needs, rows made taller
    when those are not enough. Returns (merges, row heights)."""
    cells = sheet_plan.cells
    taken = _Taken(cells)
    merges, heights = {}, {}
    # a note stays within the columns the sheet uses (cells and charts), so it does not
    # widen the printed page, unless that leaves it narrower than 40 digits
    grid = Grid(widths, {})
    right = last_col if last_col is not None else max((c for _r, c in cells), default=1)
    for chart in sheet_plan.charts:
        right = max(right, grid.cols_spanned(chart.anchor[1], chart.size[0]))
    for row, col in sorted(notes):
        text = cells[(row, col)].content
        bold = is_bold(cells[(row, col)].style, styles)
        units = text_units(str(text), bold)
        last_col, span = col, column_units(widths, col)
        target = min(NOTE_WIDTH, units + PADDING)
        while (span < target and (row, last_col + 1) not in taken and last_col - col < 40
               and (last_col + 1 <= right or span < 40)):
            last_col += 1
            span += column_units(widths, last_col)
        if span < target * 0.6 and span < 40:      # too narrow a gap: widen the note's columns
            extra = (min(target, 40) - span) / (last_col - col + 1)
            for c in range(col, last_col + 1):
                widths[c] = widths.get(c, DEFAULT_WIDTH) + extra
            span = min(target, 40)
        lines = max(1, math.ceil(units / max(span - PADDING, 1) * 1.08))
        last_row = row
        while last_row - row + 1 < lines and all((last_row + 1, c) not in taken for c in range(col, last_col + 1)):
            last_row += 1
        rows = last_row - row + 1
        if rows < lines:
            points = math.ceil(lines * DEFAULT_ROW_POINTS / rows)
            for r in range(row, last_row + 1):
                heights[r] = max(heights.get(r, DEFAULT_ROW_POINTS), points)
        merges[(row, col)] = Merge(row, col, last_row, last_col)
        taken.merged.update((r, c) for r in range(row, last_row + 1) for c in range(col, last_col + 1))
    return merges, heights


class _Taken:
    """Cells with content, and cells merged into a note."""

    def __init__(self, cells: dict):
        self.cells, self.merged = cells, set()

    def __contains__(self, cell) -> bool:
        return cell in self.cells or cell in self.merged


def column_units(widths: dict, col: int) -> float:
    return widths.get(col, DEFAULT_WIDTH)


def place_charts(sheet_plan, grid: Grid, merges: dict, repeat: int | None = None) -> list:
    """(row, col) for each chart: its planned anchor, moved right past any cell, note or
    chart it would cover; charts planned side by side in one row sit next to each other
    (planned columns assume the old widths). A chart that would cover the row printed atop
    every page (`repeat`) starts below it: printers repeat what lies over that row too."""
    occupied = _Taken(sheet_plan.cells)
    for merge in merges.values():
        occupied.merged.update((r, c) for r in range(merge.first_row, merge.last_row + 1)
                        for c in range(merge.first_col, merge.last_col + 1))
    placed = []
    previous = None                     # (planned anchor, last column) of the chart before
    for chart in sheet_plan.charts:
        row, col = chart.anchor
        if previous and previous[0][0] == row and previous[0][1] < col:
            col = previous[1] + 1
        if repeat and row <= repeat <= grid.rows_spanned(row, chart.size[1]):
            row = repeat + 1
        for _attempt in range(200):
            last_col = grid.cols_spanned(col, chart.size[0])
            last_row = grid.rows_spanned(row, chart.size[1])
            blocking = [c for r in range(row, last_row + 1) for c in range(col, last_col + 1) if (r, c) in occupied]
            if not blocking:
                break
            col = max(blocking) + 1
        placed.append((row, col))
        previous = (chart.anchor, last_col)
        occupied.merged.update((r, c) for r in range(row, last_row + 1) for c in range(col, last_col + 1))
    return placed


# --- printing -----------------------------------------------------------------------------

# The printable area of a landscape page, the smaller of A4 and Letter each way, inside
# the margins below; in pixels at 96 per inch (Excel's 100%).
MARGINS = {"left": 0.4, "right": 0.4, "top": 0.65, "bottom": 0.6}
HEADER_MARGIN, FOOTER_MARGIN = 0.25, 0.25
PAGE_WIDTH_PX = (11.0 - MARGINS["left"] - MARGINS["right"]) * 96
PAGE_HEIGHT_PX = (8.27 - MARGINS["top"] - MARGINS["bottom"]) * 96
FILL = 0.95                   # leave room for a renderer's rounding
# LibreOffice sizes a column by its font's digit: with DejaVu Sans for Calibri that is
# 9.33 px, not Excel's 7, and the charts anchored to those cells grow with them. Pages are
# fitted to the wider of the two, so neither spills onto a second page across.
PRINT_WIDTH_FACTOR = 9.4 / 7


def print_layout(sheet_plan, grid: Grid, charts: list, merges: dict, repeat: int | None,
                 last_row: int, last_col: int) -> tuple:
    """(print area, scale, page-start rows, repeated header row): one page wide; pages
    broken between rows so no chart is cut; the table's header row repeated."""
    spans = []
    if sheet_plan.print_columns is not None:
        last_col = min(last_col, sheet_plan.print_columns)
    for (row, col), chart in zip(charts, sheet_plan.charts):
        chart_last_row = grid.rows_spanned(row, chart.size[1])
        last_row = max(last_row, chart_last_row + 1)
        last_col = max(last_col, grid.cols_spanned(col, chart.size[0]))
        spans.append((row, chart_last_row))
    for merge in merges.values():
        last_col = max(last_col, merge.last_col)
        spans.append((merge.first_row, merge.last_row))
    for _row, _first_col, merged_last_col in sheet_plan.merges:   # the builder's own (one row each)
        last_col = max(last_col, merged_last_col)
    width = sum(grid.col_px(c) for c in range(1, last_col + 1)) * PRINT_WIDTH_FACTOR
    scale = max(10, min(100, int(100 * PAGE_WIDTH_PX * FILL / width)))
    height = sum(grid.row_px(r) for r in range(1, last_row + 1))
    one_page = int(100 * PAGE_HEIGHT_PX * FILL / height)
    if one_page >= 0.85 * scale:       # a little too long for one page: shrink it onto one
        scale = max(10, min(scale, one_page))
    page_px = PAGE_HEIGHT_PX * FILL * 100 / scale
    breaks, start = [], 1
    repeat_px = grid.row_px(repeat) if repeat else 0
    while True:
        room = page_px - (repeat_px if breaks and repeat and repeat < start else 0)
        row, used = start, 0
        while row <= last_row and used + grid.row_px(row) <= room:
            used += grid.row_px(row)
            row += 1
        if row > last_row:
            break
        # `row` would start the next page: not inside a chart or note
        for first, last in sorted(spans):
            if first < row <= last and first > start:
                row = first
        breaks.append(row)
        start = row
    return (1, 1, last_row, last_col), scale, breaks, repeat


def header_row(sheet_plan, headers: dict | None = None) -> int | None:
    """The row with the most header cells (3 or more): the main table's header, repeated
    on each page."""
    if headers is None:
        headers = {}
        for (row, _col), entry in sheet_plan.cells.items():
            if "header" in entry.style:
                headers[row] = headers.get(row, 0) + 1
    if not headers:
        return None
    most = max(headers.values())
    return min(row for row, n in headers.items() if n == most) if most >= 3 else None


def sheet_look(sheet_plan, values: dict, styles: dict, note_styles: tuple = ("note", "banner", "prose")) -> Look:
    found = survey(sheet_plan, values, note_styles, styles)
    formats = group_formats(found)
    widths = column_widths(sheet_plan, values, found, formats, styles)
    merges, heights = wrap_notes(sheet_plan, values, widths, styles, found.notes, found.last_col)
    wrapped_heights(sheet_plan, values, widths, styles, found.notes, heights, found.wrapped)
    repeat = header_row(sheet_plan, found.headers)
    grid = Grid(widths, heights)
    charts = place_charts(sheet_plan, grid, merges, repeat)
    area, scale, breaks, repeat = print_layout(sheet_plan, grid, charts, merges, repeat, found.last_row,
                                               found.last_col)
    return Look(formats, widths, merges, heights, charts, area, scale, breaks, repeat, found.values)


def wrapped_heights(sheet_plan, values: dict, widths: dict, styles: dict, notes: set, heights: dict,
                    wrapped: list | None = None) -> None:
    """Rows tall enough for their wrapped (not note) cells, across a builder's merge where
    the cell starts one: set here, so the page breaks planned are the ones printed (a
    spreadsheet would grow such rows on its own, past the plan). `wrapped`: those cells,
    if the survey found them."""
    merged_to = {(row, first): last for row, first, last in sheet_plan.merges}
    if wrapped is None:
        wrapped = [cell for cell, entry in sheet_plan.cells.items()
                   if cell not in notes and any(styles.get(name, {}).get("text_wrap") for name in entry.style)]
    for row, col in wrapped:
        entry = sheet_plan.cells[(row, col)]
        span = sum(column_units(widths, c) for c in range(col, merged_to.get((row, col), col) + 1))
        units = text_units(str(cell_value(sheet_plan, values, row, col)), is_bold(entry.style, styles))
        lines = max(1, math.ceil(units / max(span - PADDING, 1) * 1.08))
        if lines > 1:
            heights[row] = max(heights.get(row, DEFAULT_ROW_POINTS), lines * DEFAULT_ROW_POINTS)


def charts_area(sheet_plan, look: Look) -> tuple:
    """The cells under a sheet's charts and the scale that prints them on one page (a
    single cell for a sheet without charts)."""
    if not sheet_plan.charts:
        return (1, 1, 1, 1), 100
    grid = Grid(look.widths, look.heights)
    first_row = min(row for row, _col in look.charts)
    first_col = min(col for _row, col in look.charts)
    last_row = max(grid.rows_spanned(row, chart.size[1]) for (row, _col), chart in zip(look.charts, sheet_plan.charts))
    last_col = max(grid.cols_spanned(col, chart.size[0]) for (_row, col), chart in zip(look.charts, sheet_plan.charts))
    width = sum(grid.col_px(c) for c in range(first_col, last_col + 1)) * PRINT_WIDTH_FACTOR
    height = sum(grid.row_px(r) for r in range(first_row, last_row + 1))
    scale = max(10, min(100, int(100 * FILL * min(PAGE_WIDTH_PX / width, PAGE_HEIGHT_PX / height))))
    return (first_row, first_col, last_row, last_col), scale
