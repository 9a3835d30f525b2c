"""Write a plan to .xlsx with XlsxWriter: every formula with its cached value.

Cached values let numbers show where nothing recalculates (Protected View, previews,
pandas). The file is written to a temporary name in the target folder and renamed into
place, so an interrupted build never leaves a half-written file where the old one was.
Same plan, same bytes: document dates are fixed and the zip entries carry no clock time.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import io
import math
import os
import re
import secrets
import stat
import zipfile
from pathlib import Path

import xlsxwriter
from xlsxwriter.packager import Packager
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import (CellBlankTuple, CellFormulaTuple, CellNumberTuple, CellStringTuple,
                                  Worksheet)

from xlgen.engine.book import ExcelError
from xlgen.errors import XlgenError
from xlgen.formula import Expr, Range, Rendered, formula
from xlgen.look import charts_area, FOOTER_MARGIN, HEADER_MARGIN, MARGINS, is_number, sheet_look
from xlgen.sheets.plan import WorkbookPlan

def number_text(value) -> str:
    """A constant as the file holds it: XlsxWriter's 16 significant digits, or 17 where
    16 would round it (0.17956720059605877 is not 0.1795672005960588), so the file holds
    the very number the cached values were computed from."""
    text = f"{value:.16G}"
    if float(text) != value:
        text = f"{value:.17G}"
    return text


FIXED_DATE = datetime.datetime(2024, 1, 1)
_NEEDS_ESCAPE = re.compile(r"[&<>]")

STYLES = {
    "header": {"bold": True, "bottom": 1, "align": "center", "bg_color": "#DDEBF7"},
    "label": {"italic": True, "font_color": "#404040"},
    "input": {"bold": True, "bg_color": "#FFF2CC", "border": 1, "num_format": "General"},
    "number": {"num_format": "#,##0.0000"},
    "weight": {"num_format": "0.000000"},
    "count": {"num_format": "0", "align": "center"},
    "epoch_start": {"top": 2, "top_color": "#2F5597"},
    "pass": {"bold": True, "font_color": "#006100", "bg_color": "#C6EFCE"},
    "blowup": {"font_color": "#9C0006", "bg_color": "#FFC7CE"},
    "dead": {"font_color": "#7F6000", "bg_color": "#FFEB9C"},
    # numbers that may grow without bound (1E+32 stays readable where #,##0.0000 is ###)
    "general": {"num_format": "General"},
    # a cell of a heat map (an image, a feature map): one decimal, small and centred
    "map": {"num_format": "0.0", "font_size": 8, "align": "center"},
    # the about sheet
    "title": {"bold": True, "font_size": 14},
    "section": {"bold": True, "font_size": 12, "font_color": "#2F5597"},
    "wrap": {"text_wrap": True, "valign": "top"},
    # running text wrapped in a merged block across the sheet's columns by xlgen.look
    "prose": {"text_wrap": True, "valign": "top"},
    "link": {"font_color": "#0563C1", "underline": 1, "valign": "top"},
    "value": {"bold": True, "num_format": "General", "align": "left", "valign": "top"},
    # wrapped in merged cells by xlgen.look
    "note": {"italic": True, "font_color": "#404040", "text_wrap": True, "valign": "top"},
    "banner": {"bold": True, "font_color": "#9C0006", "bg_color": "#FFC7CE", "border": 1, "text_wrap": True,
               "valign": "top"},
}


class Formats:
    """One XlsxWriter format per combination of style names (and fitted number format),
    made on first use."""

    def __init__(self, workbook):
        self.workbook = workbook
        self.cache = {}

    def get(self, style: tuple, num_format: str | None = None):
        if not style and num_format is None:
            return None
        key = (style, num_format)
        if key not in self.cache:
            properties = {}
            for name in style:
                properties.update(STYLES[name])
            if num_format is not None:
                properties["num_format"] = num_format
            self.cache[key] = self.workbook.add_format(properties)
        return self.cache[key]


class PreparedWorksheet(Worksheet):
    """Formula text arrives with every prefix already in place (xlgen.formula is the one
    place that adds them), so XlsxWriter's own regex pass over each formula — most of a
    large build's time, and wrong for SINGLE — is skipped."""

    written = None   # called once this sheet's XML is assembled (the writing progress)

    def _assemble_xml_file(self):
        super()._assemble_xml_file()
        if self.written is not None:
            self.written()

    def _prepare_formula(self, formula, expand_future_functions=False):
        return formula[1:] if formula.startswith("=") else formula

    # row -> (first col, last col, XML of the cells xlgen rendered itself (_write_cells): one
    # text, or (col, XML) of each where XlsxWriter's table holds others of the row; their cols)
    xml_rows = None
    rendered_value = None   # (row, col) of a rendered cell -> its value as a chart's cache takes it

    def _get_range_data(self, row_start, col_start, row_end, col_end):
        """XlsxWriter's data for a chart's cache, from its table and xlgen's rendered cells
        alike (a row with neither is one None, as XlsxWriter has it)."""
        rendered = self.xml_rows
        if not rendered:
            return super()._get_range_data(row_start, col_start, row_end, col_end)
        data, table, rendered_value = [], self.table, self.rendered_value
        for row_num in range(row_start, row_end + 1):
            in_table = table.get(row_num)
            if row_num not in rendered and row_num not in table:
                data.append(None)
                continue
            for col_num in range(col_start, col_end + 1):
                if in_table and col_num in in_table:
                    data.extend(super()._get_range_data(row_num, col_num, row_num, col_num))
                elif row_num in rendered and col_num in rendered[row_num][3]:
                    data.append(rendered_value(row_num, col_num))
                else:
                    data.append(None)
        return data

    def rows_by_xlgen(self) -> bool:
        """Whether xlgen writes this sheet's rows: nothing set that changes a cell's XML
        (row or column formats, other options); else XlsxWriter writes them wholly."""
        return not (self.constant_memory or self.excel_version != 2007
                    or self.default_row_height != self.original_row_height
                    or any(info.row_format for info in self.row_info.values())
                    or any(info.column_format is not None for info in self.col_info.values()))

    def _calculate_spans(self):
        """XlsxWriter's `spans` of each block of 16 rows (the first and last column used),
        from each row's own cells instead of a scan of every column of every row."""
        spans = {}
        span_min = span_max = None
        first_col, last_col = self.dim_colmin, self.dim_colmax
        table, comments, rendered = self.table, self.comments, self.xml_rows or {}
        for row_num in range(self.dim_rowmin, self.dim_rowmax + 1):
            ends = rendered.get(row_num)
            for cols in (table.get(row_num), comments.get(row_num), ends and ends[:2]):
                if not cols:
                    continue
                low, high = min(cols), max(cols)
                if low < first_col or high > last_col:   # XlsxWriter counts columns within the dimensions
                    inside = [col for col in cols if first_col <= col <= last_col]
                    if not inside:
                        continue
                    low, high = min(inside), max(inside)
                if span_min is None:
                    span_min, span_max = low, high
                else:
                    span_min, span_max = min(span_min, low), max(span_max, high)
            if (row_num + 1) % 16 == 0 or row_num == self.dim_rowmax:
                if span_min is not None:
                    spans[row_num // 16] = f"{span_min + 1}:{span_max + 1}"
                    span_min = None
        self.row_spans = spans

    def _write_rows(self):
        """XlsxWriter's <row> and <c> elements, the same XML, a row at a time: the cells
        _write_cells rendered already, and each row's other cells in column order (not a
        scan of every column), the common ones (numbers, shared strings, blanks, formulas
        with their cached values) written here, anything else by XlsxWriter. Sheets with
        row or column formats, or other options that change a cell's XML, are left wholly
        to XlsxWriter."""
        if not self.rows_by_xlgen():
            if self.xml_rows:
                raise XlgenError(f"sheet {self.name}: rendered rows in a sheet XlsxWriter must write")
            super()._write_rows()
            return
        self._calculate_spans()
        write, table, row_info, spans = self.fh.write, self.table, self.row_info, self.row_spans
        rendered = self.xml_rows or {}
        letters = {col: xl_col_to_name(col) for col in range(self.dim_colmin, self.dim_colmax + 1)}
        style = {None: ""}          # format -> its s="..." attribute, made in XlsxWriter's order
        for row_num in range(self.dim_rowmin, self.dim_rowmax + 1):
            cells = table.get(row_num)
            ready = rendered.get(row_num)
            span = spans.get(row_num // 16)
            if not cells and ready is None:
                if row_num in self.comments or row_num in row_info:
                    self._write_empty_row(row_num, span, row_info.get(row_num))
                continue
            if row_num in row_info:
                self._write_row(row_num, span, row_info[row_num])
                parts = []
            else:
                parts = [f'<row r="{row_num + 1}" spans="{span}">' if span else f'<row r="{row_num + 1}">']
            if not cells:               # xlgen's cells alone: their XML as it is
                parts.append(ready[2])
                parts.append("</row>")
                write("".join(parts))
                continue
            ready = dict(ready[2]) if ready is not None else {}
            number = str(row_num + 1)
            for col_num in sorted(cells.keys() | ready.keys()):
                if col_num in ready:
                    parts.append(ready[col_num])
                    continue
                cell = cells[col_num]
                cell_format = cell.format
                s = style.get(cell_format)
                if s is None:
                    s = style[cell_format] = f' s="{cell_format._get_xf_index()}"'
                kind = type(cell)
                if kind is CellFormulaTuple:
                    value = cell.value
                    value_type = type(value)
                    if value_type is float or value_type is int:
                        t = ""
                    elif value_type is bool:
                        t, value = ' t="b"', int(value)
                    elif value_type is str:
                        t = "" if value == "" else ' t="e"' if value in _ERROR_CODES else ' t="str"'
                        value = _escape(value)
                    else:
                        parts = self._write_other(parts, row_num, col_num, cell)
                        continue
                    text = cell.formula
                    if "&" in text or "<" in text or ">" in text:
                        text = _escape(text)
                    parts.append(f'<c r="{letters[col_num]}{number}"{s}{t}><f>{text}</f><v>{value}</v></c>')
                elif kind is CellNumberTuple:
                    parts.append(f'<c r="{letters[col_num]}{number}"{s}><v>{number_text(cell.number)}</v></c>')
                elif kind is CellStringTuple:
                    parts.append(f'<c r="{letters[col_num]}{number}"{s} t="s"><v>{cell.string}</v></c>')
                elif kind is CellBlankTuple:
                    parts.append(f'<c r="{letters[col_num]}{number}"{s}/>')
                else:
                    parts = self._write_other(parts, row_num, col_num, cell)
            parts.append("</row>")
            write("".join(parts))

    def _write_other(self, parts: list, row_num: int, col_num: int, cell) -> list:
        """A cell XlsxWriter writes itself, after the row's XML so far."""
        self.fh.write("".join(parts))
        super()._write_cell(row_num, col_num, cell)
        return []


_ERROR_CODES = frozenset(("#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"))


def _escape(text: str) -> str:
    """XlsxWriter's escaping of text inside an element (& < >; quotes stay)."""
    if _NEEDS_ESCAPE.search(text):
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text




class _Extent:
    """The first and last rows and columns of the cells stored straight into a sheet's
    table (rows arrive in order), marked as the sheet's extent at the end."""

    def __init__(self):
        self.first_row = self.last_row = None
        self.cols = set()       # the columns used (a set's add: no call of Python code per cell)

    def row(self, row: int) -> None:
        if self.first_row is None:
            self.first_row = row
        self.last_row = row

    def mark(self, worksheet) -> None:
        if self.first_row is None:
            return
        self.first_col, self.last_col = min(self.cols), max(self.cols)
        if (worksheet._check_dimensions(self.first_row - 1, self.first_col - 1)
                or worksheet._check_dimensions(self.last_row - 1, self.last_col - 1)):
            raise XlgenError(f"sheet {worksheet.name}: a cell beyond Excel's last row or column")


def cached_value(value):
    """The value XlsxWriter stores beside a formula: numbers, text, booleans or an error code."""
    if isinstance(value, ExcelError):
        return value.code
    if value is None:
        return 0
    return value


def write_workbook(plan: WorkbookPlan, book, values: dict, path: Path, force: bool = False,
                   progress=None, charts_only: bool = False) -> None:
    """Write `plan` to `path`: formula text from `book` (plan.to_book(), the text the
    engine computed), `values[(sheet, row, col)]` the engine's results. `charts_only`
    prints each sheet's charts alone on one page (a blank page for a sheet without),
    for pictures of them (scripts/screenshots)."""
    path = Path(path)
    if path.exists() and not force:
        raise XlgenError(f"{path} exists; use --force to replace it")
    if path.is_dir():
        raise XlgenError(f"{path} is a folder, not a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise XlgenError(f"folder {folder} does not exist")
    # the temporary file is made inside the try, so an interrupt at any instant removes
    # it; it takes the old file's permissions, or the umask's for a new file
    temporary = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    keep_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        if keep_mode is not None:
            os.chmod(temporary, keep_mode)
        _write(plan, book, values, str(temporary), progress, charts_only)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write(plan: WorkbookPlan, book, values: dict, filename: str, progress=None,
           charts_only: bool = False) -> None:
    comments = {name: comment for name, (_expr, comment) in plan.names.items() if comment}
    workbook = _StreamedWorkbook(filename, comments)
    workbook.set_properties({"title": plan.title, "subject": plan.description, "author": "xlgen",
                             "created": FIXED_DATE, "comments": "Built by xlgen; verify with `xlgen verify`."})
    formats = Formats(workbook)
    plan_cells = _CellsBySheet(plan)
    for sheet_plan, sheet in zip(plan.sheets, book.sheets):
        worksheet = workbook.add_worksheet(sheet_plan.name, worksheet_class=PreparedWorksheet)
        if progress is not None:
            worksheet.written = _sheet_written(progress, len(workbook.worksheets()), len(plan.sheets))
        look = sheet_look(sheet_plan, values, STYLES)
        formulas = sheet.formulas
        for col, width in sorted(look.widths.items()):
            worksheet.set_column(col - 1, col - 1, width)
        for row, points in sorted(look.heights.items()):
            worksheet.set_row(row - 1, points)
        if sheet_plan.freeze:
            worksheet.freeze_panes(*sheet_plan.freeze)
        for row, first_col, last_col in sheet_plan.merges:   # the first cell's content is written below
            entry = sheet_plan.cells.get((row, first_col))
            worksheet.merge_range(row - 1, first_col - 1, row - 1, last_col - 1, "",
                                  formats.get(entry.style) if entry else None)
        _write_cells(worksheet, sheet_plan, formulas, values, look, formats)
        for (row, col), text in sorted(sheet_plan.comments.items()):
            worksheet.write_comment(row - 1, col - 1, text, {"x_scale": 2, "y_scale": 1.5})
        for highlight in sheet_plan.highlights:
            worksheet.conditional_format(highlight.area.text(), {
                "type": "formula", "criteria": formula(highlight.rule),
                "format": formats.get((highlight.style,))})
        for scale in sheet_plan.color_scales:
            worksheet.conditional_format(scale.area.text(), {
                "type": "2_color_scale", "min_color": scale.low, "max_color": scale.high})
        # one colour per series name across a sheet's charts: "relu" is green in each
        series_names = list(dict.fromkeys(series.name for chart in sheet_plan.charts for series in chart.series))
        for chart_plan, (row, col) in zip(sheet_plan.charts, look.charts):
            worksheet.insert_chart(row - 1, col - 1, _chart(workbook, chart_plan, plan_cells, values, series_names),
                                   {"x_scale": chart_plan.size[0] / 480, "y_scale": chart_plan.size[1] / 288,
                                    "object_position": 3})
        for name, target in sorted(sheet_plan.names.items()):
            workbook.define_name(f"{sheet_plan.name}!{name}", "=" + target.text())
        _print_setup(worksheet, sheet_plan, look, plan.title, charts_only)
    for name, (expr, _comment) in sorted(plan.names.items()):
        workbook.define_name(name, formula(expr))
    workbook.close()
    # each XlsxWriter worksheet holds its workbook's bound add_format: a reference cycle,
    # which would keep every cell's tuple until the cyclic collector runs (paused for the
    # whole build) and then make it traverse them all; emptied here, they go at once
    for worksheet in workbook.worksheets():
        worksheet.table.clear()
        worksheet.xml_rows = worksheet.rendered_value = None


def _write_cells(worksheet, sheet_plan, formulas: dict, values: dict, look, formats: Formats) -> None:
    """The sheet's cells, a row at a time in (row, col) order. The common ones (plain
    formulas with their cached values, finite numbers, plain text) are rendered here as
    the <c> elements XlsxWriter would write, without a tuple per cell or a second pass
    over them; the rest (merges, links, booleans, dynamic-array formulas) go through
    XlsxWriter's own calls into its table, and the rows are joined in the file by column.

    XlsxWriter numbers formats (the s="..." of a cell) in the order the file first uses
    them; a format first used here takes its number at once, after every table cell
    before it has taken its own (_TableNumbering), so the numbers are the same."""
    if not worksheet.rows_by_xlgen():
        raise XlgenError(f"sheet {sheet_plan.name}: row or column formats, which xlgen does not write")
    name, cells, merges, links = sheet_plan.name, sheet_plan.cells, look.merges, sheet_plan.links
    numeric_formats, made = look.formats, formats.cache
    surveyed = look.values    # the engine's values of numeric formula cells, as the look read them
    table, strings = worksheet.table, worksheet.str_table
    shared_string = strings._get_shared_string_index
    extent = _Extent()
    numbering = _TableNumbering(table)
    chosen = {}          # (style, number format) -> (format, its s="..." attribute)
    letters = _CellStart()
    rendered = worksheet.xml_rows = {}
    worksheet.rendered_value = lambda row, col: _chart_value(cells, values, name, row + 1, col + 1)
    merged_rows = {row for row, _col in merges}
    row_parts = row_cols = None
    row_number = None    # the row being rendered
    number = ""          # its number as text
    in_table = None      # the table's cells of that row (a merge's blanks, XlsxWriter's cells)
    merged = False       # whether a note's merge starts in that row
    for cell in sorted(cells):     # (sorting the cells alone: their items sort at half the speed)
        row, col = cell
        if row != row_number:
            if row_parts:
                _end_row(rendered, table, row_number - 1, row_cols, row_parts, extent)
            row_number, number, row_parts, row_cols = row, str(row), [], []
            add_part, add_col = row_parts.append, row_cols.append
            in_table = table.get(row - 1)
            merged = row in merged_rows
        content, style = cells[cell]
        key = (style, numeric_formats.get(cell))
        found = chosen.get(key)
        if found is None:
            fmt = made[key] if key in made else formats.get(*key)
            found = chosen[key] = (fmt, "" if fmt is None else None)
        fmt, s = found       # s: None until a rendered cell first uses the format
        kind = type(content)
        if merged and cell in merges:
            pass
        elif kind is Rendered or (kind is not float and kind is not int and kind is not str
                                  and isinstance(content, Expr)):
            cached = surveyed.get(cell)
            if cached is None:
                cached = values[(name, row, col)]
            if type(cached) is float:
                value, t = cached, ""
            else:
                cached = cached_value(cached)
                value, t = _shown_value(cached)
            text = formulas[cell]
            if "_xlfn." in text or text[:1] == "{":   # dynamic arrays: XlsxWriter's own way
                worksheet.write_formula(row - 1, col - 1, text, fmt, cached)
                in_table = table.get(row - 1)
                continue
            if text[:1] == "=":
                text = text[1:]
            if t is None:          # a value of another type: stored as write_formula would, written by XlsxWriter
                in_table = table[row - 1]
                in_table[col - 1] = CellFormulaTuple(text, fmt, cached)
                extent.row(row)
                extent.cols.add(col)
                continue
            if "<" in text or ">" in text or "&" in text:
                text = _escape(text)
            if s is None:
                s = _first_use(chosen, key, numbering, row, col)
            add_part(f'{letters[col]}{number}"{s}{t}><f>{text}</f><v>{value}</v></c>')
            add_col(col - 1)
            if in_table:
                in_table.pop(col - 1, None)
            continue
        elif (kind is float or kind is int) and content - content == 0:
            text = f"{content:.16G}"          # number_text, inline
            if float(text) != content:
                text = f"{content:.17G}"
            if s is None:
                s = _first_use(chosen, key, numbering, row, col)
            add_part(f'{letters[col]}{number}"{s}><v>{text}</v></c>')
            add_col(col - 1)
            if in_table:
                in_table.pop(col - 1, None)
            continue
        elif kind is str and len(content) <= _SHORT_TEXT and cell not in links:
            if s is None:
                s = _first_use(chosen, key, numbering, row, col)
            add_part(f'{letters[col]}{number}"{s} t="s"><v>{shared_string(content)}</v></c>')
            add_col(col - 1)
            if in_table:
                in_table.pop(col - 1, None)
            continue
        _write_by_xlsxwriter(worksheet, sheet_plan, cell, content, fmt, merges)
        in_table = table.get(row - 1)
    if row_parts:
        _end_row(rendered, table, row_number - 1, row_cols, row_parts, extent)
    extent.mark(worksheet)
    numbering.rest()


# text XlsxWriter stores as it is (half its xls_strmax of UTF-16 units); longer text it
# measures, and cuts past 32,767 units: left to it
_SHORT_TEXT = 32767 // 2


def _shown_value(value) -> tuple:
    """A formula's cached value as its <v> holds it, and the cell's t="..." attribute
    (None: a value XlsxWriter writes itself)."""
    kind = type(value)
    if kind is float or kind is int:
        return value, ""
    if kind is bool:
        return int(value), ' t="b"'
    if kind is str:
        return _escape(value), "" if value == "" else ' t="e"' if value in _ERROR_CODES else ' t="str"'
    return value, None


def _chart_value(cells: dict, values: dict, name: str, row: int, col: int):
    """A rendered cell's value as XlsxWriter's table gives it to a chart's cache."""
    content = cells[(row, col)].content
    if isinstance(content, Expr):
        value = values[(name, row, col)]
        return value if type(value) is float else cached_value(value)
    if type(content) is str:
        return content
    return f"{content:.16g}"


class _CellStart(dict):
    """col -> the start of its cells' <c> element, up to the row number: '<c r="AB'."""

    def __missing__(self, col: int) -> str:
        start = self[col] = '<c r="' + xl_col_to_name(col - 1)
        return start


def _end_row(rendered: dict, table, row: int, cols: list, parts: list, extent) -> None:
    """Keep a row's rendered cells: one text, or each by column where the table holds
    others of the row (they are joined by column in the file)."""
    extent.row(row + 1)
    extent.cols.add(cols[0] + 1)
    extent.cols.add(cols[-1] + 1)
    if table.get(row):
        rendered[row] = (cols[0], cols[-1], list(zip(cols, parts)), cols)
    else:
        rendered[row] = (cols[0], cols[-1], "".join(parts), cols)


def _first_use(chosen: dict, key: tuple, numbering, row: int, col: int) -> str:
    """The s="..." of a format a rendered cell at (row, col) is the first to use: numbered
    now, after the formats of the table's cells before it."""
    fmt = chosen[key][0]
    numbering.before(row - 1, col - 1)
    s = f' s="{fmt._get_xf_index()}"'
    chosen[key] = (fmt, s)
    return s


class _TableNumbering:
    """Numbers the formats of the cells in XlsxWriter's table in the file's order, as
    XlsxWriter would on writing them, up to a point that only moves forward: cells are
    added to the table only at or after the cell being written."""

    def __init__(self, table):
        self.table = table
        self.row = self.col = 0      # the first (row, col) not numbered yet

    def before(self, row: int, col: int) -> None:
        """Number the formats of the cells before (row, col)."""
        for table_row in range(self.row, row + 1):
            self._number(table_row, col if table_row == row else None)
        self.row, self.col = row, col

    def rest(self) -> None:
        for table_row in sorted(table_row for table_row in self.table if table_row >= self.row):
            self._number(table_row, None)
        self.row, self.col = math.inf, 0

    def _number(self, table_row: int, end: int | None) -> None:
        table_cells = self.table.get(table_row)
        if not table_cells:
            return
        start = self.col if table_row == self.row else 0
        for table_col in sorted(table_cells):
            if end is not None and table_col >= end:
                break
            if table_col >= start:
                cell_format = table_cells[table_col].format
                if cell_format:
                    cell_format._get_xf_index()


def _write_by_xlsxwriter(worksheet, sheet_plan, cell, content, fmt, merges) -> None:
    """A cell xlgen does not render: a note's merge, a link, a boolean, long text. (A note
    that fits its own cell is written as it is: XlsxWriter drops a merge of one cell, and
    its text with it.)"""
    row, col = cell
    merge = merges.get(cell)
    if merge is not None and (merge.first_row, merge.first_col) != (merge.last_row, merge.last_col):
        worksheet.merge_range(merge.first_row - 1, merge.first_col - 1, merge.last_row - 1,
                              merge.last_col - 1, content, fmt)
    elif cell in sheet_plan.links:
        target = sheet_plan.links[cell].replace("'", "''")
        worksheet.write_url(row - 1, col - 1, f"internal:'{target}'!A1", fmt, string=content,
                            tip=f"Go to the sheet {sheet_plan.links[cell]}")
    elif isinstance(content, str):
        worksheet.write_string(row - 1, col - 1, content, fmt)
    elif isinstance(content, bool):
        worksheet.write_boolean(row - 1, col - 1, content, fmt)
    else:
        worksheet.write_number(row - 1, col - 1, content, fmt)


def _sheet_written(progress, number: int, count: int):
    """Sheet `number` of `count` is XML; after the last, the zip is compressed."""
    def written():
        progress(number, count, "writing")
        if number == count:
            progress(0, None, "compressing")
    return written


class _CellsBySheet:
    """(sheet, row, col) -> the plan's entry, for charts that draw another sheet's cells."""

    def __init__(self, plan):
        self.sheets = {sheet.name: sheet.cells for sheet in plan.sheets}

    def get(self, key):
        sheet, row, col = key
        return self.sheets.get(sheet, {}).get((row, col))


# The zip entries as XlsxWriter's own packaging writes them from its temporary files
# (made by mkstemp, dated 31 January 1980), so the bytes are the same as ever.
PART_DATE = (1980, 1, 31, 0, 0, 0)
PART_MODE = 0o100600 << 16
PART_CHUNK = 1 << 20        # characters gathered before they are compressed
# zlib's fastest level: a quarter of the default level's (6) time, for files about a fifth
# larger (the seven examples: 3.13 -> 3.74 MB; 0.40 -> 0.09 s of CPU)
PART_LEVEL = 1


class _StreamedWorkbook(xlsxwriter.Workbook):
    """An XlsxWriter workbook whose parts are compressed into `filename` as they are
    assembled, instead of each going to a temporary file that is then read back, zipped
    and removed, and the whole zip rewritten to add the names' comments."""

    def __init__(self, filename: str, name_comments: dict):
        # XlsxWriter's own zip receives no parts: it goes to a buffer and is dropped
        super().__init__(io.BytesIO(), {"strings_to_numbers": False, "strings_to_formulas": False,
                                        "strings_to_urls": False})
        self.target, self.name_comments = filename, name_comments

    def _get_packager(self):
        return _StreamingPackager(self.target, self.name_comments, self.allow_zip64)


class _StreamingPackager(Packager):
    """Each part XlsxWriter asks a file for is a zip entry written while XlsxWriter
    writes it; a part ends when the next begins (XlsxWriter writes them one at a time)."""

    def __init__(self, target: str, name_comments: dict, allow_zip64: bool):
        super().__init__()
        self.target, self.name_comments, self.allow_zip64 = target, name_comments, allow_zip64
        self.archive = self.part = None

    def _filename(self, xml_filename):
        self.part.finish()
        # xl/workbook.xml is held whole: the names' comments are added to its text
        transform = (lambda xml: _with_name_comments(xml, self.name_comments)) \
            if xml_filename == "xl/workbook.xml" and self.name_comments else None
        self.part = _ZipPart(self.archive, xml_filename, transform)
        self.filenames.append((self.part, xml_filename, False))
        return self.part

    def _create_package(self):
        self.archive = zipfile.ZipFile(self.target, "w", compression=zipfile.ZIP_DEFLATED,
                                       allowZip64=self.allow_zip64, compresslevel=PART_LEVEL)
        self.part = _NO_PART
        try:
            super()._create_package()
            self.part.finish()
            for part, name, _is_binary in self.filenames:
                if not isinstance(part, _ZipPart):   # images or macros: not written by xlgen
                    raise XlgenError(f"{name}: a part the streaming writer cannot store")
        except BaseException:
            # a failure, Ctrl-C or SIGTERM: the caller removes the file, so it need not be a
            # whole zip, only closed. An interrupt inside zipfile's own open() leaves it
            # marked as writing with no handle to close; closing must not raise over it.
            with contextlib.suppress(Exception):
                self.part.close_entry()
            self.archive._writing = False
            self.archive.close()
            raise
        self.part.close_entry()
        self.archive.close()
        return []      # nothing left for XlsxWriter's own zip


class _ZipPart(io.StringIO):
    """One part of the package: the text XlsxWriter writes, compressed into its zip entry
    a chunk at a time (so a large sheet is never held whole)."""

    def __init__(self, archive, name: str, transform=None):
        super().__init__()
        info = zipfile.ZipInfo(name, PART_DATE)
        info.external_attr = PART_MODE
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = PART_LEVEL     # what ZipFile.writestr sets from compresslevel
        self.stream = archive.open(info, "w")
        self.transform = transform
        self.pieces, self.size = [], 0

    def write(self, text):
        self.pieces.append(text)
        self.size += len(text)
        if self.size > PART_CHUNK and self.transform is None:
            self._compress()
        return len(text)

    def _compress(self):
        text = "".join(self.pieces)
        self.pieces, self.size = [], 0
        if self.transform is not None:
            text = self.transform(text)
        self.stream.write(text.encode("utf-8"))

    def finish(self):
        if not self.stream.closed:
            self._compress()
            self.stream.close()

    def close_entry(self):
        self.stream.close()


class _NoPart:
    def finish(self):
        pass

    def close_entry(self):
        pass


_NO_PART = _NoPart()


def _with_name_comments(xml: str, comments: dict) -> str:
    for name, comment in sorted(comments.items()):
        # the workbook-level name: no localSheetId among its attributes
        pattern = re.compile(r'<definedName name="' + re.escape(name) + r'"(?=[^>]*>)(?![^>]*localSheetId)')
        attribute = ' comment="' + html.escape(comment, quote=False).replace('"', "&quot;") + '"'
        xml, count = pattern.subn(lambda match: match.group(0) + attribute, xml, count=1)
        if count != 1:
            raise XlgenError(f"defined name {name} is missing from xl/workbook.xml")
    return xml


# Okabe and Ito's colour-blind-safe palette (no yellow: it vanishes on white), and a
# marker per series, so every line reads on a projector and in grey print.
SERIES_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#7F7F7F")
SERIES_MARKERS = ("circle", "square", "diamond", "triangle", "x", "star", "plus", "circle")


def _range_values(range_: "Range", plan_cells: dict, values: dict) -> list:
    """The cached values a chart series draws (a one-row or one-column range)."""
    sheet = range_.first.sheet
    out = []
    for row in range(range_.first.row, range_.last.row + 1):
        for col in range(range_.first.col, range_.last.col + 1):
            entry = plan_cells.get((sheet, row, col))
            if entry is None:
                continue
            value = values.get((sheet, row, col)) if isinstance(entry.content, Expr) else entry.content
            if is_number(value):
                out.append(float(value))
    return out


def _axis(title: str, numbers: list, log_wanted: bool) -> dict:
    """Axis options: a log scale only where the values span at least two decades and are
    all positive, whole decades as its ends (so no point sits on the edge); numbers in a
    format fitted to their size."""
    axis = {"name": title, "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}}
    positive = [v for v in numbers if v > 0]
    if log_wanted and positive and len(positive) == len(numbers) and max(positive) / min(positive) >= 100:
        axis["log_base"] = 10
        axis["min"] = 10.0 ** math.floor(math.log10(min(positive)))
        axis["max"] = 10.0 ** math.ceil(math.log10(max(positive) * 1.5))
        axis["num_format"] = "0.E+00" if max(positive) >= 1e5 or min(positive) < 1e-3 else "#,##0.###"
        return axis
    largest = max((abs(v) for v in numbers), default=0)
    if largest >= 1e6:
        axis["num_format"] = "0.0E+00"
    elif numbers and all(float(v).is_integer() for v in numbers):
        axis["num_format"] = "#,##0"
    elif largest >= 100:
        axis["num_format"] = "#,##0"
    elif largest >= 1:
        axis["num_format"] = "#,##0.0#"
    else:
        axis["num_format"] = "General"
    return axis


def _count(range_) -> int:
    return (range_.last.row - range_.first.row + 1) * (range_.last.col - range_.first.col + 1)


def _label_interval(points: int) -> int:
    """Every how many categories a label: 1, 2, 5, 10, 20, 50... so that at most 12 show."""
    interval = 1
    while points / interval > 12:
        interval *= 2.5 if str(interval).startswith("2") else 2
        interval = int(interval)
    return interval


def _chart(workbook, chart_plan, plan_cells: dict, values: dict, series_names: list):
    """An XlsxWriter chart for `chart_plan`. A line chart of many points over numeric
    categories (steps, x) becomes a scatter chart with lines, so its x axis is a value axis
    with round ticks instead of a smear of labels."""
    names = [series.name for series in chart_plan.series]
    if len(set(names)) < len(names):
        raise XlgenError(f"chart {chart_plan.title!r}: two series share a name, so they would share a colour")
    x_numbers = [_range_values(s.categories, plan_cells, values) if s.categories is not None else []
                 for s in chart_plan.series]
    counts = [_count(s.values) for s in chart_plan.series]
    scatter = chart_plan.kind == "scatter" or (
        max(counts) > 20 and all(len(x) == n for x, n in zip(x_numbers, counts)))
    if scatter:
        chart = workbook.add_chart({"type": "scatter", "subtype": "straight_with_markers"})
    else:
        chart = workbook.add_chart({"type": "line"})
    numbers = {False: [], True: []}
    for position, series in enumerate(chart_plan.series):
        index = series_names.index(series.name)
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        points = counts[position]
        options = {"name": series.name, "values": "=" + series.values.text(),
                   "marker": {"type": SERIES_MARKERS[index % len(SERIES_MARKERS)],
                              "size": 7 if points <= 30 else 5 if points <= 60 else 3,
                              "fill": {"color": colour}, "border": {"color": colour}},
                   "line": {"color": colour, "width": series.width or (2.25 if points <= 30 else 1.5)}}
        if series.dash:
            options["line"]["dash_type"] = series.dash
        if series.transparency:
            options["line"]["transparency"] = series.transparency
            options["marker"]["size"] = 2
        if series.categories is not None:
            options["categories"] = "=" + series.categories.text()
        if series.secondary:
            options["y2_axis"] = True
        numbers[series.secondary] += _range_values(series.values, plan_cells, values)
        chart.add_series(options)
    chart.set_title({"name": chart_plan.title, "name_font": {"size": 12, "bold": True}})
    if scatter:
        all_x = [x for xs in x_numbers for x in xs]
        x_axis = _axis(chart_plan.x_title, all_x, chart_plan.log_x)
        x_axis["label_position"] = "low"
        if "log_base" not in x_axis and all_x:
            x_axis.update({"min": min(all_x), "max": max(all_x)})
        chart.set_x_axis(x_axis)
    else:
        # labels below the plot (not on a zero line through it), a dozen at most
        x_axis = {"name": chart_plan.x_title, "label_position": "low"}
        interval = _label_interval(max(counts))
        if interval > 1:
            x_axis.update({"interval_unit": interval, "interval_tick": interval})
        chart.set_x_axis(x_axis)
    chart.set_y_axis(_axis(chart_plan.y_title, numbers[False], chart_plan.log_y))
    if any(series.secondary for series in chart_plan.series):
        chart.set_y2_axis(_axis(chart_plan.y2_title, numbers[True], False))
    if len(chart_plan.series) == 1:
        chart.set_legend({"none": True})
    else:
        chart.set_legend({"position": "bottom"})
    return chart


def _header_text(text: str) -> str:
    """Text for a page header: '&' doubled, within Excel's 255 characters."""
    return text.replace("&", "&&")[:120]


def _print_setup(worksheet, sheet_plan, look, workbook_title: str, charts_only: bool = False) -> None:
    """Landscape, one page wide at a fixed scale (Excel ignores manual page breaks under
    "fit to"), page breaks that cut no chart, the header row on every page, the sheet's
    name and title above, page numbers below. `charts_only`: the charts on one page."""
    worksheet.set_landscape()
    worksheet.set_margins(**MARGINS)
    if charts_only:
        (first_row, first_col, last_row, last_col), scale = charts_area(sheet_plan, look)
        worksheet.print_area(first_row - 1, first_col - 1, last_row - 1, last_col - 1)
        worksheet.set_print_scale(scale)
        return
    first_row, first_col, last_row, last_col = look.print_area
    worksheet.print_area(first_row - 1, first_col - 1, last_row - 1, last_col - 1)
    worksheet.set_print_scale(look.scale)
    if look.breaks:
        worksheet.set_h_pagebreaks([row - 1 for row in look.breaks])
    if look.repeat_row:
        worksheet.repeat_rows(look.repeat_row - 1)
    title = f"{sheet_plan.name}: {sheet_plan.title}" if sheet_plan.title else sheet_plan.name
    worksheet.set_header("&L&B" + _header_text(title), {"margin": HEADER_MARGIN})
    worksheet.set_footer("&L" + _header_text(workbook_title) + "&RPage &P of &N", {"margin": FOOTER_MARGIN})
