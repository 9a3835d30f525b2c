"""Write a plan to .xlsx with XlsxWriter: every formula with its cached value.

Cached values let numbers show where nothing recalculates (Protected View, previews,
pandas). The file is written to a temporary name in the target folder and renamed into
place, so an interrupted build never leaves a half-written file where the old one was.
Same plan, same bytes: document dates are fixed and XlsxWriter's zip entries carry no
clock time.
"""

from __future__ import annotations

import datetime
import html
import io
import os
import re
import secrets
import stat
import zipfile
from pathlib import Path

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell_fast
from xlsxwriter.worksheet import CellFormulaTuple, CellNumberTuple, Worksheet

from xlgen.engine.book import ExcelError
from xlgen.errors import XlgenError
from xlgen.formula import Expr, formula
from xlgen.sheets.plan import WorkbookPlan

FIXED_DATE = datetime.datetime(2024, 1, 1)
_NEEDS_ESCAPE = re.compile(r"[&<>]")

STYLES = {
    "header": {"bold": True, "bottom": 1, "align": "center", "bg_color": "#DDEBF7"},
    "label": {"italic": True, "font_color": "#404040"},
    "input": {"bold": True, "bg_color": "#FFF2CC", "border": 1, "num_format": "General"},
    "number": {"num_format": "#,##0.0000"},
    "weight": {"num_format": "0.000000"},
    "count": {"num_format": "0", "align": "center"},
    "note": {"italic": True, "font_color": "#7F7F7F"},
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
    "link": {"font_color": "#0563C1", "underline": 1, "valign": "top"},
    "value": {"bold": True, "num_format": "General", "align": "left", "valign": "top"},
}


class Formats:
    """One XlsxWriter format per combination of style names, made on first use."""

    def __init__(self, workbook):
        self.workbook = workbook
        self.cache = {}

    def get(self, style: tuple):
        if not style:
            return None
        if style not in self.cache:
            properties = {}
            for name in style:
                properties.update(STYLES[name])
            self.cache[style] = self.workbook.add_format(properties)
        return self.cache[style]


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

    def _write_formula(self, row, col, formula, cell_format=None, value=0):
        """Store a plain formula without XlsxWriter's per-formula scan for dynamic-array
        functions: those always carry our _xlfn. prefix, and go the usual way."""
        if "_xlfn." in formula or formula.startswith("{") or self.constant_memory:
            return super()._write_formula(row, col, formula, cell_format, value)
        if self._check_dimensions(row, col):
            return -1
        self.table[row][col] = CellFormulaTuple(formula[1:] if formula.startswith("=") else formula,
                                                cell_format, value)
        return 0

    def _write_cell(self, row, col, cell):
        """The same XML XlsxWriter writes for a formatted number or formula with a number
        result, without its per-cell generality (the innermost loop of a large build)."""
        kind = type(cell)
        if cell.format is not None:
            if kind is CellFormulaTuple and type(cell.value) is float and not _NEEDS_ESCAPE.search(cell.formula):
                self.fh.write(f'<c r="{xl_rowcol_to_cell_fast(row, col)}" s="{cell.format._get_xf_index()}">'
                              f"<f>{cell.formula}</f><v>{cell.value}</v></c>")
                return
            if kind is CellNumberTuple:
                self.fh.write(f'<c r="{xl_rowcol_to_cell_fast(row, col)}" s="{cell.format._get_xf_index()}">'
                              f"<v>{cell.number:.16G}</v></c>")
                return
        super()._write_cell(row, col, cell)


def cached_value(value):
    """The value XlsxWriter stores beside a formula: numbers, text, booleans or an error code."""
    if isinstance(value, ExcelError):
        return value.code
    if value is None:
        return 0
    return value


def write_workbook(plan: WorkbookPlan, book, values: dict, path: Path, force: bool = False,
                   progress=None) -> None:
    """Write `plan` to `path`: formula text from `book` (plan.to_book(), the text the
    engine computed), `values[(sheet, row, col)]` the engine's results."""
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
        _write(plan, book, values, str(temporary), progress)
        _comment_names(str(temporary), {name: comment for name, (_expr, comment) in plan.names.items() if comment})
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write(plan: WorkbookPlan, book, values: dict, filename: str, progress=None) -> None:
    workbook = xlsxwriter.Workbook(filename, {"strings_to_numbers": False, "strings_to_formulas": False,
                                              "strings_to_urls": False})
    workbook.set_properties({"title": plan.title, "subject": plan.description, "author": "xlgen",
                             "created": FIXED_DATE, "comments": "Built by xlgen; verify with `xlgen verify`."})
    formats = Formats(workbook)
    for sheet_plan, sheet in zip(plan.sheets, book.sheets):
        worksheet = workbook.add_worksheet(sheet_plan.name, worksheet_class=PreparedWorksheet)
        if progress is not None:
            worksheet.written = _sheet_written(progress, len(workbook.worksheets()), len(plan.sheets))
        formulas = sheet.formulas
        for col, width in sorted(sheet_plan.widths.items()):
            worksheet.set_column(col - 1, col - 1, width)
        if sheet_plan.freeze:
            worksheet.freeze_panes(*sheet_plan.freeze)
        for row, first_col, last_col in sheet_plan.merges:   # the first cell's content is written below
            entry = sheet_plan.cells.get((row, first_col))
            worksheet.merge_range(row - 1, first_col - 1, row - 1, last_col - 1, "",
                                  formats.get(entry.style) if entry else None)
        name = sheet_plan.name
        store_formula = worksheet._write_formula  # PreparedWorksheet's: no per-call wrappers
        for (row, col), entry in sorted(sheet_plan.cells.items()):
            fmt = formats.get(entry.style)
            content = entry.content
            if isinstance(content, Expr):
                value = values[(name, row, col)]
                store_formula(row - 1, col - 1, formulas[(row, col)], fmt,
                              value if type(value) is float else cached_value(value))
            elif (row, col) in sheet_plan.links:
                target = sheet_plan.links[(row, col)].replace("'", "''")
                worksheet.write_url(row - 1, col - 1, f"internal:'{target}'!A1", fmt, string=content,
                                    tip=f"Go to the sheet {sheet_plan.links[(row, col)]}")
            elif isinstance(content, str):
                worksheet.write_string(row - 1, col - 1, content, fmt)
            elif isinstance(content, bool):
                worksheet.write_boolean(row - 1, col - 1, content, fmt)
            else:
                worksheet.write_number(row - 1, col - 1, content, fmt)
        for (row, col), text in sorted(sheet_plan.comments.items()):
            worksheet.write_comment(row - 1, col - 1, text, {"x_scale": 2, "y_scale": 1.5})
        for highlight in sheet_plan.highlights:
            worksheet.conditional_format(highlight.area.text(), {
                "type": "formula", "criteria": formula(highlight.rule),
                "format": formats.get((highlight.style,))})
        for scale in sheet_plan.color_scales:
            worksheet.conditional_format(scale.area.text(), {
                "type": "2_color_scale", "min_color": scale.low, "max_color": scale.high})
        for chart_plan in sheet_plan.charts:
            worksheet.insert_chart(chart_plan.anchor[0] - 1, chart_plan.anchor[1] - 1,
                                   _chart(workbook, chart_plan),
                                   {"x_scale": chart_plan.size[0] / 480, "y_scale": chart_plan.size[1] / 288})
        for name, target in sorted(sheet_plan.names.items()):
            workbook.define_name(f"{sheet_plan.name}!{name}", "=" + target.text())
    for name, (expr, _comment) in sorted(plan.names.items()):
        workbook.define_name(name, formula(expr))
    workbook.close()


def _sheet_written(progress, number: int, count: int):
    """Sheet `number` of `count` is XML; after the last, the zip is compressed."""
    def written():
        progress(number, count, "writing")
        if number == count:
            progress(0, None, "compressing")
    return written


def _comment_names(filename: str, comments: dict) -> None:
    """Give workbook-level defined names their Name Manager comment.

    XlsxWriter's define_name has no comment argument, so the `comment` attribute is added
    to the `<definedName>` elements of xl/workbook.xml after it closes the file. Every
    zip entry is copied with its own ZipInfo (fixed date, same compression), so the same
    plan still gives the same bytes.
    """
    if not comments:
        return
    with zipfile.ZipFile(filename) as archive:
        entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info, data in entries:
            if info.filename == "xl/workbook.xml":
                data = _with_name_comments(data.decode("utf-8"), comments).encode("utf-8")
            target.writestr(info, data)
    Path(filename).write_bytes(buffer.getvalue())


def _with_name_comments(xml: str, comments: dict) -> str:
    for name, comment in sorted(comments.items()):
        # the workbook-level name: no localSheetId among its attributes
        pattern = re.compile(r'<definedName name="' + re.escape(name) + r'"(?=[^>]*>)(?![^>]*localSheetId)')
        attribute = ' comment="' + html.escape(comment, quote=False).replace('"', "&quot;") + '"'
        xml, count = pattern.subn(lambda match: match.group(0) + attribute, xml, count=1)
        if count != 1:
            raise XlgenError(f"defined name {name} is missing from xl/workbook.xml")
    return xml


def _chart(workbook, chart_plan):
    if chart_plan.kind == "scatter":
        chart = workbook.add_chart({"type": "scatter", "subtype": "straight_with_markers"})
    else:
        chart = workbook.add_chart({"type": "line"})
    for series in chart_plan.series:
        options = {"name": series.name, "values": "=" + series.values.text()}
        if series.categories is not None:
            options["categories"] = "=" + series.categories.text()
        if chart_plan.kind == "scatter":
            options["line"] = {"none": True}
            options["marker"] = {"type": "circle", "size": 5}
        if series.secondary:
            options["y2_axis"] = True
        chart.add_series(options)
    chart.set_title({"name": chart_plan.title})
    x_axis = {"name": chart_plan.x_title}
    if chart_plan.log_x:
        x_axis["log_base"] = 10
    chart.set_x_axis(x_axis)
    y_axis = {"name": chart_plan.y_title}
    if chart_plan.log_y:
        y_axis["log_base"] = 10
    chart.set_y_axis(y_axis)
    if any(series.secondary for series in chart_plan.series):
        chart.set_y2_axis({"name": chart_plan.y2_title})
    if len(chart_plan.series) == 1:
        chart.set_legend({"none": True})
    return chart
